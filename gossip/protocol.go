package gossip

import "gossipmesh/wire"

// Protocol is the seam every driver drives: the node runtime, the
// in-memory test networks, the simulator and the Maelstrom adapter hold a
// Protocol, never a *Core, so that another protocol (a consensus core, say)
// runs on the same drivers unchanged. Its shape is etcd-io/raft's: every
// input is a method that writes what it wants done into an Output the
// driver owns, time is an input (nanoseconds on the driver's clock), and
// the protocol says when it next wants a Tick.
//
// A Protocol is not safe for concurrent use: one goroutine drives it.
type Protocol interface {
	// ID is the node this protocol instance runs as.
	ID() wire.NodeID
	// Publish is the application's input: a new message with body. It
	// returns the message as this node holds it.
	Publish(now int64, body []byte, out *Output) (*wire.Message, error)
	// Step hands the protocol one frame that peer from sent.
	Step(now int64, from wire.NodeID, f Frame, out *Output)
	// Tick lets the protocol do timed work due at or before now; it may
	// send.
	Tick(now int64, out *Output)
	// NextTick is the earliest time the protocol wants a Tick, or 0 for
	// never, so that a simulator wakes only the nodes that have work.
	NextTick() int64
	// PeerUp tells the protocol that a link to p is up.
	PeerUp(now int64, p wire.NodeID, out *Output)
	// PeerDown tells the protocol that the link to p is gone.
	PeerDown(now int64, p wire.NodeID, out *Output)
}

// Frame is one typed frame between two nodes: a payload message or a
// control frame (wire.Control: IHAVE, IWANT, GRAFT, PRUNE, PULL). Exactly
// one of Msg and Ctl is set. Both are shared by every send of one step and
// must not be modified.
type Frame struct {
	Msg *wire.Message
	Ctl *wire.Control
}

// IsControl reports whether f is a control frame.
func (f Frame) IsControl() bool { return f.Ctl != nil }

// Egress is the one place a node's output leaves it: every driver hands
// each send of a node to its Egress before putting it on the network (the
// runtime's socket queues, the simulator's event queue, a test network's
// FIFO). It returns false to drop the send. The fault layer (loss, delay,
// partitions) and tracers hook in here, so that they act alike in every
// driver. A nil Egress passes everything.
type Egress func(now int64, from wire.NodeID, s *Send) bool

// Pass reports whether e lets s leave from at now: true for a nil e.
func (e Egress) Pass(now int64, from wire.NodeID, s *Send) bool {
	return e == nil || e(now, from, s)
}

// compile-time check: Core is a Protocol.
var _ Protocol = (*Core)(nil)

// Waker is a Protocol whose NextTick includes housekeeping that may wait
// for the node's next input (the gossip core's seen-cache expiry, which
// its next step does anyway): NextWake is the earliest time it must be
// ticked even if no input comes (a router's timer, which sends), 0 for
// never. A driver with a million idle nodes (the simulator) wakes a node
// at NextWake and ticks it lazily, just before its next input, when
// NextTick has passed; a runtime simply ticks at NextTick.
type Waker interface {
	Protocol
	NextWake() int64
}

var _ Waker = (*Core)(nil)

// Dialer is a Protocol that tells the links its node dialed from those it
// accepted. A node picks whom it dials (its seeds, its own peer
// exchange); an attacker can only connect to it, as often as it likes. So
// a router that keeps some of its eager slots on dialed links (the lazy
// router's LazyDOut, gossipsub's D_out) cannot be crowded out of them by
// sybils, however many inbound links they open. A driver that knows a
// link's direction brings it up with LinkUp.
type Dialer interface {
	Protocol
	// PeerUpDialed is PeerUp for a link this node dialed.
	PeerUpDialed(now int64, p wire.NodeID, out *Output)
}

// LinkUp tells pr that the link to p is up, and whether this node dialed
// it: PeerUpDialed when it did and pr is a Dialer, PeerUp otherwise (an
// accepted link, or a protocol that makes no difference).
func LinkUp(pr Protocol, now int64, p wire.NodeID, dialed bool, out *Output) {
	if d, ok := pr.(Dialer); ok && dialed {
		d.PeerUpDialed(now, p, out)
		return
	}
	pr.PeerUp(now, p, out)
}

var _ Dialer = (*Core)(nil)
