package maelstrom

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"gossipmesh/gossip"
)

// NodeConfig tunes a Maelstrom node. Start from DefaultNodeConfig; Run
// calls Validate.
type NodeConfig struct {
	// Strategy is the gossip router, as in every other mesh command.
	// Default flood: on the tree overlay it sends each broadcast across
	// every link once, which is N−1 messages and reaches everyone.
	Strategy gossip.Strategy
	// Fanout is k for the fanout strategy. Default 8 (gossip's default).
	Fanout int
	// AntiEntropy is the core's anti-entropy period
	// (gossip.Config.AntiEntropy: 0 the strategy's default, negative off).
	// Default 1 s (gossip.DefaultAntiEntropy), whatever the strategy: it is
	// what repairs the values a partition cut off, for about one digest
	// each way per node per second, which Maelstrom counts as server
	// messages (about 0.7 of a message per operation at 3d's 25 nodes and
	// 100 ops/s). Under --batch the digests ride in the batches.
	AntiEntropy time.Duration
	// Overlay picks the peers. Default OverlayTree.
	Overlay Overlay
	// Branching is the tree overlay's children per node. Default 24: up to
	// 25 nodes the tree is a star, so a broadcast crosses at most two
	// links (200 ms at Maelstrom's --latency 100) for N−1 messages; larger
	// clusters get a tree of depth about log_24 N.
	Branching int
	// Batch, when positive, holds outgoing gossip per destination and sends
	// it as one Maelstrom message every Batch, trading latency for message
	// count. Default 0: every core send is its own message, at once.
	Batch time.Duration
	// MaxBatch bounds the messages one batch carries; a destination that
	// reaches it is flushed at once. Default 1,000 (about 150 KB a line,
	// far under MaxLine).
	MaxBatch int
	// MaxValues bounds the values a node holds (and answers read with).
	// A broadcast past it is refused with error code 14 (abort); gossip
	// past it is dropped and counted. Default 1,000,000: 8 MB of values.
	MaxValues int
	// Seed seeds the core's randomness (the fanout router's picks), mixed
	// with the node's index. Default 0.
	Seed uint64
}

// DefaultNodeConfig returns the defaults documented on each field.
func DefaultNodeConfig() NodeConfig {
	return NodeConfig{
		Strategy: gossip.Flood,
		Fanout:   gossip.DefaultConfig().Fanout,

		AntiEntropy: gossip.DefaultAntiEntropy,
		Overlay:     OverlayTree,
		Branching:   24,
		MaxBatch:    1000,
		MaxValues:   1_000_000,
	}
}

// Validate reports the first setting that cannot work.
func (c NodeConfig) Validate() error {
	if _, err := gossip.ParseStrategy(string(c.Strategy)); err != nil {
		return fmt.Errorf("maelstrom: %w", err)
	}
	g := gossip.DefaultConfig()
	g.Strategy, g.Fanout, g.AntiEntropy = c.Strategy, max(c.Fanout, 1), c.AntiEntropy
	g.Signing = gossip.SigningNone // as newAdapter runs it
	if err := g.Validate(); err != nil {
		return fmt.Errorf("maelstrom: %w", err)
	}
	if c.Fanout < 1 {
		return fmt.Errorf("maelstrom: fanout must be at least 1, got %d", c.Fanout)
	}
	if !slices.Contains(Overlays(), c.Overlay) {
		return fmt.Errorf("maelstrom: unknown overlay %q (want one of %v)", c.Overlay, Overlays())
	}
	if c.Branching < 1 {
		return fmt.Errorf("maelstrom: branching must be at least 1, got %d", c.Branching)
	}
	if c.Batch < 0 {
		return fmt.Errorf("maelstrom: batch must not be negative, got %v", c.Batch)
	}
	if c.MaxBatch < 1 {
		return fmt.Errorf("maelstrom: max batch must be at least 1, got %d", c.MaxBatch)
	}
	if c.MaxValues < 1 {
		return fmt.Errorf("maelstrom: max values must be at least 1, got %d", c.MaxValues)
	}
	return nil
}

// node is one Maelstrom node's state, owned by the goroutine in Run.
type node struct {
	cfg  NodeConfig
	log  *slog.Logger
	w    *bufio.Writer
	self string
	core *coreAdapter

	values map[int64]struct{}
	sorted []int64 // the values, sorted when !dirty
	dirty  bool

	pending map[string]*outBatch // batched gossip per destination
	sends   []outSend            // scratch

	// counters, logged at exit
	sent, received, dropped, rejected int
}

