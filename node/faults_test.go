package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/fault"
	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

func flood(_ int, c *node.Config) { c.Gossip.Strategy = gossip.Flood }

// TestFaultCutBothWays cuts one link at one end: nothing crosses it in
// either direction, the connection stays up, and clearing the plan lets
// messages through again.
func TestFaultCutBothWays(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, flood)
	m.waitLinked()
	a, b := m.nodes[0], m.nodes[1]
	if err := a.SetFaults(fault.Plan{Cut: map[wire.NodeID]bool{b.ID(): true}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fromA, err := a.Publish(ctx, []byte("a to b, cut"))
	if err != nil {
		t.Fatal(err)
	}
	fromB, err := b.Publish(ctx, []byte("b to a, cut"))
	if err != nil {
		t.Fatal(err)
	}
	// b's copy is dropped when it reaches a's loop: wait until it has.
	eventually(t, "a to drop b's frame", func() bool {
		return labelled(t, a, "gossipmesh_fault_dropped_total", "reason", "cut") >= 2
	})
	if _, ok := b.Receipt(ctx, fromA.ID, 0); ok {
		t.Error("a's message crossed the cut link")
	}
	if _, ok := a.Receipt(ctx, fromB.ID, 0); ok {
		t.Error("b's message crossed the cut link")
	}
	if len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Errorf("the cut closed the connection: a has %d peers, b %d", len(a.Peers()), len(b.Peers()))
	}
	if got := a.Faults(); !got.Cut[b.ID()] {
		t.Errorf("Faults() = %+v, want b cut", got)
	}

	if err := a.SetFaults(fault.Plan{}); err != nil {
		t.Fatal(err)
	}
	after, err := b.Publish(ctx, []byte("b to a, healed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Receipt(ctx, after.ID, settle); !ok {
		t.Error("after the plan was cleared, b's message never reached a")
	}
}

// TestFaultDropRate drops 20% of a's frames: of 1,000 messages a sends
// to its only peer, about 800 arrive, and every one missing is counted.
func TestFaultDropRate(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, func(i int, c *node.Config) {
		flood(i, c)
		if i == 0 {
			c.Faults = fault.Plan{Rule: fault.Rule{Drop: 0.2}}
		}
	})
	m.waitLinked()
	a, b := m.nodes[0], m.nodes[1]
	ctx := context.Background()
	const total = 1000
	var ids []string
	for i := range total {
		rc, err := a.Publish(ctx, []byte(fmt.Sprint("m", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	eventually(t, "every kept frame to arrive", func() bool {
		lost := labelled(t, a, "gossipmesh_fault_dropped_total", "reason", "loss")
		return counter(t, b, "gossipmesh_messages_delivered_total")+lost == total
	})
	got := 0
	for _, id := range ids {
		if _, ok := b.Receipt(ctx, id, 0); ok {
			got++
		}
	}
	// A fixed seed makes this exact for one build of the core; the bounds
	// (four standard deviations) leave room for routers that send more.
	if got < 750 || got > 850 {
		t.Fatalf("%d of %d arrived through a 20%% drop plan, want about 800", got, total)
	}
	t.Logf("%d of %d arrived", got, total)
}

// TestFaultDelayHoldsFrames delays a's frames by 200 ms ± 100 ms: each
// message reaches b no sooner than the least delay after it was published,
// and the frames of the link arrive in the order they were sent, jitter
// and all.
func TestFaultDelayHoldsFrames(t *testing.T) {
	t.Parallel()
	const delay, jitter = 200 * time.Millisecond, 100 * time.Millisecond
	m := startMesh(t, [][]int{nil, {0}}, flood)
	m.waitLinked()
	a, b := m.nodes[0], m.nodes[1]
	if err := a.SetFaults(fault.Plan{Rule: fault.Rule{Delay: delay, Jitter: jitter}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := range 20 {
		rc, err := a.Publish(ctx, []byte(fmt.Sprint("late ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	var last time.Time
	for i, id := range ids {
		rc, ok := b.Receipt(ctx, id, settle)
		if !ok {
			t.Fatalf("message %d never arrived", i)
		}
		if lat := rc.ReceivedAt.Sub(rc.PublishedAt); lat < delay-jitter {
			t.Errorf("message %d arrived %v after its publish, before the least delay %v", i, lat, delay-jitter)
		}
		if rc.ReceivedAt.Before(last) {
			t.Errorf("message %d arrived before message %d: the delay reordered the link", i, i-1)
		}
		last = rc.ReceivedAt
	}
	if h := a.HeldFrames(); h != 0 {
		t.Errorf("%d frames still held after every one arrived", h)
	}
}

// TestFaultHeldFramesWithinBudget: a held frame counts toward its peer's
// send queue, so a long delay cannot hold more frames than SendQueue; the
// rest are dropped and counted as a full queue's.
func TestFaultHeldFramesWithinBudget(t *testing.T) {
	t.Parallel()
	const limit = 4
	m := startMesh(t, [][]int{nil, {0}}, func(i int, c *node.Config) {
		flood(i, c)
		c.SendQueue = limit
	})
	m.waitLinked()
	a := m.nodes[0]
	if err := a.SetFaults(fault.Plan{Rule: fault.Rule{Delay: fault.MaxDelay}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := a.Publish(context.Background(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if h := a.HeldFrames(); h != limit {
		t.Errorf("%d frames held, want the send queue's limit of %d", h, limit)
	}
	if d := a.Peers()[0].Dropped; d != 10-limit {
		t.Errorf("%d frames dropped as over the budget, want %d", d, 10-limit)
	}
}

// TestFaultPlanValidation: SetFaults and New refuse what a node cannot
// apply, naming the field.
func TestFaultPlanValidation(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil}, nil)
	n := m.nodes[0]
	for _, c := range []struct {
		p    fault.Plan
		want string
	}{
		{fault.Plan{Rule: fault.Rule{Drop: 2}}, "drop"},
		{fault.Plan{Cut: map[wire.NodeID]bool{n.ID(): true}}, "cut"},
		{fault.Plan{Paused: map[wire.NodeID]bool{2: true}}, "paused"},
	} {
		if err := n.SetFaults(c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SetFaults(%+v): got %v, want an error naming %s", c.p, err, c.want)
		}
	}
	if got := n.Faults(); !got.IsZero() {
		t.Errorf("a refused plan took effect: %+v", got)
	}
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Faults = fault.Plan{Rule: fault.Rule{Jitter: -1}}
	if _, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), "jitter") {
		t.Errorf("New with a bad plan: got %v, want an error naming jitter", err)
	}
}

// TestFaultsThroughAPI drives a node's plan through its HTTP API: a PUT
// is in force at once (a message published next does not cross the cut),
// GET reports it, and DELETE clears it.
func TestFaultsThroughAPI(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, flood)
	m.waitLinked()
	a, b := m.nodes[0], m.nodes[1]
	srv := httptest.NewServer(api.NewHandler(a, nil))
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL, srv.Client())
	ctx := context.Background()
	plan := fault.Plan{Rule: fault.Rule{Drop: 0.5}, Cut: map[wire.NodeID]bool{b.ID(): true}}
	got, err := c.SetFaults(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if got.Drop != 0.5 || !got.Cut[b.ID()] {
		t.Fatalf("PUT answered %+v", got)
	}
	if p := a.Faults(); p.Drop != 0.5 || !p.Cut[b.ID()] {
		t.Fatalf("the node holds %+v after the PUT", p)
	}
	rc, err := a.Publish(ctx, []byte("cut off"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Receipt(ctx, rc.ID, 100*time.Millisecond); ok {
		t.Error("a message crossed a cut made through the API")
	}
	if _, err := c.SetFaults(ctx, fault.Plan{Cut: map[wire.NodeID]bool{a.ID(): true}}); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Errorf("cutting the node from itself: got %v, want a 400 naming cut", err)
	}
	if err := c.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Faults(ctx); err != nil || !p.IsZero() {
		t.Fatalf("GET after DELETE: %+v, %v", p, err)
	}
}

// TestFaultClearKeepsLinkOrder: frames published after the plan is
// cleared do not overtake frames still held by its delay.
func TestFaultClearKeepsLinkOrder(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, flood)
	m.waitLinked()
	a, b := m.nodes[0], m.nodes[1]
	if err := a.SetFaults(fault.Plan{Rule: fault.Rule{Delay: 300 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	held, err := a.Publish(ctx, []byte("held"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetFaults(fault.Plan{}); err != nil {
		t.Fatal(err)
	}
	next, err := a.Publish(ctx, []byte("after the clear"))
	if err != nil {
		t.Fatal(err)
	}
	first, ok1 := b.Receipt(ctx, held.ID, settle)
	second, ok2 := b.Receipt(ctx, next.ID, settle)
	if !ok1 || !ok2 {
		t.Fatalf("arrived: held %v, after the clear %v", ok1, ok2)
	}
	if second.ReceivedAt.Before(first.ReceivedAt) {
		t.Errorf("the frame sent after the clear arrived %v before the held one", first.ReceivedAt.Sub(second.ReceivedAt))
	}
}

// TestFaultSplitHalvesInMemory splits a 100-node mesh in halves with
// fault plans alone, as mesh chaos split does: each side holds exactly its
// own side's message, every connection stays up, and once the plans are
// cleared a new message reaches all 100.
func TestFaultSplitHalvesInMemory(t *testing.T) {
	t.Parallel()
	const n, half = 100, 50
	rng := rand.New(rand.NewPCG(9, 9))
	dials := make([][]int, n)
	for i := 1; i < n; i++ {
		if i != half {
			base := 0
			if i > half {
				base = half
			}
			dials[i] = append(dials[i], base+rng.IntN(i-base)) // a tree within each half
		}
		if j := rng.IntN(n); j != i && !slices.Contains(dials[i], j) {
			dials[i] = append(dials[i], j) // and links anywhere
		}
	}
	dials[half] = append(dials[half], 0) // joins the halves before the split
	m := startMesh(t, dials, flood)
	m.waitLinked()
	side := func(i int) []int {
		var out []int
		for j := range n {
			if (j < half) != (i < half) {
				out = append(out, j)
			}
		}
		return out
	}
	for i, nd := range m.nodes {
		p := fault.Plan{Cut: map[wire.NodeID]bool{}}
		for _, j := range side(i) {
			p.Cut[m.nodes[j].ID()] = true
		}
		if err := nd.SetFaults(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	left, err := m.nodes[3].Publish(ctx, []byte("left"))
	if err != nil {
		t.Fatal(err)
	}
	right, err := m.nodes[77].Publish(ctx, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range m.nodes {
		own, other := left.ID, right.ID
		if i >= half {
			own, other = right.ID, left.ID
		}
		if _, ok := nd.Receipt(ctx, own, settle); !ok {
			t.Fatalf("node %d never got its own side's message", i)
		}
		if _, ok := nd.Receipt(ctx, other, 0); ok {
			t.Errorf("node %d got the other side's message through the split", i)
		}
	}
	for i, nd := range m.nodes {
		if !m.linkedAsExpected(i, nd) {
			t.Errorf("node %d lost links to the split: the connections must stay up", i)
		}
		if err := nd.SetFaults(fault.Plan{}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := m.nodes[60].Publish(ctx, []byte("healed"))
	if err != nil {
		t.Fatal(err)
	}
	for i, nd := range m.nodes {
		if _, ok := nd.Receipt(ctx, after.ID, settle); !ok {
			t.Fatalf("node %d never got the message published after the heal", i)
		}
	}
}
