package sim

import (
	"context"
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// distinctSends counts, through the egress, the distinct messages (id, hop,
// content and signature) the nodes of s send, and the control frames.
type distinctSends struct {
	keys     map[sendKey]bool
	controls int64
}

type sendKey struct {
	id          wire.MsgID
	hop         uint16
	origin      wire.NodeID
	seq         uint64
	publishedAt int64
	body        string
	auth        wire.Auth
}

func watchSends(s *Sim) *distinctSends {
	d := &distinctSends{keys: map[sendKey]bool{}}
	s.SetEgress(func(_ int64, _ wire.NodeID, snd *gossip.Send) bool {
		if snd.Ctl != nil {
			d.controls++
			return true
		}
		m := snd.Msg
		k := sendKey{id: m.ID, hop: m.Hop, origin: m.Origin, seq: m.Seq, publishedAt: m.PublishedAt, body: string(m.Body)}
		if m.Auth != nil {
			k.auth = *m.Auth
		}
		d.keys[k] = true
		return true
	})
	return d
}

// TestForeignSlotsPerMessage checks that copies of messages the simulator
// did not publish (spam that every honest node accepts and forwards) share
// one slot per distinct message and hop, as a broadcast's copies do,
// instead of one per sending step: the slot table, which only grows, never
// holds more slots than there are distinct messages at distinct hops, and
// no message travels in a control-frame slot. Flood sends no control
// frame, so the control table stays empty. Both ways foreign copies enter
// a run are checked: adversaries of the config, and an open run.
func TestForeignSlotsPerMessage(t *testing.T) {
	t.Parallel()
	for _, open := range []bool{false, true} {
		cfg := advConfig(t, 8, "0.02:spam=200")
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var delivered int64
		if open {
			// An open run reports deliveries of what was not published to
			// the observer, not to the adversary report.
			s.Open(func(_ int, _ int64, ev *gossip.Event) {
				if ev.Kind == gossip.EventDelivered {
					delivered++
				}
			})
		}
		d := watchSends(s)
		r, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		a := r.Adversaries
		if !open {
			delivered = a.AdversaryAccepted
		}
		if a.Did.Spammed < 20 || delivered < int64(a.Did.Spammed)*200 {
			t.Fatalf("open %v: the spam did not spread: %+v", open, a)
		}
		if len(s.slots) > len(d.keys) {
			t.Errorf("open %v: %d message slots for %d distinct messages at distinct hops", open, len(s.slots), len(d.keys))
		}
		if len(s.ctls) != 0 {
			t.Errorf("open %v: %d control-frame slots in a flood run without control frames", open, len(s.ctls))
		}
		if len(s.freeSlots) != len(s.slots) {
			t.Errorf("open %v: slots left at the end: %d of %d free", open, len(s.freeSlots), len(s.slots))
		}
		t.Logf("open %v: %d slots, %d distinct messages, %d spammed, %d delivered", open, len(s.slots), len(d.keys), a.Did.Spammed, delivered)
	}
}

// TestForeignControlsCounted checks that every control frame sent in a run
// with adversaries counts once: toward a broadcast or in
// ControlUnattributed, including those a node sends on receiving a copy of
// no broadcast (a lazy-push IHAVE for spam), which count toward no
// broadcast.
func TestForeignControlsCounted(t *testing.T) {
	t.Parallel()
	cfg := advConfig(t, 8, "0.02:spam=200")
	cfg.Nodes = 150
	cfg.Broadcasts = 10
	cfg.Gossip.Strategy = gossip.Lazy
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := watchSends(s)
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Partial || len(r.PerBroadcast) != cfg.Broadcasts {
		t.Fatalf("%d of %d broadcasts settled", len(r.PerBroadcast), cfg.Broadcasts)
	}
	sum := r.ControlUnattributed
	for _, b := range r.PerBroadcast {
		sum += b.ControlMessages
	}
	if d.controls == 0 || sum != d.controls {
		t.Errorf("%d control frames sent, %d counted (%d unattributed)", d.controls, sum, r.ControlUnattributed)
	}
}
