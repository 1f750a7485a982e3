package gossip

import (
	"slices"

	"gossipmesh/wire"
)

// PlumtreeRouter is Plumtree (Leitão, Pereira, Rodrigues, "Epidemic
// Broadcast Trees", SRDS 2007): every link starts eager; a new message is
// pushed to eager peers and announced (IHAVE, batched per
// PlumtreeIHaveInterval) to lazy ones. A duplicate from an eager peer
// makes that link lazy and sends PRUNE, so after the first messages the
// eager links form a spanning tree and a message costs N-1 payload frames.
// An IHAVE for a message still missing after PlumtreeGraftTimeout sends
// GRAFT to the first announcer, which makes the link eager again and
// fetches the message from the announcer's store; the next announcer is
// tried PlumtreeGraftRetry later. Where no push can come (the node holds
// no eager link, or lost one within a GRAFT timeout) an IHAVE is grafted
// at once instead, and a new link hears at once of what the node stored
// lately (OnPeerUp): under churn the tree breaks somewhere all the time,
// and a timeout per break added up to seconds.
//
// The tree optimization (the paper's, threshold PlumtreeOptimizeThreshold):
// every IHAVE carries the hop at which its sender holds the ids, and the
// node keeps, with each message it is still missing, the lowest hop
// announced for it and by whom. When the message then arrives from an
// eager peer, and the announcer's path (its hop plus the lazy link) is
// shorter than the eager one by the threshold or more, the node sends the
// announcer GRAFT without ids (it has the message: nothing is resent) and
// the eager peer PRUNE (reason optimize), so that the next messages take
// the shorter path. As in the paper, only an announcement that came before
// the eager copy counts: that path is faster as well as shorter, and what
// the announcer says is about the tree as it is now. (An announcement that
// comes after the copy may describe the paths of a tree that other moves
// have changed since; moving on it formed cycles and cut subtrees off,
// which the GRAFT timer had to repair a second later, over and over, once
// messages from many origins were in flight.) A message in flight while
// the parent changes can miss both pushes (the announcer forwarded it
// before the GRAFT arrived, the old parent after the PRUNE did); both
// announce it instead, and an IHAVE from a peer held eager grafts at once,
// not a GRAFT timeout later.
//
// Its per-node state lives in the core's router slot. Every peer of the
// core that is not in the lazy set is eager, so a driver that hands the
// core its peers without PeerUp (the simulator's SetPeers) starts with
// every link eager, as the paper says.
type PlumtreeRouter struct {
	cfg Config
}

// servesRepairs marks Plumtree as a router whose cores keep a message
// store: GRAFT is answered from it.
func (PlumtreeRouter) servesRepairs() {}

// plumState is one node's Plumtree state.
type plumState struct {
	lazy map[wire.NodeID]struct{}
	// ihave are the ids to announce per lazy peer at the next flush, in
	// the order peers were first queued (deterministic output).
	ihave   []pendingIHave
	flushAt int64 // 0: nothing queued
	// missing are the announced messages not yet received, by id, with
	// order keeping their first announcement order for the timer scan.
	missing map[wire.MsgID]*missingMsg
	order   []wire.MsgID
	// brokenUntil is when the node stops counting its tree as broken: an
	// eager link of it went down (a crash, an eviction, a drop) at
	// brokenUntil - PlumtreeGraftTimeout, so pushes from that side of the
	// tree no longer come, and an IHAVE until then is grafted at once.
	brokenUntil int64
	// brokenBy is the peer whose eager link went down then: if the link
	// to it comes back (a runtime replacing one connection with another)
	// the tree is whole again.
	brokenBy wire.NodeID
	stats    PlumtreeStats
}

type pendingIHave struct {
	to  wire.NodeID
	ids []wire.MsgID
	hop uint16 // the largest hop of ids at this node
}

type missingMsg struct {
	announcers []wire.NodeID // who announced it, first first
	deadline   int64
	// nearest announced it at the lowest hop, nearHop, for the tree
	// optimization (0: no announcement carried a hop, or the optimization
	// is off).
	nearest wire.NodeID
	nearHop uint16
}

// PlumtreeStats are one node's Plumtree counters, for metrics and tests.
type PlumtreeStats struct {
	// Eager and Lazy are the node's links of each kind now.
	Eager, Lazy int
	// PrunesSent, GraftsSent and IHavesSent count control frames sent.
	PrunesSent, GraftsSent, IHavesSent uint64
	// Optimizations counts the times the tree optimization moved this
	// node's parent to a shorter path (a GRAFT and a PRUNE each, counted
	// in GraftsSent and PrunesSent too).
	Optimizations uint64
	// Missing is how many announced messages the node is waiting for.
	Missing int
	// Store is the message store that serves GRAFT.
	Store StoreStats
}

