//go:build !linux

package cluster

// procStopped is Linux-only.
func procStopped(pid int) (bool, error) { return false, errNoProc }
