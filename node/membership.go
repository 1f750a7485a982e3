package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gossipmesh/api"
	"gossipmesh/membership"
	"gossipmesh/wire"
)

// Reasons the membership closes a link.
var (
	errEvicted = errors.New("evicted: silent past the suspicion timeout")
	errSurplus = errors.New("dropped: above the high degree bound")
)

// memberTickMax caps the wait between membership ticks, so that a failed
// dial reported by its goroutine is acted on within it.
const memberTickMax = 250 * time.Millisecond

// members is the runtime half of the membership (package membership has
// the decisions): it feeds the pure core what the links say, carries out
// what it asks for (PINGs, peer exchanges, evictions, drops, dials), and
// counts it. Everything but failed is the loop's.
type members struct {
	core  *membership.Membership
	cfg   membership.Config
	out   membership.Output
	timer *time.Timer

	failedMu sync.Mutex
	failed   []membership.Entry // dials from the passive view that failed, for the loop

	active, passive, suspects, awareness prometheus.Gauge
	events                               *prometheus.CounterVec // by membership event kind
	pxSent, pxReceived, pxRefused        prometheus.Counter
	pings                                prometheus.Counter

	// views is the API's copy of the views, refreshed by the loop after
	// each membership step; refused the refusal backoffs running then, by
	// address (Unix ns), which the booted peers' redial loops read.
	viewsMu sync.Mutex
	views   api.Membership
	refused map[string]int64
}

