package node_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// ackProtocol runs the gossip core and, on every first delivery, answers
// the sender with a PRUNE control frame; it counts the control frames it
// is stepped with. It is a second protocol on the unchanged runtime.
type ackProtocol struct {
	gossip.Protocol
	mu       sync.Mutex
	controls map[wire.NodeID]int
}

func (a *ackProtocol) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	if f.Ctl != nil {
		a.mu.Lock()
		if f.Ctl.Kind == wire.FramePrune && f.Ctl.Reason == wire.PruneOptimize {
			a.controls[from]++
		}
		a.mu.Unlock()
	}
	start := len(out.Events)
	a.Protocol.Step(now, from, f, out)
	for _, e := range out.Events[start:] {
		if e.Kind == gossip.EventDelivered {
			out.SendControl(from, &wire.Control{Kind: wire.FramePrune, Reason: wire.PruneOptimize})
		}
	}
}

func (a *ackProtocol) count(from wire.NodeID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.controls[from]
}

// TestRuntimeDrivesAnyProtocol: the node runs a protocol it is handed
// through Config.NewProtocol, and the control frames that protocol sends
// cross real links, encoded and decoded, into the other node's protocol.
// Every send passes the node's Egress, control frames included.
func TestRuntimeDrivesAnyProtocol(t *testing.T) {
	protos := make([]*ackProtocol, 2)
	var mu sync.Mutex
	egress := map[wire.FrameType]int{}
	m := startMesh(t, [][]int{nil, {0}}, func(i int, c *node.Config) {
		c.NewProtocol = func(cfg gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error) {
			core, err := gossip.New(cfg, id, rng)
			protos[i] = &ackProtocol{Protocol: core, controls: map[wire.NodeID]int{}}
			return protos[i], err
		}
		if i == 0 {
			c.Egress = func(_ int64, _ wire.NodeID, s *gossip.Send) bool {
				mu.Lock()
				defer mu.Unlock()
				if s.Ctl != nil {
					egress[s.Ctl.Kind]++
				} else {
					egress[wire.FrameMessage]++
				}
				return true
			}
		}
	})
	m.waitLinked()
	const msgs = 5
	for range msgs {
		rc, err := m.nodes[0].Publish(context.Background(), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.nodes[1].Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("node 1 never got %s", rc.ID)
		}
	}
	eventually(t, "node 0's protocol to get a PRUNE per delivery at node 1", func() bool {
		return protos[0].count(m.nodes[1].ID()) == msgs
	})
	mu.Lock()
	defer mu.Unlock()
	if egress[wire.FrameMessage] != msgs || egress[wire.FramePrune] != 0 {
		t.Errorf("node 0's egress saw %v, want %d messages and no control frame (node 0 delivers none)", egress, msgs)
	}
}

// TestEgressDropsSends: what a node's Egress refuses never leaves it. On a
// line 0-1-2 where node 1's egress drops everything to node 2, node 2
// gets nothing, while node 1 gets every message.
func TestEgressDropsSends(t *testing.T) {
	var mu sync.Mutex
	dropped := 0
	node2 := node.KeyForTest(3).ID() // startMesh gives node i test key i+1
	m := startMesh(t, [][]int{nil, {0}, {1}}, func(i int, c *node.Config) {
		if i == 1 {
			c.Egress = func(_ int64, _ wire.NodeID, s *gossip.Send) bool {
				if s.To != node2 {
					return true
				}
				mu.Lock()
				dropped++
				mu.Unlock()
				return false
			}
		}
	})
	m.waitLinked()
	var ids []string
	for range 3 {
		rc, err := m.nodes[0].Publish(context.Background(), []byte("y"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	for _, id := range ids {
		if _, ok := m.nodes[1].Receipt(context.Background(), id, settle); !ok {
			t.Fatalf("node 1 never got %s", id)
		}
	}
	eventually(t, "node 1's egress to drop a copy of each message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return dropped == len(ids)
	})
	for _, id := range ids {
		if _, ok := m.nodes[2].Receipt(context.Background(), id, 0); ok {
			t.Errorf("node 2 got %s through a dropping egress", id)
		}
	}
}
