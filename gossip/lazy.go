package gossip

import (
	"slices"

	"gossipmesh/wire"
)

// LazyRouter is lazy push, gossipsub's mesh plus gossip: a new message is
// pushed eagerly to LazyD peers (the node's eager set, never the sender),
// and every LazyHeartbeat the node announces the ids it received within
// the last LazyGossip heartbeats (IHAVE) to max(LazyDLazy,
// LazyGossipFactor × candidates) other peers, picked at random each
// heartbeat; the eager peers hear of each id once,
// at the first heartbeat, in case the push was dropped on the way. A peer
// that lacks an announced message asks for it (IWANT) and is answered
// from the message store, for messages still in the cache of the last
// LazyHistory heartbeats. The asker keeps a promise per id: if the
// message has not come LazyIWantTimeout later, the promise is broken and
// it asks the announcer with the best record (answers kept less promises
// broken), the latest among equals; an id asked of a peer that breaks
// more promises than it keeps is asked at once of the next announcer.
// A peer is asked for at most LazyMaxIHave ids a heartbeat.
//
// So eager push carries most of a message's spread at the cost of about
// LazyD payload frames per node, and the announcements repair whatever
// the push missed (a node none of its neighbours chose, a lost frame, a
// link that went down), at the cost of a few small control frames per
// node and heartbeat while messages are recent.
//
// The eager links are kept symmetric, like gossipsub's mesh: a node that
// adds a peer to its eager set sends it GRAFT (without ids), and the peer
// adds it back, up to twice LazyD (gossipsub's D_hi is 2 D); past that it
// answers PRUNE, and the grafting node leaves that peer out until the
// link goes down or the peer grafts it. Without that, a node that none of
// its neighbours happened to choose would get every message late, by
// repair. The eager set is topped up to LazyD, with peers drawn at random,
// whenever it is short (a link down, a PRUNE) and a message or heartbeat
// comes; a driver that hands the core its peers without PeerUp (the
// simulator's SetPeers) gets it filled on the first message. When the
// driver says which links the node dialed (gossip.LinkUp), LazyDOut of
// the eager slots go to those first (gossipsub's D_out), and a GRAFT from
// a dialed peer is taken past 2 LazyD: sybils can open links to a node
// and graft it, but not choose whom it dials.
//
// Its per-node state lives in the core's router slot. A node asks for
// ticks only while it has something to do, ids to announce or promises
// to keep, so a simulator of many idle nodes never wakes them.
type LazyRouter struct {
	cfg Config
}

// servesRepairs marks lazy push as a router whose cores keep a message
// store: IWANT is answered from it.
func (LazyRouter) servesRepairs() {}

// lazyRetransmit is how many times a node answers one peer's IWANT for one
// message (gossipsub's GossipRetransmission, 3): enough to survive lost
// answers, and a peer cannot make it send a body over and over.
const lazyRetransmit = 3

// lazyIndexThreshold is the cache size above which id lookups use a map.
const lazyIndexThreshold = 16

// lazyState is one node's lazy-push state.
type lazyState struct {
	eager []wire.NodeID
	// pruned are the peers that refused or dropped this node's GRAFT:
	// left out of the eager set until they graft it or their link goes.
	pruned []wire.NodeID
	// cache is the message cache: the ids this node received or published
	// within the last LazyHistory heartbeats, oldest first. base is the
	// position of cache[0] in the sequence of every id ever cached, and
	// index maps an id to its position once the cache is large.
	cache []lazyEntry
	base  uint64
	index map[wire.MsgID]uint64
	// promises are the announced messages this node asked for and still
	// lacks, in the order it first asked; byID finds one by id.
	promises []*lazyPromise
	byID     map[wire.MsgID]*lazyPromise
	// nextHB is the next heartbeat, 0 while there is nothing to do. hb
	// counts the heartbeats so far, lastHB is when the last one was, and
	// the message cache ages by hb: like gossipsub's mcache, an id is
	// announced at LazyGossip heartbeats and served for LazyHistory,
	// however late a busy node's heartbeats come. While the node is idle,
	// hb moves on with the clock (LazyRouter.state).
	nextHB  int64
	hb      uint64
	lastHB  int64
	scratch []wire.NodeID
	stats   LazyStats
	// eagerAt is when an eager peer last pushed this node a copy, or
	// when the first message came (LazyEagerSilence); heard says
	// whether a message came at all.
	eagerAt int64
	heard   bool
	// dialed are the linked peers this node dialed (PeerUpDialed): the
	// eager set keeps LazyDOut of them.
	dialed []wire.NodeID
	// asked counts the ids asked of each peer since the last heartbeat,
	// against LazyMaxIHave.
	asked []peerCount
	// record is what each peer did with this node's IWANTs: how many it
	// answered and how many it let time out. A promise moves to the
	// announcer with the best record, and away from one that breaks more
	// than it keeps as soon as another announces the id.
	record map[wire.NodeID]*peerRecord
}

