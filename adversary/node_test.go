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
