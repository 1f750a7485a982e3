package gossip

import "gossipmesh/wire"

// seenCache remembers message ids, bounded both in entries and in age: the
// lesson's Set grows forever, this one forgets the oldest id first.
//
// Entries sit in a ring in insertion order, so with one TTL for all the
// oldest entry is also the first to expire. A node that has seen a handful
// of messages (every node of a million-node simulation) pays for a short
// slice and a linear scan; past indexThreshold entries a map takes over the
// lookups.
type seenCache struct {
	ring     []seenEntry
	head     int // index of the oldest entry
	n        int // entries in use
	capacity int
	index    map[wire.MsgID]struct{}
}

type seenEntry struct {
	id      wire.MsgID
	expires int64
}

// indexThreshold is the entry count above which lookups use a map.
const indexThreshold = 16

func newSeenCache(capacity int) seenCache {
	return seenCache{capacity: capacity}
}

// contains reports whether id was added and has not expired at now.
func (s *seenCache) contains(now int64, id wire.MsgID) bool {
	s.expire(now)
	if s.index != nil {
		_, ok := s.index[id]
		return ok
	}
	for i := 0; i < s.n; i++ {
		if s.ring[(s.head+i)%len(s.ring)].id == id {
			return true
		}
	}
	return false
}

// add records id until expires. The caller has checked that id is absent.
func (s *seenCache) add(id wire.MsgID, expires int64) {
	if s.n == s.capacity {
		s.evictOldest()
	}
	if s.n == len(s.ring) {
		s.grow()
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
	for s.n > 0 && s.ring[s.head].expires <= now {
		s.evictOldest()
	}
}

// nextExpiry is when the oldest entry expires, or 0 when the cache is empty.
func (s *seenCache) nextExpiry() int64 {
	if s.n == 0 {
		return 0
	}
	return s.ring[s.head].expires
}

func (s *seenCache) len() int { return s.n }

func (s *seenCache) evictOldest() {
	e := &s.ring[s.head]
	if s.index != nil {
		delete(s.index, e.id)
	}
	*e = seenEntry{}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	if s.n == 0 {
		s.head = 0
	}
}

// grow doubles the ring (up to capacity), unrolling it so head is 0.
func (s *seenCache) grow() {
	size := 2 * len(s.ring)
	if size == 0 {
		size = 1
	}
	if size > s.capacity {
		size = s.capacity
	}
	ring := make([]seenEntry, size)
	for i := 0; i < s.n; i++ {
		ring[i] = s.ring[(s.head+i)%len(s.ring)]
	}
	s.ring, s.head = ring, 0
}
