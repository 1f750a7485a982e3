package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// loop is the only goroutine that touches the core and writes the link
// table. It never blocks on a peer: it reads its queues, feeds the core,
// and hands sends to the peers' queues without waiting.
//
// Own publishes are the exception that waits: while a publish request is
// held back by full send queues (see sendQueuesHigh), the loop takes no
// new one, and goes on with the held one as the writers drain, or after
// MaxQueueDelay without the laggards (passOverLaggards). Frames from peers
// keep flowing meanwhile.
func (n *Node) loop(ctx context.Context) {
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	var armed int64 // when tick fires; 0 when stopped
	for {
		pubs, drained, gone, passOver := n.pubs, (chan struct{})(nil), (<-chan struct{})(nil), (<-chan time.Time)(nil)
		if r := n.mem.pending; r != nil {
			pubs, drained, gone, passOver = nil, n.mem.drained, r.ctx.Done(), n.mem.pauseTimer.C
		}
		select {
		case <-ctx.Done():
			tick.Stop()
			n.abortPublish()
			return
		case in := <-n.inbox:
			n.receiveBatch(in)
		case r := <-pubs:
			n.publish(r)
		case <-drained:
			n.continuePublish()
		case <-passOver:
			n.passOverLaggards()
			n.continuePublish()
		case <-gone:
			n.endPublish(n.mem.pending.ctx.Err())
		case r := <-n.regs:
			r.reply <- n.addLink(r.p)
		case p := <-n.downs:
			n.removeLink(p)
		case <-n.own.signal:
			n.chargeOverBudget()
		case <-n.faults.timer.C:
			n.releaseHeld()
		case <-n.memberTimer():
			n.memberTick()
		case reply := <-n.m.statsReq:
			reply <- n.protoStats()
		case reply := <-n.scoreReq:
			reply <- n.scoreSnapshot(time.Now().UnixNano())
		case r := <-n.adv.reqs:
			n.adversaryRequest(r)
		case <-tick.C:
			armed = 0
			n.core.Tick(time.Now().UnixNano(), &n.out)
			n.flushSends()
		}
		n.refreshScores()
		// Wake for the core's next timed work; only ever move the timer
		// earlier, so a busy loop does not reset it on every batch.
		if next := n.core.NextTick(); next != 0 && (armed == 0 || next < armed) {
			armed = next
			tick.Reset(time.Duration(next - time.Now().UnixNano()))
		}
	}
}

// receiveBatch feeds the core first and then every frame already queued
// behind it (up to maxBatch), lowest hop first, then writes the sends of
// the whole batch.
//
// The node's first receipt of a message is the lowest-hop copy among those
// that had arrived when the loop took them. Copies of one message often
// arrive on several links at once, and the reader goroutines queue them in
// whatever order the scheduler ran them; taken in that order, a relayed
// copy would often beat the direct one, and hop counts would measure the
// scheduler. So the loop first yields once, letting readers that are
// already runnable queue what they hold; if a message's first copy still
// came relayed, it lets late copies in (see latecopies.go); then it takes
// the batch's copies in hop order (stable, so one link's frames keep their
// order).
func (n *Node) receiveBatch(first inbound) {
	n.batch = append(n.batch[:0], first)
	runtime.Gosched()
	n.drainInbox()
	slices.SortStableFunc(n.batch, byHop)
	n.waited = n.relayedFirstCopy()
	if n.waited {
		n.letLateCopiesIn()
		n.drainInbox()
		slices.SortStableFunc(n.batch, byHop)
	}
	n.logInfo = n.log.Enabled(context.Background(), slog.LevelInfo)
	n.receipts.mu.Lock()
	for i := range n.batch {
		in := &n.batch[i]
		now := time.Now().UnixNano()
		n.chargeOverBudgetNow(now) // a spammer's ban stops its frames in this batch
		if n.staleInbound(in, now) || n.faultReceive(in.from.id) || n.rateLimited(in, now) {
			continue
		}
		if in.mem != nil {
			n.memberFrame(in)
			continue
		}
		start, sends := len(n.out.Events), len(n.out.Sends)
		n.core.Step(now, in.from.id, in.frame(), &n.out)
		if in.ctl == nil && len(n.out.Sends) > sends {
			n.tally.noteCauses(n.out.Sends, sends, in.msg.ID)
		}
		n.handleEvents(n.out.Events[start:], now)
	}
	n.receipts.mu.Unlock()
	n.flushSends()
	n.releaseInbound(n.batch)
	n.emitLogs()
	clear(n.batch) // drop the references to bodies and peers
}

