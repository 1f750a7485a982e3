package maelstrom

// End-to-end tests of the harness: build cmd/mesh once, run real `mesh
// maelstrom` processes over their stdin/stdout pipes (no ports), and check
// outcomes, never speed.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gossipmesh/gossip"
)

var meshBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gossipmesh-maelstrom-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mesh")
	out, err := exec.Command("go", "build", "-o", bin, "gossipmesh/cmd/mesh").CombinedOutput()
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

// syncBuffer collects the nodes' logs for a failing test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runHarness(t *testing.T, cfg HarnessConfig) Report {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Binary, cfg.Stderr = buildMesh(t), logs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := RunHarness(ctx, cfg)
	if err != nil {
		t.Fatalf("RunHarness: %v\nnode logs:\n%s", err, logs.String())
	}
	t.Logf("%d nodes, latency %v, rate %v, %v, args %q: ops %d (%d broadcasts, %d reads), server msgs %d, msgs-per-op %.2f, stable latency median %.0f ms max %.0f ms, lost %d, dropped %d in %d partitions",
		cfg.Nodes, cfg.Latency, cfg.Rate, cfg.Time, cfg.NodeArgs, r.Ops, r.Broadcasts, r.Reads, r.ServerMsgs, r.MsgsPerOp,
		r.StableMedianMS, r.StableMaxMS, r.LostCount, r.Dropped, r.Partitions)
	if r.FinalReadsMissing != 0 || r.Unexpected != 0 || r.Failed != 0 {
		t.Errorf("final reads missing %d, unexpected values %d, failed ops %d; want 0 each\nnode logs:\n%s",
			r.FinalReadsMissing, r.Unexpected, r.Failed, logs.String())
	}
	if r.Broadcasts == 0 || r.Reads == 0 || r.Ops != r.Broadcasts+r.Reads || r.Acked != r.Broadcasts {
		t.Errorf("ops %d, broadcasts %d (acked %d), reads %d: the workload did not run as asked", r.Ops, r.Broadcasts, r.Acked, r.Reads)
	}
	return r
}

// Five nodes without partitions and without anti-entropy: nothing lost,
// and flood on the tree overlay sends exactly N−1 messages per broadcast.
func TestHarnessFiveNodes(t *testing.T) {
	t.Parallel()
	cfg := DefaultHarnessConfig()
	cfg.Nodes, cfg.Rate, cfg.Time, cfg.Settle = 5, 20, 3*time.Second, 2*time.Second
	cfg.NodeArgs = []string{"--anti-entropy", "off"}
	r := runHarness(t, cfg)
	if r.LostCount != 0 {
		t.Errorf("lost %v, want none", r.Lost)
	}
	if want := r.Broadcasts * (cfg.Nodes - 1); r.ServerMsgs != want {
		t.Errorf("server msgs %d, want %d (N-1 per broadcast on a tree)", r.ServerMsgs, want)
	}
}

// Five nodes under random partitions, with the node's defaults (which
// turn anti-entropy on) and every strategy: the partitions cut messages,
// and once healed anti-entropy repairs every value they cut off, so the
// final reads lose none.
func TestHarnessPartitions(t *testing.T) {
	t.Parallel()
	for _, strategy := range gossip.Strategies() {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			cfg := DefaultHarnessConfig()
			cfg.Nodes, cfg.Rate, cfg.Time, cfg.Settle = 5, 20, 6*time.Second, 4*time.Second
			cfg.Partitions, cfg.PartitionEvery = true, time.Second
			if strategy != gossip.Flood {
				cfg.NodeArgs = []string{"--strategy", string(strategy)}
			}
			r := runHarness(t, cfg)
			if r.Partitions < 1 || r.Dropped < 1 {
				t.Errorf("%d partitions dropped %d messages: want at least one of each", r.Partitions, r.Dropped)
			}
			if r.LostCount != 0 {
				t.Errorf("lost %d of %d acknowledged values under partitions: %v", r.LostCount, r.Acked, r.Lost)
			}
		})
	}
}

// The 3d shape in short: 25 nodes at 100 ms with the node's defaults
// (anti-entropy on). It reports msgs-per-op and asserts only what is
// exact: nothing lost, and at least the N−1 messages per broadcast of the
// tree (anti-entropy's digests come on top).
func TestHarness25Nodes(t *testing.T) {
	t.Parallel()
	cfg := DefaultHarnessConfig()
	cfg.Nodes, cfg.Rate, cfg.Time, cfg.Settle = 25, 50, 5*time.Second, 2*time.Second
	r := runHarness(t, cfg)
	if r.LostCount != 0 {
		t.Errorf("lost %v, want none", r.Lost)
	}
	if least := r.Broadcasts * (cfg.Nodes - 1); r.ServerMsgs < least {
		t.Errorf("server msgs %d, want at least %d (N-1 per broadcast on a tree)", r.ServerMsgs, least)
	}
	t.Logf("msgs-per-op %.2f", r.MsgsPerOp)
}

// With --batch each node sends at most one message per destination per
// period (plus one flush at exit), whatever the load: a bound on count,
// not on time.
func TestHarnessBatch(t *testing.T) {
	t.Parallel()
	cfg := DefaultHarnessConfig()
	batch := 500 * time.Millisecond
	cfg.Nodes, cfg.Rate, cfg.Time, cfg.Settle = 5, 50, 3*time.Second, 2*time.Second
	cfg.NodeArgs = []string{"--batch", batch.String()}
	start := time.Now()
	r := runHarness(t, cfg)
	elapsed := time.Since(start)
	if r.LostCount != 0 {
		t.Errorf("lost %v, want none", r.Lost)
	}
	links := 2 * (cfg.Nodes - 1) // directed links of the star
	periods := int(elapsed/batch) + 2
	if bound := links * periods; r.ServerMsgs > bound {
		t.Errorf("server msgs %d over %v: more than one per link per %v (%d)", r.ServerMsgs, elapsed, batch, bound)
	}
	if unbatched := r.Broadcasts * (cfg.Nodes - 1); r.ServerMsgs >= unbatched {
		t.Errorf("server msgs %d, not fewer than the %d of unbatched flood", r.ServerMsgs, unbatched)
	}
}

func TestHarnessConfigValidate(t *testing.T) {
	good := DefaultHarnessConfig()
	good.Binary = "mesh"
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mut := range map[string]func(*HarnessConfig){
		"no binary":     func(c *HarnessConfig) { c.Binary = "" },
		"zero nodes":    func(c *HarnessConfig) { c.Nodes = 0 },
		"too many":      func(c *HarnessConfig) { c.Nodes = MaxHarnessNodes + 1 },
		"zero rate":     func(c *HarnessConfig) { c.Rate = 0 },
		"zero time":     func(c *HarnessConfig) { c.Time = 0 },
		"partition 1":   func(c *HarnessConfig) { c.Partitions, c.Nodes = true, 1 },
		"zero period":   func(c *HarnessConfig) { c.Partitions, c.PartitionEvery = true, 0 },
		"neg latency":   func(c *HarnessConfig) { c.Latency = -1 },
		"zero timeout":  func(c *HarnessConfig) { c.OpTimeout = 0 },
		"negative wait": func(c *HarnessConfig) { c.Settle = -1 },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
