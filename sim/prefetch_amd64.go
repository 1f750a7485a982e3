package sim

import "unsafe"

// prefetch asks the CPU to start loading the two cache lines at p (a
// gossip.Core is 128 bytes) without waiting for them. Go has no prefetch
// builtin, and a plain load would stall: here a miss past the 1 MiB L2
// costs ~200 ns, and the engine would pay it several times per event.
// A prefetch never faults, whatever the address.
//
//go:noescape
func prefetch(p unsafe.Pointer)

// prefetch2 is two prefetches for the price of one call.
//
//go:noescape
func prefetch2(p, q unsafe.Pointer)
