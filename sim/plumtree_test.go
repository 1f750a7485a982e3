package sim

import (
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// plumCfg is a Plumtree run of n nodes on the default graph (undirected,
// mean degree 16, links of 10-100 ms), broadcasts back to back.
func plumCfg(n, broadcasts int) Config {
	cfg := DefaultConfig()
	cfg.Nodes = n
	cfg.Broadcasts = broadcasts
	cfg.Gap = 0
	cfg.Gossip.Strategy = gossip.Plumtree
	return cfg
}

// TestPlumtreeSettles: with its timers scaled to the link model, Plumtree
// at 1,000 nodes settles into a tree within a few broadcasts: every later
// broadcast reaches every node with RMR <= 0.01. With the core's 100 ms
// GRAFT timeout, shorter than the links, it stayed at RMR 2-3.
func TestPlumtreeSettles(t *testing.T) {
	r := run(t, plumCfg(1000, 12))
	for _, b := range r.PerBroadcast {
		if b.Reached != r.Nodes {
			t.Errorf("broadcast %d reached %d of %d nodes", b.Index, b.Reached, r.Nodes)
		}
		if b.Index >= 3 && b.RMR > 0.01 {
			t.Errorf("broadcast %d: RMR %.4f, want <= 0.01 once the tree has settled (messages %d, control %d)",
				b.Index, b.RMR, b.Messages, b.ControlMessages)
		}
	}
}

// TestPlumtreeTimers: the simulator's GRAFT timers are multiples of the
// longest link delay unless set.
func TestPlumtreeTimers(t *testing.T) {
	cfg := DefaultConfig() // 10-100 ms
	if to, re := cfg.PlumtreeTimers(); to != GraftTimeoutDelays*100*time.Millisecond || re != GraftRetryDelays*100*time.Millisecond {
		t.Errorf("default latency: timers %v, %v", to, re)
	}
	cfg.Latency = Latency{Kind: LatencyConstant, Min: 5 * time.Millisecond}
	if to, _ := cfg.PlumtreeTimers(); to != GraftTimeoutDelays*5*time.Millisecond {
		t.Errorf("constant 5 ms: timeout %v", to)
	}
	cfg.GraftTimeout, cfg.GraftRetry = 3*time.Second, time.Second
	if to, re := cfg.PlumtreeTimers(); to != 3*time.Second || re != time.Second {
		t.Errorf("set: timers %v, %v", to, re)
	}
	cfg.GraftRetry = -1
	if err := cfg.Validate(); err == nil {
		t.Error("a negative graft retry passed Validate")
	}
}

// TestControlMessagesCounted: flood sends no control frame; Plumtree's
// are charged to broadcasts, and the per-broadcast counts plus the
// unattributed ones are exactly the control frames the nodes sent (counted
// at the egress).
func TestControlMessagesCounted(t *testing.T) {
	for _, strategy := range []gossip.Strategy{gossip.Flood, gossip.Plumtree} {
		cfg := plumCfg(300, 6)
		cfg.Gossip.Strategy = strategy
		cfg.Crash = Crash{Fraction: 0.2, At: 500 * time.Millisecond} // repairs too
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var sent int64
		s.SetEgress(func(_ int64, _ wire.NodeID, snd *gossip.Send) bool {
			if snd.IsControl() {
				sent++
			}
			return true
		})
		r, err := s.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, b := range r.PerBroadcast {
			sum += b.ControlMessages
			if strategy == gossip.Plumtree && b.ControlMessages == 0 {
				t.Errorf("plumtree broadcast %d: no control frame counted", b.Index)
			}
		}
		if sum != r.ControlMessages {
			t.Errorf("%s: report total %d, broadcasts add up to %d", strategy, r.ControlMessages, sum)
		}
		if got := r.ControlMessages + r.ControlUnattributed; got != sent {
			t.Errorf("%s: %d control frames counted (%d unattributed), %d sent", strategy, got, r.ControlUnattributed, sent)
		}
		if strategy == gossip.Flood && sent != 0 {
			t.Errorf("flood sent %d control frames", sent)
		}
		if strategy == gossip.Plumtree && sent == 0 {
			t.Error("plumtree sent no control frame")
		}
	}
}
