package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/cluster"
)

// chaosStatus is `mesh chaos status --json`.
type chaosStatus struct {
	Nodes []cluster.ChaosNode `json:"nodes"`
}

func readChaosStatus(t *testing.T, state string) chaosStatus {
	t.Helper()
	code, stdout, stderr := runMesh(t, "", "chaos", "status", "--json", "--state", state)
	if code != 0 {
		t.Fatalf("mesh chaos status: exit %d\n%s", code, stderr)
	}
	var s chaosStatus
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("mesh chaos status --json: %v\n%s", err, stdout)
	}
	return s
}

func chaos(t *testing.T, state string, args ...string) string {
	t.Helper()
	code, stdout, stderr := runMesh(t, "", append([]string{"chaos", "--state", state}, args...)...)
	if code != 0 {
		t.Fatalf("mesh chaos %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	return stdout
}

// halvesSeed returns a seed whose 10-node, 3-peer topology stays connected
// within 0-4 and within 5-9 once the links between them are cut, so that
// each side of the split can reach all of itself.
func halvesSeed(t *testing.T) uint64 {
	for seed := uint64(1); seed < 1000; seed++ {
		var links [][2]int
		for _, l := range cluster.NewTopology(10, 3, seed).Links() {
			if (l[0] < 5) == (l[1] < 5) {
				links = append(links, l)
			}
		}
		var left, right [][2]int
		for _, l := range links {
			if l[0] < 5 {
				left = append(left, l)
			} else {
				right = append(right, [2]int{l[0] - 5, l[1] - 5})
			}
		}
		if cluster.NewGraph(5, left).Connected() && cluster.NewGraph(5, right).Connected() {
			return seed
		}
	}
	t.Fatal("no seed below 1000 keeps both halves connected")
	return 0
}

// TestChaosEndToEnd drives a real 10-process mesh through mesh chaos:
// a split keeps each side's messages on its side; heal lets new messages
// through everywhere; pause and resume stop and continue a process; kill
// shows in mesh status, and restart brings the node back with its id.
func TestChaosEndToEnd(t *testing.T) {
	skipShort(t)
	t.Parallel()
	state := filepath.Join(t.TempDir(), "cluster.json")
	seed := halvesSeed(t)
	s, upOut := startUp(t, state, "--nodes", "10", "--peers", "3", "--seed", fmt.Sprint(seed), "--dashboard", "off", "--strategy", "flood")
	ctx := context.Background()
	client := func(i int) *api.Client { return api.NewClient(s.Nodes[i].HTTPURL, nil) }

	chaos(t, state, "split", "0-4", "5-9")
	st := readChaosStatus(t, state)
	for i, n := range st.Nodes {
		want := []int{5, 6, 7, 8, 9}
		if i >= 5 {
			want = []int{0, 1, 2, 3, 4}
		}
		if n.State != cluster.StateRunning || !slices.Equal(n.Cut, want) {
			t.Fatalf("after the split node %d is %s with cut %v, want running with cut %v", i, n.State, n.Cut, want)
		}
	}
	left, err := client(1).Publish(ctx, "left side")
	if err != nil {
		t.Fatal(err)
	}
	right, err := client(7).Publish(ctx, "right side")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		own, other := left.ID, right.ID
		if i >= 5 {
			own, other = right.ID, left.ID
		}
		if _, err := client(i).Receipt(ctx, own, 30*time.Second); err != nil {
			t.Errorf("node %d never got its own side's message: %v", i, err)
		}
		// Every node of its side has it by now; give a leaking copy of the
		// other side's a moment anyway.
		if _, err := client(i).Receipt(ctx, other, 100*time.Millisecond); err == nil {
			t.Errorf("node %d got the other side's message through the split", i)
		}
	}

	chaos(t, state, "heal")
	for i, n := range readChaosStatus(t, state).Nodes {
		if len(n.Cut) != 0 {
			t.Errorf("after heal node %d still cuts %v", i, n.Cut)
		}
	}
	after, err := client(0).Publish(ctx, "after the heal")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := client(i).Receipt(ctx, after.ID, 30*time.Second); err != nil {
			t.Errorf("node %d never got the message published after the heal: %v", i, err)
		}
	}

	chaos(t, state, "pause", "3")
	if got := readChaosStatus(t, state).Nodes[3].State; got != cluster.StatePaused {
		t.Fatalf("after pause node 3 is %s", got)
	}
	chaos(t, state, "resume", "3")
	if got := readChaosStatus(t, state).Nodes[3].State; got != cluster.StateRunning {
		t.Fatalf("after resume node 3 is %s", got)
	}
	if _, err := client(3).Health(ctx); err != nil {
		t.Fatalf("node 3 does not answer after resume: %v", err)
	}

	chaos(t, state, "kill", "2")
	code, stdout, stderr := runMesh(t, "", "status", "--json", "--state", state)
	var status struct {
		Nodes []statusNode `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &status); err != nil {
		t.Fatalf("mesh status --json: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	for i, n := range status.Nodes {
		if n.Exited != (i == 2) {
			t.Errorf("after kill 2, mesh status says node %d exited=%v", i, n.Exited)
		}
	}
	if got := readChaosStatus(t, state).Nodes[2].State; got != cluster.StateExited {
		t.Errorf("after kill node 2 is %s", got)
	}

	chaos(t, state, "restart", "2")
	h, err := client(2).Health(ctx)
	if err != nil || h.ID != s.Nodes[2].ID {
		t.Fatalf("after restart node 2 answers %+v, %v; want id %s", h, err, s.Nodes[2].ID)
	}

	// clear undoes a mix of faults at once.
	chaos(t, state, "loss", "0.5", "0-2")
	chaos(t, state, "delay", "5ms", "1ms", "4")
	chaos(t, state, "kill", "6")
	chaos(t, state, "pause", "8")
	chaos(t, state, "clear")
	for i, n := range readChaosStatus(t, state).Nodes {
		if n.State != cluster.StateRunning || n.Faults == nil || !n.Faults.IsZero() {
			t.Errorf("after clear node %d is %s with plan %+v", i, n.State, n.Faults)
		}
	}
	if out := upOut.String(); strings.Contains(out, "panic") {
		t.Errorf("mesh up:\n%s", out)
	}
}
