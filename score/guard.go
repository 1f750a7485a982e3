package score

import (
	"fmt"
	"slices"
	"sort"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// level is what a peer's score, last computed, allows it.
type level uint8

const (
	levelOK       level = iota // score ≥ 0
	levelMeshless              // below 0: no eager (mesh) link
	levelNoGossip              // below the gossip threshold
	levelGray                  // below the graylist threshold
)

// Ban is one peer refused until Until (ns on the driver's clock), and why.
type Ban struct {
	Peer   wire.NodeID
	Until  int64
	Reason string
}

// PeerScore is one connected peer's score, for the API.
type PeerScore struct {
	Peer  wire.NodeID
	Score float64
}

// Stats are the guard's counters, for metrics.
type Stats struct {
	// Graylisted counts frames dropped unread from graylisted peers.
	Graylisted uint64
	// GossipDropped counts gossip frames (IHAVE, IWANT, PULL) dropped to
	// or from peers below the gossip threshold.
	GossipDropped uint64
	// BannedDropped counts frames dropped to or from banned peers (frames
	// already on their way when the ban came).
	BannedDropped uint64
	// BrokenPromises counts promises whose peer did not deliver the
	// message itself within Params.PromiseBreak; Forgiven those of them
	// it delivered late, within Params.PromiseTimeout, whose penalty was
	// taken back. A copy from another peer forgives nothing.
	BrokenPromises, Forgiven uint64
	// KeptPromises counts promises whose peer delivered the message in
	// time (within Params.PromiseBreak).
	KeptPromises uint64
	// Demotions counts peers moved out of the eager set for a score
	// below 0, Restorations those grafted again once it was back at 0 or
	// above.
	Demotions, Restorations uint64
	// Refused counts links of banned peers refused at PeerUp.
	Refused uint64
	// Bans counts bans by reason (Terms.Worst).
	Bans map[string]uint64
	// OverBudget counts copies a peer sent of its own messages past its
	// origin's rate budget, each a fraction of a behaviour penalty
	// (Params.OverBudgetPerPenalty).
	OverBudget uint64
}

// promise is one IWANT (or GRAFT with ids) this node sent: peer should
// deliver id by deadline itself. In g.promises the deadline is
// Params.PromiseBreak after the ask; in g.charged, promises already
// counted broken, it is Params.PromiseTimeout after the ask. pg is the
// group it belongs to (a group forgotten and made again for the same id
// is another group, so a stale entry never settles a newer promise).
type promise struct {
	peer     wire.NodeID
	id       wire.MsgID
	deadline int64
	pg       *promiseGroup
}

// promiseGroup is the promises outstanding for one message id: the
// peers asked for it that have not delivered it yet (waiting), and those
// already charged for it (charged), which are forgiven if they deliver it
// themselves within Params.PromiseTimeout. A peer appears once per
// promise it made.
type promiseGroup struct {
	waiting []wire.NodeID
	charged []wire.NodeID
}

// Guard is a gossip.Protocol that wraps another (the gossip core) and
// defends it with peer scores. The driver drives the guard exactly as it
// would the protocol inside and acts on Output.Disconnects. The guard
// watches what passes through the seam:
//
//   - events the inner protocol reports feed the Book: a first delivery
//     from P (P2), any valid copy from P (P3), a message P itself got
//     wrong (gossip.EventRejected with PeerFault, P4);
//   - frames it sends: payload to P makes P an eager link (P3); an IWANT,
//     or a GRAFT naming ids, to P is a promise P itself must keep, by
//     delivering the message within Params.PromiseBreak, or be charged
//     for it (P7); the charge is taken back if P still delivers it within
//     Params.PromiseTimeout, and not if some other peer does;
//   - a copy over its origin's rate budget (gossip.ErrOriginBudget) that
//     its origin sent itself adds to P7 (origin.go); one a relay sent
//     costs the relay nothing;
//   - the driver's Penalize (rate limits) adds to P7; SetAddr gives P6.
//
// It acts on the score: a peer below 0 is sent a PRUNE and made lazy in
// the inner protocol (and kept lazy: its GRAFTs are served, then undone),
// so eager slots go to peers that score well, and grafted again at both
// ends once its score is back at 0 or above; below the gossip threshold
// no IHAVE, IWANT or PULL goes to it or comes from it; below the graylist
// threshold every frame from it is dropped; below the disconnect
// threshold it is banned for Params.BanDuration: the inner protocol gets
// a PeerDown at once, the driver a Disconnect, nothing more is sent to it
// and its PeerUp is refused until the ban ends.
//
// A Guard is pure and not safe for concurrent use, like the protocol it
// wraps.
type Guard struct {
	inner gossip.Protocol
	waker gossip.Waker // inner as a Waker, nil if it is not one
	p     Params
	book  *Book

	// linked holds the peers the inner protocol knows as up, with the
	// level their score last gave them.
	linked map[wire.NodeID]level
	bans   map[wire.NodeID]Ban

	promises []promise // in deadline order (one timeout for all)
	charged  []promise // broken ones that may yet be forgiven, in deadline order
	groups   map[wire.MsgID]*promiseGroup

	// pending are peers whose score an event lowered, to check once the
	// step that lowered it is done.
	pending  []wire.NodeID
	nextEval int64 // when every linked peer's score is next recomputed; 0: none linked
	// lowered counts the linked peers whose level is not levelOK, and
	// lastPush is when payload last went to any peer: the periodic
	// recomputation is wanted only while one of them may change a level
	// (a lowered peer recovering as its penalties decay, an eager peer's
	// deficit growing), so that an idle node asks for no tick and a
	// simulation settles.
	lowered  int
	lastPush int64

	stats Stats
}

var _ gossip.Waker = (*Guard)(nil)

// NewGuard wraps inner with the scoring defences p describes.
func NewGuard(inner gossip.Protocol, p Params) (*Guard, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if inner == nil {
		return nil, fmt.Errorf("score: no protocol to guard")
	}
	g := &Guard{
		inner:  inner,
		p:      p,
		book:   NewBook(p),
		linked: make(map[wire.NodeID]level),
		bans:   make(map[wire.NodeID]Ban),
		groups: make(map[wire.MsgID]*promiseGroup),
		stats:  Stats{Bans: make(map[string]uint64)},
	}
	g.waker, _ = inner.(gossip.Waker)
	return g, nil
}

// Inner returns the protocol the guard wraps (for its own statistics).
func (g *Guard) Inner() gossip.Protocol { return g.inner }

// Book returns the guard's score book. Read it only from the goroutine
// that drives the guard.
func (g *Guard) Book() *Book { return g.book }

// ID implements gossip.Protocol.
func (g *Guard) ID() wire.NodeID { return g.inner.ID() }

// Publish implements gossip.Protocol.
func (g *Guard) Publish(now int64, body []byte, out *gossip.Output) (*wire.Message, error) {
	s0, e0 := len(out.Sends), len(out.Events)
	m, err := g.inner.Publish(now, body, out)
	g.observe(now, s0, e0, out)
	g.settle(now, out)
	return m, err
}

// Step implements gossip.Protocol: frames from banned and graylisted
// peers, and gossip from peers below the gossip threshold, stop here.
func (g *Guard) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	if g.banned(from, now) {
		g.stats.BannedDropped++
		return
	}
	lv := g.linked[from]
	if lv >= levelGray {
		g.stats.Graylisted++
		if g.p.GraylistedPenalty > 0 {
			g.book.Penalty(from, now, g.p.GraylistedPenalty)
			g.pending = append(g.pending, from)
			g.settle(now, out)
		}
		return
	}
	regraft := false
	if c := f.Ctl; c != nil {
		switch c.Kind {
		case wire.FrameIHave, wire.FrameIWant, wire.FramePull:
			if lv >= levelNoGossip {
				g.stats.GossipDropped++
				return
			}
		case wire.FrameGraft:
			regraft = lv >= levelMeshless
		}
	}
	s0, e0 := len(out.Sends), len(out.Events)
	g.inner.Step(now, from, f, out)
	if regraft {
		// Serve what the GRAFT asks for, but keep the peer lazy and
		// refuse the link with a PRUNE, as a router with a full eager set
		// does: the eager slot stays with peers that score well.
		prune := &wire.Control{Kind: wire.FramePrune}
		refused := false
		for _, snd := range out.Sends[s0:] {
			refused = refused || (snd.To == from && snd.Ctl != nil && snd.Ctl.Kind == wire.FramePrune)
		}
		g.inner.Step(now, from, gossip.Frame{Ctl: prune}, out)
		if !refused {
			out.SendControl(from, prune)
		}
	}
	g.observe(now, s0, e0, out)
	g.settle(now, out)
}