// peerCount is a count for one peer.
type peerCount struct {
	p wire.NodeID
	n int
}

// peerRecord is one peer's record of IWANTs answered and broken.
type peerRecord struct {
	served, broken uint32
}

// lazyEntry is one message in the cache: the heartbeat count when it
// came, and marks for the peers known to have it (the one that sent it,
// those that sent a copy or announced it), which get no IHAVE for it, and
// for the peers that asked for it. A peer this node answered is not taken
// to have it: the answer may be lost on the way, and the peer asks again
// when the id is announced to it again.
type lazyEntry struct {
	id    wire.MsgID
	hb    uint64
	peers []peerMark
}

// peerMark is a peer known to have a message (has), or that asked for
// it, and how often this node has answered its IWANT for it.
type peerMark struct {
	p      wire.NodeID
	has    bool
	served uint8
}

// lazyPromise is an IWANT awaiting its message: asked is the peer asked,
// deadline when the promise is broken, alts the other peers that
// announced the id, oldest announcement first.
type lazyPromise struct {
	id       wire.MsgID
	asked    wire.NodeID
	deadline int64
	alts     []lazyAlt
}

// lazyAlt is a peer that announced a promised id, and when its latest
// IHAVE for it came.
type lazyAlt struct {
	p  wire.NodeID
	at int64
}

// announced notes that p announced the promised id at now.
func (pr *lazyPromise) announced(p wire.NodeID, now int64) {
	if p == pr.asked {
		return
	}
	if i := slices.IndexFunc(pr.alts, func(a lazyAlt) bool { return a.p == p }); i >= 0 {
		pr.alts = slices.Delete(pr.alts, i, i+1)
	}
	pr.alts = append(pr.alts, lazyAlt{p: p, at: now})
}

// next moves the promise to the announcer with the best record (st.merit:
// most answers kept, fewest broken), the latest of those announcing among
// equals, since it is the likeliest to still hold the id, and reports
// false when none is left that can: one whose IHAVE came before horizon
// (LazyHistory heartbeats ago) has dropped the id from its cache.
func (pr *lazyPromise) next(st *lazyState, horizon int64) bool {
	// Announcements are in order: those before horizon are stale.
	first := 0
	for first < len(pr.alts) && pr.alts[first].at < horizon {
		first++
	}
	pr.alts = slices.Delete(pr.alts, 0, first)
	if len(pr.alts) == 0 {
		return false
	}
	best := len(pr.alts) - 1
	if st.record != nil {
		bm := st.merit(pr.alts[best].p)
		for i := best - 1; i >= 0; i-- {
			if m := st.merit(pr.alts[i].p); m > bm {
				best, bm = i, m
			}
		}
	}
	pr.asked = pr.alts[best].p
	pr.alts = slices.Delete(pr.alts, best, best+1)
	return true
}

// merit is p's record as a number: answers kept less promises broken.
func (st *lazyState) merit(p wire.NodeID) int64 {
	if r := st.record[p]; r != nil {
		return int64(r.served) - int64(r.broken)
	}
	return 0
}

// unreliable reports whether p has broken more of this node's IWANTs
// than it answered.
func (st *lazyState) unreliable(p wire.NodeID) bool { return st.merit(p) < 0 }

// failing reports whether p has broken at least two more of this node's
// IWANTs than it answered: one lost answer is bad luck, and does not
// make the node look for another eager peer (fill).
func (st *lazyState) failing(p wire.NodeID) bool { return st.merit(p) <= -2 }

// note records that p kept (served) or broke a promise.
func (st *lazyState) note(p wire.NodeID, served bool) {
	if st.record == nil {
		st.record = make(map[wire.NodeID]*peerRecord)
	}
	r := st.record[p]
	if r == nil {
		r = &peerRecord{}
		st.record[p] = r
	}
	if served {
		r.served++
	} else {
		r.broken++
	}
}

