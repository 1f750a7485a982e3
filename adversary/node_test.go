package adversary

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

func newCore(t *testing.T, id wire.NodeID) *gossip.Core {
	t.Helper()
	cfg := gossip.DefaultConfig()
	cfg.Signing = gossip.SigningNone // the tests hand-build unsigned messages
	c, err := gossip.New(cfg, id, rand.New(rand.NewPCG(1, uint64(id))))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustParse(t *testing.T, s string) Modes {
	t.Helper()
	ms, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestHonestWrapIsTransparent: with no modes a Node sends exactly what the
// core it wraps sends.
func TestHonestWrapIsTransparent(t *testing.T) {
	bare, wrapped := newCore(t, 1), Wrap(newCore(t, 1), nil, rand.New(rand.NewPCG(2, 2)))
	var a, b gossip.Output
	for _, p := range []wire.NodeID{2, 3, 4} {
		bare.PeerUp(0, p, &a)
		wrapped.PeerUp(0, p, &b)
	}
	m1, _ := bare.Publish(5, []byte("x"), &a)
	m2, _ := wrapped.Publish(5, []byte("x"), &b)
	if m1.ID != m2.ID || !reflect.DeepEqual(a.Sends, b.Sends) {
		t.Errorf("honest wrap differs: %v against %v", b.Sends, a.Sends)
	}
	if wrapped.NextTick() != bare.NextTick() || wrapped.NextWake() != bare.NextWake() {
		t.Error("honest wrap asks for other ticks")
	}
}

// TestRateSchedule: a rate mode emits on schedule, in batches per tick,
// NextTick names the next emission, and a tick long overdue emits at
// most one second's worth.
func TestRateSchedule(t *testing.T) {
	n := Wrap(newCore(t, 1), mustParse(t, "spam=20000"), rand.New(rand.NewPCG(3, 3)))
	var out gossip.Output
	n.PeerUp(0, 2, &out)
	if got, want := n.NextTick(), int64(50*time.Microsecond); got != want {
		t.Fatalf("NextTick %d, want the first emission at %d", got, want)
	}
	out.Reset()
	n.Tick(int64(time.Millisecond), &out)
	if s := n.Stats().Spammed; s != 20 {
		t.Errorf("%d spammed in the first millisecond at 20,000/s, want 20", s)
	}
	if len(out.Sends) != 20 {
		t.Errorf("%d sends to the one peer, want 20", len(out.Sends))
	}
	out.Reset()
	n.Tick(int64(10*time.Second), &out)
	if s := n.Stats().Spammed; s != 20+20000 {
		t.Errorf("after a 10 s gap %d spammed, want 20 + one second's worth", s)
	}
	if next := n.NextTick(); next <= int64(10*time.Second) || next > int64(10*time.Second+50*time.Microsecond) {
		t.Errorf("NextTick %d after the gap, want the first emission after it", next)
	}
}

// TestFractionalRatePhase: a decimal rate emits one message a period,
// the phase places the emissions within it, and a long gap at a phase
// below 1 still skips to the first emission after it.
func TestFractionalRatePhase(t *testing.T) {
	for _, tc := range []struct {
		phase float64
		first time.Duration
	}{
		{0, 10 * time.Second}, // the default: one period in
		{1, 10 * time.Second}, // the same
		{0.25, 2500 * time.Millisecond},
		{-3, 10 * time.Second}, // out of range: the default
	} {
		n := Wrap(newCore(t, 1), mustParse(t, "forge=0.1"), rand.New(rand.NewPCG(3, 3)))
		n.SetPhase(tc.phase)
		var out gossip.Output
		n.PeerUp(0, 2, &out)
		if got := n.NextTick(); got != int64(tc.first) {
			t.Errorf("phase %v: first emission at %v, want %v", tc.phase, time.Duration(got), tc.first)
		}
		// Ticks every 100 ms for 35 s: emissions at first, first+10 s, ...
		for now := int64(0); now <= int64(35*time.Second); now += int64(100 * time.Millisecond) {
			n.Tick(now, &out)
		}
		want := 1 + uint64((35*time.Second-tc.first)/(10*time.Second))
		if got := n.Stats().Forged; got != want {
			t.Errorf("phase %v: %d forged in 35 s at 0.1/s, want %d", tc.phase, got, want)
		}
		// A gap of a minute: one emission (the tick's one second's worth
		// is one message), and the next after the gap.
		n.Tick(int64(95*time.Second), &out)
		if got := n.Stats().Forged; got != want+1 {
			t.Errorf("phase %v: after a gap %d forged, want %d", tc.phase, got, want+1)
		}
		next := n.NextTick()
		if next <= int64(95*time.Second) || next > int64(105*time.Second) {
			t.Errorf("phase %v: next emission at %v after the gap, want within the next period", tc.phase, time.Duration(next))
		}
		if (time.Duration(next)-tc.first)%(10*time.Second) != 0 {
			t.Errorf("phase %v: next emission at %v is off the schedule %v + k·10 s", tc.phase, time.Duration(next), tc.first)
		}
	}
}

// TestDelayHolds: delay holds every send, NextTick names the release, and
// the tick then sends them.
func TestDelayHolds(t *testing.T) {
	n := Wrap(newCore(t, 1), mustParse(t, "delay=200ms"), rand.New(rand.NewPCG(4, 4)))
	var out gossip.Output
	n.PeerUp(0, 2, &out)
	n.PeerUp(0, 3, &out)
	if _, err := n.Publish(int64(time.Millisecond), []byte("late"), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Sends) != 0 {
		t.Fatalf("%d sends left at once", len(out.Sends))
	}
	if got, want := n.NextTick(), int64(201*time.Millisecond); got != want {
		t.Errorf("NextTick %d, want the release at %d", got, want)
	}
	n.Tick(int64(200*time.Millisecond), &out)
	if len(out.Sends) != 0 {
		t.Errorf("released early")
	}
	n.Tick(int64(201*time.Millisecond), &out)
	if len(out.Sends) != 2 || n.Stats().Delayed != 2 {
		t.Errorf("%d sends released, stats %+v; want 2", len(out.Sends), n.Stats())
	}
}

// TestSetModes: modes change at run time and Modes reports them.
func TestSetModes(t *testing.T) {
	n := Wrap(newCore(t, 1), nil, rand.New(rand.NewPCG(5, 5)))
	if n.Modes().String() != "" {
		t.Error("honest node reports modes")
	}
	n.SetModes(mustParse(t, "liar,blackhole"))
	if got := n.Modes().String(); got != "blackhole,liar" {
		t.Errorf("Modes %q", got)
	}
	var out gossip.Output
	n.PeerUp(0, 2, &out)
	n.PeerUp(0, 3, &out)
	m := &wire.Message{Origin: 9, Seq: 1, Hop: 1, PublishedAt: 1, Body: []byte("b")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	n.SetModes(nil)
	n.Step(1, 2, gossip.Frame{Msg: m}, &out)
	if len(out.Sends) != 1 || out.Sends[0].To != 3 {
		t.Errorf("honest again, sends %v, want a forward to 3", out.Sends)
	}
}
