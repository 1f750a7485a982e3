package node

import (
	"fmt"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
)

// DefaultOriginRate is Config.Gossip.OriginRate's default in the node
// runtime: 1,000 new messages a second per origin, after a burst of two
// seconds' worth (gossip.DefaultOriginBurstSeconds), under strict signing.
// It is far above what one honest origin of an application publishes, and
// low enough that an origin just under it cannot saturate a small
// machine: 1,000 signatures a second cost each node about 5% of a core
// (50 µs each), where 5,000 a second left ten loaded processes on two
// cores unable to keep up. A spammer at 20,000 a second spends its burst
// within a tenth of a second of arrivals and is banned by its neighbours
// soon after (score.Params.OverBudgetPerPenalty). What publishes more from
// one node by design lifts it: `mesh bench` (its one publisher carries
// the whole search) and `mesh soak --storm`; anything else raises it with
// --origin-rate on every node, since each enforces it on the others.
const DefaultOriginRate = 1000

// ownBudget holds back this node's own publishes to the budget its peers
// hold its origin to, so that it never emits what they would ignore: the
// same rate, and half their burst, which leaves its copies half a burst
// (a second at the default) of queueing jitter before a peer could count
// them over. The loop owns it.
type ownBudget struct {
	on          bool
	rate, burst float64
	b           gossip.TokenBucket
	started     bool
	// peerBurst is the burst the peers allow (Gossip.OriginBurstSize),
	// which the arrival check of each link's own messages uses.
	peerBurst float64
	// signal wakes the loop when a reader dropped frames over budget
	// (overBudgetAtArrival), so that it charges the peer at once.
	signal chan struct{}
}

func newOwnBudget(cfg gossip.Config) ownBudget {
	if cfg.OriginRate <= 0 || cfg.Signing != gossip.SigningStrict {
		return ownBudget{}
	}
	return ownBudget{on: true, rate: cfg.OriginRate, burst: max(cfg.OriginBurstSize()/2, 1),
		peerBurst: cfg.OriginBurstSize(), signal: make(chan struct{}, 1)}
}

// overBudgetAtArrival checks a message frame that its own origin sent
// against the origin's budget as the link's reader decodes it, and drops
// one over budget before it takes a place in the inbox; the loop then
// charges the peer for it (chargeOverBudget), as the core's refusals are
// (score's OverBudgetPerPenalty). The core's budget alone does not
// suffice in the runtime: it counts what the loop hands it, and a node
// too busy to verify as fast as a spammer sends drops the excess from its
// inbox as stale, unseen, behind thousands of the spammer's frames, so
// the core finds the spammer over budget seconds late or never. Only the
// link's own messages are counted, never what it relays. Only p's reader
// calls it.
func (n *Node) overBudgetAtArrival(p *peer, in *inbound) bool {
	o := &n.own
	if !o.on || in.msg.Origin != p.id {
		return false
	}
	if !p.directStarted {
		p.direct.Fill(in.at, o.peerBurst)
		p.directStarted = true
	}
	if p.direct.Take(in.at, o.rate, o.peerBurst) {
		return false
	}
	n.m.rejected.WithLabelValues("origin_rate").Inc()
	if p.overBudget.Add(1) == 1 {
		select {
		case o.signal <- struct{}{}:
		default:
		}
	}
	return true
}

// chargeOverBudget charges every link for the frames its reader dropped
// over budget since the last call, in the guard (a ban goes out with the
// sends). Only the loop calls it.
func (n *Node) chargeOverBudget() {
	now := time.Now().UnixNano()
	for _, p := range n.links {
		if k := p.overBudget.Swap(0); k > 0 && n.guard != nil {
			n.guard.PenalizeOverBudget(now, p.id, int(k), &n.out)
		}
	}
	n.flushSends()
}

// rateLimitedError is a publish refused for the node's own budget: it
// says when the next token comes, so that /load can wait for it.
type rateLimitedError struct {
	rate, burst float64
	wait        time.Duration
}

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("publish refused: this node's messages are over their rate budget of %g a second (burst %g), which its peers enforce; try again in %v, or raise --origin-rate on every node",
		e.rate, e.burst, e.wait.Round(time.Microsecond))
}

// Unwrap makes the error an api.ErrRateLimited, which the API answers
// with 429.
func (e *rateLimitedError) Unwrap() error { return api.ErrRateLimited }

// takeOwn spends a token of the node's own budget at now for a publish,
// or says why not. Only the loop calls it.
func (n *Node) takeOwn(now int64) error {
	o := &n.own
	if !o.on {
		return nil
	}
	if !o.started {
		o.b.Fill(now, o.burst)
		o.started = true
	}
	if o.b.Take(now, o.rate, o.burst) {
		return nil
	}
	n.m.publishRefused.Inc()
	return &rateLimitedError{rate: o.rate, burst: o.burst, wait: o.b.Wait(now, o.rate, o.burst)}
}
