package node

import (
	"context"
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
func (n *Node) loop(ctx context.Context) {
	tick := time.NewTimer(time.Hour)
	tick.Stop()
	var armed int64 // when tick fires; 0 when stopped
	for {
		select {
		case <-ctx.Done():
			tick.Stop()
			return
		case in := <-n.inbox:
			n.receiveBatch(in)
		case r := <-n.pubs:
			n.publish(r)
		case r := <-n.regs:
			r.reply <- n.addLink(r.p)
		case p := <-n.downs:
			n.removeLink(p)
		case <-tick.C:
			armed = 0
			n.core.Tick(time.Now().UnixNano())
		}
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
		start := len(n.out.Events)
		n.core.Receive(now, in.from.id, &in.msg, &n.out)
		n.handleEvents(n.out.Events[start:], now)
	}
	n.receipts.mu.Unlock()
	n.flushSends()
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

// publish runs a publish request: one message per body, in order.
func (n *Node) publish(r *pubRequest) {
	n.logInfo = n.log.Enabled(context.Background(), slog.LevelInfo)
	n.receipts.mu.Lock()
	for _, body := range r.bodies {
		now := time.Now().UnixNano()
		start := len(n.out.Events)
		m, err := n.core.Publish(now, body, &n.out)
		if err != nil {
			r.err = err
			break
		}
		r.ids = append(r.ids, m.ID)
		r.at = append(r.at, now)
		n.handleEvents(n.out.Events[start:], now)
	}
	n.receipts.mu.Unlock()
	n.flushSends()
	close(r.done)
	n.emitLogs()
}

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
				n.logs = append(n.logs, pendingLog{kind: EventPublished, id: m.ID, size: len(m.Body)})
			}
			n.event(EventPublished, m, 0, now)
		case gossip.EventDelivered:
			n.receipts.addLocked(receipt{id: m.ID, origin: m.Origin, from: e.From, hop: m.Hop, publishedAt: m.PublishedAt, receivedAt: now, size: len(m.Body), body: m.Body})
			n.learnNearest(m.Origin, m.Hop, n.waited)
			latency := time.Duration(max(now-m.PublishedAt, 0))
			n.m.delivered.Inc()
			n.m.hops.Observe(float64(m.Hop))
			n.m.latency.Observe(latency.Seconds())
			if n.logInfo {
				n.logs = append(n.logs, pendingLog{kind: EventDelivered, id: m.ID, hop: m.Hop, from: e.From, latency: latency})
			}
			n.event(EventDelivered, m, e.From, now)
		case gossip.EventDuplicate:
			n.receipts.duplicateLocked(m.ID)
			n.m.duplicates.Inc()
			n.event(EventDuplicate, m, e.From, now)
		case gossip.EventRejected:
			if !e.PeerFault {
				// Forged or broken content that the sender may only have
				// relayed: drop the message, keep the link.
				n.m.refused.WithLabelValues(reasonOf(e.Err)).Inc()
				continue
			}
			// The sender itself broke the protocol: drop the link, as for
			// any other garbage. The reader logs why and counts it.
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

// flushSends hands the batch's sends to the peers' queues. The core shares
// one Message between the sends of one forward, and they are adjacent, so
// each message is encoded once and its bytes shared by every queue.
func (n *Node) flushSends() {
	var (
		last  *wire.Message
		frame []byte
	)
	for _, s := range n.out.Sends {
		p := n.links[s.To]
		if p == nil {
			continue // the link went down after the core routed to it
		}
		if s.Msg != last {
			last = s.Msg
			frame = wire.AppendMessage(make([]byte, 0, 6+s.Msg.EncodedSize()), s.Msg)
		}
		select {
		case p.sendq <- frame:
			n.m.forwarded.Inc()
		default:
			p.dropped.Add(1)
			n.m.dropped.Inc()
		}
	}
	n.out.Reset()
}

// addLink decides whether p becomes the live link to its node. When two
// links join the same pair of nodes (both dialed at once, or a reconnect
// that beat the old link's teardown), both ends keep the same one: the link
// dialed by the lower node id; between two links with the same dialer, the
// newer one, since the older must be stale.
func (n *Node) addLink(p *peer) *peer {
	old := n.links[p.id]
	if old != nil && !old.closed() {
		keepNew := p.dialer == old.dialer || p.dialer == min(n.id, p.id)
		if !keepNew {
			p.close(errReplaced)
			n.log.Debug("duplicate link closed", "peer_id", p.id.String(), "peer", p.conn.RemoteAddr().String())
			return old
		}
		old.next.Store(p)
		old.close(errReplaced)
		n.log.Debug("link replaced", "peer_id", p.id.String(), "peer", p.conn.RemoteAddr().String())
	}
	n.linksMu.Lock()
	n.links[p.id] = p
	n.linksMu.Unlock()
	n.core.AddPeer(p.id)
	n.m.peers.Set(float64(len(n.links)))
	n.log.Info("peer up", "peer_id", p.id.String(), "addr", p.addr, "outbound", p.outbound)
	return p
}

// removeLink forgets p if it is still the live link to its node.
func (n *Node) removeLink(p *peer) {
	if n.links[p.id] != p {
		return
	}
	n.linksMu.Lock()
	delete(n.links, p.id)
	n.linksMu.Unlock()
	n.core.RemovePeer(p.id)
	n.m.peers.Set(float64(len(n.links)))
}

// pendingLog is a receipt log line waiting for the batch's sends to go
// out: a log write (a syscall, or worse, a full pipe) must not delay the
// next hop.
type pendingLog struct {
	kind    string
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
		if l.kind == EventPublished {
			n.log.LogAttrs(ctx, slog.LevelInfo, "published", slog.String("id", l.id.String()), slog.Int("size", l.size))
			continue
		}
		n.log.LogAttrs(ctx, slog.LevelInfo, "delivered",
			slog.String("id", l.id.String()), slog.Int("hop", int(l.hop)),
			slog.String("from", l.from.String()), slog.Duration("latency", l.latency))
	}
	clear(n.logs)
	n.logs = n.logs[:0]
}
