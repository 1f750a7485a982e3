package node_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// liar is a protocol that runs an honest core and, whenever its node
// publishes a body starting with "inject", also sends every peer the
// forgeries that forge builds from the first message it got from victim:
// real frames, through the node runtime's encoder, to honest nodes.
type liar struct {
	gossip.Protocol
	victim wire.NodeID
	honest *wire.Message
	peers  []wire.NodeID
	forge  func(honest *wire.Message, now int64) []*wire.Message
	sent   int
}

func (l *liar) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	start := len(out.Events)
	l.Protocol.Step(now, from, f, out)
	for _, e := range out.Events[start:] {
		if e.Kind == gossip.EventDelivered && e.Msg.Origin == l.victim && l.honest == nil {
			l.honest = e.Msg
		}
	}
}

func (l *liar) PeerUp(now int64, p wire.NodeID, out *gossip.Output) {
	l.peers = append(l.peers, p)
	l.Protocol.PeerUp(now, p, out)
}

func (l *liar) Publish(now int64, body []byte, out *gossip.Output) (*wire.Message, error) {
	m, err := l.Protocol.Publish(now, body, out)
	if err != nil || !bytes.HasPrefix(body, []byte("inject")) || l.honest == nil {
		return m, err
	}
	for _, f := range l.forge(l.honest, now) {
		for _, p := range l.peers {
			out.Sends = append(out.Sends, gossip.Send{To: p, Frame: gossip.Frame{Msg: f}})
			l.sent++
		}
	}
	return m, nil
}

