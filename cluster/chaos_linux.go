package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStopped reports whether process pid is stopped by a signal
// (SIGSTOP): state T in /proc/PID/stat.
func procStopped(pid int) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false, fmt.Errorf("pid %d: %w", pid, err)
	}
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	if k < 0 || k+3 > len(s) {
		return false, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	return s[k+2] == 'T', nil
}
