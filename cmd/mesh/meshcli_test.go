package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Bad flags and arguments exit 2 with a message that names the problem,
// before anything is launched.
func TestMeshCommandsRejectBadUsage(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--nodes", "0"}, "nodes"},
		{[]string{"demo", "--peers", "10"}, "peers"},
		{[]string{"demo", "--strategy", "gossipsub"}, "strategy"},
		{[]string{"demo", "--messages", "0"}, "messages"},
		{[]string{"demo", "extra"}, "no arguments"},
		{[]string{"up", "--log-format", "xml"}, "log format"},
		{[]string{"up", "--bogus"}, "bogus"},
		{[]string{"publish", "--state", state}, "TEXT"},
		{[]string{"status", "--timeout", "0s", "--state", state}, "timeout"},
		{[]string{"down", "now", "--state", state}, "no arguments"},
		{[]string{"bench", "--nodes", "1"}, "at least 2"},
		{[]string{"bench", "--messages", "0"}, "messages"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// Commands that read the state file fail (exit 1) with a hint when no mesh
// is up.
func TestMeshCommandsWithoutStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	for _, args := range [][]string{
		{"status", "--state", state},
		{"publish", "--state", state, "hi"},
		{"down", "--state", state},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("mesh %v: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), "mesh up") {
			t.Errorf("mesh %v: stderr %q does not say how to start a mesh", args, stderr.String())
		}
	}
}
