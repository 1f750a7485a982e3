package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"gossipmesh/adversary"
	"gossipmesh/fault"
	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/membership"
	"gossipmesh/score"
	"gossipmesh/transport"
	"gossipmesh/transport/tcp"
	"gossipmesh/wire"
)

// Config tunes a Node. Start from DefaultConfig and change what you need;
// New calls Validate.
type Config struct {
	// ID is the node id the caller expects. The id is never chosen: it
	// derives from the public key (identity.IDOf), and peers learn it from
	// the key the node proves it holds at every handshake. Zero (the
	// default) takes the key's id; any other value must be the key's id,
	// and Validate (for Key) or New (for a key loaded from DataDir)
	// refuses one that is not. Without Key or DataDir, the fresh key could
	// not match, so Validate refuses a non-zero ID.
	ID wire.NodeID
	// Key is the node's ed25519 key pair (identity.Key), which signs what
	// the node publishes and proves its id to peers. Nil (the default):
	// the key in DataDir, or, without one, a fresh key for this run only.
	Key *identity.Key
	// DataDir is the directory where a node without Key keeps its key, as
	// KeyFileName, so that a restart keeps the identity: New creates the
	// directory (0700) and the key (0600) if they are not there
	// (identity.LoadOrCreate). Default empty: no directory, and a node
	// without Key gets a fresh identity every run (what in-process tests
	// want; `mesh node` gives every node a data directory).
	DataDir string
	// Seed drives every random choice the node makes: which candidates it
	// dials and the core's router. The same seed, candidates and id give the
	// same choices. Zero (the default) picks a random seed at New.
	Seed uint64

	// Listen is the gossip address to bind ("127.0.0.1:0" picks a port).
	// Default "127.0.0.1:7001", the lesson's first port. Ignored when
	// Listener is set.
	Listen string
	// Listener, when set, is an already-bound gossip listener to serve
	// instead of binding Listen: a launcher binds every port itself and
	// passes them down (see tcp.FileListener), which avoids port races.
	// The node closes it on shutdown. Default nil.
	Listener net.Listener
	// Transport dials peers and, without Listener, binds Listen. Default
	// tcp.Transport{}: real sockets. Tests pass a memnet host.
	Transport transport.Transport
	// HTTPAddr is only reported by Health, so tools can find the API.
	// Default empty.
	HTTPAddr string

	// Candidates are the gossip addresses this node may dial. Its own
	// address is skipped. Default none: the node only accepts.
	Candidates []string
	// Peers is how many candidates the node dials, picked at random with
	// the seeded rand. Links are undirected, so the node's degree is this
	// plus whoever dials it. Default 3, the lesson's.
	Peers int

	// Gossip configures the protocol core: strategy, fanout, seen-cache,
	// and MaxBody, the largest message body (default 1 MiB). The frame
	// limit on every connection is Gossip.MaxBody + wire.FrameOverhead.
	// Default gossip.DefaultConfig() but for Plumtree's IHAVE interval,
	// RuntimeIHaveInterval (50 ms).
	// Its OriginRate, off in the core's defaults, is DefaultOriginRate
	// here: the node also holds its own publishes to it (origin.go).
	Gossip gossip.Config

	// Receipts bounds the receipt store in entries; the oldest receipt is
	// forgotten first. A receipt without its body costs about 150 bytes
	// (ring slot and index entry), so the default of 65,536 costs about
	// 10 MiB: some 13 s of traffic at the 5,000 msgs/s a node sees in a
	// 50,000 deliveries/s mesh of 10.
	Receipts int
	// SendQueue bounds each peer's send queue in frames, besides its bytes
	// (PeerSendQueueBytes). The queue grows on demand, so an idle peer
	// costs nothing. Default 8,192: a second and a half of traffic at
	// 5,000 msgs/s, far more than a healthy peer ever lags.
	SendQueue int
	// InboxSize is the queue between connection readers and the node loop,
	// in frames, besides its bytes (InboxBytes). A full inbox makes
	// readers wait, which pushes back on the senders through TCP. Default
	// 4,096.
	InboxSize int

	// Memory budget. Every queue and store that a peer or a client can
	// fill is bounded in bytes; the shares below add up to less than
	// MemoryBudget, and what is left covers what is bounded by count
	// (receipts, seen-cache, connection buffers) and the Go runtime. A
	// share left at zero is derived from MemoryBudget.

	// MemoryBudget is the memory one node may use, in bytes. The node
	// process sets the Go runtime's soft memory limit to 7/8 of it (unless
	// GOMEMLIMIT is set; see SetProcessMemoryLimit), so garbage cannot
	// double the heap. Default 256 MiB.
	MemoryBudget int64
	// InboxBytes bounds the frames read from peers and not yet handled by
	// the node loop, over all connections. A reader reserves a frame's
	// size as soon as its length prefix is read, before it reads or
	// allocates the payload; when the budget is spent it stops reading
	// (TCP pushes back on the sender) until the loop has handled earlier
	// frames. A quarter is kept for frames of up to 64 KiB, so that peers
	// that start large frames and never finish them cannot hold up every
	// other peer's small ones, and links that have not yet delivered a
	// message share at most half of each part; the other three quarters
	// must hold one maximal frame. Default MemoryBudget/8 (32 MiB).
	InboxBytes int64
	// SendQueueBytes bounds the frames queued to all peers together.
	// Frames are shared between peers but each queued copy counts, so this
	// over-counts, never under-counts. A forwarded frame that does not fit
	// is dropped and counted. Default MemoryBudget/4 (64 MiB).
	SendQueueBytes int64
	// PeerSendQueueBytes bounds one peer's send queue. Own publishes pause
	// while any peer's queue is above half of it (or the total above half
	// of SendQueueBytes), so the node drops none of its own messages for a
	// peer that keeps up; it must hold at least two maximal frames for
	// that. A pause lasts at most MaxQueueDelay: a queue still above the
	// mark is then passed over until it drains. Default MemoryBudget/16
	// (16 MiB).
	PeerSendQueueBytes int64
	// ReceiptBytes bounds the message bodies the receipt store keeps. When
	// it is spent the oldest bodies go first and their receipts stay,
	// marked body_evicted. Default MemoryBudget/4 (64 MiB).
	ReceiptBytes int64
	// MaxQueueDelay is how long a frame may wait in the inbox or in a
	// send queue: an older one is dropped and counted as stale. It bounds
	// how long after its first copy another copy of a message can still
	// reach the core. Default 1 s.
	MaxQueueDelay time.Duration

	// Protocols are the (protocol, version) pairs this node's hello
	// announces; a peer that shares none is refused at the handshake
	// (rejected_total{reason="no_common_protocol"}). Default nil: this
	// build's, wire.Protocols(). Narrow it to keep a mesh on older
	// versions while its nodes are upgraded.
	Protocols []wire.ProtocolVersion

	// NewProtocol builds the protocol the node runs, from the node's
	// gossip config (Gossip, with SeqBase set for this boot), id and
	// seeded source. The runtime drives only the gossip.Protocol
	// interface, so another protocol runs on it unchanged. Default nil:
	// the gossip core, gossip.New.
	NewProtocol func(cfg gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error)
	// Egress, when set, sees every frame the node sends, just before it
	// is queued to its link, and drops those it returns false for: the
	// one place a node's output leaves it, where faults and tracers hook
	// in, as in the simulator and the test networks. Called on the node
	// loop: it must not block. Default nil (everything passes).
	Egress gossip.Egress
	// Faults is the fault plan the node starts with: loss, delay and cut
	// peers on its own links, applied after Egress (see faults.go; the
	// node API's PUT /faults replaces it at run time). Default none.
	Faults fault.Plan

	// Adversary is the misbehaviour the node starts with (package
	// adversary: blackhole, tamper, forge, replay, spam, delay, censor,
	// liar, eclipse), for watching the defences work; PUT /adversary
	// changes it at run time. The protocol always runs inside the
	// adversary wrapper, which passes everything through while no mode
	// is set. Default none: honest.
	Adversary adversary.Modes

	// Membership, when set, runs the membership (package membership):
	// heartbeats and suspicion on idle links, active and passive views
	// with degree bounds, peer exchange, and dials from the passive view
	// to replace lost peers. Booted peers (Candidates) seed the views; a
	// booted peer's redial loop redials only while the node is below the
	// high bound. Default nil: off (a node still answers PINGs).
	Membership *membership.Config

	// HandshakeTimeout bounds the whole handshake, from connect to the
	// peer's verified proof (hello and proof each way); a connection that
	// never speaks, or never proves its key, is closed after it. Default
	// 5 s.
	HandshakeTimeout time.Duration
	// StallTimeout closes a connection whose peer started a frame and then
	// sent nothing more for this long, or that stopped reading what we
	// write. An idle peer between frames is never timed out. Default 10 s.
	StallTimeout time.Duration
	// MaxHandshakes bounds the inbound connections in their handshake at
	// once; more are closed on arrival. Each holds a 64 KiB read buffer
	// until it says who it is, so this bounds what a flood of silent
	// connections costs: 4 MiB at the default of 64.
	MaxHandshakes int
	// DialTimeout bounds one dial. Default 3 s.
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait before
	// redialing a chosen peer. Defaults 50 ms and 5 s: quick enough that a
	// restarted peer is back within seconds, slow enough that a dead one
	// costs a dial every few seconds.
	BackoffMin time.Duration
	BackoffMax time.Duration

	// Link caps: what a node holds for others, whatever they claim to be.
	// A refused connection is closed, counted in rejected_total and logged;
	// a live link is never evicted to make room.

	// MaxPeers caps the node's links, live ones and duplicates held in
	// standby together. The node's own dials (Peers) are always allowed:
	// inbound links get what is left, MaxPeers minus the candidates it
	// dials. With the defaults a link costs about 140 KiB before anything
	// is queued on it (a 64 KiB read buffer, a 64 KiB write buffer and two
	// goroutines; the send queue grows on demand, within its byte budget),
	// so the default of 128 bounds that part of a node's memory at about
	// 18 MiB.
	MaxPeers int
	// MaxInboundPerIP caps the inbound links (live and standby) from one
	// source IP, so a single host cannot take every inbound slot. Every
	// node of a local mesh is on 127.0.0.1: the default of 64 is far above
	// what a node of a 1,000-node local mesh with 3 peers each receives
	// (its in-degree, about 3 on average and rarely above 12); `mesh up`
	// raises it, and MaxPeers, for denser meshes.
	MaxInboundPerIP int
	// Scoring, when set, scores every peer and shuts out the ones that
	// misbehave (package score): its Guard wraps the protocol, so the
	// score sees exactly what the core does. Below the thresholds a peer
	// loses its eager link, then gossip, then every frame (graylisted),
	// then its link: it is banned for Scoring.BanDuration, refused at the
	// handshake and not dialed (GET /peers/banned). Default
	// score.DefaultParams(); nil turns scoring off (mesh node
	// --scoring=false), for experiments that show what it prevents.
	Scoring *score.Params
	// PeerFrameRate and PeerByteRate bound what one link may send this
	// node, in frames and bytes a second, with a second's worth of burst:
	// a frame over either is dropped before the protocol sees it,
	// counted (rejected_total{reason="rate_limited"}) and, with scoring
	// on, counted against the peer (score.Params.RateLimitedPerPenalty),
	// so that a sustained flooder is banned. Defaults 100,000 frames/s and
	// 256 MiB/s: three times the busiest link measured in a 10-node
	// benchmark (README, "Peer scoring"). 0 turns a limit off.
	PeerFrameRate int
	PeerByteRate  int64

	// LogRate bounds how many lines per second the node logs for each
	// distinct message (and level); the rest are counted and reported in
	// one "suppressed similar log lines" line when the second is over, so a
	// flood of bad connections cannot flood the log. The receipt lines
	// ("delivered", "published") are never limited. Default 10.
	LogRate int

	// Logger receives one line per first receipt and per published message,
	// and a warning per misbehaving peer. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:7001",
		Transport:        tcp.Transport{},
		Peers:            3,
		Gossip:           runtimeGossip(),
		Receipts:         65_536,
		SendQueue:        8_192,
		InboxSize:        4_096,
		MemoryBudget:     DefaultMemoryBudget,
		MaxQueueDelay:    time.Second,
		HandshakeTimeout: 5 * time.Second,
		MaxHandshakes:    64,
		StallTimeout:     10 * time.Second,
		DialTimeout:      3 * time.Second,
		BackoffMin:       50 * time.Millisecond,
		BackoffMax:       5 * time.Second,
		MaxPeers:         128,
		MaxInboundPerIP:  64,
		LogRate:          10,
		Scoring:          defaultScoring(),
		PeerFrameRate:    100_000,
		PeerByteRate:     256 << 20,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// defaultScoring is the default Config.Scoring: a fresh copy per Config,
// so that changing one node's parameters changes no other's.
func defaultScoring() *score.Params {
	p := score.DefaultParams()
	return &p
}

// DefaultMemoryBudget is the default Config.MemoryBudget: 256 MiB.
const DefaultMemoryBudget = 256 << 20

// MaxFrame is the frame limit that goes with the configured body limit.
func (c Config) MaxFrame() int { return c.Gossip.MaxBody + wire.FrameOverhead }

// selfID is the node's id as far as the config alone tells: ID, else the
// key's, else 0 (a key New has yet to load or make).
func (c Config) selfID() wire.NodeID {
	if c.ID == 0 && c.Key != nil {
		return c.Key.ID()
	}
	return c.ID
}

// KeyFileName is the name of the key file a node keeps in its DataDir.
const KeyFileName = "node.key"

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if err := c.Gossip.ValidateSettings(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if c.Membership != nil {
		if err := c.Membership.Validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	switch {
	case c.Listener == nil && c.Listen == "":
		return errors.New("node: no listen address and no listener")
	case c.Transport == nil:
		return errors.New("node: no transport")
	case c.Logger == nil:
		return errors.New("node: no logger (use slog.DiscardHandler to discard)")
	case c.Peers < 0:
		return fmt.Errorf("node: peers must not be negative, got %d", c.Peers)
	case c.Receipts < 1:
		return fmt.Errorf("node: receipts must be at least 1, got %d", c.Receipts)
	case c.SendQueue < 1:
		return fmt.Errorf("node: send queue must be at least 1, got %d", c.SendQueue)
	case c.InboxSize < 1:
		return fmt.Errorf("node: inbox size must be at least 1, got %d", c.InboxSize)
	case c.MaxHandshakes < 1:
		return fmt.Errorf("node: max handshakes must be at least 1, got %d", c.MaxHandshakes)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("node: handshake timeout must be positive, got %v", c.HandshakeTimeout)
	case c.StallTimeout <= 0:
		return fmt.Errorf("node: stall timeout must be positive, got %v", c.StallTimeout)
	case c.DialTimeout <= 0:
		return fmt.Errorf("node: dial timeout must be positive, got %v", c.DialTimeout)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("node: backoff must satisfy 0 < min <= max, got %v..%v", c.BackoffMin, c.BackoffMax)
	case c.MaxPeers < 1:
		return fmt.Errorf("node: max peers must be at least 1, got %d", c.MaxPeers)
	case c.Peers > c.MaxPeers:
		return fmt.Errorf("node: peers %d exceeds max peers %d", c.Peers, c.MaxPeers)
	case c.MaxInboundPerIP < 1:
		return fmt.Errorf("node: max inbound per IP must be at least 1, got %d", c.MaxInboundPerIP)
	case c.LogRate < 1:
		return fmt.Errorf("node: log rate must be at least 1 line per second, got %d", c.LogRate)
	case c.MaxFrame() > 1<<31:
		return fmt.Errorf("node: max body %d is too large for a frame", c.Gossip.MaxBody)
	case c.ID != 0 && c.Key != nil && c.ID != c.Key.ID():
		return fmt.Errorf("node: id %v is not the key's id %v: a node's id derives from its key", c.ID, c.Key.ID())
	case c.ID != 0 && c.Key == nil && c.DataDir == "":
		return fmt.Errorf("node: id %v given without a key: a node's id derives from its key, so set Key (or DataDir) instead", c.ID)
	case c.Faults.ValidateFor(c.selfID()) != nil:
		return fmt.Errorf("node: %w", c.Faults.ValidateFor(c.selfID()))
	case c.PeerFrameRate < 0 || c.PeerByteRate < 0:
		return fmt.Errorf("node: peer rate limits must not be negative (0 turns one off), got %d frames/s and %d bytes/s", c.PeerFrameRate, c.PeerByteRate)
	case c.PeerByteRate > 0 && c.PeerByteRate < int64(c.MaxFrame()):
		return fmt.Errorf("node: peer byte rate %d/s is below one maximal frame (%d bytes): no large message could ever pass", c.PeerByteRate, c.MaxFrame())
	case c.Scoring != nil:
		if err := c.Scoring.Validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if c.Protocols != nil {
		if err := wire.ValidateProtocols(c.Protocols); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return c.validateBudget()
}

// RuntimeIHaveInterval is the node runtime's Plumtree IHAVE interval
// (gossip.Config.PlumtreeIHaveInterval), above the core's 10 ms. A lazy
// link carries one IHAVE frame per interval while messages flow, whatever
// the rate, and on a real link every frame is a write, a wakeup and a
// read: at 10 ms a 50-node mesh sent about 390 IHAVE frames a second per
// node, a tenth of its frames at 1,500 messages a second, for
// announcements that only serve a repair that waits PlumtreeGraftTimeout
// (1 s) anyway. The simulator keeps the core's 10 ms: its frames cost
// nothing but virtual time.
const RuntimeIHaveInterval = 50 * time.Millisecond

// runtimeGossip is the core's defaults with the runtime's own.
func runtimeGossip() gossip.Config {
	g := gossip.DefaultConfig()
	g.PlumtreeIHaveInterval = RuntimeIHaveInterval
	g.OriginRate = DefaultOriginRate // the per-origin rate budget (origin.go)
	return g
}
