package node_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/transport"
	"gossipmesh/transport/memnet"
	"gossipmesh/transport/tcp"
)

// TestSimultaneousDialKeepsOneLink has two nodes dial each other at the
// same time, many times over: each pair must settle on exactly one
// connection, the one dialed by the lower id, agreed by both ends, and
// carry messages both ways.
func TestSimultaneousDialKeepsOneLink(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		// Alternate which of the two has the lower id.
		lowFirst := round%2 == 0
		m := startMesh(t, [][]int{{1}, {0}}, func(i int, c *node.Config) {
			if !lowFirst {
				c.Key = node.KeyForTest(2 - i) // the keys startMesh gives, swapped
			}
		})
		// Settled means one open connection, and both ends hold the link the
		// lower id dialed. On the way there the pair may agree for a while on
		// the higher id's dial: when the lower id's first dial found no
		// listener yet, it holds the higher's link until its backoff ends
		// and its own dial replaces it. (One end may also briefly still
		// hold a link the other has already closed.)
		eventually(t, "one link, the lower id's dial, agreed by both ends", func() bool {
			if m.nw.Conns(host(0), host(1)) != 1 {
				return false
			}
			for i, n := range m.nodes {
				ps := n.Peers()
				if len(ps) != 1 || ps[0].Outbound != (n.ID() < m.nodes[1-i].ID()) {
					return false
				}
			}
			return true
		})
		for i, n := range m.nodes {
			other := m.nodes[1-i]
			if p := n.Peers()[0]; p.ID != other.ID().String() {
				t.Fatalf("round %d: node %d linked to %s, want %s", round, i, p.ID, other.ID())
			}
		}
		for i, n := range m.nodes {
			rc, err := n.Publish(context.Background(), []byte("ping"))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.nodes[1-i].Receipt(context.Background(), rc.ID, settle); !ok {
				t.Fatalf("round %d: message from node %d never arrived", round, i)
			}
		}
		if c := m.nw.Conns(host(0), host(1)); c != 1 {
			t.Errorf("round %d: %d connections between the pair after traffic, want 1", round, c)
		}
	}
}

// impostor connects to addr and completes the handshake as the holder of
// key, announcing listen address claimAddr, then reads and discards
// whatever it gets. It returns the connection and a channel closed once
// the node hangs up. A process that holds a live peer's key (a restarted
// peer, or a stolen key) is the only one that can get this far with the
// peer's id.
func impostor(t *testing.T, addr string, key *identity.Key, claimAddr string) (net.Conn, <-chan struct{}) {
	t.Helper()
	conn, err := (tcp.Transport{}).Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(settle))
	hs, err := node.Handshake(conn, key, claimAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Time{})
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		io.Copy(io.Discard, hs.Reader)
	}()
	return conn, gone
}

// keysByID returns test keys 1 to n sorted by their ids, for tests that
// need ids in a given order (the link tie-break compares ids).
func keysByID(n int) []*identity.Key {
	keys := make([]*identity.Key, n)
	for i := range keys {
		keys[i] = node.KeyForTest(i + 1)
	}
	slices.SortFunc(keys, func(a, b *identity.Key) int { return cmp.Compare(a.ID(), b.ID()) })
	return keys
}

// labelled returns the value of the series of counter vector name whose
// label has the given value (0 if there is none yet).
func labelled(t *testing.T, n *node.Node, name, label, want string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == want {
					return value(m)
				}
			}
		}
	}
	return 0
}

// flows checks that a message published at each of a and b reaches the
// other.
func flows(t *testing.T, what string, a, b *node.Node) {
	t.Helper()
	for _, pair := range [][2]*node.Node{{a, b}, {b, a}} {
		rc, err := pair[0].Publish(context.Background(), []byte(what+" from "+pair[0].ID().String()))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := pair[1].Receipt(context.Background(), rc.ID, 10*time.Second); !ok {
			t.Fatalf("%s: a message from %s never reached %s", what, pair[0].ID(), pair[1].ID())
		}
	}
}

