package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/node"
)

// TestAntiEntropyHealsPartitions runs 120 nodes over memnet under every
// router with anti-entropy on, and cuts the mesh in two (every link
// between the halves) while messages are published on both sides; then it
// heals the cut and publishes more. Every node must end up with every
// message: those published during the cut reach the far side only by a
// repair, since every push across was lost. Under flood and lazy that
// repair is anti-entropy's; under plumtree it may also be the router's
// own: the cut reset the links across, and a link that comes back up
// carries an IHAVE of what its end stored lately, which the far side
// grafts at once, often before its next anti-entropy pull.
func TestAntiEntropyHealsPartitions(t *testing.T) {
	t.Parallel()
	for _, strategy := range gossip.Strategies() {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			testAntiEntropyHeals(t, strategy)
		})
	}
}

func testAntiEntropyHeals(t *testing.T, strategy gossip.Strategy) {
	const nodes, half, perPhase = 120, 60, 10
	rng := rand.New(rand.NewPCG(11, uint64(len(strategy))))
	m := startMesh(t, randomConnected(nodes, 2, rng), func(_ int, c *node.Config) {
		c.Gossip.Strategy = strategy
		c.Gossip.Fanout = 3
		c.Gossip.AntiEntropy = 200 * time.Millisecond
	})
	m.waitLinked()
	var ids []string
	publish := func(phase string) {
		for k := range perPhase {
			src := rng.IntN(nodes)
			rc, err := m.nodes[src].Publish(context.Background(), []byte(fmt.Sprintf("%s %d from %d", phase, k, src)))
			if err != nil {
				t.Fatalf("%s: publish %d at node %d: %v", phase, k, src, err)
			}
			ids = append(ids, rc.ID)
		}
	}
	publish("before the cut")
	for a := range half {
		for b := half; b < nodes; b++ {
			m.nw.Cut(host(a), host(b))
		}
	}
	publish("during the cut")
	// Let the messages published during the cut spread over their own
	// side; the other side must lack some of them.
	time.Sleep(300 * time.Millisecond)
	missing := 0
	for _, n := range m.nodes {
		for _, id := range ids[perPhase:] {
			if _, ok := n.Receipt(context.Background(), id, 0); !ok {
				missing++
			}
		}
	}
	if missing == 0 {
		t.Fatal("every node got every message published during the cut: the cut did not cut")
	}
	m.nw.HealAll()
	publish("after the heal")
	for i, n := range m.nodes {
		for k, id := range ids {
			if _, ok := n.Receipt(context.Background(), id, settle); !ok {
				t.Fatalf("node %d never got message %d (%s)", i, k, id)
			}
		}
	}
	// The repairs show in the metrics.
	var pulls, repaired, grafts float64
	for _, n := range m.nodes {
		pulls += metricSum(t, n, "gossipmesh_antientropy_pulls_total", "kind", "sent")
		repaired += metricSum(t, n, "gossipmesh_antientropy_repairs_total", "direction", "sent")
		grafts += metricSum(t, n, "gossipmesh_control_frames_sent_total", "kind", "graft")
	}
	if pulls == 0 {
		t.Errorf("metrics count no anti-entropy pulls sent")
	}
	switch {
	case strategy == gossip.Plumtree && repaired+grafts == 0:
		t.Errorf("metrics count neither anti-entropy repairs nor GRAFTs sent: how did the far side get the cut's messages?")
	case strategy != gossip.Plumtree && repaired == 0:
		t.Errorf("metrics count %v pulls sent and no repairs sent, want some of each", pulls)
	}
}
