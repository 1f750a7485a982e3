package node

import (
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// metrics are one node's Prometheus series, on the node's own registry:
// several nodes in one test process must not share (or fight over) the
// global default registry.
type metrics struct {
	reg           *prometheus.Registry
	published     prometheus.Counter
	delivered     prometheus.Counter
	duplicates    prometheus.Counter
	dropped       prometheus.Counter
	rejected      *prometheus.CounterVec
	refused       *prometheus.CounterVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	peers         prometheus.Gauge
	hops          prometheus.Histogram
	latency       prometheus.Histogram
	eventsDropped prometheus.Counter
	dupLinks      *prometheus.CounterVec
	standby       prometheus.Gauge
	handedOver    prometheus.Counter
	logSuppressed prometheus.Counter
	// Scoring (bans.go, ratelimit.go).
	bans        *prometheus.CounterVec
	rateLimited prometheus.Counter

	// Budgets: what each queue sheds, and how often the node pushed back.
	droppedFullSend   prometheus.Counter
	droppedStaleSend  prometheus.Counter
	droppedStaleInbox prometheus.Counter
	publishPauses     prometheus.Counter
	publishRefused    prometheus.Counter
	inboxShareWaits   prometheus.Counter
	publishPassedOver prometheus.Counter

	// Frames by kind, counted where they leave the node (queued to a
	// peer) and where they arrive (decoded by a reader). payloadSent is
	// an atomic read by two series: messages_forwarded_total (its older
	// name) and payload_frames_sent_total.
	payloadSent         atomic.Uint64
	payloadReceived     prometheus.Counter
	controlSent         [controlKinds]prometheus.Counter
	controlReceived     [controlKinds]prometheus.Counter
	controlUnattributed prometheus.Counter

	// statsReq carries scrapes' requests for the protocol's own counters
	// (message store, Plumtree links) to the loop, which owns the protocol.
	statsReq chan chan protoStats
}

// controlKinds sizes the per-kind arrays: indexed by wire.FrameType, whose
// control kinds are FrameIHave..FramePull.
const controlKinds = int(wire.FramePull) + 1

// protoStats are the protocol's counters the metrics show, read by the
// loop for a scrape.
type protoStats struct {
	store    gossip.StoreStats
	hasStore bool
	plum     gossip.PlumtreeStats
	hasPlum  bool
	ae       gossip.AntiEntropyStats
	guard    score.Stats
	hasGuard bool
	scores   []float64 // the linked peers' scores
}

// protoStats reads the counters of the node's protocol. Only the loop may
// call it.
func (n *Node) protoStats() protoStats {
	var st protoStats
	if n.guard != nil {
		st.guard, st.hasGuard = n.guard.Stats(), true
		for _, ps := range n.guard.Scores(time.Now().UnixNano()) {
			st.scores = append(st.scores, ps.Score)
		}
	}
	if c, ok := n.proto.(*gossip.Core); ok {
		st.store, st.hasStore = c.StoreStats()
		st.plum, st.hasPlum = gossip.PlumtreeStatsOf(c)
		st.ae, _ = gossip.AntiEntropyStatsOf(c)
	}
	return st
}

// statsTimeout bounds how long a scrape waits for the loop to read the
// protocol's counters; a loop that is this busy, or stopped, gets its
// protocol series left out of that scrape.
const statsTimeout = time.Second

func newMetrics(id wire.NodeID) *metrics {
	const ns = "gossipmesh"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	}
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		statsReq:   make(chan chan protoStats),
		published:  counter("messages_published_total", "Messages this node published."),
		delivered:  counter("messages_delivered_total", "Messages whose first copy reached this node (own publishes excluded)."),
		duplicates: counter("messages_duplicate_total", "Later copies of messages this node had already seen."),
		dropped:    counter("messages_dropped_total", "Message frames not sent to a peer: its send queue was over a byte or frame limit, or the frame waited longer than the max queue delay."),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "rejected_total",
			Help: "Frames, messages and connections refused, by reason. A refused frame also drops its connection, except rate_limited (a frame over its link's rate limits, dropped and counted against the peer's score), banned (a link of a banned peer), and a message whose content the sender should have checked (invalid_signature, unsigned, signed, id_mismatch, validator_reject): dropped and counted, the link kept, for the peer score to judge.",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "refused_total",
			Help: "Messages dropped with the link kept and the sender not blamed, by reason: copies outside their acceptance window (replay: older than the window by the signed publish time; future), older than what the seen-cache still covers (under_load), ignored by a validator (validator_ignore), over their origin's rate budget (origin_rate), or content a forwarder cannot be blamed for.",
		}, []string{"reason"}),
		bytesIn:  counter("received_bytes_total", "Gossip frame bytes read from peers."),
		bytesOut: counter("sent_bytes_total", "Gossip frame bytes written to peers."),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "peers", Help: "Current gossip links.",
		}),
		hops: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "delivery_hops",
			Help:    "Hop count of the first copy of each delivered message (1 = straight from the publisher).",
			Buckets: prometheus.LinearBuckets(1, 1, 16),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "delivery_latency_seconds",
			Help:    "Time from publish (publisher's clock) to first receipt (this node's clock).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50 µs .. 1.6 s
		}),
		eventsDropped: counter("events_dropped_total", "Events not delivered to a slow subscriber."),
		dupLinks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "duplicate_links_total",
			Help: "Links whose node id already had a live link, by outcome: replaced (our dial won the tie-break), refused, standby (held), promoted (a standby took over a link that went down).",
		}, []string{"outcome"}),
		standby: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "standby_links", Help: "Duplicate links held in standby, neither read nor written.",
		}),
		handedOver:    counter("frames_handed_over_total", "Frames still queued to a link that went down and moved to the link to the same node that took its place (a simultaneous dial settling, a standby promoted) rather than lost."),
		logSuppressed: counter("log_lines_suppressed_total", "Log lines left out by the per-message rate limit."),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "bans_total",
			Help: "Peers banned for a score below the disconnect threshold, by the term that took the most off it: invalid_messages, behaviour, delivery_deficit, colocation or score.",
		}, []string{"reason"}),
	}
	m.rateLimited = m.rejected.WithLabelValues("rate_limited")
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "dropped_total",
		Help: "Message frames dropped by a queue: queue=send (one per peer copy) or inbox; reason=full (over its byte or frame limit) or stale (waited longer than the max queue delay).",
	}, []string{"queue", "reason"})
	m.droppedFullSend = dropped.WithLabelValues("send", "full")
	m.droppedStaleSend = dropped.WithLabelValues("send", "stale")
	m.droppedStaleInbox = dropped.WithLabelValues("inbox", "stale")
	m.publishPauses = counter("publish_pauses_total", "Times the node held its own publishes back until its send queues drained.")
	m.publishRefused = counter("publish_refused_total", "Own publishes refused (POST /messages answered 429) or held back (POST /load waits) because they were over the node's own per-origin rate budget, which its peers enforce.")
	m.publishPassedOver = counter("publish_passed_over_total", "Peers whose send queue held the node's own publishes back for the whole max queue delay; they lose copies until they catch up.")
	m.inboxShareWaits = counter("inbox_share_waits_total", "Times a link's frames waited (in its backlog, while its reader read on) because the link already held its fair share of the inbox (a sixteenth of it, 256 frames by default, not yet handled by the loop), so that one flooding peer cannot make the frames of the others wait behind its own.")
	m.reg.MustRegister(dropped, m.publishPauses, m.publishPassedOver, m.publishRefused, m.inboxShareWaits)
	m.registerFrames()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "node_info", Help: "Always 1; labels describe the node.",
		ConstLabels: prometheus.Labels{"id": id.String()},
	})
	info.Set(1)
	m.reg.MustRegister(m.published, m.delivered, m.duplicates, m.dropped, m.rejected, m.refused,
		m.bytesIn, m.bytesOut, m.peers, m.hops, m.latency, m.eventsDropped, m.dupLinks, m.standby, m.handedOver, m.logSuppressed, m.bans, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerMemory adds the gauges of n's byte budgets, read when scraped.
func (m *metrics) registerMemory(n *Node) {
	const ns = "gossipmesh"
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, f)
	}
	mem := n.mem
	m.reg.MustRegister(
		gauge("memory_budget_bytes", "The node's memory budget; the byte limits below are shares of it.",
			func() float64 { return float64(mem.b.total) }),
		gauge("inbox_bytes", "Frames read from peers and not yet handled, in bytes (limit gossipmesh_inbox_limit_bytes).",
			func() float64 { return float64(mem.inbox.totals.inUse.Load()) }),
		gauge("inbox_max_bytes", "The most inbox_bytes has been since the node started.",
			func() float64 { return float64(mem.inbox.totals.peak.Load()) }),
		gauge("inbox_limit_bytes", "The inbox's byte budget.",
			func() float64 { return float64(mem.b.inbox) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "inbox_waits_total",
			Help: "Frames whose reader had to wait for inbox budget before reading them (TCP pushed back on the sender)."},
			func() float64 { return float64(mem.inbox.totals.waits.Load()) }),
		gauge("send_queue_bytes", "Frames queued to peers, in bytes, each frame once however many peers it goes to.",
			func() float64 { return float64(mem.sendBytes.Load()) }),
		gauge("send_queue_max_bytes", "The most send_queue_bytes has been since the node started.",
			func() float64 { return float64(mem.sendPeak.Load()) }),
		gauge("send_queue_limit_bytes", "The byte budget of all send queues together.",
			func() float64 { return float64(mem.b.sendq) }),
		gauge("receipt_body_bytes", "Message bodies kept by the receipt store, in bytes.",
			func() float64 { return float64(n.receipts.bodyBytes()) }),
		newProtoCollector(n),
	)
}

