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
)

// NewHandler serves a node's HTTP API from b. metrics serves GET /metrics
// (a promhttp handler over the node's own registry); nil leaves it out.
//
// Routes:
//
//	POST /messages        {"body": "..."} → 201 {"id": "..."}
//	GET  /messages        recent receipts, newest first; ?limit=N
//	GET  /messages/{id}   this node's receipt, or 404; ?wait=1s blocks until it arrives
//	GET  /peers           the node's links
//	GET  /healthz         the node's id, addresses and peer count
//	POST /load            publish a timed series of messages (benchmarks)
//	GET  /metrics         Prometheus exposition
//	GET  /events          live events as Server-Sent Events (if b is an EventSource)
func NewHandler(b Backend, metrics http.Handler) http.Handler {
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
		mux.HandleFunc("GET /events", events(src))
	}
	return JSONErrors(mux)
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
	res, err := s.b.Load(r.Context(), req)
	if err != nil {
		WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

// MaxLoadCount caps LoadRequest.Count, which bounds the ids in the answer.
const MaxLoadCount = 1_000_000

// Validate reports a LoadRequest that a node with this body limit can't run.
func (r LoadRequest) Validate(maxBody int) error {
	switch {
	case r.Count < 1 || r.Count > MaxLoadCount:
		return fmt.Errorf("count %d: want 1 to %d", r.Count, MaxLoadCount)
	case r.Rate < 0:
		return fmt.Errorf("rate %v: must not be negative", r.Rate)
	case r.Size < 0 || r.Size > maxBody:
		return fmt.Errorf("size %d: want 0 to %d", r.Size, maxBody)
	}
	return nil
}
