package memnet

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeCapacity bounds the bytes in flight in one direction of a conn, like a
// socket buffer: a writer that gets this far ahead of its reader blocks,
// which is the back-pressure a real TCP connection gives.
const pipeCapacity = 256 << 10

// errReset is what both ends of a link see once the network cuts it.
var errReset = errors.New("memnet: connection reset (link cut)")

// stream is one direction of a conn: a bounded byte queue with a reader and
// a writer. Unlike net.Pipe it buffers, so two ends that both write before
// they read (a handshake) do not deadlock.
type stream struct {
	mu      sync.Mutex
	buf     []byte
	off     int
	eof     bool  // the writer closed: readers drain, then io.EOF
	err     error // the stream is dead for both sides (reader closed, reset)
	changed chan struct{}
}

func newStream() *stream { return &stream{changed: make(chan struct{})} }

// wake tells every blocked reader and writer that the state changed. The
// caller holds mu.
func (s *stream) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *stream) read(p []byte, deadline *deadline) (int, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		if n := len(s.buf) - s.off; n > 0 {
			n = copy(p, s.buf[s.off:])
			s.off += n
			if s.off == len(s.buf) {
				s.buf, s.off = s.buf[:0], 0
			}
			s.wake()
			s.mu.Unlock()
			return n, nil
		}
		if s.eof {
			s.mu.Unlock()
			return 0, io.EOF
		}
		wait := s.changed
		s.mu.Unlock()
		if err := deadline.wait(wait); err != nil {
			return 0, err
		}
	}
}

func (s *stream) write(p []byte, deadline *deadline) (int, error) {
	written := 0
	for len(p) > 0 {
		s.mu.Lock()
		if s.err != nil || s.eof {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = net.ErrClosed
			}
			return written, err
		}
		if room := pipeCapacity - (len(s.buf) - s.off); room > 0 {
			if s.off > 0 && len(s.buf)+min(room, len(p)) > cap(s.buf) {
				// Slide the unread bytes to the front before appending.
				s.buf = s.buf[:copy(s.buf, s.buf[s.off:])]
				s.off = 0
			}
			n := min(room, len(p))
			s.buf = append(s.buf, p[:n]...)
			p = p[n:]
			written += n
			s.wake()
			s.mu.Unlock()
			continue
		}
		wait := s.changed
		s.mu.Unlock()
		if err := deadline.wait(wait); err != nil {
			return written, err
		}
	}
	return written, nil
}

// closeWrite marks the end of the data: the reader drains, then sees EOF.
func (s *stream) closeWrite() {
	s.mu.Lock()
	s.eof = true
	s.wake()
	s.mu.Unlock()
}

// fail kills the stream for both sides; buffered data is discarded.
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		s.buf, s.off = nil, 0
	}
	s.wake()
	s.mu.Unlock()
}

// deadline is a settable point in time with a channel that closes when it
// passes, as net.Conn's deadlines need.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	expired chan struct{}
	closed  chan struct{} // the conn's own close: unblocks everything
}

func newDeadline(closed chan struct{}) *deadline {
	return &deadline{expired: make(chan struct{}), closed: closed}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		if !d.timer.Stop() {
			// It fired, and its func may not have closed the channel yet:
			// the new deadline gets a channel of its own, so that the old
			// func neither closes it early nor twice.
			d.expired = make(chan struct{})
		}
		d.timer = nil
	}
	select {
	case <-d.expired:
		d.expired = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.expired)
		return
	}
	ch := d.expired
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// wait blocks until changed closes (nil error), the deadline passes or the
// conn is closed.
func (d *deadline) wait(changed chan struct{}) error {
	d.mu.Lock()
	expired := d.expired
	d.mu.Unlock()
	select {
	case <-changed:
		return nil
	case <-expired:
		return os.ErrDeadlineExceeded
	case <-d.closed:
		return net.ErrClosed
	}
}
