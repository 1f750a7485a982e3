package node

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gossipmesh/api"
	"gossipmesh/fault"
	"gossipmesh/wire"
)

// faults applies the node's fault plan (Config.Faults, replaced at run
// time by SetFaults) where the node's output leaves it, in flushSends, and
// to what arrives from a cut peer:
//
//   - drop: the frame is not sent, and counted in
//     gossipmesh_fault_dropped_total{reason="loss"};
//   - delay: the frame is held on the node loop (a timer heap) and queued
//     to its link when the delay is over. Frames held for one link leave
//     in the order they were sent, as TCP would deliver them, so jitter
//     spreads the delays without reordering a link. A held frame counts
//     toward the node's send-queue budget and its peer's (SendQueueBytes,
//     PeerSendQueueBytes, SendQueue) from the moment it is held: one that
//     does not fit is dropped as a full send queue's would be. A frame
//     still held when its link goes down, or when its peer is cut
//     meanwhile, is dropped;
//   - cut: nothing is sent to a cut peer, and frames from it are dropped
//     as they reach the loop (reason="cut"). The connection itself stays
//     up: a real partition leaves TCP connections open but silent, and
//     silence is what failure detection must learn to see.
//
// The plan is read by the loop and replaced by the HTTP goroutine through
// an atomic pointer, so a change is whole and takes effect at the next
// frame. The random source is the node's own, seeded from Config.Seed, so
// that a memnet run repeats.
type faults struct {
	plan atomic.Pointer[fault.Plan]

	// Owned by the loop.
	rng   *rand.Rand
	held  heldFrames
	links map[*peer]*heldLink
	seq   uint64
	timer *time.Timer
	armed int64 // when timer fires; 0 when stopped

	// heldNow is len(held), for readers outside the loop (tests).
	heldNow atomic.Int64

	dropped *prometheus.CounterVec
}

// heldLink is what the fault layer holds for one link.
type heldLink struct {
	bytes, count int64
	last         int64 // release time of its latest held frame
}

// heldFrame is a delayed frame waiting on the timer heap.
type heldFrame struct {
	at  int64 // when it leaves, Unix ns
	seq uint64
	p   *peer
	f   *outFrame
}

// heldFrames is a min-heap on (at, seq).
type heldFrames []heldFrame

func (h heldFrames) Len() int { return len(h) }
func (h heldFrames) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].seq < h[j].seq)
}
func (h heldFrames) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldFrames) Push(x any)   { *h = append(*h, x.(heldFrame)) }
func (h *heldFrames) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = heldFrame{}
	*h = old[:len(old)-1]
	return x
}

func newFaults(plan fault.Plan, seed uint64, reg *prometheus.Registry) *faults {
	t := time.NewTimer(time.Hour)
	t.Stop()
	fs := &faults{
		rng:   rand.New(rand.NewPCG(seed^0xfa017, seed)),
		links: make(map[*peer]*heldLink),
		timer: t,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gossipmesh", Name: "fault_dropped_total",
			Help: "Frames the fault plan dropped: reason loss (the drop probability) or cut (a cut peer, sent or received).",
		}, []string{"reason"}),
	}
	fs.plan.Store(plan.Clone())
	reg.MustRegister(fs.dropped)
	return fs
}

// Faults returns the fault plan in force on this node.
func (n *Node) Faults() fault.Plan { return *n.faults.plan.Load().Clone() }

// SetFaults replaces the node's fault plan; the zero Plan clears it. It
// is safe to call from any goroutine, and the loop applies the new plan
// from its next frame on; frames already held keep their delay. A plan
// that names this node in its cut list, or that has links or paused nodes
// (which a node cannot act on), is refused with an error naming the field.
func (n *Node) SetFaults(p fault.Plan) error {
	if err := p.ValidateFor(n.id); err != nil {
		return fmt.Errorf("fault plan: %w", err)
	}
	n.faults.plan.Store(p.Clone())
	return nil
}

