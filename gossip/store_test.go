package gossip

import (
	"fmt"
	"testing"

	"gossipmesh/wire"
)

func storeMsg(i int, size int) *wire.Message {
	body := make([]byte, size)
	return &wire.Message{ID: wire.ComputeMsgID(1, uint64(i), body), Origin: 1, Seq: uint64(i), Hop: 1, Body: body}
}

// TestStoreBounds checks each bound of the message store: count, bytes
// and age, oldest first, and that a request past them counts as a miss.
func TestStoreBounds(t *testing.T) {
	for _, tc := range []struct {
		name              string
		capacity, bytes   int
		ttl, at           int64
		size              int
		want              []bool // which of messages 0..4 are still held
		evicted, messages uint64
	}{
		{"count", 3, 1 << 20, 1e9, 10, 10, []bool{false, false, true, true, true}, 2, 3},
		{"bytes", 100, 25, 1e9, 10, 10, []bool{false, false, false, true, true}, 3, 2},
		{"age", 100, 1 << 20, 1e9, 1e9 + 2, 10, []bool{false, false, false, true, true}, 3, 2},
		{"too big to store", 100, 5, 1e9, 10, 10, []bool{false, false, false, false, false}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s msgStore
			var msgs []*wire.Message
			for i := range 5 {
				m := storeMsg(i, tc.size)
				msgs = append(msgs, m)
				s.put(int64(i), m, tc.capacity, tc.bytes, tc.ttl)
			}
			var misses uint64
			for i, m := range msgs {
				got := s.get(tc.at, m.ID) != nil
				if got != tc.want[i] {
					t.Errorf("message %d held = %v, want %v", i, got, tc.want[i])
				}
				if !got {
					misses++
				}
			}
			st := s.Stats()
			if st.Evicted != tc.evicted || uint64(st.Messages) != tc.messages || st.Misses != misses || st.Served != 5-misses {
				t.Errorf("stats %+v, want %d evicted, %d held, %d misses", st, tc.evicted, tc.messages, misses)
			}
			if st.Bytes != st.Messages*tc.size {
				t.Errorf("bytes %d, want %d", st.Bytes, st.Messages*tc.size)
			}
		})
	}
}

// TestStoreCopiesTheMessage: the node runtime steps the core with a
// Message value inside a batch it clears and reuses, so the store must
// keep its own copy, or a GRAFT is answered with whatever the batch holds
// next (a message the receiver rejects: the repair is lost).
func TestStoreCopiesTheMessage(t *testing.T) {
	cfg := unsignedConfig()
	cfg.Strategy = Plumtree
	var out Output
	c := newCore(t, cfg, 2, 1, 3)
	m := *storeMsg(7, 4)
	m.Origin = 1
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	want := m
	c.Receive(0, 1, &m, &out)
	out.Reset()
	m = wire.Message{} // the driver reuses its slot
	c.Step(1, 3, Frame{Ctl: &wire.Control{Kind: wire.FrameGraft, IDs: []wire.MsgID{want.ID}}}, &out)
	if len(out.Sends) != 1 || out.Sends[0].Msg == nil {
		t.Fatalf("GRAFT answered with %v, want the message", out.Sends)
	}
	got := out.Sends[0].Msg
	if got.ID != want.ID || got.Hop != want.Hop+1 || fmt.Sprint(got.Body) != fmt.Sprint(want.Body) {
		t.Errorf("GRAFT answered with %+v, want %+v at hop %d", got, want, want.Hop+1)
	}
}

// TestStorePutKeepsFirstCopy: a second put of a stored message (the same
// id, here at a higher hop) changes nothing: the first copy is the one
// served, and the store's counts and ring are as before.
func TestStorePutKeepsFirstCopy(t *testing.T) {
	var s msgStore
	for i := 1; i <= 3; i++ {
		m := storeMsg(i, 4)
		m.Hop = 1
		s.put(int64(i), m, 8, 1<<20, 100)
	}
	again := *storeMsg(2, 4)
	again.Hop = 5
	before := s.Stats()
	s.put(10, &again, 8, 1<<20, 100)
	if got := s.Stats(); got != before {
		t.Errorf("stats after a second put %+v, want %+v", got, before)
	}
	if s.n != 3 {
		t.Errorf("ring holds %d entries, want 3", s.n)
	}
	m := s.get(11, again.ID)
	if m == nil || m.Hop != 1 {
		t.Fatalf("stored copy %+v, want the first one, at hop 1", m)
	}
	for i := range s.n {
		if e := s.fifo[(s.head+i)%len(s.fifo)]; s.byID[e.id] != e.m {
			t.Errorf("entry %d: the index points at another copy than the ring's", i)
		}
	}
}

// TestEvictMarksBudget pushes more origins than maxEvictMarks through
// markEvictedKey: the table stops at its budget, and an origin already
// marked still has its mark raised.
func TestEvictMarksBudget(t *testing.T) {
	var s msgStore
	for o := range maxEvictMarks + 100 {
		s.markEvictedKey(1, wire.NodeID(o+1), 5)
	}
	if len(s.evictedTop) != maxEvictMarks {
		t.Fatalf("%d origins marked, want the budget %d", len(s.evictedTop), maxEvictMarks)
	}
	s.markEvictedKey(2, 1, 9)
	if mk := s.evictedTop[1]; mk.seq != 9 {
		t.Errorf("origin 1 marked at seq %d after a later eviction, want 9", mk.seq)
	}
	if _, ok := s.evictedTop[wire.NodeID(maxEvictMarks+50)]; ok {
		t.Errorf("an origin past the budget was marked")
	}
}
