package gossip

import "gossipmesh/wire"

// seenCache remembers message ids, bounded both in entries and in age: the
// lesson's Set grows forever, this one forgets the oldest id first. It
// never lets a forgotten id pass for a new one: every entry it forgets,
// by age or to make room, raises floor to that entry's expiry, and the core
// refuses any message whose own expiry (its publish time plus the window)
// is at or below floor. See Core.Receive for why that makes re-delivery
// impossible.
//
// Entries sit in a ring in insertion order. Each expires when a copy of
// its message can no longer be accepted (publish time plus the window), so
// expiries are only roughly in insertion order: expire stops at the first
// live entry, and an entry may outstay its expiry behind it, never the
// reverse. A node that has seen a handful
// of messages (every node of a million-node simulation) pays for a short
// slice and a linear scan (one inline entry and no slice at all while it
// holds a single id); past indexThreshold entries a map takes over the
// lookups.
type seenCache struct {
	// first holds the only entry while big is nil: a node that never holds
	// more than one id at a time (every node of a simulation whose
	// broadcasts are further apart than the TTL) needs no allocation and
	// no pointer to chase on its receive path.
	first seenEntry
	// big holds the ring and, past indexThreshold entries, the index:
	// one pointer in the core, nil while the cache holds a single id.
	big  *seenRing
	head int32 // index of the oldest entry in ring
	n    int32 // entries in use; Config.Validate caps capacity to fit
	// floor is the latest expiry among the entries forgotten so far: a
	// message that would expire at or before it may be one of them.
	floor int64
}

type seenEntry struct {
	id      wire.MsgID
	expires int64
}

// seenRing is a cache's storage once it has held two ids.
type seenRing struct {
	e     []seenEntry
	index map[wire.MsgID]struct{}
}

// indexThreshold is the entry count above which lookups use a map.
const indexThreshold = 16

// contains reports whether id was added and has not expired at now.
func (s *seenCache) contains(now int64, id wire.MsgID) bool {
	s.expire(now)
	if s.big != nil && s.big.index != nil {
		_, ok := s.big.index[id]
		return ok
	}
	if s.big == nil {
		return s.n == 1 && s.first.id == id
	}
	for i := range s.n {
		if s.big.e[(int(s.head)+int(i))%len(s.big.e)].id == id {
			return true
		}
	}
	return false
}

// add records id until expires, forgetting the oldest id if the cache
// holds capacity ids already. The caller has checked that id is absent.
// Capacity comes from the shared Config rather than a field of every cache.
func (s *seenCache) add(id wire.MsgID, expires int64, capacity int) {
	if int(s.n) >= capacity {
		s.evictOldest()
	}
	if s.big == nil && s.n == 0 {
		s.first = seenEntry{id: id, expires: expires}
		s.n = 1
		return
	}
	if s.big == nil || int(s.n) == len(s.big.e) {
		s.grow(capacity)
	}
	s.big.e[(int(s.head)+int(s.n))%len(s.big.e)] = seenEntry{id: id, expires: expires}
	s.n++
	if s.big.index != nil {
		s.big.index[id] = struct{}{}
	} else if s.n > indexThreshold {
		s.big.index = make(map[wire.MsgID]struct{}, s.n)
		for i := range s.n {
			s.big.index[s.big.e[(int(s.head)+int(i))%len(s.big.e)].id] = struct{}{}
		}
	}
}

// covers reports whether a message that expires at expires may be one the
// cache has forgotten: it may, unless it outlives every forgotten entry.
func (s *seenCache) covers(expires int64) bool { return expires > s.floor }

// expire forgets the entries that have expired at now, oldest first, up to
// the first one still live.
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
	if s.big == nil {
		return &s.first
	}
	return &s.big.e[s.head]
}

func (s *seenCache) len() int { return int(s.n) }

// evictOldest forgets the oldest entry and raises the floor to its expiry.
func (s *seenCache) evictOldest() {
	e := s.oldest()
	s.floor = max(s.floor, e.expires)
	if s.big != nil && s.big.index != nil {
		delete(s.big.index, e.id)
	}
	*e = seenEntry{}
	if s.big == nil {
		s.n = 0
		return
	}
	s.head = int32((int(s.head) + 1) % len(s.big.e))
	s.n--
	if s.n == 0 {
		s.head = 0
	}
}

// grow doubles the ring (up to capacity), unrolling it so head is 0. The
// first growth moves the inline entry into a ring of two.
func (s *seenCache) grow(capacity int) {
	if s.big == nil {
		s.big = &seenRing{e: make([]seenEntry, min(2, capacity))}
		s.big.e[0], s.first = s.first, seenEntry{}
		s.head = 0
		return
	}
	size := min(2*len(s.big.e), capacity)
	ring := make([]seenEntry, size)
	for i := range s.n {
		ring[i] = s.big.e[(int(s.head)+int(i))%len(s.big.e)]
	}
	s.big.e, s.head = ring, 0
}
