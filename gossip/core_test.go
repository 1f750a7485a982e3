package gossip

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"gossipmesh/wire"
)

func newCore(t *testing.T, cfg Config, id wire.NodeID, peers ...wire.NodeID) *Core {
	t.Helper()
	c, err := New(cfg, id, rand.New(rand.NewPCG(1, uint64(id))))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		c.AddPeer(p)
	}
	return c
}

func sendTargets(out *Output) []wire.NodeID {
	var to []wire.NodeID
	for _, s := range out.Sends {
		to = append(to, s.To)
	}
	slices.Sort(to)
	return to
}

func TestPublishFloodsAtHopOne(t *testing.T) {
	c := newCore(t, unsignedConfig(), 1, 2, 3, 4)
	var out Output
	m, err := c.Publish(100, []byte("hi"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Hop != 0 || m.Origin != 1 || m.Seq != 1 || m.PublishedAt != 100 {
		t.Errorf("published %+v, want hop 0, origin 1, seq 1 at 100", m)
	}
	if got := sendTargets(&out); !slices.Equal(got, []wire.NodeID{2, 3, 4}) {
		t.Errorf("sent to %v, want [2 3 4]", got)
	}
	for _, s := range out.Sends {
		if s.Msg.Hop != 1 || s.Msg.ID != m.ID {
			t.Errorf("send %+v: want the same id at hop 1", s.Msg)
		}
	}
	if len(out.Events) != 1 || out.Events[0].Kind != EventPublished {
		t.Errorf("events %+v, want one published", out.Events)
	}
}

func TestReceiveDeliversOnceAndForwardsToOthers(t *testing.T) {
	pub := newCore(t, unsignedConfig(), 9)
	var out Output
	m, _ := pub.Publish(0, []byte("x"), &out)
	copy1 := *m
	copy1.Hop = 1

	c := newCore(t, unsignedConfig(), 1, 2, 3, 9)
	out.Reset()
	c.Receive(10, 9, &copy1, &out)
	if len(out.Events) != 1 || out.Events[0].Kind != EventDelivered || out.Events[0].From != 9 {
		t.Fatalf("events %+v, want one delivered from 9", out.Events)
	}
	if got := sendTargets(&out); !slices.Equal(got, []wire.NodeID{2, 3}) {
		t.Errorf("forwarded to %v, want [2 3] (never back to the sender)", got)
	}
	if out.Sends[0].Msg.Hop != 2 {
		t.Errorf("forwarded at hop %d, want 2", out.Sends[0].Msg.Hop)
	}
	out.Reset()
	c.Receive(20, 2, out2(copy1, 2), &out)
	if len(out.Events) != 1 || out.Events[0].Kind != EventDuplicate || len(out.Sends) != 0 {
		t.Errorf("second copy: events %+v sends %d, want one duplicate and no sends", out.Events, len(out.Sends))
	}
}

func out2(m wire.Message, hop uint16) *wire.Message {
	m.Hop = hop
	return &m
}

func TestRejectsAndStillAcceptsHonestCopy(t *testing.T) {
	pub := newCore(t, unsignedConfig(), 9)
	var out Output
	m, _ := pub.Publish(0, []byte("honest"), &out)
	honest := out2(*m, 1)

	cfg := unsignedConfig()
	cfg.MaxBody = 10
	tampered := out2(*m, 1)
	tampered.Body = []byte("forged")
	tests := []struct {
		name string
		msg  *wire.Message
		want error
	}{
		{"hop zero", out2(*m, 0), ErrBadHop},
		{"hop over max", out2(*m, cfg.MaxHops+1), ErrBadHop},
		{"body over max", &wire.Message{ID: m.ID, Origin: 9, Seq: 1, Hop: 1, Body: make([]byte, 11)}, ErrBodyTooLarge},
		{"tampered body", tampered, ErrIDMismatch},
		{"forged own origin", &wire.Message{Origin: 1, Seq: 5, Hop: 1}, ErrFromSelf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t, cfg, 1, 2, 9)
			var out Output
			c.Receive(1, 2, tt.msg, &out)
			if len(out.Events) != 1 || out.Events[0].Kind != EventRejected || !errors.Is(out.Events[0].Err, tt.want) {
				t.Fatalf("events %+v, want rejected with %v", out.Events, tt.want)
			}
			if len(out.Sends) != 0 {
				t.Errorf("a rejected message was forwarded")
			}
			out.Reset()
			c.Receive(2, 9, honest, &out)
			if len(out.Events) != 1 || out.Events[0].Kind != EventDelivered {
				t.Errorf("honest copy after a rejected one: events %+v, want delivered", out.Events)
			}
		})
	}
}

