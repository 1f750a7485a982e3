package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// floodCopies is what flood sends per broadcast on a connected graph: the
// publisher to all its peers, every other node to all but the one its
// first copy came from.
func floodCopies(g *Graph) int64 {
	var deg int64
	for i := range g.N() {
		deg += int64(len(g.Peers(i)))
	}
	return deg - int64(g.N()-1)
}

// TestManyInFlight: with Interval shorter than a broadcast's spread, many
// broadcasts are in flight at once, interleaved, and each still reaches
// every node with exactly flood's copies, its own id and its own hops. The
// same seed gives the same report, byte for byte.
func TestManyInFlight(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Broadcasts = 20
	cfg.Interval = time.Millisecond
	runOnce := func() ([]byte, *Report, bool) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		lastAt := map[int]int64{}
		overlapped := false
		s.OnDeliver(func(d Delivery) {
			if d.Broadcast > 0 && d.At < lastAt[d.Broadcast-1] {
				t.Fatalf("broadcast %d delivered at %d before broadcast %d's delivery at %d: not in time order", d.Broadcast, d.At, d.Broadcast-1, lastAt[d.Broadcast-1])
			}
			if prev, ok := lastAt[d.Broadcast+1]; ok && prev <= d.At {
				overlapped = true // a later broadcast was already delivering
			}
			lastAt[d.Broadcast] = d.At
		})
		r, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := floodCopies(s.Graph())
		for _, b := range r.PerBroadcast {
			if b.Reached != cfg.Nodes || b.Messages != want || b.Rejected != 0 {
				t.Errorf("broadcast %d: reached %d of %d with %d copies (%d rejected), want all with %d", b.Index, b.Reached, cfg.Nodes, b.Messages, b.Rejected, want)
			}
			if got, want := b.PublishedAtMS, float64(b.Index); got != want {
				t.Errorf("broadcast %d published at %v ms, want %v", b.Index, got, want)
			}
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(r); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes(), r, overlapped
	}
	a, r, overlapped := runOnce()
	if len(r.PerBroadcast) != cfg.Broadcasts {
		t.Fatalf("%d broadcasts reported, want %d", len(r.PerBroadcast), cfg.Broadcasts)
	}
	if !overlapped {
		t.Error("no two broadcasts were in flight at once")
	}
	if b, _, _ := runOnce(); !bytes.Equal(a, b) {
		t.Error("the same seed gave two different reports")
	}
}

// TestSimEgress: every send of every node passes the simulator's egress,
// and what it drops never arrives: dropping everything leaves each
// broadcast at its publisher.
func TestSimEgress(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[wire.NodeID]int{}
	s.SetEgress(func(_ int64, from wire.NodeID, _ *gossip.Send) bool {
		calls[from]++
		return false
	})
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[wire.NodeID]int{}
	for _, b := range r.PerBroadcast {
		if b.Reached != 1 {
			t.Errorf("broadcast %d reached %d nodes through an egress that drops everything", b.Index, b.Reached)
		}
		want[wire.NodeID(b.Publisher)+1] += len(s.Graph().Peers(b.Publisher))
	}
	if len(calls) != len(want) {
		t.Errorf("egress saw sends from %v, want %v", calls, want)
	}
	for id, n := range want {
		if calls[id] != n {
			t.Errorf("egress saw %d sends from %v, want %d", calls[id], id, n)
		}
	}
}

// announcer is a second protocol on the engine: the gossip core, plus a
// timer 1 ms after each first delivery whose tick sends an IHAVE to every
// peer. It is a gossip.Waker: its timer is its NextWake, and the core's
// seen-cache expiry waits for the next input.
type announcer struct {
	*gossip.Core
	wake   int64
	held   []wire.MsgID
	ticked []int64 // when the timer fired
	got    *int    // IHAVEs received, over all nodes
}

func (a *announcer) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	if f.Ctl != nil && f.Ctl.Kind == wire.FrameIHave {
		*a.got++
	}
	start := len(out.Events)
	a.Core.Step(now, from, f, out)
	for _, e := range out.Events[start:] {
		if e.Kind == gossip.EventDelivered {
			a.held = append(a.held, e.Msg.ID)
			a.wake = now + int64(time.Millisecond)
		}
	}
}

func (a *announcer) Tick(now int64, out *gossip.Output) {
	a.Core.Tick(now, out)
	if a.wake != 0 && now >= a.wake {
		a.ticked = append(a.ticked, now)
		c := &wire.Control{Kind: wire.FrameIHave, IDs: a.held}
		for _, p := range a.Peers() {
			out.SendControl(p, c)
		}
		a.wake, a.held = 0, nil
	}
}

func (a *announcer) NextWake() int64 { return a.wake }

func (a *announcer) NextTick() int64 {
	t := a.Core.NextTick()
	if a.wake != 0 && (t == 0 || a.wake < t) {
		t = a.wake
	}
	return t
}

// plain hides everything but the Protocol methods: the engine cannot tick
// it lazily and wakes it at every NextTick.
type plain struct{ gossip.Protocol }

// TestTicksThatSend: NewWith runs another protocol on the engine; a
// node's NextWake (or, for a protocol that is not a gossip.Waker, its
// NextTick) schedules a tick event at that time, and the control frames
// its Tick sends are routed and stepped into their receivers.
func TestTicksThatSend(t *testing.T) {
	for _, lazy := range []bool{true, false} {
		t.Run(map[bool]string{true: "waker", false: "plain"}[lazy], func(t *testing.T) { ticksThatSend(t, lazy) })
	}
}

func ticksThatSend(t *testing.T, lazy bool) {
	cfg := small(TopologyUndirected, 8)
	cfg.Broadcasts = 1
	cfg.Latency = Latency{Kind: LatencyConstant, Min: 10 * time.Millisecond}
	cfg.Gossip.Auth = gossip.NewModelAuth(cfg.Seed)
	sh, err := gossip.Share(cfg.Gossip)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	var nodes []*announcer
	s, err := NewWith(cfg, func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol {
		c := gossip.NewShared(sh, wire.NodeID(i)+1, rng)
		c.SetPeers(peers)
		a := &announcer{Core: c, got: &got}
		nodes = append(nodes, a)
		if !lazy {
			return plain{a}
		}
		return a
	})
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[int]int64{}
	s.OnDeliver(func(d Delivery) { delivered[d.Node] = d.At })
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b := r.PerBroadcast[0]; b.Reached != cfg.Nodes {
		t.Fatalf("reached %d of %d", b.Reached, cfg.Nodes)
	}
	want := 0
	for i, a := range nodes {
		want += len(a.Peers())
		if i == r.PerBroadcast[0].Publisher {
			continue // its own publish is not a delivery to the wrapper
		}
		if len(a.ticked) != 1 || a.ticked[0] != delivered[i]+int64(time.Millisecond) {
			t.Errorf("node %d delivered at %d, ticked at %v; want once, 1 ms later", i, delivered[i], a.ticked)
		}
	}
	want -= len(nodes[r.PerBroadcast[0].Publisher].Peers())
	if got != want {
		t.Errorf("%d IHAVEs arrived, want one per peer of every node but the publisher: %d", got, want)
	}
}
