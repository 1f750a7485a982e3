package sim

import (
	"reflect"
	"unsafe"

	"gossipmesh/gossip"
)

// ringOffset is the offset within a gossip.Core of the pointer to its
// seen-cache's entries, or -1 if the core no longer has that shape.
//
// Every receipt reads those entries, a separate small allocation per node,
// so at a million nodes nearly every event would stall ~200 ns on that
// load. Go has no public way to say where it is, and the protocol core
// must not change for the simulator's sake, so the engine reads the
// pointer out of the core (found by reflection, never hard-coded) and
// passes it to prefetch, which never faults. The pointer is used as a
// hint only: were the layout ever wrong, runs would be slower, not
// different.
var ringOffset = func() int {
	core, ok := reflect.TypeFor[gossip.Core]().FieldByName("seen")
	if !ok || core.Type.Kind() != reflect.Struct {
		return -1
	}
	ring, ok := core.Type.FieldByName("ring")
	if !ok || ring.Type.Kind() != reflect.Slice {
		return -1
	}
	return int(core.Offset + ring.Offset)
}()

// ringHint returns the address of core c's seen-cache entries (nil if it
// has none or the layout is unknown).
func ringHint(c *gossip.Core) unsafe.Pointer {
	if ringOffset < 0 {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(c), ringOffset))
}