// RunNode is a Maelstrom node: it reads messages from in until EOF or ctx
// ends, answers on out, and logs to log (stderr: Maelstrom reads stdout).
func RunNode(ctx context.Context, cfg NodeConfig, in io.Reader, out io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := &node{cfg: cfg, log: log, w: bufio.NewWriterSize(out, 64<<10),
		values: make(map[int64]struct{}), pending: make(map[string]*outBatch)}

	type read struct {
		e   Envelope
		err error
	}
	lines := make(chan read, 256)
	go func() {
		defer close(lines)
		lr := NewLineReader(in)
		for {
			e, err := lr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			select {
			case lines <- read{e, err}:
			case <-ctx.Done():
				return
			}
			if err != nil && !isBadLine(err) {
				return
			}
		}
	}()

	tick := time.NewTimer(time.Hour)
	tick.Stop()
	var armed int64
	var batchC <-chan time.Time
	if cfg.Batch > 0 {
		t := time.NewTicker(cfg.Batch)
		defer t.Stop()
		batchC = t.C
	}
	defer func() {
		n.log.Info("maelstrom node stopping", "node", n.self, "values", len(n.values),
			"gossip_sent", n.sent, "gossip_received", n.received, "rejected", n.rejected, "dropped_values", n.dropped)
	}()
	for {
		var err error
		select {
		case <-ctx.Done():
			n.flushAll()
			return n.w.Flush()
		case r, ok := <-lines:
			if !ok {
				n.flushAll()
				return n.w.Flush()
			}
			if r.err != nil {
				if !isBadLine(r.err) {
					n.w.Flush()
					return r.err
				}
				n.log.Warn("maelstrom: skipping a line", "err", r.err)
				continue
			}
			err = n.handle(r.e)
		case <-tick.C:
			armed = 0
			n.sends = n.core.tick(time.Now().UnixNano(), n.sends[:0])
			err = n.emit()
		case <-batchC:
			n.flushAll()
		}
		if err != nil {
			n.w.Flush()
			return err
		}
		if n.core != nil {
			if next := n.core.nextTick(); next != armed {
				armed = next
				tick.Stop()
				if next != 0 {
					tick.Reset(max(time.Until(time.Unix(0, next)), 0))
				}
			}
		}
		if len(lines) == 0 {
			if err := n.w.Flush(); err != nil {
				return fmt.Errorf("maelstrom: writing stdout: %w", err)
			}
		}
	}
}

// isBadLine reports whether err is one malformed line, after which the
// stream goes on.
func isBadLine(err error) bool {
	return errors.Is(err, errBadLine)
}

// handle acts on one incoming message. Its error ends the node: only a
// failed write to stdout does.
func (n *node) handle(e Envelope) error {
	b, err := DecodeBody(e.Body)
	if err != nil {
		n.log.Warn("maelstrom: bad body", "src", e.Src, "err", err)
		return nil
	}
	if b.Type != "init" && n.core == nil {
		// Not yet named: answer as the node the message was sent to.
		n.self = e.Dest
		err := n.replyError(e.Src, b, CodeTemporarilyUnavailable, "not initialised: init first")
		n.self = ""
		return err
	}
	switch b.Type {
	case "init":
		return n.init(e, b)
	case "topology":
		if n.cfg.Overlay == OverlaySuggested {
			for _, p := range b.Topology[n.self] {
				if err := n.core.addPeer(p); err != nil {
					n.log.Warn("maelstrom: ignoring a suggested neighbour", "err", err)
				}
			}
			n.log.Info("maelstrom: using the suggested topology", "node", n.self, "neighbours", b.Topology[n.self])
		}
		return n.reply(e.Src, b, &Body{Type: "topology_ok"})
	case "broadcast":
		if b.Message == nil {
			return n.replyError(e.Src, b, CodeMalformedRequest, "broadcast without a message")
		}
		v := *b.Message
		if _, held := n.values[v]; !held {
			if len(n.values) >= n.cfg.MaxValues {
				return n.replyError(e.Src, b, CodeAbort, fmt.Sprintf("value store full (%d values)", n.cfg.MaxValues))
			}
			n.store(v)
			n.sends, err = n.core.publish(time.Now().UnixNano(), v, n.sends[:0])
			if err != nil {
				return n.replyError(e.Src, b, CodeAbort, err.Error())
			}
			if err := n.emit(); err != nil {
				return err
			}
		}
		return n.reply(e.Src, b, &Body{Type: "broadcast_ok"})
	case "read":
		if n.dirty {
			slices.Sort(n.sorted)
			n.dirty = false
		}
		msgs := n.sorted
		if msgs == nil {
			msgs = []int64{}
		}
		return n.reply(e.Src, b, &Body{Type: "read_ok", Messages: &msgs})
	case "gossip":
		return n.gossip(e.Src, b)
	}
	if b.Type == "error" || len(b.Type) > 3 && b.Type[len(b.Type)-3:] == "_ok" {
		return nil // a reply to nothing we asked: ignore
	}
	return n.replyError(e.Src, b, CodeNotSupported, fmt.Sprintf("unknown message type %q", b.Type))
}

// gossip hands a gossip message's frames to the core: the messages, then
// the control frames. A value first delivered here joins the node's
// values, whether it came pushed or as an anti-entropy repair.
func (n *node) gossip(src string, b Body) error {
	now := time.Now().UnixNano()
	var err error
	for _, gm := range b.Msgs {
		n.received++
		var delivered bool
		n.sends, delivered, err = n.core.receive(now, src, gm, n.sends[:0])
		if err != nil {
			n.refused(err)
		}
		if delivered {
			if _, held := n.values[gm.Value]; !held {
				if len(n.values) >= n.cfg.MaxValues {
					n.dropped++
				} else {
					n.store(gm.Value)
				}
			}
		}
		if err := n.emit(); err != nil {
			return err
		}
	}
	for _, gc := range b.Ctls {
		n.received++
		n.sends, err = n.core.receiveCtl(now, src, gc, n.sends[:0])
		if err != nil {
			n.refused(err)
		}
		if err := n.emit(); err != nil {
			return err
		}
	}
	return nil
}