// LazyStats are one node's lazy-push counters, for metrics and tests.
type LazyStats struct {
	// Eager and Lazy are the node's peers in its eager set and outside it.
	Eager, Lazy int
	// IHavesSent, IWantsSent, GraftsSent and PrunesSent count control
	// frames sent.
	IHavesSent, IWantsSent, GraftsSent, PrunesSent uint64
	// Served counts messages sent in answer to an IWANT; Unserved the ids
	// asked for that were not answered (no longer in the cache or the
	// store, or asked for too often by that peer).
	Served, Unserved uint64
	// PromisesBroken counts IWANTs whose message did not come within
	// LazyIWantTimeout; the next announcer, if any, was asked instead.
	PromisesBroken uint64
	// SilentGrafts counts peers grafted because they delivered a first
	// copy after the eager set had pushed nothing for LazyEagerSilence.
	SilentGrafts uint64
	// IHaveCapped counts announced ids not asked for because their
	// announcer had been asked for LazyMaxIHave ids since the last
	// heartbeat.
	IHaveCapped uint64
	// Cached is the number of ids in the message cache; Promises the
	// announced messages the node is waiting for.
	Cached, Promises int
	// Store is the message store that serves IWANT.
	Store StoreStats
}

// LazyStatsOf returns n's lazy-push counters; ok is false when n does not
// run the lazy router.
func LazyStatsOf(n *Node) (LazyStats, bool) {
	st, ok := n.State().(*lazyState)
	if !ok {
		return LazyStats{}, false
	}
	s := st.stats
	for _, p := range n.peers {
		if slices.Contains(st.eager, p) {
			s.Eager++
		} else {
			s.Lazy++
		}
	}
	s.Cached, s.Promises = len(st.cache), len(st.promises)
	s.Store, _ = n.StoreStats()
	return s, true
}

// LazyEager returns n's eager set under the lazy router (nil for any
// other router), in the order its peers joined it, for tests and
// dashboards. The slice is a copy.
func LazyEager(n *Node) []wire.NodeID {
	st, ok := n.State().(*lazyState)
	if !ok {
		return nil
	}
	return slices.Clone(st.eager)
}

func lazyOf(n *Node) *lazyState { return n.State().(*lazyState) }

// Init implements Router.
func (r LazyRouter) Init(n *Node) { n.SetState(&lazyState{}) }

func (r LazyRouter) heartbeat() int64 { return int64(r.cfg.LazyHeartbeat) }

// Route implements Router: the first copy of m, from from. m goes into the
// cache (from has it) and to the eager set but from; a promise for it is
// kept no longer.
func (r LazyRouter) Route(n *Node, now int64, m *wire.Message, from wire.NodeID, dst []wire.NodeID, out *Output) []wire.NodeID {
	st := r.state(n, now)
	r.fill(n, st, out)
	r.heardFrom(n, st, now, from, out)
	r.cacheAdd(st, m.ID, from)
	if p := st.byID[m.ID]; p != nil {
		if from == p.asked {
			st.note(from, true)
		}
		st.dropPromise(p)
	}
	for _, p := range st.eager {
		if p != from {
			dst = append(dst, p)
		}
	}
	r.arm(st, now)
	return dst
}

// heardFrom notes a first copy from from (0: this node's own). One from an
// eager peer shows the eager set works. One from another peer after the
// eager set pushed nothing for LazyEagerSilence grafts from, a link known
// to work, if the eager set has room (maxEager) and from has not pruned
// this node: the eager links are likely cut without a PeerDown, and the
// lazy neighbours' announcements reach this node only by lottery.
func (r LazyRouter) heardFrom(n *Node, st *lazyState, now int64, from wire.NodeID, out *Output) {
	switch {
	case from == 0:
	case !st.heard, slices.Contains(st.eager, from):
		st.eagerAt, st.heard = now, true
	case r.cfg.LazyEagerSilence > 0 && now-st.eagerAt >= int64(r.cfg.LazyEagerSilence) &&
		n.hasPeer(from) && len(st.eager) < r.maxEager() && !slices.Contains(st.pruned, from):
		st.stats.SilentGrafts++
		r.graft(st, from, out)
		st.eagerAt = now
	}
}

