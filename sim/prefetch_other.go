//go:build !amd64

package sim

import "unsafe"

// prefetch is a no-op where there is no assembly for it: the simulator is
// then slower, not different.
func prefetch(p unsafe.Pointer) {}

func prefetch2(p, q unsafe.Pointer) {}
