package sim

import (
	"bytes"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// An open run is one whose nodes may send messages the simulator did not
// publish: a Byzantine node forges, tampers with, replays or spams
// messages, and an honest node without defences forwards what it was
// fooled into accepting. The engine's message slots assume that every
// copy of a broadcast at one hop is the same message, which a tampered
// copy is not, and that every message belongs to an open broadcast, which
// a forged one does not; so in an open run every message that is not a
// faithful copy of an open broadcast travels on its own, in a slot of the
// control-frame table (ctlSlot.m), and the engine reports every event to
// the run's observer (SetEventObserver), which tells honest deliveries
// from harm. A closed run (the default) pays one nil check per send.
type openRun struct {
	// canon holds every message the simulator published, by id, for the
	// whole run: a copy is faithful when it has the published origin,
	// sequence, publish time and body (the hop is per-hop metadata).
	canon map[wire.MsgID]*wire.Message
	// last and lastForeign cache the verdict on the last message pointer
	// checked within one route call: a node's sends of one step share one
	// pointer (a broadcast may settle between steps, which changes it).
	last        *wire.Message
	lastForeign bool
	onEvent     func(node int, at int64, ev *gossip.Event)
}

// SetPublishTimes makes f give the virtual time of each broadcast after
// the first (which is at 0) instead of b × Config.Interval, for a run
// whose publishing rate changes (a calm phase, then an attack). Times
// must not go down. It applies when Interval is set. Default nil.
func (s *Sim) SetPublishTimes(f func(b int) int64) { s.publishAt = f }

// publishTime is when broadcast b is published, when Interval is set.
func (s *Sim) publishTime(b int) int64 {
	if s.publishAt != nil {
		return max(s.publishAt(b), s.now)
	}
	return int64(b) * int64(s.cfg.Interval)
}

// Open makes s an open run (see openRun): messages that are not faithful
// copies of what the simulator published travel too, and every event any
// node reports goes to f (node index, virtual time, event), in
// virtual-time order; f may be nil. Call it before Run. Duplicates that
// cause no send are left out, as OnDuplicate does for its own count.
func (s *Sim) Open(f func(node int, at int64, ev *gossip.Event)) {
	s.opened = &openRun{canon: map[wire.MsgID]*wire.Message{}, onEvent: f}
}

// StopAt ends the run at virtual time t (nanoseconds): events after it are
// never processed, and broadcasts that had not settled are left out of the
// report, as when a run is cancelled (but the report is not marked
// partial). It is how a run with nodes that tick forever (a spammer's
// timer) ends. Default 0: run until nothing is left to do.
func (s *Sim) StopAt(t int64) { s.until = t }

// faithful reports whether m is a copy of the published message with its
// id (any hop).
func (o *openRun) faithful(m *wire.Message) bool {
	c := o.canon[m.ID]
	return c != nil && (c == m || c.Origin == m.Origin && c.Seq == m.Seq && c.PublishedAt == m.PublishedAt && bytes.Equal(c.Body, m.Body))
}

// foreign reports whether m must travel on its own: it is not a faithful
// copy of a broadcast still open.
func (s *Sim) foreign(m *wire.Message) bool {
	o := s.opened
	if m == o.last {
		return o.lastForeign
	}
	o.last = m
	o.lastForeign = s.flightOf(m.ID) == nil || !o.faithful(m)
	return o.lastForeign
}

// routeForeign turns one send of a foreign message into an arrival event.
// It passes through the fault layer like any other copy and counts toward
// no broadcast.
func (s *Sim) routeForeign(from uint32, snd *gossip.Send) {
	to := uint32(snd.To - 1)
	var extra int64
	if s.fl != nil {
		var drop bool
		if drop, _, extra = s.decide(from, to); drop {
			return
		}
	}
	idx := s.ctlRef(nil)
	s.ctls[idx] = ctlSlot{m: snd.Msg, refs: 1}
	d := extra
	if s.uniformSpan > 0 {
		d += s.uniformMin + s.net.Int64N(s.uniformSpan)
	} else {
		d += s.latency(from, to)
	}
	s.seq++
	s.q.push(event{at: s.now + d, seq: s.seq, to: to, from: from, ref: refCtl | idx})
	s.frames++
}

// stepForeign delivers a foreign message from its slot.
func (s *Sim) stepForeign(e *event, m *wire.Message) {
	s.frames--
	if (s.crashed == nil || !s.crashed[e.to]) && (s.fl == nil || !s.fl.cutOnArrival(e.from, e.to)) {
		p := s.node(e.to)
		s.lazyTick(p, e.at)
		p.Step(e.at, wire.NodeID(e.from)+1, gossip.Frame{Msg: m}, &s.out)
		s.handle(int(e.to))
	}
}

// LinksUp brings every link of the overlay up at virtual time 0, as a
// cold boot does: each node hears PeerUp for each of its peers, in an
// order drawn from the network's source (the order in which links come
// up decides, for instance, a lazy-push node's first eager peers), and
// what it sends goes out at time 0. It is for nodes built without their
// peers (NewWith), whose decorators (a scoring guard) learn of links only
// through PeerUp. Call it once, before Run.
//
// A link the graph says the node dialed (Graph.Dialed) comes up as such
// (gossip.LinkUp).
func (s *Sim) LinksUp() {
	type link struct {
		q      wire.NodeID
		dialed bool
	}
	var order []link
	for i := range s.n {
		order = order[:0]
		for k, q := range s.graph.Peers(i) {
			order = append(order, link{q: q, dialed: s.graph.dialed(i, k)})
		}
		s.net.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		p := s.node(uint32(i))
		for _, l := range order {
			gossip.LinkUp(p, 0, l.q, l.dialed, &s.out)
		}
		s.handle(i)
	}
}
