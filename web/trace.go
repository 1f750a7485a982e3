package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"gossipmesh/gossip"
)

// A trace is a recorded propagation that the dashboard replays in the same
// view as a live mesh: a topology and what happened on it, in virtual time.
// `mesh sim --trace FILE` writes one (with TraceWriter); `mesh replay FILE`
// serves it. The format, version 1:
//
//	{"version": 1,
//	 "source": "mesh sim --nodes 10 --seed 1",      // optional, shown on the page
//	 "nodes": 10,
//	 "ids": ["9f1c…", …],                            // optional, one per node
//	 "links": [[0, 3], [0, 7], …],                   // undirected
//	 "events": [
//	   {"at_ms": 0,    "kind": "published", "node": 4, "from": -1, "hop": 0, "msg": "m1"},
//	   {"at_ms": 0.21, "kind": "delivered", "node": 1, "from": 4,  "hop": 1, "msg": "m1"},
//	   {"at_ms": 0.40, "kind": "duplicate", "node": 4, "from": 1,  "hop": 2, "msg": "m1"},
//	   {"at_ms": 5,    "kind": "down",      "node": 7, "from": -1, "hop": 0}
//	 ]}
//
// Events are in time order. "delivered" is a node's first copy of a message
// (its hop is the hop count of that copy; from is the neighbour that sent
// it), "duplicate" a later copy, "published" the origin's own hop-0 copy,
// "down" and "up" a node failing and coming back. Node and from are indices
// 0..nodes-1; from is -1 where there is no sender.
type Trace struct {
	Version int          `json:"version"`
	Source  string       `json:"source,omitempty"`
	Nodes   int          `json:"nodes"`
	IDs     []string     `json:"ids,omitempty"`
	Links   [][2]int     `json:"links"`
	Events  []TraceEvent `json:"events"`
}

// TraceEvent is one event of a Trace.
type TraceEvent struct {
	// AtMS is virtual time since the start of the trace, in milliseconds.
	AtMS float64 `json:"at_ms"`
	// Kind is one of the TraceKind constants.
	Kind string `json:"kind"`
	// Node is the index of the node where it happened.
	Node int `json:"node"`
	// From is the index of the neighbour that sent the copy, -1 for none.
	From int `json:"from"`
	// Hop is the copy's hop count: 0 when published.
	Hop int `json:"hop"`
	// Msg names the message (any short string: the sim's message id or
	// sequence number); empty for down and up.
	Msg string `json:"msg,omitempty"`
}

// The kinds of TraceEvent.
const (
	TracePublished = gossip.NamePublished
	TraceDelivered = gossip.NameDelivered
	TraceDuplicate = gossip.NameDuplicate
	TraceDown      = gossip.NameDown
	TraceUp        = gossip.NameUp
)

// Limits on a trace the dashboard accepts. Replay is for small meshes: the
// page draws every node and animates every event.
const (
	TraceVersion = 1
	// MaxTraceNodes bounds Trace.Nodes: past this a graph is a hairball and
	// the simulator's charts say more.
	MaxTraceNodes = 2000
	// MaxTraceEvents bounds len(Trace.Events).
	MaxTraceEvents = 1_000_000
	// MaxTraceBytes bounds the file ReadTrace reads.
	MaxTraceBytes = 128 << 20
	// maxMsgName bounds TraceEvent.Msg.
	maxMsgName = 128
)

// TraceHeader is everything in a trace but its events: what a TraceWriter
// needs up front.
type TraceHeader struct {
	Source string
	Nodes  int
	IDs    []string
	Links  [][2]int
}

func (h TraceHeader) validate() error {
	if h.Nodes < 1 || h.Nodes > MaxTraceNodes {
		return fmt.Errorf("trace: nodes must be 1 to %d, got %d", MaxTraceNodes, h.Nodes)
	}
	if len(h.IDs) != 0 && len(h.IDs) != h.Nodes {
		return fmt.Errorf("trace: %d ids for %d nodes", len(h.IDs), h.Nodes)
	}
	for k, l := range h.Links {
		if l[0] < 0 || l[1] < 0 || l[0] >= h.Nodes || l[1] >= h.Nodes || l[0] == l[1] {
			return fmt.Errorf("trace: link %d %v: want two different nodes in 0..%d", k, l, h.Nodes-1)
		}
	}
	return nil
}

// validateEvent checks one event against the header and the previous
// event's time.
func validateEvent(k int, ev TraceEvent, nodes int, prev float64) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("trace: event %d: "+format, append([]any{k}, args...)...)
	}
	switch {
	case math.IsNaN(ev.AtMS) || math.IsInf(ev.AtMS, 0) || ev.AtMS < 0:
		return bad("at_ms %v: want a finite time ≥ 0", ev.AtMS)
	case ev.AtMS < prev:
		return bad("at_ms %v is before the previous event's %v: events must be in time order", ev.AtMS, prev)
	case ev.Node < 0 || ev.Node >= nodes:
		return bad("node %d: want 0..%d", ev.Node, nodes-1)
	case len(ev.Msg) > maxMsgName:
		return bad("msg is %d bytes, limit %d", len(ev.Msg), maxMsgName)
	}
	switch ev.Kind {
	case TracePublished:
		if ev.From != -1 || ev.Hop != 0 || ev.Msg == "" {
			return bad("published: want from -1, hop 0 and a msg")
		}
	case TraceDelivered, TraceDuplicate:
		if ev.From < 0 || ev.From >= nodes || ev.From == ev.Node {
			return bad("%s: from %d: want another node in 0..%d", ev.Kind, ev.From, nodes-1)
		}
		if ev.Hop < 1 || ev.Msg == "" {
			return bad("%s: want hop ≥ 1 and a msg", ev.Kind)
		}
	case TraceDown, TraceUp:
		if ev.From != -1 {
			return bad("%s: want from -1", ev.Kind)
		}
	default:
		return bad("kind %q: want published, delivered, duplicate, down or up", ev.Kind)
	}
	return nil
}

