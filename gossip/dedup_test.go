package gossip

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/wire"
)

// TestNeverDeliversTwiceUnderRandomOrders is the model test of dedup: many
// messages, each with several copies that arrive in random order after
// random delays (some far past the window), through seen-caches from tiny
// to roomy, with random ticks and a clock that sometimes steps back. Every
// id is delivered at most once, whatever the cache forgets; refusals carry
// the right reason; and a cache big enough for the window refuses nothing
// that arrives inside it.
func TestNeverDeliversTwiceUnderRandomOrders(t *testing.T) {
	const ttl = 1000
	for _, capacity := range []int{1, 2, 5, 17, 64, 10_000} {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, uint64(capacity)))
			cfg := unsignedConfig()
			cfg.SeenCapacity = capacity
			cfg.SeenTTL = ttl
			cfg.MaxFuture = 50
			cfg.VerifyIDs = seed%2 == 0
			c := newCore(t, cfg, 1, 2)

			type arrival struct {
				at  int64
				msg *wire.Message
			}
			var arrivals []arrival
			for i := range 300 {
				pub := int64(i*5 + rng.IntN(40)) // publishers' clocks disagree a little
				m := &wire.Message{Origin: wire.NodeID(10 + rng.IntN(3)), Seq: uint64(i + 1), Hop: 1, PublishedAt: pub, Body: []byte{byte(i), byte(i >> 8)}}
				m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
				for range 1 + rng.IntN(4) {
					delay := int64(rng.IntN(300)) - 60
					if rng.IntN(10) == 0 {
						delay = int64(rng.IntN(3 * ttl))
					}
					arrivals = append(arrivals, arrival{pub + delay, m})
				}
			}
			slices.SortStableFunc(arrivals, func(a, b arrival) int { return int(a.at - b.at) })

			delivered := map[wire.MsgID]int{}
			var out Output
			for _, a := range arrivals {
				now := a.at
				if rng.IntN(50) == 0 {
					now -= int64(rng.IntN(2 * ttl)) // the driver's clock stepped back
				}
				if rng.IntN(8) == 0 {
					c.Tick(now, &out)
				}
				out.Reset()
				c.Receive(now, 2, a.msg, &out)
				if len(out.Events) != 1 {
					t.Fatalf("cap %d seed %d: %d events for one receive", capacity, seed, len(out.Events))
				}
				e := out.Events[0]
				m := a.msg
				switch e.Kind {
				case EventDelivered:
					delivered[m.ID]++
					if delivered[m.ID] > 1 {
						t.Fatalf("cap %d seed %d: %v delivered %d times", capacity, seed, m.ID, delivered[m.ID])
					}
				case EventRefused:
					switch {
					case m.PublishedAt > now+int64(cfg.MaxFuture):
						if !errors.Is(e.Err, ErrFuture) {
							t.Fatalf("cap %d seed %d: refused a future copy with %v", capacity, seed, e.Err)
						}
					case now >= m.PublishedAt+ttl:
						if !errors.Is(e.Err, ErrExpired) {
							t.Fatalf("cap %d seed %d: refused an expired copy with %v", capacity, seed, e.Err)
						}
					default:
						if !errors.Is(e.Err, ErrUnderLoad) {
							t.Fatalf("cap %d seed %d: refused a copy in its window with %v", capacity, seed, e.Err)
						}
						if capacity == 10_000 && delivered[m.ID] == 0 && now == a.at {
							t.Fatalf("cap %d seed %d: a roomy cache refused a first copy inside its window", capacity, seed)
						}
					}
				case EventDuplicate:
					if delivered[m.ID] == 0 {
						t.Fatalf("cap %d seed %d: duplicate of a message never delivered", capacity, seed)
					}
				default:
					t.Fatalf("cap %d seed %d: unexpected %v: %v", capacity, seed, e.Kind, e.Err)
				}
			}
			if len(delivered) == 0 {
				t.Fatalf("cap %d seed %d: nothing delivered", capacity, seed)
			}
		}
	}
}

// TestLateCopyAfterBurstIsRefused is the storm in miniature: a cache of 4,
// a burst of 10 ids, then a late copy of the first. It used to be
// delivered (and flooded) again.
func TestLateCopyAfterBurstIsRefused(t *testing.T) {
	cfg := unsignedConfig()
	cfg.SeenCapacity = 4
	c := newCore(t, cfg, 1, 2, 3)
	var out Output
	var first *wire.Message
	for i := range 10 {
		m := &wire.Message{Origin: 9, Seq: uint64(i + 1), Hop: 1, PublishedAt: int64(i), Body: []byte{byte(i)}}
		m.ID = wire.ComputeMsgID(9, m.Seq, m.Body)
		if i == 0 {
			first = m
		}
		c.Receive(100, 2, m, &out)
	}
	out.Reset()
	c.Receive(200, 3, out2(*first, 2), &out)
	if len(out.Events) != 1 || out.Events[0].Kind != EventRefused || !errors.Is(out.Events[0].Err, ErrUnderLoad) || len(out.Sends) != 0 {
		t.Fatalf("late copy of a forgotten id: events %+v, %d sends; want one refusal under load and no sends", out.Events, len(out.Sends))
	}
}

