package sim

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// banOnFirst is a guarded node that bans peer target as soon as it hears
// from it (a penalty far below the disconnect threshold), and counts the
// the frames that reach it from target afterwards (none may: the link is
// cut at both ends).
type banOnFirst struct {
	*score.Guard
	target wire.NodeID
	banned *bool
	after  *int
}

func (b banOnFirst) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	if from == b.target && *b.banned {
		*b.after++
	}
	b.Guard.Step(now, from, f, out)
	if from == b.target && !*b.banned {
		*b.banned = true
		b.Penalize(now, from, 1<<30, out)
	}
}

// TestDisconnectsCutLinks: in the simulator, a Disconnect in a node's
// Output cuts the link at both ends (PeerDown on each), as the runtime
// closes the connection: neither end holds the link any more, nothing
// crosses it, and the broadcasts still reach everyone over the other
// links.
func TestDisconnectsCutLinks(t *testing.T) {
	cfg := small(TopologyUndirected, 6)
	cfg.Nodes = 40
	cfg.Broadcasts = 20
	cfg.Latency = Latency{Kind: LatencyConstant, Min: 5 * time.Millisecond}
	cfg.Gossip.Auth = gossip.NewModelAuth(cfg.Seed)
	sh, err := gossip.Share(cfg.Gossip)
	if err != nil {
		t.Fatal(err)
	}
	const banner = 3
	var (
		guards []*score.Guard
		target wire.NodeID
		banned bool
		after  int
	)
	// The run's virtual time outlasts the default ban.
	params := score.DefaultParams()
	params.BanDuration, params.RetainScore = 24*time.Hour, 24*time.Hour
	s, err := NewWith(cfg, func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol {
		c := gossip.NewShared(sh, wire.NodeID(i)+1, rng)
		g, err := score.NewGuard(c, params)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range peers {
			g.PeerUp(0, q, &gossip.Output{})
		}
		guards = append(guards, g)
		if i == banner {
			target = peers[0]
			return banOnFirst{Guard: g, target: target, banned: &banned, after: &after}
		}
		return g
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !banned {
		t.Fatal("the banner never heard from its target")
	}
	bans := guards[banner].Bans(-1 << 62)
	if len(bans) != 1 || bans[0].Peer != target {
		t.Fatalf("bans %+v, want the target %v", bans, target)
	}
	for _, ps := range guards[target-1].Scores(0) {
		if ps.Peer == banner+1 {
			t.Fatalf("the banned node still holds its link to the node that banned it")
		}
	}
	for _, ps := range guards[banner].Scores(0) {
		if ps.Peer == target {
			t.Fatalf("the banner still holds its link to the banned node")
		}
	}
	if after != 0 {
		t.Errorf("%d frames from the banned node reached the node that banned it", after)
	}
	if r.Reliability != 1 {
		t.Errorf("reliability %v with one link cut", r.Reliability)
	}
}
