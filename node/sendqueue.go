package node

import (
	"sync"
	"sync/atomic"

	"gossipmesh/wire"
)

// outFrame is one encoded message frame, shared by every send queue it is
// queued to. Its bytes are never modified. refs counts the queues that
// still hold it, so that the node's total of queued bytes counts each
// frame once however many peers it goes to.
type outFrame struct {
	b    []byte
	refs atomic.Int32
	kind wire.FrameType // FrameMessage or a control kind, for the frame counters
}

// queuedFrame is one entry of a send queue.
type queuedFrame struct {
	f  *outFrame
	at int64 // when it was queued, Unix ns: a frame older than MaxQueueDelay is stale
}

// sendQueue is one peer's queue of frames to write. The node loop pushes,
// the peer's writer takes everything queued at once (double buffering, so
// neither allocates in the steady state). bytes and count cover every
// frame not yet handed to the socket, including those the writer has
// taken, so that the loop's limits see what the peer really owes.
type sendQueue struct {
	mu     sync.Mutex
	items  []queuedFrame
	closed bool // the writer has quit: pushes are refused

	bytes atomic.Int64
	count atomic.Int64
	// headAt is when the oldest unwritten frame was queued, Unix ns; 0
	// when the queue is empty. Own publishes pause while it is too old.
	headAt atomic.Int64

	wake chan struct{} // capacity 1: "something was queued"
}

func newSendQueue() *sendQueue { return &sendQueue{wake: make(chan struct{}, 1)} }

// push queues f and reports whether the queue still takes frames. Only the
// node loop pushes; it checks the limits first (pushes only ever add, so
// nothing can grow between its check and the push).
func (q *sendQueue) push(f *outFrame, at int64) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, queuedFrame{f: f, at: at})
	q.bytes.Add(int64(len(f.b)))
	q.count.Add(1)
	if q.headAt.Load() == 0 {
		q.headAt.Store(at)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take hands the writer everything queued, giving the queue spare (emptied)
// to fill next.
func (q *sendQueue) take(spare []queuedFrame) []queuedFrame {
	q.mu.Lock()
	batch := q.items
	q.items = spare[:0]
	if len(batch) > 0 {
		q.headAt.Store(batch[0].at)
	} else {
		q.headAt.Store(0)
	}
	q.mu.Unlock()
	return batch
}

// close refuses further pushes and returns whatever was still queued, for
// the writer to release.
func (q *sendQueue) close() []queuedFrame {
	q.mu.Lock()
	q.closed = true
	rest := q.items
	q.items = nil
	q.headAt.Store(0)
	q.mu.Unlock()
	return rest
}