// Tick implements gossip.Protocol: the inner protocol's timers, then
// broken promises, then, every Params.Interval, every linked peer's score.
func (g *Guard) Tick(now int64, out *gossip.Output) {
	s0, e0 := len(out.Sends), len(out.Events)
	g.inner.Tick(now, out)
	g.observe(now, s0, e0, out)
	g.expirePromises(now)
	if g.nextEval != 0 && now >= g.nextEval {
		// The next check is an interval after this one, or after the
		// last one due if the node was not ticked for a while.
		g.nextEval = now + int64(g.p.Interval)
		for p := range g.linked {
			g.pending = append(g.pending, p)
		}
		slices.Sort(g.pending) // map order must not decide what is sent first
	}
	g.settle(now, out)
}

// NextTick implements gossip.Protocol.
func (g *Guard) NextTick() int64 { return g.next(g.inner.NextTick()) }

// NextWake implements gossip.Waker: the inner protocol's wake (its
// NextTick if it is no Waker), the next promise deadline and the next
// score check.
func (g *Guard) NextWake() int64 {
	if g.waker != nil {
		return g.next(g.waker.NextWake())
	}
	return g.next(g.inner.NextTick())
}

func (g *Guard) next(t int64) int64 {
	if g.lowered > 0 || (g.p.DeficitWeight != 0 && g.lastPush != 0 && g.nextEval-g.lastPush <= int64(g.p.DeficitWindow+g.p.Interval)) {
		t = earliest(t, g.nextEval)
	}
	if len(g.promises) > 0 {
		t = earliest(t, g.promises[0].deadline)
	}
	if len(g.charged) > 0 {
		t = earliest(t, g.charged[0].deadline)
	}
	return t
}

