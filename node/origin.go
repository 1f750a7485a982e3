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
	// peerBurst is the burst the peers allow (Gossip.OriginBurstSize).
	peerBurst float64
	// directBurst is the burst of the arrival check of each link's own
	// messages (overBudgetAtArrival): the burst a peer holds its own
	// publishes to (burst, half of peerBurst) and a quarter of peerBurst
	// more, 1,500 messages at the default rate.
	directBurst float64
	// signal wakes the loop when a reader dropped frames over budget
	// (overBudgetAtArrival), so that it charges the peer at once.
	signal chan struct{}
}

func newOwnBudget(cfg gossip.Config) ownBudget {
	if cfg.OriginRate <= 0 || cfg.Signing != gossip.SigningStrict {
		return ownBudget{}
	}
	peer := cfg.OriginBurstSize()
	own := max(peer/2, 1)
	return ownBudget{on: true, rate: cfg.OriginRate, burst: own,
		peerBurst: peer, directBurst: own + peer/4, signal: make(chan struct{}, 1)}
}

// directSlack is how far ahead of its arrival a link's own message may
// claim to have been published and still move the arrival check's clock
// there (directClock): room for the clocks of two hosts that roughly
// agree, far less than the core's MaxFuture (10 s), so that a spammer
// who stamps its messages ahead gains at most this much of its rate, once.
const directSlack = 250 * time.Millisecond

// directClock is the time at which the arrival check charges a message
// that its origin sent directly: the origin's own publish time, which the
// signature covers, clamped to at most directSlack past the arrival, and
// never earlier than the last message charged (last). An honest peer
// holds its publishes to its own budget by that clock (takeOwn), so
// however long its messages waited, in its send queue, the network, or
// this node's reader while the link's inbox share was full (inboxshare.go),
// and however many then arrive together, they never count over budget. A
// spammer gains nothing from lying: a publish time in the past does not
// move the clock, so the bucket does not refill; one ahead moves it at
// most directSlack ahead of real time.
func directClock(last, publishedAt, arrival int64) int64 {
	return max(last, min(publishedAt, arrival+int64(directSlack)))
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
	at := in.at
	if p.directStarted {
		at = directClock(p.direct.At, in.msg.PublishedAt, in.at)
	} else {
		at = min(in.msg.PublishedAt, at)
		p.direct.Fill(at, o.directBurst)
		p.directStarted = true
	}
	if p.direct.Take(at, o.rate, o.directBurst) {
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
	n.charge(time.Now().UnixNano())
	n.flushSends()
}

// chargeOverBudgetNow charges the links at once if a reader has dropped
// frames over budget since the last charge, without waiting for the loop
// to come back to its select: the loop calls it before each frame of a
// batch, so that a spammer whose in-budget frames fill the batch is
// banned, and the rest of its frames dropped unverified (the guard drops
// a banned peer's frames), within one frame of its reader's count rather
// than after the whole batch and a turn of the select. The ban and the
// disconnect go out with the batch's sends. Only the loop calls it.
func (n *Node) chargeOverBudgetNow(now int64) {
	if len(n.own.signal) == 0 {
		return
	}
	<-n.own.signal
	n.charge(now)
}

// charge puts the penalties for every link's frames dropped over budget
// into n.out.
func (n *Node) charge(now int64) {
	for _, p := range n.links {
		if k := p.overBudget.Swap(0); k > 0 && n.guard != nil {
			n.guard.PenalizeOverBudget(now, p.id, int(k), &n.out)
		}
	}
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
