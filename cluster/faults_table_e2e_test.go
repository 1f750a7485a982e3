package cluster_test

// End-to-end tests of the fault table, one per row: a real `mesh up`
// launcher with its node processes, and the row's scenario run on it by
// Chaos.RunScenario, the code behind `mesh chaos scenario NAME`. Each test
// asserts the row's delivery and membership checks, never its times (which
// it logs); the meshes are smaller than the rows' 50 nodes, so that the
// tests fit beside everything else on two loaded cores under the race
// detector, and every wait has a limit of minutes, not the row's target.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// upMesh runs `mesh up` with args on a state file of its own until the
// test ends, and opens the mesh for chaos once the launcher has written
// the state file (which it does once the mesh is up and linked).
func upMesh(t *testing.T, bin string, args ...string) *cluster.Chaos {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "cluster.json")
	out := new(syncBuffer)
	up := exec.Command(bin, append([]string{"up", "--state", state, "--dashboard", "off", "--start-timeout", "3m"}, args...)...)
	up.Stdout, up.Stderr = out, out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = up.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = up.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mesh up %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if s, err := cluster.ReadState(state); err == nil && s.LauncherAlive() {
			break
		}
		select {
		case <-exited:
			t.Fatalf("mesh up exited before writing the state file: %v\n%s", waitErr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file after 4 minutes:\n%s", out.String())
		}
	}
	ch, err := cluster.OpenChaos(state)
	if err != nil {
		t.Fatal(err)
	}
	ch.Timeout = time.Minute
	return ch
}

// runRow runs one scenario and fails the test for each check that did not
// hold; the result, times included, goes to the test log.
func runRow(t *testing.T, ch *cluster.Chaos, cfg cluster.ScenarioConfig) cluster.ScenarioResult {
	t.Helper()
	var steps syncBuffer
	cfg.Log = &steps
	if cfg.Limit == 0 {
		cfg.Limit = 3 * time.Minute
	}
	res, err := ch.RunScenario(context.Background(), cfg)
	var b bytes.Buffer
	res.WriteText(&b)
	t.Logf("%s%s", steps.String(), b.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) == 0 {
		t.Fatalf("scenario %s checked nothing", cfg.Name)
	}
	for _, c := range res.Checks {
		if !c.Held {
			t.Errorf("%s: %s", c.What, c.Detail)
		}
	}
	return res
}

// meshArgs are the launch flags of a row's mesh: n nodes, membership, and
// the repairing strategy (Plumtree, with anti-entropy at its default 1 s).
func meshArgs(n int, seed uint64) []string {
	return []string{"--nodes", fmt.Sprint(n), "--seed", fmt.Sprint(seed), "--membership", "--strategy", "plumtree"}
}

// Row: 50 nodes streaming 100 messages/s lose 30% at once (SIGKILL); every
// survivor gets every message survivors publish after the kill, and is
// back within its degree bounds with the survivors connected. Here 20
// nodes at 50 messages/s.
func TestFaultTableKillThirtyPercent(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(20, 21)...)
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "kill", Seed: 21, Rate: 50, Duration: 3 * time.Second})
	if len(res.Faulted) != 6 {
		t.Errorf("killed %v, want 30%% of 20 nodes", res.Faulted)
	}
}

// Row: 20% drop on every link, 10 nodes, 100 messages: every node gets
// every message. Here 50 messages.
func TestFaultTableLoss(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(10, 22)...)
	runRow(t, ch, cluster.ScenarioConfig{Name: "loss", Seed: 22, Messages: 50})
}

// Row: split into halves for 10 s while both sides publish: during the
// split each side holds exactly its own side's messages; after the heal
// every node holds all. 10 nodes, as the row's size: the 10 s are long
// enough for the membership to evict the silent links across the cut, so
// the heal must bring links back as well as messages.
func TestFaultTableSplit(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(10, 23)...)
	runRow(t, ch, cluster.ScenarioConfig{Name: "split", Seed: 23})
}

// Row: 10% of 50 nodes paused (SIGSTOP) for 5 s: the others keep every
// message among themselves meanwhile, and the paused nodes catch up once
// resumed. Here 2 of 20 nodes for 3 s.
func TestFaultTablePause(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(20, 24)...)
	res := runRow(t, ch, cluster.ScenarioConfig{Name: "pause", Seed: 24, Duration: 3 * time.Second})
	if len(res.Faulted) != 2 {
		t.Errorf("paused %v, want 10%% of 20 nodes", res.Faulted)
	}
}

// Row: a node restarted after 10 s down holds every message published
// meanwhile. Here 8 nodes, 4 s down.
func TestFaultTableRestart(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(8, 25)...)
	runRow(t, ch, cluster.ScenarioConfig{Name: "restart", Seed: 25, Duration: 4 * time.Second})
}

// Row: a crashed peer (SIGKILL) is dropped from its peers' active views,
// which are refilled. 8 nodes.
func TestFaultTableCrash(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(8, 26)...)
	runRow(t, ch, cluster.ScenarioConfig{Name: "crash", Seed: 26})
}

// Row: a hung peer (SIGSTOP) is suspected and then evicted by every peer;
// a one-second pause evicts nobody. 8 nodes; the long pause lasts until
// every peer has evicted it, within the limit (3 minutes: a loaded machine
// stretches the membership's timeouts up to ninefold, as it should).
func TestFaultTableHung(t *testing.T) {
	t.Parallel()
	ch := upMesh(t, buildMesh(t), meshArgs(8, 27)...)
	runRow(t, ch, cluster.ScenarioConfig{Name: "hung", Seed: 27, Duration: 3 * time.Minute})
}
