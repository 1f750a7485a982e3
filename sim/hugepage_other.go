//go:build !linux

package sim

import "unsafe"

func hugePages(p unsafe.Pointer, n uintptr) {}

func hugeSlice[T any](n, c int) []T { return make([]T, n, c) }