// arm schedules the next heartbeat if none is.
func (r LazyRouter) arm(st *lazyState, now int64) {
	if st.nextHB == 0 {
		st.nextHB = now + r.heartbeat()
	}
}

// state returns n's state with its cache aged to now: hb caught up with
// the heartbeats an idle node skipped, and the ids past LazyHistory
// heartbeats dropped.
func (r LazyRouter) state(n *Node, now int64) *lazyState {
	st := lazyOf(n)
	if st.nextHB == 0 && st.lastHB != 0 && now-st.lastHB >= r.heartbeat() {
		k := (now - st.lastHB) / r.heartbeat()
		st.hb += uint64(k)
		st.lastHB += k * r.heartbeat()
	}
	r.purge(st)
	return st
}

// fill tops the eager set up to LazyD working peers with peers outside
// it that have not pruned this node and are not failing, drawn at
// random, and grafts them, as gossipsub's heartbeat grafts its mesh up to
// D. Dialed peers come first: while fewer than LazyDOut of the working
// eager peers are links this node dialed, it grafts dialed peers, past
// LazyD if need be (gossipsub's D_out).
//
// An eager peer that has broken at least two more of this node's IWANTs
// than it answered (failing) does not count: it is likely a liar that announces what it
// never serves and forwards nothing, and the node would otherwise depend
// on it for a LazyD-th of its pushes until the scoring guard, seconds
// later, prunes it. It stays in the eager set (so it still gets this
// node's pushes, and its lies go on being seen and charged), and the set
// grows past LazyD, up to eagerCap.
func (r LazyRouter) fill(n *Node, st *lazyState, out *Output) {
	if len(st.dialed) > 0 && r.cfg.LazyDOut > 0 {
		r.fillDialed(n, st, out)
	}
	need := min(r.cfg.LazyD-st.working(), r.eagerCap()-len(st.eager))
	if need <= 0 || len(n.peers) <= len(st.eager)+len(st.pruned) {
		return
	}
	cand := st.scratch[:0]
	for _, p := range n.peers {
		if !slices.Contains(st.eager, p) && !slices.Contains(st.pruned, p) && !st.failing(p) {
			cand = append(cand, p)
		}
	}
	for i := 0; i < need && i < len(cand); i++ {
		j := i + n.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
		r.graft(st, cand[i], out)
	}
	st.scratch = cand[:0]
}

// working counts the eager peers that are not failing.
func (st *lazyState) working() int {
	if st.record == nil {
		return len(st.eager)
	}
	k := 0
	for _, p := range st.eager {
		if !st.failing(p) {
			k++
		}
	}
	return k
}

// eagerCap bounds the eager set, failing peers included: maxEager
// and LazyD more.
func (r LazyRouter) eagerCap() int { return r.maxEager() + r.cfg.LazyD }

// fillDialed grafts dialed peers, drawn at random among those outside the
// eager set that have not pruned this node, until LazyDOut of the eager
// peers are dialed or none is left.
func (r LazyRouter) fillDialed(n *Node, st *lazyState, out *Output) {
	need := r.cfg.LazyDOut
	for _, p := range st.eager {
		if slices.Contains(st.dialed, p) && !st.failing(p) {
			if need--; need <= 0 {
				return
			}
		}
	}
	cand := st.scratch[:0]
	for _, p := range st.dialed {
		if !slices.Contains(st.eager, p) && !slices.Contains(st.pruned, p) && !st.failing(p) {
			cand = append(cand, p)
		}
	}
	need = min(need, r.eagerCap()-len(st.eager))
	for i := 0; i < need && i < len(cand); i++ {
		j := i + n.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
		r.graft(st, cand[i], out)
	}
	st.scratch = cand[:0]
}

// graft adds p to the eager set and tells it so.
func (r LazyRouter) graft(st *lazyState, p wire.NodeID, out *Output) {
	st.eager = append(st.eager, p)
	st.stats.GraftsSent++
	out.SendControl(p, &wire.Control{Kind: wire.FrameGraft})
}

// maxEager is how many eager peers a node keeps when others graft it:
// gossipsub's D_hi, twice D.
func (r LazyRouter) maxEager() int { return 2 * r.cfg.LazyD }

