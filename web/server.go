package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"gossipmesh/api"
)

//go:embed static
var staticFiles embed.FS

// Limits on what a browser may ask of the dashboard.
const (
	// MaxPublishBody caps a message published from the page. The dashboard
	// is for people typing messages; load belongs to `mesh bench`.
	MaxPublishBody = 64 << 10
	// maxPublishRequest bounds the JSON request, which escaping can make
	// up to six times longer than the body.
	maxPublishRequest = 6*MaxPublishBody + 1024
	// maxReceiptWait caps ?wait on GET /api/messages/{id}.
	maxReceiptWait = 10 * time.Second
)

// Options tunes a Server. The zero value works.
type Options struct {
	// HTTPClient talks to the nodes' APIs. Nil: a client with its own
	// transport and a short dial timeout, so that a dead node is noticed
	// at once.
	HTTPClient *http.Client
	// Logger receives stream reconnects and request errors. Nil discards.
	Logger *slog.Logger
	// Trace, if set, is served at GET /api/trace for the page's replay
	// mode. With a nil Mesh the dashboard only replays.
	Trace *Trace
	// RetryMin and RetryMax bound the backoff between attempts to reopen a
	// node's event stream (a killed node, a node still starting). Defaults
	// 100 ms and 1 s: a restarted node shows up within a second.
	RetryMin, RetryMax time.Duration
	// Buffer is how many events each browser may fall behind before it
	// loses events (counted, and reported to the page). Default 4096.
	Buffer int
	// MaxStreams caps the browsers following GET /api/events at once;
	// over it the answer is 503. Default 64.
	MaxStreams int
	// Limits are the HTTP server's timeouts and connection cap (Serve).
	// The zero value means api.DefaultServerLimits; otherwise it must pass
	// its Validate.
	Limits api.ServerLimits
}

// Server is the dashboard. Handler serves the page and its JSON routes;
// Run feeds the live stream. Both are safe to use at once.
type Server struct {
	mesh  Mesh // nil: replay only
	opts  Options
	log   *slog.Logger
	hub   *hub
	trace []byte // Options.Trace, encoded once
	// token is this launch's secret for state-changing routes: the page
	// carries it in a meta tag, and api.Guard asks for it.
	token    string
	browsers *api.StreamCap // caps GET /api/events

	mu      sync.Mutex
	clients map[string]*api.Client // by base URL
	ids     map[string]int         // node id → index
	streams []streamState
}

// streamState is whether the dashboard is following a node's events.
type streamState struct {
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
}

// New returns a dashboard for m (nil for a replay-only dashboard).
func New(m Mesh, opts Options) (*Server, error) {
	if m == nil && opts.Trace == nil {
		return nil, errors.New("web: need a mesh, a trace or both")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(time.Second, opts.RetryMin)
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = api.DefaultMaxSubscribers
	}
	if opts.Limits == (api.ServerLimits{}) {
		opts.Limits = api.DefaultServerLimits()
	}
	if err := opts.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	token, err := api.NewToken()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{mesh: m, opts: opts, log: opts.Logger, hub: newHub(), clients: map[string]*api.Client{},
		token: token, browsers: api.NewStreamCap(opts.MaxStreams)}
	if opts.Trace != nil {
		if err := opts.Trace.Validate(); err != nil {
			return nil, err
		}
		b, err := json.Marshal(opts.Trace)
		if err != nil {
			return nil, fmt.Errorf("web: encoding the trace: %w", err)
		}
		s.trace = b
	}
	return s, nil
}

