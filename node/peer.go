package node

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Reasons a connection ends, beyond the wire decoder's own errors.
var (
	errHandshakeTimeout = errors.New("handshake not complete within the handshake timeout")
	errBadHello         = errors.New("bad hello")
	errProtocol         = errors.New("protocol violation")
	errStalled          = errors.New("peer stalled")
	errReplaced         = errors.New("duplicate link closed")
	errShutdown         = errors.New("node shutting down")
	errSelf             = errors.New("connected to itself")
	errDuplicate        = errors.New("another link to this node id is live")
	errPeerCap          = errors.New("peer cap reached")
	errIPCap            = errors.New("inbound cap for this IP reached")
)

const (
	// readBufferSize is each connection's read buffer, the size wire.Reader
	// uses.
	readBufferSize = 64 << 10
	// writeBufferSize is each connection's write buffer: one flush carries
	// up to this much of a batch.
	writeBufferSize = 64 << 10
)

// peer is one live, handshaken connection. Everything but the counters and
// the close state is fixed once the handshake is done.
type peer struct {
	id          wire.NodeID
	addr        string // the peer's gossip listen address, from its hello
	conn        net.Conn
	fc          *frameConn
	buffered    *bufio.Reader // under reader: tells whether more frames are already here
	reader      *wire.Reader
	outbound    bool        // this node dialed
	dialer      wire.NodeID // whoever dialed: decides which of two links stays
	connectedAt time.Time

	q       *sendQueue    // frames to write, bounded in bytes and frames
	dropped atomic.Uint64 // frames not sent to this peer: queue full or stale
	heard   atomic.Int64  // when the reader last read a frame, Unix ns (membership only)
	// passedOver: this peer's queue held own publishes back for a whole
	// MaxQueueDelay; they no longer wait for it until it drains. Owned by
	// the loop.
	passedOver bool
	// direct is the budget of the messages this peer publishes itself,
	// counted as they arrive (origin.go); owned by the reader.
	direct        gossip.TokenBucket
	directStarted bool
	// overBudget counts the frames the reader dropped over that budget,
	// which the loop has yet to charge the peer for.
	overBudget atomic.Uint64
	// share holds a token for each frame of this link in the inbox, at
	// most peerInboxShare of them (inboxshare.go): the reader, or the
	// link's forwarder, puts one in before it queues a frame, and the
	// loop takes it out once it handled the frame (releaseInbound).
	share chan struct{}
	// backlog holds what the reader decoded beyond the share, for the
	// link's forwarder to queue (inboxshare.go).
	backlog *backlog

	closeOnce sync.Once
	done      chan struct{} // closed by close
	err       error         // why, valid once done is closed
	// next is the link that replaced this one, set before done closes, so
	// that a dialer waiting on this link follows it instead of redialing.
	next atomic.Pointer[peer]
	// promote is set by the loop when it holds this link in standby (see
	// addLink) and closed when the link is promoted to live.
	promote chan struct{}
}

// close tears the connection down once, recording why.
func (p *peer) close(err error) {
	p.closeOnce.Do(func() {
		p.err = err
		close(p.done)
		p.conn.Close()
	})
}

func (p *peer) closed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *peer) info() api.Peer {
	return api.Peer{
		ID:          p.id.String(),
		Addr:        p.addr,
		Outbound:    p.outbound,
		ConnectedAt: p.connectedAt,
		Dropped:     p.dropped.Load(),
	}
}

// handshake runs the authenticated handshake (runHandshake) within the
// handshake timeout: a connection that never speaks, speaks garbage, or
// names a key it cannot prove fails here and costs at most one frame
// buffer for a bounded time. want, if not zero, is the id the node dialed
// for: a peer that proves another is refused.
func (n *Node) handshake(conn net.Conn, outbound bool, want wire.NodeID) (*peer, error) {
	fc := &frameConn{Conn: conn}
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	// Until the peer has proved who it is, it gets a frame limit that
	// fits a hello and no more. Both readers share one buffered reader
	// (bufio.NewReaderSize reuses a big enough one), so no byte read ahead
	// is lost when the second takes over.
	br := bufio.NewReaderSize(fc, readBufferSize)
	hr := wire.NewReader(br, wire.MaxHelloFrame)
	read := func() (wire.Frame, error) {
		f, err := hr.ReadFrame()
		if err == nil {
			fc.frameDone(len(f.Payload))
		}
		return f, err
	}
	check := func(id wire.NodeID, h wire.Hello) error {
		switch {
		case id == n.id:
			return fmt.Errorf("%w (%s)", errSelf, h.ListenAddr)
		case want != 0 && id != want:
			return fmt.Errorf("%w: dialed %v, the peer's key is %v's (%s)", errPeerIDMismatch, want, id, h.ListenAddr)
		}
		if _, err := wire.CommonProtocols(n.cfg.Protocols, h.Protocols); err != nil {
			return fmt.Errorf("peer %v (%s): %w", id, h.ListenAddr, err)
		}
		return nil
	}
	id, h, err := runHandshake(conn, read, n.key, wire.Hello{ListenAddr: n.addr, Protocols: n.cfg.Protocols}, nil, check)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("handshake: %w (%v): %w", errHandshakeTimeout, n.cfg.HandshakeTimeout, err)
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	fc.stall = n.cfg.StallTimeout
	p := &peer{
		id:          id,
		addr:        h.ListenAddr,
		conn:        conn,
		fc:          fc,
		buffered:    br,
		reader:      wire.NewReader(br, n.cfg.MaxFrame()),
		outbound:    outbound,
		connectedAt: time.Now(),
		q:           newSendQueue(),
		share:       make(chan struct{}, peerInboxShare(n.cfg.InboxSize)),
		backlog:     newBacklog(n.backlogCap()),
		done:        make(chan struct{}),
	}
	p.dialer = id
	if outbound {
		p.dialer = n.id
	}
	return p, nil
}

