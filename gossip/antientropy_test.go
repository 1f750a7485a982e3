package gossip

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/wire"
)

// timedNet drives cores in virtual time: every send takes one latency to
// arrive, ticks run at each core's NextTick, and a node marked down
// neither sends nor receives (its frames are dropped where they leave or
// reach it), as a crashed process or a partition would.
type timedNet struct {
	t         *testing.T
	cores     map[wire.NodeID]*Core
	ids       []wire.NodeID
	now       int64
	latency   int64
	inflight  []timedSend
	down      map[wire.NodeID]bool
	delivered map[wire.NodeID]map[wire.MsgID]bool
	out       Output
}

type timedSend struct {
	at   int64
	from wire.NodeID
	Send
}

func newTimedNet(t *testing.T, cfg Config, adj map[wire.NodeID][]wire.NodeID, seed uint64) *timedNet {
	t.Helper()
	n := &timedNet{t: t, cores: map[wire.NodeID]*Core{}, latency: int64(time.Millisecond),
		down: map[wire.NodeID]bool{}, delivered: map[wire.NodeID]map[wire.MsgID]bool{}}
	for id := wire.NodeID(1); int(id) <= len(adj); id++ {
		c, err := New(cfg, id, rand.New(rand.NewPCG(seed, uint64(id))))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range adj[id] {
			c.AddPeer(p)
		}
		n.cores[id] = c
		n.ids = append(n.ids, id)
		n.delivered[id] = map[wire.MsgID]bool{}
	}
	return n
}

func (n *timedNet) take(from wire.NodeID) {
	for _, e := range n.out.Events {
		if e.Kind == EventDelivered || e.Kind == EventPublished {
			n.delivered[from][e.Msg.ID] = true
		}
	}
	if !n.down[from] {
		for _, s := range n.out.Sends {
			n.inflight = append(n.inflight, timedSend{at: n.now + n.latency, from: from, Send: s})
		}
	}
	n.out.Reset()
}

func (n *timedNet) publish(id wire.NodeID, body string) *wire.Message {
	m, err := n.cores[id].Publish(n.now, []byte(body), &n.out)
	if err != nil {
		n.t.Fatal(err)
	}
	n.take(id)
	return m
}

// runUntil advances virtual time to end, delivering frames and running
// ticks in time order (ties: frames first, then nodes in id order).
func (n *timedNet) runUntil(end int64) {
	for {
		next := end + 1
		for _, s := range n.inflight {
			next = min(next, s.at)
		}
		for _, id := range n.ids {
			if t := n.cores[id].NextTick(); t != 0 {
				next = min(next, max(t, n.now))
			}
		}
		if next > end {
			n.now = end
			return
		}
		n.now = next
		var due []timedSend
		rest := n.inflight[:0]
		for _, s := range n.inflight {
			if s.at <= n.now {
				due = append(due, s)
			} else {
				rest = append(rest, s)
			}
		}
		n.inflight = rest
		for _, s := range due {
			if n.down[s.To] {
				continue
			}
			n.cores[s.To].Step(n.now, s.from, s.Frame, &n.out)
			n.take(s.To)
		}
		for _, id := range n.ids {
			c := n.cores[id]
			if t := c.NextTick(); t != 0 && t <= n.now {
				c.Tick(n.now, &n.out)
				n.take(id)
			}
		}
	}
}

func (n *timedNet) has(id wire.NodeID, msgs []*wire.Message) int {
	k := 0
	for _, m := range msgs {
		if n.delivered[id][m.ID] {
			k++
		}
	}
	return k
}

// A node that was down while messages were published gets every one of
// them once it is back, under every router, from anti-entropy alone: every
// push to it was lost. With anti-entropy off, flood never repairs it.
func TestAntiEntropyRepairsANodeThatWasDown(t *testing.T) {
	adj := randomGraph(40, 3, rand.New(rand.NewPCG(5, 5)))
	const victim = wire.NodeID(40)
	for _, strategy := range Strategies() {
		for _, ae := range []time.Duration{time.Second, -1} {
			if ae < 0 && strategy != Flood {
				continue
			}
			t.Run(fmt.Sprintf("%s/ae=%v", strategy, ae), func(t *testing.T) {
				cfg := unsignedConfig()
				cfg.Strategy, cfg.Fanout, cfg.AntiEntropy = strategy, 3, ae
				net := newTimedNet(t, cfg, adj, 1)
				net.down[victim] = true
				var msgs []*wire.Message
				for i := range 10 {
					msgs = append(msgs, net.publish(wire.NodeID(1+i*3%40), fmt.Sprint("m", i)))
					net.runUntil(net.now + int64(50*time.Millisecond))
				}
				net.runUntil(net.now + int64(time.Second))
				if got := net.has(victim, msgs); got != 0 {
					t.Fatalf("the down node delivered %d messages", got)
				}
				net.down[victim] = false
				net.runUntil(net.now + int64(20*time.Second))
				got := net.has(victim, msgs)
				st, _ := AntiEntropyStatsOf(net.cores[victim])
				if ae < 0 {
					if got != 0 {
						t.Errorf("without anti-entropy the node got %d of %d lost messages", got, len(msgs))
					}
					return
				}
				if got != len(msgs) {
					t.Errorf("after 20 s back up the node has %d of %d messages (its counters %+v)", got, len(msgs), st)
				}
				if st.RepairsReceived == 0 || st.PullsSent == 0 {
					t.Errorf("counters %+v: want pulls sent and repairs received", st)
				}
				for _, id := range net.ids {
					if k := net.has(id, msgs); k != len(msgs) && id != victim {
						t.Errorf("node %d has %d of %d", id, k, len(msgs))
					}
				}
			})
		}
	}
}

