package gossip

import "gossipmesh/wire"

// msgStore holds recent messages by id so that a node can serve a repair
// (Plumtree's GRAFT, lazy push's IWANT, an anti-entropy pull) after it has
// forwarded them. It is the core's, not a router's: every message the node
// publishes or delivers goes in, whatever asks for it later. It is bounded in count,
// bytes and age (Config.StoreCapacity, StoreBytes, StoreTTL); the oldest
// message goes first. A message past those bounds can no longer be
// repaired from this node: a request for it is counted as a miss.
//
// Messages are kept in arrival order in a FIFO slice (a ring that grows to
// the capacity), with a map from id for lookups; nothing is iterated in
// map order, so the store is deterministic.
type msgStore struct {
	byID  map[wire.MsgID]*wire.Message
	fifo  []storeEntry
	head  int // index of the oldest entry in fifo
	n     int // entries in fifo
	bytes int
	stats StoreStats
	// crowdedAt is when the store last evicted a message for its count or
	// byte bound (not its age), 0 for never: from then on it no longer
	// holds everything this node delivered inside the window.
	crowdedAt int64
	// evictedTop is, per origin, the highest sequence number the store
	// evicted for room and when (at most maxEvictMarks origins): a
	// crowded store's digest claims every sequence up to it, since the
	// store evicts in arrival order and a message that arrived late (a
	// repair) outlives newer ones delivered in order (antientropy.go,
	// claimEvicted). Nil until the store first evicts for room.
	evictedTop map[wire.NodeID]evictMark
	// ae is the node's anti-entropy state (antientropy.go), here so that a
	// core without a store pays nothing for it.
	ae antiEntropy
	// origins is the node's per-origin budget (origin.go), nil when it is
	// off; here for the same reason. A core that keeps budgets but serves
	// no repairs has a msgStore for them alone, and Shared.stores, not a
	// nil store, says whether it stores messages.
	origins *originTable
}

// storeEntry is one stored message with copies of the fields that the
// anti-entropy walks read for every entry (digest, onPull) and that
// eviction needs: kept inline in the ring, they are read sequentially,
// where following m would cost a cache miss per entry (10,000 of them,
// twice a period, and the oldest message at every eviction, on a node
// whose caches the other processes keep cold).
type storeEntry struct {
	m           *wire.Message
	expires     int64
	id          wire.MsgID
	size        int // len(m.Body)
	origin      wire.NodeID
	seq         uint64
	publishedAt int64
}

// StoreStats are a node's message-store counters, for metrics and tests:
// what it holds and what it could not serve.
type StoreStats struct {
	// Messages and Bytes are what the store holds now (bodies only).
	Messages, Bytes int
	// Stored counts messages ever stored; Evicted those dropped for count,
	// bytes or age.
	Stored, Evicted uint64
	// Served counts repair requests answered from the store; Misses those
	// for a message this node no longer (or never) held, which could not
	// be repaired from here.
	Served, Misses uint64
}

// put stores a copy of m (as held at this node: drivers may reuse the
// Message value they stepped the core with; the body is never reused)
// until now+ttl, evicting the oldest
// messages beyond capacity entries or maxBytes body bytes. A message whose
// body alone exceeds maxBytes is not stored.
func (s *msgStore) put(now int64, m *wire.Message, capacity, maxBytes int, ttl int64) {
	s.expire(now)
	if len(m.Body) > maxBytes || capacity < 1 {
		return
	}
	if s.byID == nil {
		s.byID = make(map[wire.MsgID]*wire.Message)
	}
	// Insert first and see whether the map grew: one probe of the index
	// instead of a lookup and then an insert. The index is large and, on
	// a loaded machine, out of the cache, and a message stored here is
	// nearly always new (the core stores what it delivers or publishes).
	cp := *m
	m = &cp
	before := len(s.byID)
	s.byID[m.ID] = m
	if len(s.byID) == before {
		if first := s.storedCopy(m.ID); first != nil {
			s.byID[m.ID] = first // already held: keep the first copy
			return
		}
	}
	for s.n >= capacity || s.bytes+len(m.Body) > maxBytes {
		e := &s.fifo[s.head]
		s.markEvictedKey(now, e.origin, e.seq)
		s.evictOldest()
		s.crowdedAt = now
	}
	if s.n == len(s.fifo) {
		s.grow(capacity)
	}
	s.fifo[(s.head+s.n)%len(s.fifo)] = storeEntry{m: m, expires: now + ttl, id: m.ID, size: len(m.Body), origin: m.Origin, seq: m.Seq, publishedAt: m.PublishedAt}
	s.n++
	s.bytes += len(m.Body)
	s.stats.Stored++
}