// reasonOf turns why a connection or message was refused into a short,
// bounded label value.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errHandshakeTimeout):
		return "handshake_timeout"
	case errors.Is(err, errBanned):
		return "banned"
	case errors.Is(err, errEvicted):
		return "evicted"
	case errors.Is(err, errSurplus):
		return "surplus"
	case errors.Is(err, errStalled) || errors.Is(err, os.ErrDeadlineExceeded):
		return "stalled"
	case errors.Is(err, errPeerCap):
		return "peer_cap"
	case errors.Is(err, errIPCap):
		return "ip_cap"
	case errors.Is(err, errDuplicate):
		return "duplicate_id"
	case errors.Is(err, errBadHello):
		return "bad_hello"
	case errors.Is(err, errBadProof):
		return "bad_proof"
	case errors.Is(err, errPeerIDMismatch):
		return "peer_id_mismatch"
	case errors.Is(err, errProtocol):
		return "protocol"
	case errors.Is(err, wire.ErrNoCommonProtocol):
		return "no_common_protocol"
	case errors.Is(err, wire.ErrFrameTooLarge):
		return "frame_too_large"
	case errors.Is(err, wire.ErrFrameTooShort):
		return "frame_too_short"
	case errors.Is(err, wire.ErrUnknownVersion):
		return "unknown_version"
	case errors.Is(err, wire.ErrUnknownType):
		return "unknown_type"
	case errors.Is(err, wire.ErrTruncated):
		return "truncated"
	case errors.Is(err, wire.ErrMalformed):
		return "malformed"
	case errors.Is(err, gossip.ErrBadHop):
		return "bad_hop"
	case errors.Is(err, gossip.ErrIDMismatch):
		return "id_mismatch"
	case errors.Is(err, gossip.ErrFromSelf):
		return "forged_origin"
	case errors.Is(err, gossip.ErrBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, gossip.ErrBadSignature):
		return "invalid_signature"
	case errors.Is(err, gossip.ErrUnsigned):
		return "unsigned"
	case errors.Is(err, gossip.ErrSigned):
		return "signed"
	case errors.Is(err, gossip.ErrRejected):
		return "validator_reject"
	case errors.Is(err, gossip.ErrIgnored):
		return "validator_ignore"
	case errors.Is(err, gossip.ErrExpired):
		// Past its acceptance window by its signed publish time: a
		// replay, or a copy held back that long.
		return "replay"
	case errors.Is(err, gossip.ErrFuture):
		return "future"
	case errors.Is(err, gossip.ErrUnderLoad):
		return "under_load"
	case errors.Is(err, gossip.ErrOriginBudget):
		return "origin_rate"
	}
	return "other"
}

