package cluster_test

// End-to-end tests: build cmd/mesh, start real node processes on 127.0.0.1
// on ports bound at run time, drive them through the API client, and check
// by PID that nothing outlives the launcher. They assert on outcomes, never
// on speed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// meshBinary builds cmd/mesh once per test run.
var meshBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gossipmesh-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mesh")
	cmd := exec.Command("go", "build", "-o", bin, "gossipmesh/cmd/mesh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := meshBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func buildMesh(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts real processes")
	}
	bin, err := meshBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startCluster launches nodes processes of bin with the default config and
// seed, and stops them when the test ends.
func startCluster(t *testing.T, bin string, nodes int, seed uint64) *cluster.Cluster {
	t.Helper()
	cfg := cluster.DefaultConfig()
	cfg.Binary = bin
	cfg.Nodes = nodes
	cfg.Seed = seed
	cfg.LogDir = t.TempDir()
	cfg.StartTimeout = time.Minute // a loaded CI machine is slow, not broken
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

// waitGone waits until none of the processes runs any more, for at most
// a minute (a loaded machine is slow to reap, not broken), and reports
// those that still do.
func waitGone(t *testing.T, what string, pids []int, starts []uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var alive []int
		for k, pid := range pids {
			if cluster.Alive(pid, starts[k]) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes %v still running", what, alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEndToEndGossip(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	seed := rand.Uint64()%1_000_000 + 1
	t.Logf("seed %d", seed)
	c := startCluster(t, bin, 10, seed)
	ctx := context.Background()

	// Every chosen link is up, and the mesh is connected.
	m := c.Mesh()
	obs := m.Observe(ctx)
	if !obs.Connected() {
		t.Fatalf("mesh not connected after Start: %v", obs.Errs)
	}
	for _, l := range c.Topology().Links() {
		if !obs.Reports(l[0], l[1]) {
			t.Errorf("chosen link %d–%d not reported by both ends", l[0], l[1])
		}
	}

	rng := rand.New(rand.NewPCG(seed, 2))
	for k := range 100 {
		pub := rng.IntN(m.Len())
		r, err := m.Propagate(ctx, pub, fmt.Sprintf("e2e message %d", k), cluster.PropagateOptions{Wait: 30 * time.Second})
		if err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		if !r.Complete() {
			t.Errorf("message %d from node %d: reached %d/%d, missing %v", k, pub, r.Reached, r.Nodes, r.Missing)
		}
		for _, rc := range r.Receipts {
			if rc.Distance < 0 || rc.Hop < rc.Distance {
				t.Errorf("message %d from node %d: node %d at hop %d, BFS distance %d", k, pub, rc.Index, rc.Hop, rc.Distance)
			}
			if (rc.Index == pub) != (rc.Hop == 0) {
				t.Errorf("message %d from node %d: node %d at hop %d", k, pub, rc.Index, rc.Hop)
			}
		}
	}

	// Kill and restart one node, as the dashboard will: it comes back with
	// the same addresses and its links, and gossip reaches it again.
	before := c.Nodes()[3]
	if err := c.Kill(3); err != nil {
		t.Fatal(err)
	}
	if cluster.Alive(before.PID, before.PIDStart) || c.Nodes()[3].Running {
		t.Fatalf("node 3 (pid %d) still running after Kill", before.PID)
	}
	if err := c.Restart(ctx, 3); err != nil {
		t.Fatal(err)
	}
	after := c.Nodes()[3]
	if after.PID == before.PID || after.GossipAddr != before.GossipAddr || after.HTTPURL != before.HTTPURL || !after.Running {
		t.Fatalf("restart: before %+v, after %+v", before, after)
	}
	r, err := c.Mesh().Propagate(ctx, 3, "after restart", cluster.PropagateOptions{Wait: 30 * time.Second})
	if err != nil || !r.Complete() {
		t.Fatalf("after restart: reached %d/%d, err %v", r.Reached, r.Nodes, err)
	}

	var pids []int
	var starts []uint64
	for _, n := range c.Nodes() {
		pids, starts = append(pids, n.PID), append(starts, n.PIDStart)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	waitGone(t, "after Stop", pids, starts)
}

// startUp runs `mesh up` as a child of the test and waits for its state
// file. exited delivers the child's exit once.
func startUp(t *testing.T, bin, state string, args ...string) (up *exec.Cmd, s cluster.State, exited chan error, out *bytes.Buffer) {
	t.Helper()
	out = new(bytes.Buffer)
	up = exec.Command(bin, append([]string{"up", "--state", state, "--start-timeout", "1m", "--dashboard", "off"}, args...)...)
	up.Stdout, up.Stderr = out, out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- up.Wait() }()
	t.Cleanup(func() { _ = up.Process.Kill() })
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		if s, err = cluster.ReadState(state); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("mesh up exited before writing the state file: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file after 90 s: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.LauncherPID != up.Process.Pid {
		t.Fatalf("state file: launcher pid %d, want %d", s.LauncherPID, up.Process.Pid)
	}
	for _, n := range s.Nodes {
		if !cluster.Alive(n.PID, n.PIDStart) {
			t.Fatalf("node %d (pid %d) not running once the state file is written", n.Index, n.PID)
		}
	}
	return up, s, exited, out
}

func nodePIDs(s cluster.State) (pids []int, starts []uint64) {
	for _, n := range s.Nodes {
		pids, starts = append(pids, n.PID), append(starts, n.PIDStart)
	}
	return pids, starts
}

// TestEndToEndLauncherKilled runs `mesh up` as a child, SIGKILLs it once the
// state file says the mesh is up, and checks that every node it recorded
// dies too (the parent-death signal).
func TestEndToEndLauncherKilled(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	up, s, exited, _ := startUp(t, bin, filepath.Join(t.TempDir(), "cluster.json"), "--nodes", "10", "--seed", "5")
	if len(s.Nodes) != 10 {
		t.Fatalf("state file lists %d nodes, want 10", len(s.Nodes))
	}
	pids, starts := nodePIDs(s)
	if err := up.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitGone(t, "after SIGKILL of the launcher", pids, starts)
}

// TestEndToEndUpStatusPublishDown drives a mesh the way a user does: up,
// status --json, publish --json, down.
func TestEndToEndUpStatusPublishDown(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	state := filepath.Join(t.TempDir(), "cluster.json")
	_, s, exited, out := startUp(t, bin, state, "--nodes", "6", "--peers", "2", "--seed", "9")
	mesh := func(args ...string) []byte {
		t.Helper()
		b, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("mesh %v: %v\n%s", args, err, b)
		}
		return b
	}

	var st struct {
		Connected bool `json:"connected"`
		Nodes     []struct {
			cluster.Member
			Peers []int `json:"peers"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(mesh("status", "--json", "--state", state), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Connected || len(st.Nodes) != 6 {
		t.Fatalf("status: connected %v, %d nodes", st.Connected, len(st.Nodes))
	}
	for i, n := range st.Nodes {
		if n.Member != s.Nodes[i].Member {
			t.Errorf("status node %d = %+v, state file says %+v", i, n.Member, s.Nodes[i].Member)
		}
		for _, j := range s.Nodes[i].Chosen {
			if !slices.Contains(n.Peers, j) {
				t.Errorf("node %d chose %d but lists peers %v", i, j, n.Peers)
			}
		}
	}

	var rep struct {
		Nodes    int `json:"nodes"`
		Reached  int `json:"reached"`
		Receipts []struct {
			Index    int `json:"index"`
			Hop      int `json:"hop"`
			Distance int `json:"distance"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal(mesh("publish", "--json", "--state", state, "--node", "2", "hello", "mesh"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Nodes != 6 || rep.Reached != 6 || len(rep.Receipts) != 6 {
		t.Fatalf("publish: %+v", rep)
	}
	for _, rc := range rep.Receipts {
		if rc.Hop < rc.Distance {
			t.Errorf("publish: node %d at hop %d, distance %d", rc.Index, rc.Hop, rc.Distance)
		}
	}

	pids, starts := nodePIDs(s)
	mesh("down", "--state", state)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("mesh up exited with %v after mesh down\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mesh up still running 30 s after mesh down")
	}
	waitGone(t, "after mesh down", pids, starts)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file still there after mesh down: %v", err)
	}
}

// TestEndToEndBench runs a small bench against real processes: every
// sequential message reaches every node, the figures are ordered, and the
// throughput search finds a sustained rate and records every step. It
// asserts behaviour only, never speed.
func TestEndToEndBench(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	c := startCluster(t, bin, 4, 11)
	ctx := context.Background()

	// The launcher calms each node's sysmon (Config.CalmSysmon, on by
	// default) through the node's environment.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.Nodes()[0].PID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "schedtrace=2147483647") {
		t.Errorf("node 0's environment lacks the calm-sysmon GODEBUG setting")
	}

	bc := cluster.DefaultBenchConfig()
	bc.Messages, bc.Warmup = 30, 5
	bc.Step = 200 * time.Millisecond
	bc.StartRate, bc.MaxRate = 300, 600
	res, err := cluster.Bench(ctx, c.Mesh(), bc)
	if err != nil {
		t.Fatal(err)
	}
	l := res.Latency
	if l.Incomplete != 0 || l.Late != 0 {
		t.Errorf("sequential messages: %d incomplete, %d late; want every message at every node before the next", l.Incomplete, l.Late)
	}
	if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency figures out of order: %+v", l)
	}
	// Any sustained rate will do: a busy CI machine may halve the first.
	if len(res.Steps) == 0 || res.Sustained.DeliveriesPerS <= 0 || res.Sustained.DeliveryRatio != 1 {
		t.Fatalf("no rate sustained at 100%% delivery: %+v", res)
	}
	for _, s := range res.Steps {
		if s.OK && s.Delivered != s.Expected {
			t.Errorf("step %+v passed without every delivery", s)
		}
	}
}
