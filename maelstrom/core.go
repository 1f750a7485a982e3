package maelstrom

// This file is the one place where the Maelstrom node touches the protocol
// core. Everything else in the package speaks in Maelstrom names and
// GossipMsg values; porting the node to another core API changes this file
// alone.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// outSend is one frame the core wants sent to the node named To: a gossip
// message, or a control frame when Ctl is set.
type outSend struct {
	To  string
	Msg GossipMsg
	Ctl *GossipCtl
}

// coreAdapter runs one gossip.Protocol (the gossip core) for a Maelstrom
// node, through the same seam as every other driver. Maelstrom names
// nodes "n0", "n1", …; the core knows them as wire.NodeIDs, here the
// node's index in init's node_ids plus one (zero means "no node"). Every
// node gets the same node_ids, so every node maps names the same way, and
// message ids, which hash the origin's NodeID, agree across the cluster.
type coreAdapter struct {
	core  gossip.Protocol
	out   gossip.Output
	names []string
	ids   map[string]wire.NodeID
}

// newCoreAdapter builds the core for node self of the cluster nodeIDs,
// with gossip's defaults but for the router that cfg names. The core's
// randomness (the fanout router's picks) is seeded from cfg.Seed and the
// node's index, so a run is reproducible given its inputs.
func newCoreAdapter(cfg NodeConfig, self string, nodeIDs []string) (*coreAdapter, error) {
	a := &coreAdapter{names: append([]string(nil), nodeIDs...), ids: make(map[string]wire.NodeID, len(nodeIDs))}
	for i, n := range nodeIDs {
		if _, dup := a.ids[n]; dup {
			return nil, fmt.Errorf("maelstrom: node %q appears twice in node_ids", n)
		}
		a.ids[n] = wire.NodeID(i + 1)
	}
	id, ok := a.ids[self]
	if !ok {
		return nil, fmt.Errorf("maelstrom: node_id %q is not in node_ids", self)
	}
	gcfg := gossip.DefaultConfig()
	gcfg.Strategy, gcfg.Fanout, gcfg.AntiEntropy = cfg.Strategy, cfg.Fanout, cfg.AntiEntropy
	// Unsigned: Maelstrom names the nodes (n0, n1, …) and carries every
	// frame itself, so there are no keys whose hashes are these ids, and
	// its workloads test delivery, not liars.
	gcfg.Signing = gossip.SigningNone
	core, err := gossip.New(gcfg, id, rand.New(rand.NewPCG(cfg.Seed, uint64(id))))
	if err != nil {
		return nil, fmt.Errorf("maelstrom: gossip core: %w", err)
	}
	a.core = core
	return a, nil
}

// addPeer links the node to the node named p; an unknown name is an error.
func (a *coreAdapter) addPeer(p string) error {
	id, ok := a.ids[p]
	if !ok {
		return fmt.Errorf("maelstrom: peer %q is not in node_ids", p)
	}
	// The topology names this node's own neighbours: links it chose, as
	// a node chooses whom it dials.
	gossip.LinkUp(a.core, 0, id, true, &a.out) // what it sends goes out with the next collect
	return nil
}

// publish starts a message carrying value at now (Unix nanoseconds) and
// appends what the core wants sent to sends.
func (a *coreAdapter) publish(now int64, value int64, sends []outSend) ([]outSend, error) {
	if _, err := a.core.Publish(now, encodeValue(value), &a.out); err != nil {
		return sends, fmt.Errorf("maelstrom: publish %d: %w", value, err)
	}
	return a.collect(sends), nil
}

// receive hands the core a message from the node named from. It reports
// whether this was the message's first delivery here, and the value it
// carries; err says why a message was refused (bad fields, or the core
// rejected it).
func (a *coreAdapter) receive(now int64, from string, gm GossipMsg, sends []outSend) (_ []outSend, delivered bool, err error) {
	fromID, ok := a.ids[from]
	if !ok {
		return sends, false, fmt.Errorf("maelstrom: gossip from %q, not in node_ids", from)
	}
	origin, ok := a.ids[gm.Origin]
	if !ok {
		return sends, false, fmt.Errorf("maelstrom: gossip with origin %q, not in node_ids", gm.Origin)
	}
	id, err := wire.ParseMsgID(gm.ID)
	if err != nil {
		return sends, false, fmt.Errorf("maelstrom: gossip from %s: %w", from, err)
	}
	m := &wire.Message{ID: id, Origin: origin, Seq: gm.Seq, Hop: gm.Hop, PublishedAt: gm.At, Body: encodeValue(gm.Value)}
	start := len(a.out.Events)
	a.core.Step(now, fromID, gossip.Frame{Msg: m}, &a.out)
	for _, ev := range a.out.Events[start:] {
		switch ev.Kind {
		case gossip.EventDelivered:
			delivered = true
		case gossip.EventRejected:
			err = fmt.Errorf("maelstrom: gossip from %s rejected: %w", from, ev.Err)
		}
	}
	return a.collect(sends), delivered, err
}

// receiveCtl hands the core a control frame from the node named from;
// err says why it was refused (a malformed frame, which the core never
// sees).
func (a *coreAdapter) receiveCtl(now int64, from string, gc GossipCtl, sends []outSend) ([]outSend, error) {
	fromID, ok := a.ids[from]
	if !ok {
		return sends, fmt.Errorf("maelstrom: control frame from %q, not in node_ids", from)
	}
	c, err := decodeCtl(a.ids, gc)
	if err != nil {
		return sends, fmt.Errorf("maelstrom: control frame from %s: %w", from, err)
	}
	a.core.Step(now, fromID, gossip.Frame{Ctl: &c}, &a.out)
	return a.collect(sends), nil
}

