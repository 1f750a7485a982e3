package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/fault"
	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// applyPlan gives every node of m its part of the whole-mesh plan p
// (fault.Plan.NodePlan), through the node's own fault hook: the same
// plan type, and the same Decide, as the simulator's.
func (m *testMesh) applyPlan(p *fault.Plan) {
	m.t.Helper()
	ids := make([]wire.NodeID, len(m.nodes))
	for i, n := range m.nodes {
		ids[i] = n.ID()
	}
	for i, n := range m.nodes {
		if err := n.SetFaults(p.NodePlan(n.ID(), ids)); err != nil {
			m.t.Fatalf("node %d: %v", i, err)
		}
	}
}

// halves is the whole-mesh plan that splits nodes 0..n/2-1 from the rest,
// as mesh sim --partition halves does.
func (m *testMesh) halves(n int) *fault.Plan {
	sides, err := fault.ParseSides("halves", n)
	if err != nil {
		panic(err)
	}
	p := &fault.Plan{Sides: map[wire.NodeID]int{}}
	for k, set := range sides {
		for _, i := range set {
			p.Sides[m.nodes[i].ID()] = k
		}
	}
	return p
}

// halvesConnected returns dials for n nodes in which each half (below
// half, and the rest) is connected on its own (a random spanning tree in
// each), and two random links per node join anything, so that a split
// between the halves leaves each one whole.
func halvesConnected(n, half int, rng *rand.Rand) [][]int {
	dials := make([][]int, n)
	for i := 1; i < n; i++ {
		if i != half {
			base := 0
			if i > half {
				base = half
			}
			dials[i] = append(dials[i], base+rng.IntN(i-base))
		}
		for range 2 {
			if j := rng.IntN(n); j != i && !slices.Contains(dials[i], j) {
				dials[i] = append(dials[i], j)
			}
		}
	}
	dials[half] = append(dials[half], 0)
	return dials
}

// TestFaultPlanSplitHealAntiEntropy splits 120 nodes over memnet in halves
// with one whole-mesh fault.Plan (sides), applied on every node through
// SetFaults while every connection stays up. Messages published on both
// sides during the split stay on their own side: each node holds exactly
// its own side's. Once the plan is cleared, flood sends nothing more for
// them, so only anti-entropy can carry them across: every node must end
// with every message.
func TestFaultPlanSplitHealAntiEntropy(t *testing.T) {
	t.Parallel()
	const nodes, half, perSide = 120, 60, 5
	rng := rand.New(rand.NewPCG(21, 9))
	m := startMesh(t, halvesConnected(nodes, half, rng), func(_ int, c *node.Config) {
		c.Gossip.Strategy = gossip.Flood
		c.Gossip.AntiEntropy = 200 * time.Millisecond
	})
	m.waitLinked()
	m.applyPlan(m.halves(nodes))
	ctx := context.Background()
	var left, right []string
	for k := range perSide {
		a, err := m.nodes[rng.IntN(half)].Publish(ctx, []byte(fmt.Sprintf("left %d", k)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.nodes[half+rng.IntN(half)].Publish(ctx, []byte(fmt.Sprintf("right %d", k)))
		if err != nil {
			t.Fatal(err)
		}
		left, right = append(left, a.ID), append(right, b.ID)
	}
	for i, n := range m.nodes {
		own, other := left, right
		if i >= half {
			own, other = right, left
		}
		for _, id := range own {
			if _, ok := n.Receipt(ctx, id, settle); !ok {
				t.Fatalf("node %d never got %s, published on its own side during the split", i, id)
			}
		}
		for _, id := range other {
			if _, ok := n.Receipt(ctx, id, 0); ok {
				t.Fatalf("node %d got %s from across the split", i, id)
			}
		}
	}
	for i, n := range m.nodes {
		if !m.linkedAsExpected(i, n) {
			t.Fatalf("node %d lost links to the split: a plan's cut keeps connections up", i)
		}
	}
	m.applyPlan(&fault.Plan{})
	for i, n := range m.nodes {
		for _, id := range append(append([]string(nil), left...), right...) {
			if _, ok := n.Receipt(ctx, id, settle); !ok {
				t.Fatalf("node %d never got %s after the heal", i, id)
			}
		}
	}
}
