package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// fakeState writes a state file for n nodes that nobody runs: enough for
// the CLI to parse sets against, and every usage error comes before a node
// is asked anything.
func fakeState(t *testing.T, n int) string {
	t.Helper()
	s := cluster.State{Version: cluster.StateVersion, LauncherPID: 1, StartedAt: time.Now(), UpdatedAt: time.Now()}
	for i := range n {
		s.Nodes = append(s.Nodes, cluster.StateNode{Member: cluster.Member{
			Index: i, ID: fmt.Sprintf("%016x", i+1), PID: 1,
			GossipAddr: "127.0.0.1:1", HTTPURL: "http://127.0.0.1:1",
		}})
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := cluster.WriteState(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

// Bad verbs, sets and values are a one-line usage error with a hint, and
// exit 2 before anything is changed.
func TestChaosUsageErrors(t *testing.T) {
	t.Parallel()
	state := fakeState(t, 10)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "chaos needs a verb"},
		{[]string{"bogus"}, `unknown verb "bogus"`},
		{[]string{"split", "0-4"}, "want two node sets"},
		{[]string{"split", "0-4", "5-10"}, "node 10 does not exist"},
		{[]string{"split", "0-5", "5-9"}, "node 5 is in both sets"},
		{[]string{"split", "4-0", "5-9"}, "runs backwards"},
		{[]string{"heal", "now"}, "takes no arguments"},
		{[]string{"loss", "1.5"}, "is not a probability"},
		{[]string{"loss", "0.2", "x"}, `"x" is not a node index`},
		{[]string{"delay", "soon"}, "want a Go duration"},
		{[]string{"delay", "10ms", "x", "0-4"}, `jitter "x"`},
		{[]string{"delay", "10ms", "5ms", "0-4", "5"}, "want a delay, an optional jitter"},
		{[]string{"delay", "1m", "1s"}, "at most 1m0s"},
		{[]string{"kill"}, "want one node set"},
		{[]string{"pause", ""}, "empty node set"},
		{[]string{"restart", "1,,2"}, "empty item"},
		{[]string{"heal", "--json"}, "--json is for status and scenario only"},
		{[]string{"scenario"}, "want one scenario"},
		{[]string{"scenario", "bogus"}, `scenario "bogus": want one of kill, loss`},
		{[]string{"scenario", "kill", "--rate", "-1"}, "rate -1"},
		{[]string{"scenario", "pause", "--fraction", "1"}, "fraction 1"},
		{[]string{"loss", "0.2", "--rate", "5"}, "--rate is for scenario only"},
		{[]string{"heal", "--seed", "5"}, "--seed is for scenario only"},
		{[]string{"scenario", "kill", "--runs", "0"}, "--runs 0"},
		{[]string{"status", "--timeout", "0s"}, "--timeout must be positive"},
	} {
		args := append([]string{"chaos", "--state", state}, tc.args...)
		code, _, stderr := runMesh(t, "", args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("mesh %q: exit %d, stderr %q; want exit 2 and %q", args, code, stderr, tc.want)
		}
	}
}

// A bare number after the delay is a node set, not a jitter.
func TestChaosDelayReadsANumberAsASet(t *testing.T) {
	t.Parallel()
	state := fakeState(t, 3)
	// Node 0 runs nothing, so the verb gets past parsing and skips it as
	// not running: exit 0 with a note, having changed nothing.
	code, stdout, stderr := runMesh(t, "", "chaos", "--state", state, "delay", "10ms", "0")
	if code != 0 || !strings.Contains(stderr, "node 0 is not running") || !strings.Contains(stdout, "from 1 nodes") {
		t.Errorf("delay 10ms 0: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestChaosHelp(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runMesh(t, "", "help", "chaos")
	for _, verb := range []string{"split SET SET", "heal", "loss P [SET]", "delay D [JITTER] [SET]", "kill SET", "restart SET", "pause SET", "resume SET", "clear", "status", "scenario NAME", "-state", "-json", "-rate"} {
		if code != 0 || !strings.Contains(stdout, verb) {
			t.Errorf("mesh help chaos: exit %d, no %q in\n%s", code, verb, stdout)
		}
	}
}