// benign reports whether a connection ended the ordinary way: the peer hung
// up, or this node closed it (shutdown, duplicate link). Those are not the
// peer's fault and are not counted as rejections.
func benign(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errReplaced) || errors.Is(err, errShutdown) || errors.Is(err, errSurplus)
}

// countQueued counts f, queued to a peer, as a payload frame or a control
// frame of its kind.
func (m *metrics) countQueued(f *outFrame) {
	if f.kind == wire.FrameMessage {
		m.payloadSent.Add(1)
	} else if int(f.kind) < controlKinds {
		m.controlSent[f.kind].Inc()
	}
}

// registerFrames adds the frame counters: payload and control frames sent
// and received, control frames by kind.
func (m *metrics) registerFrames() {
	const ns = "gossipmesh"
	payloadSent := func() float64 { return float64(m.payloadSent.Load()) }
	m.payloadReceived = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "payload_frames_received_total",
		Help: "Message frames read from peers: first copies and duplicates alike."})
	m.controlUnattributed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "control_frames_unattributed_total",
		Help: "Control frames queued to peers that count toward no message's receipt: they name none and no copy caused them (anti-entropy PULL digests)."})
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "control_frames_sent_total",
		Help: "Control frames queued to peers, by kind (ihave, iwant, graft, prune, pull)."}, []string{"kind"})
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "control_frames_received_total",
		Help: "Control frames read from peers, by kind (ihave, iwant, graft, prune, pull)."}, []string{"kind"})
	for k := wire.FrameIHave; k <= wire.FramePull; k++ {
		m.controlSent[k] = sent.WithLabelValues(k.String())
		m.controlReceived[k] = received.WithLabelValues(k.String())
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "messages_forwarded_total",
			Help: "Message frames queued to peers (one per peer per message); the same count as payload_frames_sent_total, under its older name."}, payloadSent),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "payload_frames_sent_total",
			Help: "Message frames queued to peers: forwards and answers to repair requests (GRAFT, IWANT, anti-entropy pulls)."}, payloadSent),
		m.payloadReceived, m.controlUnattributed, sent, received)
}

