package node

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// LogWriter puts a bounded buffer and a goroutine between a logger and
// its destination. A node logs one line per delivered message; written
// straight to stderr that is a syscall per message on the node's hot path,
// and if stderr is a pipe that nobody drains (a launcher busy elsewhere),
// the node would block in the middle of forwarding. With LogWriter a
// Write copies the line and returns; lines are written out in batches; and
// when the buffer is full the line is dropped and counted, and a notice
// with the count is written once there is room again.
type LogWriter struct {
	w       io.Writer
	mu      sync.Mutex
	buf     []byte // lines waiting to be written
	spare   []byte // the other buffer, swapped in while buf is written
	max     int
	dropped int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

// NewLogWriter starts a LogWriter that holds at most max bytes of pending
// lines for w. Close it to flush.
func NewLogWriter(w io.Writer, max int) *LogWriter {
	l := &LogWriter{w: w, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

// Write queues p (one log record) without waiting for the destination.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return l.w.Write(p) // late lines, e.g. from a shutdown path: write through
	case len(l.buf)+len(p) > l.max:
		l.dropped++
	default:
		l.buf = append(l.buf, p...)
	}
	// Under the lock, so that Close cannot close wake in between.
	select {
	case l.wake <- struct{}{}:
	default:
	}
	l.mu.Unlock()
	return len(p), nil
}

// flushDelay is how long the writer lets lines gather before it writes
// them. Waking to write each line at once would put a goroutine switch and
// a syscall (and, on a pipe, the reader's wake-up) between a node
// receiving a message and forwarding it; a few milliseconds of delay in
// the log costs nothing.
const flushDelay = 5 * time.Millisecond

func (l *LogWriter) run() {
	defer close(l.done)
	for range l.wake {
		time.Sleep(flushDelay)
		if !l.flush() {
			return
		}
	}
}

// flush writes out what is pending; it reports false once closed and
// drained.
func (l *LogWriter) flush() bool {
	for {
		l.mu.Lock()
		out, dropped, closed := l.buf, l.dropped, l.closed
		l.buf, l.spare, l.dropped = l.spare[:0], nil, 0
		l.mu.Unlock()
		if len(out) == 0 && dropped == 0 {
			return !closed
		}
		_, _ = l.w.Write(out) // nowhere to report a failing log destination
		if dropped > 0 {
			fmt.Fprintf(l.w, "log: %d lines dropped: the log destination was not keeping up\n", dropped)
		}
		l.mu.Lock()
		l.spare = out[:0]
		l.mu.Unlock()
	}
}

// Close writes out every pending line and stops the writer goroutine.
// Lines written after Close go straight to the destination.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.wake)
	l.mu.Unlock()
	<-l.done
	l.flush()
	return nil
}
