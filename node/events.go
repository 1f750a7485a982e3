package node

import (
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Node streams its events to the API's GET /events.
var _ api.EventSource = (*Node)(nil)

// subscribers fans events out to live subscribers without ever waiting: a
// subscriber whose buffer is full loses the event, and the loss is counted;
// one whose buffer stays full for subscriberPatience is cut off (its
// channel closed), so a client that never reads stops costing the loop
// anything. Each event costs O(1) per subscriber. The list is copy-on-write
// so the loop reads it without a lock, and the loop builds no event at all
// while nobody listens.
type subscribers struct {
	mu      sync.Mutex
	stopped bool // closeAll ran: new subscriptions start closed
	list    atomic.Pointer[[]*subscriber]
}

// subscriberPatience is how long a subscriber's buffer may stay full, by
// the loop's clock, before the subscriber is cut off: long enough for a
// reader that is only busy for a moment, short enough that a stuck one
// costs the node a second of work per event at most.
const subscriberPatience = time.Second

type subscriber struct {
	mu        sync.Mutex // orders sends against close
	closed    bool
	ch        chan api.Event
	fullSince int64 // loop clock of the first drop in a row; 0 while keeping up
	dropped   atomic.Uint64
}

// send delivers e unless the buffer is full or the subscription ended. It
// reports whether e was dropped, and whether that cut the subscriber off:
// its buffer has been full since at least subscriberPatience before now.
func (s *subscriber) send(e api.Event, now int64) (dropped, cut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, false
	}
	select {
	case s.ch <- e:
		s.fullSince = 0
		return false, false
	default:
	}
	s.dropped.Add(1)
	if s.fullSince == 0 {
		s.fullSince = now
	} else if now-s.fullSince >= int64(subscriberPatience) {
		s.closed = true
		close(s.ch)
		return true, true
	}
	return true, false
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
func (n *Node) event(kind gossip.EventKind, m *wire.Message, from wire.NodeID, now int64) {
	l := n.subs.list.Load()
	if l == nil || len(*l) == 0 {
		return
	}
	e := api.NewEvent(kind, n.idStr, m, from, now)
	for _, sub := range *l {
		dropped, cut := sub.send(e, now)
		if dropped {
			n.m.eventsDropped.Inc()
		}
		if cut {
			// Rare: a lock and a copy of the list, once per stuck subscriber.
			n.subs.remove(sub)
			n.log.Info("events: subscriber cut off: its buffer stayed full", "for", subscriberPatience, "dropped", sub.dropped.Load())
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
// The channel also closes when the node stops, and when its buffer has
// stayed full for a second (the subscriber is cut off).
func (n *Node) Subscribe(buffer int) (<-chan api.Event, func()) {
	sub := &subscriber{ch: make(chan api.Event, max(buffer, 0))}
	n.subs.add(sub)
	return sub.ch, func() {
		n.subs.remove(sub)
		sub.close()
	}
}