// newMembers builds the membership of node id at addr, seeded from seed,
// with the candidates it does not dial in its passive view (their ids are
// not known yet). Nil when cfg is nil: membership off.
func newMembers(cfg *membership.Config, id wire.NodeID, addr string, seed uint64, candidates, dials []string, reg *prometheus.Registry) (*members, error) {
	if cfg == nil {
		return nil, nil
	}
	core, err := membership.New(*cfg, id, addr, rand.New(rand.NewPCG(seed^0x6d656d62, seed)))
	if err != nil {
		return nil, err
	}
	for _, c := range candidates {
		if c != addr && !contains(dials, c) {
			core.Seed(membership.Entry{Addr: c})
		}
	}
	const ns, sub = "gossipmesh", "membership"
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	ms := &members{
		core:       core,
		cfg:        *cfg,
		timer:      time.NewTimer(0),
		refused:    map[string]int64{},
		active:     g("active_peers", "Peers in the active view: the links up."),
		passive:    g("passive_peers", "Entries in the passive view: known (id, address) pairs not linked."),
		suspects:   g("suspect_peers", "Active peers suspected: silent past a PING's timeout, not yet evicted."),
		awareness:  g("awareness", "Lifeguard's local health score: every timeout is stretched by 1+awareness while this node's own ticks come late."),
		events:     prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total", Help: "Membership decisions by kind: suspect, refuted, evict, drop, dial, dial_failed, refused, slow."}, []string{"kind"}),
		pxSent:     c("px_frames_sent_total", "Peer-exchange frames sent."),
		pxReceived: c("px_frames_received_total", "Peer-exchange frames received."),
		pxRefused:  c("px_entries_refused_total", "Peer-exchange entries refused: an address outside the allowed networks, or past the exchange size."),
		pings:      c("pings_sent_total", "PING frames sent on links idle for a probe interval."),
	}
	reg.MustRegister(ms.active, ms.passive, ms.suspects, ms.awareness, ms.events, ms.pxSent, ms.pxReceived, ms.pxRefused, ms.pings)
	return ms, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// memberTimer is the loop's membership timer channel; nil (never ready)
// with membership off.
func (n *Node) memberTimer() <-chan time.Time {
	if n.ms == nil {
		return nil
	}
	return n.ms.timer.C
}

// memberTick feeds the membership what the readers heard since the last
// tick and the dials that failed, ticks it and carries out its decisions.
func (n *Node) memberTick() {
	ms := n.ms
	now := time.Now().UnixNano()
	for id, p := range n.links {
		if at := p.heard.Load(); at != 0 {
			ms.core.Heard(at, id, &ms.out)
		}
	}
	ms.failedMu.Lock()
	failed := ms.failed
	ms.failed = nil
	ms.failedMu.Unlock()
	for _, e := range failed {
		ms.core.DialFailed(now, e, &ms.out)
	}
	ms.core.Tick(now, &ms.out)
	n.memberAct()
}

// memberLink tells the membership that the live link to id is now p (nil:
// gone). setLink calls it, so it sees every change of the link table.
func (n *Node) memberLink(id wire.NodeID, p *peer) {
	ms := n.ms
	now := time.Now().UnixNano()
	if p == nil {
		ms.core.Down(now, id, &ms.out)
	} else {
		ms.core.Up(now, membership.Entry{ID: id, Addr: p.addr}, !p.outbound, &ms.out)
	}
	n.memberAct()
}

// memberFrame handles a membership frame from a peer: a PING gets a PONG
// (every frame already counts as heard), even with membership off, so
// that a node running it can mesh with one that does not; a peer exchange
// is merged.
func (n *Node) memberFrame(in *inbound) {
	ms := n.ms
	switch in.mem.kind {
	case wire.FramePing:
		n.sendMember(in.from, wire.AppendHeartbeat(nil, wire.FramePong), wire.FramePong)
	case wire.FramePeerExchange:
		if ms == nil {
			return // membership off: nothing to merge into
		}
		ms.pxReceived.Inc()
		entries := make([]membership.Entry, len(in.mem.px.Entries))
		for i, e := range in.mem.px.Entries {
			entries[i] = membership.Entry{ID: e.ID, Addr: e.Addr}
		}
		_, refused := ms.core.ExchangeFrom(time.Now().UnixNano(), in.from.id, in.mem.px.Need, entries, &ms.out)
		ms.pxRefused.Add(float64(refused))
		n.memberAct()
	}
}

// memberAct carries out what the membership asked for, counts and logs
// it, refreshes the API's views and re-arms the membership timer.
func (n *Node) memberAct() {
	ms := n.ms
	o := &ms.out
	for _, id := range o.Pings {
		if p := n.links[id]; p != nil {
			n.sendMember(p, wire.AppendHeartbeat(nil, wire.FramePing), wire.FramePing)
			ms.pings.Inc()
		}
	}
	for _, x := range o.Exchanges {
		p := n.links[x.To]
		if p == nil {
			continue
		}
		px := wire.PeerExchange{Need: x.Need, Entries: make([]wire.PeerEntry, len(x.Entries))}
		for i, e := range x.Entries {
			px.Entries[i] = wire.PeerEntry{ID: e.ID, Addr: e.Addr}
		}
		b, err := wire.AppendPeerExchange(nil, px)
		if err != nil {
			n.log.Error("peer exchange not sent", "err", err)
			continue
		}
		n.sendMember(p, b, wire.FramePeerExchange)
		ms.pxSent.Inc()
	}
	for _, id := range o.Evict {
		if p := n.links[id]; p != nil {
			p.close(errEvicted)
		}
	}
	for _, id := range o.Drop {
		if p := n.links[id]; p != nil {
			p.close(errSurplus)
		}
	}
	for _, e := range o.Dial {
		n.wg.Add(1)
		go n.dialMember(e)
	}
	for _, e := range o.Events {
		ms.events.WithLabelValues(e.Kind.String()).Inc()
		switch e.Kind {
		case membership.EventSuspect, membership.EventEvict, membership.EventSlow:
			n.log.Warn("membership "+e.Kind.String(), "peer_id", e.Peer.ID.String(), "addr", e.Peer.Addr, "awareness", ms.core.Awareness())
		case membership.EventRefused:
			n.log.Info("membership refused", "peer_id", e.Peer.ID.String(), "addr", e.Peer.Addr, "reason", "the peer is full and closed a link this node did not need; not dialed again for the refusal backoff", "backoff", ms.cfg.RefusalBackoff)
		default:
			n.log.Info("membership "+e.Kind.String(), "peer_id", e.Peer.ID.String(), "addr", e.Peer.Addr)
		}
	}
	o.Reset()
	n.memberViews()
	now := time.Now().UnixNano()
	wait := memberTickMax
	if next := ms.core.NextTick(); next-now < int64(wait) {
		wait = time.Duration(max(next-now, 0))
	}
	ms.timer.Reset(wait)
}

// memberViews refreshes the gauges and the API's copy of the views.
func (n *Node) memberViews() {
	ms := n.ms
	active, passive := ms.core.Active(), ms.core.Passive()
	v := api.Membership{Awareness: ms.core.Awareness(), Active: make([]api.MemberPeer, 0, len(active)), Passive: make([]api.MemberPeer, 0, len(passive))}
	suspects := 0
	for _, p := range active {
		state := "alive"
		if p.Suspect {
			state = "suspect"
			suspects++
		}
		v.Active = append(v.Active, api.MemberPeer{ID: idString(p.ID), Addr: p.Addr, State: state, Inbound: p.Inbound, SilentSeconds: time.Duration(p.Silent).Seconds()})
	}
	for _, p := range passive {
		v.Passive = append(v.Passive, api.MemberPeer{ID: idString(p.ID), Addr: p.Addr})
	}
	for _, p := range ms.core.Dialing() {
		v.Dialing = append(v.Dialing, api.MemberPeer{ID: idString(p.ID), Addr: p.Addr})
	}
	ms.active.Set(float64(len(active)))
	ms.passive.Set(float64(len(passive)))
	ms.suspects.Set(float64(suspects))
	ms.awareness.Set(float64(ms.core.Awareness()))
	ms.viewsMu.Lock()
	ms.views = v
	clear(ms.refused)
	ms.core.Refusals(time.Now().UnixNano(), ms.refused)
	ms.viewsMu.Unlock()
}

// refusedFor is how long the refusal backoff of addr has to run: a node
// there refused a link this node dialed (see
// membership.Config.RefusalBackoff); 0 when none runs or membership is
// off. Safe outside the loop.
func (n *Node) refusedFor(addr string) time.Duration {
	if n.ms == nil {
		return 0
	}
	n.ms.viewsMu.Lock()
	until := n.ms.refused[addr]
	n.ms.viewsMu.Unlock()
	return time.Duration(max(until-time.Now().UnixNano(), 0))
}

func idString(id wire.NodeID) string {
	if id == 0 {
		return ""
	}
	return id.String()
}

// Membership returns the node's membership views, for GET /membership;
// ok is false when membership is off. Safe from any goroutine.
func (n *Node) Membership() (api.Membership, bool) {
	if n.ms == nil {
		return api.Membership{}, false
	}
	n.ms.viewsMu.Lock()
	defer n.ms.viewsMu.Unlock()
	return n.ms.views, true
}

// sendMember queues a membership frame b to p, through the fault plan
// like every frame that leaves the node. Called by the loop.
func (n *Node) sendMember(p *peer, b []byte, kind wire.FrameType) {
	f := &outFrame{b: b, kind: kind}
	now := time.Now().UnixNano()
	if taken, _ := n.faultSend(p, f, now); taken {
		return
	}
	if n.enqueue(p, f, now) == queueFull {
		p.dropped.Add(1)
		n.m.dropped.Inc()
		n.m.droppedFullSend.Inc()
	}
}

// dialMember dials a passive entry once: the membership, not a redial
// loop, decides what to do if it fails or, later, goes down.
func (n *Node) dialMember(e membership.Entry) {
	defer n.wg.Done()
	fail := func() {
		n.ms.failedMu.Lock()
		n.ms.failed = append(n.ms.failed, e)
		n.ms.failedMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.DialTimeout)
	conn, err := n.cfg.Transport.Dial(ctx, e.Addr)
	cancel()
	if err != nil {
		n.log.Debug("passive dial failed", "addr", e.Addr, "err", err)
		fail()
		return
	}
	if _, err := n.serveConn(conn, true, e.ID); err != nil {
		fail()
	}
}

// memberHeard stamps p as heard at now, unless the fault plan cuts it off
// (a cut link is silent, as a real partition is). Called by p's reader.
func (n *Node) memberHeard(p *peer) {
	if n.faults.plan.Load().IsCut(p.id, n.id) {
		return
	}
	p.heard.Store(time.Now().UnixNano())
}

// degreeAtHigh reports whether membership is on and the node holds its
// high bound of links: its booted peers' redial loops then wait. Safe
// outside the loop.
func (n *Node) degreeAtHigh() bool {
	if n.ms == nil {
		return false
	}
	n.linksMu.RLock()
	defer n.linksMu.RUnlock()
	return len(n.links) >= n.ms.cfg.ActiveHigh
}

// memberInbound is a decoded membership frame.
type memberInbound struct {
	kind wire.FrameType
	px   wire.PeerExchange
}

// decodeMember decodes a membership frame of type t.
func decodeMember(t wire.FrameType, payload []byte) (*memberInbound, error) {
	if t == wire.FramePeerExchange {
		px, err := wire.DecodePeerExchange(payload)
		if err != nil {
			return nil, err
		}
		return &memberInbound{kind: t, px: px}, nil
	}
	if err := wire.DecodeHeartbeat(t, payload); err != nil {
		return nil, err
	}
	return &memberInbound{kind: t}, nil
}