// refused counts and logs (rate-limited) a frame the core refused.
func (n *node) refused(err error) {
	n.rejected++
	if n.rejected <= 20 || n.rejected%1000 == 0 {
		n.log.Warn("maelstrom: gossip refused", "err", err, "refused_so_far", n.rejected)
	}
}

func (n *node) init(e Envelope, b Body) error {
	if n.core != nil {
		if b.NodeID != n.self {
			return n.replyError(e.Src, b, CodeMalformedRequest, fmt.Sprintf("already initialised as %s", n.self))
		}
		return n.reply(e.Src, b, &Body{Type: "init_ok"})
	}
	n.self = b.NodeID
	core, err := newCoreAdapter(n.cfg, b.NodeID, b.NodeIDs)
	if err != nil {
		return n.replyError(e.Src, b, CodeMalformedRequest, err.Error())
	}
	var peers []string
	if n.cfg.Overlay == OverlayTree {
		if peers, err = TreeNeighbors(b.NodeIDs, b.NodeID, n.cfg.Branching); err != nil {
			return n.replyError(e.Src, b, CodeMalformedRequest, err.Error())
		}
		for _, p := range peers {
			if err := core.addPeer(p); err != nil {
				return n.replyError(e.Src, b, CodeMalformedRequest, err.Error())
			}
		}
	}
	n.core = core
	n.log.Info("maelstrom node ready", "node", n.self, "nodes", len(b.NodeIDs), "overlay", n.cfg.Overlay,
		"peers", peers, "strategy", n.cfg.Strategy, "batch", n.cfg.Batch)
	return n.reply(e.Src, b, &Body{Type: "init_ok"})
}

func (n *node) store(v int64) {
	n.values[v] = struct{}{}
	n.sorted = append(n.sorted, v)
	n.dirty = true
}

// outBatch is the gossip waiting for one destination: messages and
// control frames, sent together as one Maelstrom message.
type outBatch struct {
	msgs []GossipMsg
	ctls []GossipCtl
}

func (b *outBatch) len() int { return len(b.msgs) + len(b.ctls) }

// emit sends n.sends. Unbatched, what one input made the core send to one
// destination goes as one Maelstrom message at once (a PULL's answer: its
// repairs and digest); batched, it joins the destination's batch.
func (n *node) emit() error {
	for _, s := range n.sends {
		b := n.pending[s.To]
		if b == nil {
			b = &outBatch{}
			n.pending[s.To] = b
		}
		if s.Ctl != nil {
			b.ctls = append(b.ctls, *s.Ctl)
		} else {
			b.msgs = append(b.msgs, s.Msg)
		}
		if n.cfg.Batch > 0 && b.len() >= n.cfg.MaxBatch {
			if err := n.flush(s.To); err != nil {
				return err
			}
		}
	}
	if n.cfg.Batch <= 0 {
		// In the order of the sends' first destinations, so that output
		// follows the core's order.
		for _, s := range n.sends {
			if err := n.flush(s.To); err != nil {
				return err
			}
		}
	}
	clear(n.sends)
	return nil
}

// flushAll sends every pending batch, in a fixed order.
func (n *node) flushAll() {
	dests := make([]string, 0, len(n.pending))
	for d, p := range n.pending {
		if p.len() > 0 {
			dests = append(dests, d)
		}
	}
	slices.Sort(dests)
	for _, d := range dests {
		if err := n.flush(d); err != nil {
			n.log.Warn("maelstrom: flushing gossip", "err", err)
			return
		}
	}
}

func (n *node) flush(dest string) error {
	b := n.pending[dest]
	if b == nil || b.len() == 0 {
		return nil
	}
	n.sent++
	err := n.write(dest, &Body{Type: "gossip", Msgs: b.msgs, Ctls: b.ctls})
	clear(b.ctls)
	b.msgs, b.ctls = b.msgs[:0], b.ctls[:0]
	return err
}

func (n *node) reply(dest string, req Body, body *Body) error {
	body.InReplyTo = req.MsgID
	return n.write(dest, body)
}

func (n *node) replyError(dest string, req Body, code int, text string) error {
	n.log.Warn("maelstrom: answering with an error", "src", dest, "type", req.Type, "code", code, "text", text)
	if req.MsgID == nil {
		return nil // nobody waits for an answer
	}
	return n.reply(dest, req, &Body{Type: "error", Code: code, Text: text})
}

func (n *node) write(dest string, body *Body) error {
	line, err := Encode(n.self, dest, body)
	if err != nil {
		return err
	}
	if _, err := n.w.Write(line); err != nil {
		return fmt.Errorf("maelstrom: writing stdout: %w", err)
	}
	return nil
}
