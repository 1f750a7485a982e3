package gossip

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"gossipmesh/wire"
)

// Anti-entropy pull (memberlist's push/pull sync, in the shape of a digest
// exchange): every Config.AntiEntropyPeriod, give or take half of it
// drawn from the core's rng so that nodes do not fall into step, a node
// sends one random peer a PULL whose digest lists, as per-origin sequence
// ranges, the messages its store holds inside the acceptance window. The
// peer answers with every stored message the digest lacks (bounded by
// AntiEntropyMaxMessages and AntiEntropyMaxBytes, and leaving the pushes
// half a period to deliver what it stored last: aeGrace) and, since the PULL
// asks for it (wire.PullWantDigest), with its own digest, so that the
// first node sends back what the peer lacks: one round trip repairs both
// sides. Repairs travel as ordinary payload frames at the sender's hop
// plus one, so the receiving core dedups, windows, delivers and forwards
// them like any copy, through whatever router runs.
//
// It is not a router: the core runs it beside any router (its timer is
// folded into Tick, NextTick and NextWake, and Step takes PULL frames
// before the router's OnControl, which never sees one). Its state lives
// in the core's message store, which every core keeps when anti-entropy
// is on, so a core without a store pays nothing.
//
// This is what repairs a message that every push lost: one published
// across a partition that later healed, or while a node was down. Past
// the store's bounds (count, bytes, age) or the acceptance window a
// message can no longer be repaired.
//
// A digest that would break wire's limits (MaxDigestOrigins,
// MaxDigestRanges) is sent partial (wire.PullPartial): it lists the run of
// origins that fits, in ascending order from a cursor that moves on past
// them each time, and speaks for every origin between its first and last
// listed one; sentinel origins 0 and math.MaxUint64 open and close each
// cycle (partial). The answer covers that interval only, so within a few
// periods every origin, known to the puller or not, has been covered and
// the exchange converges.

// antiEntropy is one node's anti-entropy state, kept in its message store.
type antiEntropy struct {
	next int64 // when the node next pulls; 0: asleep (off, or nothing stored that could repair anyone)
	// cursor is the index, among the origins of a digest too large to send
	// whole, of the first one the next partial digest lists.
	cursor int
	// open are the latest exchanges this node sent a digest in, so that a
	// message the digest lacked, delivered from that peer, counts as
	// repaired. A small ring: a node rarely has more in flight.
	open  [4]aeExchange
	opens int
	stats AntiEntropyStats
	// scratch for building digests: the (origin, seq) keys of the store.
	keys []seqKey
}

// aeExchange is a digest this node sent to peer, until when it counts
// deliveries from that peer as repairs.
type aeExchange struct {
	peer   wire.NodeID
	digest *wire.Control
	until  int64
}

type seqKey struct {
	origin wire.NodeID
	seq    uint64
}

// AntiEntropyStats are one node's anti-entropy counters, for metrics and
// tests.
type AntiEntropyStats struct {
	// PullsSent counts the PULLs this node's timer sent; DigestsSent the
	// digests it sent back to a PULL that asked for one.
	PullsSent, DigestsSent uint64
	// PartialDigests counts the digests (of either kind) sent partial,
	// because the store held more origins or ranges than one frame takes.
	PartialDigests uint64
	// PullsAnswered counts PULLs received and answered (with repairs, a
	// digest, or nothing when the digest lacked nothing).
	PullsAnswered uint64
	// RepairsSent counts messages sent in answer to a digest that lacked
	// them. RepairsReceived counts first deliveries, from a peer this
	// node had just sent a digest to, of messages that digest lacked: the
	// gaps that exchange filled (a push from that peer in the same period
	// that carried such a message counts too).
	RepairsSent, RepairsReceived uint64
	// Truncated counts answers cut short at AntiEntropyMaxMessages or
	// AntiEntropyMaxBytes; the rest goes in later exchanges.
	Truncated uint64
	// Unrepairable counts stored messages a peer lacked that were not sent
	// because they are past the acceptance window (the peer would refuse
	// them).
	Unrepairable uint64
	// Store is the message store the answers come from; its Evicted
	// counts messages that can no longer be repaired from this node.
	Store StoreStats
}

