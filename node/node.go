// Package node is gossipmesh's runtime: it drives one gossip.Protocol (the
// gossip core unless Config.NewProtocol says otherwise) over a
// Transport (real TCP, or memnet in tests) and serves it to the HTTP API.
//
// One goroutine, the node loop, owns the core and the peer table. Readers
// (one per connection) decode frames and queue them to the loop; the loop
// feeds the core whatever is queued, as one batch, encodes each outgoing
// message once and shares the bytes between the peers' send queues; one
// writer per connection coalesces its queue into one buffered flush. A full
// send queue drops the frame and counts it: a slow peer never blocks the
// loop, and the loop never waits on a socket.
package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/membership"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// maxBatch bounds how many queued frames the loop feeds the core before it
// writes their sends, so that the first frames of a burst are not held
// back by the last.
const maxBatch = 256

// Node is one running peer. Create it with New, then call Run.
type Node struct {
	cfg   Config
	id    wire.NodeID
	idStr string
	ln    net.Listener
	addr  string
	key   *identity.Key
	// keyPath is the file the key came from ("" for a key given in
	// Config.Key or made for this run); keyCreated says New wrote it.
	keyPath    string
	keyCreated bool
	log        *slog.Logger
	m          *metrics
	pid        int

	// Owned by the loop goroutine. core is proto inside the adversary
	// wrapper (adversary.go), honest unless told otherwise; the loop
	// drives core, and asks proto what only it can say (its counters).
	core    gossip.Protocol
	proto   gossip.Protocol
	guard   *score.Guard // around proto, when scoring is on (bans.go); else nil
	own     ownBudget    // the rate budget of this node's own publishes (origin.go)
	limits  map[*peer]*linkLimit
	out     gossip.Output
	batch   []inbound
	logs    []pendingLog          // receipt lines of the current batch
	logInfo bool                  // whether info lines are wanted, read once per batch
	links   map[wire.NodeID]*peer // writes also hold linksMu
	// standby holds at most one duplicate link per node id, neither read
	// nor written, until the live link goes down or it expires (addLink).
	// Writes also hold linksMu.
	standby map[wire.NodeID]*peer
	// inbound counts the inbound links, live and standby, in all and per
	// remote host, for the peer caps. Writes also hold linksMu, so that
	// acceptLoop can refuse an excess connection before its handshake.
	inbound       int
	inboundByHost map[string]int
	inboundMax    int // MaxPeers less the candidates this node dials

	// Also the loop's: what letLateCopiesIn needs.
	poll       *netPoller
	pollBroken bool
	nearest    map[wire.NodeID]nearest // per origin, see learnNearest
	waited     bool                    // the current batch let late copies in
	tally      frameTally              // frames per message, applied at each flush

	linksMu  sync.RWMutex // guards links against readers outside the loop
	receipts *receiptStore
	mem      *memState // byte budgets: inbox, send queues, publish backpressure
	faults   *faults   // the fault plan and the frames it holds (faults.go)
	bans     *banList  // peers the score banned (bans.go)
	scoreReq chan chan scoreView
	// scoreCopy is the loop's latest copy of the peers' scores, which
	// GET /peers reads (bans.go); guarded by scoreMu.
	scoreMu   sync.Mutex
	scoreCopy scoreView
	adv       *advState // the adversary wrapping the guard or proto (adversary.go)
	ms        *members  // the membership (membership.go); nil when off
	subs      subscribers
	dials     []string // candidates chosen to dial, fixed at New

	inbox chan inbound
	regs  chan regRequest
	downs chan *peer
	pubs  chan *pubRequest
	// handshakes holds a token per inbound connection still in its
	// handshake, bounding what unidentified peers can cost.
	handshakes chan struct{}
	stop       chan struct{}   // closed when Run is shutting down
	runCtx     context.Context // cancelled with stop, for dials
	wg         sync.WaitGroup
	runMu      sync.Mutex
	ran        bool
	closed     chan struct{} // closed when Run has returned
}