// TestClaimedIDNeverTakesOverALiveLink has raw TCP clients complete the
// handshake with the ids of a node's four live peers, two of which it
// dialed and two of which dialed it, with ids below and above its own (the
// four cases of the tie-break). Each claim is refused or held in standby
// and then closed; the node keeps every real link, Peers shows the real
// addresses, and messages flow both ways on every link throughout.
func TestClaimedIDNeverTakesOverALiveLink(t *testing.T) {
	t.Parallel()
	// Five keys in id order: the target holds the middle one. Dialed by
	// the target: keys[0] (below it) and keys[4] (above); dialing it:
	// keys[1] and keys[3].
	keys := keysByID(5)
	dialed := []*node.Node{startTCPNode(t, keys[0], nil, nil), startTCPNode(t, keys[4], nil, nil)}
	target := startTCPNode(t, keys[2], []string{dialed[0].Addr(), dialed[1].Addr()}, nil, func(c *node.Config) {
		c.Peers = 2
	})
	dialers := []*node.Node{startTCPNode(t, keys[1], []string{target.Addr()}, nil), startTCPNode(t, keys[3], []string{target.Addr()}, nil)}
	real := append(dialed, dialers...)
	keyOf := map[*node.Node]*identity.Key{dialed[0]: keys[0], dialed[1]: keys[4], dialers[0]: keys[1], dialers[1]: keys[3]}
	byID := make(map[string]*node.Node)
	for _, r := range real {
		byID[r.ID().String()] = r
	}
	checkPeers := func(when string) {
		t.Helper()
		ps := target.Peers()
		if len(ps) != len(real) {
			t.Fatalf("%s: the target has %d links, want %d: %+v", when, len(ps), len(real), ps)
		}
		for _, p := range ps {
			r := byID[p.ID]
			if r == nil || p.Addr != r.Addr() {
				t.Fatalf("%s: the target's link to %s is at %q, want the real peer's %q", when, p.ID, p.Addr, r.Addr())
			}
		}
	}
	eventually(t, "the four real links", func() bool { return len(target.Peers()) == len(real) })
	checkPeers("before the claims")

	// Two rounds of claims on every peer: one with a made-up address, one
	// with the real peer's own.
	for round, claimed := range []func(r *node.Node) string{
		func(*node.Node) string { return "127.0.0.1:1" },
		func(r *node.Node) string { return r.Addr() },
	} {
		var gone []<-chan struct{}
		for _, r := range real {
			_, g := impostor(t, target.Addr(), keyOf[r], claimed(r))
			gone = append(gone, g)
		}
		// While the claims are held (in standby, or not yet refused), the
		// real links stay and carry messages.
		for _, r := range real {
			flows(t, fmt.Sprintf("round %d, claims open", round), target, r)
		}
		checkPeers(fmt.Sprintf("round %d, claims open", round))
		for k, g := range gone {
			select {
			case <-g:
			case <-time.After(settle):
				t.Fatalf("round %d: the claim of %s's id is still connected", round, real[k].ID())
			}
		}
		checkPeers(fmt.Sprintf("round %d, claims closed", round))
		for _, r := range real {
			flows(t, fmt.Sprintf("round %d, claims closed", round), target, r)
		}
	}
	if got := labelled(t, target, "gossipmesh_rejected_total", "reason", "duplicate_id"); got == 0 {
		t.Error("no refused claim counted in rejected_total{reason=\"duplicate_id\"}")
	}
	eventually(t, "no link left in standby", func() bool { return counter(t, target, "gossipmesh_standby_links") == 0 })
}

// TestRestartedPeerTakesOverOnceTheOldLinkIsGone starts a second process
// with a live peer's id (as a restarted peer whose old link's teardown
// has not been seen yet): the node keeps the old link while it lives, and
// the new one takes over as soon as the old one goes down, without a
// redial.
func TestRestartedPeerTakesOverOnceTheOldLinkIsGone(t *testing.T) {
	t.Parallel()
	nw := memnet.New()
	start := func(h string, key *identity.Key, candidates ...string) (*node.Node, context.CancelFunc) {
		cfg := node.DefaultConfig()
		cfg.Key = key
		cfg.Transport = nw.Host(h)
		cfg.Listen = h + ":7000"
		cfg.Candidates = candidates
		cfg.Peers = len(candidates)
		cfg.HandshakeTimeout = settle // the standby must not expire: only the old link's end may promote it
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 100*time.Millisecond
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go n.Run(ctx)
		t.Cleanup(func() { cancel(); <-n.Done() })
		return n, cancel
	}
	for _, lowTarget := range []bool{true, false} {
		keys := keysByID(2)
		targetID, peerID := keys[0], keys[1]
		if !lowTarget {
			targetID, peerID = keys[1], keys[0]
		}
		target, _ := start("t", targetID)
		old, stopOld := start("old", peerID, "t:7000")
		eventually(t, "the old link", func() bool { return len(target.Peers()) == 1 })
		fresh, _ := start("new", peerID, "t:7000")
		// The newcomer's own end goes live at once; the target holds it in
		// standby and keeps the old link.
		eventually(t, "the newcomer's end of its link", func() bool { return len(fresh.Peers()) == 1 })
		if ps := target.Peers(); len(ps) != 1 || ps[0].Addr != old.Addr() {
			t.Fatalf("lowTarget=%v: with the old link live, the target's links are %+v, want the old one at %s", lowTarget, ps, old.Addr())
		}
		eventually(t, "the new link to be held", func() bool { return counter(t, target, "gossipmesh_standby_links") == 1 })
		flows(t, "old link", target, old)
		stopOld()
		<-old.Done()
		eventually(t, "the new link to take over", func() bool {
			ps := target.Peers()
			return len(ps) == 1 && ps[0].Addr == fresh.Addr()
		})
		flows(t, "new link", target, fresh)
		if got := labelled(t, target, "gossipmesh_duplicate_links_total", "outcome", "promoted"); got != 1 {
			t.Errorf("lowTarget=%v: promoted %v standbys, want 1", lowTarget, got)
		}
		nw.Isolate("t") // end this round's links before the next uses the same hosts
		nw = memnet.New()
	}
}

