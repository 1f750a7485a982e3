package gossip

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

func lazyConfig() Config {
	cfg := unsignedConfig()
	cfg.Strategy = Lazy
	// Lazy push alone: anti-entropy, on by default for lazy, would keep
	// the nodes awake and repair what these tests expect IWANT to repair
	// (antientropy_test.go covers it under every router).
	cfg.AntiEntropy = -1
	return cfg
}

// TestLazyConfigValidate: every lazy setting that cannot work is refused
// with an error that names it.
func TestLazyConfigValidate(t *testing.T) {
	if err := lazyConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"D zero", func(c *Config) { c.LazyD = 0 }, "lazy D"},
		{"D huge", func(c *Config) { c.LazyD = maxLazyDegree + 1 }, "lazy D"},
		{"D_lazy zero", func(c *Config) { c.LazyDLazy = 0 }, "D_lazy"},
		{"heartbeat zero", func(c *Config) { c.LazyHeartbeat = 0 }, "lazy heartbeat"},
		{"heartbeat a week", func(c *Config) { c.LazyHeartbeat = 7 * 24 * time.Hour }, "lazy heartbeat"},
		{"timeout negative", func(c *Config) { c.LazyIWantTimeout = -time.Second }, "IWANT timeout"},
		{"gossip zero", func(c *Config) { c.LazyGossip = 0 }, "lazy gossip"},
		{"history below gossip", func(c *Config) { c.LazyHistory = 2 }, "lazy history"},
		{"history huge", func(c *Config) { c.LazyHistory = maxLazyHistory + 1 }, "lazy history"},
		{"D_out negative", func(c *Config) { c.LazyDOut = -1 }, "D_out"},
		{"D_out above D", func(c *Config) { c.LazyDOut = c.LazyD + 1 }, "D_out"},
		{"gossip factor above 1", func(c *Config) { c.LazyGossipFactor = 1.5 }, "gossip factor"},
		{"gossip factor NaN", func(c *Config) { c.LazyGossipFactor = math.NaN() }, "gossip factor"},
		{"max IHAVE zero", func(c *Config) { c.LazyMaxIHave = 0 }, "max IHAVE"},
		{"eager silence negative", func(c *Config) { c.LazyEagerSilence = -time.Second }, "eager silence"},
		{"eager silence a week", func(c *Config) { c.LazyEagerSilence = 7 * 24 * time.Hour }, "eager silence"},
	} {
		cfg := lazyConfig()
		tc.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	if s, err := ParseStrategy("lazy"); err != nil || s != Lazy {
		t.Errorf("ParseStrategy(lazy) = %q, %v", s, err)
	}
}

// TestLazyStatsOnlyForLazy: the accessors answer for lazy cores only.
func TestLazyStatsOnlyForLazy(t *testing.T) {
	c := newCore(t, unsignedConfig(), 1, 2)
	if _, ok := LazyStatsOf(c); ok {
		t.Error("LazyStatsOf answered for a flood core")
	}
	if LazyEager(c) != nil {
		t.Error("LazyEager answered for a flood core")
	}
	if _, ok := newCore(t, lazyConfig(), 1, 2).StoreStats(); !ok {
		t.Error("a lazy core keeps no message store, so IWANT cannot be answered")
	}
}

