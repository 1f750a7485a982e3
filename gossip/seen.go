package gossip

import "gossipmesh/wire"

// seenCache remembers message ids, bounded both in entries and in age: the
// lesson's Set grows forever, this one forgets the oldest id first.
//
// Entries sit in a ring in insertion order, so with one TTL for all the
// oldest entry is also the first to expire. A node that has seen a handful
// of messages (every node of a million-node simulation) pays for a short
// slice and a linear scan (one inline entry and no slice at all while it
// holds a single id); past indexThreshold entries a map takes over the
// lookups.
type seenCache struct {
	// first holds the only entry while ring is nil: a node that never holds
	// more than one id at a time (every node of a simulation whose
	// broadcasts are further apart than the TTL) needs no allocation and
	// no pointer to chase on its receive path.
	first seenEntry
	ring  []seenEntry
	head  int // index of the oldest entry in ring
	n     int // entries in use
	index map[wire.MsgID]struct{}
}

type seenEntry struct {
	id      wire.MsgID
	expires int64
}

// indexThreshold is the entry count above which lookups use a map.
const indexThreshold = 16

// contains reports whether id was added and has not expired at now.
func (s *seenCache) contains(now int64, id wire.MsgID) bool {
	s.expire(now)
	if s.index != nil {
		_, ok := s.index[id]
		return ok
	}
	if s.ring == nil {
		return s.n == 1 && s.first.id == id
	}
	for i := 0; i < s.n; i++ {
		if s.ring[(s.head+i)%len(s.ring)].id == id {
			return true
		}
	}
	return false
}

// add records id until expires, forgetting the oldest id if the cache
// holds capacity ids already. The caller has checked that id is absent.
// Capacity comes from the shared Config rather than a field of every cache.
func (s *seenCache) add(id wire.MsgID, expires int64, capacity int) {
	if s.n >= capacity {
		s.evictOldest()
	}
	if s.ring == nil && s.n == 0 {
		s.first = seenEntry{id: id, expires: expires}
		s.n = 1
		return
	}
	if s.ring == nil || s.n == len(s.ring) {
		s.grow(capacity)
	}
	s.ring[(s.head+s.n)%len(s.ring)] = seenEntry{id: id, expires: expires}
	s.n++
	if s.index != nil {
		s.index[id] = struct{}{}
	} else if s.n > indexThreshold {
		s.index = make(map[wire.MsgID]struct{}, s.n)
		for i := 0; i < s.n; i++ {
			s.index[s.ring[(s.head+i)%len(s.ring)].id] = struct{}{}
		}
	}
}

// expire forgets every entry that has expired at now.
func (s *seenCache) expire(now int64) {
	for s.n > 0 && s.oldest().expires <= now {
		s.evictOldest()
	}
}

// nextExpiry is when the oldest entry expires, or 0 when the cache is empty.
func (s *seenCache) nextExpiry() int64 {
	if s.n == 0 {
		return 0
	}
	return s.oldest().expires
}

func (s *seenCache) oldest() *seenEntry {
	if s.ring == nil {
		return &s.first
	}
	return &s.ring[s.head]
}

func (s *seenCache) len() int { return s.n }

func (s *seenCache) evictOldest() {
	e := s.oldest()
	if s.index != nil {
		delete(s.index, e.id)
	}
	*e = seenEntry{}
	if s.ring == nil {
		s.n = 0
		return
	}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	if s.n == 0 {
		s.head = 0
	}
}

// grow doubles the ring (up to capacity), unrolling it so head is 0. The
// first growth moves the inline entry into a ring of two.
func (s *seenCache) grow(capacity int) {
	if s.ring == nil {
		s.ring = make([]seenEntry, min(2, capacity))
		s.ring[0], s.first = s.first, seenEntry{}
		s.head = 0
		return
	}
	size := min(2*len(s.ring), capacity)
	ring := make([]seenEntry, size)
	for i := 0; i < s.n; i++ {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}