func earliest(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// PeerUp implements gossip.Protocol: a banned peer is refused (another
// Disconnect for the driver); any other is scored from its retained
// record, if any, and handed to the inner protocol.
func (g *Guard) PeerUp(now int64, p wire.NodeID, out *gossip.Output) {
	g.peerUp(now, p, false, out)
}

// PeerUpDialed implements gossip.Dialer: PeerUp for a link this node
// dialed, passed on as such to the inner protocol (gossip.LinkUp).
func (g *Guard) PeerUpDialed(now int64, p wire.NodeID, out *gossip.Output) {
	g.peerUp(now, p, true, out)
}

var _ gossip.Dialer = (*Guard)(nil)

func (g *Guard) peerUp(now int64, p wire.NodeID, dialed bool, out *gossip.Output) {
	if p == g.inner.ID() {
		return
	}
	if b, ok := g.bans[p]; ok && now < b.Until {
		g.stats.Refused++
		out.Disconnects = append(out.Disconnects, gossip.Disconnect{Peer: p, Until: b.Until, Reason: b.Reason})
		return
	}
	if _, ok := g.linked[p]; ok {
		return
	}
	g.book.Connected(p, now)
	g.linked[p] = levelOK
	if g.nextEval == 0 {
		g.nextEval = now + int64(g.p.Interval)
	}
	s0, e0 := len(out.Sends), len(out.Events)
	gossip.LinkUp(g.inner, now, p, dialed, out)
	g.observe(now, s0, e0, out)
	g.pending = append(g.pending, p) // a retained score may be low
	g.settle(now, out)
}

// PeerDown implements gossip.Protocol. A peer the guard banned is no
// longer linked: its PeerDown does nothing.
func (g *Guard) PeerDown(now int64, p wire.NodeID, out *gossip.Output) {
	if _, ok := g.linked[p]; !ok {
		return
	}
	g.unlink(now, p, out)
	g.settle(now, out)
}

func (g *Guard) unlink(now int64, p wire.NodeID, out *gossip.Output) {
	if g.linked[p] != levelOK {
		g.lowered--
	}
	delete(g.linked, p)
	g.book.Disconnected(p, now)
	if len(g.linked) == 0 {
		g.nextEval = 0
	}
	s0, e0 := len(out.Sends), len(out.Events)
	g.inner.PeerDown(now, p, out)
	g.observe(now, s0, e0, out)
}

// SetAddr tells the guard which host (IP) linked peer p is on, for P6;
// "" for a host exempt from colocation. Call it after PeerUp. A ban it
// causes goes into out.
func (g *Guard) SetAddr(now int64, p wire.NodeID, host string, out *gossip.Output) {
	if _, ok := g.linked[p]; !ok {
		return
	}
	g.book.SetHost(p, host)
	g.pending = append(g.pending, p)
	g.settle(now, out)
}

// Penalize adds to p's behaviour penalty (P7) for frames the driver
// dropped on its own account, such as its rate limits: one unit per
// Params.RateLimitedPerPenalty frames. A ban it causes goes into out.
func (g *Guard) Penalize(now int64, p wire.NodeID, frames int, out *gossip.Output) {
	if frames <= 0 {
		return
	}
	g.book.Penalty(p, now, float64(frames)/float64(g.p.RateLimitedPerPenalty))
	g.pending = append(g.pending, p)
	g.settle(now, out)
}

// observe reads what the inner protocol appended to out since s0 and e0:
// its events feed the book, its sends are scored and filtered.
func (g *Guard) observe(now int64, s0, e0 int, out *gossip.Output) {
	for i := e0; i < len(out.Events); i++ {
		e := &out.Events[i]
		switch e.Kind {
		case gossip.EventDelivered:
			g.book.Delivered(e.From, now, true)
			g.kept(now, e.From, e.Msg.ID)
		case gossip.EventDuplicate:
			g.book.Delivered(e.From, now, false)
			g.kept(now, e.From, e.Msg.ID)
		case gossip.EventRejected:
			if e.PeerFault && e.From != 0 {
				g.book.Invalid(e.From, now)
				g.pending = append(g.pending, e.From)
			}
		case gossip.EventRefused:
			g.refused(now, e)
		}
	}
	kept := s0
	for i := s0; i < len(out.Sends); i++ {
		s := out.Sends[i]
		if _, ok := g.linked[s.To]; !ok && g.banned(s.To, now) {
			g.stats.BannedDropped++
			continue
		}
		if c := s.Ctl; c != nil {
			switch c.Kind {
			case wire.FrameIHave, wire.FrameIWant, wire.FramePull:
				if g.linked[s.To] >= levelNoGossip {
					g.stats.GossipDropped++
					continue
				}
			}
			if (c.Kind == wire.FrameIWant || c.Kind == wire.FrameGraft) && len(c.IDs) > 0 {
				g.promise(now, s.To, c.IDs[0])
			}
		} else if s.Msg != nil {
			g.book.Pushed(s.To, now)
			g.lastPush = now
		}
		out.Sends[kept] = s
		kept++
	}
	clear(out.Sends[kept:])
	out.Sends = out.Sends[:kept]
}

// promise tracks that peer owes this node message id.
func (g *Guard) promise(now int64, peer wire.NodeID, id wire.MsgID) {
	if len(g.promises)+len(g.charged) >= g.p.MaxPromises {
		return
	}
	pg := g.groups[id]
	if pg == nil {
		pg = &promiseGroup{}
		g.groups[id] = pg
	}
	pg.waiting = append(pg.waiting, peer)
	g.promises = append(g.promises, promise{peer: peer, id: id, deadline: now + int64(g.p.PromiseBreak), pg: pg})
}

// kept settles the promise peer made for id, if any, now that peer
// delivered the message (a first copy or a duplicate: a peer that
// answers after another peer delivered still kept its word). One still
// waiting is kept; one already charged is forgiven.
func (g *Guard) kept(now int64, peer wire.NodeID, id wire.MsgID) {
	pg := g.groups[id]
	if pg == nil {
		return
	}
	if i := slices.Index(pg.waiting, peer); i >= 0 {
		pg.waiting = slices.Delete(pg.waiting, i, i+1)
		g.stats.KeptPromises++
		if g.book.KeptPromise(peer, now, g.p.PromiseCredit) > 0 {
			g.pending = append(g.pending, peer) // its level may rise again
		}
	} else if i := slices.Index(pg.charged, peer); i >= 0 {
		pg.charged = slices.Delete(pg.charged, i, i+1)
		g.stats.Forgiven++
		g.book.KeptPromise(peer, now, 1)
		g.pending = append(g.pending, peer)
	}
	g.forgetIfDone(id, pg)
}

// forgetIfDone forgets pg, id's group, once no promise in it is
// outstanding. Entries of g.promises and g.charged that still point to it
// then find their peer in neither list and are dropped as they fall due.
func (g *Guard) forgetIfDone(id wire.MsgID, pg *promiseGroup) {
	if len(pg.waiting) == 0 && len(pg.charged) == 0 && g.groups[id] == pg {
		delete(g.groups, id)
	}
}

// expirePromises settles every promise due by now. One whose peer has
// not delivered the message by Params.PromiseBreak is broken (a behaviour
// penalty), whether or not another peer delivered it, and stays charged
// until Params.PromiseTimeout, by which its peer may still deliver it and
// be forgiven. A promise of a peer no longer linked lapses uncharged.
func (g *Guard) expirePromises(now int64) {
	k := 0
	for k < len(g.promises) && g.promises[k].deadline <= now {
		pr := g.promises[k]
		k++
		pg := pr.pg
		i := slices.Index(pg.waiting, pr.peer)
		if i < 0 {
			continue // kept
		}
		pg.waiting = slices.Delete(pg.waiting, i, i+1)
		if _, ok := g.linked[pr.peer]; ok {
			g.stats.BrokenPromises++
			g.book.BrokePromise(pr.peer, now)
			g.pending = append(g.pending, pr.peer)
			pg.charged = append(pg.charged, pr.peer)
			pr.deadline += int64(g.p.PromiseTimeout - g.p.PromiseBreak)
			g.charged = append(g.charged, pr)
			continue
		}
		g.forgetIfDone(pr.id, pg)
	}
	g.promises = dropFirst(g.promises, k)
	k = 0
	for k < len(g.charged) && g.charged[k].deadline <= now {
		pr := g.charged[k]
		k++
		pr.pg.charged = deleteFirst(pr.pg.charged, pr.peer)
		g.forgetIfDone(pr.id, pr.pg)
	}
	g.charged = dropFirst(g.charged, k)
}

// dropFirst removes the first k of l.
func dropFirst(l []promise, k int) []promise {
	if k == 0 {
		return l
	}
	n := copy(l, l[k:])
	clear(l[n:])
	return l[:n]
}

// deleteFirst removes the first p from l.
func deleteFirst(l []wire.NodeID, p wire.NodeID) []wire.NodeID {
	if i := slices.Index(l, p); i >= 0 {
		return slices.Delete(l, i, i+1)
	}
	return l
}

// settle recomputes the score of every pending peer and acts on the
// thresholds it crossed.
func (g *Guard) settle(now int64, out *gossip.Output) {
	for len(g.pending) > 0 {
		p := g.pending[len(g.pending)-1]
		g.pending = g.pending[:len(g.pending)-1]
		old, ok := g.linked[p]
		if !ok {
			continue
		}
		t := g.book.Terms(p, now)
		s := t.Score()
		th := g.p.Thresholds
		var lv level
		switch {
		case s < th.Disconnect:
			g.ban(now, p, t.Worst(), out)
			continue
		case s < th.Graylist:
			lv = levelGray
		case s < th.Gossip:
			lv = levelNoGossip
		case s < 0:
			lv = levelMeshless
		}
		g.linked[p] = lv
		switch {
		case old == levelOK && lv != levelOK:
			g.lowered++
		case old != levelOK && lv == levelOK:
			g.lowered--
		}
		switch {
		case old == levelOK && lv != levelOK:
			g.demote(now, p, out)
		case old != levelOK && lv == levelOK:
			g.restore(now, p, out)
		}
	}
}

// demote takes p out of the eager set: p is asked to prune this node, and
// the inner protocol hears a PRUNE from p.
func (g *Guard) demote(now int64, p wire.NodeID, out *gossip.Output) {
	g.stats.Demotions++
	prune := &wire.Control{Kind: wire.FramePrune}
	s0, e0 := len(out.Sends), len(out.Events)
	g.inner.Step(now, p, gossip.Frame{Ctl: prune}, out)
	out.SendControl(p, prune)
	g.observe(now, s0, e0, out)
}

// restore undoes demote for a peer whose score is back at 0 or above: it
// is grafted again, at both ends, and the routers' own rules (a full eager
// set, Plumtree's pruning of duplicates) decide from there. Without it
// both ends would keep each other lazy for good.
func (g *Guard) restore(now int64, p wire.NodeID, out *gossip.Output) {
	g.stats.Restorations++
	graft := &wire.Control{Kind: wire.FrameGraft}
	s0, e0 := len(out.Sends), len(out.Events)
	g.inner.Step(now, p, gossip.Frame{Ctl: graft}, out)
	out.SendControl(p, graft)
	g.observe(now, s0, e0, out)
}

// ban refuses p for Params.BanDuration: the inner protocol forgets it now
// and the driver is asked to close its link.
func (g *Guard) ban(now int64, p wire.NodeID, reason string, out *gossip.Output) {
	if len(g.bans) >= g.p.MaxBans {
		g.dropBan(now)
	}
	b := Ban{Peer: p, Until: now + int64(g.p.BanDuration), Reason: reason}
	g.bans[p] = b
	g.stats.Bans[reason]++
	g.unlink(now, p, out)
	// Whatever was queued for p in this output goes no further.
	kept := 0
	for _, s := range out.Sends {
		if s.To == p {
			g.stats.BannedDropped++
			continue
		}
		out.Sends[kept] = s
		kept++
	}
	clear(out.Sends[kept:])
	out.Sends = out.Sends[:kept]
	out.Disconnects = append(out.Disconnects, gossip.Disconnect{Peer: p, Until: b.Until, Reason: reason})
}

// dropBan makes room for one ban: an ended one if any, else the one that
// ends soonest.
func (g *Guard) dropBan(now int64) {
	var (
		victim wire.NodeID
		until  int64
	)
	for id, b := range g.bans {
		if b.Until <= now {
			delete(g.bans, id)
			continue
		}
		if victim == 0 || b.Until < until || (b.Until == until && id < victim) {
			victim, until = id, b.Until
		}
	}
	if len(g.bans) >= g.p.MaxBans && victim != 0 {
		delete(g.bans, victim)
	}
}

// banned reports whether p is banned at now, forgetting an ended ban.
func (g *Guard) banned(p wire.NodeID, now int64) bool {
	b, ok := g.bans[p]
	if !ok {
		return false
	}
	if now >= b.Until {
		delete(g.bans, p)
		return false
	}
	return true
}

// Bans returns the bans in force at now, soonest end first.
func (g *Guard) Bans(now int64) []Ban {
	out := make([]Ban, 0, len(g.bans))
	for _, b := range g.bans {
		if now < b.Until {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Until != out[j].Until {
			return out[i].Until < out[j].Until
		}
		return out[i].Peer < out[j].Peer
	})
	return out
}

// Scores returns every linked peer's score at now, in peer id order.
func (g *Guard) Scores(now int64) []PeerScore {
	out := make([]PeerScore, 0, len(g.linked))
	for p := range g.linked {
		out = append(out, PeerScore{Peer: p, Score: g.book.Score(p, now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// Score is p's score at now (0 for a peer the book does not hold).
func (g *Guard) Score(p wire.NodeID, now int64) float64 { return g.book.Score(p, now) }

// Stats returns a copy of the guard's counters.
func (g *Guard) Stats() Stats {
	st := g.stats
	st.Bans = make(map[string]uint64, len(g.stats.Bans))
	for k, v := range g.stats.Bans {
		st.Bans[k] = v
	}
	return st
}