// A store of more origins than one digest may list sends partial digests:
// each within wire's limits (it encodes), each speaking for a run of
// origins, and over a few periods for every origin, so that a peer that
// lacks a whole origin (which it cannot list) still gets it.
func TestAntiEntropyPartialDigestConverges(t *testing.T) {
	cfg := unsignedConfig()
	cfg.AntiEntropy = time.Second
	cfg.AntiEntropyMaxMessages = 4000
	origins := wire.MaxDigestOrigins + 500
	a, err := New(cfg, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, 2, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	var out Output
	inject := func(c *Core, origin wire.NodeID, seq uint64) {
		m := &wire.Message{Origin: origin, Seq: seq, Hop: 1, Body: []byte(fmt.Sprint(origin, seq))}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		c.Receive(1, 99, m, &out)
		out.Reset()
	}
	for o := range origins {
		origin := wire.NodeID(100 + o)
		inject(a, origin, 1)
		// b lacks every hundredth origin entirely, and the first and the
		// last, which no run of its own origins reaches but the sentinels'.
		if o%100 != 42 && o != 0 && o != origins-1 {
			inject(b, origin, 1)
		}
	}
	// b pulls a, period after period, until it stops lacking anything.
	for round := range 10 {
		d := b.digest(int64(round+2)*int64(time.Second), wire.PullWantDigest)
		if d.Flags&wire.PullPartial == 0 {
			t.Fatalf("round %d: a digest of %d origins is not partial", round, d.Origins())
		}
		if _, err := wire.AppendControl(nil, d); err != nil {
			t.Fatalf("round %d: partial digest does not encode: %v", round, err)
		}
		out.Reset()
		a.Step(int64(round+2)*int64(time.Second), 2, Frame{Ctl: d}, &out)
		for _, s := range out.Sends {
			if s.Msg != nil {
				b.Step(int64(round+2)*int64(time.Second), 1, s.Frame, &Output{})
			}
		}
	}
	if got, want := b.SeenLen(), origins; got != want {
		t.Errorf("after 10 partial exchanges b holds %d messages, want %d", got, want)
	}
	st, _ := AntiEntropyStatsOf(b)
	if st.PartialDigests != 10 {
		t.Errorf("partial digests %d, want 10", st.PartialDigests)
	}
}

// A digest compresses: a node holding seqs 1..1000 of one origin sends one
// range; gaps split it.
func TestAntiEntropyDigestRanges(t *testing.T) {
	cfg := unsignedConfig()
	cfg.AntiEntropy = time.Second
	c, err := New(cfg, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var out Output
	for seq := uint64(1); seq <= 1000; seq++ {
		if seq == 500 || seq == 501 || seq == 900 {
			continue
		}
		m := &wire.Message{Origin: 9, Seq: seq, Hop: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		c.Receive(1, 2, m, &out)
		out.Reset()
	}
	d := c.digest(2, 0)
	want := []wire.SeqRange{{Origin: 9, First: 1, Last: 499}, {Origin: 9, First: 502, Last: 899}, {Origin: 9, First: 901, Last: 1000}}
	if fmt.Sprint(d.Ranges) != fmt.Sprint(want) {
		t.Errorf("digest %v, want %v", d.Ranges, want)
	}
	if n := d.EncodedSize(); n > 20 {
		t.Errorf("digest of 997 messages takes %d bytes, want at most 20", n)
	}
}

func TestAntiEntropyPeriod(t *testing.T) {
	for _, tc := range []struct {
		s    Strategy
		ae   time.Duration
		want time.Duration
	}{
		{Flood, 0, 0}, {Fanout, 0, 0}, {Plumtree, 0, DefaultAntiEntropy},
		{Flood, 2 * time.Second, 2 * time.Second}, {Plumtree, -1, 0}, {Flood, -time.Second, 0},
	} {
		cfg := unsignedConfig()
		cfg.Strategy, cfg.AntiEntropy = tc.s, tc.ae
		if got := cfg.AntiEntropyPeriod(); got != tc.want {
			t.Errorf("%s with AntiEntropy %v: period %v, want %v", tc.s, tc.ae, got, tc.want)
		}
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.AntiEntropy = 25 * time.Hour },
		func(c *Config) { c.AntiEntropy = time.Microsecond },
		func(c *Config) { c.AntiEntropyMaxMessages = 0 },
		func(c *Config) { c.AntiEntropyMaxBytes = 0 },
	} {
		cfg := unsignedConfig()
		bad(&cfg)
		if cfg.Validate() == nil {
			t.Errorf("Validate accepted %+v", cfg)
		}
	}
	// Flood without anti-entropy keeps no store and never ticks for it.
	c, _ := New(unsignedConfig(), 1, rand.New(rand.NewPCG(1, 1)))
	if _, ok := AntiEntropyStatsOf(c); ok || c.NextWake() != 0 {
		t.Errorf("flood without anti-entropy keeps a store or wants a wake (%d)", c.NextWake())
	}
}

// The flag syntax round-trips: what FormatAntiEntropy prints,
// ParseAntiEntropy reads back.
func TestParseAntiEntropy(t *testing.T) {
	for _, d := range []time.Duration{0, -1, time.Second, 250 * time.Millisecond} {
		got, err := ParseAntiEntropy(FormatAntiEntropy(d))
		if err != nil || got != d {
			t.Errorf("%v: formatted %q, parsed back %v, %v", d, FormatAntiEntropy(d), got, err)
		}
	}
	for _, bad := range []string{"soon", "-2s", "1"} {
		if _, err := ParseAntiEntropy(bad); err == nil {
			t.Errorf("ParseAntiEntropy(%q) accepted", bad)
		}
	}
}

// TestAntiEntropyCrowdedStoreGetsNoDuplicates: a node whose store evicted
// messages for room, under load, still delivered them; its digest must
// not lead a peer with a bigger store to send them back, since Plumtree
// prunes the eager link a duplicate comes over (this cut its tree at
// every rate above a few thousand messages a second on 10 real nodes).
func TestAntiEntropyCrowdedStoreGetsNoDuplicates(t *testing.T) {
	small := unsignedConfig()
	small.AntiEntropy, small.StoreCapacity = time.Second, 4
	big := small
	big.StoreCapacity = 100
	a, err := New(small, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(big, 2, rand.New(rand.NewPCG(2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	a.AddPeer(2)
	b.AddPeer(1)
	var out Output
	for seq := uint64(1); seq <= 10; seq++ {
		m := &wire.Message{Origin: 9, Seq: seq, Hop: 1, PublishedAt: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		a.Receive(1, 3, m, &out)
		b.Receive(1, 3, m, &out)
		out.Reset()
	}
	now := int64(10 * time.Second) // past the repair grace
	d := a.digest(now, 0)
	b.onPull(now, 1, d, &out)
	for _, s := range out.Sends {
		if s.Msg != nil {
			t.Errorf("peer sent back message seq %d, which the crowded node delivered (digest %v)", s.Msg.Seq, d.Ranges)
		}
	}
	// A store that never evicted for room still lists only what it holds,
	// so a gap is repaired.
	out.Reset()
	d = b.digest(now, 0)
	if d.Ranges[0].First != 1 {
		t.Errorf("uncrowded digest %v claims messages it never held", d.Ranges)
	}
}

// TestAntiEntropyCrowdedStoreClaimsEvictedHoles: under load a node gets
// some messages late (a repair, a GRAFT) and stores them after newer ones,
// so its store, evicting in arrival order, drops in-order messages newer
// than the late ones it keeps. Its digest must still claim those holes:
// otherwise every peer that holds them sends them back at every exchange
// for the whole acceptance window, each a duplicate (a repair storm of
// thousands of copies a second measured on 50 real nodes after one
// overloaded second). A message in a hole that the node never delivered is
// past its store bounds, as below the oldest it holds; one newer than the
// newest it evicted is still repaired.
func TestAntiEntropyCrowdedStoreClaimsEvictedHoles(t *testing.T) {
	small := unsignedConfig()
	small.AntiEntropy, small.StoreCapacity = time.Second, 4
	big := small
	big.StoreCapacity = 100
	a, err := New(small, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(big, 2, rand.New(rand.NewPCG(2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	a.AddPeer(2)
	b.AddPeer(1)
	msg := func(seq uint64) *wire.Message {
		m := &wire.Message{Origin: 9, Seq: seq, Hop: 1, PublishedAt: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		return m
	}
	var out Output
	// b holds 1..12 in order. a gets 2..9 in order, then 1 late (repaired),
	// then 10 and 11; it never gets 12. With room for 4, a keeps 1, 9, 10,
	// 11: 2..8 are holes it delivered and evicted.
	for seq := uint64(1); seq <= 12; seq++ {
		b.Receive(1, 3, msg(seq), &out)
	}
	for _, seq := range []uint64{2, 3, 4, 5, 6, 7, 8, 9, 1, 10, 11} {
		a.Receive(1, 3, msg(seq), &out)
	}
	out.Reset()
	now := int64(10 * time.Second) // past the repair grace
	d := a.digest(now, 0)
	b.onPull(now, 1, d, &out)
	var sent []uint64
	for _, s := range out.Sends {
		if s.Msg != nil {
			sent = append(sent, s.Msg.Seq)
		}
	}
	if len(sent) != 1 || sent[0] != 12 {
		t.Errorf("peer sent seqs %v for digest %v; want only 12, the one the crowded node never had", sent, d.Ranges)
	}
}