// drainInbox appends to the batch what is queued, up to maxBatch.
func (n *Node) drainInbox() {
	for len(n.batch) < maxBatch {
		select {
		case in := <-n.inbox:
			n.batch = append(n.batch, in)
		default:
			return
		}
	}
}

// byHop orders inbound frames by hop count, for receiveBatch. A named
// function, so sorting allocates no closure.
func byHop(a, b inbound) int { return int(a.msg.Hop) - int(b.msg.Hop) }

// publish starts a publish request: one message per body, in order.
func (n *Node) publish(r *pubRequest) {
	n.mem.pending, n.mem.pendingNext = r, 0
	n.continuePublish()
}

// continuePublish publishes the held request's bodies while the send
// queues are below their high-water mark, each body's copies queued before
// the next is published. It finishes the request, or holds it (with
// pubPaused set) until a writer signals that its queue drained or the
// pause has lasted MaxQueueDelay.
func (n *Node) continuePublish() {
	r := n.mem.pending
	if r == nil {
		return
	}
	n.logInfo = n.log.Enabled(context.Background(), slog.LevelInfo)
	defer n.emitLogs()
	for n.mem.pendingNext < len(r.bodies) && r.err == nil {
		now := time.Now().UnixNano()
		if n.sendQueuesHigh(now) {
			// Set the flag first and look again, so that a writer that
			// drained in between is not missed.
			if !n.mem.pubPaused.Load() {
				n.mem.pubPaused.Store(true)
				n.mem.pauseTimer.Reset(n.cfg.MaxQueueDelay)
				n.m.publishPauses.Inc()
			}
			if n.sendQueuesHigh(now) {
				return
			}
		}
		if n.mem.pubPaused.Load() {
			n.mem.pubPaused.Store(false)
			n.mem.pauseTimer.Stop()
		}
		if err := n.takeOwn(now); err != nil {
			r.err = err
			break
		}
		body := r.bodies[n.mem.pendingNext]
		n.mem.pendingNext++
		n.receipts.mu.Lock()
		start := len(n.out.Events)
		m, err := n.core.Publish(now, body, &n.out)
		if err != nil {
			r.err = err
		} else {
			r.ids = append(r.ids, m.ID)
			r.at = append(r.at, now)
			n.handleEvents(n.out.Events[start:], now)
		}
		n.receipts.mu.Unlock()
		n.flushSends()
	}
	n.endPublish(nil)
}

// endPublish finishes the held publish request, with err if it did not
// get through all its bodies: the node stopped, or the client gave up
// while the request waited for the queues to drain.
func (n *Node) endPublish(err error) {
	r := n.mem.pending
	if r == nil {
		return
	}
	if r.err == nil {
		r.err = err
	}
	n.mem.pubPaused.Store(false)
	n.mem.pauseTimer.Stop()
	n.mem.pending = nil
	close(r.done)
}

// abortPublish ends a held publish request when the node stops.
func (n *Node) abortPublish() { n.endPublish(errStopped) }

