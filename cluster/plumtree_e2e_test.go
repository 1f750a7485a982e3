package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/gossip"
)

// TestEndToEndPlumtreeSettlesIntoATree starts 50 real `mesh node` processes
// with --strategy plumtree and publishes 100 messages one after another,
// each at a random node once the last has reached every node: every node
// must get every message, and once the tree has settled (after the first
// 10) each message must cost at most 1.05 x (N-1) payload frames, as the
// nodes' own counts in their receipts say. Flood on the same mesh costs
// 2 x links - (N-1), about five times as many. Fifty nodes, not ten: the
// bound then leaves room for the odd GRAFT that a loaded machine's
// scheduling delay may still set off, where at N=10 it allows no frame
// over 9.
func TestEndToEndPlumtreeSettlesIntoATree(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	const nodes, messages, warmup = 50, 100, 10
	seed := rand.Uint64()%1_000_000 + 1
	t.Logf("seed %d", seed)
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Seed = bin, nodes, seed
	cfg.Strategy = gossip.Plumtree
	cfg.LogDir, cfg.LogLevel = t.TempDir(), "warn"
	cfg.StartTimeout = time.Minute // a loaded machine is slow, not broken
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	m := c.Mesh()
	links := len(c.Topology().Links())

	rng := rand.New(rand.NewPCG(seed, 8))
	limit := 1.05 * float64(nodes-1)
	var early, late, control int
	for k := range messages {
		r, err := m.Propagate(ctx, rng.IntN(nodes), fmt.Sprintf("plumtree e2e %d", k), cluster.PropagateOptions{Wait: 10 * time.Second})
		if err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		if !r.Complete() {
			t.Fatalf("message %d reached %d/%d nodes; missing %v", k, r.Reached, r.Nodes, r.Missing)
		}
		if k < warmup {
			early += r.PayloadFrames
			continue
		}
		late += r.PayloadFrames
		control += r.ControlFrames
		if float64(r.PayloadFrames) > limit {
			t.Errorf("message %d: %d payload frames (RMR %.3f), want at most %.2f once the tree has settled", k, r.PayloadFrames, r.RMR(), limit)
		}
		if r.PayloadFrames < nodes-1 {
			t.Errorf("message %d: %d payload frames reached %d nodes: fewer than the N-1 = %d any delivery takes, so the counts are wrong", k, r.PayloadFrames, nodes, nodes-1)
		}
	}
	settled := messages - warmup
	t.Logf("%d nodes, %d links: %.1f payload frames per message while the tree formed (flood: %d), %.2f after, with %.1f control frames",
		nodes, links, float64(early)/warmup, 2*links-(nodes-1), float64(late)/float64(settled), float64(control)/float64(settled))
}