// Validate reports the first thing wrong with t.
func (t *Trace) Validate() error {
	if t.Version != TraceVersion {
		return fmt.Errorf("trace: version %d: this dashboard reads version %d", t.Version, TraceVersion)
	}
	h := TraceHeader{Source: t.Source, Nodes: t.Nodes, IDs: t.IDs, Links: t.Links}
	if err := h.validate(); err != nil {
		return err
	}
	if len(t.Events) > MaxTraceEvents {
		return fmt.Errorf("trace: %d events, limit %d", len(t.Events), MaxTraceEvents)
	}
	prev := 0.0
	for k, ev := range t.Events {
		if err := validateEvent(k, ev, t.Nodes, prev); err != nil {
			return err
		}
		prev = ev.AtMS
	}
	return nil
}

// ReadTrace reads and validates a trace of at most MaxTraceBytes.
func ReadTrace(r io.Reader) (*Trace, error) {
	lr := &io.LimitedReader{R: r, N: MaxTraceBytes + 1}
	dec := json.NewDecoder(lr)
	var t Trace
	if err := dec.Decode(&t); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("trace: over %d bytes", MaxTraceBytes)
		}
		return nil, fmt.Errorf("trace: invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trace: trailing data after the JSON object")
	}
	if t.Links == nil {
		t.Links = [][2]int{}
	}
	if t.Events == nil {
		t.Events = []TraceEvent{}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// TraceWriter writes a trace as it happens, one event per line, so that a
// simulator need not hold the events in memory. It checks every event as
// ReadTrace would and writes the same bytes for the same calls, so a seeded
// simulation gives a byte-identical trace.
//
//	tw, err := web.NewTraceWriter(f, web.TraceHeader{Nodes: n, Links: links})
//	…
//	err = tw.Write(web.TraceEvent{AtMS: 0.21, Kind: web.TraceDelivered, Node: 1, From: 4, Hop: 1, Msg: "m1"})
//	…
//	err = tw.Close() // completes the JSON; does not close f
type TraceWriter struct {
	w      *bufio.Writer
	nodes  int
	events int
	prev   float64
	err    error // sticky: the first error ends the trace
	closed bool
}

// NewTraceWriter validates h and writes it to w.
func NewTraceWriter(w io.Writer, h TraceHeader) (*TraceWriter, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	head := struct {
		Version int      `json:"version"`
		Source  string   `json:"source,omitempty"`
		Nodes   int      `json:"nodes"`
		IDs     []string `json:"ids,omitempty"`
		Links   [][2]int `json:"links"`
	}{TraceVersion, h.Source, h.Nodes, h.IDs, slices.Clip(h.Links)}
	if head.Links == nil {
		head.Links = [][2]int{}
	}
	b, err := json.Marshal(head)
	if err != nil {
		return nil, fmt.Errorf("trace: encoding the header: %w", err)
	}
	tw := &TraceWriter{w: bufio.NewWriterSize(w, 64<<10), nodes: h.Nodes}
	// Reopen the header object to append the events array.
	tw.w.Write(b[:len(b)-1])
	tw.w.WriteString(`,"events":[`)
	return tw, nil
}

// Write appends one event. Events must come in time order.
func (tw *TraceWriter) Write(ev TraceEvent) error {
	if tw.err != nil {
		return tw.err
	}
	if tw.closed {
		return errors.New("trace: write after Close")
	}
	if tw.events >= MaxTraceEvents {
		tw.err = fmt.Errorf("trace: over %d events", MaxTraceEvents)
		return tw.err
	}
	if err := validateEvent(tw.events, ev, tw.nodes, tw.prev); err != nil {
		tw.err = err
		return err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		tw.err = fmt.Errorf("trace: encoding event %d: %w", tw.events, err)
		return tw.err
	}
	if tw.events > 0 {
		tw.w.WriteByte(',')
	}
	tw.w.WriteByte('\n')
	if _, err := tw.w.Write(b); err != nil {
		tw.err = fmt.Errorf("trace: writing: %w", err)
		return tw.err
	}
	tw.events++
	tw.prev = ev.AtMS
	return nil
}

// Close completes the JSON and flushes it. It does not close the
// underlying writer.
func (tw *TraceWriter) Close() error {
	if tw.closed {
		return tw.err
	}
	tw.closed = true
	if tw.err != nil {
		return tw.err
	}
	tw.w.WriteString("\n]}\n")
	if err := tw.w.Flush(); err != nil {
		tw.err = fmt.Errorf("trace: writing: %w", err)
	}
	return tw.err
}