// Handler serves the dashboard:
//
//	GET  /                          the page (live mode)
//	GET  /replay                    the page in replay mode
//	GET  /static/...                its script and style sheet
//	GET  /api/mode                  {"live": bool, "trace": bool}
//	GET  /api/topology              {"nodes": [{index, id}], "links": [[a, b]]}
//	GET  /api/nodes                 the node table, with each event stream's state
//	POST /api/publish               {"node": 3, "body": "hi"} → 201 {"id", "node"}
//	POST /api/nodes/{index}/kill    kill a node's process
//	POST /api/nodes/{index}/restart start it again
//	POST /api/nodes/{index}/pause   stop a node's process (SIGSTOP): a hung peer
//	POST /api/nodes/{index}/resume  continue it (SIGCONT)
//	GET  /api/faults                every node's state and faults, and the cut links
//	POST /api/faults/split          {} for halves, or {"a": [0, 1], "b": [2, 3]}
//	POST /api/faults/heal           remove every cut
//	POST /api/faults/loss           {"drop": 0.2}: 0 to MaxLoss on every link
//	GET  /api/adversaries           every node's adversary mode and what it did
//	POST /api/nodes/{index}/adversary  {"mode": "blackhole"}, or "" for honest: the node's PUT /adversary
//	GET  /api/messages/{id}         every node's receipt of a message; ?wait=1s
//	GET  /api/events                the aggregated live stream (Server-Sent Events)
//	GET  /api/trace                 the trace to replay, if any
//
// Every 4xx and 5xx answer of an /api route is a JSON {"error": "..."}.
// Every route is behind api.Guard with this launch's token: the Host must
// be the dashboard's own address, and a POST must be same-origin, carry
// Content-Type application/json and the token in X-Mesh-Token, which the
// page reads from its <meta name="mesh-token"> and no other origin can.
func (s *Server) Handler() http.Handler {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	mux := http.NewServeMux()
	page := s.page(sub)
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /replay", page)
	mux.Handle("GET /static/", http.StripPrefix("/static/", assets(sub)))
	mux.HandleFunc("GET /api/mode", s.mode)
	mux.HandleFunc("GET /api/trace", s.getTrace)
	mux.HandleFunc("GET /api/topology", s.live(s.topology))
	mux.HandleFunc("GET /api/nodes", s.live(s.nodes))
	mux.HandleFunc("POST /api/publish", s.live(s.publish))
	mux.HandleFunc("POST /api/nodes/{index}/kill", s.live(s.kill))
	mux.HandleFunc("POST /api/nodes/{index}/restart", s.live(s.restart))
	mux.HandleFunc("POST /api/nodes/{index}/pause", s.live(s.pause))
	mux.HandleFunc("POST /api/nodes/{index}/resume", s.live(s.resume))
	mux.HandleFunc("GET /api/faults", s.live(s.getFaults))
	mux.HandleFunc("POST /api/faults/split", s.live(s.split))
	mux.HandleFunc("POST /api/faults/heal", s.live(s.heal))
	mux.HandleFunc("POST /api/faults/loss", s.live(s.loss))
	mux.HandleFunc("GET /api/adversaries", s.live(s.getAdversaries))
	mux.HandleFunc("POST /api/nodes/{index}/adversary", s.live(s.setAdversary))
	mux.HandleFunc("GET /api/messages/{id}", s.live(s.receipts))
	mux.HandleFunc("GET /api/events", s.live(s.events))
	return api.Guard(api.JSONErrors(mux), api.GuardOptions{Token: s.token})
}

// securityHeaders pin the page to its own origin: a Content-Security-Policy
// of 'self' is also the proof that nothing is fetched from a CDN.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// page serves index.html with this launch's token in a meta tag, right
// after <head>: the page's script sends it back on every POST.
func (s *Server) page(sub fs.FS) http.Handler {
	b, err := fs.ReadFile(sub, "index.html")
	if err == nil {
		b = bytes.Replace(b, []byte("<head>"), []byte("<head>\n<meta name=\"mesh-token\" content=\""+s.token+"\">"), 1)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, "page missing from the binary")
			return
		}
		securityHeaders(w.Header())
		// The page carries a secret: no cache may keep it.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
}

func assets(sub fs.FS) http.Handler {
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			api.WriteError(w, http.StatusNotFound, "no such asset")
			return
		}
		securityHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
}

// live guards the routes that need a mesh.
func (s *Server) live(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.mesh == nil {
			api.WriteError(w, http.StatusNotFound, "no live mesh: this dashboard only replays a trace (see /replay)")
			return
		}
		h(w, r)
	}
}

func (s *Server) mode(w http.ResponseWriter, _ *http.Request) {
	api.WriteJSON(w, http.StatusOK, map[string]bool{"live": s.mesh != nil, "trace": s.trace != nil})
}

func (s *Server) getTrace(w http.ResponseWriter, _ *http.Request) {
	if s.trace == nil {
		api.WriteError(w, http.StatusNotFound, "no trace loaded: start the dashboard with `mesh replay FILE`, or load a file from the page")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.trace)
}

// Topology is the answer to GET /api/topology.
type Topology struct {
	Nodes []TopologyNode `json:"nodes"`
	Links [][2]int       `json:"links"`
}

// TopologyNode is a node of a Topology.
type TopologyNode struct {
	Index int    `json:"index"`
	ID    string `json:"id"`
}

func (s *Server) topology(w http.ResponseWriter, _ *http.Request) {
	nodes := s.mesh.Nodes()
	t := Topology{Nodes: make([]TopologyNode, len(nodes)), Links: links(nodes)}
	for i, n := range nodes {
		t.Nodes[i] = TopologyNode{Index: n.Index, ID: n.ID}
	}
	api.WriteJSON(w, http.StatusOK, t)
}

// NodeRow is one row of GET /api/nodes: the node and whether the dashboard
// is following its event stream.
type NodeRow struct {
	NodeInfo
	Stream streamState `json:"stream"`
}

func (s *Server) nodes(w http.ResponseWriter, _ *http.Request) {
	nodes := s.mesh.Nodes()
	s.mu.Lock()
	rows := make([]NodeRow, len(nodes))
	for i, n := range nodes {
		if n.Peers == nil {
			n.Peers = []int{}
		}
		rows[i] = NodeRow{NodeInfo: n}
		if i < len(s.streams) {
			rows[i].Stream = s.streams[i]
		}
	}
	s.mu.Unlock()
	api.WriteJSON(w, http.StatusOK, map[string]any{"nodes": rows})
}

// PublishRequest is the body of POST /api/publish.
type PublishRequest struct {
	// Node is the index of the node to publish from.
	Node *int `json:"node"`
	// Body is the message.
	Body *string `json:"body"`
}

