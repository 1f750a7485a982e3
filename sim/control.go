package sim

import "gossipmesh/wire"

// Control frames are counted per broadcast, exactly once each, when a node
// sends one (after the egress, before the link's loss draw, as payload
// copies are):
//
//  1. a frame that carries message ids (IHAVE, IWANT, GRAFT with ids)
//     counts toward the broadcast of its first id that is still open;
//  2. otherwise (PRUNE, an id-less GRAFT, ids of broadcasts already
//     settled) it counts toward the broadcast whose frame the node was
//     stepping when it sent it: the duplicate that caused a PRUNE, the
//     IHAVE that caused an optimization's GRAFT and PRUNE;
//  3. otherwise (a timer's frame with no id of an open broadcast) it is
//     counted in Report.ControlUnattributed.
//
// So the per-broadcast counts and ControlUnattributed add up to every
// control frame sent.

// countControl counts control frame c, which the node being handled sends.
func (s *Sim) countControl(c *wire.Control) {
	f := s.ctlFlight(c)
	if f == nil {
		f = s.cause
	}
	if f == nil {
		s.ctlOther++
		return
	}
	f.controls++
}

// ctlFlight is the open broadcast of c's first id that has one, nil if
// none.
func (s *Sim) ctlFlight(c *wire.Control) *flight {
	for i := range c.IDs {
		if f := s.flightOf(c.IDs[i]); f != nil {
			return f
		}
	}
	return nil
}
