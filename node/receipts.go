package node

import (
	"encoding/binary"
	"sync"
	"time"

	"gossipmesh/api"
	"gossipmesh/wire"
)

// receipt is this node's record of one message.
type receipt struct {
	id          wire.MsgID
	origin      wire.NodeID
	from        wire.NodeID // zero at the publisher
	hop         uint16
	publishedAt int64 // publisher's clock, Unix ns
	receivedAt  int64 // this node's clock, Unix ns
	duplicates  int
	// payloadFrames and controlFrames count the frames this node queued
	// to its peers for this message (see frameTally in loop.go): copies of
	// it, and control frames naming it or caused by a copy of it.
	payloadFrames, controlFrames uint32
	size                         int    // body length, kept even when the body is not
	body                         []byte // shared with the message: never modified; nil once evicted
	bodyEvicted                  bool   // the body was dropped to keep the store within its bytes
}

// hotSlots sizes the direct-mapped cache in front of the index. Most
// lookups are duplicates of a message that arrived a moment ago; the
// cache answers them from a small array that stays in the CPU cache,
// where the index, a map of 65,536 random keys, costs cache misses.
const hotSlots = 4096

// receiptStore keeps the newest receipts, bounded in entries, and their
// bodies, bounded in bytes; it wakes the API requests that wait for a
// message to arrive. The node loop writes it; HTTP handlers read it, hence
// the mutex.
//
// Receipts live in a ring in arrival order, addressed by a sequence number
// that only grows: entries [first, next) are live, entry s is at
// ring[s % len(ring)]. The index maps an id to its sequence number. Bodies
// go first, oldest first: receipts [first, bodyFirst) have lost theirs and
// say so, but keep everything else, so that a report can still tell which
// messages arrived.
type receiptStore struct {
	mu          sync.Mutex
	ring        []receipt // grows by doubling up to capacity
	capacity    int
	first, next uint64
	bodyFirst   uint64 // receipts before it have no body
	index       map[wire.MsgID]uint64
	hot         []hotEntry
	bytes       int64 // bodies kept
	maxBytes    int64
	waiters     map[wire.MsgID][]chan struct{}
}

// hotEntry remembers where one recent id lives in the ring. It holds the
// whole id, so that a miss is found without touching the ring.
type hotEntry struct {
	id  wire.MsgID
	seq uint64 // sequence number + 1; 0 for an empty slot
}

func newReceiptStore(entries int, maxBytes int64) *receiptStore {
	return &receiptStore{
		ring:     make([]receipt, min(entries, 64)),
		capacity: entries,
		index:    make(map[wire.MsgID]uint64),
		hot:      make([]hotEntry, hotSlots),
		maxBytes: maxBytes,
		waiters:  make(map[wire.MsgID][]chan struct{}),
	}
}

// slot picks id's place in the hot cache. Ids are SHA-256 prefixes, so any
// bits of them are uniform.
func slot(id wire.MsgID) int { return int(binary.LittleEndian.Uint32(id[:4]) % hotSlots) }

// findLocked returns the live receipt of id, or nil.
func (s *receiptStore) findLocked(id wire.MsgID) *receipt {
	h := &s.hot[slot(id)]
	if h.id == id && h.seq != 0 && h.seq-1 >= s.first {
		return &s.ring[(h.seq-1)%uint64(len(s.ring))]
	}
	seq, ok := s.index[id]
	if !ok {
		return nil
	}
	*h = hotEntry{id: id, seq: seq + 1}
	return &s.ring[seq%uint64(len(s.ring))]
}

// addLocked records the first receipt of r.id and wakes its waiters. The
// caller holds mu (the node loop locks once per batch).
func (s *receiptStore) addLocked(r receipt) {
	// The index alone says whether r.id has a live receipt (the hot
	// cache only ever mirrors it). A first receipt is nearly always new,
	// so the hot cache would miss anyway, and its slot is a cache miss of
	// its own on a loaded machine: insert into the index at once and see
	// whether it grew, one probe of a large, cold map instead of two. The
	// receipt gets sequence s.next, which evictions below do not move.
	before := len(s.index)
	s.index[r.id] = s.next
	if len(s.index) == before {
		s.restoreLocked(r.id) // already received: keep the first receipt
		return
	}
	if int64(len(r.body)) > s.maxBytes {
		r.body, r.bodyEvicted = nil, true // too big to keep at all; the receipt itself stays
	}
	if s.next-s.first == uint64(s.capacity) {
		s.evictOldestLocked()
	}
	for s.bytes+int64(len(r.body)) > s.maxBytes && s.bodyFirst < s.next {
		s.evictOldestBodyLocked()
	}
	if s.next-s.first == uint64(len(s.ring)) {
		s.growLocked()
	}
	seq := s.next
	s.next++
	s.ring[seq%uint64(len(s.ring))] = r
	s.hot[slot(r.id)] = hotEntry{id: r.id, seq: seq + 1}
	s.bytes += int64(len(r.body))
	if len(s.waiters) == 0 {
		return
	}
	if ws, ok := s.waiters[r.id]; ok {
		for _, w := range ws {
			close(w)
		}
		delete(s.waiters, r.id)
	}
}

