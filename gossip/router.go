package gossip

import (
	"math/rand/v2"

	"gossipmesh/wire"
)

// Router decides who gets a message; the core owns everything else (dedup,
// hop counts, events). This is go-libp2p-pubsub's split between the pubsub
// core and its floodsub / randomsub / gossipsub routers.
type Router interface {
	// Route appends to dst the peers that should get a message which
	// arrived from `from` (zero for a message this node publishes) and
	// returns the extended slice. peers is the node's current peer list and
	// must not be modified. rng is the core's own seeded source.
	Route(dst, peers []wire.NodeID, from wire.NodeID, rng *rand.Rand) []wire.NodeID
}

// NewRouter returns the router that cfg.Strategy names.
func NewRouter(cfg Config) Router {
	if cfg.Strategy == Fanout {
		return FanoutRouter{K: cfg.Fanout}
	}
	return FloodRouter{}
}

// FloodRouter sends to every peer except the sender.
type FloodRouter struct{}

// Route implements Router.
func (FloodRouter) Route(dst, peers []wire.NodeID, from wire.NodeID, _ *rand.Rand) []wire.NodeID {
	for _, p := range peers {
		if p != from {
			dst = append(dst, p)
		}
	}
	return dst
}

// FanoutRouter sends to K peers chosen uniformly at random without
// replacement, never the sender; to all of them when there are K or fewer.
type FanoutRouter struct{ K int }

// Route implements Router. It is a partial Fisher-Yates shuffle over the
// candidates, so it costs O(degree) and one random draw per chosen peer.
func (r FanoutRouter) Route(dst, peers []wire.NodeID, from wire.NodeID, rng *rand.Rand) []wire.NodeID {
	start := len(dst)
	dst = FloodRouter{}.Route(dst, peers, from, nil)
	cand := dst[start:]
	if len(cand) <= r.K {
		return dst
	}
	for i := 0; i < r.K; i++ {
		j := i + rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	return dst[:start+r.K]
}
