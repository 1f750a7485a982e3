package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// gatedProto records the origin of every message frame it is handed, in
// order, and, while shut, holds the loop at the first one until open is
// closed: a node whose loop has fallen far behind its readers.
type gatedProto struct {
	gossip.Protocol
	shut    chan struct{} // closed: hold the loop at the next message
	open    chan struct{} // closed: let it go
	holding chan struct{} // closed once the loop is held
	once    sync.Once
	mu      sync.Mutex
	order   []wire.NodeID
}

func (g *gatedProto) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	if f.Msg != nil {
		select {
		case <-g.shut:
			g.once.Do(func() { close(g.holding) })
			<-g.open
		default:
		}
		g.mu.Lock()
		g.order = append(g.order, f.Msg.Origin)
		g.mu.Unlock()
	}
	g.Protocol.Step(now, from, f, out)
}

// TestSpamFloodDoesNotStarveHonestFrames: while a node's loop is held up,
// a peer spamming valid messages of its own at 20,000 a second fills at
// most its share of the node's inbox (a sixteenth, 256 frames), so the
// messages an honest peer sends meanwhile are handled behind at most
// that many of the spammer's, none is shed as stale, and every one is
// delivered. Scoring is off, so that no ban cuts the flood short: what is
// measured is the queue.
func TestSpamFloodDoesNotStarveHonestFrames(t *testing.T) {
	t.Parallel()
	g := &gatedProto{shut: make(chan struct{}), open: make(chan struct{}), holding: make(chan struct{})}
	// 0 hears the spammer, 1, and the honest publisher, 2.
	m := startMesh(t, [][]int{nil, {0}, {0}}, func(i int, c *node.Config) {
		c.Scoring = nil
		if i == 0 {
			// However long the loop is held (a loaded machine), nothing
			// it holds goes stale meanwhile: what is measured is the order.
			c.MaxQueueDelay = time.Minute
			c.NewProtocol = func(cfg gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error) {
				core, err := gossip.New(cfg, id, rng)
				g.Protocol = core
				return g, err
			}
		}
	})
	m.waitLinked()
	ctx := context.Background()
	n, spammer, honest := m.nodes[0], m.nodes[1], m.nodes[2]
	close(g.shut)
	if _, err := spammer.SetAdversary(ctx, "spam=20000"); err != nil {
		t.Fatal(err)
	}
	<-g.holding
	// Node 0's metrics wait for its loop; the spammer's do not.
	eventually(t, "the spammer to send 5,000 messages", func() bool {
		return series(t, spammer, "gossipmesh_adversary_actions_total", map[string]string{"kind": "spammed"}) >= 5000
	})
	var ids []string
	for i := range 5 {
		rc, err := honest.Publish(ctx, []byte(fmt.Sprint("honest ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	// Not needed for the check (frames that come later queue later, behind
	// no more of the spammer's), only to let them reach the reader first.
	time.Sleep(100 * time.Millisecond)
	close(g.open)
	for _, id := range ids {
		if _, ok := n.Receipt(ctx, id, 30*time.Second); !ok {
			t.Fatalf("node 0 lacks honest message %s", id)
		}
	}
	if _, err := spammer.SetAdversary(ctx, ""); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	order := slices.Clone(g.order)
	g.mu.Unlock()
	first := slices.Index(order, honest.ID())
	if first < 0 {
		t.Fatal("node 0's protocol was never handed the honest messages")
	}
	if first > 256+1 {
		t.Errorf("the first honest message was handled behind %d of the spammer's frames, want at most its share of 256", first)
	}
	if got := series(t, n, "gossipmesh_dropped_total", map[string]string{"queue": "inbox", "reason": "stale"}); got != 0 {
		t.Errorf("node 0 shed %v frames from its inbox as stale", got)
	}
}