// AntiEntropyStatsOf returns n's anti-entropy counters; ok is false when n
// keeps no message store (flood and fanout without anti-entropy), which
// can neither pull nor answer.
func AntiEntropyStatsOf(n *Node) (AntiEntropyStats, bool) {
	if !n.sh.stores {
		return AntiEntropyStats{}, false
	}
	s := n.store.ae.stats
	s.Store = n.store.Stats()
	return s, true
}

// armAntiEntropy wakes a sleeping anti-entropy timer when the node stores
// a message: its first pull comes a period later, give or take half. A
// node pulls only while its store holds a message inside the acceptance
// window (antiEntropyTick), because only then can an exchange it starts
// repair anyone; a node that lacks everything is repaired by the peers
// that hold something, which pull it in their turn. So an idle mesh, or a
// simulator of a million nodes after its last broadcast, goes quiet.
func (c *Core) armAntiEntropy(now int64) {
	if ae := &c.store.ae; ae.next == 0 {
		ae.next = c.aeAfter(now)
	}
}

// aeAfter is the next pull time after now: a period, give or take half,
// drawn from the core's rng so that nodes do not fall into step.
func (c *Core) aeAfter(now int64) int64 {
	p := c.sh.ae
	return now + p/2 + c.rng.Int64N(p) + 1
}

// aeNext is when anti-entropy next wants a tick, 0 for never.
func (c *Core) aeNext() int64 {
	if c.sh.ae == 0 {
		return 0
	}
	return c.store.ae.next
}

// antiEntropyTick sends this period's PULL, when it is due, to one random
// peer, and arms the next one a period later, give or take half of it;
// when the store holds nothing inside the acceptance window the timer
// sleeps until the next message is stored (armAntiEntropy).
func (c *Core) antiEntropyTick(now int64, out *Output) {
	ae := &c.store.ae
	if ae.next == 0 || now < ae.next {
		return
	}
	d := c.digest(now, wire.PullWantDigest)
	if len(d.Ranges) == 0 {
		ae.next = 0
		return
	}
	ae.next = c.aeAfter(now)
	if len(c.peers) == 0 {
		return
	}
	to := c.peers[c.rng.IntN(len(c.peers))]
	ae.stats.PullsSent++
	c.opened(now, to, d)
	out.SendControl(to, d)
}

// opened records that this node sent digest d to peer at now; for a
// period (at least DefaultAntiEntropy, for a node whose own timer is off)
// deliveries from peer that d lacked count as repairs.
func (c *Core) opened(now int64, peer wire.NodeID, d *wire.Control) {
	ae := &c.store.ae
	until := now + max(c.sh.ae, int64(DefaultAntiEntropy))
	ae.open[ae.opens%len(ae.open)] = aeExchange{peer: peer, digest: d, until: until}
	ae.opens++
}

// noteDelivery counts m, first delivered from from, as a repair when it
// fills a gap of a digest this node recently sent to from.
func (c *Core) noteDelivery(now int64, from wire.NodeID, m *wire.Message) {
	ae := &c.store.ae
	for i := range min(ae.opens, len(ae.open)) {
		x := &ae.open[i]
		if x.peer == from && now <= x.until && !x.digest.Has(m.Origin, m.Seq) && listsOrigin(x.digest, m.Origin) {
			ae.stats.RepairsReceived++
			return
		}
	}
}

