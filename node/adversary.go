package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gossipmesh/adversary"
	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// A node can be made to misbehave (package adversary): Config.Adversary
// at start (`mesh node --adversary`), and PUT /adversary at run time. The
// node always runs its protocol inside adversary.Wrap, honest (no mode)
// unless told, so that a mode can be put in force at any moment; an
// honest wrapper passes every call straight through (measured in the
// README: no cost in `mesh bench`).
//
// The wrapper is the loop's, like the protocol: the API's requests reach
// it through advState.reqs, answered by the loop. The one part of an adversary
// that is not the protocol's is eclipse: a node with eclipse=TARGET keeps
// dialing the target (eclipseLoop), so that many such sybils fill the
// target's inbound slots.

// advSeedMix separates the adversary's random source from the others the
// node derives from its seed.
const advSeedMix = 0xad7e5a41

// advState is the node's adversary: the wrapper around its protocol
// (the loop's) and what the API and eclipseLoop share with the loop.
type advState struct {
	node   *adversary.Node // owned by the loop
	reqs   chan advRequest
	kick   chan struct{} // wakes eclipseLoop when the target changes
	target atomic.Uint64 // the eclipse target, 0 for none
	dials  prometheus.Counter
}

// newAdvState wraps p for modes, with a random source of its own derived
// from the node's seed, and registers the adversary's metrics.
func newAdvState(n *Node, p gossip.Protocol, modes adversary.Modes, seed uint64) *advState {
	a := &advState{
		node: adversary.Wrap(p, modes, rand.New(rand.NewPCG(seed^advSeedMix, seed))),
		reqs: make(chan advRequest),
		kick: make(chan struct{}, 1),
		dials: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gossipmesh", Name: "adversary_eclipse_dials_total",
			Help: "Connections an eclipse adversary opened to its target (each one it lost or was refused is dialed again).",
		}),
	}
	a.target.Store(uint64(eclipseTarget(modes)))
	n.m.reg.MustRegister(a.dials, newAdversaryCollector(n))
	return a
}

// advRequest is one API request for the adversary state, served by the
// loop: a read, or (set true) a change to modes first.
type advRequest struct {
	set   bool
	modes adversary.Modes
	reply chan api.Adversary
}

// adversaryRequest serves r on the loop.
func (n *Node) adversaryRequest(r advRequest) {
	if r.set {
		n.adv.node.SetModes(r.modes)
		n.setEclipseTarget(r.modes)
		// A tick now starts the rate modes' schedules (they start at the
		// first input after a change), so that an idle node spams too;
		// the loop then arms its timer for their next emission.
		n.core.Tick(time.Now().UnixNano(), &n.out)
		n.flushSends()
		if r.modes.String() != "" {
			n.log.Warn("adversary modes in force", "modes", r.modes.String())
		} else {
			n.log.Info("adversary modes cleared: honest again")
		}
	}
	r.reply <- adversaryState(n.adv.node)
}

// adversaryState is what GET /adversary shows of a.
func adversaryState(a *adversary.Node) api.Adversary {
	s := a.Stats()
	return api.Adversary{Mode: a.Modes().String(), Stats: api.AdversaryStats{
		Dropped: s.Dropped, Tampered: s.Tampered, Forged: s.Forged, Replayed: s.Replayed,
		Spammed: s.Spammed, Delayed: s.Delayed, Censored: s.Censored, Lies: s.Lies,
	}}
}

// askAdversary runs r on the loop and waits for its answer.
func (n *Node) askAdversary(ctx context.Context, r advRequest) (api.Adversary, error) {
	r.reply = make(chan api.Adversary, 1)
	select {
	case n.adv.reqs <- r:
	case <-ctx.Done():
		return api.Adversary{}, fmt.Errorf("adversary: %w", ctx.Err())
	case <-n.stop:
		return api.Adversary{}, errStopped
	case <-n.closed:
		return api.Adversary{}, errStopped
	}
	return <-r.reply, nil
}

// Adversary implements api.AdversaryBackend: the modes in force and what
// the node did as an adversary so far.
func (n *Node) Adversary(ctx context.Context) (api.Adversary, error) {
	return n.askAdversary(ctx, advRequest{})
}

// SetAdversary implements api.AdversaryBackend: mode, in the syntax of
// `mesh node --adversary` ("" for honest), is in force from the loop's
// next step on. A mode that does not parse is refused with an error
// wrapping api.ErrBadMode.
func (n *Node) SetAdversary(ctx context.Context, mode string) (api.Adversary, error) {
	ms, err := adversary.Parse(mode)
	if err != nil {
		return api.Adversary{}, fmt.Errorf("%w: %w", api.ErrBadMode, err)
	}
	return n.askAdversary(ctx, advRequest{set: true, modes: ms})
}

var _ api.AdversaryBackend = (*Node)(nil)