// newGossipCore is the default Config.NewProtocol.
func newGossipCore(cfg gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error) {
	return gossip.New(cfg, id, rng)
}

// frame is what the loop steps the protocol with.
func (in *inbound) frame() gossip.Frame {
	if in.ctl != nil {
		return gossip.Frame{Ctl: in.ctl}
	}
	return gossip.Frame{Msg: &in.msg}
}

// inbound is one decoded frame and the link it came over: a message, or a
// control frame when ctl is set.
type inbound struct {
	from *peer
	msg  wire.Message
	ctl  *wire.Control
	mem  *memberInbound // a membership frame (membership.go)
	at   int64          // when the reader queued it, Unix ns
	size int64          // inbound budget it holds, released once the loop handled it
	// newcomer: the budget was taken in the share of links that had not
	// yet delivered a message.
	newcomer bool
}

type regRequest struct {
	p     *peer
	reply chan *peer // the link that is live for p.id afterwards (p or another)
}

type pubRequest struct {
	ctx    context.Context // a request held back by full queues ends with it
	bodies [][]byte
	ids    []wire.MsgID
	at     []int64
	err    error
	done   chan struct{}
}

// New validates cfg, binds the gossip listener (unless cfg.Listener is set)
// and picks the peers to dial. Call Run to start it; Run also releases the
// listener.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, keyPath, keyCreated, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.ID != 0 && cfg.ID != key.ID() {
		return nil, fmt.Errorf("node: id %v is not the id %v of the key in %s: a node's id derives from its key", cfg.ID, key.ID(), keyPath)
	}
	id := key.ID()
	seed := cfg.Seed
	if seed == 0 {
		seed = randomUint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = cfg.Transport.Listen(cfg.Listen); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	addr := ln.Addr().String()
	// Every connection gets a hello of its own (its nonce is fresh); check
	// once that this node's address and protocols make one.
	if _, err := wire.AppendHello(nil, wire.Hello{ListenAddr: addr, Protocols: cfg.Protocols}); err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	// Number this boot's publishes from its wall-clock start, so that a
	// node restarted with its id never reuses a sequence number (and with
	// it a message id) of an earlier boot, as long as that boot published
	// fewer messages than nanoseconds went by before the restart.
	gcfg := cfg.Gossip
	if gcfg.SeqBase == 0 {
		gcfg.SeqBase = uint64(time.Now().UnixNano())
	}
	// The core signs this node's publishes with its key, and checks what
	// it receives against the keys the messages carry.
	if gcfg.Signing == gossip.SigningStrict && gcfg.Auth == nil {
		if id != key.ID() {
			ln.Close()
			return nil, fmt.Errorf("node: id %v is not its key's id %v, and strict signing needs the id the key proves", id, key.ID())
		}
		gcfg.Auth = identity.NewMessageAuth(key)
	}
	newProto := cfg.NewProtocol
	if newProto == nil {
		newProto = newGossipCore
	}
	proto, err := newProto(gcfg, id, rng)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	// The protocol the loop drives: the core, inside the guard when
	// scoring is on, inside the adversary wrapper (honest unless told).
	inner := proto
	var guard *score.Guard
	if cfg.Scoring != nil {
		if guard, err = newGuard(proto, cfg.Scoring); err != nil {
			ln.Close()
			return nil, fmt.Errorf("node: %w", err)
		}
		inner = guard
	}
	n := &Node{
		cfg:        cfg,
		id:         id,
		key:        key,
		keyPath:    keyPath,
		keyCreated: keyCreated,
		idStr:      id.String(),
		ln:         ln,
		addr:       addr,
		m:          newMetrics(id),
		pid:        os.Getpid(),
		proto:      proto,
		guard:      guard,
		own:        newOwnBudget(gcfg),
		limits:     make(map[*peer]*linkLimit),
		bans:       newBanList(),
		scoreReq:   make(chan chan scoreView),
		links:      make(map[wire.NodeID]*peer),
		receipts:   newReceiptStore(cfg.Receipts, cfg.budgets().receipts),
		mem:        newMemState(cfg),
		inbox:      make(chan inbound, cfg.InboxSize),
		regs:       make(chan regRequest),
		downs:      make(chan *peer),
		pubs:       make(chan *pubRequest),
		handshakes: make(chan struct{}, cfg.MaxHandshakes),
		stop:       make(chan struct{}),
		closed:     make(chan struct{}),
	}
	// Every driver's logger gets the rate limit, so that no peer can make
	// a node flood its log; the receipt lines always pass.
	limited := newRateLimitHandler(cfg.Logger.Handler(), cfg.LogRate, time.Second, isReceiptLine, n.m.logSuppressed.Inc)
	n.log = slog.New(limited).With("node", id.String())
	n.m.registerMemory(n)
	n.faults = newFaults(cfg.Faults, seed, n.m.reg)
	n.adv = newAdvState(n, inner, cfg.Adversary, seed)
	n.core = n.adv.node
	n.dials = choosePeers(rng, cfg.Candidates, cfg.Peers, addr, cfg.Listen)
	n.standby = make(map[wire.NodeID]*peer)
	n.inboundByHost = make(map[string]int)
	n.inboundMax = cfg.MaxPeers - len(n.dials)
	if n.ms, err = newMembers(cfg.Membership, id, addr, seed, cfg.Candidates, n.dials, n.m.reg); err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	return n, nil
}