// TestPeerCapsRefuseTheExcess pushes 20 connections past each cap: with
// MaxPeers 8 and one own dial, 7 inbound links are accepted; with a cap of
// 3 per IP, 3 from one source address are, and another address still gets
// in. The excess is closed and counted, and the real link is never evicted.
func TestPeerCapsRefuseTheExcess(t *testing.T) {
	t.Parallel()
	const attempts = 20
	t.Run("total", func(t *testing.T) {
		t.Parallel()
		real := startTCPNode(t, node.KeyForTest(1000), nil, nil)
		target := startTCPNode(t, node.KeyForTest(1), []string{real.Addr()}, nil, func(c *node.Config) {
			c.Peers = 1
			c.MaxPeers = 8
		})
		eventually(t, "the real link", func() bool { return len(target.Peers()) == 1 })
		open := claimMany(t, target, "", 100, attempts)
		if open != 7 {
			t.Errorf("%d of %d connections kept, want 7 (MaxPeers 8 less one own dial)", open, attempts)
		}
		if got := labelled(t, target, "gossipmesh_rejected_total", "reason", "peer_cap"); got != attempts-7 {
			t.Errorf("rejected_total{reason=\"peer_cap\"} = %v, want %d", got, attempts-7)
		}
		if n := len(target.Peers()); n != 8 {
			t.Errorf("%d links, want 8", n)
		}
		flows(t, "real link at the cap", target, real)
	})
	t.Run("per IP", func(t *testing.T) {
		t.Parallel()
		real := startTCPNode(t, node.KeyForTest(1000), nil, nil)
		target := startTCPNode(t, node.KeyForTest(1), []string{real.Addr()}, nil, func(c *node.Config) {
			c.Peers = 1
			c.MaxInboundPerIP = 3
		})
		eventually(t, "the real link", func() bool { return len(target.Peers()) == 1 })
		if open := claimMany(t, target, "127.0.0.2", 100, attempts); open != 3 {
			t.Errorf("%d of %d connections from 127.0.0.2 kept, want 3", open, attempts)
		}
		if got := labelled(t, target, "gossipmesh_rejected_total", "reason", "ip_cap"); got != attempts-3 {
			t.Errorf("rejected_total{reason=\"ip_cap\"} = %v, want %d", got, attempts-3)
		}
		if open := claimMany(t, target, "127.0.0.3", 200, 1); open != 1 {
			t.Errorf("a connection from another address was refused")
		}
		flows(t, "real link at the per-IP cap", target, real)
	})
}

// claimMany opens count connections to target from source (any, if
// empty), each with its own test key from firstID on, one at a time, and
// reports how many the node keeps: a kept one is listed in its peers, a
// refused one is closed.
func claimMany(t *testing.T, target *node.Node, source string, firstID, count int) int {
	t.Helper()
	d := net.Dialer{}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	kept := 0
	for k := range count {
		key := node.KeyForTest(firstID + k)
		id := key.ID()
		conn, err := d.Dial("tcp", target.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// A refused connection may be closed before the handshake ends
		// (a cap) or after it (the node sent its proof, then refused).
		conn.SetDeadline(time.Now().Add(settle))
		_, _ = node.Handshake(conn, key, "127.0.0.1:1")
		conn.SetDeadline(time.Time{})
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			io.Copy(io.Discard, conn)
		}()
		listed := func() bool {
			for _, p := range target.Peers() {
				if p.ID == id.String() {
					return true
				}
			}
			return false
		}
		// One or the other, whatever the timing: listed, or hung up on.
		eventually(t, "the connection to be kept or refused", func() bool {
			select {
			case <-gone:
				return true
			default:
				return listed()
			}
		})
		if listed() {
			kept++
		}
	}
	return kept
}