// eclipsing reports whether an eclipse mode is in force: its dial loops
// then redial at BackoffMin, whatever the backoff and the degree, so that
// a sybil takes a slot of its target as soon as one is free.
func (n *Node) eclipsing() bool { return n.adv.target.Load() != 0 }

// eclipseTarget returns the target of ms's eclipse mode, 0 for none.
func eclipseTarget(ms adversary.Modes) wire.NodeID {
	for _, m := range ms {
		if m.Kind == adversary.Eclipse {
			return m.Target
		}
	}
	return 0
}

// setEclipseTarget tells eclipseLoop the target of ms, if any.
func (n *Node) setEclipseTarget(ms adversary.Modes) {
	n.adv.target.Store(uint64(eclipseTarget(ms)))
	select {
	case n.adv.kick <- struct{}{}:
	default:
	}
}

// eclipseLoop keeps a link to the eclipse target while a mode names one:
// it finds the target's gossip address among the node's links and its
// membership views, and dials it again BackoffMin after each loss or
// refusal, whatever the node's degree, where an honest node's redial
// backs off to BackoffMax. Run starts it; it idles while no target is set.
func (n *Node) eclipseLoop() {
	defer n.wg.Done()
	var addr string // the target's address, once known
	var addrOf wire.NodeID
	for {
		target := wire.NodeID(n.adv.target.Load())
		if target == 0 {
			select {
			case <-n.adv.kick:
				continue
			case <-n.stop:
				return
			}
		}
		if addrOf != target {
			addr, addrOf = "", target
		}
		if a := n.addrOf(target); a != "" {
			addr = a
		}
		if addr != "" && !n.linkedTo(target) {
			n.dialEclipse(addr)
		}
		select {
		case <-time.After(n.cfg.BackoffMin):
		case <-n.adv.kick:
		case <-n.stop:
			return
		}
	}
}

// dialEclipse dials the target at addr once and holds the link until it
// goes down.
func (n *Node) dialEclipse(addr string) {
	ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.DialTimeout)
	conn, err := n.cfg.Transport.Dial(ctx, addr)
	cancel()
	if err != nil {
		n.log.Debug("eclipse: dial failed", "addr", addr, "err", err)
		return
	}
	n.adv.dials.Inc()
	live, err := n.serveConn(conn, true, 0)
	if err != nil {
		return
	}
	n.follow(live)
}

// addrOf is the gossip address node id announced, from a live link or
// the membership views; "" if the node knows none.
func (n *Node) addrOf(id wire.NodeID) string {
	n.linksMu.RLock()
	p := n.links[id]
	n.linksMu.RUnlock()
	if p != nil && p.addr != "" {
		return p.addr
	}
	if m, ok := n.Membership(); ok {
		s := id.String()
		for _, list := range [][]api.MemberPeer{m.Active, m.Passive, m.Dialing} {
			for _, e := range list {
				if e.ID == s && e.Addr != "" {
					return e.Addr
				}
			}
		}
	}
	return ""
}

// linkedTo reports whether the node holds a live link to id.
func (n *Node) linkedTo(id wire.NodeID) bool {
	n.linksMu.RLock()
	p := n.links[id]
	n.linksMu.RUnlock()
	return p != nil && !p.closed()
}

// adversaryCollector exports the adversary's state on /metrics: whether
// a mode is in force (gossipmesh_adversary, with the modes as a label),
// and what it did, by kind (gossipmesh_adversary_actions_total). It asks
// the loop at each scrape, within statsTimeout.
type adversaryCollector struct {
	n       *Node
	active  *prometheus.Desc
	actions *prometheus.Desc
}

func newAdversaryCollector(n *Node) *adversaryCollector {
	return &adversaryCollector{
		n: n,
		active: prometheus.NewDesc("gossipmesh_adversary",
			"1 while the node runs adversary modes (the mode label, as `mesh node --adversary` spells them), 0 while it is honest.",
			[]string{"mode"}, nil),
		actions: prometheus.NewDesc("gossipmesh_adversary_actions_total",
			"What the node did as an adversary, by kind: frames dropped, tampered, forged, replayed, spammed, delayed, censored, and lies (promises broken).",
			[]string{"kind"}, nil),
	}
}

func (c *adversaryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.actions
}

func (c *adversaryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	a, err := c.n.Adversary(ctx)
	if err != nil {
		return // a busy or stopped loop: left out of this scrape
	}
	v := 0.0
	if !a.Honest() {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, v, a.Mode)
	s := a.Stats
	for _, k := range []struct {
		kind string
		v    uint64
	}{
		{"dropped", s.Dropped}, {"tampered", s.Tampered}, {"forged", s.Forged}, {"replayed", s.Replayed},
		{"spammed", s.Spammed}, {"delayed", s.Delayed}, {"censored", s.Censored}, {"lies", s.Lies},
	} {
		ch <- prometheus.MustNewConstMetric(c.actions, prometheus.CounterValue, float64(k.v), k.kind)
	}
}