// protoCollector exports the protocol's own counters (the message store,
// Plumtree's links) at scrape time, read by the loop, which owns the
// protocol: the scrape never touches it from another goroutine.
type protoCollector struct {
	n                         *Node
	storeMessages, storeBytes *prometheus.Desc
	storeStored, storeEvicted *prometheus.Desc
	storeServed, storeMisses  *prometheus.Desc
	plumLinks, plumMissing    *prometheus.Desc
	aePulls, aeRepairs        *prometheus.Desc
	aePartial, aeTruncated    *prometheus.Desc
	aeUnrepairable            *prometheus.Desc
	peerScore, scoreDropped   *prometheus.Desc
	brokenPromises, demotions *prometheus.Desc
}

func newProtoCollector(n *Node) *protoCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gossipmesh_"+name, help, labels, nil)
	}
	return &protoCollector{
		n:              n,
		storeMessages:  d("store_messages", "Messages held by the message store that serves repairs (GRAFT, IWANT, anti-entropy pulls)."),
		storeBytes:     d("store_bytes", "Body bytes held by the message store."),
		storeStored:    d("store_stored_total", "Messages ever put in the message store."),
		storeEvicted:   d("store_evicted_total", "Messages dropped from the message store for its count, byte or age bound: past it they can no longer be repaired from this node."),
		storeServed:    d("store_served_total", "Repair requests answered from the message store."),
		storeMisses:    d("store_misses_total", "Repair requests for a message the store no longer (or never) held: not repaired from this node."),
		plumLinks:      d("plumtree_links", "Plumtree links by kind: eager links carry messages, lazy ones carry IHAVE.", "kind"),
		plumMissing:    d("plumtree_missing", "Messages announced by IHAVE that this node still waits for (a GRAFT timer runs for each)."),
		aePulls:        d("antientropy_pulls_total", "Anti-entropy PULL frames by kind: sent (this node's timer asked a peer), digest (a digest sent back when asked), answered (a peer's PULL answered).", "kind"),
		aeRepairs:      d("antientropy_repairs_total", "Messages repaired by anti-entropy: sent (in answer to a digest that lacked them) or received (first delivered from a peer whose digest exchange this node had just joined, lacking it).", "direction"),
		aePartial:      d("antientropy_partial_digests_total", "Digests sent partial: the store held more origins or ranges than one frame takes."),
		aeTruncated:    d("antientropy_truncated_total", "Answers cut short at their message or byte bound; the rest waits for a later exchange."),
		aeUnrepairable: d("antientropy_unrepairable_total", "Stored messages a peer lacked that were past the acceptance window: no longer repairable."),
		peerScore:      d("peer_score", "The linked peers' scores, summarized: stat=min, median, max; count is how many peers are scored.", "stat"),
		scoreDropped:   d("score_dropped_frames_total", "Frames the scoring dropped, by reason: graylisted (from a peer below the graylist threshold), gossip (IHAVE, IWANT or PULL to or from a peer below the gossip threshold), banned (to or from a banned peer, already on their way).", "reason"),
		brokenPromises: d("score_broken_promises_total", "IWANT or GRAFT requests whose message no peer delivered within the promise timeout: each counts against the peer asked."),
		demotions:      d("score_demotions_total", "Peers moved out of the eager set (sent a PRUNE) for a score below 0 (kind=demoted), and grafted again once it was back at 0 or above (kind=restored).", "kind"),
	}
}

