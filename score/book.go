package score

import (
	"math"

	"gossipmesh/wire"
)

// decaying is a counter that halves every half-life, decayed lazily when
// it is read or added to, so that nothing has to walk every peer on a
// timer and the value at a given time is the same however often it was
// read.
type decaying struct {
	v  float64
	at int64 // when v was last brought up to date, ns
}

// value is the counter at now.
func (d *decaying) value(now, halfLife int64, zero float64) float64 {
	if d.v == 0 || now <= d.at {
		return d.v
	}
	v := d.v * math.Exp2(-float64(now-d.at)/float64(halfLife))
	if v < zero {
		v = 0
	}
	d.v, d.at = v, now
	return v
}

// add adds x at now.
func (d *decaying) add(now, halfLife int64, zero, x float64) {
	d.v = d.value(now, halfLife, zero) + x
	if now > d.at {
		d.at = now
	}
}

// peerRecord is what the book holds about one peer.
type peerRecord struct {
	connected      bool
	connectedAt    int64 // when the current link came up
	disconnectedAt int64 // when the last link went down (retained peers)
	host           string
	first          decaying // P2: first deliveries
	copies         decaying // P3: copies delivered, first or not
	invalid        decaying // P4
	behaviour      decaying // P7
	broken         decaying // the part of P7 owed to broken promises
	lastPush       int64    // P3: when this node last pushed payload to it
}

// Terms are one peer's score split into its terms, each already weighted,
// for tests, the API and the reason of a ban. Score is their sum.
type Terms struct {
	Time, FirstDeliveries, Deficit, Invalid, Colocation, Behaviour float64
}

// Score is the sum of the terms.
func (t Terms) Score() float64 {
	return t.Time + t.FirstDeliveries + t.Deficit + t.Invalid + t.Colocation + t.Behaviour
}

// Worst names the term that takes the most off the score, for a ban's
// reason: "invalid_messages", "behaviour", "delivery_deficit",
// "colocation", or "score" when no term is negative.
func (t Terms) Worst() string {
	name, worst := "score", 0.0
	for _, c := range []struct {
		name string
		v    float64
	}{{"invalid_messages", t.Invalid}, {"behaviour", t.Behaviour}, {"delivery_deficit", t.Deficit}, {"colocation", t.Colocation}} {
		if c.v < worst {
			name, worst = c.name, c.v
		}
	}
	return name
}

// Book holds the score counters of the peers a node knows: the connected
// ones and, for Params.RetainScore, the ones that went away, so that a
// peer cannot launder a bad score by reconnecting. It is bounded by
// Params.MaxPeers. Every method takes the time now, in nanoseconds; time
// only moves forward. A Book is not safe for concurrent use.
type Book struct {
	p     Params
	peers map[wire.NodeID]*peerRecord
	// hosts counts the connected peers per host, for P6.
	hosts map[string]int
	// received counts the first deliveries at this node from any peer,
	// decaying like the P3 counters: what eager peers are measured
	// against.
	received decaying
}

// NewBook returns an empty book. p must be valid (Params.Validate).
func NewBook(p Params) *Book {
	return &Book{p: p, peers: make(map[wire.NodeID]*peerRecord), hosts: make(map[string]int)}
}

// Len is the number of peers tracked, connected and retained.
func (b *Book) Len() int { return len(b.peers) }

// Tracked reports whether the book holds a record of peer.
func (b *Book) Tracked(peer wire.NodeID) bool { return b.peers[peer] != nil }

// Connected records that a link to peer came up at now. A retained peer
// keeps its counters; its time connected (P1) starts again from zero.
func (b *Book) Connected(peer wire.NodeID, now int64) {
	r := b.peers[peer]
	if r == nil {
		b.makeRoom(now)
		r = &peerRecord{}
		b.peers[peer] = r
	}
	if r.connected {
		return
	}
	r.connected, r.connectedAt, r.lastPush = true, now, 0
	if r.host != "" {
		b.hosts[r.host]++
	}
}