func seededKey(t *testing.T, i int) *identity.Key {
	t.Helper()
	k, err := identity.FromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestForgeriesThroughFrames: a liar linked to two of four honest nodes
// (a ring) sends each of them every kind of forgery of a message that
// node 0 published (tampered body, a recomputed id, a forged origin under
// its own key, a bad signature, unsigned, a freshened publish time, a
// replay of the message and of an old one node 0 signed long ago) over
// real frames. Every injection is counted; no honest node delivers any,
// each rejects them by reason, keeps its link to the liar, and still
// delivers honest traffic, node 0's message with its honest body.
func TestForgeriesThroughFrames(t *testing.T) {
	t.Parallel()
	const honestN = 4
	nw := memnet.New()
	keys := make([]*identity.Key, honestN+1)
	for i := range keys {
		keys[i] = seededKey(t, 40+i)
	}
	victim := keys[0]
	var lie *liar
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodes []*node.Node
	for i := range honestN + 1 {
		cfg := node.DefaultConfig()
		cfg.Key = keys[i]
		cfg.Seed = uint64(i + 1)
		cfg.Transport = nw.Host(host(i))
		cfg.Listen = addr(i)
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 100*time.Millisecond
		// No peer score: this test is about what the core rejects and the
		// link the loop keeps; the score would ban the liar.
		cfg.Scoring = nil
		switch {
		case i == honestN: // the liar dials nodes 0 and 2
			cfg.Candidates, cfg.Peers = []string{addr(0), addr(2)}, 2
			cfg.NewProtocol = func(g gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error) {
				c, err := gossip.New(g, id, rng)
				lie = &liar{Protocol: c, victim: victim.ID(), forge: func(h *wire.Message, now int64) []*wire.Message {
					return forgeMessages(t, h, victim, keys[honestN], now)
				}}
				return lie, err
			}
		case i > 0: // a ring
			cfg.Candidates, cfg.Peers = []string{addr(i - 1)}, 1
			if i == honestN-1 {
				cfg.Candidates, cfg.Peers = []string{addr(i - 1), addr(0)}, 2
			}
		}
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		go n.Run(ctx)
	}
	defer func() {
		cancel()
		for _, n := range nodes {
			<-n.Done()
		}
	}()
	liarNode := nodes[honestN]
	eventually(t, "the ring and the liar's two links", func() bool {
		for i, n := range nodes {
			want := 2
			if i == 0 || i == 2 {
				want = 3
			}
			if len(n.Peers()) != want {
				return false
			}
		}
		return true
	})
	honest, err := nodes[0].Publish(ctx, []byte("honest"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the honest message at every node", func() bool {
		for _, n := range nodes {
			if _, ok := n.Receipt(ctx, honest.ID, 0); !ok {
				return false
			}
		}
		return true
	})
	if _, err := liarNode.Publish(ctx, []byte("inject")); err != nil {
		t.Fatal(err)
	}
	// The liar's own honest publish after the forgeries is the marker:
	// its frames follow them on each link.
	marker, err := liarNode.Publish(ctx, []byte("inject marker"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the liar's marker at every honest node", func() bool {
		for _, n := range nodes[:honestN] {
			if _, ok := n.Receipt(ctx, marker.ID, 0); !ok {
				return false
			}
		}
		return true
	})
	injected := lie.sent
	kinds := len(forgeMessages(t, &wire.Message{Origin: victim.ID(), Auth: &wire.Auth{}}, victim, keys[honestN], 0))
	if injected != 2*2*kinds {
		t.Fatalf("the liar sent %d forgeries, want %d (%d kinds, twice, to 2 peers)", injected, 4*kinds, kinds)
	}
	for i, n := range nodes[:honestN] {
		for _, r := range n.Recent(1000) {
			if r.Origin == victim.ID().String() && r.ID != honest.ID {
				t.Errorf("node %d delivered a forgery %s from the victim", i, r.ID)
			}
		}
		got, _ := n.Receipt(ctx, honest.ID, 0)
		if got.Body != "honest" {
			t.Errorf("node %d holds %q for the honest message", i, got.Body)
		}
	}
	// Node 2 checks them all; node 0, the victim, refuses what claims to
	// be its own and is not this boot's, before any crypto.
	var rejected float64
	for _, c := range []struct {
		node           int
		metric, reason string
	}{
		{2, "gossipmesh_rejected_total", "invalid_signature"},
		{2, "gossipmesh_rejected_total", "id_mismatch"},
		{2, "gossipmesh_rejected_total", "unsigned"},
		{2, "gossipmesh_refused_total", "replay"},
		{0, "gossipmesh_refused_total", "forged_origin"},
	} {
		v := counterValue(t, nodes[c.node].Registry(), c.metric, c.reason)
		if v == 0 {
			t.Errorf("node %d counted no %s{reason=%q}", c.node, c.metric, c.reason)
		}
		rejected += v
	}
	for _, i := range []int{0, 2} {
		if len(nodes[i].Peers()) != 3 {
			t.Errorf("node %d dropped a link over forgeries (the peer score decides, and it is off)", i)
		}
	}
	t.Logf("%d forgeries injected over real frames, %v rejected or refused by reason, the rest duplicates; 0 delivered", injected, rejected)
}

// forgeMessages builds every kind of forgery of h (node victim's message,
// as a peer received it) that mallory can make at now.
func forgeMessages(t *testing.T, h *wire.Message, victim, mallory *identity.Key, now int64) []*wire.Message {
	t.Helper()
	clone := func() *wire.Message { c := *h; c.Hop = 1; return &c }
	var out []*wire.Message
	tampered := clone()
	tampered.Body = []byte("tampered")
	out = append(out, tampered)
	reID := clone()
	reID.Body = []byte("tampered, id recomputed")
	reID.ID = wire.ComputeMsgID(reID.Origin, reID.Seq, reID.Body)
	out = append(out, reID)
	forged := &wire.Message{Origin: victim.ID(), Seq: h.Seq + 1000, Hop: 1, PublishedAt: now, Body: []byte("forged")}
	forged.ID = wire.ComputeMsgID(forged.Origin, forged.Seq, forged.Body)
	own := *forged
	own.Origin = mallory.ID()
	a, err := identity.SignMessage(mallory, &own)
	if err != nil {
		t.Fatal(err)
	}
	forged.Auth = a
	out = append(out, forged)
	badSig := clone()
	if h.Auth != nil {
		bs := *h.Auth
		bs.Sig[7] ^= 0x40
		badSig.Auth = &bs
	}
	badSig.Seq, badSig.Body = h.Seq+2000, []byte("bad signature")
	badSig.ID = wire.ComputeMsgID(badSig.Origin, badSig.Seq, badSig.Body)
	out = append(out, badSig)
	unsigned := &wire.Message{Origin: victim.ID(), Seq: h.Seq + 3000, Hop: 1, PublishedAt: now, Body: []byte("unsigned")}
	unsigned.ID = wire.ComputeMsgID(unsigned.Origin, unsigned.Seq, unsigned.Body)
	out = append(out, unsigned)
	fresh := clone()
	fresh.PublishedAt = now
	out = append(out, fresh)
	out = append(out, clone()) // a replay inside the window: a duplicate
	old := &wire.Message{Origin: victim.ID(), Seq: 1, Hop: 1, PublishedAt: now - int64(3*time.Minute), Body: []byte("signed long ago")}
	old.ID = wire.ComputeMsgID(old.Origin, old.Seq, old.Body)
	if old.Auth, err = identity.SignMessage(victim, old); err != nil {
		t.Fatal(err)
	}
	out = append(out, old)
	for _, m := range out {
		if strings.HasPrefix(string(m.Body), "honest") && m.ID != h.ID {
			t.Fatal("a forgery carries the honest body under another id")
		}
	}
	return out
}
