package score

import (
	"fmt"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// TestOverBudgetOriginIsBannedRelaysAreNot: a peer that publishes valid,
// signed messages far past the per-origin budget is banned by each of its
// neighbours, while the honest nodes that relayed what their own budget
// let through, and whose copies other nodes refused for the same budget,
// are never penalised; honest messages keep reaching everyone.
func TestOverBudgetOriginIsBannedRelaysAreNot(t *testing.T) {
	for _, st := range []gossip.Strategy{gossip.Flood, gossip.Plumtree} {
		t.Run(string(st), func(t *testing.T) {
			n := newTestNet(t, 3, 0)
			cfg := signedTestConfig()
			cfg.Strategy = st
			cfg.OriginRate, cfg.OriginBurst = 100, 50
			auth := gossip.NewModelAuth(1) // the key of every node, the spammer's too
			honest := ids(1, 8)
			for _, id := range honest {
				n.add(id, cfg, DefaultParams())
			}
			n.ring(honest)
			const spammer = 99
			n.raw[spammer] = true
			victims := honest[:3]
			for _, id := range victims {
				n.link(spammer, id)
			}
			n.run(100 * time.Millisecond)
			// 1,000 valid messages a second to each neighbour, a different
			// one to each, so that the neighbours relay different messages
			// and the others get more of the spammer's than their budget
			// takes, from honest relays; for 2 s, while the honest nodes
			// publish one message each 100 ms.
			var seq uint64
			var mine []wire.MsgID
			for i := range 2000 {
				for _, id := range victims {
					seq++
					body := []byte(fmt.Sprintf("spam %d", seq))
					m := &wire.Message{ID: wire.ComputeMsgID(spammer, seq, body), Origin: spammer, Seq: seq, Hop: 1, PublishedAt: n.now, Body: body}
					a, err := auth.Sign(spammer, m)
					if err != nil {
						t.Fatal(err)
					}
					m.Auth = a
					n.send(spammer, id, gossip.Frame{Msg: m})
				}
				if i%100 == 0 {
					p := honest[len(mine)%len(honest)]
					m, err := n.nodes[p].Publish(n.now, []byte(fmt.Sprintf("honest %d", len(mine))), &n.out)
					if err != nil {
						t.Fatal(err)
					}
					n.handle(p)
					mine = append(mine, m.ID)
				}
				n.run(time.Millisecond)
			}
			n.run(3 * time.Second)
			relayRefused := uint64(0)
			for _, id := range honest {
				g := n.nodes[id]
				bans := g.Bans(n.now)
				isVictim := id <= victims[len(victims)-1]
				switch {
				case isVictim && (len(bans) != 1 || bans[0].Peer != spammer || bans[0].Reason != "behaviour"):
					t.Errorf("neighbour %v bans %+v, want the spammer for behaviour", id, bans)
				case !isVictim && len(bans) != 0:
					t.Errorf("node %v, no neighbour of the spammer, bans %+v", id, bans)
				}
				if bp := g.Stats().BrokenPromises; bp != 0 {
					t.Errorf("node %v counts %d broken promises: a copy refused for its origin's budget was delivered all the same", id, bp)
				}
				if isVictim && g.Stats().OverBudget == 0 {
					t.Errorf("neighbour %v counted no over-budget copies from the spammer", id)
				}
				for _, ps := range g.Scores(n.now) {
					if ps.Score < 0 {
						t.Errorf("node %v scores honest peer %v at %.2f: a relay was charged", id, ps.Peer, ps.Score)
					}
				}
				os, ok := g.Inner().(*gossip.Core).OriginStats()
				if !ok {
					t.Fatalf("node %v keeps no origin budget", id)
				}
				relayRefused += os.Ignored - os.Direct
				for _, mid := range mine {
					if !n.got[id][mid] {
						t.Errorf("node %v lacks honest message %v", id, mid)
					}
				}
			}
			if relayRefused == 0 {
				t.Error("no relayed copy was refused for the budget: the test did not exercise relays")
			}
		})
	}
}

// TestOverBudgetAnswerKeepsThePromise: a peer that answers an IWANT with
// the message asked for has kept its promise even when the copy is
// refused for its origin's budget; it is not the peer's fault.
func TestOverBudgetAnswerKeepsThePromise(t *testing.T) {
	n := newTestNet(t, 4, 0)
	cfg := signedTestConfig()
	cfg.Strategy = gossip.Lazy
	cfg.OriginRate, cfg.OriginBurst = 0.001, 1
	auth := gossip.NewModelAuth(1)
	const node, relay, origin = 1, 2, 50
	g := n.add(node, cfg, DefaultParams())
	n.raw[relay] = true
	n.link(node, relay)
	msg := func(seq uint64) *wire.Message {
		body := []byte(fmt.Sprint("m", seq))
		m := &wire.Message{ID: wire.ComputeMsgID(origin, seq, body), Origin: origin, Seq: seq, Hop: 2, PublishedAt: n.now, Body: body}
		a, err := auth.Sign(origin, m)
		if err != nil {
			t.Fatal(err)
		}
		m.Auth = a
		return m
	}
	n.run(10 * time.Millisecond)
	for seq := uint64(1); seq <= 20; seq++ {
		m := msg(seq)
		before := len(n.toRaw[relay])
		n.send(relay, node, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}})
		n.run(5 * time.Millisecond)
		asked := false
		for _, fl := range n.toRaw[relay][before:] {
			asked = asked || (fl.f.Ctl != nil && fl.f.Ctl.Kind == wire.FrameIWant)
		}
		if !asked {
			continue // the router asks once per id; one that it did not ask for makes no promise
		}
		n.send(relay, node, gossip.Frame{Msg: m})
		n.run(5 * time.Millisecond)
	}
	os, _ := g.Inner().(*gossip.Core).OriginStats()
	if os.Ignored == 0 {
		t.Fatalf("no copy was refused for the budget (stats %+v): the test exercised nothing", os)
	}
	n.run(10 * time.Second) // past every promise's deadline
	if st := g.Stats(); st.BrokenPromises != 0 {
		t.Errorf("%d promises counted broken, %d copies refused for the budget: the relay was blamed for our budget", st.BrokenPromises, os.Ignored)
	}
}
