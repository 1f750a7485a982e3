// Package memnet is an in-process network for tests that run hundreds of
// nodes in one process: addressable listeners, buffered connections with
// deadlines, and faults — cut and heal the link between two hosts, isolate
// a host — in the style of etcd-io/raft's test network helper.
//
// The network's own faults are connection faults: a cut resets the open
// connections and refuses new dials, as a link that is gone does to TCP,
// so that tests exercise the runtime's reconnects and backoff. A silent
// partition, loss or delay with every connection kept up is the fault
// plan's (package fault), applied by each node where its output leaves it
// (node.Node.SetFaults; fault.Plan.NodePlan turns one whole-mesh plan into
// each node's), the same plan and decisions the simulator runs. Both stay,
// because they are different faults.
//
// Each node gets its own Host, a transport.Transport whose dials come from
// that host, so that the network knows which link a connection uses. A
// host's listen addresses are "name:port".
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// Errors a Dial can return.
var (
	ErrRefused     = errors.New("memnet: connection refused")
	ErrUnreachable = errors.New("memnet: host unreachable (link cut)")
)

// Network is one in-memory network. The zero value is not usable; call New.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*listener // by address
	nextPort  map[string]int       // per host, for port 0
	cut       map[[2]string]bool   // host pairs, ordered
	isolated  map[string]bool
	conns     map[*conn]struct{} // dialer ends of live connections
}

// New returns an empty network.
func New() *Network {
	return &Network{
		listeners: make(map[string]*listener),
		nextPort:  make(map[string]int),
		cut:       make(map[[2]string]bool),
		isolated:  make(map[string]bool),
		conns:     make(map[*conn]struct{}),
	}
}

// Host returns the Transport of the host called name. Hosts need no
// registration; the name is what Cut and Isolate refer to.
func (n *Network) Host(name string) *Host { return &Host{net: n, name: name} }

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Cut breaks the link between hosts a and b: their open connections reset
// and new dials between them fail until Heal.
func (n *Network) Cut(a, b string) {
	n.mu.Lock()
	n.cut[pair(a, b)] = true
	victims := n.connsLocked(func(c *conn) bool { return pair(c.localHost, c.remoteHost) == pair(a, b) })
	n.mu.Unlock()
	for _, c := range victims {
		c.reset()
	}
}

// Heal restores the link between a and b (an isolated host stays isolated).
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	delete(n.cut, pair(a, b))
	n.mu.Unlock()
}

// Isolate cuts host from every other host until Rejoin.
func (n *Network) Isolate(host string) {
	n.mu.Lock()
	n.isolated[host] = true
	victims := n.connsLocked(func(c *conn) bool { return c.localHost == host || c.remoteHost == host })
	n.mu.Unlock()
	for _, c := range victims {
		c.reset()
	}
}

// Rejoin ends the isolation of host.
func (n *Network) Rejoin(host string) {
	n.mu.Lock()
	delete(n.isolated, host)
	n.mu.Unlock()
}

// HealAll removes every cut and isolation.
func (n *Network) HealAll() {
	n.mu.Lock()
	clear(n.cut)
	clear(n.isolated)
	n.mu.Unlock()
}

// Conns returns how many open connections join hosts a and b, in either
// direction. Tests use it to check that a pair keeps one connection.
func (n *Network) Conns(a, b string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.connsLocked(func(c *conn) bool { return pair(c.localHost, c.remoteHost) == pair(a, b) }))
}

// connsLocked returns the dialer ends of the live connections that match.
// One end is enough: both ends share their two streams, so resetting one
// resets the connection.
func (n *Network) connsLocked(match func(*conn) bool) []*conn {
	var out []*conn
	for c := range n.conns {
		if match(c) {
			out = append(out, c)
		}
	}
	return out
}

func (n *Network) reachableLocked(a, b string) bool {
	return !n.cut[pair(a, b)] && !n.isolated[a] && !n.isolated[b]
}

// Host is one host's view of the network; it implements transport.Transport.
type Host struct {
	net  *Network
	name string
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Listen implements transport.Transport. addr must be "name:port" with this
// host's name; port 0 picks a free one.
func (h *Host) Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memnet listen %q: %w", addr, err)
	}
	if host != h.name {
		return nil, fmt.Errorf("memnet listen %q: host %q cannot listen on %q", addr, h.name, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("memnet listen %q: bad port", addr)
	}
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if p == 0 {
		for {
			n.nextPort[host]++
			p = 10000 + n.nextPort[host]
			if _, taken := n.listeners[net.JoinHostPort(host, strconv.Itoa(p))]; !taken {
				break
			}
		}
	}
	addr = net.JoinHostPort(host, strconv.Itoa(p))
	if _, taken := n.listeners[addr]; taken {
		return nil, fmt.Errorf("memnet listen %q: address in use", addr)
	}
	l := &listener{net: n, host: host, addr: Addr(addr), accept: make(chan *conn), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// Dial implements transport.Transport.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n := h.net
	n.mu.Lock()
	l := n.listeners[addr]
	if l == nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("memnet dial %s: %w", addr, ErrRefused)
	}
	if !n.reachableLocked(h.name, l.host) {
		n.mu.Unlock()
		return nil, fmt.Errorf("memnet dial %s from %s: %w", addr, h.name, ErrUnreachable)
	}
	n.nextPort[h.name]++
	local := net.JoinHostPort(h.name, strconv.Itoa(40000+n.nextPort[h.name]%20000))
	d, a := newConnPair(h.name, local, l.host, string(l.addr))
	n.conns[d] = struct{}{}
	n.mu.Unlock()

	// Forget the connection once both ends are closed.
	var once sync.Once
	forget := func(*conn) {
		once.Do(func() {
			n.mu.Lock()
			delete(n.conns, d)
			n.mu.Unlock()
		})
	}
	// One closed end is enough to make the connection useless, so it stops
	// counting as soon as either end closes.
	d.onClose, a.onClose = forget, forget

	select {
	case l.accept <- a:
		return d, nil
	case <-l.done:
	case <-ctx.Done():
	}
	d.Close()
	a.Close()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memnet dial %s: %w", addr, err)
	}
	return nil, fmt.Errorf("memnet dial %s: %w", addr, ErrRefused)
}

type listener struct {
	net       *Network
	host      string
	addr      Addr
	accept    chan *conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.net.mu.Lock()
		delete(l.net.listeners, string(l.addr))
		l.net.mu.Unlock()
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }
