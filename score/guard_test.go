package score

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// testNet drives guarded gossip cores in virtual time, as a driver does:
// every send goes through a lossy FIFO with a fixed latency, every
// Disconnect cuts the link at both ends (PeerDown on each). Nodes in raw
// are not protocols: the test writes their frames itself (attackers), and
// what is sent to them is counted.
type testNet struct {
	t      *testing.T
	now    int64
	rng    *rand.Rand
	loss   float64
	nodes  map[wire.NodeID]*Guard
	order  []wire.NodeID
	raw    map[wire.NodeID]bool
	links  map[[2]wire.NodeID]bool
	queue  []flight
	out    gossip.Output
	got    map[wire.NodeID]map[wire.MsgID]bool
	toRaw  map[wire.NodeID][]flight // frames that reached each raw node
	cuts   []gossip.Disconnect
	cutBy  map[wire.NodeID][]wire.NodeID // who disconnected whom
	burst  func(*testNet)                // called every virtual second
	lat    int64
	frames int
}

type flight struct {
	from, to wire.NodeID
	at       int64
	f        gossip.Frame
}

func newTestNet(t *testing.T, seed uint64, loss float64) *testNet {
	return &testNet{
		t: t, rng: rand.New(rand.NewPCG(seed, seed+1)), loss: loss,
		nodes: map[wire.NodeID]*Guard{}, raw: map[wire.NodeID]bool{},
		links: map[[2]wire.NodeID]bool{}, got: map[wire.NodeID]map[wire.MsgID]bool{},
		toRaw: map[wire.NodeID][]flight{}, cutBy: map[wire.NodeID][]wire.NodeID{},
		now: 1, lat: int64(time.Millisecond),
	}
}

func (n *testNet) add(id wire.NodeID, cfg gossip.Config, p Params) *Guard {
	core, err := gossip.New(cfg, id, rand.New(rand.NewPCG(uint64(id), 7)))
	if err != nil {
		n.t.Fatal(err)
	}
	g, err := NewGuard(core, p)
	if err != nil {
		n.t.Fatal(err)
	}
	n.nodes[id] = g
	n.order = append(n.order, id)
	n.got[id] = map[wire.MsgID]bool{}
	return g
}

func key(a, b wire.NodeID) [2]wire.NodeID {
	if a > b {
		a, b = b, a
	}
	return [2]wire.NodeID{a, b}
}

func (n *testNet) link(a, b wire.NodeID) {
	if a == b || n.links[key(a, b)] {
		return
	}
	n.links[key(a, b)] = true
	for _, x := range [][2]wire.NodeID{{a, b}, {b, a}} {
		if g := n.nodes[x[0]]; g != nil {
			g.PeerUp(n.now, x[1], &n.out)
			n.handle(x[0])
		}
	}
}

// handle acts on node id's output.
func (n *testNet) handle(id wire.NodeID) {
	for _, e := range n.out.Events {
		if e.Kind == gossip.EventDelivered || e.Kind == gossip.EventPublished {
			n.got[id][e.Msg.ID] = true
		}
	}
	for _, s := range n.out.Sends {
		if !n.links[key(id, s.To)] {
			continue
		}
		n.frames++
		if n.loss > 0 && n.rng.Float64() < n.loss {
			continue
		}
		n.queue = append(n.queue, flight{from: id, to: s.To, at: n.now + n.lat, f: s.Frame})
	}
	cuts := append([]gossip.Disconnect(nil), n.out.Disconnects...)
	n.out.Reset()
	for _, d := range cuts {
		n.cuts = append(n.cuts, d)
		n.cutBy[id] = append(n.cutBy[id], d.Peer)
		n.cut(id, d.Peer)
	}
}

func (n *testNet) cut(a, b wire.NodeID) {
	if !n.links[key(a, b)] {
		return
	}
	delete(n.links, key(a, b))
	for _, x := range [][2]wire.NodeID{{a, b}, {b, a}} {
		if g := n.nodes[x[0]]; g != nil {
			g.PeerDown(n.now, x[1], &n.out)
			n.handle(x[0])
		}
	}
}

