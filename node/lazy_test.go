package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// frameCount counts, over every node of a mesh, the frames they send by
// kind, from each node's Egress.
type frameCount struct {
	payload, ihave, iwant atomic.Int64
}

func (fc *frameCount) egress(_ int64, _ wire.NodeID, s *gossip.Send) bool {
	switch {
	case s.Msg != nil:
		fc.payload.Add(1)
	case s.Ctl.Kind == wire.FrameIHave:
		fc.ihave.Add(1)
	case s.Ctl.Kind == wire.FrameIWant:
		fc.iwant.Add(1)
	}
	return true
}

// TestLazyMeshDeliversEverything runs 120 nodes over memnet with the lazy
// router and publishes messages from random nodes, one after another:
// every node must get every message.
//
// With the defaults (an eager set of 3 on a mesh of about 8 links a node)
// a message must cost fewer payload frames than flood's one per link
// direction. With an eager set of one peer the push alone runs down a
// single path and misses most nodes: the heartbeat's IHAVE and the IWANT
// answers are what reach them, so IWANTs must have been sent.
func TestLazyMeshDeliversEverything(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		d        int
		messages int
	}{
		{"defaults", 3, 40},
		{"push to one", 1, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const nodes = 120
			rng := rand.New(rand.NewPCG(8, uint64(tc.d)))
			dials := randomConnected(nodes, 3, rng)
			var fc frameCount
			m := startMesh(t, dials, func(_ int, c *node.Config) {
				c.Gossip.Strategy = gossip.Lazy
				c.Gossip.LazyD = tc.d
				c.Egress = fc.egress
			})
			m.waitLinked()

			// One message at a time, from random nodes, each waited for at
			// every node: repair must reach every node the push missed.
			for k := range tc.messages {
				src := rng.IntN(nodes)
				rc, err := m.nodes[src].Publish(context.Background(), []byte(fmt.Sprintf("lazy message %d from node %d", k, src)))
				if err != nil {
					t.Fatalf("publish %d at node %d: %v", k, src, err)
				}
				for i, n := range m.nodes {
					if _, ok := n.Receipt(context.Background(), rc.ID, settle); !ok {
						var dropped float64
						for _, n := range m.nodes {
							dropped += counter(t, n, "gossipmesh_messages_dropped_total")
						}
						t.Fatalf("node %d never got message %d (%s); the nodes' queues dropped %v frames", i, k, rc.ID, dropped)
					}
				}
			}

			perMsg := float64(fc.payload.Load()) / float64(tc.messages)
			flood := float64(2*edges(m.adj) - (nodes - 1))
			t.Logf("payload frames per message %.1f (flood on this graph: %.0f), IHAVE %d, IWANT %d",
				perMsg, flood, fc.ihave.Load(), fc.iwant.Load())
			if tc.d == 1 && fc.iwant.Load() == 0 {
				t.Error("no IWANT was sent: the push alone reached every node, so the test did not exercise repair")
			}
			if perMsg >= flood {
				t.Errorf("%.1f payload frames per message, want fewer than flood's %.0f", perMsg, flood)
			}
		})
	}
}