// TestLazyEagerSetFromSetPeers: a driver that hands the core its peers
// without PeerUp (the simulator) gets an eager set of LazyD peers drawn on
// the first message, each told with GRAFT, and the push goes to those,
// never the sender.
func TestLazyEagerSetFromSetPeers(t *testing.T) {
	c, err := New(lazyConfig(), 1, rand.New(rand.NewPCG(3, 1)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetPeers([]wire.NodeID{2, 3, 4, 5, 6, 7})
	var out Output
	m := &wire.Message{Origin: 9, Seq: 1, Hop: 1, Body: []byte("x")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	c.Receive(0, 2, m, &out)
	eager := LazyEager(c)
	if len(eager) != 3 {
		t.Fatalf("eager set %v, want 3 peers", eager)
	}
	var to, grafted []wire.NodeID
	for _, s := range out.Sends {
		switch {
		case s.Msg != nil:
			to = append(to, s.To)
		case s.Ctl.Kind == wire.FrameGraft:
			grafted = append(grafted, s.To)
		default:
			t.Errorf("unexpected send %+v", s)
		}
	}
	want := slices.DeleteFunc(slices.Clone(eager), func(p wire.NodeID) bool { return p == 2 })
	if !slices.Equal(to, want) {
		t.Errorf("pushed to %v, want the eager set %v without the sender", to, want)
	}
	if !slices.Equal(grafted, eager) {
		t.Errorf("grafted %v, want the eager set %v", grafted, eager)
	}
	st, _ := LazyStatsOf(c)
	if st.Eager != 3 || st.Lazy != 3 {
		t.Errorf("stats eager %d lazy %d, want 3 and 3", st.Eager, st.Lazy)
	}
}

// TestLazyIHaveBoundedPerFrame: a heartbeat sends one IHAVE per chosen
// peer, the newest ids first, at most wire.MaxControlIDs of them.
func TestLazyIHaveBoundedPerFrame(t *testing.T) {
	cfg := lazyConfig()
	cfg.LazyD = 1
	cfg.StoreCapacity = 2 * wire.MaxControlIDs
	c := newCore(t, cfg, 1, 2, 3)
	var out Output
	var last wire.MsgID
	for i := range wire.MaxControlIDs + 100 {
		m, err := c.Publish(int64(i), []byte("m"), &out)
		if err != nil {
			t.Fatal(err)
		}
		last = m.ID
	}
	out.Reset()
	c.Tick(int64(cfg.LazyHeartbeat), &out)
	// One IHAVE to each peer: the lazy one, and the eager one, which hears
	// of the ids once, at the first heartbeat.
	if len(out.Sends) != 2 {
		t.Fatalf("%d sends at the heartbeat, want one IHAVE to each of the two peers", len(out.Sends))
	}
	for _, snd := range out.Sends {
		ctl := snd.Ctl
		if ctl == nil || ctl.Kind != wire.FrameIHave || len(ctl.IDs) != wire.MaxControlIDs || ctl.IDs[0] != last {
			t.Fatalf("heartbeat sent %+v, want an IHAVE of %d ids, newest first", snd, wire.MaxControlIDs)
		}
		if _, err := wire.AppendControl(nil, ctl); err != nil {
			t.Errorf("the IHAVE does not encode: %v", err)
		}
	}
}

// TestLazyPromisesBounded: a peer that announces ids nobody has cannot
// make a node wait on more than StoreCapacity of them, and the node stops
// asking for ticks once the promises are broken with no one left to ask.
func TestLazyPromisesBounded(t *testing.T) {
	cfg := lazyConfig()
	cfg.StoreCapacity = 10
	c := newCore(t, cfg, 1, 2)
	ids := make([]wire.MsgID, 25)
	for i := range ids {
		ids[i][0], ids[i][1] = byte(i), 0xaa
	}
	var out Output
	c.Step(0, 2, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids}}, &out)
	if len(out.Sends) != 1 || len(out.Sends[0].Ctl.IDs) != 10 {
		t.Fatalf("sent %+v, want one IWANT of 10 ids", out.Sends)
	}
	if st, _ := LazyStatsOf(c); st.Promises != 10 {
		t.Errorf("%d promises, want 10", st.Promises)
	}
	// Ignored from a node that is not a peer.
	out.Reset()
	c.Step(0, 7, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids[20:]}}, &out)
	if len(out.Sends) != 0 {
		t.Errorf("answered an IHAVE from a non-peer: %+v", out.Sends)
	}
	// Heartbeats until the timeout breaks them all; then nothing is due.
	for now := int64(0); c.NextWake() != 0; {
		now = c.NextWake()
		out.Reset()
		c.Tick(now, &out)
		if len(out.Sends) != 0 {
			t.Fatalf("at %v sent %+v with no other announcer to ask", time.Duration(now), out.Sends)
		}
		if now > int64(time.Second) {
			t.Fatal("still ticking after a second")
		}
	}
	st, _ := LazyStatsOf(c)
	if st.Promises != 0 || st.PromisesBroken != 10 {
		t.Errorf("promises %d broken %d, want 0 and 10", st.Promises, st.PromisesBroken)
	}
}

// TestLazyRepairsEveryNode: on random graphs with an eager set of one
// peer, so that the push alone misses most nodes, driving the cores
// through their heartbeats (every frame arriving at once) delivers every
// message to every node once, and every node goes idle afterwards.
func TestLazyRepairsEveryNode(t *testing.T) {
	const nodes, messages = 60, 5
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := lazyConfig()
		cfg.LazyD = 1
		rng := rand.New(rand.NewPCG(seed, 99))
		adj := randomGraph(nodes, 2, rng)
		cores := map[wire.NodeID]*Core{}
		for id, peers := range adj {
			cores[id] = newCore(t, cfg, id, peers...)
		}
		delivered := map[wire.NodeID]int{}
		type queued struct {
			from wire.NodeID
			s    Send
		}
		var queue []queued
		take := func(id wire.NodeID, out *Output) {
			for _, s := range out.Sends {
				queue = append(queue, queued{id, s})
			}
			for _, e := range out.Events {
				if e.Kind == EventDelivered || e.Kind == EventPublished {
					delivered[id]++
				}
			}
			out.Reset()
		}
		var out Output
		run := func(now int64) {
			for len(queue) > 0 {
				q := queue[0]
				queue = queue[1:]
				cores[q.s.To].Step(now, q.from, q.s.Frame, &out)
				take(q.s.To, &out)
			}
		}
		for k := range messages {
			src := wire.NodeID(1 + rng.IntN(nodes))
			if _, err := cores[src].Publish(int64(k), []byte{byte(k)}, &out); err != nil {
				t.Fatal(err)
			}
			take(src, &out)
			run(int64(k))
		}
		pushOnly := 0
		for _, d := range delivered {
			if d == messages {
				pushOnly++
			}
		}
		hb := int64(cfg.LazyHeartbeat)
		for now := hb; ; now += hb {
			busy := false
			for id := wire.NodeID(1); id <= nodes; id++ {
				c := cores[id]
				if w := c.NextWake(); w != 0 && w <= now {
					c.Tick(now, &out)
					take(id, &out)
				}
			}
			run(now)
			for _, c := range cores {
				busy = busy || c.NextWake() != 0
			}
			if !busy {
				break
			}
			if now > int64(10*time.Second) {
				t.Fatalf("seed %d: still busy after 10 s", seed)
			}
		}
		for id := wire.NodeID(1); id <= nodes; id++ {
			if delivered[id] != messages {
				t.Errorf("seed %d: node %d has %d of %d messages", seed, id, delivered[id], messages)
			}
		}
		if pushOnly == nodes {
			t.Errorf("seed %d: the push alone reached every node; the test repairs nothing", seed)
		}
		t.Logf("seed %d: %d of %d nodes had every message from the push alone", seed, pushOnly, nodes)
	}
}