// send puts a frame from a raw node on the wire.
func (n *testNet) send(from, to wire.NodeID, f gossip.Frame) {
	if n.links[key(from, to)] {
		n.queue = append(n.queue, flight{from: from, to: to, at: n.now + n.lat, f: f})
	}
}

func (n *testNet) publish(id wire.NodeID, body string) {
	if _, err := n.nodes[id].Publish(n.now, []byte(body), &n.out); err != nil {
		n.t.Fatal(err)
	}
	n.handle(id)
}

// run advances virtual time by d in 1 ms steps.
func (n *testNet) run(d time.Duration) {
	end := n.now + int64(d)
	for n.now < end {
		n.now += int64(time.Millisecond)
		for len(n.queue) > 0 && n.queue[0].at <= n.now {
			fl := n.queue[0]
			n.queue = n.queue[1:]
			if !n.links[key(fl.from, fl.to)] {
				continue
			}
			if n.raw[fl.to] {
				n.toRaw[fl.to] = append(n.toRaw[fl.to], fl)
				continue
			}
			if g := n.nodes[fl.to]; g != nil {
				g.Step(n.now, fl.from, fl.f, &n.out)
				n.handle(fl.to)
			}
		}
		for _, id := range n.order {
			g := n.nodes[id]
			if t := g.NextTick(); t != 0 && t <= n.now {
				g.Tick(n.now, &n.out)
				n.handle(id)
			}
		}
		if n.burst != nil && (n.now/int64(time.Millisecond))%1000 == 0 {
			n.burst(n)
		}
	}
}

// ring links ids in a ring with chords: every node has 4 links or more.
func (n *testNet) ring(ids []wire.NodeID) {
	for i := range ids {
		n.link(ids[i], ids[(i+1)%len(ids)])
		n.link(ids[i], ids[(i+5)%len(ids)])
	}
}

func ids(from, to wire.NodeID) []wire.NodeID {
	var s []wire.NodeID
	for id := from; id <= to; id++ {
		s = append(s, id)
	}
	return s
}

// badHop is what the core rejects with PeerFault today: hop 0 is the
// publisher's own, which no peer may send.
func badHop(origin wire.NodeID, seq uint64, now int64) *wire.Message {
	body := []byte(fmt.Sprintf("junk %d", seq))
	return &wire.Message{ID: wire.ComputeMsgID(origin, seq, body), Origin: origin, Seq: seq, PublishedAt: now, Hop: 0, Body: body}
}

func TestInvalidSpammerIsBannedAndGetsNothing(t *testing.T) {
	for _, st := range []gossip.Strategy{gossip.Flood, gossip.Plumtree, gossip.Lazy} {
		t.Run(string(st), func(t *testing.T) {
			n := newTestNet(t, 1, 0)
			cfg := signedTestConfig()
			cfg.Strategy = st
			honest := ids(1, 8)
			for _, id := range honest {
				n.add(id, cfg, DefaultParams())
			}
			n.ring(honest)
			const spammer = 99
			n.raw[spammer] = true
			for _, id := range honest[:3] {
				n.link(spammer, id)
			}
			n.run(100 * time.Millisecond)
			// 60 invalid messages to each victim, one a millisecond.
			for i := range 60 {
				for _, id := range honest[:3] {
					n.send(spammer, id, gossip.Frame{Msg: badHop(spammer, uint64(i+1), n.now)})
				}
				n.run(time.Millisecond)
			}
			n.run(10 * time.Millisecond)
			for _, id := range honest[:3] {
				bans := n.nodes[id].Bans(n.now)
				if len(bans) != 1 || bans[0].Peer != spammer || bans[0].Reason != "invalid_messages" {
					t.Fatalf("node %v bans %+v, want the spammer for invalid_messages", id, bans)
				}
				if n.links[key(id, spammer)] {
					t.Fatalf("node %v still linked to the spammer", id)
				}
				if st := n.nodes[id].Stats(); st.Bans["invalid_messages"] != 1 {
					t.Fatalf("node %v stats %+v", id, st)
				}
			}
			// From here on the spammer gets nothing, whatever the mesh does,
			// even when it comes back (it is refused at PeerUp).
			before := len(n.toRaw[spammer])
			n.link(spammer, honest[0])
			if n.links[key(spammer, honest[0])] {
				t.Fatalf("banned spammer's new link was not refused")
			}
			n.links[key(spammer, honest[1])] = true // a driver that ignored the Disconnect
			for i := range 30 {
				n.publish(honest[i%len(honest)], fmt.Sprintf("after the ban %d", i))
				n.send(spammer, honest[1], gossip.Frame{Ctl: &wire.Control{Kind: wire.FramePull}})
				n.run(50 * time.Millisecond)
			}
			n.run(3 * time.Second)
			if got := n.toRaw[spammer][before:]; len(got) != 0 {
				t.Fatalf("banned spammer got %d frames after its ban, first %+v", len(got), got[0].f)
			}
			if st := n.nodes[honest[1]].Stats(); st.BannedDropped == 0 {
				t.Errorf("frames from the banned spammer were not dropped: %+v", st)
			}
			for _, id := range honest {
				if len(n.got[id]) != 30 {
					t.Errorf("node %v has %d of 30 honest messages", id, len(n.got[id]))
				}
			}
		})
	}
}

