package gossip

import (
	"errors"
	"fmt"
	"math"
	"time"

	"gossipmesh/wire"
)

// This file holds the per-origin rate budget: a token bucket per origin
// that bounds how many new messages of one origin a node delivers and
// forwards a second. Every other defence lets a spammer of valid messages
// through: its messages are signed, well formed and new, so they pass
// validation, earn it first-delivery credit, and stay under the per-link
// frame limit, while every node verifies, stores and forwards each one.
// The budget caps what any one origin can make the whole mesh carry;
// Guard (score/) punishes the origin itself when it sends over its budget
// directly, so that its neighbours ban it, and never the relays of an
// honest burst.

// ErrOriginBudget is the Err of an EventRefused for a copy whose origin
// has spent its rate budget (Config.OriginRate): it is dropped, not
// delivered, not forwarded and not marked seen, so a copy that arrives
// once the origin's budget has refilled is accepted. Compare with ==: the
// core reports this value unwrapped.
var ErrOriginBudget = errors.New("message origin is over its rate budget")

// Defaults of the per-origin budget's bounds, for a Config that turns the
// budget on (OriginRate > 0) and leaves them at zero.
const (
	// DefaultOriginBurstSeconds is OriginBurst's default, in seconds of
	// OriginRate: 2 s.
	DefaultOriginBurstSeconds = 2
	// DefaultOriginMax is OriginMax's default: 4,096 origins, about
	// 200 KiB.
	DefaultOriginMax = 4096
	// maxOriginMax bounds OriginMax: 1M origins is about 50 MiB.
	maxOriginMax = 1 << 20
	// maxOriginRate bounds OriginRate, far above what a node can verify.
	maxOriginRate = 1e9
)

// OriginBurstSize resolves Config.OriginBurst: the bucket's size in messages,
// DefaultOriginBurstSeconds of OriginRate when it is 0 (and at least 1).
func (c Config) OriginBurstSize() float64 {
	if c.OriginBurst > 0 {
		return c.OriginBurst
	}
	return max(c.OriginRate*DefaultOriginBurstSeconds, 1)
}

// OriginMaxTracked resolves Config.OriginMax: DefaultOriginMax when 0.
func (c Config) OriginMaxTracked() int {
	if c.OriginMax > 0 {
		return c.OriginMax
	}
	return DefaultOriginMax
}

// originBudgetOn says whether cores built from c keep per-origin budgets:
// a rate is set and the origin of a message is proven by its signature.
// Under SigningNone anyone can claim any origin, so a budget would let a
// forger spend an honest origin's budget and silence it.
func (c Config) originBudgetOn() bool { return c.OriginRate > 0 && c.Signing == SigningStrict }

// validateOrigin checks the per-origin budget's settings.
func (c Config) validateOrigin() error {
	switch {
	case math.IsNaN(c.OriginRate) || c.OriginRate < 0 || c.OriginRate > maxOriginRate:
		return fmt.Errorf("gossip: origin rate must be in 0..%g messages/s (0 is off), got %v", maxOriginRate, c.OriginRate)
	case math.IsNaN(c.OriginBurst) || c.OriginBurst < 0 || c.OriginBurst > maxOriginRate:
		return fmt.Errorf("gossip: origin burst must be in 0..%g messages (0 is %d s of the rate), got %v", maxOriginRate, DefaultOriginBurstSeconds, c.OriginBurst)
	case c.OriginBurst > 0 && c.OriginBurst < 1:
		return fmt.Errorf("gossip: origin burst must be at least 1 message, got %v", c.OriginBurst)
	case c.OriginMax < 0 || c.OriginMax > maxOriginMax:
		return fmt.Errorf("gossip: origin max must be in 0..%d origins (0 is %d), got %d", maxOriginMax, DefaultOriginMax, c.OriginMax)
	}
	return nil
}

// TokenBucket is one rate budget: Tokens refill at a rate per second up
// to a burst, and each message spends one. The zero value is an empty
// bucket whose clock starts at its first use; Fill makes it full. It is
// pure: time is the caller's now, in nanoseconds, and a clock that goes
// back refills nothing. The node runtime uses one for its own publishes.
type TokenBucket struct {
	// Tokens is what the bucket held at At.
	Tokens float64
	// At is when Tokens was last brought up to date, ns.
	At int64
}

// Fill makes b full at now.
func (b *TokenBucket) Fill(now int64, burst float64) { b.Tokens, b.At = burst, now }

// refill brings b up to date at now.
func (b *TokenBucket) refill(now int64, rate, burst float64) {
	if now > b.At {
		b.Tokens = min(burst, b.Tokens+float64(now-b.At)*rate/float64(time.Second))
		b.At = now
	}
}

// Has reports whether b holds a whole token at now, refilling it first.
func (b *TokenBucket) Has(now int64, rate, burst float64) bool {
	b.refill(now, rate, burst)
	return b.Tokens >= 1
}

// Take spends one token at now if b holds one, and reports whether it did.
func (b *TokenBucket) Take(now int64, rate, burst float64) bool {
	if !b.Has(now, rate, burst) {
		return false
	}
	b.Tokens--
	return true
}

