package gossip

import (
	"fmt"

	"gossipmesh/wire"
)

// Router is a per-node state machine that decides who gets what: the core
// owns dedup, hop counts and events and calls the router's hooks; the
// router picks the peers a message is pushed to, and may send control
// frames and ask for ticks. This is go-libp2p-pubsub's split between the
// pubsub core and its floodsub / randomsub / gossipsub routers, with
// Plumtree's hooks (duplicates, control frames, timers, peer changes).
//
// One Router value is shared, read-only, by every core built from one
// Shared, so that a million cores cost one router. What a router keeps per
// node it keeps in the core's router slot (Node.State, Node.SetState),
// which stateless routers (flood, fanout) leave nil.
//
// Adding a router is a new file with its type and one line in newRouter.
type Router interface {
	// Init is called once per core, when it is built: a stateful router
	// sets the core's state here.
	Init(n *Node)
	// Route is the first-delivery hook: it appends to dst the peers that
	// get m (held at this node at m.Hop) eagerly, and returns the extended
	// slice. from is the peer m came from, zero for a message this node
	// publishes. It may also send control frames into out.
	Route(n *Node, now int64, m *wire.Message, from wire.NodeID, dst []wire.NodeID, out *Output) []wire.NodeID
	// OnDuplicate is called for every later copy of a message the node
	// already has, from from.
	OnDuplicate(n *Node, now int64, m *wire.Message, from wire.NodeID, out *Output)
	// OnControl is called for every control frame from from.
	OnControl(n *Node, now int64, from wire.NodeID, c *wire.Control, out *Output)
	// OnTick is called when the core ticks at or after the router's
	// NextTick.
	OnTick(n *Node, now int64, out *Output)
	// NextTick is when the router next wants OnTick, 0 for never.
	NextTick(n *Node) int64
	// OnPeerUp and OnPeerDown follow the node's links; the core has
	// already updated its peer list.
	OnPeerUp(n *Node, now int64, p wire.NodeID, out *Output)
	OnPeerDown(n *Node, now int64, p wire.NodeID, out *Output)
}

// DialRouter is a Router that tells dialed links from accepted ones (see
// Dialer): OnPeerUpDialed replaces OnPeerUp for a link this node dialed.
// Routers that make no difference need not implement it.
type DialRouter interface {
	Router
	OnPeerUpDialed(n *Node, now int64, p wire.NodeID, out *Output)
}

// Node is what a router sees of the core it runs in: the node's id, its
// peers, its seeded random source and its router state. It is the Core
// itself, under a name that says what routers are handed.
type Node = Core

// State returns the router's per-node state, nil for stateless routers.
func (c *Core) State() any { return c.state }

// SetState sets the router's per-node state (from Router.Init).
func (c *Core) SetState(v any) { c.state = v }

// newRouter is the registry: one line per strategy.
func newRouter(cfg Config) (Router, error) {
	switch cfg.Strategy {
	case Flood:
		return FloodRouter{}, nil
	case Fanout:
		return FanoutRouter{K: cfg.Fanout}, nil
	case Plumtree:
		return PlumtreeRouter{cfg: cfg}, nil
	case Lazy:
		return LazyRouter{cfg: cfg}, nil
	}
	return nil, fmt.Errorf("gossip: unknown strategy %q (want one of %v)", cfg.Strategy, Strategies())
}

// untimed reports whether r never asks for a tick, so that the core may
// skip its tick hooks. It names the concrete types, not a method: a
// router that embeds one of them may well override NextTick.
func untimed(r Router) bool {
	switch r.(type) {
	case FloodRouter, FanoutRouter:
		return true
	}
	return false
}

// NoHooks gives a router that only routes the hooks it does not use: it
// keeps no state, ignores duplicates, control frames and peer changes, and
// never asks for a tick. Embed it and write Route.
type NoHooks struct{}

// Init implements Router: no state.
func (NoHooks) Init(*Node) {}

// OnDuplicate implements Router: ignored.
func (NoHooks) OnDuplicate(*Node, int64, *wire.Message, wire.NodeID, *Output) {}

// OnControl implements Router: ignored. A control frame reaching a router
// that speaks none is harmless and dropped.
func (NoHooks) OnControl(*Node, int64, wire.NodeID, *wire.Control, *Output) {}

// OnTick implements Router: nothing timed.
func (NoHooks) OnTick(*Node, int64, *Output) {}

// NextTick implements Router: never.
func (NoHooks) NextTick(*Node) int64 { return 0 }

// OnPeerUp implements Router: ignored.
func (NoHooks) OnPeerUp(*Node, int64, wire.NodeID, *Output) {}

// OnPeerDown implements Router: ignored.
func (NoHooks) OnPeerDown(*Node, int64, wire.NodeID, *Output) {}

// FloodRouter sends to every peer except the sender.
type FloodRouter struct{ NoHooks }

// Route implements Router.
func (FloodRouter) Route(n *Node, _ int64, _ *wire.Message, from wire.NodeID, dst []wire.NodeID, _ *Output) []wire.NodeID {
	return floodPeers(dst, n.peers, from)
}

func floodPeers(dst, peers []wire.NodeID, from wire.NodeID) []wire.NodeID {
	for _, p := range peers {
		if p != from {
			dst = append(dst, p)
		}
	}
	return dst
}

// FanoutRouter sends to K peers chosen uniformly at random without
// replacement, never the sender; to all of them when there are K or fewer.
type FanoutRouter struct {
	NoHooks
	K int
}

// Route implements Router. It is a partial Fisher-Yates shuffle over the
// candidates, so it costs O(degree) and one random draw per chosen peer.
func (r FanoutRouter) Route(n *Node, _ int64, _ *wire.Message, from wire.NodeID, dst []wire.NodeID, _ *Output) []wire.NodeID {
	start := len(dst)
	dst = floodPeers(dst, n.peers, from)
	cand := dst[start:]
	if len(cand) <= r.K {
		return dst
	}
	for i := 0; i < r.K; i++ {
		j := i + n.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
	}
	return dst[:start+r.K]
}
