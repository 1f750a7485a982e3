package memnet

import (
	"net"
	"sync"
	"time"
)

// Addr is a memnet address, "host:port".
type Addr string

// Network implements net.Addr.
func (Addr) Network() string { return "memnet" }

func (a Addr) String() string { return string(a) }

// conn is one end of an in-memory connection.
type conn struct {
	local, remote Addr
	// hosts are the two hosts the link joins, for cuts.
	localHost, remoteHost string
	rx, tx                *stream
	rd, wd                *deadline
	closeOnce             sync.Once
	closed                chan struct{}
	peer                  *conn
	onClose               func(*conn)
}

// newConnPair returns the dialer's and the listener's ends of a connection.
func newConnPair(dialHost, dialAddr, listenHost, listenAddr string) (*conn, *conn) {
	ab, ba := newStream(), newStream()
	a := &conn{local: Addr(dialAddr), remote: Addr(listenAddr), localHost: dialHost, remoteHost: listenHost, rx: ba, tx: ab, closed: make(chan struct{})}
	b := &conn{local: Addr(listenAddr), remote: Addr(dialAddr), localHost: listenHost, remoteHost: dialHost, rx: ab, tx: ba, closed: make(chan struct{})}
	a.rd, a.wd = newDeadline(a.closed), newDeadline(a.closed)
	b.rd, b.wd = newDeadline(b.closed), newDeadline(b.closed)
	a.peer, b.peer = b, a
	return a, b
}

func (c *conn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.rx.read(p, c.rd)
}

func (c *conn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.tx.write(p, c.wd)
}

// Close ends this side: the peer reads what was already written, then EOF;
// anything the peer writes from now on fails.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.tx.closeWrite()
		c.rx.fail(net.ErrClosed)
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return nil
}

// reset breaks the link under both ends, as a cut cable would: pending data
// is lost and both sides' reads and writes fail.
func (c *conn) reset() {
	c.tx.fail(errReset)
	c.rx.fail(errReset)
}

func (c *conn) LocalAddr() net.Addr                { return c.local }
func (c *conn) RemoteAddr() net.Addr               { return c.remote }
func (c *conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }
func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
