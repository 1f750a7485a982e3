package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Limits on what a client may ask for.
const (
	// DefaultRecent is how many receipts GET /messages lists without ?limit.
	DefaultRecent = 100
	// MaxRecent caps ?limit on GET /messages.
	MaxRecent = 1 << 20
	// MaxWait caps ?wait on GET /messages/{id}.
	MaxWait = time.Minute
	// maxLoadBody bounds a POST /load request body.
	maxLoadBody = 4 << 10
	// DefaultMaxSubscribers is HandlerLimits.MaxSubscribers's default.
	DefaultMaxSubscribers = 64
	// subscriberBuffer is how many events one GET /events stream may fall
	// behind; a stream that stays that far behind is closed by the node.
	subscriberBuffer = 1024
)

// HandlerLimits bound what the clients of one node's API may hold at once.
type HandlerLimits struct {
	// MaxSubscribers caps the GET /events streams open at once; over it the
	// answer is 503 with a JSON error. Each costs the node a buffer of
	// 1,024 events (some 200 KiB) and work on every event. Default 64.
	MaxSubscribers int
}

// DefaultHandlerLimits returns the limits documented on HandlerLimits.
func DefaultHandlerLimits() HandlerLimits {
	return HandlerLimits{MaxSubscribers: DefaultMaxSubscribers}
}

// Validate reports a limit that makes no sense.
func (l HandlerLimits) Validate() error {
	if l.MaxSubscribers < 1 {
		return fmt.Errorf("api limits: MaxSubscribers %d: want at least 1", l.MaxSubscribers)
	}
	return nil
}

// NewHandler serves a node's HTTP API from b with DefaultHandlerLimits.
// metrics serves GET /metrics (a promhttp handler over the node's own
// registry); nil leaves it out. Every route is behind Guard (no token):
// no web page can drive a node, and a rebound DNS name reads nothing.
//
// Routes:
//
//	POST /messages        {"body": "..."} → 201 {"id": "..."}
//	GET  /messages        recent receipts, newest first; ?limit=N
//	GET  /messages/{id}   this node's receipt, or 404; ?wait=1s blocks until it arrives
//	GET  /peers           the node's links, each with its score
//	GET  /peers/banned    the peers the score banned, until when and why (if b is a BanBackend)
//	GET  /healthz         the node's id, addresses and peer count
//	POST /load            publish a timed series of messages (benchmarks)
//	GET  /metrics         Prometheus exposition
//	GET  /events          live events as Server-Sent Events (if b is an EventSource)
//	GET, PUT, DELETE /faults   the fault plan (if b is a FaultBackend; see faults.go)
//	GET  /membership      active, passive and suspect peers (if b is a MembershipBackend)
//	GET, PUT /adversary   the node's misbehaviour and what it did (if b is an AdversaryBackend; see adversary.go)
func NewHandler(b Backend, metrics http.Handler) http.Handler {
	return NewHandlerWith(b, metrics, DefaultHandlerLimits())
}

// NewHandlerWith is NewHandler with other limits; invalid limits are
// replaced by the defaults' values field by field.
func NewHandlerWith(b Backend, metrics http.Handler, lim HandlerLimits) http.Handler {
	if lim.MaxSubscribers < 1 {
		lim.MaxSubscribers = DefaultMaxSubscribers
	}
	s := &server{b: b}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /messages", s.publish)
	mux.HandleFunc("GET /messages", s.recent)
	mux.HandleFunc("GET /messages/{id}", s.receipt)
	mux.HandleFunc("GET /peers", s.peers)
	mux.HandleFunc("GET /healthz", s.health)
	mux.HandleFunc("POST /load", s.load)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if src, ok := b.(EventSource); ok {
		mux.HandleFunc("GET /events", events(src, NewStreamCap(lim.MaxSubscribers)))
	}
	if fb, ok := b.(FaultBackend); ok {
		registerFaults(mux, fb)
	}
	if mb, ok := b.(MembershipBackend); ok {
		registerMembership(mux, mb)
	}
	if bb, ok := b.(BanBackend); ok {
		registerBans(mux, bb)
	}
	if ab, ok := b.(AdversaryBackend); ok {
		registerAdversary(mux, ab)
	}
	return Guard(JSONErrors(mux), GuardOptions{})
}

