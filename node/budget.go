package node

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// budgets are the byte budgets of one node, resolved from its Config:
// explicit shares as given, zero shares derived from MemoryBudget.
type budgets struct {
	total     int64
	inbox     int64
	sendq     int64 // all peers together
	peerSendq int64 // one peer
	receipts  int64
}

// budgets resolves the byte budgets from the Config; see the Config fields
// for the arithmetic.
func (c Config) budgets() budgets {
	b := budgets{
		total:     c.MemoryBudget,
		inbox:     c.InboxBytes,
		sendq:     c.SendQueueBytes,
		peerSendq: c.PeerSendQueueBytes,
		receipts:  c.ReceiptBytes,
	}
	derive := func(v *int64, div int64) {
		if *v == 0 {
			*v = c.MemoryBudget / div
		}
	}
	derive(&b.inbox, 8)
	derive(&b.sendq, 4)
	derive(&b.peerSendq, 16)
	derive(&b.receipts, 4)
	return b
}

// validateBudget checks the memory budget and its shares.
func (c Config) validateBudget() error {
	if c.MemoryBudget <= 0 {
		return fmt.Errorf("node: memory budget must be positive, got %d", c.MemoryBudget)
	}
	if c.InboxBytes < 0 || c.SendQueueBytes < 0 || c.PeerSendQueueBytes < 0 || c.ReceiptBytes < 0 {
		return errors.New("node: inbox, send queue and receipt bytes must not be negative (0 derives them from the memory budget)")
	}
	if c.MaxQueueDelay <= 0 {
		return fmt.Errorf("node: max queue delay must be positive, got %v", c.MaxQueueDelay)
	}
	b := c.budgets()
	frame := int64(c.MaxFrame())
	switch {
	case frame > smallFrameSize && (b.inbox-b.inbox/4 < frame || b.inbox/4 < smallFrameSize):
		return fmt.Errorf("node: inbox bytes %d cannot hold one %d-byte frame (max body + header) in its 3/4 for large frames; raise the memory budget (%d) or lower the max body", b.inbox, frame, c.MemoryBudget)
	case b.inbox < frame:
		return fmt.Errorf("node: inbox bytes %d cannot hold one %d-byte frame (max body + header); raise the memory budget (%d) or lower the max body", b.inbox, frame, c.MemoryBudget)
	case b.peerSendq < 2*frame:
		return fmt.Errorf("node: peer send queue bytes %d cannot hold two %d-byte frames (max body + header); raise the memory budget (%d) or lower the max body", b.peerSendq, frame, c.MemoryBudget)
	case b.sendq < b.peerSendq:
		return fmt.Errorf("node: send queue bytes %d are less than one peer's %d", b.sendq, b.peerSendq)
	case b.inbox+b.sendq+b.receipts > c.MemoryBudget/4*3:
		return fmt.Errorf("node: inbox (%d), send queue (%d) and receipt (%d) bytes add up to more than 3/4 of the memory budget %d, which leaves too little for connections, caches and the runtime",
			b.inbox, b.sendq, b.receipts, c.MemoryBudget)
	}
	return nil
}

// SetProcessMemoryLimit sets the Go runtime's soft memory limit to 7/8 of
// budget bytes, unless the GOMEMLIMIT environment variable already chose
// one, and reports whether it did. The budgets bound what the node keeps;
// the soft limit makes the collector return the garbage in time, which
// would otherwise be allowed to grow as large as the live heap (GOGC=100).
// The collector works towards the limit rather than under it, and the
// process holds some memory the Go runtime does not count (its binary,
// thread stacks), hence the eighth held back. The limit is process-wide:
// call it from a process that runs one node, never from a test that runs
// many.
func SetProcessMemoryLimit(budget int64) bool {
	if budget <= 0 {
		return false
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return false
	}
	debug.SetMemoryLimit(budget / 8 * 7)
	return true
}