// readLoop reads the peer's frames and hands messages to the node loop
// until the connection fails. Any decode error ends the connection: after
// garbage there is no telling where the next frame starts.
//
// Each frame's size is taken from the node's inbound byte budget as soon
// as its length prefix is read, before the payload is read or allocated,
// and handed back by the loop once it has handled the message. While the
// budget is spent the reader does not read, and TCP pushes back on the
// sender. Time spent waiting for the budget is this node's, not the
// peer's, so the frame's deadline is moved to a quarter of the stall
// timeout after the grant (see restartFrame).
func (n *Node) readLoop(p *peer) error {
	maxBody := n.cfg.Gossip.MaxBody
	var held int64          // budget reserved for the frame being read
	newcomer := true        // no message from this link has reached the loop yet
	var heldAsNewcomer bool // the class held was taken in
	p.reader.SetAdmit(func(size int) error {
		waited, err := n.mem.inbox.acquire(int64(size), newcomer, p.done, n.stop)
		if err != nil {
			select {
			case <-n.stop:
				return errShutdown
			default:
				return err
			}
		}
		held, heldAsNewcomer = int64(size), newcomer
		if waited {
			p.fc.restartFrame()
		}
		return nil
	})
	defer func() { n.mem.inbox.release(held, heldAsNewcomer) }()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.forwardLoop(p)
	}()
	for {
		f, err := p.reader.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("%w: a frame not complete within %v: %w", errStalled, n.cfg.StallTimeout, err)
			}
			return err
		}
		size := p.fc.frameDone(len(f.Payload))
		n.m.bytesIn.Add(float64(size))
		if n.ms != nil {
			n.memberHeard(p)
		}
		in := inbound{from: p, at: time.Now().UnixNano(), size: held, newcomer: heldAsNewcomer}
		switch {
		case f.Type == wire.FrameMessage:
			if in.msg, err = wire.DecodeMessage(f.Payload, maxBody); err != nil {
				return err
			}
			n.m.payloadReceived.Inc()
		case f.Type.IsControl():
			c, err := wire.DecodeControl(f.Type, f.Payload)
			if err != nil {
				return err
			}
			in.ctl = &c
			n.m.controlReceived[f.Type].Inc()
		case f.Type.IsMembership():
			if in.mem, err = decodeMember(f.Type, f.Payload); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unexpected %v frame after the handshake", errProtocol, f.Type)
		}
		if in.ctl == nil && in.mem == nil && n.overBudgetAtArrival(p, &in) {
			n.mem.inbox.release(in.size, in.newcomer)
			held = 0
			continue
		}
		held = 0 // the forwarder, or the loop, releases it now
		if err := n.queue(p, in); err != nil {
			n.mem.inbox.release(in.size, in.newcomer)
			return err
		}
		newcomer = false
		if p.buffered.Buffered() == 0 {
			// Nothing more is here yet: let the loop forward this frame
			// before this goroutine spends a syscall finding the socket
			// empty. With GOMAXPROCS=1 that read would otherwise come
			// first, on every hop of every message. With more frames
			// buffered, keep reading: the loop takes them as one batch.
			runtime.Gosched()
		}
	}
}

