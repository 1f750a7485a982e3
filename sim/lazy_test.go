package sim

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"gossipmesh/gossip"
)

// TestLazyRepairsAfterThePushSettles runs the lazy router with an eager
// set of one peer, so that the push alone misses most nodes and the
// heartbeat's IHAVE, IWANT and answer reach them after every payload
// frame of the push has landed. A broadcast must stay open while a tick
// is pending (it may yet bring a copy), the run must end once every node
// has gone idle, and every node must get every message. The same seed
// gives the same report.
func TestLazyRepairsAfterThePushSettles(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Gossip.Strategy = gossip.Lazy
	cfg.Gossip.LazyD = 1
	runOnce := func() ([]byte, uint64) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var served uint64
		for i := range s.cores {
			st, ok := gossip.LazyStatsOf(&s.cores[i])
			if !ok {
				t.Fatalf("node %d does not run the lazy router", i)
			}
			served += st.Served
			if w := s.cores[i].NextWake(); w != 0 {
				t.Errorf("node %d still wants a tick at %v after the run", i, time.Duration(w))
			}
		}
		for _, b := range r.PerBroadcast {
			if b.Reached != cfg.Nodes {
				t.Errorf("broadcast %d reached %d of %d nodes", b.Index, b.Reached, cfg.Nodes)
			}
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return out, served
	}
	first, served := runOnce()
	if served == 0 {
		t.Fatal("no IWANT was answered: the push alone reached everyone, so nothing was repaired")
	}
	second, _ := runOnce()
	if string(first) != string(second) {
		t.Errorf("same seed, different reports:\n%s\n%s", first, second)
	}
	t.Logf("messages served on IWANT over %d broadcasts: %d", cfg.Broadcasts, served)
}
