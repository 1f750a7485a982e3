package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Event is one entry of a node's live event stream (GET /events): what
// happened to a message at this node, as it happened.
type Event struct {
	// Kind is one of EventKinds: "published", "delivered" or "duplicate"
	// (gossip's event names).
	Kind string `json:"kind"`
	// Node is the id of the node that reports the event.
	Node string `json:"node"`
	// ID is the message id.
	ID string `json:"id"`
	// Origin is the publisher's node id.
	Origin string `json:"origin"`
	// Hop is the message's hop count at this node.
	Hop int `json:"hop"`
	// From is the neighbour that sent this copy; empty when published.
	From string `json:"from,omitempty"`
	// At is this node's clock when it happened.
	At time.Time `json:"at"`
	// LatencyMS is At minus the publish time, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
}

// NewEvent builds the Event that node reports for what a gossip event
// says happened to m at time now (Unix nanoseconds): the API owns its
// answer types, and a runtime hands it the protocol's terms. from is the
// neighbour the copy came from, ignored for a publish.
func NewEvent(kind gossip.EventKind, node string, m *wire.Message, from wire.NodeID, now int64) Event {
	e := Event{
		Kind:      kind.String(),
		Node:      node,
		ID:        m.ID.String(),
		Origin:    m.Origin.String(),
		At:        time.Unix(0, now),
		LatencyMS: float64(max(now-m.PublishedAt, 0)) / 1e6,
	}
	if kind != gossip.EventPublished {
		e.Hop = int(m.Hop)
		e.From = from.String()
	}
	return e
}

// EventSource is implemented by a Backend that can stream its events. The
// handler serves GET /events only when the Backend is one.
type EventSource interface {
	// Subscribe returns a channel of events and a function that ends the
	// subscription (and closes the channel). A subscriber that falls more
	// than buffer events behind loses events rather than slowing the node,
	// and one that stays that far behind may have its channel closed.
	Subscribe(buffer int) (<-chan Event, func())
}

// sseHeartbeat keeps idle event streams open through proxies and lets the
// server notice a client that has gone away.
const sseHeartbeat = 15 * time.Second

// EventKinds are the values of Event.Kind, which ?kind= on GET /events
// selects from: the names of gossip.StreamedEvents, so that the API, the
// node's logs, traces and the dashboard spell them the same way.
func EventKinds() []string {
	ks := gossip.StreamedEvents()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.String()
	}
	return names
}

// StreamCap caps the event streams one server keeps open at once. Each
// stream holds a buffer and costs work on every event, so an unbounded
// number of subscribers that never read would cost unbounded memory.
type StreamCap struct {
	max  int64
	open atomic.Int64
}

// NewStreamCap returns a cap of n streams (at least 1).
func NewStreamCap(n int) *StreamCap { return &StreamCap{max: int64(max(n, 1))} }

// Acquire takes a slot, or reports false when all n are taken.
func (c *StreamCap) Acquire() bool {
	if c.open.Add(1) > c.max {
		c.open.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot taken by Acquire.
func (c *StreamCap) Release() { c.open.Add(-1) }

// Refuse answers 503 for a stream over the cap.
func (c *StreamCap) Refuse(w http.ResponseWriter) {
	// A client refused a stream often just asks again: do not let it keep
	// the connection, which would count against the connection cap.
	w.Header().Set("Connection", "close")
	WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many event streams: %d open, the limit", c.max))
}

// events serves GET /events as Server-Sent Events: one "data:" line of
// JSON per Event. ?kind=published,delivered streams only those kinds: a
// client that only waits for arrivals (mesh bench) then costs the node no
// write per duplicate. At most streams are open at once; a stream whose
// client stops reading is closed by the node when its buffer stays full,
// or cut by the server's write deadline.
func events(src EventSource, streams *StreamCap) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flusher, ok := w.(http.Flusher)
		if !ok {
			WriteError(w, http.StatusInternalServerError, "streaming unsupported")
			return
		}
		want, err := parseKinds(r.URL.Query().Get("kind"))
		if err != nil {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if !streams.Acquire() {
			streams.Refuse(w)
			return
		}
		defer streams.Release()
		ch, cancel := src.Subscribe(subscriberBuffer)
		defer cancel()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": stream open\n\n")
		flusher.Flush()
		beat := time.NewTicker(sseHeartbeat)
		defer beat.Stop()
		enc := json.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-beat.C:
				fmt.Fprint(w, ": heartbeat\n\n")
			case ev, ok := <-ch:
				if !ok {
					return
				}
				if want != nil && !want[ev.Kind] {
					continue
				}
				fmt.Fprint(w, "data: ")
				_ = enc.Encode(ev) // ends the line
				fmt.Fprint(w, "\n")
			}
			flusher.Flush()
		}
	}
}

// parseKinds turns a ?kind= value into a set; empty means every kind.
func parseKinds(v string) (map[string]bool, error) {
	if v == "" {
		return nil, nil
	}
	want := map[string]bool{}
	for _, k := range strings.Split(v, ",") {
		if !slices.Contains(EventKinds(), k) {
			return nil, fmt.Errorf("kind %q: want a comma-separated list of %v", k, EventKinds())
		}
		want[k] = true
	}
	return want, nil
}

// Events streams the node's events until ctx ends or the node goes away;
// the channel is closed then. kinds, if given, selects the kinds the node
// sends (see EventKinds). Lines other than "data:" (comments, heartbeats)
// are skipped.
func (c *Client) Events(ctx context.Context, kinds ...string) (<-chan Event, error) {
	path := "/events"
	if len(kinds) > 0 {
		path += "?kind=" + url.QueryEscape(strings.Join(kinds, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET /events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	// The shared client may carry a timeout meant for short calls; a stream
	// needs none, so it goes through the transport directly.
	stream := &http.Client{Transport: c.hc.Transport}
	resp, err := stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s/events: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s/events: %w", c.base, &StatusError{Status: resp.StatusCode, Message: "no event stream"})
	}
	out := make(chan Event, 256)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			data, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok {
				continue
			}
			var ev Event
			if json.Unmarshal(data, &ev) != nil {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
