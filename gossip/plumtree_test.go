package gossip

import (
	"fmt"
	"testing"
	"time"

	"gossipmesh/wire"
)

// A lazy link carries one IHAVE frame per PlumtreeIHaveInterval while
// messages flow, whatever the rate: in a triangle that settles into a
// tree with one lazy link, 1,000 messages in one second from one node
// cost each end of that link at most one frame per interval (50 ms here,
// the node runtime's) and the flush that the last messages leave, not one
// per message.
func TestPlumtreeIHaveFramesPerIntervalNotPerMessage(t *testing.T) {
	cfg := unsignedConfig()
	cfg.Strategy = Plumtree
	cfg.AntiEntropy = -1
	cfg.PlumtreeIHaveInterval = 50 * time.Millisecond
	adj := map[wire.NodeID][]wire.NodeID{1: {2, 3}, 2: {1, 3}, 3: {1, 2}}
	net := newTimedNet(t, cfg, adj, 1)
	var msgs []*wire.Message
	msgs = append(msgs, net.publish(1, "form"))
	net.runUntil(net.now + int64(time.Second)) // the tree forms: 2 - 3 lazy
	before := map[wire.NodeID]uint64{}
	for _, id := range net.ids {
		st, _ := PlumtreeStatsOf(net.cores[id])
		before[id] = st.IHavesSent
	}
	start := net.now
	for i := range 1000 {
		msgs = append(msgs, net.publish(1, fmt.Sprintf("m%d", i)))
		net.runUntil(start + int64(i+1)*int64(time.Millisecond))
	}
	net.runUntil(net.now + int64(time.Second))
	for _, id := range net.ids {
		if got := net.has(id, msgs); got != len(msgs) {
			t.Errorf("node %v has %d of %d messages", id, got, len(msgs))
		}
	}
	lazyLinks := 0
	for _, id := range net.ids {
		st, _ := PlumtreeStatsOf(net.cores[id])
		lazyLinks += st.Lazy
		sent := st.IHavesSent - before[id]
		t.Logf("node %v: %d IHAVE, lazy %d", id, sent, st.Lazy)
		if bound := uint64(st.Lazy) * uint64(time.Second/cfg.PlumtreeIHaveInterval+1); sent > bound {
			t.Errorf("node %v sent %d IHAVE frames on %d lazy links for 1,000 messages in 1 s, want at most %d", id, sent, st.Lazy, bound)
		}
	}
	if lazyLinks != 2 {
		t.Fatalf("%d lazy link ends, want 2 (the tree is a path, the third link lazy both ways)", lazyLinks)
	}
}
