package sim

import (
	"fmt"
	"slices"

	"gossipmesh/gossip"
)

// TraceKind says what a TraceEvent records: gossip's event vocabulary,
// whose String is the name the dashboard's traces use.
type TraceKind = gossip.EventKind

// The kinds of TraceEvent.
const (
	TracePublished = gossip.EventPublished // the publisher's own hop-0 copy
	TraceDelivered = gossip.EventDelivered // a node's first copy
	TraceDuplicate = gossip.EventDuplicate // a later copy
	TraceDown      = gossip.EventDown      // a node crashed
)

// TraceEvent is one event of a traced run. It is kept compact (24 bytes)
// because a trace holds up to a million of them until the run ends.
type TraceEvent struct {
	At        int64 // virtual time, nanoseconds since the run started
	Broadcast int32 // 0-based broadcast number; unused for TraceDown
	Node      int32
	From      int32 // sender's index; -1 for TracePublished and TraceDown
	Hop       int16 // the copy's hop count; 0 for TracePublished and TraceDown
	Kind      TraceKind
}

// AtMS is e's time in milliseconds, rounded to the microsecond as in
// reports.
func (e TraceEvent) AtMS() float64 { return ms(e.At) }

// Tracer records what `mesh sim --trace` writes: every publish, first
// delivery, duplicate and crash of a run, in virtual-time order, up to a
// limit of events (the dashboard's). Duplicates are all or nothing: if
// keeping them would pass the limit, every duplicate is dropped and the
// rest is kept, so a replay never shows duplicate counts that stop
// halfway through. It holds the events in memory because that decision is
// known only at the end.
type Tracer struct {
	limit        int
	events       []TraceEvent
	noDuplicates bool
	overflow     bool
	dupsSeen     int64
}

// NewTracer returns a Tracer that keeps at most limit events.
func NewTracer(limit int) *Tracer { return &Tracer{limit: limit} }

// Observer returns the hooks that feed t; pass it to RunObserved with one
// graph (a trace is one topology).
func (t *Tracer) Observer() Observer {
	return Observer{Deliver: t.deliver, Duplicate: t.duplicate, Crash: t.crash}
}

func (t *Tracer) add(e TraceEvent) {
	if len(t.events) < t.limit {
		t.events = append(t.events, e)
		return
	}
	if !t.noDuplicates {
		t.dropDuplicates()
		if e.Kind == TraceDuplicate {
			return
		}
		if len(t.events) < t.limit {
			t.events = append(t.events, e)
			return
		}
	}
	t.overflow = true
}

// dropDuplicates removes every duplicate recorded and stops recording them.
func (t *Tracer) dropDuplicates() {
	t.noDuplicates = true
	t.events = slices.DeleteFunc(t.events, func(e TraceEvent) bool { return e.Kind == TraceDuplicate })
}

func (t *Tracer) deliver(d Delivery) {
	k := TraceDelivered
	if d.Hop == 0 && d.From < 0 {
		k = TracePublished
	}
	t.add(TraceEvent{At: d.At, Broadcast: int32(d.Broadcast), Node: int32(d.Node), From: int32(d.From), Hop: int16(d.Hop), Kind: k})
}

func (t *Tracer) duplicate(d Delivery) {
	t.dupsSeen++
	if t.noDuplicates {
		return
	}
	t.add(TraceEvent{At: d.At, Broadcast: int32(d.Broadcast), Node: int32(d.Node), From: int32(d.From), Hop: int16(d.Hop), Kind: TraceDuplicate})
}

func (t *Tracer) crash(node int, at int64) {
	t.add(TraceEvent{At: at, Node: int32(node), From: -1, Kind: TraceDown})
}

// Events returns the recorded events in virtual-time order.
func (t *Tracer) Events() []TraceEvent { return t.events }

// DroppedDuplicates reports how many duplicates the run had if they were
// left out of the trace to stay within the limit, and 0 if all are in it.
func (t *Tracer) DroppedDuplicates() int64 {
	if t.noDuplicates {
		return t.dupsSeen
	}
	return 0
}

// Err reports a trace that lost first deliveries or crashes to the limit:
// the caller should refuse such runs up front (see TraceEventBound).
func (t *Tracer) Err() error {
	if t.overflow {
		return fmt.Errorf("sim: trace: over %d events even without duplicates", t.limit)
	}
	return nil
}

// TraceEventBound is the most events other than duplicates that a traced
// run of n nodes and the given number of broadcasts can record: one publish or first
// delivery per node per broadcast, and one crash per node. A caller with an
// event limit checks it before the run instead of failing after.
func TraceEventBound(n, broadcasts int) int64 { return int64(n) * int64(broadcasts+1) }

// Links returns the graph's links as undirected pairs {a, b} with a < b,
// each once, sorted: what a trace draws. A one-way kout link a→b becomes
// the pair too, and two nodes that chose each other give one pair, since a
// drawing has no use for arrowheads and a delivery names its sender.
func (g *Graph) Links() [][2]int {
	var out [][2]int
	for a := 0; a < g.N(); a++ {
		for _, id := range g.Peers(a) {
			b := int(id) - 1
			if a == b {
				continue
			}
			out = append(out, [2]int{min(a, b), max(a, b)})
		}
	}
	slices.SortFunc(out, func(x, y [2]int) int {
		if x[0] != y[0] {
			return x[0] - y[0]
		}
		return x[1] - y[1]
	})
	return slices.Compact(out)
}
