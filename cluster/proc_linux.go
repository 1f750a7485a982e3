//go:build linux

package cluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so that a Ctrl-C at the
// terminal reaches only the launcher, which then stops the children in
// order; and asks the kernel to SIGKILL the child when the launcher dies,
// even by SIGKILL. Pdeathsig fires when the *thread* that forked the child
// exits, which in Go happens only to a goroutine locked to its thread: the
// launcher therefore starts children from a fresh goroutine, never a locked
// one.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// ProcStart returns the start time of process pid, in clock ticks since
// boot (field 22 of /proc/PID/stat), and whether it is still running: a
// zombie (exited, not yet reaped) counts as not running. A PID and its start
// time name a process for good: a recycled PID has a different start time.
func ProcStart(pid int) (start uint64, running bool, err error) {
	if pid <= 0 {
		return 0, false, fmt.Errorf("pid %d: not a process id", pid)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, fmt.Errorf("pid %d: %w", pid, err)
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// the fields start after the last ')'.
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	if k < 0 {
		return 0, false, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	f := strings.Fields(s[k+1:])
	if len(f) < 20 {
		return 0, false, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("pid %d: start time: %w", pid, err)
	}
	return start, f[0] != "Z" && f[0] != "X", nil
}

// Alive reports whether the process that had this pid and start time (0:
// any) is still running.
func Alive(pid int, start uint64) bool {
	s, running, err := ProcStart(pid)
	return err == nil && running && (start == 0 || s == start)
}

// RSS returns process pid's resident set size in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d: VmRSS %q: %w", pid, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS in /proc status", pid)
}

// ProcExe returns the executable that process pid runs (the target of
// /proc/PID/exe), without the " (deleted)" the kernel appends once the file
// has been replaced, as a rebuild of the mesh binary does.
func ProcExe(pid int) (string, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return "", fmt.Errorf("pid %d: %w", pid, err)
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// ProcArgs returns process pid's command line (/proc/PID/cmdline).
func ProcArgs(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// Identify proves that process pid is the one a state file recorded: it is
// running, its start time is start, its executable is exe and its first
// argument (the mesh subcommand) is sub. A state file that leaves start or
// exe unknown (0 or "") proves nothing, and Identify says so. It returns
// an error wrapping ErrNotRunning when no live process has the pid, and
// another error for a process that is not proven to be ours: one that must
// never be signalled.
func Identify(pid int, start uint64, exe, sub string) error {
	if pid <= 0 {
		return fmt.Errorf("pid %d: not a process id", pid)
	}
	s, running, err := ProcStart(pid)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pid %d: %w", pid, ErrNotRunning)
		}
		return err
	}
	if !running {
		return fmt.Errorf("pid %d: %w", pid, ErrNotRunning)
	}
	if start == 0 {
		return fmt.Errorf("pid %d: no start time recorded, so nothing proves the process now holding it is the mesh's", pid)
	}
	if s != start {
		return fmt.Errorf("pid %d: now held by another process (start time %d, recorded %d)", pid, s, start)
	}
	if exe == "" {
		return fmt.Errorf("pid %d: no executable recorded, so nothing proves it is the mesh's", pid)
	}
	got, err := ProcExe(pid)
	if err != nil {
		return fmt.Errorf("pid %d: cannot read its executable, so cannot prove it is the mesh's: %w", pid, err)
	}
	if got != exe {
		return fmt.Errorf("pid %d: runs %s, recorded %s", pid, got, exe)
	}
	args, err := ProcArgs(pid)
	if err != nil {
		return fmt.Errorf("pid %d: cannot read its command line: %w", pid, err)
	}
	if len(args) < 2 || args[1] != sub {
		return fmt.Errorf("pid %d: runs %q, not `mesh %s`", pid, strings.Join(args, " "), sub)
	}
	return nil
}

// SignalProven sends sig to process pid only if Identify proves it is the
// recorded one. The process is pinned first (a pidfd, through
// os.FindProcess) and proven after, so a PID recycled between the proof and
// the signal cannot receive it.
func SignalProven(pid int, start uint64, exe, sub string, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	defer p.Release()
	if err := Identify(pid, start, exe, sub); err != nil {
		return err
	}
	if err := p.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("pid %d: %w", pid, ErrNotRunning)
		}
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	return nil
}
