package gossip

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/wire"
)

// dialedIn counts the peers of eager that are in dialed.
func dialedIn(eager, dialed []wire.NodeID) int {
	k := 0
	for _, p := range eager {
		if slices.Contains(dialed, p) {
			k++
		}
	}
	return k
}

// TestLazyKeepsDialedEagerSlots: however many accepted links come first
// and graft the node, LazyDOut of its eager slots go to links it dialed
// (gossipsub's D_out), past LazyD if need be; a dialed eager peer that
// prunes it is replaced by another dialed one; and without the direction
// (plain PeerUp) nothing changes.
func TestLazyKeepsDialedEagerSlots(t *testing.T) {
	cfg := lazyConfig()
	cfg.LazyD, cfg.LazyDOut = 6, 3
	c, err := New(cfg, 1, rand.New(rand.NewPCG(5, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var out Output
	// 40 accepted links (sybils, say), every one grafting the node.
	for p := wire.NodeID(100); p < 140; p++ {
		LinkUp(c, 0, p, false, &out)
		c.Step(0, p, Frame{Ctl: &wire.Control{Kind: wire.FrameGraft}}, &out)
	}
	if e := LazyEager(c); len(e) != 2*cfg.LazyD {
		t.Fatalf("eager set %v: want it full (%d) of accepted links", e, 2*cfg.LazyD)
	}
	// Then the node's own 5 dialed links.
	dialed := []wire.NodeID{2, 3, 4, 5, 6}
	out.Reset()
	for _, p := range dialed {
		LinkUp(c, 0, p, true, &out)
	}
	e := LazyEager(c)
	if k := dialedIn(e, dialed); k != cfg.LazyDOut {
		t.Fatalf("eager set %v holds %d dialed peers, want %d", e, k, cfg.LazyDOut)
	}
	m := &wire.Message{Origin: 9, Seq: 1, Hop: 1, Body: []byte("x")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	out.Reset()
	c.Receive(0, 100, m, &out)
	var pushed []wire.NodeID
	for _, s := range out.Sends {
		if s.Msg != nil {
			pushed = append(pushed, s.To)
		}
	}
	if k := dialedIn(pushed, dialed); k != cfg.LazyDOut {
		t.Fatalf("pushed to %v: %d dialed peers, want %d", pushed, k, cfg.LazyDOut)
	}
	// A dialed eager peer prunes the node: another dialed one takes its
	// slot at the next message.
	gone := e[slices.IndexFunc(e, func(p wire.NodeID) bool { return slices.Contains(dialed, p) })]
	out.Reset()
	c.Step(int64(time.Millisecond), gone, Frame{Ctl: &wire.Control{Kind: wire.FramePrune}}, &out)
	m2 := &wire.Message{Origin: 9, Seq: 2, Hop: 1, Body: []byte("y")}
	m2.ID = wire.ComputeMsgID(m2.Origin, m2.Seq, m2.Body)
	c.Receive(int64(time.Millisecond), 100, m2, &out)
	e = LazyEager(c)
	if slices.Contains(e, gone) || dialedIn(e, dialed) != cfg.LazyDOut {
		t.Fatalf("after %v pruned the node: eager set %v, want %d other dialed peers", gone, e, cfg.LazyDOut)
	}

	// The same links without their direction: the dialed ones get no
	// slot in a full eager set.
	c2, err := New(cfg, 1, rand.New(rand.NewPCG(5, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for p := wire.NodeID(100); p < 140; p++ {
		c2.PeerUp(0, p, &out)
		c2.Step(0, p, Frame{Ctl: &wire.Control{Kind: wire.FrameGraft}}, &out)
	}
	for _, p := range dialed {
		c2.PeerUp(0, p, &out)
	}
	if k := dialedIn(LazyEager(c2), dialed); k != 0 {
		t.Fatalf("without direction %d of the later links are eager", k)
	}
}

// TestLazyDOutValidate: D_out is refused above LazyD and below 0, and
// the IHAVE cap below 1.
func TestLazyDOutValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"D_out above D", func(c *Config) { c.LazyD, c.LazyDOut = 6, 7 }},
		{"D_out negative", func(c *Config) { c.LazyDOut = -1 }},
		{"IHAVE cap zero", func(c *Config) { c.LazyMaxIHave = 0 }},
	} {
		cfg := lazyConfig()
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	cfg := lazyConfig()
	cfg.LazyD, cfg.LazyDOut = 6, 3
	if err := cfg.Validate(); err != nil {
		t.Errorf("D 6, D_out 3: %v", err)
	}
}

// lazyIDs makes k distinct ids, tagged with tag.
func lazyIDs(k int, tag byte) []wire.MsgID {
	ids := make([]wire.MsgID, k)
	for i := range ids {
		ids[i][0], ids[i][1], ids[i][2] = byte(i), byte(i>>8), tag
	}
	return ids
}

// asked returns the ids of the IWANTs in out sent to p.
func askedIn(out *Output, p wire.NodeID) []wire.MsgID {
	var ids []wire.MsgID
	for _, s := range out.Sends {
		if s.To == p && s.Ctl != nil && s.Ctl.Kind == wire.FrameIWant {
			ids = append(ids, s.Ctl.IDs...)
		}
	}
	return ids
}

// TestLazyIHaveCappedPerPeerAndHeartbeat: a peer that announces more ids
// than LazyMaxIHave within one heartbeat is asked for LazyMaxIHave of
// them, however many IHAVE frames it splits them into, the rest ignored
// and counted; another peer is not held to the first one's count, and
// the count starts again at the next heartbeat.
func TestLazyIHaveCappedPerPeerAndHeartbeat(t *testing.T) {
	cfg := lazyConfig()
	cfg.LazyMaxIHave = 10
	c := newCore(t, cfg, 1, 2, 3)
	var out Output
	ids := lazyIDs(30, 1)
	c.Step(0, 2, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids[:6]}}, &out)
	c.Step(0, 2, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids[6:12]}}, &out)
	if got := askedIn(&out, 2); len(got) != 10 {
		t.Fatalf("asked peer 2 for %d ids within one heartbeat, want the cap, 10", len(got))
	}
	if st, _ := LazyStatsOf(c); st.IHaveCapped != 2 {
		t.Errorf("IHaveCapped %d, want 2", st.IHaveCapped)
	}
	out.Reset()
	c.Step(0, 3, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids[12:18]}}, &out)
	if got := askedIn(&out, 3); len(got) != 6 {
		t.Fatalf("asked peer 3 for %d ids, want all 6", len(got))
	}
	out.Reset()
	now := int64(cfg.LazyHeartbeat)
	c.Tick(now, &out)
	out.Reset()
	c.Step(now, 2, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: ids[18:30]}}, &out)
	if got := askedIn(&out, 2); len(got) != 10 {
		t.Fatalf("after the heartbeat asked peer 2 for %d ids, want 10", len(got))
	}
}

