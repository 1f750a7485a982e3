package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// statusAdversaries runs `mesh status --json` and returns each node's
// "adversary" as the JSON says it: the mode, or "null" for honest. It
// fails the test if a node lacks the field.
func statusAdversaries(t *testing.T, state string) []string {
	t.Helper()
	code, stdout, stderr := runMesh(t, "", "status", "--json", "--state", state)
	var out struct {
		Nodes []map[string]json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("mesh status --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	modes := make([]string, len(out.Nodes))
	for i, n := range out.Nodes {
		raw, ok := n["adversary"]
		if !ok {
			t.Fatalf("mesh status --json: node %d has no \"adversary\" field:\n%s", i, stdout)
		}
		if string(raw) == "null" {
			modes[i] = "null"
			continue
		}
		if err := json.Unmarshal(raw, &modes[i]); err != nil {
			t.Fatalf("node %d: \"adversary\" is %s, want a string or null", i, raw)
		}
	}
	return modes
}

// TestUpAdversariesEndToEnd launches real processes with `mesh up
// --adversaries 2:blackhole` and checks that exactly two nodes are marked
// in `mesh status --json` (the others null), where the state file says;
// that `mesh chaos adversary` turns an honest node into a spammer and
// status follows, refuses a bad mode with a usage error, and that `mesh
// chaos clear` turns every node honest.
func TestUpAdversariesEndToEnd(t *testing.T) {
	skipShort(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "cluster.json")
	s, upOut := startUp(t, state, "--nodes", "6", "--peers", "2", "--seed", "11", "--dashboard", "off", "--adversaries", "2:blackhole")
	modes := statusAdversaries(t, state)
	t.Logf("mesh status --json adversaries: %v", modes)
	var marked []int
	honest := -1
	for i, m := range modes {
		switch m {
		case "blackhole":
			marked = append(marked, i)
			if s.Nodes[i].Adversary != "blackhole" {
				t.Errorf("node %d runs blackhole, but the state file records %q", i, s.Nodes[i].Adversary)
			}
		case "null":
			if honest < 0 {
				honest = i
			}
			if s.Nodes[i].Adversary != "" {
				t.Errorf("node %d is honest, but the state file records %q", i, s.Nodes[i].Adversary)
			}
		default:
			t.Errorf("node %d: adversary %q, want blackhole or null", i, m)
		}
	}
	if len(marked) != 2 {
		t.Fatalf("mesh status --json marks nodes %v as adversaries, want exactly two", marked)
	}
	if !strings.Contains(upOut.String(), fmt.Sprintf("adversaries: 2 nodes: %d (blackhole), %d (blackhole)", marked[0], marked[1])) {
		t.Errorf("mesh up does not list the adversaries:\n%s", upOut.String())
	}

	out := chaos(t, state, "adversary", fmt.Sprint(honest), "spam=50")
	if !strings.Contains(out, "adversary spam=50") {
		t.Errorf("mesh chaos adversary said %q", out)
	}
	if got := statusAdversaries(t, state)[honest]; got != "spam=50" {
		t.Errorf("after mesh chaos adversary %d spam=50, status says %q", honest, got)
	}
	st := readChaosStatus(t, state)
	if a := st.Nodes[honest].Adversary; a == nil || *a != "spam=50" {
		t.Errorf("mesh chaos status shows node %d's adversary as %v", honest, a)
	}
	code, _, stderr := runMesh(t, "", "chaos", "--state", state, "adversary", "0", "wormhole")
	if code != 2 || !strings.Contains(stderr, `unknown mode "wormhole"`) {
		t.Errorf("mesh chaos adversary 0 wormhole: exit %d, %q; want 2 naming the mode", code, stderr)
	}

	chaos(t, state, "clear")
	for i, m := range statusAdversaries(t, state) {
		if m != "null" {
			t.Errorf("after mesh chaos clear node %d runs %q, want null", i, m)
		}
	}
	if out := upOut.String(); strings.Contains(out, "panic") {
		t.Errorf("mesh up:\n%s", out)
	}
}

// TestUpAdversariesBadFlag: a bad --adversaries is a usage error before
// anything starts.
func TestUpAdversariesBadFlag(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "cluster.json")
	for _, tc := range []struct{ flag, has string }{
		{"blackhole", "want N:MODE"},
		{"0:blackhole", "count of at least 1"},
		{"3:wormhole", `unknown mode "wormhole"`},
		{"7:blackhole", "mesh has 6 nodes"},
		{"1:eclipse=@9", "@9"},
	} {
		code, _, stderr := runMesh(t, "", "up", "--state", state, "--nodes", "6", "--dashboard", "off", "--adversaries", tc.flag)
		if code != 2 || !strings.Contains(stderr, tc.has) {
			t.Errorf("mesh up --adversaries %s: exit %d, %q; want 2 with %q", tc.flag, code, stderr, tc.has)
		}
	}
}