// PublishResponse is the 201 answer to POST /api/publish.
type PublishResponse struct {
	ID   string `json:"id"`
	Node int    `json:"node"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	var req PublishRequest
	if !api.DecodeJSON(w, r, maxPublishRequest, &req) {
		return
	}
	switch {
	case req.Node == nil:
		api.WriteError(w, http.StatusBadRequest, `missing field "node": the index of the node to publish from`)
		return
	case req.Body == nil:
		api.WriteError(w, http.StatusBadRequest, `missing field "body"`)
		return
	case len(*req.Body) > MaxPublishBody:
		api.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is %d bytes, the dashboard's limit is %d", len(*req.Body), MaxPublishBody))
		return
	}
	n, ok := s.node(w, *req.Node)
	if !ok {
		return
	}
	res, err := s.client(n.HTTPURL).Publish(r.Context(), *req.Body)
	if err != nil {
		api.WriteError(w, upstreamStatus(err), fmt.Sprintf("publishing from node %d: %v", n.Index, err))
		return
	}
	api.WriteJSON(w, http.StatusCreated, PublishResponse{ID: res.ID, Node: n.Index})
}

// upstreamStatus passes a node's 4xx through (the browser sent something
// the node refused) and reports anything else as a bad gateway.
func upstreamStatus(err error) int {
	var se *api.StatusError
	if errors.As(err, &se) && se.Status/100 == 4 {
		return se.Status
	}
	return http.StatusBadGateway
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) { s.control(w, r, "kill", s.mesh.Kill) }
func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, "restart", s.mesh.Restart)
}

func (s *Server) control(w http.ResponseWriter, r *http.Request, verb string, do func(context.Context, int) error) {
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("node index %q: want a whole number", r.PathValue("index")))
		return
	}
	if _, ok := s.node(w, i); !ok {
		return
	}
	if err := do(r.Context(), i); err != nil {
		status := http.StatusConflict
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			status = http.StatusNotImplemented
		case errors.Is(err, ErrNoSuchNode):
			status = http.StatusNotFound
		}
		api.WriteError(w, status, fmt.Sprintf("%s node %d: %v", verb, i, err))
		return
	}
	s.log.Info("dashboard: node "+verb, "index", i)
	s.hub.send(mustJSON(map[string]any{"type": "control", "index": i, "action": verb}))
	s.nodes(w, r)
}

// node looks up node i, answering 404 itself when there is none.
func (s *Server) node(w http.ResponseWriter, i int) (NodeInfo, bool) {
	nodes := s.mesh.Nodes()
	if i < 0 || i >= len(nodes) {
		api.WriteError(w, http.StatusNotFound, fmt.Sprintf("node %d: the mesh has nodes 0 to %d", i, len(nodes)-1))
		return NodeInfo{}, false
	}
	return nodes[i], true
}

// NodeReceipt is one node's line of GET /api/messages/{id}.
type NodeReceipt struct {
	Index int `json:"index"`
	// Reached is false when the node has not seen the message (or did not
	// answer: see Error).
	Reached   bool    `json:"reached"`
	Hop       int     `json:"hop"`
	FromIndex int     `json:"from_index"` // -1 at the publisher
	LatencyMS float64 `json:"latency_ms"`
	// Duplicates counts the later copies the node received.
	Duplicates int    `json:"duplicates"`
	Error      string `json:"error,omitempty"`
}

// receipts asks every node for its receipt of one message, at once. The
// page uses it to fill in what the live stream missed (events are dropped
// rather than slowing a node down) and to show duplicates that arrived
// after the first look.
func (s *Server) receipts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !api.ValidMsgID(id) {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("message id %q: want 32 hex digits", id))
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxReceiptWait {
			api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("wait %q: want a duration from 0s to %v", v, maxReceiptWait))
			return
		}
		wait = d
	}
	nodes := s.mesh.Nodes()
	index := indexByID(nodes)
	out := make([]NodeReceipt, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = NodeReceipt{Index: i, FromIndex: -1}
		if !n.Alive {
			out[i].Error = "node is down"
			continue
		}
		wg.Go(func() {
			rc, err := s.client(n.HTTPURL).Receipt(r.Context(), id, wait)
			switch {
			case errors.Is(err, api.ErrNotFound):
			case err != nil:
				out[i].Error = err.Error()
			default:
				out[i].Reached = true
				out[i].Hop = rc.Hop
				out[i].Duplicates = rc.Duplicates
				out[i].LatencyMS = float64(rc.ReceivedAt.Sub(rc.PublishedAt)) / 1e6
				if j, ok := index[rc.From]; ok && rc.From != "" {
					out[i].FromIndex = j
				}
			}
		})
	}
	wg.Wait()
	api.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "receipts": out})
}

func indexByID(nodes []NodeInfo) map[string]int {
	m := make(map[string]int, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.Index
	}
	return m
}

// client returns the (cached) API client for a node's base URL.
func (s *Server) client(url string) *api.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[url]
	if !ok {
		c = api.NewClient(url, s.opts.HTTPClient)
		s.clients[url] = c
	}
	return c
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only ever called with plain structs and maps
	}
	return b
}
