package node

import (
	"math"
	"sync"
	"time"
)

// This file holds each link's fair share of the inbox. The inbox is one
// queue, in arrival order, shared by every link's reader; without a share
// a peer that floods valid messages (signed, new, within their origin's
// rate budget until it is spent) fills it with thousands of frames that
// each cost the loop a signature check, and the frames of every honest
// peer wait behind them until they are dropped as stale (MaxQueueDelay):
// the flood decides what the node hears from everyone else. With a share,
// a link holds at most peerInboxShare frames in the inbox at a time; its
// reader waits for the loop to handle one before it queues another, TCP
// pushes back on that peer alone, and an honest frame waits behind at
// most one share of each other link's frames.

// peerInboxShareDivisor is how many shares the inbox is cut into: a link
// holds at most 1/16 of InboxSize, 256 frames at the default 4,096, one
// loop batch (maxBatch). Sixteen links can each queue a whole share
// before the inbox is full; a node with more links than that is bounded
// by the inbox itself, as before.
const peerInboxShareDivisor = 16

// peerInboxShare is the most frames one link may hold in an inbox of
// inboxSize frames: inboxSize/peerInboxShareDivisor, at least 1 and at
// most the inbox.
func peerInboxShare(inboxSize int) int {
	return min(max(inboxSize/peerInboxShareDivisor, 1), max(inboxSize, 1))
}

// takeShare reserves a place in the inbox for one more of p's frames,
// waiting while p already holds its share until the loop has handled one
// of them or the node stops; waited says whether it had to wait. It does
// not give up when p's link closes: what p's reader read before that
// still reaches the loop, as it did before the share, and the loop
// handles the frames that hold the share whether p is up or not. Only p's
// forwarder calls it.
func (n *Node) takeShare(p *peer) (waited bool, err error) {
	select {
	case p.share <- struct{}{}:
		return false, nil
	default:
	}
	n.m.inboxShareWaits.Inc()
	select {
	case p.share <- struct{}{}:
		return true, nil
	case <-n.stop:
		return true, errShutdown
	}
}

// giveShare hands back the place one of p's frames held in the inbox,
// once the loop has handled (or dropped) it. A peer made without a share
// (tests that queue frames themselves) holds none.
func (p *peer) giveShare() {
	select {
	case <-p.share:
	default:
	}
}

// The share must not slow down what the reader learns from a link: the
// arrival check of its own messages (overBudgetAtArrival) finds a spammer
// over budget only after its in-budget burst (1,500 messages at the
// default rate), and a reader that waited on the share before reading on
// would reach the first message over budget only once the loop had
// verified most of that burst, seconds on a loaded machine. So the reader
// never waits on the share itself: it decodes, checks and drops what is
// over budget at the wire's pace and puts the rest in the link's backlog,
// and a forwarder per link moves the backlog into the inbox one share at
// a time, in order. The reader waits only when the backlog is full
// (backlogCap: the direct burst and a share), and every frame in it holds
// its inbound byte budget, so the backlog is bounded twice.

// backlog is a link's FIFO of decoded frames waiting for the link's
// share of the inbox: the reader pushes, the forwarder pops.
type backlog struct {
	mu    sync.Mutex
	q     []inbound
	head  int
	limit int
	busy  bool          // the forwarder holds a popped frame not yet in the inbox
	quit  bool          // the forwarder has quit: push refuses
	ready chan struct{} // a frame was pushed (capacity 1)
	room  chan struct{} // a frame was popped (capacity 1)
}

func newBacklog(limit int) *backlog {
	return &backlog{limit: max(limit, 1), ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// backlogCap is how many frames a link's backlog holds: the burst of the
// arrival check of its own messages and one share of the inbox, so that a
// spammer's reader reads past its whole in-budget burst before it waits.
func (n *Node) backlogCap() int {
	return int(math.Ceil(n.own.directBurst)) + peerInboxShare(n.cfg.InboxSize)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push appends in, waiting while the backlog is full until the forwarder
// pops one or either channel closes (then it returns errShutdown, and the
// caller still owns in's budget).
func (b *backlog) push(in inbound, done, stop <-chan struct{}) error {
	for {
		b.mu.Lock()
		if b.quit {
			b.mu.Unlock()
			return errShutdown
		}
		if len(b.q)-b.head < b.limit {
			if b.head > 0 && b.head == len(b.q) {
				clear(b.q)
				b.q, b.head = b.q[:0], 0
			}
			b.q = append(b.q, in)
			b.mu.Unlock()
			signal(b.ready)
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.room:
		case <-done:
			return errShutdown
		case <-stop:
			return errShutdown
		}
	}
}

// pop takes the oldest frame, waiting for one; once done (the link) has
// closed it still hands out what the backlog holds, and says ok false
// when it is empty or stop (the node) has closed.
func (b *backlog) pop(done, stop <-chan struct{}) (in inbound, ok bool) {
	linkDown := false
	for {
		b.mu.Lock()
		if b.head < len(b.q) {
			in = b.q[b.head]
			b.q[b.head] = inbound{}
			b.head++
			b.busy = true
			if b.head == len(b.q) {
				b.q, b.head = b.q[:0], 0
			}
			b.mu.Unlock()
			signal(b.room)
			return in, true
		}
		if linkDown {
			// Empty, and the reader will push nothing more that is not
			// refused (push sees quit).
			b.quit = true
			b.mu.Unlock()
			return inbound{}, false
		}
		b.mu.Unlock()
		select {
		case <-b.ready:
		case <-done:
			done, linkDown = nil, true // take what is left first
		case <-stop:
			return inbound{}, false
		}
	}
}

// drain empties the backlog, for a forwarder that quits.
func (b *backlog) drain() []inbound {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.quit = true
	rest := b.q[b.head:]
	b.q, b.head = nil, 0
	return rest
}

// forwardLoop moves p's backlog into the inbox, waiting for p's share,
// until p's link has closed and its backlog is empty, or the node stops;
// what it still holds then gives its inbound budget back. It runs beside
// p's reader.
func (n *Node) forwardLoop(p *peer) {
	defer func() {
		for _, in := range p.backlog.drain() {
			n.mem.inbox.release(in.size, in.newcomer)
		}
	}()
	for {
		in, ok := p.backlog.pop(p.done, n.stop)
		if !ok {
			return
		}
		if _, err := n.takeShare(p); err != nil {
			n.mem.inbox.release(in.size, in.newcomer)
			return
		}
		// The frame's wait in the inbox starts now: the time it spent in
		// the backlog was this link's own excess, not the loop's lag.
		in.at = time.Now().UnixNano()
		select {
		case n.inbox <- in:
		case <-n.stop:
			n.mem.inbox.release(in.size, in.newcomer)
			return
		}
		p.backlog.mu.Lock()
		p.backlog.busy = false
		p.backlog.mu.Unlock()
	}
}

// queue hands a frame the reader decoded to the loop: straight into the
// inbox when the link's backlog is empty (and its forwarder idle, so
// that frames keep their order) and its share has room, as most frames
// go; into the backlog otherwise. Only p's reader calls it; on an error
// the caller still owns in's budget.
func (n *Node) queue(p *peer, in inbound) error {
	b := p.backlog
	b.mu.Lock()
	direct := false
	if b.head == len(b.q) && !b.busy {
		select {
		case p.share <- struct{}{}:
			direct = true
		default:
		}
	}
	b.mu.Unlock()
	if !direct {
		return b.push(in, p.done, n.stop)
	}
	select {
	case n.inbox <- in:
		return nil
	case <-n.stop:
		p.giveShare()
		return errShutdown
	}
}
