package gossip

import (
	"math/rand/v2"
	"testing"

	"gossipmesh/wire"
)

// TestSeenCacheAgainstModel drives the cache and a plain FIFO model with the
// same random operations, across capacities that exercise the inline entry,
// the ring and the map index, and checks that they always agree.
func TestSeenCacheAgainstModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 17, 40} {
		rng := rand.New(rand.NewPCG(uint64(capacity), 9))
		var s seenCache
		type entry struct {
			id      wire.MsgID
			expires int64
		}
		var model []entry
		now := int64(0)
		for step := range 5000 {
			now += int64(rng.IntN(10))
			for len(model) > 0 && model[0].expires <= now {
				model = model[1:]
			}
			id := wire.MsgID{byte(rng.IntN(60))}
			want := false
			for _, e := range model {
				want = want || e.id == id
			}
			if got := s.contains(now, id); got != want {
				t.Fatalf("capacity %d step %d: contains = %v, model says %v", capacity, step, got, want)
			}
			if !want {
				ttl := int64(1 + rng.IntN(200))
				// One TTL per cache in real use; keep expiries in order.
				if len(model) > 0 {
					ttl = max(ttl, model[len(model)-1].expires-now)
				}
				s.add(id, now+ttl, capacity)
				model = append(model, entry{id, now + ttl})
				if len(model) > capacity {
					model = model[1:]
				}
			}
			if s.len() != len(model) {
				t.Fatalf("capacity %d step %d: len %d, model %d", capacity, step, s.len(), len(model))
			}
		}
	}
}