// TestOwnMessageAfterForgettingIsNotDeliveredToSelf: a node's own message
// whose id it forgot, coming back, used to be delivered to its publisher.
func TestOwnMessageAfterForgettingIsNotDeliveredToSelf(t *testing.T) {
	cfg := unsignedConfig()
	cfg.SeenCapacity = 2
	c := newCore(t, cfg, 1, 2)
	var out Output
	m, _ := c.Publish(0, []byte("mine"), &out)
	c.Publish(1, []byte("b"), &out)
	c.Publish(2, []byte("c"), &out)
	out.Reset()
	c.Receive(3, 2, out2(*m, 2), &out)
	if len(out.Events) != 1 || out.Events[0].Kind == EventDelivered {
		t.Fatalf("own forgotten message came back: events %+v, want it refused", out.Events)
	}
}

// TestOnlyTheHopCountIsThePeersFault: a forwarder relays origin, sequence,
// id and body as it got them, so only a hop count out of range (which the
// sender sets) is blamed on the link.
func TestOnlyTheHopCountIsThePeersFault(t *testing.T) {
	cfg := unsignedConfig()
	cfg.MaxBody = 10
	good := &wire.Message{Origin: 9, Seq: 1, Hop: 1, Body: []byte("x")}
	good.ID = wire.ComputeMsgID(9, 1, good.Body)
	tampered := out2(*good, 1)
	tampered.Body = []byte("y")
	tests := []struct {
		name  string
		msg   *wire.Message
		want  error
		fault bool
	}{
		{"hop zero", out2(*good, 0), ErrBadHop, true},
		{"hop over max", out2(*good, cfg.MaxHops+1), ErrBadHop, true},
		{"body over max", &wire.Message{Origin: 9, Seq: 2, Hop: 1, Body: make([]byte, 11)}, ErrBodyTooLarge, false},
		{"id mismatch", tampered, ErrIDMismatch, false},
		{"forged own origin, seq ahead", &wire.Message{Origin: 1, Seq: 5, Hop: 1}, ErrFromSelf, false},
	}
	for _, tt := range tests {
		c := newCore(t, cfg, 1, 2)
		var out Output
		c.Receive(1, 2, tt.msg, &out)
		if len(out.Events) != 1 || out.Events[0].Kind != EventRejected || !errors.Is(out.Events[0].Err, tt.want) {
			t.Fatalf("%s: events %+v, want rejected with %v", tt.name, out.Events, tt.want)
		}
		if got := out.Events[0].PeerFault; got != tt.fault {
			t.Errorf("%s: PeerFault = %v, want %v", tt.name, got, tt.fault)
		}
	}
}

// TestSeqBaseNumbersPublishes: a node that restarts with its id gets a new
// SeqBase, so the same body gets a new id, and copies of what an earlier
// boot published are not taken for its own.
func TestSeqBaseNumbersPublishes(t *testing.T) {
	var out Output
	old := newCore(t, unsignedConfig(), 1, 2)
	before, _ := old.Publish(0, []byte("same body"), &out)

	cfg := unsignedConfig()
	cfg.SeqBase = uint64(time.Hour)
	c := newCore(t, cfg, 1, 2)
	m, _ := c.Publish(int64(time.Hour), []byte("same body"), &out)
	if m.Seq != cfg.SeqBase+1 || m.ID == before.ID {
		t.Fatalf("after a restart: seq %d id %v; want seq %d and a new id", m.Seq, m.ID, cfg.SeqBase+1)
	}
	out.Reset()
	c.Receive(int64(time.Hour)+1, 2, out2(*m, 2), &out)
	if len(out.Events) != 1 || out.Events[0].Kind != EventDuplicate {
		t.Errorf("own message back: events %+v, want a duplicate", out.Events)
	}
	out.Reset()
	c.Receive(int64(time.Hour)+1, 2, out2(*before, 2), &out)
	if len(out.Events) != 1 || out.Events[0].Kind != EventRejected || !errors.Is(out.Events[0].Err, ErrFromSelf) || out.Events[0].PeerFault {
		t.Errorf("an earlier boot's message: events %+v, want rejected as not ours, not the peer's fault", out.Events)
	}
}

func TestConfigValidatesWindow(t *testing.T) {
	for name, change := range map[string]func(*Config){
		"negative future": func(c *Config) { c.MaxFuture = -1 },
		"huge future":     func(c *Config) { c.MaxFuture = 25 * time.Hour },
		"huge ttl":        func(c *Config) { c.SeenTTL = 25 * time.Hour },
		"huge capacity":   func(c *Config) { c.SeenCapacity = 1<<30 + 1 },
	} {
		cfg := unsignedConfig()
		change(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

func TestSeenAnswersWhetherACopyIsADuplicate(t *testing.T) {
	c := newCore(t, unsignedConfig(), 1, 2)
	m := &wire.Message{Origin: 9, Seq: 1, Hop: 1, Body: []byte("x")}
	m.ID = wire.ComputeMsgID(9, 1, m.Body)
	if c.Seen(0, m.ID) {
		t.Fatal("Seen before any copy arrived")
	}
	var out Output
	c.Receive(0, 2, m, &out)
	if !c.Seen(1, m.ID) {
		t.Fatal("not Seen after delivery")
	}
}
