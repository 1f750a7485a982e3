package node

import (
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
	"gossipmesh/wire"
)

// Event kinds, as api.Event.Kind spells them.
const (
	EventPublished = "published"
	EventDelivered = "delivered"
	EventDuplicate = "duplicate"
)

// Node streams its events to the API's GET /events.
var _ api.EventSource = (*Node)(nil)

// subscribers fans events out to live subscribers without ever waiting: a
// subscriber whose buffer is full loses the event, and the loss is counted.
// The list is copy-on-write so the loop reads it without a lock, and the
// loop builds no event at all while nobody listens.
type subscribers struct {
	mu      sync.Mutex
	stopped bool // closeAll ran: new subscriptions start closed
	list    atomic.Pointer[[]*subscriber]
}

type subscriber struct {
	mu      sync.Mutex // orders sends against close
	closed  bool
	ch      chan api.Event
	dropped atomic.Uint64
}

// send delivers e unless the buffer is full or the subscription ended.
func (s *subscriber) send(e api.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	select {
	case s.ch <- e:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// event sends one event about message m to every subscriber.
func (n *Node) event(kind string, m *wire.Message, from wire.NodeID, now int64) {
	l := n.subs.list.Load()
	if l == nil || len(*l) == 0 {
		return
	}
	e := api.Event{
		Kind:      kind,
		Node:      n.idStr,
		ID:        m.ID.String(),
		Origin:    m.Origin.String(),
		At:        time.Unix(0, now),
		LatencyMS: float64(max(now-m.PublishedAt, 0)) / 1e6,
	}
	if kind != EventPublished {
		e.Hop = int(m.Hop)
		e.From = from.String()
	}
	for _, sub := range *l {
		if !sub.send(e) {
			n.m.eventsDropped.Inc()
		}
	}
}

func (s *subscribers) add(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		sub.close()
		return
	}
	var next []*subscriber
	if l := s.list.Load(); l != nil {
		next = append(next, *l...)
	}
	next = append(next, sub)
	s.list.Store(&next)
}

func (s *subscribers) remove(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.list.Load()
	if l == nil {
		return
	}
	var next []*subscriber
	for _, x := range *l {
		if x != sub {
			next = append(next, x)
		}
	}
	s.list.Store(&next)
}

// closeAll ends every subscription, when the node stops.
func (s *subscribers) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.list.Load(); l != nil {
		for _, sub := range *l {
			sub.close()
		}
	}
	s.list.Store(nil)
	s.stopped = true
}

// Subscribe implements api.EventSource: it returns a channel of this node's
// events (published, delivered with hop, from and latency, duplicate) and a
// function that ends the subscription and closes the channel. Events that
// do not fit in buffer are dropped and counted in
// gossipmesh_events_dropped_total: a slow subscriber never slows the node.
// The channel also closes when the node stops.
func (n *Node) Subscribe(buffer int) (<-chan api.Event, func()) {
	sub := &subscriber{ch: make(chan api.Event, max(buffer, 0))}
	n.subs.add(sub)
	return sub.ch, func() {
		n.subs.remove(sub)
		sub.close()
	}
}