// storedCopy finds the ring's copy of id, newest first, nil when the ring
// has none: the rare path of a put of a message already stored.
func (s *msgStore) storedCopy(id wire.MsgID) *wire.Message {
	for i := s.n - 1; i >= 0; i-- {
		if e := &s.fifo[(s.head+i)%len(s.fifo)]; e.id == id {
			return e.m
		}
	}
	return nil
}

// get returns the stored message with id, nil when it is not (or no
// longer) held, counting the hit or the miss.
func (s *msgStore) get(now int64, id wire.MsgID) *wire.Message {
	s.expire(now)
	if m := s.byID[id]; m != nil {
		s.stats.Served++
		return m
	}
	s.stats.Misses++
	return nil
}

// expire drops messages whose age bound has passed.
func (s *msgStore) expire(now int64) {
	for s.n > 0 && s.fifo[s.head].expires <= now {
		s.evictOldest()
	}
}

// evictMark is the highest sequence of one origin evicted for room, and
// when.
type evictMark struct {
	seq uint64
	at  int64
}

// maxEvictMarks bounds msgStore.evictedTop: past it, an origin not yet
// marked is not marked (its evicted messages can come back as duplicates,
// as before the marks), so that a flood of origins costs no memory.
const maxEvictMarks = 4096

// markEvictedKey records that the message seq of origin is about to be
// evicted for room at now.
func (s *msgStore) markEvictedKey(now int64, origin wire.NodeID, seq uint64) {
	mk, ok := s.evictedTop[origin]
	if !ok && len(s.evictedTop) >= maxEvictMarks {
		return
	}
	if s.evictedTop == nil {
		s.evictedTop = make(map[wire.NodeID]evictMark)
	}
	s.evictedTop[origin] = evictMark{seq: max(mk.seq, seq), at: now}
}

func (s *msgStore) evictOldest() {
	e := s.fifo[s.head]
	s.fifo[s.head] = storeEntry{}
	s.head = (s.head + 1) % len(s.fifo)
	s.n--
	delete(s.byID, e.id)
	s.bytes -= e.size
	s.stats.Evicted++
}

// grow doubles the ring, up to capacity, keeping the order.
func (s *msgStore) grow(capacity int) {
	size := min(max(2*len(s.fifo), 16), capacity)
	fifo := make([]storeEntry, size)
	for i := range s.n {
		fifo[i] = s.fifo[(s.head+i)%len(s.fifo)]
	}
	s.fifo, s.head = fifo, 0
}

// Stats returns the store's counters.
func (s *msgStore) Stats() StoreStats {
	st := s.stats
	st.Messages, st.Bytes = s.n, s.bytes
	return st
}

// repairer is implemented by routers that serve repairs from the message
// store, so that their cores keep one (Shared.stores).
type repairer interface{ servesRepairs() }

// keep stores m, as held at this node, in the core's message store, if it
// keeps one.
func (c *Core) keep(now int64, m *wire.Message) {
	if c.sh.stores {
		cfg := &c.sh.cfg
		c.store.put(now, m, cfg.StoreCapacity, cfg.StoreBytes, int64(cfg.StoreTTL))
		if c.sh.ae != 0 {
			c.armAntiEntropy(now)
		}
	}
}

// stored returns the stored message with id, nil (a counted miss) when the
// core keeps no store or no longer holds it.
func (c *Core) stored(now int64, id wire.MsgID) *wire.Message {
	if !c.sh.stores {
		return nil
	}
	return c.store.get(now, id)
}

// StoreStats returns the counters of the core's message store; ok is false
// when the core keeps none (flood and fanout without anti-entropy).
func (c *Core) StoreStats() (s StoreStats, ok bool) {
	if !c.sh.stores {
		return StoreStats{}, false
	}
	return c.store.Stats(), true
}