func TestPromiseBreakerLosesGossip(t *testing.T) {
	n := newTestNet(t, 2, 0)
	cfg := signedTestConfig()
	cfg.Strategy = gossip.Lazy
	honest := ids(1, 6)
	for _, id := range honest {
		n.add(id, cfg, DefaultParams())
	}
	n.ring(honest)
	const liar = 77
	n.raw[liar] = true
	n.link(liar, 1)
	n.run(100 * time.Millisecond)
	// The liar announces a message it never serves, one every 100 ms.
	g := n.nodes[1]
	for i := range 60 {
		id := wire.ComputeMsgID(liar, uint64(i+1), []byte("never"))
		n.send(liar, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}})
		n.run(100 * time.Millisecond)
	}
	n.run(4 * time.Second)
	st := g.Stats()
	s := g.Score(liar, n.now)
	if st.BrokenPromises < 20 || st.Forgiven != 0 || s >= DefaultThresholds().Gossip {
		t.Fatalf("broken promises %d (%d forgiven), liar's score %v: want at least 20, none forgiven, and below the gossip threshold %v", st.BrokenPromises, st.Forgiven, s, DefaultThresholds().Gossip)
	}
	if st.GossipDropped == 0 {
		t.Fatalf("the liar's IHAVEs were not dropped once it fell below the gossip threshold: %+v", st)
	}
	// No IWANT goes to it any more.
	before := len(n.toRaw[liar])
	id := wire.ComputeMsgID(liar, 1000, []byte("never"))
	n.send(liar, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}})
	n.run(time.Second)
	for _, f := range n.toRaw[liar][before:] {
		if f.f.Ctl != nil && (f.f.Ctl.Kind == wire.FrameIWant || f.f.Ctl.Kind == wire.FrameIHave) {
			t.Fatalf("gossip %v sent to a peer below the gossip threshold", f.f.Ctl.Kind)
		}
	}
	// The honest peers of node 1 lost nothing.
	for _, p := range []wire.NodeID{2, 6} {
		if s := g.Score(p, n.now); s < 0 {
			t.Errorf("honest peer %v scores %v", p, s)
		}
	}
}