// smallFrameSize is the largest frame, length prefix included, that takes
// its inbound budget from the pool for small frames. It matches the size
// up to which wire.Reader reuses one buffer per connection.
const smallFrameSize = 64 << 10

// inboundBudget is the inbox's byte budget, shared by every connection
// reader: a reader acquires a frame's size before it reads the payload and
// the node loop releases it once it has handled the message.
//
// It is two pools: a quarter of the budget for small frames (up to 64 KiB),
// the rest for larger ones, so that large frames that never finish cannot
// make the small frames of every other peer, most of the traffic, wait
// behind them. With a frame limit of 64 KiB or less there is only the
// small pool. Within each pool, connections that have not yet delivered a
// single message (newcomers) share at most half of it: a crowd of
// connections that say hello and start frames they never finish cannot
// take the budget that the node's working links need.
type inboundBudget struct {
	small, large *byteBudget // large is nil when every frame is small
	totals       budgetTotals
}

// budgetTotals are the figures of both pools together, for metrics and
// tests, readable without a lock.
type budgetTotals struct {
	inUse, peak atomic.Int64
	waits       atomic.Uint64 // acquisitions that had to wait
}

func newInboundBudget(limit int64, maxFrame int) *inboundBudget {
	ib := &inboundBudget{}
	if maxFrame <= smallFrameSize {
		ib.small = newByteBudget(limit, int64(maxFrame), &ib.totals)
		return ib
	}
	ib.small = newByteBudget(limit/4, smallFrameSize, &ib.totals)
	ib.large = newByteBudget(limit-limit/4, int64(maxFrame), &ib.totals)
	return ib
}

func (ib *inboundBudget) pool(size int64) *byteBudget {
	if size <= smallFrameSize || ib.large == nil {
		return ib.small
	}
	return ib.large
}

// acquire takes size bytes from the frame's pool; see byteBudget.acquire.
func (ib *inboundBudget) acquire(size int64, newcomer bool, cancel1, cancel2 <-chan struct{}) (bool, error) {
	return ib.pool(size).acquire(size, newcomer, cancel1, cancel2)
}

// release returns a frame's size to its pool.
func (ib *inboundBudget) release(size int64, newcomer bool) {
	ib.pool(size).release(size, newcomer)
}

// byteBudget is a semaphore counted in bytes, with a share that newcomers
// may not exceed. Waiters are served first come, first served (a large
// frame is not starved by a stream of smaller ones), except that a newcomer
// held back by the newcomers' share lets the others go past.
type byteBudget struct {
	mu            sync.Mutex
	limit         int64
	newcomerLimit int64
	used          int64
	usedNewcomers int64
	waiters       []*budgetWaiter
	totals        *budgetTotals
}

type budgetWaiter struct {
	n        int64
	newcomer bool
	ready    chan struct{}
	granted  bool // under mu
}

// newByteBudget returns a budget of limit bytes whose newcomers share half,
// but never less than one frame of maxFrame bytes.
func newByteBudget(limit, maxFrame int64, totals *budgetTotals) *byteBudget {
	return &byteBudget{limit: limit, newcomerLimit: min(limit, max(limit/2, maxFrame)), totals: totals}
}

func (b *byteBudget) fitsLocked(n int64, newcomer bool) bool {
	return b.used+n <= b.limit && (!newcomer || b.usedNewcomers+n <= b.newcomerLimit)
}