// Wait is how long after now b will hold a whole token (0 if it does).
func (b *TokenBucket) Wait(now int64, rate, burst float64) time.Duration {
	if b.Has(now, rate, burst) {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.Tokens) / rate * float64(time.Second)))
}

// OriginStats are a node's per-origin budget counters, for metrics and
// tests.
type OriginStats struct {
	// Tracked is how many origins the node holds a bucket for now.
	Tracked int
	// Ignored counts copies refused because their origin was over its
	// budget (EventRefused with ErrOriginBudget), Direct those of them
	// that the origin itself sent.
	Ignored, Direct uint64
	// Evicted counts buckets forgotten to make room for a new origin
	// (Config.OriginMax).
	Evicted uint64
}

// originEntry is one origin's bucket, in the table's recency list.
type originEntry struct {
	origin     wire.NodeID
	bucket     TokenBucket
	prev, next int32 // recency list: prev is more recent; -1 ends it
}

// originTable holds the buckets of at most max origins. When it is full a
// new origin takes the slot of the origin charged least recently, which
// has had the longest to refill: usually its bucket is full again and
// forgetting it forgives nothing; otherwise it comes back with a full
// bucket, at most one burst early. Lookups go through a map, eviction
// through a recency list threaded through the slots, so both cost O(1)
// and nothing depends on map order.
type originTable struct {
	idx        map[wire.NodeID]int32
	e          []originEntry
	head, tail int32 // most and least recently charged; -1 when empty
	stats      OriginStats
}

func newOriginTable() *originTable {
	return &originTable{idx: make(map[wire.NodeID]int32), head: -1, tail: -1}
}

// bucket returns origin's bucket, making one (full at now) if there is
// none, evicting the least recently charged origin when the table holds
// max of them. It does not move the entry in the recency list: spend does.
func (t *originTable) bucket(now int64, origin wire.NodeID, burst float64, max int) int32 {
	if i, ok := t.idx[origin]; ok {
		return i
	}
	var i int32
	if len(t.e) < max {
		i = int32(len(t.e))
		t.e = append(t.e, originEntry{prev: -1, next: -1})
	} else {
		i = t.tail
		t.unlink(i)
		delete(t.idx, t.e[i].origin)
		t.stats.Evicted++
	}
	t.e[i] = originEntry{origin: origin, prev: -1, next: -1}
	t.e[i].bucket.Fill(now, burst)
	t.idx[origin] = i
	t.pushFront(i)
	return i
}

func (t *originTable) unlink(i int32) {
	e := &t.e[i]
	if e.prev >= 0 {
		t.e[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.e[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *originTable) pushFront(i int32) {
	e := &t.e[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.e[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// allows reports whether origin's bucket holds a token at now, without
// spending it: the check before the signature, so that a spent origin
// costs no crypto. An origin the table does not hold has a full bucket,
// and is not added: only what passes validation may take a slot.
func (t *originTable) allows(now int64, origin wire.NodeID, rate, burst float64) bool {
	i, ok := t.idx[origin]
	return !ok || t.e[i].bucket.Has(now, rate, burst)
}

// spend takes one of origin's tokens at now, for a copy about to be
// delivered, and makes it the most recently charged origin. allows said
// yes at this now, so the token is there (a new origin starts full).
func (t *originTable) spend(now int64, origin wire.NodeID, rate, burst float64, max int) {
	i := t.bucket(now, origin, burst, max)
	t.e[i].bucket.Take(now, rate, burst)
	if t.head != i {
		t.unlink(i)
		t.pushFront(i)
	}
}

// originsOf is the core's origin table, nil when the budget is off.
func (c *Core) originsOf() *originTable {
	if c.store == nil {
		return nil
	}
	return c.store.origins
}

// overBudget reports whether m's origin has no token left at now (the
// check before the signature). A node's own messages never get here: a
// copy of one is a duplicate, or refused before (check, admit).
func (c *Core) overBudget(now int64, m *wire.Message) bool {
	t := c.originsOf()
	if t == nil {
		return false
	}
	cfg := &c.sh.cfg
	return !t.allows(now, m.Origin, cfg.OriginRate, c.sh.originBurst)
}

// refuseOverBudget reports m, from from, as refused for its origin's
// budget.
func (c *Core) refuseOverBudget(from wire.NodeID, m *wire.Message, out *Output) {
	t := c.originsOf()
	t.stats.Ignored++
	if from == m.Origin {
		t.stats.Direct++
	}
	out.Events = append(out.Events, Event{Kind: EventRefused, Msg: m, From: from, Err: ErrOriginBudget})
}

// chargeOrigin spends a token of m's origin for a copy that passed
// validation and is about to be delivered.
func (c *Core) chargeOrigin(now int64, m *wire.Message) {
	t := c.originsOf()
	if t == nil {
		return
	}
	cfg := &c.sh.cfg
	t.spend(now, m.Origin, cfg.OriginRate, c.sh.originBurst, c.sh.originMax)
}

// OriginStats returns the core's per-origin budget counters; ok is false
// when the budget is off (Config.OriginRate 0, or SigningNone).
func (c *Core) OriginStats() (s OriginStats, ok bool) {
	t := c.originsOf()
	if t == nil {
		return OriginStats{}, false
	}
	s = t.stats
	s.Tracked = len(t.idx)
	return s, true
}
