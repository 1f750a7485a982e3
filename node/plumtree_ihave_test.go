package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/node"
)

// TestPlumtreeIHaveFramesPerInterval: with the runtime's defaults a lazy
// link carries one IHAVE frame per node.RuntimeIHaveInterval while
// messages flow, not one per message or per 10 ms. A triangle settles
// into a tree with one lazy link; 400 messages published over about a
// second from one node cost each end of that link at most one IHAVE frame per
// interval of the time they took, plus the last flush.
func TestPlumtreeIHaveFramesPerInterval(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{{1, 2}, {2}, {}}, func(_ int, c *node.Config) {
		c.Gossip.Strategy = gossip.Plumtree
		c.Gossip.AntiEntropy = -1
		c.Gossip.PlumtreeGraftTimeout = 5 * time.Second // a loaded machine must not re-form the tree
	})
	m.waitLinked()
	pub := func(k int) string {
		rc, err := m.nodes[0].Publish(context.Background(), []byte(fmt.Sprintf("ihave %d", k)))
		if err != nil {
			t.Fatal(err)
		}
		return rc.ID
	}
	first := pub(-1)
	for i, n := range m.nodes {
		if _, ok := n.Receipt(context.Background(), first, settle); !ok {
			t.Fatalf("node %d never got the first message", i)
		}
	}
	ihaves := func() float64 {
		s := 0.0
		for _, n := range m.nodes {
			s += metricSum(t, n, "gossipmesh_control_frames_sent_total", "kind", "ihave")
		}
		return s
	}
	eventually(t, "the tree formed: two lazy link ends", func() bool {
		lazy := 0.0
		for _, n := range m.nodes {
			lazy += metricSum(t, n, "gossipmesh_plumtree_links", "kind", "lazy")
		}
		return lazy == 2
	})
	before := ihaves()
	start := time.Now()
	var last string
	for k := range 400 {
		last = pub(k)
		time.Sleep(2500 * time.Microsecond) // a steady flow for about a second
	}
	elapsed := time.Since(start)
	for i, n := range m.nodes {
		if _, ok := n.Receipt(context.Background(), last, settle); !ok {
			t.Fatalf("node %d never got the last message", i)
		}
	}
	time.Sleep(2 * node.RuntimeIHaveInterval) // the last flush
	sent := ihaves() - before
	// Two lazy link ends (nodes 1 and 2 hold each other lazy; node 0
	// pushes to both), each at most one frame per interval, plus the
	// flush at each end that the last messages leave.
	bound := 2 * (float64(elapsed/node.RuntimeIHaveInterval) + 2)
	if sent > bound {
		t.Errorf("%v IHAVE frames for 400 messages in %v, want at most %v (one per %v per lazy link end)", sent, elapsed, bound, node.RuntimeIHaveInterval)
	}
	t.Logf("%v IHAVE frames for 400 messages in %v", sent, elapsed)
}