// cacheAdd puts id in the cache, received from from (zero for this node's
// own message), dropping the oldest id beyond StoreCapacity: past that the
// store could not serve it anyway.
func (r LazyRouter) cacheAdd(st *lazyState, id wire.MsgID, from wire.NodeID) {
	if st.find(id) != nil {
		return
	}
	for len(st.cache) >= r.cfg.StoreCapacity {
		st.dropOldest()
	}
	e := lazyEntry{id: id, hb: st.hb}
	if from != 0 {
		e.peers = []peerMark{{p: from, has: true}}
	}
	st.cache = append(st.cache, e)
	if st.index == nil && len(st.cache) > lazyIndexThreshold {
		st.index = make(map[wire.MsgID]uint64, len(st.cache))
		for i := range st.cache {
			st.index[st.cache[i].id] = st.base + uint64(i)
		}
	} else if st.index != nil {
		st.index[id] = st.base + uint64(len(st.cache)-1)
	}
}

// cacheHorizon is the oldest time a peer's IHAVE may have come and the
// peer still hold the id in its cache at now: LazyHistory heartbeats ago.
func (r LazyRouter) cacheHorizon(now int64) int64 {
	return now - int64(r.cfg.LazyHistory)*r.heartbeat()
}

// purge drops the ids that came LazyHistory heartbeats ago or more.
func (r LazyRouter) purge(st *lazyState) {
	for len(st.cache) > 0 && st.hb-st.cache[0].hb >= uint64(r.cfg.LazyHistory) {
		st.dropOldest()
	}
}

func (st *lazyState) dropOldest() {
	if st.index != nil {
		delete(st.index, st.cache[0].id)
	}
	st.cache[0] = lazyEntry{}
	st.cache = st.cache[1:]
	st.base++
	if len(st.cache) == 0 {
		// Let go of the storage and the index: an idle node holds none.
		st.cache, st.index = nil, nil
	}
}

// find returns id's cache entry, nil when it is not cached.
func (st *lazyState) find(id wire.MsgID) *lazyEntry {
	if st.index != nil {
		pos, ok := st.index[id]
		if !ok {
			return nil
		}
		return &st.cache[pos-st.base]
	}
	for i := range st.cache {
		if st.cache[i].id == id {
			return &st.cache[i]
		}
	}
	return nil
}

// peer returns p's mark on e, adding one if there is none.
func (e *lazyEntry) peer(p wire.NodeID) *peerMark {
	for i := range e.peers {
		if e.peers[i].p == p {
			return &e.peers[i]
		}
	}
	e.peers = append(e.peers, peerMark{p: p})
	return &e.peers[len(e.peers)-1]
}

// mark notes that p has e's message.
func (e *lazyEntry) mark(p wire.NodeID) { e.peer(p).has = true }

func (e *lazyEntry) has(p wire.NodeID) bool {
	for _, m := range e.peers {
		if m.p == p {
			return m.has
		}
	}
	return false
}

// OnDuplicate implements Router: the sender of a copy has the message, so
// it gets no IHAVE for it.
func (r LazyRouter) OnDuplicate(n *Node, now int64, m *wire.Message, from wire.NodeID, _ *Output) {
	st := r.state(n, now)
	if from != 0 && slices.Contains(st.eager, from) {
		st.eagerAt = now
	}
	if e := st.find(m.ID); e != nil && from != 0 {
		e.mark(from)
	}
}

// OnControl implements Router: IHAVE asks the announcer for the ids this
// node lacks and has not asked anyone for (one IWANT per IHAVE); IWANT is
// answered from the store; GRAFT makes the link eager both ways (or is
// refused with PRUNE when the eager set is full) and PRUNE drops it.
// PULL belongs to anti-entropy.
func (r LazyRouter) OnControl(n *Node, now int64, from wire.NodeID, c *wire.Control, out *Output) {
	if !n.hasPeer(from) {
		return
	}
	st := r.state(n, now)
	switch c.Kind {
	case wire.FrameIHave:
		r.onIHave(n, st, now, from, c.IDs, out)
	case wire.FrameIWant:
		r.onIWant(n, st, now, from, c.IDs, out)
	case wire.FrameGraft:
		st.pruned = deleteID(st.pruned, from)
		switch {
		case slices.Contains(st.eager, from):
		case slices.Contains(st.dialed, from),
			st.working() < r.maxEager() && len(st.eager) < r.eagerCap():
			// Past 2 LazyD working eager peers, only a peer this node
			// dialed is taken (gossipsub's rule against mesh takeover:
			// however many sybils graft it, the peers it chose can still
			// get in).
			st.eager = append(st.eager, from)
		default:
			st.stats.PrunesSent++
			out.SendControl(from, &wire.Control{Kind: wire.FramePrune})
		}
	case wire.FramePrune:
		st.eager = deleteID(st.eager, from)
		if !slices.Contains(st.pruned, from) {
			st.pruned = append(st.pruned, from)
		}
	}
}

