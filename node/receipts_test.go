package node

import (
	"encoding/binary"
	"testing"

	"gossipmesh/wire"
)

func idOf(i int) wire.MsgID {
	return wire.ComputeMsgID(1, uint64(i), nil)
}

// sameSlot returns an id other than id that lands in the same hot slot.
func sameSlot(id wire.MsgID) wire.MsgID {
	other := id
	binary.LittleEndian.PutUint32(other[:4], binary.LittleEndian.Uint32(id[:4])+hotSlots)
	other[15] ^= 0xff
	return other
}

func TestReceiptStoreBoundsEntries(t *testing.T) {
	s := newReceiptStore(8, 1<<20)
	for i := range 20 {
		s.addLocked(receipt{id: idOf(i), hop: uint16(i)})
	}
	for i := range 20 {
		_, ok := s.get(idOf(i))
		if want := i >= 12; ok != want {
			t.Errorf("receipt %d kept: %v, want %v", i, ok, want)
		}
	}
	rs := s.recent(100)
	if len(rs) != 8 || rs[0].Hop != 19 || rs[7].Hop != 12 {
		t.Errorf("recent: %d receipts, first hop %d, last hop %d; want 8 from 19 down to 12", len(rs), rs[0].Hop, rs[len(rs)-1].Hop)
	}
	if len(s.index) != 8 {
		t.Errorf("index holds %d ids, want 8", len(s.index))
	}
}

func TestReceiptStoreBoundsBytes(t *testing.T) {
	s := newReceiptStore(100, 10)
	s.addLocked(receipt{id: idOf(1), body: []byte("abcdef"), size: 6})
	s.addLocked(receipt{id: idOf(2), body: []byte("ghijkl"), size: 6}) // evicts 1
	if _, ok := s.get(idOf(1)); ok {
		t.Error("receipt 1 kept past the byte limit")
	}
	s.addLocked(receipt{id: idOf(3), body: make([]byte, 50), size: 50}) // too big: kept without body
	rc, ok := s.get(idOf(3))
	if !ok || rc.Body != "" || rc.Size != 50 {
		t.Errorf("oversized receipt: ok %v, body %q, size %d; want kept, no body, size 50", ok, rc.Body, rc.Size)
	}
	if s.bytes > 10 {
		t.Errorf("store holds %d body bytes, limit 10", s.bytes)
	}
}

// TestReceiptStoreHotCacheCollisions: an id that shares a hot slot with
// another, or whose slot points at an entry since evicted and overwritten,
// must still find its own receipt, and only its own.
func TestReceiptStoreHotCacheCollisions(t *testing.T) {
	s := newReceiptStore(4, 1<<20)
	a := idOf(1)
	b := sameSlot(a)
	s.addLocked(receipt{id: a, hop: 1})
	s.addLocked(receipt{id: b, hop: 2})
	s.duplicateLocked(a)
	s.duplicateLocked(a)
	s.duplicateLocked(b)
	ra, _ := s.get(a)
	rb, _ := s.get(b)
	if ra.Hop != 1 || ra.Duplicates != 2 || rb.Hop != 2 || rb.Duplicates != 1 {
		t.Errorf("a: hop %d dups %d; b: hop %d dups %d; want 1/2 and 2/1", ra.Hop, ra.Duplicates, rb.Hop, rb.Duplicates)
	}
	for i := 10; i < 20; i++ { // evict both; their ring slots are reused
		s.addLocked(receipt{id: idOf(i)})
	}
	if _, ok := s.get(a); ok {
		t.Error("evicted receipt a still found")
	}
	s.duplicateLocked(b) // must not land on whatever reuses b's ring slot
	for i := 16; i < 20; i++ {
		if rc, _ := s.get(idOf(i)); rc.Duplicates != 0 {
			t.Errorf("receipt %d got a duplicate meant for an evicted id", i)
		}
	}
}

func TestReceiptStoreWait(t *testing.T) {
	s := newReceiptStore(4, 1<<20)
	ch, cancel := s.wait(idOf(1))
	defer cancel()
	select {
	case <-ch:
		t.Fatal("woken before the receipt arrived")
	default:
	}
	s.addLocked(receipt{id: idOf(1)})
	<-ch // closed by add; a bug here hangs the test
	if ch2, _ := s.wait(idOf(1)); ch2 != nil {
		t.Error("waiting for a receipt that is already here returned a channel")
	}
	_, cancel2 := s.wait(idOf(2))
	cancel2()
	if len(s.waiters) != 0 {
		t.Errorf("%d waiter lists left after cancel", len(s.waiters))
	}
}

func TestReceiptStoreGrows(t *testing.T) {
	s := newReceiptStore(1000, 1<<20)
	for i := range 1500 {
		s.addLocked(receipt{id: idOf(i), hop: uint16(i)})
		if i%97 == 0 {
			s.duplicateLocked(idOf(i / 2))
		}
	}
	if len(s.ring) != 1000 {
		t.Errorf("ring of %d entries, want capacity 1000", len(s.ring))
	}
	for i := range 1500 {
		rc, ok := s.get(idOf(i))
		if want := i >= 500; ok != want || (ok && rc.Hop != i) {
			t.Errorf("receipt %d: kept %v hop %d; want kept %v hop %d", i, ok, rc.Hop, want, i)
		}
	}
}