// Disconnected records that the link to peer went down at now; the peer's
// record is retained for Params.RetainScore.
func (b *Book) Disconnected(peer wire.NodeID, now int64) {
	r := b.peers[peer]
	if r == nil || !r.connected {
		return
	}
	r.connected, r.disconnectedAt = false, now
	b.unhost(r)
}

// SetHost records which host (IP) peer is on, for P6; "" for none (a host
// exempt from colocation, such as loopback).
func (b *Book) SetHost(peer wire.NodeID, host string) {
	r := b.peers[peer]
	if r == nil || r.host == host {
		return
	}
	if r.connected {
		b.unhost(r)
	}
	r.host = host
	if r.connected && host != "" {
		b.hosts[host]++
	}
}

func (b *Book) unhost(r *peerRecord) {
	if r.host == "" {
		return
	}
	if c := b.hosts[r.host] - 1; c > 0 {
		b.hosts[r.host] = c
	} else {
		delete(b.hosts, r.host)
	}
}

// makeRoom forgets retained peers whose retention is over and, if the book
// is still full, the retained peer with the best score.
func (b *Book) makeRoom(now int64) {
	if len(b.peers) < b.p.MaxPeers {
		return
	}
	retain := int64(b.p.RetainScore)
	var (
		best      wire.NodeID
		bestScore = math.Inf(-1)
	)
	for id, r := range b.peers {
		if r.connected {
			continue
		}
		if now-r.disconnectedAt >= retain {
			delete(b.peers, id)
			continue
		}
		if s := b.terms(r, now).Score(); s > bestScore || (s == bestScore && id < best) {
			best, bestScore = id, s
		}
	}
	if len(b.peers) >= b.p.MaxPeers && best != 0 {
		delete(b.peers, best)
	}
}

// record returns peer's record, forgetting it first if it is a retained
// one whose retention is over.
func (b *Book) record(peer wire.NodeID, now int64) *peerRecord {
	r := b.peers[peer]
	if r != nil && !r.connected && now-r.disconnectedAt >= int64(b.p.RetainScore) {
		delete(b.peers, peer)
		return nil
	}
	return r
}

// Delivered records a valid copy of a message from peer at now: the first
// copy this node received (first, P2) or a later one; both count as
// delivered for P3.
func (b *Book) Delivered(peer wire.NodeID, now int64, first bool) {
	if first {
		b.received.add(now, int64(b.p.DeficitHalfLife), b.p.DecayToZero, 1)
	}
	r := b.record(peer, now)
	if r == nil {
		return
	}
	if first {
		r.first.add(now, int64(b.p.FirstDeliveryHalfLife), b.p.DecayToZero, 1)
	}
	if b.p.DeficitWeight != 0 {
		r.copies.add(now, int64(b.p.DeficitHalfLife), b.p.DecayToZero, 1)
	}
}

// Pushed records that this node pushed a payload frame to peer at now,
// which makes it an eager link for P3.
func (b *Book) Pushed(peer wire.NodeID, now int64) {
	if r := b.peers[peer]; r != nil {
		r.lastPush = now
	}
}

// Invalid records a message peer itself got wrong (P4).
func (b *Book) Invalid(peer wire.NodeID, now int64) {
	if r := b.record(peer, now); r != nil {
		r.invalid.add(now, int64(b.p.InvalidHalfLife), b.p.DecayToZero, 1)
	}
}

// Penalty adds x to peer's behaviour penalty (P7): 1 per broken promise,
// 1 per Params.RateLimitedPerPenalty frames dropped for its rate limits.
func (b *Book) Penalty(peer wire.NodeID, now int64, x float64) {
	if r := b.record(peer, now); r != nil && x > 0 {
		r.behaviour.add(now, int64(b.p.BehaviourHalfLife), b.p.DecayToZero, x)
	}
}