type server struct{ b Backend }

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	// JSON escaping can make a body up to six times longer (\u00XX), so the
	// request limit is looser than the body limit, which is checked after
	// decoding.
	max := int64(s.b.MaxBody())*6 + 1024
	var req PublishRequest
	if !DecodeJSON(w, r, max, &req) {
		return
	}
	if req.Body == nil {
		WriteError(w, http.StatusBadRequest, `missing field "body"`)
		return
	}
	if len(*req.Body) > s.b.MaxBody() {
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is %d bytes, limit %d", len(*req.Body), s.b.MaxBody()))
		return
	}
	rc, err := s.b.Publish(r.Context(), []byte(*req.Body))
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, ErrBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		if errors.Is(err, ErrRateLimited) {
			status = http.StatusTooManyRequests
		}
		WriteError(w, status, err.Error())
		return
	}
	WriteJSON(w, http.StatusCreated, PublishResponse{ID: rc.ID})
}

func (s *server) recent(w http.ResponseWriter, r *http.Request) {
	limit := DefaultRecent
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRecent {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a whole number from 1 to %d", v, MaxRecent))
			return
		}
		limit = n
	}
	list := s.b.Recent(limit)
	for i := range list {
		list[i].Body = ""
	}
	if list == nil {
		list = []Receipt{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *server) receipt(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidMsgID(id) {
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("message id %q: want 32 hex digits", id))
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWait {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("wait %q: want a duration from 0s to %v", v, MaxWait))
			return
		}
		wait = d
	}
	rc, ok := s.b.Receipt(r.Context(), id, wait)
	if !ok {
		WriteError(w, http.StatusNotFound, "message "+id+" not seen by this node")
		return
	}
	WriteJSON(w, http.StatusOK, rc)
}

func (s *server) peers(w http.ResponseWriter, _ *http.Request) {
	list := s.b.Peers()
	if list == nil {
		list = []Peer{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, s.b.Health())
}

func (s *server) load(w http.ResponseWriter, r *http.Request) {
	var req LoadRequest
	if !DecodeJSON(w, r, maxLoadBody, &req) {
		return
	}
	if err := req.Validate(s.b.MaxBody()); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The load ends with the request: a client that goes away stops it.
	res, err := s.b.Load(r.Context(), req)
	if err != nil {
		WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

// Bounds of a LoadRequest. Every number a client sends has a range, so
// that no value can overflow the schedule or keep a node busy for ever.
const (
	// MaxLoadCount caps LoadRequest.Count, which bounds the ids in the
	// answer (some 35 MB of JSON at the cap).
	MaxLoadCount = 1_000_000
	// MinLoadRate and MaxLoadRate bound a LoadRequest.Rate other than 0
	// (0 publishes back to back): from one message every 100 s to ten
	// million a second, far past what one node publishes.
	MinLoadRate = 0.01
	MaxLoadRate = 10_000_000
)

// Validate reports a LoadRequest that a node with this body limit can't
// run, naming the field.
func (r LoadRequest) Validate(maxBody int) error {
	switch {
	case r.Count < 1 || r.Count > MaxLoadCount:
		return fmt.Errorf("count %d: want 1 to %d", r.Count, MaxLoadCount)
	case r.Rate != 0 && !(r.Rate >= MinLoadRate && r.Rate <= MaxLoadRate): // also catches NaN
		return fmt.Errorf("rate %v: want 0 (back to back) or %v to %v messages/s", r.Rate, MinLoadRate, float64(MaxLoadRate))
	case r.Size < 0 || r.Size > maxBody:
		return fmt.Errorf("size %d: want 0 to %d bytes", r.Size, maxBody)
	}
	return nil
}