// TestOnlyThePromisingPeerKeepsItsPromise: a promise counts against the
// peer that made it unless that peer itself delivers the message. An
// announcer that never answers is charged for it even though another
// peer delivers the message (a liar cannot hide behind an honest path);
// one that answers late, within PromiseTimeout, is forgiven; one that
// answers in time is not charged at all.
func TestOnlyThePromisingPeerKeepsItsPromise(t *testing.T) {
	n := newTestNet(t, 3, 0)
	cfg := signedTestConfig()
	cfg.Strategy = gossip.Lazy
	p := DefaultParams()
	p.BehaviourThreshold = 0 // so that one broken promise shows in P7
	p.PromiseCredit = 0      // and a kept one takes nothing back
	p.PromiseBreak = 300 * time.Millisecond
	g := n.add(1, cfg, p)
	src := n.add(2, cfg, p) // not linked: only signs the messages
	var msgs [3]*wire.Message
	for i := range msgs {
		m, err := src.Publish(n.now, []byte(fmt.Sprint("m", i)), &n.out)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	n.out.Reset()
	const liar, slow, prompt, other = 77, 78, 79, 80
	for _, q := range []wire.NodeID{liar, slow, prompt, other} {
		n.raw[q] = true
		n.link(q, 1)
	}
	hop := func(m *wire.Message) *wire.Message { c := *m; c.Hop = 1; return &c }
	ihave := func(from wire.NodeID, m *wire.Message) {
		n.send(from, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}})
	}
	ihave(liar, msgs[0])
	ihave(slow, msgs[1])
	ihave(prompt, msgs[2])
	n.run(20 * time.Millisecond)
	// The prompt announcer answers its IWANT; another peer delivers the
	// liar's message, which the liar never does.
	n.send(prompt, 1, gossip.Frame{Msg: hop(msgs[2])})
	n.send(other, 1, gossip.Frame{Msg: hop(msgs[0])})
	n.run(p.PromiseBreak + 100*time.Millisecond)
	for _, q := range []wire.NodeID{liar, slow} {
		if b := g.Book().Terms(q, n.now).Behaviour; b >= 0 {
			t.Fatalf("peer %v did not deliver what it promised and is not charged at %v: behaviour %v, %+v", q, p.PromiseBreak, b, g.Stats())
		}
	}
	if b := g.Book().Terms(prompt, n.now).Behaviour; b != 0 {
		t.Fatalf("the peer that answered in time is charged: behaviour %v", b)
	}
	// The slow announcer answers late, within PromiseTimeout.
	n.send(slow, 1, gossip.Frame{Msg: hop(msgs[1])})
	n.run(p.PromiseTimeout)
	if !n.got[1][msgs[0].ID] || !n.got[1][msgs[1].ID] || !n.got[1][msgs[2].ID] {
		t.Fatal("a message did not arrive")
	}
	st := g.Stats()
	if st.BrokenPromises != 2 || st.Forgiven != 1 || st.KeptPromises != 1 {
		t.Fatalf("stats %+v: want 2 broken (liar, slow), 1 forgiven (slow), 1 kept (prompt)", st)
	}
	if tm := g.Book().Terms(slow, n.now); tm.Behaviour != 0 {
		t.Fatalf("the slow announcer's charge was not taken back: %+v", tm)
	}
	if tm := g.Book().Terms(liar, n.now); tm.Behaviour >= 0 {
		t.Fatalf("the liar's broken promise was forgiven when another peer delivered: %+v", tm)
	}
}

