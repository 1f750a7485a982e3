package node

import (
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// frameTally counts, per message, the frames one flush of the node's
// output queued to its peers, so that each message's receipt can say what
// it cost this node (api.Receipt.PayloadFrames, ControlFrames). It is
// counted where the output leaves the node (flushSends), after the egress
// hook and the send queue have accepted the frame: a send dropped there
// costs nothing and is not counted. It is the loop's: filled without a
// lock, and applied to the receipts under one lock per flush.
//
// Attribution:
//   - a payload frame (a message: a forward, or an answer to GRAFT, IWANT
//     or an anti-entropy pull) counts toward that message;
//   - an IHAVE, IWANT or GRAFT counts once toward each message it names;
//   - a control frame that names none counts toward the message whose copy
//     made the core send it, when there is one (Plumtree's PRUNE answers a
//     duplicate, and the GRAFT and PRUNE of its tree optimization the
//     eager copy that came after a shorter announcement: see noteCauses);
//     otherwise toward none (a PULL, sent on a timer): the metrics count
//     it.
//
// A frame the fault plan holds (a delay) counts here when the plan takes
// it, and in the metrics when it is queued.
type frameTally struct {
	counts []frameCount
	// causes are the sends of the pending output that name no message but
	// were sent while the core handled a copy of one, in send order.
	causes []sendCause
	next   int // causes[next:] are still ahead of the flush
}

type frameCount struct {
	id               wire.MsgID
	payload, control uint32
}

type sendCause struct {
	send int // index in Output.Sends
	id   wire.MsgID
}

// noteCauses records that the sends from index from on were made while the
// core handled a copy of message id, for those of them that are control
// frames naming no message.
func (t *frameTally) noteCauses(sends []gossip.Send, from int, id wire.MsgID) {
	for i := from; i < len(sends); i++ {
		if c := sends[i].Ctl; c != nil && len(c.IDs) == 0 {
			t.causes = append(t.causes, sendCause{send: i, id: id})
		}
	}
}

// count counts send i of the output, s, toward the messages it is for; a
// control frame that counts toward none is counted in m.
func (t *frameTally) count(i int, s *gossip.Send, m *metrics) {
	if s.Ctl == nil {
		t.payload(s.Msg.ID)
	} else if !t.control(i, s.Ctl) {
		m.controlUnattributed.Inc()
	}
}

// payload counts a payload frame of m.
func (t *frameTally) payload(id wire.MsgID) {
	if k := len(t.counts) - 1; k >= 0 && t.counts[k].id == id {
		t.counts[k].payload++ // a forward's copies are adjacent
		return
	}
	t.counts = append(t.counts, frameCount{id: id, payload: 1})
}

// control counts control frame c, send i of the output, toward the
// messages it names or the one that caused it; it reports whether it was
// attributed to any.
func (t *frameTally) control(i int, c *wire.Control) bool {
	if len(c.IDs) == 0 {
		for t.next < len(t.causes) && t.causes[t.next].send < i {
			t.next++
		}
		if t.next < len(t.causes) && t.causes[t.next].send == i {
			t.addControl(t.causes[t.next].id)
			return true
		}
		return false
	}
	for _, id := range c.IDs {
		t.addControl(id)
	}
	return true
}

func (t *frameTally) addControl(id wire.MsgID) {
	if k := len(t.counts) - 1; k >= 0 && t.counts[k].id == id {
		t.counts[k].control++
		return
	}
	t.counts = append(t.counts, frameCount{id: id, control: 1})
}

// apply adds the tally to the receipts and empties it, keeping its storage.
func (t *frameTally) apply(s *receiptStore) {
	if len(t.counts) > 0 {
		s.mu.Lock()
		for _, c := range t.counts {
			s.countFramesLocked(c.id, c.payload, c.control)
		}
		s.mu.Unlock()
	}
	t.counts, t.causes, t.next = t.counts[:0], t.causes[:0], 0
}