// handleEvents turns the core's events into receipts, metrics, log lines
// and subscriber events. The caller holds receipts.mu.
func (n *Node) handleEvents(events []gossip.Event, now int64) {
	for i := range events {
		e := &events[i]
		m := e.Msg
		switch e.Kind {
		case gossip.EventPublished:
			n.receipts.addLocked(receipt{id: m.ID, origin: m.Origin, publishedAt: m.PublishedAt, receivedAt: now, size: len(m.Body), body: m.Body})
			n.m.published.Inc()
			if n.logInfo {
				n.logs = append(n.logs, pendingLog{kind: gossip.EventPublished, id: m.ID, size: len(m.Body)})
			}
			n.event(gossip.EventPublished, m, 0, now)
		case gossip.EventDelivered:
			n.receipts.addLocked(receipt{id: m.ID, origin: m.Origin, from: e.From, hop: m.Hop, publishedAt: m.PublishedAt, receivedAt: now, size: len(m.Body), body: m.Body})
			n.learnNearest(m.Origin, m.Hop, n.waited)
			latency := time.Duration(max(now-m.PublishedAt, 0))
			n.m.delivered.Inc()
			n.m.hops.Observe(float64(m.Hop))
			n.m.latency.Observe(latency.Seconds())
			if n.logInfo {
				n.logs = append(n.logs, pendingLog{kind: gossip.EventDelivered, id: m.ID, hop: m.Hop, from: e.From, latency: latency})
			}
			n.event(gossip.EventDelivered, m, e.From, now)
		case gossip.EventDuplicate:
			n.receipts.duplicateLocked(m.ID)
			n.m.duplicates.Inc()
			n.event(gossip.EventDuplicate, m, e.From, now)
		case gossip.EventRejected:
			if !e.PeerFault {
				// Forged or broken content that the sender may only have
				// relayed: drop the message, keep the link.
				n.m.refused.WithLabelValues(reasonOf(e.Err)).Inc()
				continue
			}
			if !errors.Is(e.Err, gossip.ErrBadHop) {
				// Content the sender should have checked before it
				// forwarded (a bad signature, a wrong id, a validator's
				// reject): counted against it by reason, the link kept;
				// what it costs the sender is the peer score's to say.
				n.m.rejected.WithLabelValues(reasonOf(e.Err)).Inc()
				continue
			}
			// The sender itself broke the framing rules: drop the link, as
			// for any other garbage. The reader logs why and counts it.
			if p := n.links[e.From]; p != nil {
				p.close(e.Err)
			}
		case gossip.EventRefused:
			// Too old, too far ahead, or older than what the seen-cache
			// still covers: dropped so that it is never delivered twice.
			n.m.refused.WithLabelValues(reasonOf(e.Err)).Inc()
		}
	}
}

