package node

import (
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// TestFrameTallyAttribution: a message's copies count toward it, an
// IHAVE/IWANT/GRAFT once toward each message it names, a PRUNE toward the
// message whose copy the core was handling when it sent it, and a PULL
// toward none.
func TestFrameTallyAttribution(t *testing.T) {
	a, b, c := idOf(1), idOf(2), idOf(3)
	s := newReceiptStore(16, 1<<20)
	for _, id := range []wire.MsgID{a, b, c} {
		s.addLocked(receipt{id: id})
	}
	ma, mb := &wire.Message{ID: a}, &wire.Message{ID: b}
	prune := &wire.Control{Kind: wire.FramePrune, Reason: wire.PruneDuplicate}
	pull := &wire.Control{Kind: wire.FramePull}
	ihave := &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{a, c}}
	graft := &wire.Control{Kind: wire.FrameGraft, IDs: []wire.MsgID{b}}
	sends := []gossip.Send{
		{To: 2, Frame: gossip.Frame{Msg: ma}},
		{To: 3, Frame: gossip.Frame{Msg: ma}},
		{To: 4, Frame: gossip.Frame{Ctl: pull}},  // a tick's: no cause
		{To: 2, Frame: gossip.Frame{Ctl: prune}}, // sent on a duplicate of b
		{To: 3, Frame: gossip.Frame{Ctl: ihave}},
		{To: 4, Frame: gossip.Frame{Ctl: graft}},
		{To: 5, Frame: gossip.Frame{Msg: mb}},
	}
	var tl frameTally
	tl.noteCauses(sends, 3, b)
	tl.noteCauses(sends, 4, c) // names messages itself: no cause needed
	attributed := 0
	for i, sd := range sends {
		if sd.Msg != nil {
			tl.payload(sd.Msg.ID)
			continue
		}
		if tl.control(i, sd.Ctl) {
			attributed++
		}
	}
	tl.apply(s)
	if attributed != 3 {
		t.Errorf("%d control frames attributed, want 3 (all but the PULL)", attributed)
	}
	want := map[wire.MsgID][2]uint32{a: {2, 1}, b: {1, 2}, c: {0, 1}}
	for id, w := range want {
		r := s.findLocked(id)
		if got := [2]uint32{r.payloadFrames, r.controlFrames}; got != w {
			t.Errorf("message %v: payload, control = %v, want %v", id, got, w)
		}
		rc, _ := s.get(id)
		if rc.PayloadFrames != int(w[0]) || rc.ControlFrames != int(w[1]) {
			t.Errorf("message %v answers payload_frames %d, control_frames %d; want %v", id, rc.PayloadFrames, rc.ControlFrames, w)
		}
	}
	if len(tl.counts) != 0 || len(tl.causes) != 0 || tl.next != 0 {
		t.Errorf("tally not emptied by apply: %+v", tl)
	}
	// A receipt evicted meanwhile just misses its counts.
	tl.payload(idOf(99))
	tl.apply(s)
}

// TestFrameCountsSurviveBodyEviction: the counts live in the receipt, so
// a message whose body was evicted still says what it cost.
func TestFrameCountsSurviveBodyEviction(t *testing.T) {
	s := newReceiptStore(16, 8)
	s.addLocked(receipt{id: idOf(1), body: []byte("12345678"), size: 8})
	var tl frameTally
	tl.payload(idOf(1))
	tl.payload(idOf(1))
	tl.apply(s)
	s.addLocked(receipt{id: idOf(2), body: []byte("abcdefgh"), size: 8}) // evicts body 1
	rc, ok := s.get(idOf(1))
	if !ok || !rc.BodyEvicted || rc.PayloadFrames != 2 {
		t.Errorf("receipt after its body went: %+v; want it kept, body evicted, 2 payload frames", rc)
	}
}