func TestFanoutPicksDistinctRandomPeersButNeverTheSender(t *testing.T) {
	cfg := unsignedConfig()
	cfg.Strategy = Fanout
	cfg.Fanout = 3
	var peers []wire.NodeID
	for p := wire.NodeID(2); p <= 11; p++ {
		peers = append(peers, p)
	}
	c := newCore(t, cfg, 1, peers...)
	counts := map[wire.NodeID]int{}
	for seq := range 300 {
		var out Output
		m := &wire.Message{Origin: 50, Seq: uint64(seq), Hop: 1, Body: []byte{byte(seq)}}
		m.ID = wire.ComputeMsgID(50, m.Seq, m.Body)
		c.Receive(int64(seq), 2, m, &out)
		got := sendTargets(&out)
		if len(got) != 3 || len(slices.Compact(slices.Clone(got))) != 3 {
			t.Fatalf("fanout sent to %v, want 3 distinct peers", got)
		}
		for _, p := range got {
			if p == 2 {
				t.Fatalf("fanout sent back to the sender")
			}
			counts[p]++
		}
	}
	// 900 picks over 9 peers: each expects 100. A peer never picked, or
	// picked three times as often, means the shuffle is broken.
	for p := wire.NodeID(3); p <= 11; p++ {
		if counts[p] < 50 || counts[p] > 150 {
			t.Errorf("peer %d picked %d times of 900, want about 100", p, counts[p])
		}
	}
}

func TestFanoutCappedByDegree(t *testing.T) {
	cfg := unsignedConfig()
	cfg.Strategy = Fanout
	c := newCore(t, cfg, 1, 2, 3)
	var out Output
	c.Publish(0, nil, &out)
	if got := sendTargets(&out); !slices.Equal(got, []wire.NodeID{2, 3}) {
		t.Errorf("fanout 8 with 2 peers sent to %v, want both", got)
	}
}

func TestSeenCacheBoundedInEntriesAndAge(t *testing.T) {
	cfg := unsignedConfig()
	cfg.SeenCapacity = 40
	cfg.SeenTTL = time.Second
	c := newCore(t, cfg, 1)
	var out Output
	var ids []*wire.Message
	for i := range 100 {
		m, _ := c.Publish(int64(i), []byte{byte(i)}, &out)
		ids = append(ids, m)
	}
	if c.SeenLen() != 40 {
		t.Errorf("seen holds %d ids, capacity 40", c.SeenLen())
	}
	// The newest 40 are remembered, the oldest forgotten.
	if !c.seen.contains(100, ids[99].ID) || c.seen.contains(100, ids[0].ID) {
		t.Errorf("cache should forget the oldest id first")
	}
	if got, want := c.NextTick(), int64(60)+int64(time.Second); got != want {
		t.Errorf("NextTick = %d, want %d (when the oldest entry expires)", got, want)
	}
	c.Tick(int64(time.Second)+80, &out)
	if c.SeenLen() != 19 {
		t.Errorf("after ticking past 21 expiries seen holds %d, want 19", c.SeenLen())
	}
	c.Tick(int64(2*time.Second), &out)
	if c.SeenLen() != 0 || c.NextTick() != 0 {
		t.Errorf("after every TTL: len %d, next tick %d; want empty and no tick", c.SeenLen(), c.NextTick())
	}
}

func TestPeersAddRemove(t *testing.T) {
	c := newCore(t, unsignedConfig(), 1, 2, 2, 1, 3)
	if got := c.Peers(); !slices.Equal(got, []wire.NodeID{2, 3}) {
		t.Errorf("peers %v, want [2 3]: no duplicates, not self", got)
	}
	c.RemovePeer(2)
	c.RemovePeer(7)
	if got := c.Peers(); !slices.Equal(got, []wire.NodeID{3}) {
		t.Errorf("peers %v after removing 2, want [3]", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"strategy", func(c *Config) { c.Strategy = "gossipsub" }},
		{"fanout", func(c *Config) { c.Fanout = 0 }},
		{"capacity", func(c *Config) { c.SeenCapacity = 0 }},
		{"ttl", func(c *Config) { c.SeenTTL = 0 }},
		{"hops", func(c *Config) { c.MaxHops = 0 }},
		{"body", func(c *Config) { c.MaxBody = -1 }},
	}
	if err := unsignedConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tt := range tests {
		cfg := unsignedConfig()
		tt.change(&cfg)
		if _, err := New(cfg, 1, rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Errorf("%s: New accepted an invalid config", tt.name)
		}
	}
	if _, err := ParseStrategy("fanout"); err != nil {
		t.Error(err)
	}
	if _, err := ParseStrategy("nope"); err == nil {
		t.Error("ParseStrategy accepted nope")
	}
}

// TestCoreFitsTwoCacheLines keeps a core, router state included, to 128
// bytes: the simulator touches one core per event, at random, across a
// million of them, and prefetches two cache lines of it.
func TestCoreFitsTwoCacheLines(t *testing.T) {
	if size := unsafe.Sizeof(Core{}); size > 128 {
		t.Errorf("gossip.Core is %d bytes, want at most 128", size)
	}
}

// unsignedConfig is DefaultConfig under SigningNone, for the tests that
// build messages by hand and are about something other than signatures
// (validate_test.go tests those).
func unsignedConfig() Config {
	cfg := DefaultConfig()
	cfg.Signing = SigningNone
	return cfg
}