// flushSends hands the batch's sends to the peers' queues: the one place
// the node's output leaves it, through Config.Egress and the fault plan
// (faults.go). The core shares one Message (or Control) between the sends
// of one forward, and they are adjacent, so each frame is encoded once and
// its bytes shared by every queue. A copy that does not fit a queue is
// dropped and counted; the loop never waits. Every frame queued is counted,
// in the metrics by kind and in the receipt of the message it is for
// (frameTally).
func (n *Node) flushSends() {
	var (
		lastMsg          *wire.Message
		lastCtl          *wire.Control
		msgFrame, ctlFrm *outFrame
		now              int64
	)
	for i := range n.out.Sends {
		s := &n.out.Sends[i]
		p := n.links[s.To]
		if p == nil {
			continue // the link went down after the core routed to it
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if !n.cfg.Egress.Pass(now, n.id, s) {
			continue
		}
		var frame *outFrame
		if s.Ctl != nil {
			if s.Ctl != lastCtl {
				b, err := wire.AppendControl(make([]byte, 0, 6+s.Ctl.EncodedSize()), s.Ctl)
				if err != nil {
					// A protocol bug, not the peer's: say so and send
					// nothing rather than a frame the peer would refuse.
					n.log.Error("control frame not sent", "kind", s.Ctl.Kind.String(), "err", err)
					continue
				}
				lastCtl, ctlFrm = s.Ctl, &outFrame{b: b, kind: s.Ctl.Kind}
			}
			frame = ctlFrm
		} else {
			if s.Msg != lastMsg {
				lastMsg = s.Msg
				msgFrame = &outFrame{b: wire.AppendMessage(make([]byte, 0, 6+s.Msg.EncodedSize()), s.Msg), kind: wire.FrameMessage}
			}
			frame = msgFrame
		}
		if taken, held := n.faultSend(p, frame, now); taken {
			// Dropped or held by the fault plan (faults.go). A held frame
			// has left the core for good: its message's receipt counts it
			// now, the metrics when releaseHeld queues it.
			if held {
				n.tally.count(i, s, n.m)
			}
			continue
		}
		switch n.enqueue(p, frame, now) {
		case enqueued:
			n.m.countQueued(frame)
			n.tally.count(i, s, n.m)
		case queueFull:
			p.dropped.Add(1)
			n.m.dropped.Inc()
			n.m.droppedFullSend.Inc()
		}
	}
	n.tally.apply(n.receipts)
	if len(n.out.Disconnects) > 0 {
		n.applyDisconnects(n.out.Disconnects)
	}
	n.out.Reset()
}

// addLink decides what becomes of p, a handshaken link, and returns the
// link that is live for p's node afterwards: p itself, or the link that
// stays.
//
// Until identities are authenticated, a node id in a hello is only a claim,
// so a new link never evicts a live one with the same id. The one exception
// is the tie-break of a simultaneous dial, which both ends must agree on:
// the lower id's dial wins, so a link this node dialed (to an address from
// its own candidates) replaces a live inbound link when this node has the
// lower id. Every other duplicate is refused at once when the live link is
// the one that wins the tie-break, or else held in standby: not read, not
// written, not in the peer table, promoted only if the live link goes down
// within the handshake timeout (see awaitPromotion). A standby is the other
// end of a simultaneous dial (the higher id holds the lower's dial until
// the lower closes the higher's), or a restarted peer that reconnected
// before the old link's teardown was seen.
//
// Inbound links, live and standby, count against the peer cap and the
// per-IP cap; the node's own dials are always allowed (see Config.MaxPeers).
func (n *Node) addLink(p *peer) *peer {
	old := n.links[p.id]
	if n.refuseBanned(p) {
		return old
	}
	if old != nil && old.closed() {
		// Its teardown is on its way: p takes its place.
		n.setLink(old.id, nil)
		n.countInbound(old, -1)
		n.core.PeerDown(time.Now().UnixNano(), old.id, &n.out)
		old = nil
	}
	if old != nil {
		switch {
		case p.outbound && !old.outbound && n.id < p.id:
			// Our dial wins the tie-break; the peer closes its own dial
			// when it sees ours.
			old.next.Store(p)
			n.handOver(old, p)
			old.close(errReplaced)
			n.countInbound(old, -1)
			n.m.dupLinks.WithLabelValues("replaced").Inc()
			n.log.Debug("link replaced by our own dial (lower id wins)", "peer_id", p.id.String(), "peer", p.conn.RemoteAddr().String())
		case p.outbound, old.outbound && n.id < p.id:
			// The live link wins: ours because this node has the lower
			// id, or the peer's because it has.
			n.m.dupLinks.WithLabelValues("refused").Inc()
			n.log.Info("duplicate link refused", "peer_id", p.id.String(), "peer", p.conn.RemoteAddr().String(), "outbound", p.outbound, "reason", "the live link wins the tie-break")
			p.close(errDuplicate)
			return old
		default:
			if s := n.standby[p.id]; s != nil {
				return n.refuseLink(p, old, fmt.Errorf("%w; one more is already in standby", errDuplicate))
			}
			if err := n.capErr(p); err != nil {
				return n.refuseLink(p, old, err)
			}
			p.promote = make(chan struct{})
			n.linksMu.Lock()
			n.standby[p.id] = p
			n.linksMu.Unlock()
			n.countInbound(p, +1)
			n.m.dupLinks.WithLabelValues("standby").Inc()
			n.m.standby.Set(float64(len(n.standby)))
			n.log.Debug("duplicate link held in standby", "peer_id", p.id.String(), "peer", p.conn.RemoteAddr().String())
			return old
		}
	} else if err := n.capErr(p); err != nil {
		return n.refuseLink(p, nil, err)
	}
	n.setLink(p.id, p)
	n.countInbound(p, +1)
	now := time.Now().UnixNano()
	gossip.LinkUp(n.core, now, p.id, p.outbound, &n.out)
	if n.guard != nil {
		n.guard.SetAddr(now, p.id, colocationHost(p), &n.out)
	}
	n.flushSends()
	n.m.peers.Set(float64(len(n.links)))
	n.log.Info("peer up", "peer_id", p.id.String(), "addr", p.addr, "outbound", p.outbound)
	return p
}

// handOver moves the frames still queued to old, a link that is going
// down, to next, the link to the same node that takes its place: the
// lower id's dial replacing the higher's, or a standby promoted when the
// live link went down. Without it, whatever the node had just queued to
// the old link (a publish a moment before a simultaneous dial settled)
// would be lost without a trace, and flood never repairs. Each frame keeps
// the time it was first queued, so the stale check still counts from
// then. A frame the old link's writer has already taken is not moved: it
// reaches the peer only if the old connection delivers it before it
// closes. Called by the loop.
func (n *Node) handOver(old, next *peer) {
	rest := old.q.close()
	for _, qf := range rest {
		// next's copy is added before old's is released, so the frame's
		// bytes never leave the node's count in between.
		switch n.enqueue(next, qf.f, qf.at) {
		case enqueued:
			n.m.handedOver.Inc()
		case queueFull:
			next.dropped.Add(1)
			n.m.dropped.Inc()
			n.m.droppedFullSend.Inc()
		}
		n.releaseFrame(old, qf)
	}
}

// refuseLink closes p for err, counts and logs it, and returns live.
func (n *Node) refuseLink(p, live *peer, err error) *peer {
	p.close(err)
	n.m.rejected.WithLabelValues(reasonOf(err)).Inc()
	n.log.Warn("refusing link", "peer", p.conn.RemoteAddr().String(), "peer_id", p.id.String(), "outbound", p.outbound, "err", err)
	return live
}

// removeLink forgets p, a link that went down, wherever it is: in standby,
// or live, in which case a standby to the same node takes its place.
func (n *Node) removeLink(p *peer) {
	n.forgetLimit(p)
	if n.standby[p.id] == p {
		n.linksMu.Lock()
		delete(n.standby, p.id)
		n.linksMu.Unlock()
		n.countInbound(p, -1)
		n.m.standby.Set(float64(len(n.standby)))
		return
	}
	if n.links[p.id] != p {
		return
	}
	n.setLink(p.id, nil)
	n.countInbound(p, -1)
	n.core.PeerDown(time.Now().UnixNano(), p.id, &n.out)
	if s := n.standby[p.id]; s != nil {
		// The standby was counted when it was held and stays counted.
		n.linksMu.Lock()
		delete(n.standby, p.id)
		n.linksMu.Unlock()
		n.m.standby.Set(float64(len(n.standby)))
		if s.closed() {
			n.countInbound(s, -1)
		} else {
			n.handOver(p, s)
			n.setLink(s.id, s)
			gossip.LinkUp(n.core, time.Now().UnixNano(), s.id, s.outbound, &n.out)
			close(s.promote)
			n.m.dupLinks.WithLabelValues("promoted").Inc()
			n.log.Info("peer up", "peer_id", s.id.String(), "addr", s.addr, "outbound", s.outbound, "from_standby", true)
		}
	}
	n.flushSends()
	n.m.peers.Set(float64(len(n.links)))
}

// setLink makes p the live link to id (nil: none).
func (n *Node) setLink(id wire.NodeID, p *peer) {
	n.linksMu.Lock()
	if p == nil {
		delete(n.links, id)
	} else {
		n.links[id] = p
	}
	n.linksMu.Unlock()
	if n.ms != nil {
		n.memberLink(id, p)
	}
}

// pendingLog is a receipt log line waiting for the batch's sends to go
// out: a log write (a syscall, or worse, a full pipe) must not delay the
// next hop.
type pendingLog struct {
	kind    gossip.EventKind
	id      wire.MsgID
	hop     uint16
	from    wire.NodeID
	latency time.Duration
	size    int
}

// emitLogs writes the batch's receipt lines: exactly one per first receipt
// ("delivered") and one per own publish ("published").
func (n *Node) emitLogs() {
	ctx := context.Background()
	for _, l := range n.logs {
		if l.kind == gossip.EventPublished {
			n.log.LogAttrs(ctx, slog.LevelInfo, gossip.NamePublished, slog.String("id", l.id.String()), slog.Int("size", l.size))
			continue
		}
		n.log.LogAttrs(ctx, slog.LevelInfo, gossip.NameDelivered,
			slog.String("id", l.id.String()), slog.Int("hop", int(l.hop)),
			slog.String("from", l.from.String()), slog.Duration("latency", l.latency))
	}
	clear(n.logs)
	n.logs = n.logs[:0]
}
