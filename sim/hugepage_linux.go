package sim

import (
	"syscall"
	"unsafe"
)

// hugePages asks Linux to back the n bytes at p with 2 MiB pages. The
// simulator reads its big arrays (cores, peer lists, events) at random, and
// with 4 KiB pages nearly every such read also misses the TLB; in a VM a
// TLB miss costs a nested page walk. Go does not ask for huge pages
// itself, and the system here gives them only to regions that ask
// (transparent_hugepage=madvise). Call it before the memory is first
// written. Failure only costs speed, so it is ignored.
func hugePages(p unsafe.Pointer, n uintptr) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + n) &^ (huge - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start)
	_ = syscall.Madvise(b, 14) // MADV_HUGEPAGE
}

// hugeSlice is make([]T, n, c) with hugePages applied.
func hugeSlice[T any](n, c int) []T {
	s := make([]T, n, c)
	if c > 0 {
		var zero T
		hugePages(unsafe.Pointer(unsafe.SliceData(s)), uintptr(c)*unsafe.Sizeof(zero))
	}
	return s
}