// TestLazyAsksAnAnnouncerThatServes: a promise that times out goes to the
// announcer that has answered this node before, not to the one that
// announced last; and once a peer has broken more promises than it kept,
// an id asked of it is asked at once of the next peer that announces it,
// without waiting out the timeout.
func TestLazyAsksAnAnnouncerThatServes(t *testing.T) {
	cfg := lazyConfig()
	const liar, good, late = 2, 3, 4
	c := newCore(t, cfg, 1, liar, good, late)
	var out Output
	now := int64(0)
	// good serves one message it announced: a record of one kept.
	m := &wire.Message{Origin: 9, Seq: 1, Hop: 1, Body: []byte("x")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	c.Step(now, good, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID}}}, &out)
	c.Step(now, good, Frame{Msg: m}, &out)
	// An id announced by the liar first, then good, then late.
	id := lazyIDs(1, 7)[0]
	out.Reset()
	c.Step(now, liar, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}}, &out)
	c.Step(now, good, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}}, &out)
	c.Step(now, late, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}}, &out)
	if got := askedIn(&out, liar); len(got) != 1 {
		t.Fatalf("the first announcer was asked for %v", got)
	}
	// The timeout passes: the promise goes to good, which has served.
	for now < int64(cfg.LazyIWantTimeout+cfg.LazyHeartbeat) {
		now += int64(cfg.LazyHeartbeat)
		out.Reset()
		c.Tick(now, &out)
		if len(askedIn(&out, late)) > 0 {
			t.Fatal("asked the last announcer, which never served, before the one that did")
		}
		if len(askedIn(&out, good)) > 0 {
			break
		}
	}
	if len(askedIn(&out, good)) != 1 {
		t.Fatalf("the broken promise was not asked of the announcer that serves: %+v", out.Sends)
	}
	// The liar now has one broken and none kept. A new id asked of it is
	// asked of the next announcer at once.
	id2 := lazyIDs(1, 8)[0]
	out.Reset()
	c.Step(now, liar, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id2}}}, &out)
	c.Step(now, late, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id2}}}, &out)
	if len(askedIn(&out, liar)) != 1 || len(askedIn(&out, late)) != 1 {
		t.Fatalf("id asked of a promise breaker was not asked at once of the next announcer: %+v", out.Sends)
	}
}
