package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"gossipmesh/wire"
)

// hookRouter floods, and exercises every other hook: it keeps per-node
// state, answers a duplicate with a PRUNE, records control frames, asks
// for a tick after each delivery and then announces what it holds with an
// IHAVE to every peer, and logs peer changes.
type hookRouter struct{ FloodRouter }

type hookState struct {
	calls    []string
	held     []wire.MsgID
	nextTick int64
	pruned   []wire.NodeID
	ihaves   int
}

func (hookRouter) Init(n *Node) { n.SetState(&hookState{}) }

func (r hookRouter) Route(n *Node, now int64, m *wire.Message, from wire.NodeID, dst []wire.NodeID, out *Output) []wire.NodeID {
	st := n.State().(*hookState)
	st.calls = append(st.calls, "route")
	st.held = append(st.held, m.ID)
	st.nextTick = now + 100
	return r.FloodRouter.Route(n, now, m, from, dst, out)
}

func (hookRouter) OnDuplicate(n *Node, _ int64, _ *wire.Message, from wire.NodeID, out *Output) {
	st := n.State().(*hookState)
	st.calls = append(st.calls, "duplicate")
	out.SendControl(from, &wire.Control{Kind: wire.FramePrune, Reason: wire.PruneDuplicate})
}

func (hookRouter) OnControl(n *Node, _ int64, from wire.NodeID, c *wire.Control, _ *Output) {
	st := n.State().(*hookState)
	st.calls = append(st.calls, "control "+c.Kind.String())
	switch c.Kind {
	case wire.FramePrune:
		st.pruned = append(st.pruned, from)
	case wire.FrameIHave:
		st.ihaves++
	}
}

func (hookRouter) OnTick(n *Node, _ int64, out *Output) {
	st := n.State().(*hookState)
	st.calls = append(st.calls, "tick")
	st.nextTick = 0
	c := &wire.Control{Kind: wire.FrameIHave, IDs: slices.Clone(st.held)}
	for _, p := range n.Peers() {
		out.SendControl(p, c)
	}
}

func (hookRouter) NextTick(n *Node) int64 { return n.State().(*hookState).nextTick }

func (hookRouter) OnPeerUp(n *Node, _ int64, p wire.NodeID, _ *Output) {
	st := n.State().(*hookState)
	st.calls = append(st.calls, fmt.Sprint("up ", uint64(p)))
}

func (hookRouter) OnPeerDown(n *Node, _ int64, p wire.NodeID, _ *Output) {
	st := n.State().(*hookState)
	st.calls = append(st.calls, fmt.Sprint("down ", uint64(p)))
}

// TestRouterHooks drives three cores of a triangle through the Protocol
// interface only, and checks that every router hook is called, that
// per-node state stays per node, and that control frames a router sends
// reach the other router, both on the message path and from a tick.
func TestRouterHooks(t *testing.T) {
	sh, err := shareWith(unsignedConfig(), hookRouter{})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[wire.NodeID]Protocol{}
	for id := wire.NodeID(1); id <= 3; id++ {
		nodes[id] = NewShared(sh, id, rand.New(rand.NewPCG(1, uint64(id))))
	}
	var out Output
	for id, p := range nodes {
		for q := wire.NodeID(1); q <= 3; q++ {
			p.PeerUp(0, q, &out) // itself is ignored
		}
		if len(out.Sends) != 0 {
			t.Fatalf("n%d sent on peer up", id)
		}
	}
	type queued struct {
		from wire.NodeID
		s    Send
	}
	var q []queued
	take := func(from wire.NodeID) {
		for _, s := range out.Sends {
			q = append(q, queued{from, s})
		}
		out.Reset()
	}
	run := func(now int64) (controls int) {
		for len(q) > 0 {
			e := q[0]
			q = q[1:]
			if e.s.IsControl() {
				controls++
			}
			nodes[e.s.To].Step(now, e.from, e.s.Frame, &out)
			take(e.s.To)
		}
		return controls
	}
	if _, err := nodes[1].Publish(10, []byte("x"), &out); err != nil {
		t.Fatal(err)
	}
	take(1)
	// n1 sends to n2 and n3; each forwards to the other, and each gets a
	// duplicate from the other and answers with a PRUNE.
	if got := run(20); got != 2 {
		t.Errorf("%d control frames on the message path, want 2 PRUNEs", got)
	}
	for id := wire.NodeID(2); id <= 3; id++ {
		st := nodes[id].(*Core).State().(*hookState)
		other := 5 - id
		if !slices.Equal(st.pruned, []wire.NodeID{other}) {
			t.Errorf("n%d pruned by %v, want [n%d]", id, st.pruned, other)
		}
		if got := nodes[id].NextTick(); got != 120 {
			t.Errorf("n%d NextTick = %d, want the router's 120", id, got)
		}
	}
	// Ticking before the router's time does nothing; at it, each of n2
	// and n3 announces to both its peers.
	for id := wire.NodeID(2); id <= 3; id++ {
		nodes[id].Tick(119, &out)
		if len(out.Sends) != 0 {
			t.Fatalf("n%d sent on an early tick", id)
		}
		nodes[id].Tick(120, &out)
		take(id)
	}
	if got := run(130); got != 4 {
		t.Errorf("%d control frames from ticks, want 4 IHAVEs", got)
	}
	if st := nodes[1].(*Core).State().(*hookState); st.ihaves != 2 {
		t.Errorf("n1 got %d IHAVEs, want 2", st.ihaves)
	}
	nodes[2].PeerDown(140, 3, &out)
	nodes[2].PeerDown(140, 3, &out) // absent now: not heard again
	want := []string{"up 1", "up 3", "route", "duplicate", "control prune", "tick", "control ihave", "down 3"}
	if st := nodes[2].(*Core).State().(*hookState); !slices.Equal(st.calls, want) {
		t.Errorf("n2 hooks:\n got %q\nwant %q", st.calls, want)
	}
}

// TestRegistry: every strategy the config accepts has a router, and the
// registry refuses what it does not know.
func TestRegistry(t *testing.T) {
	for _, s := range Strategies() {
		cfg := unsignedConfig()
		cfg.Strategy = s
		if _, err := newRouter(cfg); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	cfg := unsignedConfig()
	cfg.Strategy = "nope"
	if _, err := newRouter(cfg); err == nil {
		t.Error("newRouter accepted an unknown strategy")
	}
}
