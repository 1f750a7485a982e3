package sim

import (
	"bytes"
	"slices"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// An open run is one whose nodes may send messages the simulator did not
// publish: a Byzantine node forges, tampers with, replays or spams
// messages, and an honest node without defences forwards what it was
// fooled into accepting. The engine's message slots belong to open
// broadcasts, one per (broadcast, hop), which a tampered copy (another
// body under a broadcast's id) or a forged one (no broadcast at all) does
// not fit; so every message that is not a faithful copy of an open
// broadcast is foreign and travels in a foreign slot (foreignSlots), and
// the engine reports every event to the run's observer
// (SetEventObserver), which tells honest deliveries from harm. A closed
// run (the default) pays one nil check per distinct message a step sends.
type openRun struct {
	// canon holds every message the simulator published, by id, for the
	// whole run: a copy is faithful when it has the published origin,
	// sequence, publish time and body (the hop is per-hop metadata).
	canon   map[wire.MsgID]*wire.Message
	onEvent func(node int, at int64, ev *gossip.Event)
}

// foreignSlots are the message slots of foreign copies: copies of no open
// broadcast, or altering one, in an open run (Open) or a run with
// adversaries (Config.Adversaries). As for a broadcast, every equal copy
// in flight shares one slot, whoever sent it: equal is the same id, hop,
// origin, sequence, publish time, body and signature, so each distinct
// message at each hop costs one slot, and each send only its event. A
// forged or spammed message that every honest node accepts and forwards
// is one slot per hop, not one per send (degree × nodes of them). A slot
// is counted by its sends in flight and freed after the last arrives.
type foreignSlots struct {
	// f is the sentinel flight every foreign copy counts toward: it is
	// never published, settled or reported, and its counts (messages,
	// duplicates, losses) are what foreign traffic cost.
	f *flight
	// byKey lists the slots of each (id, hop), one per distinct content
	// (a tamperer's copies share an honest message's id); refs[i] counts
	// the sends in flight of slot i (indexes of Sim.slots; 0 for a slot
	// that is not foreign).
	byKey map[foreignKey][]uint32
	refs  []int32
}

// foreignKey is a foreign slot's id and hop.
type foreignKey struct {
	id  wire.MsgID
	hop uint16
}

// openForeign gives s the foreign slots, once.
func (s *Sim) openForeign() {
	if s.fx == nil {
		s.fx = &foreignSlots{f: &flight{}, byKey: map[foreignKey][]uint32{}}
	}
}

// equalMessage reports whether a and b are one message at one hop: what
// a node can tell apart. The signature is compared too, as a forger's
// copies under one content may carry different ones.
func equalMessage(a, b *wire.Message) bool {
	if a == b {
		return true
	}
	if a.Hop != b.Hop || !sameContent(a, b) {
		return false
	}
	return a.Auth == b.Auth || a.Auth != nil && b.Auth != nil && *a.Auth == *b.Auth
}

// foreignRef returns the slot of foreign message m: the one an equal copy
// in flight holds, or a new one. The caller counts each send of it in
// fx.refs.
func (s *Sim) foreignRef(m *wire.Message) uint32 {
	fx := s.fx
	k := foreignKey{id: m.ID, hop: m.Hop}
	for _, idx := range fx.byKey[k] {
		if equalMessage(s.slots[idx].m, m) {
			return idx
		}
	}
	var idx uint32
	if n := len(s.freeSlots); n > 0 {
		idx, s.freeSlots = s.freeSlots[n-1], s.freeSlots[:n-1]
		s.slots[idx] = msgSlot{f: fx.f, m: m}
	} else {
		idx = uint32(len(s.slots))
		if idx > refIndex {
			panic("sim: too many messages in flight")
		}
		s.slots = append(s.slots, msgSlot{f: fx.f, m: m})
	}
	if int(idx) >= len(fx.refs) {
		fx.refs = append(fx.refs, make([]int32, len(s.slots)-len(fx.refs))...)
	}
	fx.byKey[k] = append(fx.byKey[k], idx)
	return idx
}

// foreignArrived counts one send of foreign slot idx done, and frees the
// slot after its last.
func (s *Sim) foreignArrived(idx uint32) {
	s.fx.refs[idx]--
	s.foreignIdle(idx)
}

// foreignIdle frees foreign slot idx when no send of it is in flight: after
// its last arrival, or when the loss draw or the fault layer dropped every
// send of a slot just made.
func (s *Sim) foreignIdle(idx uint32) {
	fx := s.fx
	if fx.refs[idx] > 0 {
		return
	}
	fx.refs[idx] = 0
	m := s.slots[idx].m
	k := foreignKey{id: m.ID, hop: m.Hop}
	list := fx.byKey[k]
	if i := slices.Index(list, idx); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(fx.byKey, k)
	} else {
		fx.byKey[k] = list
	}
	s.slots[idx] = msgSlot{}
	s.freeSlots = append(s.freeSlots, idx)
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
	s.openForeign()
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