// BrokePromise adds one broken promise to peer's behaviour penalty (P7),
// and to the part of it that kept promises may take back (KeptPromise).
func (b *Book) BrokePromise(peer wire.NodeID, now int64) {
	if r := b.record(peer, now); r != nil {
		hl := int64(b.p.BehaviourHalfLife)
		r.behaviour.add(now, hl, b.p.DecayToZero, 1)
		r.broken.add(now, hl, b.p.DecayToZero, 1)
	}
}

// KeptPromise takes up to x back from peer's behaviour penalty (P7), but
// only from what broken promises added to it, which decays as P7 does:
// a promise peer kept offsets one it broke, never a penalty of another
// kind (rate limits, graylisted frames, its own messages past the
// budget). It reports how much it took back.
func (b *Book) KeptPromise(peer wire.NodeID, now int64, x float64) float64 {
	r := b.record(peer, now)
	if r == nil || x <= 0 {
		return 0
	}
	hl := int64(b.p.BehaviourHalfLife)
	x = min(x, r.broken.value(now, hl, b.p.DecayToZero), r.behaviour.value(now, hl, b.p.DecayToZero))
	if x <= 0 {
		return 0
	}
	r.broken.add(now, hl, b.p.DecayToZero, -x)
	r.behaviour.add(now, hl, b.p.DecayToZero, -x)
	r.broken.v, r.behaviour.v = max(r.broken.v, 0), max(r.behaviour.v, 0)
	return x
}

// Score is peer's score at now, 0 for a peer the book does not hold.
func (b *Book) Score(peer wire.NodeID, now int64) float64 {
	return b.Terms(peer, now).Score()
}

// Terms is peer's score at now, term by term.
func (b *Book) Terms(peer wire.NodeID, now int64) Terms {
	r := b.record(peer, now)
	if r == nil {
		return Terms{}
	}
	return b.terms(r, now)
}

func (b *Book) terms(r *peerRecord, now int64) Terms {
	p := &b.p
	var t Terms
	if r.connected {
		t.Time = p.TimeWeight * min(float64(now-r.connectedAt)/float64(p.TimeQuantum), p.TimeCap)
	}
	t.FirstDeliveries = p.FirstDeliveryWeight * min(r.first.value(now, int64(p.FirstDeliveryHalfLife), p.DecayToZero), p.FirstDeliveryCap)
	if d := b.deficit(r, now); d > 0 {
		t.Deficit = p.DeficitWeight * d * d
	}
	if v := r.invalid.value(now, int64(p.InvalidHalfLife), p.DecayToZero); v > 0 {
		t.Invalid = p.InvalidWeight * v * v
	}
	if r.connected && r.host != "" {
		if over := b.hosts[r.host] - p.ColocationThreshold; over > 0 {
			t.Colocation = p.ColocationWeight * float64(over*over)
		}
	}
	if over := r.behaviour.value(now, int64(p.BehaviourHalfLife), p.DecayToZero) - p.BehaviourThreshold; over > 0 {
		t.Behaviour = p.BehaviourWeight * over * over
	}
	return t
}

// deficit is P3's share of the expected deliveries an eager peer did not
// make, from 0 to 1.
func (b *Book) deficit(r *peerRecord, now int64) float64 {
	p := &b.p
	if p.DeficitWeight == 0 || !r.connected || r.lastPush == 0 ||
		now-r.lastPush > int64(p.DeficitWindow) || now-r.connectedAt < int64(p.DeficitActivation) {
		return 0
	}
	hl := int64(p.DeficitHalfLife)
	total := b.received.value(now, hl, p.DecayToZero)
	if total < p.DeficitMinimum {
		return 0
	}
	expected := p.DeficitFraction * total
	got := r.copies.value(now, hl, p.DecayToZero)
	if got >= expected {
		return 0
	}
	return 1 - got/expected
}