// collect turns the core's sends into GossipMsgs and GossipCtls addressed
// by name.
func (a *coreAdapter) collect(sends []outSend) []outSend {
	for _, s := range a.out.Sends {
		if s.Ctl != nil {
			gc := encodeCtl(a.names, s.Ctl)
			sends = append(sends, outSend{To: a.names[s.To-1], Ctl: &gc})
			continue
		}
		v, err := decodeValue(s.Msg.Body)
		if err != nil {
			// The core forwards only bodies that publish or receive
			// built with encodeValue.
			panic(err)
		}
		sends = append(sends, outSend{To: a.names[s.To-1], Msg: GossipMsg{
			ID: s.Msg.ID.String(), Origin: a.names[s.Msg.Origin-1], Seq: s.Msg.Seq,
			Hop: s.Msg.Hop, At: s.Msg.PublishedAt, Value: v,
		}})
	}
	a.out.Reset()
	return sends
}

// tick lets the core do its timed work at now and appends what it wants
// sent to sends.
func (a *coreAdapter) tick(now int64, sends []outSend) []outSend {
	a.core.Tick(now, &a.out)
	return a.collect(sends)
}

// nextTick is when the core next wants a tick (Unix nanoseconds), 0 for
// never.
func (a *coreAdapter) nextTick() int64 { return a.core.NextTick() }

// encodeValue is the message body for a broadcast value: 8 bytes, big
// endian, so that the same value always hashes the same way.
func encodeValue(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeValue(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("maelstrom: message body of %d bytes, want 8: %s", len(b), strconv.Quote(string(b)))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ctlKinds are the control frame types, by the name GossipCtl.Kind gives.
var ctlKinds = [...]wire.FrameType{wire.FrameIHave, wire.FrameIWant, wire.FrameGraft, wire.FramePrune, wire.FramePull}

// encodeCtl renders c, a frame the core built, for Maelstrom's network.
func encodeCtl(names []string, c *wire.Control) GossipCtl {
	gc := GossipCtl{Kind: c.Kind.String(), Reason: uint8(c.Reason), Flags: uint8(c.Flags)}
	switch c.Kind {
	case wire.FramePrune:
		gc.Flags = 0
	case wire.FramePull:
		gc.Reason = 0
	default:
		gc.Reason, gc.Flags = 0, 0
	}
	if c.Kind == wire.FrameIHave && c.HasHop {
		hop := c.Hop
		gc.Hop = &hop
	}
	for _, id := range c.IDs {
		gc.IDs = append(gc.IDs, id.String())
	}
	for _, r := range c.Ranges {
		origin := "#" + strconv.FormatUint(uint64(r.Origin), 10)
		if r.Origin >= 1 && uint64(r.Origin) <= uint64(len(names)) {
			origin = names[r.Origin-1]
		}
		gc.Ranges = append(gc.Ranges, GossipRange{Origin: origin, First: r.First, Last: r.Last})
	}
	return gc
}

// decodeCtl parses a control frame from Maelstrom's network, with ids the
// cluster's names. It holds the frame to wire's rules (limits, ordering),
// as the binary decoder does, so the core sees only frames that wire could
// carry.
func decodeCtl(ids map[string]wire.NodeID, gc GossipCtl) (wire.Control, error) {
	var c wire.Control
	for _, k := range ctlKinds {
		if k.String() == gc.Kind {
			c.Kind = k
		}
	}
	if c.Kind == 0 {
		return wire.Control{}, fmt.Errorf("unknown control kind %q", gc.Kind)
	}
	if len(gc.IDs) > wire.MaxControlIDs {
		return wire.Control{}, fmt.Errorf("%s of %d ids, limit %d", gc.Kind, len(gc.IDs), wire.MaxControlIDs)
	}
	if len(gc.Ranges) > wire.MaxDigestRanges {
		return wire.Control{}, fmt.Errorf("%s of %d ranges, limit %d", gc.Kind, len(gc.Ranges), wire.MaxDigestRanges)
	}
	switch c.Kind {
	case wire.FramePrune:
		c.Reason = wire.PruneReason(gc.Reason)
	case wire.FramePull:
		c.Flags = wire.PullFlags(gc.Flags)
		for _, r := range gc.Ranges {
			origin, err := originID(ids, r.Origin)
			if err != nil {
				return wire.Control{}, err
			}
			c.Ranges = append(c.Ranges, wire.SeqRange{Origin: origin, First: r.First, Last: r.Last})
		}
	default:
		if c.Kind == wire.FrameIHave && gc.Hop != nil {
			c.HasHop, c.Hop = true, *gc.Hop
		}
		for _, s := range gc.IDs {
			id, err := wire.ParseMsgID(s)
			if err != nil {
				return wire.Control{}, fmt.Errorf("%s: %w", gc.Kind, err)
			}
			c.IDs = append(c.IDs, id)
		}
	}
	if _, err := wire.AppendControl(nil, &c); err != nil {
		return wire.Control{}, err
	}
	return c, nil
}

// originID is the node id a GossipRange's origin names: a node of the
// cluster, or "#N".
func originID(ids map[string]wire.NodeID, name string) (wire.NodeID, error) {
	if id, ok := ids[name]; ok {
		return id, nil
	}
	if rest, ok := strings.CutPrefix(name, "#"); ok {
		if n, err := strconv.ParseUint(rest, 10, 64); err == nil && strconv.FormatUint(n, 10) == rest {
			return wire.NodeID(n), nil
		}
	}
	return 0, fmt.Errorf("pull digest origin %q is not in node_ids", name)
}
