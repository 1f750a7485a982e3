package node

import (
	"testing"
	"time"

	"gossipmesh/wire"
)

// arrive runs the arrival check of n on a message that p published at
// publishedAt and that arrived at at, and reports whether it was dropped
// over budget.
func arrive(n *Node, p *peer, publishedAt, at int64) bool {
	in := inbound{from: p, at: at, msg: wire.Message{Origin: p.id, PublishedAt: publishedAt}}
	return n.overBudgetAtArrival(p, &in)
}

// TestDirectBudgetCountsByPublishTime: the arrival check of a link's own
// messages charges them at their publish time, so an honest peer that
// publishes at its own budget (a burst, then the rate) is never counted
// over it, however long its messages waited before they arrived and
// however many arrive together; a spammer is counted over once its
// messages pass the direct burst, and publish times in the past or far
// ahead buy it nothing.
func TestDirectBudgetCountsByPublishTime(t *testing.T) {
	t.Parallel()
	n := pipeNode(t, 1)
	o := &n.own
	if !o.on || o.rate != 1000 || o.burst != 1000 || o.directBurst != 1500 {
		t.Fatalf("own budget %+v, want the runtime default: rate 1,000, own burst 1,000, direct burst 1,500", o)
	}
	t0 := time.Now().UnixNano()
	sec := int64(time.Second)

	// Honest: its own burst at t0, then 1,000 a second for 3 s, all held
	// up and arriving together 4 s after t0.
	honest := &peer{id: 7}
	over := 0
	for i := range 1000 {
		_ = i
		if arrive(n, honest, t0, t0+4*sec) {
			over++
		}
	}
	for i := range 3000 {
		if arrive(n, honest, t0+int64(i+1)*sec/1000, t0+4*sec) {
			over++
		}
	}
	if over != 0 {
		t.Errorf("an honest peer at its own budget, its messages arriving together, was counted %d over", over)
	}

	// A spammer at 20,000 a second, arriving as published: over budget
	// from about the direct burst on.
	spam := &peer{id: 8}
	first := -1
	for i := range 20000 {
		at := t0 + int64(i)*sec/20000
		if arrive(n, spam, at, at) && first < 0 {
			first = i
		}
	}
	if first < 1500 || first > 1700 {
		t.Errorf("a spammer at 20,000/s was first counted over budget at its message %d, want just past the direct burst of 1,500", first)
	}

	// Lying about publish times: all stamped long ago, arriving at the
	// budget's own rate, the clock never moves and the bucket never
	// refills; stamped far ahead, the clock moves at most directSlack
	// past the arrival.
	past := &peer{id: 9}
	first = -1
	for i := range 3000 {
		if arrive(n, past, t0-60*sec, t0+int64(i)*sec/1000) && first < 0 {
			first = i
		}
	}
	if first != 1500 {
		t.Errorf("a peer stamping its messages in the past was first counted over at %d, want 1,500 (no refill)", first)
	}
	ahead := &peer{id: 10}
	first = -1
	for i := range 3000 {
		if arrive(n, ahead, t0+10*sec, t0) && first < 0 {
			first = i
		}
	}
	if want := 1500 + int(o.rate*directSlack.Seconds()); first < 0 || first > want {
		t.Errorf("a peer stamping its messages 10 s ahead was first counted over at %d, want at most %d", first, want)
	}
	if got := past.overBudget.Load() + ahead.overBudget.Load() + spam.overBudget.Load(); got == 0 {
		t.Error("no frame counted for the loop to charge")
	}
}