// faultSend applies the plan to frame f that the node is about to queue
// to p at now, in flushSends. taken is true when the fault layer took
// the frame, dropped or (held true) held for releaseHeld to queue later;
// false sends it on at once. Called by the loop.
func (n *Node) faultSend(p *peer, f *outFrame, now int64) (taken, held bool) {
	fs := n.faults
	plan := fs.plan.Load()
	if plan.IsZero() && (len(fs.links) == 0 || fs.links[p] == nil) {
		return false, false // frames still held for p keep p's order after a clear
	}
	if plan.IsCut(n.id, p.id) {
		fs.dropped.WithLabelValues("cut").Inc()
		return true, false
	}
	drop, delay := plan.Decide(now, n.id, p.id, fs.rng)
	if drop {
		fs.dropped.WithLabelValues("loss").Inc()
		return true, false
	}
	hl := fs.links[p]
	if delay == 0 && hl == nil {
		return false, false
	}
	// Held, even for a zero delay when frames are already held for p:
	// a link keeps its order.
	if !n.holdFrame(p, hl, f, now+delay.Nanoseconds()) {
		p.dropped.Add(1)
		n.m.dropped.Inc()
		n.m.droppedFullSend.Inc()
		return true, false
	}
	return true, true
}

// holdFrame puts f on the timer heap until at (or the release time of the
// link's latest held frame, if later), within the send-queue budgets. It
// reports false when f does not fit.
func (n *Node) holdFrame(p *peer, hl *heldLink, f *outFrame, at int64) bool {
	fs := n.faults
	size := int64(len(f.b))
	var bytes, count int64
	if hl != nil {
		bytes, count = hl.bytes, hl.count
	}
	if p.q.bytes.Load()+bytes+size > n.mem.b.peerSendq || p.q.count.Load()+count >= int64(n.cfg.SendQueue) {
		return false
	}
	if f.refs.Add(1) == 1 {
		if n.mem.sendBytes.Add(size) > n.mem.b.sendq {
			n.mem.sendBytes.Add(-size)
			f.refs.Add(-1)
			return false
		}
	}
	if hl == nil {
		hl = &heldLink{}
		fs.links[p] = hl
	}
	at = max(at, hl.last)
	hl.bytes, hl.count, hl.last = hl.bytes+size, hl.count+1, at
	fs.seq++
	heap.Push(&fs.held, heldFrame{at: at, seq: fs.seq, p: p, f: f})
	fs.heldNow.Store(int64(len(fs.held)))
	if fs.armed == 0 || at < fs.armed {
		fs.armed = at
		fs.timer.Reset(time.Duration(at - time.Now().UnixNano()))
	}
	return true
}

// releaseHeld queues every held frame whose time has come to its link:
// the loop calls it when the fault timer fires.
func (n *Node) releaseHeld() {
	fs := n.faults
	fs.armed = 0
	now := time.Now().UnixNano()
	plan := fs.plan.Load()
	for len(fs.held) > 0 && fs.held[0].at <= now {
		h := heap.Pop(&fs.held).(heldFrame)
		fs.heldNow.Store(int64(len(fs.held)))
		size := int64(len(h.f.b))
		hl := fs.links[h.p]
		hl.bytes, hl.count = hl.bytes-size, hl.count-1
		if hl.count == 0 {
			delete(fs.links, h.p)
		}
		switch {
		case n.links[h.p.id] != h.p:
			// The link went down while the frame was held.
		case plan.IsCut(n.id, h.p.id):
			fs.dropped.WithLabelValues("cut").Inc()
		default:
			switch n.enqueue(h.p, h.f, now) {
			case enqueued:
				n.m.countQueued(h.f)
			case queueFull:
				h.p.dropped.Add(1)
				n.m.dropped.Inc()
				n.m.droppedFullSend.Inc()
			}
		}
		// The hold's own reference: the queue took one of its own.
		if h.f.refs.Add(-1) == 0 {
			n.mem.sendBytes.Add(-size)
		}
	}
	if len(fs.held) > 0 {
		fs.armed = fs.held[0].at
		fs.timer.Reset(time.Duration(fs.armed - now))
	}
}

// faultReceive reports whether a frame that arrived from peer from must be
// dropped because the plan cuts it off, and counts it. Called by the loop.
func (n *Node) faultReceive(from wire.NodeID) bool {
	if !n.faults.plan.Load().IsCut(from, n.id) {
		return false
	}
	n.faults.dropped.WithLabelValues("cut").Inc()
	return true
}

var _ api.FaultBackend = (*Node)(nil)