// restoreLocked points the index back at the live receipt of id, newest
// first, after addLocked overwrote it: the rare path of a second receipt
// of one id.
func (s *receiptStore) restoreLocked(id wire.MsgID) {
	for seq := s.next; seq > s.first; seq-- {
		if s.ring[(seq-1)%uint64(len(s.ring))].id == id {
			s.index[id] = seq - 1
			return
		}
	}
	delete(s.index, id) // not in the ring: the index never held it either
}

// growLocked doubles the ring (up to capacity). An idle node should not
// hold megabytes of empty receipts.
func (s *receiptStore) growLocked() {
	ring := make([]receipt, min(2*len(s.ring), s.capacity))
	for seq := s.first; seq < s.next; seq++ {
		ring[seq%uint64(len(ring))] = s.ring[seq%uint64(len(s.ring))]
	}
	s.ring = ring
}

// evictOldestLocked forgets the oldest receipt, with its body if it still
// has one.
func (s *receiptStore) evictOldestLocked() {
	r := &s.ring[s.first%uint64(len(s.ring))]
	s.bytes -= int64(len(r.body))
	delete(s.index, r.id)
	*r = receipt{}
	s.first++
	s.bodyFirst = max(s.bodyFirst, s.first)
}

// evictOldestBodyLocked drops the oldest body still kept; its receipt
// stays, marked.
func (s *receiptStore) evictOldestBodyLocked() {
	r := &s.ring[s.bodyFirst%uint64(len(s.ring))]
	if r.body != nil {
		s.bytes -= int64(len(r.body))
		r.body, r.bodyEvicted = nil, true
	}
	s.bodyFirst++
}

// bodyBytes returns the bytes of the bodies kept, for metrics.
func (s *receiptStore) bodyBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// duplicateLocked counts a later copy of id, if the receipt is still kept.
func (s *receiptStore) duplicateLocked(id wire.MsgID) {
	if r := s.findLocked(id); r != nil {
		r.duplicates++
	}
}

// countFramesLocked adds frames this node sent for id to its receipt, if
// the receipt is still kept. The caller holds mu.
func (s *receiptStore) countFramesLocked(id wire.MsgID, payload, control uint32) {
	if r := s.findLocked(id); r != nil {
		r.payloadFrames += payload
		r.controlFrames += control
	}
}

// get returns the receipt of id, with its body.
func (s *receiptStore) get(id wire.MsgID) (api.Receipt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.findLocked(id)
	if r == nil {
		return api.Receipt{}, false
	}
	out := r.toAPI()
	out.Body = string(r.body)
	return out, true
}

// wait returns a channel closed when id's receipt arrives, or nil if it is
// already here; cancel forgets the wait.
func (s *receiptStore) wait(id wire.MsgID) (ch chan struct{}, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findLocked(id) != nil {
		return nil, func() {}
	}
	ch = make(chan struct{})
	s.waiters[id] = append(s.waiters[id], ch)
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ws := s.waiters[id]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(s.waiters, id)
		} else {
			s.waiters[id] = ws
		}
	}
}

// recent returns up to limit receipts, newest first, without bodies.
func (s *receiptStore) recent(limit int) []api.Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit = min(limit, int(s.next-s.first))
	if limit <= 0 {
		return []api.Receipt{}
	}
	out := make([]api.Receipt, 0, limit)
	for seq := s.next - 1; len(out) < limit; seq-- {
		out = append(out, s.ring[seq%uint64(len(s.ring))].toAPI())
	}
	return out
}

func (r *receipt) toAPI() api.Receipt {
	out := api.Receipt{
		ID:            r.id.String(),
		Origin:        r.origin.String(),
		Hop:           int(r.hop),
		PublishedAt:   time.Unix(0, r.publishedAt),
		ReceivedAt:    time.Unix(0, r.receivedAt),
		Duplicates:    r.duplicates,
		PayloadFrames: int(r.payloadFrames),
		ControlFrames: int(r.controlFrames),
		Size:          r.size,
		BodyEvicted:   r.bodyEvicted,
	}
	if r.from != 0 {
		out.From = r.from.String()
	}
	return out
}