// writeLoop writes queued frames, coalescing whatever is queued into one
// buffered flush: one syscall per batch instead of one per frame. A frame
// that waited in the queue longer than MaxQueueDelay is dropped and
// counted instead. Every frame leaves the queue's byte count as soon as it
// is in the write buffer or on the socket, and whatever is queued when the
// writer quits is released too.
func (n *Node) writeLoop(p *peer) {
	bw := bufio.NewWriterSize(p.conn, writeBufferSize)
	maxDelay := n.cfg.MaxQueueDelay.Nanoseconds()
	var (
		armed time.Time
		spare []queuedFrame
		batch []queuedFrame
		next  int // batch[next:] is still to write
	)
	defer func() {
		for _, qf := range batch[next:] {
			n.releaseFrame(p, qf)
		}
		for _, qf := range p.q.close() {
			n.releaseFrame(p, qf)
		}
	}()
	// Every write must finish within the stall timeout of its start (at
	// least half of it, so the deadline is not reset on every batch): a
	// peer that stops reading, or reads a trickle, is found.
	arm := func(now time.Time) error {
		if now.Sub(armed) > n.cfg.StallTimeout/2 {
			if err := p.conn.SetWriteDeadline(now.Add(n.cfg.StallTimeout)); err != nil {
				return err
			}
			armed = now
		}
		return nil
	}
	for {
		select {
		case <-p.q.wake:
		case <-p.done:
			return
		}
		written := 0
		// Take until the queue is empty: the last, empty take also tells
		// the loop that nothing is waiting (headAt 0). The writer owns one
		// of the two buffers at a time: batch, or spare between takes.
		for {
			batch, next = p.q.take(spare), 0
			spare = nil
			if len(batch) == 0 {
				spare, batch = batch, nil
				break
			}
			for next < len(batch) {
				qf := batch[next]
				now := time.Now()
				if now.UnixNano()-qf.at > maxDelay {
					next++
					n.releaseFrame(p, qf)
					p.dropped.Add(1)
					n.m.dropped.Inc()
					n.m.droppedStaleSend.Inc()
					continue
				}
				if err := arm(now); err != nil {
					p.close(err)
					return
				}
				// A frame that does not fit the buffer is written through,
				// so a stalled peer can show up here as well as at the
				// flush.
				if _, err := bw.Write(qf.f.b); err != nil {
					p.close(n.writeError(err))
					return
				}
				next++
				written += len(qf.f.b)
				n.releaseFrame(p, qf)
				if next < len(batch) {
					p.q.headAt.Store(batch[next].at)
				}
			}
			clear(batch)
			spare, batch, next = batch[:0], nil, 0
		}
		if written == 0 {
			continue
		}
		if err := arm(time.Now()); err != nil {
			p.close(err)
			return
		}
		if err := bw.Flush(); err != nil {
			p.close(n.writeError(err))
			return
		}
		n.m.bytesOut.Add(float64(written))
	}
}

// writeError says why a write failed; a write deadline that passed means
// the peer stopped reading.
func (n *Node) writeError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: not reading for %v: %w", errStalled, n.cfg.StallTimeout, err)
	}
	return fmt.Errorf("write: %w", err)
}

// frameConn is the read side of a connection, aware of frame boundaries so
// that it can time out a peer that does not complete a frame it started,
// while letting an idle peer stay silent between frames for as long as it
// likes.
//
// wire.Reader reads through a buffer, so frameConn compares the bytes read
// from the connection with the bytes of the whole frames handed out: when
// the reader asks for more while the two differ, a frame is partly here.
// The first such read sets the frame's deadline, StallTimeout ahead, and
// nothing moves it but the end of the frame (or a wait of this node's own,
// see restartFrame): a peer that trickles a byte at a time cannot keep a
// frame open.
type frameConn struct {
	net.Conn
	read, consumed int64
	stall          time.Duration // zero: not yet armed (the handshake sets its own deadline)
	frameDeadline  time.Time     // when the frame now arriving must be complete; zero if none started
	connDeadline   time.Time     // the read deadline set on Conn
}

func (c *frameConn) Read(b []byte) (int, error) {
	if c.stall > 0 {
		var want time.Time
		if c.read != c.consumed {
			if c.frameDeadline.IsZero() {
				c.frameDeadline = time.Now().Add(c.stall)
			}
			want = c.frameDeadline
		}
		if !want.Equal(c.connDeadline) {
			if err := c.Conn.SetReadDeadline(want); err != nil {
				return 0, err
			}
			c.connDeadline = want
		}
	}
	n, err := c.Conn.Read(b)
	c.read += int64(n)
	return n, err
}

// frameDone records that a frame with a payload of payloadLen bytes was
// handed out, and returns its size on the wire. The next frame gets a
// deadline of its own.
func (c *frameConn) frameDone(payloadLen int) int {
	size := 4 + 2 + payloadLen
	c.consumed += int64(size)
	c.frameDeadline = time.Time{}
	return size
}

// restartFrame sets the deadline of the frame being read to a quarter of
// the stall timeout from now, once the node has made the peer wait (for
// inbound memory budget): the wait is not the peer's stall, but while it
// lasted the peer could send the rest of its frame into the socket buffer,
// so an honest frame completes at once. A quarter, not all of it, so that
// peers that start frames they never finish, and queue up for the budget,
// hold it for a short while each.
func (c *frameConn) restartFrame() {
	if c.stall > 0 {
		c.frameDeadline = time.Now().Add(c.stall / 4)
	}
}