// onPull answers a PULL from peer from: every stored message its digest
// lacks, within the acceptance window and the answer's bounds, and, when
// asked, this node's own digest. A core without a store cannot answer and
// drops it.
func (c *Core) onPull(now int64, from wire.NodeID, d *wire.Control, out *Output) {
	if !c.sh.stores {
		return
	}
	ae := &c.store.ae
	ae.stats.PullsAnswered++
	c.store.expire(now)
	cfg := &c.sh.cfg
	window := int64(cfg.SeenTTL)
	young := now - c.aeGrace() + int64(cfg.StoreTTL) // entries expiring after this were stored within the grace
	sent, bytes := 0, 0
	s := c.store
	// Newest first: a node back from a restart lacks the whole history,
	// and what it missed while down is the newest part of it. Oldest
	// first, it would take one capped answer per round to get through
	// the history it never needed before it reached what it missed.
	for i := s.n - 1; i >= 0; i-- {
		e := &s.fifo[(s.head+i)%len(s.fifo)]
		if e.origin == from || e.expires > young || d.Has(e.origin, e.seq) || !listsOrigin(d, e.origin) {
			continue
		}
		m := e.m
		if now >= e.publishedAt+window || m.Hop >= cfg.MaxHops {
			ae.stats.Unrepairable++
			continue
		}
		if sent >= cfg.AntiEntropyMaxMessages || bytes+len(m.Body) > cfg.AntiEntropyMaxBytes {
			ae.stats.Truncated++
			break
		}
		next := *m
		next.Hop++
		out.Sends = append(out.Sends, Send{To: from, Frame: Frame{Msg: &next}})
		sent++
		bytes += len(m.Body)
	}
	ae.stats.RepairsSent += uint64(sent)
	if d.Flags&wire.PullWantDigest != 0 {
		mine := c.digest(now, 0)
		ae.stats.DigestsSent++
		c.opened(now, from, mine)
		out.SendControl(from, mine)
	}
}

// aeGrace is how long a stored message is left to the pushes, and to the
// router's own repair, before this node offers it in repair: half a period
// (of DefaultAntiEntropy for a node whose own timer is off), at most
// maxAEGrace, and at least Plumtree's GRAFT timeout and retry. A younger
// one is most likely still on its way to the puller along the router's
// links, or about to be grafted; a repaired copy that beat the push would
// turn the push into a duplicate, which Plumtree answers by pruning a link
// of its tree, and would make the repairing link eager.
func (c *Core) aeGrace() int64 {
	g := int64(DefaultAntiEntropy) / 2
	if c.sh.ae > 0 {
		g = min(c.sh.ae/2, int64(maxAEGrace))
	}
	cfg := &c.sh.cfg
	return max(g, int64(cfg.PlumtreeGraftTimeout+cfg.PlumtreeGraftRetry))
}

// maxAEGrace caps aeGrace: a push that has not arrived in a second on the
// links this mesh runs on was lost, whatever the period.
const maxAEGrace = time.Second

// listsOrigin reports whether digest d speaks for origin: a whole digest
// for every origin (an unlisted one means none of its messages), a partial
// one for the origins from its first listed to its last (an unlisted one
// between them means none of its messages; one outside says nothing).
func listsOrigin(d *wire.Control, origin wire.NodeID) bool {
	if d.Flags&wire.PullPartial == 0 {
		return true
	}
	n := len(d.Ranges)
	return n > 0 && d.Ranges[0].Origin <= origin && origin <= d.Ranges[n-1].Origin
}