// PlumtreeStatsOf returns n's Plumtree counters; ok is false when n does
// not run the Plumtree router.
func PlumtreeStatsOf(n *Node) (PlumtreeStats, bool) {
	st, ok := n.State().(*plumState)
	if !ok {
		return PlumtreeStats{}, false
	}
	s := st.stats
	for _, p := range n.peers {
		if st.isLazy(p) {
			s.Lazy++
		} else {
			s.Eager++
		}
	}
	s.Missing = len(st.missing)
	s.Store, _ = n.StoreStats()
	return s, true
}

// IsLazy reports whether n's link to p is lazy under Plumtree (false for
// any other router), for tests and dashboards.
func IsLazy(n *Node, p wire.NodeID) bool {
	st, ok := n.State().(*plumState)
	return ok && st.isLazy(p)
}

func (st *plumState) isLazy(p wire.NodeID) bool {
	_, ok := st.lazy[p]
	return ok
}

func (st *plumState) setLazy(p wire.NodeID) {
	if st.lazy == nil {
		st.lazy = make(map[wire.NodeID]struct{})
	}
	st.lazy[p] = struct{}{}
}

func (st *plumState) setEager(p wire.NodeID) { delete(st.lazy, p) }

func plumOf(n *Node) *plumState { return n.State().(*plumState) }

// Init implements Router.
func (r PlumtreeRouter) Init(n *Node) { n.SetState(&plumState{}) }

// Route implements Router: the first copy of m, from from. The sender
// becomes eager (it just pushed to us); eager peers get m and lazy peers
// get its id at the next flush. The core has already stored m, for GRAFTs.
func (r PlumtreeRouter) Route(n *Node, now int64, m *wire.Message, from wire.NodeID, dst []wire.NodeID, out *Output) []wire.NodeID {
	st := plumOf(n)
	if from != 0 {
		st.setEager(from)
	}
	var moved wire.NodeID
	if mm := st.missing[m.ID]; mm != nil {
		moved = r.optimize(n, st, m, from, mm, out)
		delete(st.missing, m.ID)
	}
	for _, p := range n.peers {
		if p == from || p == moved {
			continue // moved announced m: it has it
		}
		if st.isLazy(p) {
			r.queueIHave(st, now, p, m.ID, m.Hop)
		} else {
			dst = append(dst, p)
		}
	}
	return dst
}

func (r PlumtreeRouter) queueIHave(st *plumState, now int64, p wire.NodeID, id wire.MsgID, hop uint16) {
	if st.flushAt == 0 {
		st.flushAt = now + int64(r.cfg.PlumtreeIHaveInterval)
	}
	for i := range st.ihave {
		if b := &st.ihave[i]; b.to == p {
			b.ids = append(b.ids, id)
			b.hop = max(b.hop, hop)
			return
		}
	}
	st.ihave = append(st.ihave, pendingIHave{to: p, ids: []wire.MsgID{id}, hop: hop})
}

// OnDuplicate implements Router: a copy from an eager peer prunes it.
func (r PlumtreeRouter) OnDuplicate(n *Node, now int64, m *wire.Message, from wire.NodeID, out *Output) {
	st := plumOf(n)
	if from == 0 || st.isLazy(from) || !n.hasPeer(from) {
		return
	}
	if now-m.PublishedAt > n.aeGrace() {
		// A copy this old is a repair on its way on (a node that
		// anti-entropy caught up after a restart or a heal forwards
		// what it got), not a second branch of the tree: pruning for
		// it would take the tree apart around every node that catches
		// up.
		return
	}
	st.setLazy(from)
	st.stats.PrunesSent++
	out.SendControl(from, &wire.Control{Kind: wire.FramePrune, Reason: wire.PruneDuplicate})
}

