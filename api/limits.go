package api

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ServerLimits are the HTTP budgets of every server the project runs (a
// node's API and the dashboard): a client that trickles, hoards
// connections or stops reading costs a bounded amount and then is cut off.
type ServerLimits struct {
	// ReadHeaderTimeout bounds reading a request's header. Default 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, header and body, counted
	// from its first byte: a body trickled a byte at a time is cut off
	// then. Once the body is read, the deadline is lifted, so that a long
	// answer (a stream, a wait) is not cut. Default 15 s, against the
	// milliseconds that the largest allowed body takes over loopback.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write of an answer, counted from the write
	// (not from the request), so that a long wait or an event stream is
	// not cut while a client that stops reading is. Default 15 s.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no next
	// request. Default 2 min.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConns caps the connections open at once; over it, a new
	// connection is closed as soon as it is accepted, and counted
	// (ConnLimiter.Refused). Default 256.
	MaxConns int
}

// DefaultServerLimits returns the limits documented on ServerLimits.
func DefaultServerLimits() ServerLimits {
	return ServerLimits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          256,
	}
}

// Validate reports a limit that is missing or makes no sense.
func (l ServerLimits) Validate() error {
	switch {
	case l.ReadHeaderTimeout <= 0:
		return fmt.Errorf("http limits: ReadHeaderTimeout %v: must be positive", l.ReadHeaderTimeout)
	case l.ReadTimeout < l.ReadHeaderTimeout:
		return fmt.Errorf("http limits: ReadTimeout %v: must be at least ReadHeaderTimeout (%v)", l.ReadTimeout, l.ReadHeaderTimeout)
	case l.WriteTimeout <= 0:
		return fmt.Errorf("http limits: WriteTimeout %v: must be positive", l.WriteTimeout)
	case l.IdleTimeout <= 0:
		return fmt.Errorf("http limits: IdleTimeout %v: must be positive", l.IdleTimeout)
	case l.MaxHeaderBytes < 1<<10:
		return fmt.Errorf("http limits: MaxHeaderBytes %d: want at least 1024", l.MaxHeaderBytes)
	case l.MaxConns < 1:
		return fmt.Errorf("http limits: MaxConns %d: want at least 1", l.MaxConns)
	}
	return nil
}

// NewServer returns an http.Server for h that keeps to l (which must be
// valid). Serve it on LimitListener(ln, l.MaxConns) to cap connections.
// log, if not nil, receives the server's own errors at level warn.
func NewServer(h http.Handler, l ServerLimits, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           deadlines(h, l.WriteTimeout),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		// The server arms this once per request; deadlines re-arms it at
		// each write, so it bounds a write, not the whole answer.
		WriteTimeout:   l.WriteTimeout,
		IdleTimeout:    l.IdleTimeout,
		MaxHeaderBytes: l.MaxHeaderBytes,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

// deadlines turns the server's per-request deadlines into the ones
// ServerLimits documents. The read deadline is lifted once the request has
// been read: net/http cancels a request's context when a read hits the
// deadline, even the background read that only watches for the client
// going away, which would cut every stream and long wait at ReadTimeout.
// The write deadline is moved to writeTimeout after each write.
func deadlines(h http.Handler, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			r.Body = &liftOnEOF{ReadCloser: r.Body, rc: rc}
		}
		h.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, timeout: writeTimeout}, r)
	})
}

// liftOnEOF lifts the read deadline when the body has been read to its
// end: what is left to read is only the next request, which gets deadlines
// of its own. A body that fails (a trickle cut at the deadline, one over
// its size limit) keeps the deadline, so nothing waits on the rest.
type liftOnEOF struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *liftOnEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter re-arms the write deadline before a write when less than
// half of it is left: a write may take up to the timeout, and a stream
// costs a deadline change only every timeout/2.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	until   time.Time
}

func (d *deadlineWriter) arm() {
	now := time.Now()
	if d.until.Sub(now) > d.timeout/2 {
		return
	}
	d.until = now.Add(d.timeout)
	_ = d.rc.SetWriteDeadline(d.until)
}