// Describe implements prometheus.Collector.
func (c *protoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.storeMessages, c.storeBytes, c.storeStored, c.storeEvicted, c.storeServed, c.storeMisses, c.plumLinks, c.plumMissing,
		c.aePulls, c.aeRepairs, c.aePartial, c.aeTruncated, c.aeUnrepairable, c.peerScore, c.scoreDropped, c.brokenPromises, c.demotions} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it asks the loop for the
// counters and leaves them out when the protocol keeps none (flood without
// a store) or the loop does not answer within statsTimeout.
func (c *protoCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	reply := make(chan protoStats, 1)
	t := time.NewTimer(statsTimeout)
	defer t.Stop()
	select {
	case n.m.statsReq <- reply:
	case <-n.stop:
		return
	case <-t.C:
		return
	}
	var st protoStats
	select {
	case st = <-reply:
	case <-n.stop:
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if st.hasStore {
		gauge(c.storeMessages, float64(st.store.Messages))
		gauge(c.storeBytes, float64(st.store.Bytes))
		counter(c.storeStored, st.store.Stored)
		counter(c.storeEvicted, st.store.Evicted)
		counter(c.storeServed, st.store.Served)
		counter(c.storeMisses, st.store.Misses)
		counter(c.aePulls, st.ae.PullsSent, "sent")
		counter(c.aePulls, st.ae.DigestsSent, "digest")
		counter(c.aePulls, st.ae.PullsAnswered, "answered")
		counter(c.aeRepairs, st.ae.RepairsSent, "sent")
		counter(c.aeRepairs, st.ae.RepairsReceived, "received")
		counter(c.aePartial, st.ae.PartialDigests)
		counter(c.aeTruncated, st.ae.Truncated)
		counter(c.aeUnrepairable, st.ae.Unrepairable)
	}
	if st.hasGuard {
		if k := len(st.scores); k > 0 {
			slices.Sort(st.scores)
			gauge(c.peerScore, st.scores[0], "min")
			gauge(c.peerScore, st.scores[k/2], "median")
			gauge(c.peerScore, st.scores[k-1], "max")
		}
		gauge(c.peerScore, float64(len(st.scores)), "count")
		counter(c.scoreDropped, st.guard.Graylisted, "graylisted")
		counter(c.scoreDropped, st.guard.GossipDropped, "gossip")
		counter(c.scoreDropped, st.guard.BannedDropped, "banned")
		counter(c.brokenPromises, st.guard.BrokenPromises)
		counter(c.demotions, st.guard.Demotions, "demoted")
		counter(c.demotions, st.guard.Restorations, "restored")
	}
	if st.hasPlum {
		gauge(c.plumLinks, float64(st.plum.Eager), "eager")
		gauge(c.plumLinks, float64(st.plum.Lazy), "lazy")
		gauge(c.plumMissing, float64(st.plum.Missing))
	}
}