// digest builds a PULL with flags whose ranges are the messages the store
// holds inside the acceptance window, partial (and so flagged) when they
// do not fit wire's limits.
func (c *Core) digest(now int64, flags wire.PullFlags) *wire.Control {
	s := c.store
	s.expire(now)
	ae := &s.ae
	window := int64(c.sh.cfg.SeenTTL)
	keys := ae.keys[:0]
	for i := range s.n {
		e := &s.fifo[(s.head+i)%len(s.fifo)]
		if now < e.publishedAt+window {
			keys = append(keys, seqKey{e.origin, e.seq})
		}
	}
	// The store is in arrival order, which for one origin is mostly
	// sequence order: a bench's or a busy publisher's store is often
	// sorted already, and checking costs one pass instead of a sort.
	if !slices.IsSortedFunc(keys, cmpSeqKey) {
		slices.SortFunc(keys, cmpSeqKey)
	}
	ae.keys = keys
	ranges := compress(keys)
	if s.crowdedAt != 0 && now < s.crowdedAt+window {
		claimEvicted(ranges)
		ranges = claimMarks(ranges, s.evictMarks(now, window))
	}
	if origins := countOrigins(ranges); origins > wire.MaxDigestOrigins || len(ranges) > wire.MaxDigestRanges {
		ranges = ae.partial(ranges, origins)
		flags |= wire.PullPartial
		ae.stats.PartialDigests++
	}
	return &wire.Control{Kind: wire.FramePull, Flags: flags, Ranges: ranges}
}

// cmpSeqKey orders keys by origin, then sequence: the digest's order.
func cmpSeqKey(a, b seqKey) int {
	if c := cmp.Compare(a.origin, b.origin); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// claimEvicted widens each origin's first range down to sequence 0, for a
// store that has evicted messages for room inside the window. Such a store
// no longer lists what this node delivered and then evicted, and a digest
// without them would have the peer send them back: duplicates, which
// Plumtree answers by pruning the link that sent them, cutting its tree
// under exactly the load that crowds the store. The price is that a
// message of an origin older than the oldest one still stored, and never
// received, is not repaired from this digest: it is past this node's
// store bounds, which is where repair ends anyway.
func claimEvicted(ranges []wire.SeqRange) {
	for i := range ranges {
		if i == 0 || ranges[i].Origin != ranges[i-1].Origin {
			ranges[i].First = 0
		}
	}
}

// evictMarks returns the store's marks of evictions for room younger than
// window, as ranges from sequence 0, sorted by origin, and forgets the
// older ones (the messages they cover are past the acceptance window).
func (s *msgStore) evictMarks(now, window int64) []wire.SeqRange {
	var out []wire.SeqRange
	for o, mk := range s.evictedTop {
		if now >= mk.at+window {
			delete(s.evictedTop, o)
			continue
		}
		out = append(out, wire.SeqRange{Origin: o, First: 0, Last: mk.seq})
	}
	// Map order is random: sort, so that the digest is deterministic.
	slices.SortFunc(out, func(a, b wire.SeqRange) int { return cmp.Compare(a.Origin, b.Origin) })
	return out
}

// claimMarks merges claims (one range from 0 per origin, sorted by origin)
// into ranges (sorted by origin, then sequence), so that a crowded store's
// digest also claims the holes its evictions left above its oldest stored
// message of an origin: messages it delivered in order and evicted while
// an older one, delivered late, stayed. Without them every peer sends
// those back at every exchange, each a duplicate. An origin with a claim
// and nothing stored gets a range of its own. The price is the one
// claimEvicted pays: a message in such a hole that this node never
// received is not repaired from this digest, being older than one its
// store already had to give up.
func claimMarks(ranges, claims []wire.SeqRange) []wire.SeqRange {
	if len(claims) == 0 {
		return ranges
	}
	out := make([]wire.SeqRange, 0, len(ranges)+len(claims))
	add := func(r wire.SeqRange) {
		if n := len(out); n > 0 && out[n-1].Origin == r.Origin && r.First <= out[n-1].Last+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			return
		}
		out = append(out, r)
	}
	i, j := 0, 0
	for i < len(ranges) || j < len(claims) {
		// A claim starts at 0, so it goes before every range of its origin.
		if j < len(claims) && (i == len(ranges) || claims[j].Origin <= ranges[i].Origin) {
			add(claims[j])
			j++
			continue
		}
		add(ranges[i])
		i++
	}
	return out
}