// TestKeptPromisesOffsetBrokenOnes: each promise a peer keeps takes back
// PromiseCredit of what its broken promises added to P7 (an honest peer
// whose answers are sometimes lost), never more, and never a penalty of
// another kind.
func TestKeptPromisesOffsetBrokenOnes(t *testing.T) {
	for _, credit := range []float64{0, 1} {
		n := newTestNet(t, 3, 0)
		cfg := signedTestConfig()
		cfg.Strategy = gossip.Lazy
		p := DefaultParams()
		p.BehaviourThreshold = 0
		p.PromiseCredit = credit
		g := n.add(1, cfg, p)
		src := n.add(2, cfg, p)
		var msgs [4]*wire.Message
		for i := range msgs {
			m, err := src.Publish(n.now, []byte(fmt.Sprint("k", i)), &n.out)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = m
		}
		n.out.Reset()
		const peer = 77
		n.raw[peer] = true
		n.link(peer, 1)
		// Two broken promises (never answered), then two kept.
		for _, m := range msgs[:2] {
			n.send(peer, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}})
		}
		n.run(p.PromiseTimeout + 100*time.Millisecond)
		g.Penalize(n.now, peer, p.RateLimitedPerPenalty, &n.out) // one unit of another kind
		before := g.Book().Terms(peer, n.now).Behaviour
		for _, m := range msgs[2:] {
			n.send(peer, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}})
			n.run(20 * time.Millisecond)
			c := *m
			c.Hop = 1
			n.send(peer, 1, gossip.Frame{Msg: &c})
			n.run(20 * time.Millisecond)
		}
		// Later kept promises have nothing left to take back.
		for range 3 {
			k := len(msgs)
			m, err := src.Publish(n.now, []byte(fmt.Sprint("k", k)), &n.out)
			if err != nil {
				t.Fatal(err)
			}
			n.out.Reset()
			n.send(peer, 1, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}})
			n.run(20 * time.Millisecond)
			c := *m
			c.Hop = 1
			n.send(peer, 1, gossip.Frame{Msg: &c})
			n.run(20 * time.Millisecond)
		}
		after := g.Book().Terms(peer, n.now).Behaviour
		st := g.Stats()
		if st.BrokenPromises != 2 || st.KeptPromises != 5 {
			t.Fatalf("credit %v: stats %+v: want 2 broken, 5 kept", credit, st)
		}
		// P7 is −penalty² at threshold 0: 3 units (two promises, one
		// rate-limit unit) before; with credit 1 the two promises are
		// taken back and the rate-limit unit stays.
		want := before
		if credit == 1 {
			want = -1
		}
		if math.Abs(after-want) > 0.1 || before > -8 || before < -9 {
			t.Fatalf("credit %v: P7 %v before the kept promises, %v after: want about −9 and %v", credit, before, after, want)
		}
	}
}

func TestSilentEagerPeerIsDemoted(t *testing.T) {
	n := newTestNet(t, 3, 0)
	cfg := signedTestConfig()
	cfg.Strategy = gossip.Plumtree
	honest := ids(1, 6)
	for _, id := range honest {
		n.add(id, cfg, DefaultParams())
	}
	n.ring(honest)
	const hole = 55
	n.raw[hole] = true
	n.link(hole, 1)
	k := 0
	n.burst = func(n *testNet) {
		for range 20 {
			k++
			n.publish(honest[k%len(honest)], fmt.Sprintf("m%d", k))
		}
	}
	n.run(45 * time.Second)
	g := n.nodes[1]
	if st := g.Stats(); st.Demotions == 0 {
		t.Fatalf("the black hole was never demoted: %+v, score %v", st, g.Score(hole, n.now))
	}
	// Demoted, it got a PRUNE and now gets announcements, not payload.
	var prune bool
	for _, f := range n.toRaw[hole] {
		prune = prune || (f.f.Ctl != nil && f.f.Ctl.Kind == wire.FramePrune)
	}
	if !prune {
		t.Fatalf("no PRUNE sent to the demoted peer")
	}
	before := len(n.toRaw[hole])
	n.run(5 * time.Second)
	for _, f := range n.toRaw[hole][before:] {
		if f.f.Msg != nil {
			t.Fatalf("payload pushed to a peer demoted from the eager set")
		}
	}
	if s := g.Score(hole, n.now); s < DefaultThresholds().Gossip {
		t.Fatalf("a silent peer scores %v: below the gossip threshold on P3 alone", s)
	}
}