// OnControl implements Router: PRUNE makes the sender lazy, IHAVE arms a
// GRAFT timer for each id not yet seen, GRAFT makes the sender eager and
// answers from the store. IWANT and PULL belong to other routers.
func (r PlumtreeRouter) OnControl(n *Node, now int64, from wire.NodeID, c *wire.Control, out *Output) {
	st := plumOf(n)
	if !n.hasPeer(from) {
		return
	}
	switch c.Kind {
	case wire.FramePrune:
		st.setLazy(from)
	case wire.FrameIHave:
		optimize := r.cfg.PlumtreeOptimizeThreshold > 0 && c.HasHop && from != 0
		// An eager peer announces, rather than pushes, only what it
		// forwarded while it held this link lazy: before this node's
		// GRAFT (the tree optimization's, or a timer's) reached it. That
		// push never comes, so what it announces and this node lacks is
		// grafted at once instead of after PlumtreeGraftTimeout.
		var graftNow []wire.MsgID
		// So is what an IHAVE announces while no push can come: the node
		// holds no eager link, or lost one within a GRAFT timeout (its
		// tree is broken there, and the message that would have come
		// through it never will).
		eager := !st.isLazy(from) || now < st.brokenUntil || !r.hasEager(n, st)
		for _, id := range c.IDs {
			if n.seen.contains(now, id) {
				continue
			}
			if eager {
				// Grafted here and now: this announcer is not kept as a
				// fallback, or the timer would graft it a second time.
				graftNow = append(graftNow, id)
				continue
			}
			mm := st.missing[id]
			if mm == nil {
				if st.missing == nil {
					st.missing = make(map[wire.MsgID]*missingMsg)
				}
				mm = &missingMsg{deadline: now + int64(r.cfg.PlumtreeGraftTimeout)}
				st.missing[id] = mm
				st.order = append(st.order, id)
			}
			if !slices.Contains(mm.announcers, from) {
				mm.announcers = append(mm.announcers, from)
			}
			if optimize && (mm.nearest == 0 || c.Hop < mm.nearHop) {
				mm.nearest, mm.nearHop = from, c.Hop
			}
		}
		if len(graftNow) > 0 {
			st.stats.GraftsSent++
			out.SendControl(from, &wire.Control{Kind: wire.FrameGraft, IDs: graftNow})
		}
	case wire.FrameGraft:
		st.setEager(from)
		for _, id := range c.IDs {
			if m := n.stored(now, id); m != nil {
				next := *m
				next.Hop++
				out.Sends = append(out.Sends, Send{To: from, Frame: Frame{Msg: &next}})
			}
		}
	}
}

// optimize applies the tree optimization (the paper's Optimization
// procedure) to m, just delivered from eager peer from, which mm says was
// announced before it came: if the nearest announcer's path, its hop plus
// the lazy link, is shorter than m's by at least the threshold, the node
// grafts that announcer (no ids: nothing is resent) and prunes from. It
// returns the announcer grafted, or 0.
func (r PlumtreeRouter) optimize(n *Node, st *plumState, m *wire.Message, from wire.NodeID, mm *missingMsg, out *Output) wire.NodeID {
	a := mm.nearest
	if r.cfg.PlumtreeOptimizeThreshold <= 0 || from == 0 || a == 0 || a == from || !n.hasPeer(a) {
		return 0
	}
	if int(m.Hop)-(int(mm.nearHop)+1) < r.cfg.PlumtreeOptimizeThreshold {
		return 0
	}
	st.setEager(a)
	st.setLazy(from)
	st.stats.GraftsSent++
	st.stats.PrunesSent++
	st.stats.Optimizations++
	out.SendControl(a, &wire.Control{Kind: wire.FrameGraft})
	out.SendControl(from, &wire.Control{Kind: wire.FramePrune, Reason: wire.PruneOptimize})
	return a
}

// OnTick implements Router: flush the IHAVE batches and fire the GRAFT
// timers that are due.
func (r PlumtreeRouter) OnTick(n *Node, now int64, out *Output) {
	st := plumOf(n)
	if st.flushAt != 0 && st.flushAt <= now {
		for _, b := range st.ihave {
			st.stats.IHavesSent += out.SendIDs(b.to, wire.Control{Kind: wire.FrameIHave, HasHop: true, Hop: b.hop}, b.ids)
		}
		clear(st.ihave)
		st.ihave, st.flushAt = st.ihave[:0], 0
	}
	// GRAFT timers, in first-announcement order; grafts to one peer in
	// one tick share a frame.
	var grafts []pendingIHave
	keep := st.order[:0]
	for _, id := range st.order {
		mm := st.missing[id]
		if mm == nil {
			continue // arrived, or its announcers went down
		}
		if mm.deadline <= now {
			if n.seen.contains(now, id) || len(mm.announcers) == 0 {
				delete(st.missing, id)
				continue
			}
			a := mm.announcers[0]
			mm.announcers = mm.announcers[1:]
			st.setEager(a)
			grafts = addID(grafts, a, id)
			if len(mm.announcers) == 0 {
				delete(st.missing, id)
				continue
			}
			mm.deadline = now + int64(r.cfg.PlumtreeGraftRetry)
		}
		keep = append(keep, id)
	}
	clear(st.order[len(keep):])
	st.order = keep
	for _, g := range grafts {
		st.stats.GraftsSent += out.SendIDs(g.to, wire.Control{Kind: wire.FrameGraft}, g.ids)
	}
}