// TestLazyAnnouncesAtGossipHeartbeatsHoweverLate: like gossipsub's
// message cache, an id is announced at LazyGossip heartbeats and served
// for LazyHistory heartbeats, counted in heartbeats the node runs, so a
// node whose heartbeats come late under load still announces each id
// three times. It goes idle after the third.
func TestLazyAnnouncesAtGossipHeartbeatsHoweverLate(t *testing.T) {
	cfg := lazyConfig()
	cfg.LazyD = 1
	c := newCore(t, cfg, 1, 2, 3)
	var out Output
	m, err := c.Publish(0, []byte("late"), &out)
	if err != nil {
		t.Fatal(err)
	}
	ihaves := 0
	now := int64(0)
	for beat := 1; c.NextWake() != 0; beat++ {
		if beat > 10 {
			t.Fatal("still ticking after 10 heartbeats")
		}
		// Each heartbeat comes a second later than the one before.
		now = c.NextWake() + int64(beat)*int64(time.Second)
		out.Reset()
		c.Tick(now, &out)
		for _, s := range out.Sends {
			if s.Ctl != nil && s.Ctl.Kind == wire.FrameIHave && s.To == 3 && slices.Contains(s.Ctl.IDs, m.ID) {
				ihaves++
			}
		}
	}
	if ihaves != cfg.LazyGossip {
		t.Errorf("announced at %d heartbeats, want %d", ihaves, cfg.LazyGossip)
	}
	// Still in the cache after three heartbeats, however long they took.
	out.Reset()
	c.Step(now, 3, Frame{Ctl: &wire.Control{Kind: wire.FrameIWant, IDs: []wire.MsgID{m.ID}}}, &out)
	if len(out.Sends) != 1 || out.Sends[0].Msg == nil {
		t.Errorf("IWANT after the last announcement got %+v, want the message", out.Sends)
	}
	// Idle, the cache ages by the clock: gone LazyHistory heartbeats later.
	out.Reset()
	c.Step(now+int64(cfg.LazyHistory)*int64(cfg.LazyHeartbeat), 2, Frame{Ctl: &wire.Control{Kind: wire.FrameIWant, IDs: []wire.MsgID{m.ID}}}, &out)
	if len(out.Sends) != 0 {
		t.Errorf("IWANT long after got %+v, want nothing: the id should have left the cache", out.Sends)
	}
}

// TestLazyRepairsADroppedEagerPush: a push to an eager peer can be lost
// on the way (a full send queue drops it); the eager peer hears of the
// id at the next heartbeat and fetches it, even when every link of the
// mesh is eager and no lazy peer would announce it.
func TestLazyRepairsADroppedEagerPush(t *testing.T) {
	cfg := lazyConfig()
	a := newCore(t, cfg, 1, 2)
	b := newCore(t, cfg, 2, 1)
	var out Output
	m, err := a.Publish(0, []byte("dropped"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Sends) != 1 || out.Sends[0].Msg == nil || out.Sends[0].To != 2 {
		t.Fatalf("publish sent %+v, want one push to the eager peer", out.Sends)
	}
	out.Reset() // the push is lost
	a.Tick(a.NextWake(), &out)
	now := a.NextWake()
	for range 3 { // IHAVE to b, IWANT to a, the message to b
		if len(out.Sends) == 0 {
			break
		}
		s := out.Sends[0]
		from, to := wire.NodeID(1), Protocol(b)
		if s.To == 1 {
			from, to = 2, a
		}
		var next Output
		to.Step(now, from, s.Frame, &next)
		for _, e := range next.Events {
			if e.Kind == EventDelivered && e.Msg.ID == m.ID && s.To == 2 {
				return
			}
		}
		out = next
	}
	t.Fatal("the eager peer never got the message whose push was lost")
}