// TestHonestLossyMeshBansNoOne is the honest worst case the default
// thresholds are set against: 24 nodes, 20% of every frame lost, bursts of
// 150 messages a second from random publishers, for 60 virtual seconds,
// with every router. Nobody may be disconnected, graylisted or lose
// gossip, and the routers that repair must deliver everything; the lowest
// score seen is logged (README, "Peer scoring").
func TestHonestLossyMeshBansNoOne(t *testing.T) {
	for _, st := range []gossip.Strategy{gossip.Flood, gossip.Plumtree, gossip.Lazy} {
		t.Run(string(st), func(t *testing.T) {
			t.Parallel()
			n := newTestNet(t, 4, 0.2)
			cfg := signedTestConfig()
			cfg.Strategy = st
			all := ids(1, 24)
			for _, id := range all {
				n.add(id, cfg, DefaultParams())
			}
			n.ring(all)
			k := 0
			lowest, worst, behaviour := 0.0, Terms{}, 0.0
			n.burst = func(n *testNet) {
				for range 150 {
					k++
					n.publish(all[n.rng.IntN(len(all))], fmt.Sprintf("m%d", k))
				}
				for _, id := range all {
					for _, ps := range n.nodes[id].Scores(n.now) {
						tm := n.nodes[id].Book().Terms(ps.Peer, n.now)
						if ps.Score < lowest {
							lowest, worst = ps.Score, tm
						}
						behaviour = min(behaviour, tm.Behaviour)
					}
				}
			}
			n.run(60 * time.Second)
			n.burst = nil
			n.run(10 * time.Second) // repairs settle
			missing := 0
			for _, id := range all {
				missing += k - len(n.got[id])
			}
			t.Logf("%s: %d of %d deliveries missing", st, missing, k*len(all))
			if st != gossip.Flood && missing != 0 {
				// Flood has no repair; the routers that repair must get
				// everything through, scoring and all.
				t.Errorf("%d deliveries missing with %s", missing, st)
			}
			if len(n.cuts) != 0 {
				t.Fatalf("honest peers disconnected: %+v", n.cuts)
			}
			demotions := uint64(0)
			for _, id := range all {
				st := n.nodes[id].Stats()
				demotions += st.Demotions
				if st.Graylisted != 0 || st.GossipDropped != 0 {
					t.Errorf("node %v: %+v", id, st)
				}
			}
			t.Logf("%s: lowest score %.2f (%+v), lowest P7 %.2f, %d demotions, over %d messages, %d frames", st, lowest, worst, behaviour, demotions, k, n.frames)
			if behaviour < DefaultThresholds().Gossip/2 {
				// Honest loss breaks honest promises, and only the
				// promising peer's own copy keeps one; the promises it
				// keeps take the charges back (Params.PromiseCredit), so
				// P7 stays near the allowance.
				t.Errorf("an honest peer's broken promises cost it P7 %.2f, past half the gossip threshold %v", behaviour, DefaultThresholds().Gossip)
			}
			if lowest < DefaultThresholds().Gossip/4 {
				t.Errorf("lowest honest score %.2f: within 4x of the gossip threshold %v", lowest, DefaultThresholds().Gossip)
			}
		})
	}
}

