//go:build linux

package cluster

import (
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