func (d *deadlineWriter) WriteHeader(status int) {
	d.arm()
	d.ResponseWriter.WriteHeader(status)
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.arm()
	return d.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which the event streams need.
func (d *deadlineWriter) Flush() {
	d.arm()
	_ = d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// ConnLimiter is a net.Listener that keeps at most a fixed number of
// connections open. At the cap, a new connection first takes the place of
// one that is doing nothing: the kept-alive connection idle the longest,
// or one that has sent nothing for newConnGrace since it was accepted.
// Only when every connection is busy with a request is the new one
// accepted and closed at once. So a client hoarding connections (idle
// keep-alives, connections that never send a request) cannot lock honest
// clients out; one that keeps as many requests in flight as the cap
// still can, for as long as the read and write timeouts let it. Call
// Track on the server so that the limiter knows which connections are
// idle.
type ConnLimiter struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused atomic.Uint64
	evicted atomic.Uint64

	mu sync.Mutex
	// idle holds the connections that may give up their place, with when
	// they became so: kept-alive between requests, or new and silent.
	idle map[*limitedConn]idleSince
}

type idleSince struct {
	at    time.Time
	fresh bool // accepted and no request yet: evictable after newConnGrace
}

// newConnGrace is how long a freshly accepted connection may stay silent
// before it can lose its place to a newer one: an honest client sends its
// request at once.
const newConnGrace = time.Second

// LimitListener caps ln at n open connections (at least 1).
func LimitListener(ln net.Listener, n int) *ConnLimiter {
	return &ConnLimiter{Listener: ln, max: int64(max(n, 1)), idle: make(map[*limitedConn]idleSince)}
}

// Track makes srv tell the limiter which connections are idle, keeping
// any ConnState hook srv already has.
func (l *ConnLimiter) Track(srv *http.Server) {
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if lc, ok := c.(*limitedConn); ok && lc.l == l {
			l.mu.Lock()
			switch s {
			case http.StateNew:
				l.idle[lc] = idleSince{at: time.Now(), fresh: true}
			case http.StateIdle:
				l.idle[lc] = idleSince{at: time.Now()}
			default:
				delete(l.idle, lc)
			}
			l.mu.Unlock()
		}
		if prev != nil {
			prev(c, s)
		}
	}
}

// Accept returns the next connection under the cap. At the cap it closes
// the connection idle the longest to make room; if none is idle, it closes
// the new one and counts it here, and never returns it.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max && !l.evictIdle() {
			l.open.Add(-1)
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// evictIdle closes the connection that has been idle the longest, if any
// may give up its place, and reports whether it did. The caller has
// already counted the new connection; the victim's Close gives its slot
// back, so the slot changes hands.
func (l *ConnLimiter) evictIdle() bool {
	now := time.Now()
	l.mu.Lock()
	var victim *limitedConn
	var since time.Time
	for c, st := range l.idle {
		if st.fresh && now.Sub(st.at) < newConnGrace {
			continue
		}
		if victim == nil || st.at.Before(since) {
			victim, since = c, st.at
		}
	}
	if victim != nil {
		delete(l.idle, victim)
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.Close()
	l.evicted.Add(1)
	return true
}

// Refused counts the connections closed because the cap was reached and
// no connection was idle.
func (l *ConnLimiter) Refused() uint64 { return l.refused.Load() }

// Evicted counts the idle connections closed to make room for new ones.
func (l *ConnLimiter) Evicted() uint64 { return l.evicted.Load() }

// Idle is the number of connections that could give up their place now
// (idle between requests, or new and silent), for metrics and tests.
func (l *ConnLimiter) Idle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.idle)
}

// Open is the number of connections open now.
func (l *ConnLimiter) Open() int { return int(l.open.Load()) }

// limitedConn gives its slot back once, on its first Close, whether the
// server closes it or the limiter evicts it for a newer connection.
type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
	})
	return err
}