// TestDemotedPeerIsServedButKeptLazy: a peer whose score is below 0 is
// pruned once; its GRAFT still gets the messages it names (so an honest
// peer that only scores low is repaired) but is refused with a PRUNE, and
// it gets no eager payload while its score stays below 0; once the score
// is back, it is grafted and pushed to again.
func TestDemotedPeerIsServedButKeptLazy(t *testing.T) {
	cfg := signedTestConfig()
	cfg.Strategy = gossip.Plumtree
	core, err := gossip.New(cfg, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(core, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	var out gossip.Output
	now := int64(time.Second)
	g.PeerUp(now, 2, &out)
	g.PeerUp(now, 3, &out)
	out.Reset()
	m, err := g.Publish(now, []byte("before"), &out)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	g.Book().Invalid(2, now) // −10: below 0, above the gossip threshold
	g.Penalize(now, 2, 1, &out)
	prunes := func(to wire.NodeID) (n int) {
		for _, s := range out.Sends {
			if s.To == to && s.Ctl != nil && s.Ctl.Kind == wire.FramePrune {
				n++
			}
		}
		return n
	}
	if prunes(2) != 1 || g.Stats().Demotions != 1 {
		t.Fatalf("demotion sent %d PRUNEs to the peer (stats %+v), want 1", prunes(2), g.Stats())
	}
	out.Reset()
	g.Step(now, 2, gossip.Frame{Ctl: &wire.Control{Kind: wire.FrameGraft, IDs: []wire.MsgID{m.ID}}}, &out)
	served := false
	for _, s := range out.Sends {
		served = served || (s.To == 2 && s.Msg != nil && s.Msg.ID == m.ID)
	}
	if !served || prunes(2) != 1 {
		t.Fatalf("GRAFT from a demoted peer: served %v, %d PRUNEs; want the message and one PRUNE", served, prunes(2))
	}
	out.Reset()
	if _, err := g.Publish(now+1, []byte("after"), &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Sends {
		if s.To == 2 && s.Msg != nil {
			t.Fatalf("payload pushed eagerly to a demoted peer")
		}
	}
	var toThree bool
	for _, s := range out.Sends {
		toThree = toThree || (s.To == 3 && s.Msg != nil)
	}
	if !toThree {
		t.Fatalf("the well-scored peer lost its eager push")
	}

	// Ten minutes on, P1's credit outweighs what is left of the invalid
	// message: the peer is grafted again at both ends and pushed to.
	out.Reset()
	later := now + int64(10*time.Minute)
	g.Tick(later, &out)
	grafted := false
	for _, s := range out.Sends {
		grafted = grafted || (s.To == 2 && s.Ctl != nil && s.Ctl.Kind == wire.FrameGraft)
	}
	if !grafted || g.Stats().Restorations != 1 || g.Score(2, later) < 0 {
		t.Fatalf("after recovering to %v: grafted %v, stats %+v", g.Score(2, later), grafted, g.Stats())
	}
	out.Reset()
	if _, err := g.Publish(later, []byte("recovered"), &out); err != nil {
		t.Fatal(err)
	}
	pushed := false
	for _, s := range out.Sends {
		pushed = pushed || (s.To == 2 && s.Msg != nil)
	}
	if !pushed {
		t.Fatalf("a peer restored to the eager set got no payload")
	}
}

// TestBanEndsButTheScoreIsRetained: a banned peer is refused at PeerUp
// until its ban ends, then let back in with what is left of its score, so
// that it gets no gossip rather than being trusted afresh.
func TestBanEndsButTheScoreIsRetained(t *testing.T) {
	core, err := gossip.New(signedTestConfig(), 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	g, err := NewGuard(core, p)
	if err != nil {
		t.Fatal(err)
	}
	var out gossip.Output
	now := int64(time.Second)
	g.PeerUp(now, 9, &out)
	// Five invalid messages graylist it (−250); the 19 frames it sends
	// on cost it (19 − 6)² of P7 and the ban (−419).
	for i := range 24 {
		if g.Step(now, 9, gossip.Frame{Msg: badHop(9, uint64(i+1), now)}, &out); i < 23 && len(out.Disconnects) > 0 {
			t.Fatalf("banned after %d frames, want 24", i+1)
		}
	}
	if len(out.Disconnects) != 1 || out.Disconnects[0].Peer != 9 || out.Disconnects[0].Until != now+int64(p.BanDuration) {
		t.Fatalf("disconnects %+v, want the peer until the ban ends", out.Disconnects)
	}
	if peers := core.Peers(); len(peers) != 0 {
		t.Fatalf("the core still holds %v after the ban", peers)
	}
	out.Reset()
	g.PeerUp(now+int64(p.BanDuration)-1, 9, &out)
	if len(out.Disconnects) != 1 || len(core.Peers()) != 0 {
		t.Fatalf("PeerUp during the ban: disconnects %+v, core peers %v", out.Disconnects, core.Peers())
	}
	out.Reset()
	after := now + int64(p.BanDuration)
	g.PeerUp(after, 9, &out)
	if len(out.Disconnects) != 0 || len(core.Peers()) != 1 || len(g.Bans(after)) != 0 {
		t.Fatalf("PeerUp after the ban: disconnects %+v, core peers %v, bans %v", out.Disconnects, core.Peers(), g.Bans(after))
	}
	// Ten minutes halved its five invalid messages: −62.5.
	if s := g.Score(9, after); s >= p.Thresholds.Gossip {
		t.Fatalf("back after its ban with score %v: its invalid messages were forgotten", s)
	}
	before := g.Stats().GossipDropped
	g.Step(after, 9, gossip.Frame{Ctl: &wire.Control{Kind: wire.FramePull}}, &out)
	if g.Stats().GossipDropped != before+1 {
		t.Fatalf("gossip from the returning peer was not dropped")
	}
}
