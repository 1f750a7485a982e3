package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
)

// StreamEvent is one entry of the dashboard's aggregated stream (GET
// /api/events, Server-Sent Events, one JSON object per "data:" line).
//
// Type "event" is a node's api.Event annotated with indices, so that the
// page never has to map node ids itself. Type "stream" says that the
// dashboard started or stopped following a node's events (a killed node
// stops; a restarted one starts again). Type "control" echoes a kill or
// restart made from any page. Type "lost" says this browser fell behind
// and Count events were dropped for it.
type StreamEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	// FromIndex and OriginIndex are -1 when unknown or not applicable.
	FromIndex   int `json:"from_index"`
	OriginIndex int `json:"origin_index"`
	api.Event
}

// heartbeat keeps idle browser streams open through proxies, and lets the
// server notice a browser that went away.
const heartbeat = 15 * time.Second

// Run follows every node's event stream and fans the events out to the
// browsers until ctx ends. A node whose stream fails or ends (killed,
// restarting, not up yet) is retried with backoff, reading its address
// again each time. Run returns nil when ctx ends; with no mesh it just
// waits.
func (s *Server) Run(ctx context.Context) error {
	if s.mesh == nil {
		<-ctx.Done()
		return nil
	}
	nodes := s.mesh.Nodes()
	s.mu.Lock()
	s.streams = make([]streamState, len(nodes))
	s.ids = indexByID(nodes)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { s.follow(ctx, i) })
	}
	wg.Wait()
	return nil
}

// follow keeps node i's event stream open for as long as ctx lasts.
func (s *Server) follow(ctx context.Context, i int) {
	backoff := s.opts.RetryMin
	for ctx.Err() == nil {
		err := s.followOnce(ctx, i)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			// The stream was up and then ended: try again at once, the
			// node may only have been restarted.
			backoff = s.opts.RetryMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if err != nil {
			backoff = min(2*backoff, s.opts.RetryMax)
		}
	}
}

// followOnce opens node i's stream and forwards it until it ends. It
// returns an error only when the stream could not be opened.
func (s *Server) followOnce(ctx context.Context, i int) error {
	nodes := s.mesh.Nodes()
	if i >= len(nodes) {
		<-ctx.Done()
		return ctx.Err()
	}
	n := nodes[i]
	if n.HTTPURL == "" || !n.Alive {
		err := fmt.Errorf("node %d is down", i)
		s.setStream(i, false, err)
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.client(n.HTTPURL).Events(sctx)
	if err != nil {
		err = fmt.Errorf("following node %d: %w", i, err)
		s.setStream(i, false, err)
		return err
	}
	s.mu.Lock()
	s.ids = indexByID(nodes) // ids may change across a restart
	s.mu.Unlock()
	s.setStream(i, true, nil)
	for ev := range ch {
		s.forward(i, ev)
	}
	s.setStream(i, false, errors.New("stream ended"))
	return nil
}

// setStream records and announces a change in node i's stream state.
func (s *Server) setStream(i int, connected bool, err error) {
	st := streamState{Connected: connected}
	if err != nil {
		st.Error = err.Error()
	}
	s.mu.Lock()
	changed := i < len(s.streams) && s.streams[i] != st
	wasConnected := i < len(s.streams) && s.streams[i].Connected
	if i < len(s.streams) {
		s.streams[i] = st
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	if connected != wasConnected {
		s.log.Info("dashboard: node stream", "index", i, "connected", connected, "err", err)
	}
	s.hub.send(mustJSON(map[string]any{"type": "stream", "index": i, "connected": connected, "error": st.Error}))
}

func (s *Server) forward(i int, ev api.Event) {
	s.mu.Lock()
	from, okFrom := s.ids[ev.From]
	origin, okOrigin := s.ids[ev.Origin]
	s.mu.Unlock()
	se := StreamEvent{Type: "event", Index: i, FromIndex: -1, OriginIndex: -1, Event: ev}
	if okFrom && ev.From != "" {
		se.FromIndex = from
	}
	if okOrigin {
		se.OriginIndex = origin
	}
	s.hub.send(mustJSON(se))
}

// events serves GET /api/events: the aggregated stream, as Server-Sent
// Events. It starts with a "hello" carrying every node's stream state.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	if !s.browsers.Acquire() {
		s.browsers.Refuse(w)
		return
	}
	defer s.browsers.Release()
	sub := s.hub.subscribe(s.opts.Buffer)
	defer s.hub.unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.mu.Lock()
	hello := mustJSON(map[string]any{"type": "hello", "streams": s.streams})
	s.mu.Unlock()
	fmt.Fprintf(w, "retry: 1000\ndata: %s\n\n", hello)
	flusher.Flush()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-beat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		case msg := <-sub.ch:
			if n := sub.lost.Swap(0); n > 0 {
				fmt.Fprintf(w, "data: {\"type\":\"lost\",\"count\":%d}\n\n", n)
			}
			fmt.Fprintf(w, "data: %s\n\n", msg)
			// Write what else is queued before flushing: one flush per
			// burst, not per event.
			for more := true; more; {
				select {
				case msg := <-sub.ch:
					fmt.Fprintf(w, "data: %s\n\n", msg)
				default:
					more = false
				}
			}
		}
		flusher.Flush()
	}
}

// hub fans encoded stream events out to every subscribed browser. A
// browser that falls behind loses events instead of slowing the others.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch   chan []byte
	lost atomic.Int64
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

func (h *hub) subscribe(buffer int) *subscriber {
	sub := &subscriber{ch: make(chan []byte, buffer)}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

func (h *hub) send(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- msg:
		default:
			sub.lost.Add(1)
		}
	}
}

// Serve runs the dashboard on ln until ctx ends: the HTTP server and the
// stream aggregator. Open browser streams end with ctx, so shutdown does
// not wait on them. The server keeps to Options.Limits: timeouts, and at
// most MaxConns connections at once (more are closed on accept).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := api.NewServer(s.Handler(), s.opts.Limits, s.log)
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	limited := api.LimitListener(ln, s.opts.Limits.MaxConns)
	limited.Track(srv)
	ln = limited
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutCtx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("web: serving the dashboard: %w", err)
	}
	return nil
}