func addID(l []pendingIHave, p wire.NodeID, id wire.MsgID) []pendingIHave {
	for i := range l {
		if l[i].to == p {
			l[i].ids = append(l[i].ids, id)
			return l
		}
	}
	return append(l, pendingIHave{to: p, ids: []wire.MsgID{id}})
}

// NextTick implements Router: the next IHAVE flush or GRAFT deadline.
func (r PlumtreeRouter) NextTick(n *Node) int64 {
	st := plumOf(n)
	t := st.flushAt
	for _, mm := range st.missing {
		if t == 0 || mm.deadline < t {
			t = mm.deadline
		}
	}
	return t
}

// OnPeerUp implements Router: a new link is eager, and the node announces
// on it (one IHAVE, without a hop: it is no offer of a shorter path) the
// messages it stored within the last aeGrace. Those are the ones the new
// peer cannot learn of otherwise in time: the IHAVE for a message goes out
// once, to the lazy links a node has when it first gets it, so a peer
// whose link came up after that hears of it only from anti-entropy, which
// leaves a message to the pushes for aeGrace before it offers it, and
// pulls one random peer a period. Under churn that is how a node cut off
// from the tree (its parent crashed or dropped it) that dials a
// replacement, or a node that just joined through a seed that then lost
// the message, waited seconds for a message its new peer had held all
// along. The new link is eager at the peer too, so it grafts what it
// lacks at once (see the IHAVE case of OnControl); what it holds costs it
// a lookup per id.
func (r PlumtreeRouter) OnPeerUp(n *Node, now int64, p wire.NodeID, out *Output) {
	st := plumOf(n)
	st.setEager(p)
	if p == st.brokenBy {
		// The link that broke the tree is back (a connection replaced by
		// another): pushes through it come again.
		st.brokenUntil, st.brokenBy = 0, 0
	}
	if ids := n.storedSince(now, now-n.aeGrace()); len(ids) > 0 {
		st.stats.IHavesSent += out.SendIDs(p, wire.Control{Kind: wire.FrameIHave}, ids)
	}
}

// hasEager reports whether any of n's links is eager.
func (r PlumtreeRouter) hasEager(n *Node, st *plumState) bool {
	return len(st.lazy) < len(n.peers)
}

// OnPeerDown implements Router: forget the link, its queued IHAVE and its
// announcements; a message only it announced is no longer awaited. When
// the link was eager, the tree is broken at this node: what would have
// been pushed through it comes only as IHAVE from the lazy links now, so
// for a GRAFT timeout the node grafts those at once, and it grafts at its
// next tick what it already awaits, instead of waiting out a timer per
// message. Under churn (1% of the nodes replaced every second) a branch
// of the tree breaks somewhere all the time, and a message crossed one
// such break after another, a timeout each, on its way through a deep
// tree.
func (r PlumtreeRouter) OnPeerDown(n *Node, now int64, p wire.NodeID, _ *Output) {
	st := plumOf(n)
	if !st.isLazy(p) {
		st.brokenUntil, st.brokenBy = now+int64(r.cfg.PlumtreeGraftTimeout), p
		for _, mm := range st.missing {
			mm.deadline = min(mm.deadline, now)
		}
	}
	delete(st.lazy, p)
	for i := range st.ihave {
		if st.ihave[i].to == p {
			st.ihave = slices.Delete(st.ihave, i, i+1)
			break
		}
	}
	if len(st.ihave) == 0 {
		st.flushAt = 0
	}
	for id, mm := range st.missing {
		if i := slices.Index(mm.announcers, p); i >= 0 {
			mm.announcers = slices.Delete(mm.announcers, i, i+1)
		}
		if mm.nearest == p {
			mm.nearest = 0
		}
		if len(mm.announcers) == 0 {
			delete(st.missing, id)
		}
	}
}

// storedSince returns the ids of the messages the core stored after since,
// oldest first; nil when it keeps no store.
func (c *Core) storedSince(now, since int64) []wire.MsgID {
	s := c.store
	if s == nil {
		return nil
	}
	s.expire(now)
	// Entries are in arrival order, each expiring StoreTTL after it came.
	after := since + int64(c.sh.cfg.StoreTTL)
	k := s.n
	for k > 0 && s.fifo[(s.head+k-1)%len(s.fifo)].expires > after {
		k--
	}
	var ids []wire.MsgID
	for i := k; i < s.n; i++ {
		ids = append(ids, s.fifo[(s.head+i)%len(s.fifo)].m.ID)
	}
	return ids
}
