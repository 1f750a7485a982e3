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

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// outSend is one gossip message the core wants sent to the node named To.
type outSend struct {
	To  string
	Msg GossipMsg
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
	gcfg.Strategy, gcfg.Fanout = cfg.Strategy, cfg.Fanout
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
	a.core.PeerUp(0, id, &a.out) // what it sends goes out with the next collect
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

// collect turns the core's sends into GossipMsgs addressed by name.
func (a *coreAdapter) collect(sends []outSend) []outSend {
	for _, s := range a.out.Sends {
		if s.Ctl != nil {
			// flood and fanout send none; the repair routers bring the
			// JSON form of their control frames with them.
			panic(fmt.Sprintf("maelstrom: a %v control frame has no Maelstrom encoding", s.Ctl.Kind))
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
