package node

import (
	"sync"
	"time"

	"gossipmesh/api"
	"gossipmesh/wire"
)

// receipt is this node's record of one message.
type receipt struct {
	origin      wire.NodeID
	from        wire.NodeID // zero at the publisher
	hop         uint16
	publishedAt int64 // publisher's clock, Unix ns
	receivedAt  int64 // this node's clock, Unix ns
	duplicates  int
	size        int    // body length, kept even when the body is not
	body        []byte // shared with the message: never modified
}

// receiptStore keeps the newest receipts, bounded in entries and in body
// bytes, and wakes the API requests that wait for a message to arrive. The
// node loop writes it; HTTP handlers read it, hence the mutex. Entries are
// values in the map, not pointers, so a receipt costs no allocation of its
// own.
type receiptStore struct {
	mu       sync.Mutex
	byID     map[wire.MsgID]receipt
	order    []wire.MsgID // ring, oldest at head
	head, n  int
	bytes    int
	maxBytes int
	waiters  map[wire.MsgID][]chan struct{}
}

func newReceiptStore(entries, maxBytes int) *receiptStore {
	return &receiptStore{
		byID:     make(map[wire.MsgID]receipt),
		order:    make([]wire.MsgID, entries),
		maxBytes: maxBytes,
		waiters:  make(map[wire.MsgID][]chan struct{}),
	}
}

// add records the first receipt of id and wakes its waiters. The caller
// holds mu (the node loop locks once per batch).
func (s *receiptStore) addLocked(id wire.MsgID, r receipt) {
	if _, ok := s.byID[id]; ok {
		return
	}
	for s.n > 0 && (s.n == len(s.order) || s.bytes+len(r.body) > s.maxBytes) {
		s.evictOldestLocked()
	}
	if len(r.body) > s.maxBytes {
		r.body = nil // too big to keep at all; the receipt itself stays
	}
	s.order[(s.head+s.n)%len(s.order)] = id
	s.n++
	s.bytes += len(r.body)
	s.byID[id] = r
	if ws, ok := s.waiters[id]; ok {
		for _, w := range ws {
			close(w)
		}
		delete(s.waiters, id)
	}
}

func (s *receiptStore) evictOldestLocked() {
	id := s.order[s.head]
	s.bytes -= len(s.byID[id].body)
	delete(s.byID, id)
	s.order[s.head] = wire.MsgID{}
	s.head = (s.head + 1) % len(s.order)
	s.n--
}

// duplicateLocked counts a later copy of id, if the receipt is still kept.
func (s *receiptStore) duplicateLocked(id wire.MsgID) {
	if r, ok := s.byID[id]; ok {
		r.duplicates++
		s.byID[id] = r
	}
}

// get returns the receipt of id, with its body.
func (s *receiptStore) get(id wire.MsgID) (api.Receipt, bool) {
	s.mu.Lock()
	r, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return api.Receipt{}, false
	}
	out := toAPI(id, r)
	out.Body = string(r.body)
	return out, true
}

// wait returns a channel closed when id's receipt arrives, or nil if it is
// already here; cancel forgets the wait.
func (s *receiptStore) wait(id wire.MsgID) (ch chan struct{}, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; ok {
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
	limit = min(limit, s.n)
	if limit <= 0 {
		return []api.Receipt{}
	}
	out := make([]api.Receipt, 0, limit)
	for i := s.n - 1; i >= s.n-limit; i-- {
		id := s.order[(s.head+i)%len(s.order)]
		out = append(out, toAPI(id, s.byID[id]))
	}
	return out
}

func (s *receiptStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func toAPI(id wire.MsgID, r receipt) api.Receipt {
	out := api.Receipt{
		ID:          id.String(),
		Origin:      r.origin.String(),
		Hop:         int(r.hop),
		PublishedAt: time.Unix(0, r.publishedAt),
		ReceivedAt:  time.Unix(0, r.receivedAt),
		Duplicates:  r.duplicates,
		Size:        r.size,
	}
	if r.from != 0 {
		out.From = r.from.String()
	}
	return out
}