func (r LazyRouter) onIHave(n *Node, st *lazyState, now int64, from wire.NodeID, ids []wire.MsgID, out *Output) {
	var want []wire.MsgID
	asked := st.askedOf(from)
	fromOK := !st.unreliable(from)
	for _, id := range ids {
		if n.seen.contains(now, id) {
			if e := st.find(id); e != nil {
				e.mark(from)
			}
			continue
		}
		if p := st.byID[id]; p != nil {
			if fromOK && p.asked != from && st.unreliable(p.asked) && asked+len(want) < r.cfg.LazyMaxIHave {
				// Asked of a peer that breaks more promises than it
				// keeps: ask this one too, now, rather than wait out
				// the timeout. The first stays an announcer to fall
				// back on.
				p.alts = append(p.alts, lazyAlt{p: p.asked, at: now})
				p.asked = from
				p.deadline = now + int64(r.cfg.LazyIWantTimeout)
				if i := slices.IndexFunc(p.alts, func(a lazyAlt) bool { return a.p == from }); i >= 0 {
					p.alts = slices.Delete(p.alts, i, i+1)
				}
				want = append(want, id)
				continue
			}
			p.announced(from, now)
			continue
		}
		if asked+len(want) >= r.cfg.LazyMaxIHave {
			// As many ids asked of this peer since the last heartbeat
			// as a peer may make this node wait on: the rest of its
			// announcements are ignored until the next.
			st.stats.IHaveCapped++
			continue
		}
		if len(st.promises) >= r.cfg.StoreCapacity {
			// Waiting on as many messages as the store could hold: the
			// rest must come another way (a later IHAVE, anti-entropy).
			continue
		}
		p := &lazyPromise{id: id, asked: from, deadline: now + int64(r.cfg.LazyIWantTimeout)}
		if st.byID == nil {
			st.byID = make(map[wire.MsgID]*lazyPromise)
		}
		st.byID[id] = p
		st.promises = append(st.promises, p)
		want = append(want, id)
	}
	if len(want) > 0 {
		st.addAsked(from, len(want))
		st.stats.IWantsSent++
		out.SendControl(from, &wire.Control{Kind: wire.FrameIWant, IDs: want})
		r.arm(st, now)
	}
}

// askedOf is how many ids this node asked of p since the last heartbeat.
func (st *lazyState) askedOf(p wire.NodeID) int {
	for _, c := range st.asked {
		if c.p == p {
			return c.n
		}
	}
	return 0
}

// addAsked counts k more ids asked of p. The counts go at the next
// heartbeat, which asking arms.
func (st *lazyState) addAsked(p wire.NodeID, k int) {
	for i := range st.asked {
		if st.asked[i].p == p {
			st.asked[i].n += k
			return
		}
	}
	st.asked = append(st.asked, peerCount{p: p, n: k})
}

func (r LazyRouter) onIWant(n *Node, st *lazyState, now int64, from wire.NodeID, ids []wire.MsgID, out *Output) {
	for _, id := range ids {
		e := st.find(id)
		if e == nil {
			st.stats.Unserved++
			continue
		}
		pm := e.peer(from)
		if pm.served >= lazyRetransmit {
			st.stats.Unserved++
			continue
		}
		m := n.stored(now, id)
		if m == nil || m.Hop >= n.sh.cfg.MaxHops {
			st.stats.Unserved++
			continue
		}
		pm.served++
		st.stats.Served++
		next := *m
		next.Hop++
		out.Sends = append(out.Sends, Send{To: from, Frame: Frame{Msg: &next}})
	}
}

