package gossip

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/wire"
)

// TestLazyGraftsAWorkingLinkWhenTheEagerSetIsSilent: a node whose eager
// links were cut without a PeerDown (a partition) hears nothing from its
// eager set; when a first copy then comes from a lazy peer, after the
// eager set pushed nothing for LazyEagerSilence, that peer is grafted, so
// the next message is pushed to the node instead of waiting on a lazy
// neighbour's random announcements. While the eager set pushes, or with
// the rule off, a copy from a lazy peer grafts no one.
func TestLazyGraftsAWorkingLinkWhenTheEagerSetIsSilent(t *testing.T) {
	msg := func(seq uint64) *wire.Message {
		m := &wire.Message{Origin: 9, Seq: seq, Hop: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		return m
	}
	grafted := func(out *Output, p wire.NodeID) bool {
		for _, s := range out.Sends {
			if s.To == p && s.Ctl != nil && s.Ctl.Kind == wire.FrameGraft {
				return true
			}
		}
		return false
	}
	for _, silence := range []time.Duration{0, 5 * time.Second} {
		cfg := lazyConfig()
		cfg.LazyD = 2
		cfg.LazyEagerSilence = silence
		c, err := New(cfg, 1, rand.New(rand.NewPCG(5, 1)))
		if err != nil {
			t.Fatal(err)
		}
		var out Output
		for p := wire.NodeID(2); p <= 5; p++ {
			c.PeerUp(0, p, &out)
		}
		eager := LazyEager(c)
		var lazy wire.NodeID
		for p := wire.NodeID(2); p <= 5; p++ {
			if !slices.Contains(eager, p) {
				lazy = p
				break
			}
		}
		// The eager set delivers the first message, then goes silent.
		out.Reset()
		c.Receive(0, eager[0], msg(1), &out)
		// A copy from the lazy peer soon after grafts no one: the eager
		// set was heard from within LazyEagerSilence.
		now := int64(time.Second)
		out.Reset()
		c.Receive(now, lazy, msg(2), &out)
		if grafted(&out, lazy) || slices.Contains(LazyEager(c), lazy) {
			t.Fatalf("silence %v: the lazy peer was grafted 1 s after an eager push", silence)
		}
		// Six seconds of eager silence, then another copy from it.
		now = int64(7 * time.Second)
		out.Reset()
		c.Receive(now, lazy, msg(3), &out)
		got := grafted(&out, lazy) && slices.Contains(LazyEager(c), lazy)
		if want := silence > 0; got != want {
			t.Fatalf("silence %v: lazy peer grafted %v after the eager set pushed nothing for 7 s, want %v (eager %v)", silence, got, want, LazyEager(c))
		}
		st, _ := LazyStatsOf(c)
		if want := uint64(0); silence > 0 {
			want = 1
			if st.SilentGrafts != want {
				t.Fatalf("silence %v: %d silent grafts, want %d", silence, st.SilentGrafts, want)
			}
		} else if st.SilentGrafts != want {
			t.Fatalf("silence %v: %d silent grafts, want 0", silence, st.SilentGrafts)
		}
		if silence == 0 {
			continue
		}
		// The next message from elsewhere is pushed to it.
		out.Reset()
		c.Receive(now+int64(time.Millisecond), eager[1], msg(4), &out)
		pushed := false
		for _, s := range out.Sends {
			pushed = pushed || (s.To == lazy && s.Msg != nil)
		}
		if !pushed {
			t.Fatalf("the grafted peer %v got no push of the next message: %+v", lazy, out.Sends)
		}
	}
}

// TestLazyFailingEagerPeerDoesNotCount: an eager peer that breaks two
// more of the node's IWANTs than it answers (a liar: it announces what it
// never serves, and forwards nothing) no longer counts toward LazyD: the
// node grafts another peer beside it, and keeps pushing to it (its lies
// go on being seen). One broken IWANT changes nothing.
func TestLazyFailingEagerPeerDoesNotCount(t *testing.T) {
	cfg := lazyConfig()
	cfg.LazyD = 2
	c, err := New(cfg, 1, rand.New(rand.NewPCG(5, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var out Output
	for p := wire.NodeID(2); p <= 6; p++ {
		c.PeerUp(0, p, &out)
	}
	liar := LazyEager(c)[0]
	now := int64(time.Millisecond)
	lie := func(seq uint64) {
		id := wire.ComputeMsgID(9, seq, []byte("never"))
		out.Reset()
		c.Step(now, liar, Frame{Ctl: &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}}}, &out)
		// Heartbeats until the IWANT times out, with no other announcer.
		for end := now + int64(cfg.LazyIWantTimeout+2*cfg.LazyHeartbeat); now < end; now += int64(cfg.LazyHeartbeat) {
			c.Tick(now, &out)
		}
	}
	msg := func(seq uint64) *wire.Message {
		m := &wire.Message{Origin: 8, Seq: seq, Hop: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		return m
	}
	from := func() wire.NodeID {
		for p := wire.NodeID(2); p <= 6; p++ {
			if !slices.Contains(LazyEager(c), p) {
				return p
			}
		}
		t.Fatal("no lazy peer")
		return 0
	}
	lie(1)
	out.Reset()
	c.Receive(now, from(), msg(1), &out)
	if e := LazyEager(c); len(e) != cfg.LazyD {
		t.Fatalf("after one broken IWANT the eager set is %v, want %d peers", e, cfg.LazyD)
	}
	lie(2)
	out.Reset()
	c.Receive(now, from(), msg(2), &out)
	e := LazyEager(c)
	if len(e) != cfg.LazyD+1 || !slices.Contains(e, liar) {
		t.Fatalf("after two broken IWANTs the eager set is %v: want the failing peer %v and %d others", e, liar, cfg.LazyD)
	}
	out.Reset()
	c.Receive(now, from(), msg(3), &out)
	pushed := 0
	for _, s := range out.Sends {
		if s.Msg != nil && (s.To == liar || slices.Contains(e, s.To)) {
			pushed++
		}
	}
	if pushed < cfg.LazyD {
		t.Fatalf("the next message went to %d eager peers: %+v", pushed, out.Sends)
	}
}