// TestConfigValidateLinkCaps checks that the link caps and the log rate
// are validated, each with an error that names it.
func TestConfigValidateLinkCaps(t *testing.T) {
	if err := node.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name  string
		tweak func(*node.Config)
		want  string
	}{
		{"no peers allowed", func(c *node.Config) { c.MaxPeers = 0 }, "max peers"},
		{"more dials than the cap", func(c *node.Config) { c.Peers, c.MaxPeers = 9, 8 }, "exceeds max peers"},
		{"no inbound per IP", func(c *node.Config) { c.MaxInboundPerIP = 0 }, "max inbound per IP"},
		{"no log lines", func(c *node.Config) { c.LogRate = 0 }, "log rate"},
	} {
		c := node.DefaultConfig()
		tc.tweak(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestReplacedLinkHandsOverQueuedFrames has the lower id's dial replace
// the higher id's link while frames wait in the old link's send queue
// (the old connection's writes are held back): they must arrive over the
// replacement rather than vanish with the old link. The writer of the old
// link holds the first message when the link goes, and that one may be
// lost; the five queued behind it may not.
func TestReplacedLinkHandsOverQueuedFrames(t *testing.T) {
	t.Parallel()
	keys := keysByID(2)
	var gate *gatedTransport
	m := startMesh(t, [][]int{{1}, {0}}, func(i int, c *node.Config) {
		c.Key = keys[i] // node 0 has the lower id: its dial wins
		if i == 0 {
			gate = newGatedTransport(c.Transport)
			c.Transport = gate
		}
	})
	low, high := m.nodes[0], m.nodes[1]
	// Until the gate opens, the only link is the one the higher id dialed.
	eventually(t, "the higher id's link", func() bool {
		a, b := low.Peers(), high.Peers()
		return len(a) == 1 && !a[0].Outbound && len(b) == 1 && b[0].Outbound
	})
	gate.stallWrites()
	first, err := low.Publish(context.Background(), []byte("held by the old link's writer"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate.blocked:
	case <-time.After(settle):
		t.Fatal("the old link's writer never wrote")
	}
	var queued []string
	for i := range 5 {
		rc, err := low.Publish(context.Background(), fmt.Appendf(nil, "queued %d", i))
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, rc.ID)
	}
	gate.openDials()
	eventually(t, "the lower id's dial to replace the link", func() bool {
		a := low.Peers()
		return len(a) == 1 && a[0].Outbound
	})
	for i, id := range queued {
		if _, ok := high.Receipt(context.Background(), id, settle); !ok {
			t.Fatalf("queued message %d never arrived over the replacement link", i)
		}
	}
	if got := counter(t, low, "gossipmesh_frames_handed_over_total"); got < float64(len(queued)) {
		t.Errorf("frames_handed_over_total = %v, want at least %d", got, len(queued))
	}
	_, ok := high.Receipt(context.Background(), first.ID, 0)
	t.Logf("the message the old writer held arrived: %v", ok)
}

// gatedTransport wraps a node's transport: its dials wait until
// openDials, and once stallWrites is called, writes on the connections it
// accepted block until the connection is closed (signalling blocked the
// first time).
type gatedTransport struct {
	inner   transport.Transport
	dials   chan struct{}
	stall   atomic.Bool
	blocked chan struct{}
	once    sync.Once
}

func newGatedTransport(inner transport.Transport) *gatedTransport {
	return &gatedTransport{inner: inner, dials: make(chan struct{}), blocked: make(chan struct{})}
}

func (g *gatedTransport) openDials()   { close(g.dials) }
func (g *gatedTransport) stallWrites() { g.stall.Store(true) }

func (g *gatedTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	select {
	case <-g.dials:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.inner.Dial(ctx, addr)
}

func (g *gatedTransport) Listen(addr string) (net.Listener, error) {
	ln, err := g.inner.Listen(addr)
	if err != nil {
		return nil, err
	}
	return gatedListener{Listener: ln, g: g}, nil
}

type gatedListener struct {
	net.Listener
	g *gatedTransport
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, g: l.g, closed: make(chan struct{})}, nil
}

type stallConn struct {
	net.Conn
	g         *gatedTransport
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallConn) Write(b []byte) (int, error) {
	if c.g.stall.Load() {
		c.g.once.Do(func() { close(c.g.blocked) })
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