// OnTick implements Router: the heartbeat. It keeps the eager set full,
// breaks the promises that are due (asking the next announcer), and
// announces the recent ids to up to LazyDLazy peers outside the eager set.
func (r LazyRouter) OnTick(n *Node, now int64, out *Output) {
	st := lazyOf(n)
	if st.nextHB == 0 || now < st.nextHB {
		return
	}
	st.hb++
	st.lastHB = now
	clear(st.asked)
	st.asked = st.asked[:0]
	r.purge(st)
	r.fill(n, st, out)
	r.keepPromises(n, st, now, out)
	r.announce(n, st, now, out)
	st.nextHB = 0
	if r.busy(st) {
		st.nextHB = now + r.heartbeat()
	}
}

// busy reports whether the next heartbeat has work: ids young enough to
// announce, or promises to watch.
func (r LazyRouter) busy(st *lazyState) bool {
	if len(st.promises) > 0 {
		return true
	}
	k := len(st.cache)
	return k > 0 && r.announceable(&st.cache[k-1], st.hb+1)
}

// announceable reports whether e is announced at heartbeat hb: at the
// LazyGossip heartbeats after it came.
func (r LazyRouter) announceable(e *lazyEntry, hb uint64) bool {
	return hb-e.hb <= uint64(r.cfg.LazyGossip)
}

// keepPromises breaks the promises due at now: each is asked of its next
// announcer (one IWANT per peer for all the ids it is asked), or dropped
// when none is left.
func (r LazyRouter) keepPromises(n *Node, st *lazyState, now int64, out *Output) {
	var asks []pendingIHave
	keep := st.promises[:0]
	for _, p := range st.promises {
		if n.seen.contains(now, p.id) {
			delete(st.byID, p.id) // came at a hop the router never sees
			continue
		}
		if p.deadline > now {
			keep = append(keep, p)
			continue
		}
		st.stats.PromisesBroken++
		st.note(p.asked, false)
		var ok bool
		if asks, ok = r.reask(st, p, now, asks); ok {
			keep = append(keep, p)
		}
	}
	clear(st.promises[len(keep):])
	st.promises = keep
	r.sendIWants(st, asks, out)
}

// reask moves promise p to its next announcer and adds the IWANT to asks;
// ok is false, and p forgotten, when no announcer is left that can still
// answer from its cache.
func (r LazyRouter) reask(st *lazyState, p *lazyPromise, now int64, asks []pendingIHave) (_ []pendingIHave, ok bool) {
	if !p.next(st, r.cacheHorizon(now)) {
		delete(st.byID, p.id)
		return asks, false
	}
	p.deadline = now + int64(r.cfg.LazyIWantTimeout)
	return addID(asks, p.asked, p.id), true
}

func (r LazyRouter) sendIWants(st *lazyState, asks []pendingIHave, out *Output) {
	for _, a := range asks {
		st.stats.IWantsSent += out.SendIDs(a.to, wire.Control{Kind: wire.FrameIWant}, a.ids)
	}
}