// loadKey returns the node's key: Config.Key, else the one in DataDir
// (made and saved there if there is none yet), else a fresh one for this
// run. path is the key file, if any; created says this call wrote it.
func loadKey(cfg Config) (key *identity.Key, path string, created bool, err error) {
	switch {
	case cfg.Key != nil:
		return cfg.Key, "", false, nil
	case cfg.DataDir != "":
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", false, fmt.Errorf("node: data directory: %w", err)
		}
		path = filepath.Join(cfg.DataDir, KeyFileName)
		if key, created, err = identity.LoadOrCreate(path); err != nil {
			return nil, "", false, fmt.Errorf("node: %w", err)
		}
		return key, path, created, nil
	}
	if key, err = identity.Generate(nil); err != nil {
		return nil, "", false, fmt.Errorf("node: %w", err)
	}
	return key, "", false, nil
}

// KeyPath is the file the node's key was loaded from or saved to (in
// Config.DataDir), or "" for a key given in Config.Key or made for this
// run only. KeyCreated reports whether New made and saved it.
func (n *Node) KeyPath() string { return n.keyPath }

// KeyCreated reports whether New generated the key and saved it at
// KeyPath, rather than loading one that was there.
func (n *Node) KeyCreated() bool { return n.keyCreated }

// choosePeers picks k of the candidates at random, skipping this node's own
// addresses and repeats.
func choosePeers(rng *rand.Rand, candidates []string, k int, self ...string) []string {
	seen := make(map[string]bool, len(candidates))
	for _, s := range self {
		seen[s] = true
	}
	var pool []string
	for _, c := range candidates {
		if c != "" && !seen[c] {
			seen[c] = true
			pool = append(pool, c)
		}
	}
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	return pool[:min(k, len(pool))]
}

func randomUint64() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("node: crypto/rand: %v", err)) // cannot happen on Linux
	}
	return binary.LittleEndian.Uint64(b[:])
}

// ID returns the node's id.
func (n *Node) ID() wire.NodeID { return n.id }

// Addr returns the gossip address the node listens on and announces.
func (n *Node) Addr() string { return n.addr }

// Dials returns the candidate addresses this node chose to dial.
func (n *Node) Dials() []string { return append([]string(nil), n.dials...) }

