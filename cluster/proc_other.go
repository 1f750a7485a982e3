//go:build !linux

package cluster

import (
	"errors"
	"syscall"
)

// errNoProc: the launcher's process checks read /proc, which only Linux has.
var errNoProc = errors.New("process inspection needs Linux /proc")

// sysProcAttr keeps children in their own process group. Without Linux's
// parent-death signal, children outlive a launcher killed by SIGKILL.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// ProcStart is Linux-only.
func ProcStart(pid int) (start uint64, running bool, err error) { return 0, false, errNoProc }

// Alive is Linux-only; elsewhere it reports false.
func Alive(pid int, start uint64) bool { return false }

// ProcExe is Linux-only.
func ProcExe(pid int) (string, error) { return "", errNoProc }

// ProcArgs is Linux-only.
func ProcArgs(pid int) ([]string, error) { return nil, errNoProc }

// Identify is Linux-only: elsewhere nothing can be proven, so nothing is
// signalled.
func Identify(pid int, start uint64, exe, sub string) error { return errNoProc }

// SignalProven is Linux-only (see Identify).
func SignalProven(pid int, start uint64, exe, sub string, sig syscall.Signal) error { return errNoProc }

// RSS is Linux-only.
func RSS(pid int) (int64, error) { return 0, errNoProc }