// announce sends IHAVE to up to max(LazyDLazy, LazyGossipFactor × the
// candidates) peers outside the eager set, drawn at random among those
// not known to have every id to announce (the candidates):
// each gets the ids of the last LazyGossip heartbeats it is not known to
// have, newest first, at most wire.MaxControlIDs. Eager peers get the
// ids that came since the last heartbeat and they are not known to have. (gossipsub draws among
// all its non-mesh peers; skipping the peers that sent us everything
// spends the D_lazy announcements where they can repair.)
func (r LazyRouter) announce(n *Node, st *lazyState, now int64, out *Output) {
	k := len(st.cache)
	if k == 0 || !r.announceable(&st.cache[k-1], st.hb) {
		return
	}
	cand := st.scratch[:0]
	for _, p := range n.peers {
		if !slices.Contains(st.eager, p) && r.lacks(st, p) {
			cand = append(cand, p)
		}
	}
	pick := min(max(r.cfg.LazyDLazy, int(r.cfg.LazyGossipFactor*float64(len(cand)))), len(cand))
	for i := 0; i < pick; i++ {
		j := i + n.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	for _, p := range cand[:pick] {
		var ids []wire.MsgID
		for i := k - 1; i >= 0 && len(ids) < wire.MaxControlIDs; i-- {
			e := &st.cache[i]
			if !r.announceable(e, st.hb) {
				break
			}
			if !e.has(p) {
				ids = append(ids, e.id)
			}
		}
		if len(ids) > 0 {
			st.stats.IHavesSent++
			out.SendControl(p, &wire.Control{Kind: wire.FrameIHave, IDs: ids})
		}
	}
	st.scratch = cand[:0]
	// Eager peers hear of an id once, at the first heartbeat after it
	// came, unless known to have it: a push can be dropped on the way (a
	// full send queue), and a node whose links are all eager would
	// otherwise wait for the random picks of its lazy neighbours, or
	// miss the message.
	for _, p := range st.eager {
		if !n.hasPeer(p) {
			continue
		}
		var ids []wire.MsgID
		for i := k - 1; i >= 0 && len(ids) < wire.MaxControlIDs; i-- {
			e := &st.cache[i]
			if st.hb-e.hb > 1 {
				break
			}
			if !e.has(p) {
				ids = append(ids, e.id)
			}
		}
		if len(ids) > 0 {
			st.stats.IHavesSent++
			out.SendControl(p, &wire.Control{Kind: wire.FrameIHave, IDs: ids})
		}
	}
}

// lacks reports whether some id to announce now is not known to be at p.
func (r LazyRouter) lacks(st *lazyState, p wire.NodeID) bool {
	for i := len(st.cache) - 1; i >= 0 && r.announceable(&st.cache[i], st.hb); i-- {
		if !st.cache[i].has(p) {
			return true
		}
	}
	return false
}

// NextTick implements Router: the next heartbeat, 0 while idle.
func (r LazyRouter) NextTick(n *Node) int64 { return lazyOf(n).nextHB }

// OnPeerUp implements Router: a new link is grafted if the eager set is
// short of LazyD.
func (r LazyRouter) OnPeerUp(n *Node, _ int64, p wire.NodeID, out *Output) {
	st := lazyOf(n)
	if len(st.eager) < r.cfg.LazyD && !slices.Contains(st.eager, p) && !slices.Contains(st.pruned, p) {
		r.graft(st, p, out)
	}
}

// OnPeerUpDialed implements DialRouter: p is a link this node dialed. It
// is grafted if the eager set is short of LazyD or of LazyDOut dialed
// peers; a dialed link that comes up while the eager set is full of
// accepted ones takes one of the LazyDOut slots all the same.
func (r LazyRouter) OnPeerUpDialed(n *Node, now int64, p wire.NodeID, out *Output) {
	st := lazyOf(n)
	if !slices.Contains(st.dialed, p) {
		st.dialed = append(st.dialed, p)
	}
	if r.cfg.LazyDOut > 0 && !slices.Contains(st.eager, p) && !slices.Contains(st.pruned, p) {
		k := 0
		for _, q := range st.eager {
			if slices.Contains(st.dialed, q) {
				k++
			}
		}
		if k < r.cfg.LazyDOut {
			r.graft(st, p, out)
			return
		}
	}
	r.OnPeerUp(n, now, p, out)
}

var _ DialRouter = LazyRouter{}

// OnPeerDown implements Router: p leaves the eager set, which is topped
// up from the other peers, and the promises p made are asked of the next
// announcer at once (or dropped, when none is left).
func (r LazyRouter) OnPeerDown(n *Node, now int64, p wire.NodeID, out *Output) {
	st := lazyOf(n)
	st.pruned = deleteID(st.pruned, p)
	st.dialed = deleteID(st.dialed, p)
	delete(st.record, p)
	if slices.Contains(st.eager, p) {
		st.eager = deleteID(st.eager, p)
		r.fill(n, st, out)
	}
	var asks []pendingIHave
	keep := st.promises[:0]
	for _, pr := range st.promises {
		if i := slices.IndexFunc(pr.alts, func(a lazyAlt) bool { return a.p == p }); i >= 0 {
			pr.alts = slices.Delete(pr.alts, i, i+1)
		}
		if pr.asked == p {
			var ok bool
			if asks, ok = r.reask(st, pr, now, asks); !ok {
				continue
			}
		}
		keep = append(keep, pr)
	}
	clear(st.promises[len(keep):])
	st.promises = keep
	r.sendIWants(st, asks, out)
}

// deleteID removes p from l, if it is there.
func deleteID(l []wire.NodeID, p wire.NodeID) []wire.NodeID {
	if i := slices.Index(l, p); i >= 0 {
		return slices.Delete(l, i, i+1)
	}
	return l
}

func (st *lazyState) dropPromise(p *lazyPromise) {
	delete(st.byID, p.id)
	if i := slices.Index(st.promises, p); i >= 0 {
		st.promises = slices.Delete(st.promises, i, i+1)
	}
}