// Run serves until ctx ends, then closes every connection and returns once
// every goroutine it started has stopped. It can be called once.
func (n *Node) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.ran {
		n.runMu.Unlock()
		return errors.New("node: Run called twice")
	}
	n.ran = true
	n.runMu.Unlock()
	defer close(n.closed)
	runCtx, cancelRun := context.WithCancel(context.Background())
	n.runCtx = runCtx

	n.log.Info("node up", "gossip", n.addr, "dials", n.dials)
	if n.ms != nil {
		for _, a := range n.dials {
			n.ms.core.DialStarted(time.Now().UnixNano(), membership.Entry{Addr: a})
		}
	}
	n.wg.Add(2)
	go n.acceptLoop()
	go n.eclipseLoop()
	for _, a := range n.dials {
		n.wg.Add(1)
		go n.dialLoop(a)
	}
	n.loop(ctx)

	// Shutdown: stop accepting, tell every goroutine, close every link.
	close(n.stop)
	cancelRun()
	n.ln.Close()
	n.linksMu.Lock()
	for _, p := range n.links {
		p.close(errShutdown)
	}
	for _, p := range n.standby {
		p.close(errShutdown)
	}
	n.linksMu.Unlock()
	n.wg.Wait()
	n.m.peers.Set(0)
	n.subs.closeAll()
	n.log.Info("node stopped")
	return nil
}

// Done is closed once Run has returned.
func (n *Node) Done() <-chan struct{} { return n.closed }

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			select {
			case <-n.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, don't spin.
			n.log.Warn("accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-n.stop:
				return
			}
			continue
		}
		if err := n.inboundCapErr(hostOf(conn.RemoteAddr())); err != nil {
			// Refused before the handshake costs a read buffer; addLink
			// checks again, for the connections already in their handshake.
			// Counted before the close: whoever sees the hang-up sees it
			// counted.
			n.m.rejected.WithLabelValues(reasonOf(err)).Inc()
			conn.Close()
			n.log.Warn("dropping connection", "peer", conn.RemoteAddr().String(), "err", err)
			continue
		}
		select {
		case n.handshakes <- struct{}{}:
		default:
			// Every handshake slot is taken: a flood of connections that
			// do not speak must not cost a read buffer each.
			n.m.rejected.WithLabelValues("busy").Inc()
			conn.Close()
			n.log.Warn("dropping connection", "peer", conn.RemoteAddr().String(), "err", fmt.Sprintf("%d handshakes already in progress", cap(n.handshakes)))
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.serveConn(conn, false, 0)
		}()
	}
}

// serveConn handshakes conn, registers the link and reads from it until it
// fails. It returns the link that is live for that peer once this one is
// done (nil if none), so a dialer can wait on it rather than redial. want,
// if not zero, is the node id the connection was dialed for.
func (n *Node) serveConn(conn net.Conn, outbound bool, want wire.NodeID) (*peer, error) {
	// Shutdown must not wait out the handshake timeout of a silent peer.
	unhook := context.AfterFunc(n.runCtx, func() { conn.Close() })
	p, err := n.handshake(conn, outbound, want)
	unhook()
	if !outbound {
		<-n.handshakes // the slot acceptLoop took
	}
	if err != nil {
		self := errors.Is(err, errSelf)
		if !self {
			n.m.rejected.WithLabelValues(reasonOf(err)).Inc() // before the close, as in acceptLoop
		}
		conn.Close()
		if !self {
			n.log.Warn("dropping connection", "peer", conn.RemoteAddr().String(), "err", err)
		}
		return nil, err
	}
	live := n.register(p)
	if live != p && (live == nil || p.promote == nil || !n.awaitPromotion(p)) {
		// Another link to the same node stays; this one was closed.
		return live, nil
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.writeLoop(p)
	}()
	err = n.readLoop(p)
	p.close(err)
	select {
	case n.downs <- p:
	case <-n.stop:
	}
	n.logDown(p)
	return p.next.Load(), nil
}