// acquire takes n bytes, waiting until they are free or either cancel
// channel closes (then it returns errBudgetCancelled and holds nothing).
// waited reports whether it had to wait. n must not exceed the limit.
func (b *byteBudget) acquire(n int64, newcomer bool, cancel1, cancel2 <-chan struct{}) (waited bool, err error) {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.fitsLocked(n, newcomer) {
		b.takeLocked(n, newcomer)
		b.mu.Unlock()
		return false, nil
	}
	w := &budgetWaiter{n: n, newcomer: newcomer, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.grantLocked() // it may go past newcomers held back by their share
	if w.granted {
		b.mu.Unlock()
		return false, nil
	}
	b.mu.Unlock()
	b.totals.waits.Add(1)
	select {
	case <-w.ready:
		return true, nil
	case <-cancel1:
	case <-cancel2:
	}
	b.mu.Lock()
	if w.granted {
		b.giveBackLocked(n, newcomer)
	} else {
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	// Whoever queued behind this waiter may fit now.
	b.grantLocked()
	b.mu.Unlock()
	return true, errBudgetCancelled
}

// release returns n bytes and wakes the waiters that now fit.
func (b *byteBudget) release(n int64, newcomer bool) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.giveBackLocked(n, newcomer)
	b.grantLocked()
	b.mu.Unlock()
}

func (b *byteBudget) giveBackLocked(n int64, newcomer bool) {
	b.used -= n
	if newcomer {
		b.usedNewcomers -= n
	}
	b.totals.inUse.Add(-n)
}

func (b *byteBudget) takeLocked(n int64, newcomer bool) {
	b.used += n
	if newcomer {
		b.usedNewcomers += n
	}
	t := b.totals.inUse.Add(n)
	for {
		p := b.totals.peak.Load()
		if t <= p || b.totals.peak.CompareAndSwap(p, t) {
			return
		}
	}
}

// grantLocked wakes the waiters that fit, in order; it stops at the first
// that does not fit the pool, and goes past newcomers that only the
// newcomers' share holds back.
func (b *byteBudget) grantLocked() {
	for i := 0; i < len(b.waiters); {
		w := b.waiters[i]
		if b.used+w.n > b.limit {
			return
		}
		if !b.fitsLocked(w.n, w.newcomer) {
			i++
			continue
		}
		b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
		b.takeLocked(w.n, w.newcomer)
		w.granted = true
		close(w.ready)
	}
}

// errBudgetCancelled is what a reader gets when its connection or the node
// closes while it waits for inbound budget.
var errBudgetCancelled = errors.New("closed while waiting for inbound memory budget")

// memState is the node's accounting of its byte budgets.
type memState struct {
	b     budgets
	inbox *inboundBudget // frames read and not yet handled by the loop
	// sendBytes counts the frames queued to peers, each frame once however
	// many queues hold it (outFrame.refs). Only the loop adds to it, so
	// the loop keeps sendPeak without a race.
	sendBytes, sendPeak atomic.Int64

	// Publish backpressure. pubPaused is set while the loop holds a
	// publish request back because a send queue is above its high-water
	// mark; writers then signal drained as they empty their queues, and
	// pauseTimer ends a pause that lasts MaxQueueDelay (passOverLaggards).
	pubPaused  atomic.Bool
	drained    chan struct{} // capacity 1
	pauseTimer *time.Timer
	// totalPassedOver: the queues together stayed above their mark for a
	// whole pause; own publishes go on until they fall below it. Owned by
	// the loop, like peer.passedOver.
	totalPassedOver bool

	// Owned by the loop: the publish request being worked through, and
	// the index of its next body.
	pending     *pubRequest
	pendingNext int
}

func newMemState(cfg Config) *memState {
	b := cfg.budgets()
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &memState{b: b, inbox: newInboundBudget(b.inbox, cfg.MaxFrame()), drained: make(chan struct{}, 1), pauseTimer: t}
}

// enqueueResult says what became of one copy handed to a send queue.
type enqueueResult int

const (
	enqueued   enqueueResult = iota
	queueFull                // over the peer's or the node's limit: dropped
	linkClosed               // the peer's writer has quit; not a drop
)

// enqueue queues frame f to p, within p's byte and frame limits and the
// node's total. Called by the loop only.
func (n *Node) enqueue(p *peer, f *outFrame, now int64) enqueueResult {
	size := int64(len(f.b))
	q := p.q
	if q.bytes.Load()+size > n.mem.b.peerSendq || q.count.Load() >= int64(n.cfg.SendQueue) {
		return queueFull
	}
	first := f.refs.Add(1) == 1
	if first {
		// No queue holds f, so no writer can release it meanwhile.
		t := n.mem.sendBytes.Add(size)
		if t > n.mem.b.sendq {
			n.mem.sendBytes.Add(-size)
			f.refs.Add(-1)
			return queueFull
		}
		if t > n.mem.sendPeak.Load() {
			n.mem.sendPeak.Store(t)
		}
	}
	if !q.push(f, now) {
		if f.refs.Add(-1) == 0 {
			n.mem.sendBytes.Add(-size)
		}
		return linkClosed
	}
	return enqueued
}

// releaseFrame takes one queued copy off p's and the node's counts, once it
// is written, dropped as stale or abandoned with the link.
func (n *Node) releaseFrame(p *peer, qf queuedFrame) {
	size := int64(len(qf.f.b))
	p.q.bytes.Add(-size)
	p.q.count.Add(-1)
	if qf.f.refs.Add(-1) == 0 {
		n.mem.sendBytes.Add(-size)
	}
	if n.mem.pubPaused.Load() {
		select {
		case n.mem.drained <- struct{}{}:
		default:
		}
	}
}

// sendQueuesHigh reports whether own publishes must wait: whether a send
// queue is above its high-water mark (half of its byte or frame limit, or
// an oldest frame that has waited half of MaxQueueDelay), or all queues
// together above half the node's total. Below the mark one more publish
// fits everywhere (each limit holds two maximal frames, Validate checks)
// and does not wait long enough to go stale, so the node drops none of its
// own messages. Queues passed over (see passOverLaggards) do not count
// until they are below the mark again. Called by the loop.
func (n *Node) sendQueuesHigh(now int64) bool {
	total := n.mem.sendBytes.Load() > n.mem.b.sendq/2
	if n.mem.totalPassedOver {
		n.mem.totalPassedOver = total
	} else if total {
		return true
	}
	for _, p := range n.links {
		high := n.queueHigh(p, now)
		if p.passedOver {
			p.passedOver = high
			continue
		}
		if high {
			return true
		}
	}
	return false
}

// queueHigh reports whether p's queue is above its high-water mark.
func (n *Node) queueHigh(p *peer, now int64) bool {
	q := p.q
	if q.bytes.Load() > n.mem.b.peerSendq/2 || q.count.Load() > int64(n.cfg.SendQueue/2) {
		return true
	}
	h := q.headAt.Load()
	return h != 0 && now-h > n.cfg.MaxQueueDelay.Nanoseconds()/2
}

// passOverLaggards ends a pause of own publishes that lasted MaxQueueDelay:
// the queues still above their mark are passed over until they drain below
// it. Their peers lose copies of the node's own messages (dropped as full,
// and counted) rather than hold the author back: a peer that reads slowly,
// or not at all, costs itself, not the node's publishes.
func (n *Node) passOverLaggards() {
	now := time.Now().UnixNano()
	if n.mem.sendBytes.Load() > n.mem.b.sendq/2 {
		n.mem.totalPassedOver = true
	}
	for _, p := range n.links {
		if !p.passedOver && n.queueHigh(p, now) {
			p.passedOver = true
			n.m.publishPassedOver.Inc()
		}
	}
}

// staleInbound reports whether a frame waited in the inbox longer than
// MaxQueueDelay, and counts it; the loop then drops it unread. Its budget
// is released with the rest of the batch (releaseInbound).
func (n *Node) staleInbound(in *inbound, now int64) bool {
	if now-in.at <= n.cfg.MaxQueueDelay.Nanoseconds() {
		return false
	}
	n.m.droppedStaleInbox.Inc()
	return true
}

// releaseInbound hands the inbound budget of a handled batch back to the
// readers.
func (n *Node) releaseInbound(batch []inbound) {
	for i := range batch {
		n.mem.inbox.release(batch[i].size, batch[i].newcomer)
		batch[i].from.giveShare()
	}
}