// compress turns sorted (origin, seq) keys into ranges: one per run of
// consecutive sequence numbers of one origin. Duplicate keys (a restarted
// origin that reused a sequence number, which a new SeqBase prevents) fold
// into one.
func compress(keys []seqKey) []wire.SeqRange {
	var out []wire.SeqRange
	for _, k := range keys {
		if n := len(out); n > 0 && out[n-1].Origin == k.origin && k.seq <= out[n-1].Last+1 {
			out[n-1].Last = max(out[n-1].Last, k.seq)
			continue
		}
		out = append(out, wire.SeqRange{Origin: k.origin, First: k.seq, Last: k.seq})
	}
	return out
}

func countOrigins(ranges []wire.SeqRange) int {
	n := 0
	for i, r := range ranges {
		if i == 0 || r.Origin != ranges[i-1].Origin {
			n++
		}
	}
	return n
}

// partial picks, from ranges of origins origins, the run of origins that
// fits in one digest, starting at the cursor, and moves the cursor past
// them (back to the first origin after the last). The run never wraps, so
// the digest speaks for every origin from its first listed one to its last
// (see coversOrigin); the run that starts the cycle also lists the
// sentinel origin 0 and the one that ends it the sentinel origin
// math.MaxUint64 (each with the range 0-0: sequence numbers start at 1, so
// it claims no message), so that over one cycle the digests speak for
// every origin, those this node has never heard of included. An origin
// whose ranges alone exceed the limit is listed with its first ranges: the
// peer then sends some of what this node holds (counted duplicates), never
// less than it lacks.
func (ae *antiEntropy) partial(ranges []wire.SeqRange, origins int) []wire.SeqRange {
	const sentinels = 2
	maxOrigins, maxRanges := wire.MaxDigestOrigins-sentinels, wire.MaxDigestRanges-sentinels
	// starts[i] is where origin i's ranges begin.
	starts := make([]int, 0, origins+1)
	for i, r := range ranges {
		if i == 0 || r.Origin != ranges[i-1].Origin {
			starts = append(starts, i)
		}
	}
	starts = append(starts, len(ranges))
	first := ae.cursor
	if first >= origins {
		first = 0
	}
	out := make([]wire.SeqRange, 0, min(len(ranges), maxRanges)+sentinels)
	if first == 0 {
		out = append(out, wire.SeqRange{Origin: 0})
	}
	o := first
	for ; o < origins && o-first < maxOrigins; o++ {
		group := ranges[starts[o]:starts[o+1]]
		if o == first && len(group) > maxRanges {
			group = group[:maxRanges]
		}
		if len(out)+len(group) > maxRanges+1 {
			break
		}
		out = append(out, group...)
	}
	if o == origins {
		out = append(out, wire.SeqRange{Origin: math.MaxUint64})
		o = 0
	}
	ae.cursor = o
	return out
}

// ParseAntiEntropy reads an --anti-entropy flag value into
// Config.AntiEntropy: "default" (or "") is the strategy's default (0), "off"
// or "0" turns it off (-1), and a Go duration ("500ms", "2s") is the
// period. Validate checks the period's bounds.
func ParseAntiEntropy(s string) (time.Duration, error) {
	switch s {
	case "", "default":
		return 0, nil
	case "off", "0":
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("anti-entropy %q: want a positive duration (e.g. 1s), off (or 0), or default", s)
	}
	return d, nil
}

// FormatAntiEntropy renders Config.AntiEntropy as ParseAntiEntropy reads it.
func FormatAntiEntropy(d time.Duration) string {
	switch {
	case d == 0:
		return "default"
	case d < 0:
		return "off"
	}
	return d.String()
}

// AntiEntropyUsage is the help text of every command's --anti-entropy flag.
const AntiEntropyUsage = "anti-entropy period: every `PERIOD` (give or take half) a node swaps a digest with one random peer and pulls what it lacks; " +
	"off (or 0) turns it off; default is off for flood and fanout, 1s for the routers that repair (plumtree, lazy)"