// awaitPromotion holds p, a link in standby, until the loop promotes it to
// live (true) or the handshake timeout passes (false; p is closed and the
// loop forgets it). A standby that is promoted was the other end of a
// simultaneous dial, or a restarted peer; one that expires is most likely
// a claim to be a node that is already linked.
func (n *Node) awaitPromotion(p *peer) bool {
	t := time.NewTimer(n.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case <-p.promote:
		return true
	case <-t.C:
		err := fmt.Errorf("%w; held in standby for %v, the live link stayed up", errDuplicate, n.cfg.HandshakeTimeout)
		p.close(err)
		n.m.rejected.WithLabelValues(reasonOf(err)).Inc()
		n.log.Warn("dropping duplicate link", "peer", p.conn.RemoteAddr().String(), "peer_id", p.id.String(), "err", err)
	case <-p.done:
	case <-n.stop:
		p.close(errShutdown)
		return false
	}
	// The loop may have promoted p meanwhile; either way it forgets p now.
	select {
	case n.downs <- p:
	case <-n.stop:
	}
	return false
}

// hostOf is the host part of a remote address: the IP for TCP, the host
// name on memnet.
func hostOf(a net.Addr) string {
	s := a.String()
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// inboundCapErr reports whether one more inbound link from host would pass
// a cap. Safe outside the loop.
func (n *Node) inboundCapErr(host string) error {
	n.linksMu.RLock()
	total, fromHost := n.inbound, n.inboundByHost[host]
	n.linksMu.RUnlock()
	switch {
	case total >= n.inboundMax:
		return fmt.Errorf("%w: %d inbound links already (max peers %d, less %d own dials)", errPeerCap, total, n.cfg.MaxPeers, len(n.dials))
	case fromHost >= n.cfg.MaxInboundPerIP:
		return fmt.Errorf("%w: %d inbound links from %s already (max %d per IP)", errIPCap, fromHost, host, n.cfg.MaxInboundPerIP)
	}
	return nil
}

// capErr reports whether holding p, live or in standby, would pass a cap.
// The node's own dials are always allowed.
func (n *Node) capErr(p *peer) error {
	if p.outbound {
		return nil
	}
	return n.inboundCapErr(hostOf(p.conn.RemoteAddr()))
}

// countInbound adds delta to the inbound counts if p is inbound. The loop
// calls it whenever an inbound link enters or leaves the link table or the
// standby set.
func (n *Node) countInbound(p *peer, delta int) {
	if p.outbound {
		return
	}
	host := hostOf(p.conn.RemoteAddr())
	n.linksMu.Lock()
	n.inbound += delta
	if c := n.inboundByHost[host] + delta; c > 0 {
		n.inboundByHost[host] = c
	} else {
		delete(n.inboundByHost, host)
	}
	n.linksMu.Unlock()
}

func (n *Node) logDown(p *peer) {
	// p.err is the first reason recorded; the read error may be a result.
	err := p.err
	if benign(err) {
		n.log.Info("peer down", "peer", p.conn.RemoteAddr().String(), "peer_id", p.id.String(), "addr", p.addr, "reason", fmt.Sprint(err))
		return
	}
	n.m.rejected.WithLabelValues(reasonOf(err)).Inc()
	n.log.Warn("dropping peer", "peer", p.conn.RemoteAddr().String(), "peer_id", p.id.String(), "addr", p.addr, "err", err)
}

// register hands a handshaken link to the loop and returns the link the
// loop keeps for that node.
func (n *Node) register(p *peer) *peer {
	reply := make(chan *peer, 1)
	select {
	case n.regs <- regRequest{p: p, reply: reply}:
	case <-n.stop:
		p.close(errShutdown)
		return nil
	}
	select {
	case live := <-reply:
		return live
	case <-n.stop:
		p.close(errShutdown)
		return nil
	}
}

// Registry is the node's own Prometheus registry, for GET /metrics.
func (n *Node) Registry() *prometheus.Registry { return n.m.reg }
