package node_test

import (
	"context"
	"testing"

	"gossipmesh/node"
	"gossipmesh/wire"
)

// TestSimultaneousDialKeepsOneLink has two nodes dial each other at the
// same time, many times over: each pair must settle on exactly one
// connection, the one dialed by the lower id, agreed by both ends, and
// carry messages both ways.
func TestSimultaneousDialKeepsOneLink(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		// Alternate which of the two has the lower id.
		lowFirst := round%2 == 0
		m := startMesh(t, [][]int{{1}, {0}}, func(i int, c *node.Config) {
			if !lowFirst {
				c.ID = wire.NodeID(100 - i)
			}
		})
		// Settled means one open connection, and both ends hold a link that
		// one of them dialed. (One end may briefly still hold a link the
		// other has already closed.)
		eventually(t, "one link, agreed by both ends", func() bool {
			a, b := m.nodes[0].Peers(), m.nodes[1].Peers()
			return len(a) == 1 && len(b) == 1 && a[0].Outbound != b[0].Outbound && m.nw.Conns(host(0), host(1)) == 1
		})
		for i, n := range m.nodes {
			other := m.nodes[1-i]
			p := n.Peers()[0]
			if p.ID != other.ID().String() {
				t.Fatalf("round %d: node %d linked to %s, want %s", round, i, p.ID, other.ID())
			}
			if want := n.ID() < other.ID(); p.Outbound != want {
				t.Errorf("round %d: node %d (id %s) kept a link with outbound=%v; the kept link must be the one the lower id dialed", round, i, n.ID(), p.Outbound)
			}
		}
		for i, n := range m.nodes {
			rc, err := n.Publish(context.Background(), []byte("ping"))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.nodes[1-i].Receipt(context.Background(), rc.ID, settle); !ok {
				t.Fatalf("round %d: message from node %d never arrived", round, i)
			}
		}
		if c := m.nw.Conns(host(0), host(1)); c != 1 {
			t.Errorf("round %d: %d connections between the pair after traffic, want 1", round, c)
		}
	}
}
