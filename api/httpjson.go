package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The helpers below give every JSON endpoint of the project, the node's
// and the dashboard's, the same answers to the same mistakes.

// ValidMsgID reports whether s is a message id as the API spells it: 32
// lowercase hex digits.
func ValidMsgID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DecodeJSON reads one JSON object of at most max bytes into v, refusing
// unknown fields and trailing data. When that fails it has already
// answered the client (400, or 413 for an oversized body) and returns
// false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		WriteError(w, http.StatusBadRequest, "empty request body: want a JSON object")
	default:
		WriteError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
	}
	return false
}

// WriteJSON answers with v as JSON. Answers describe live state, so no
// cache may keep them.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers with status and {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, Error{Error: msg})
}

// JSONErrors wraps mux so that its own plain-text 404 and 405 answers
// become JSON errors that name the problem: every 4xx a client sees has
// one shape.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // sets the path values that h needs
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
	})
}

// statusRecorder swallows the mux's plain-text error body and writes a
// JSON one with the same status instead.
type statusRecorder struct {
	http.ResponseWriter
	wrote bool
}

func (s *statusRecorder) WriteHeader(status int) {
	if s.wrote {
		return
	}
	s.wrote = true
	msg := http.StatusText(status)
	switch status {
	case http.StatusNotFound:
		msg = "no such route"
	case http.StatusMethodNotAllowed:
		msg = "method not allowed; allowed: " + s.Header().Get("Allow")
	}
	s.Header().Del("X-Content-Type-Options")
	WriteError(s.ResponseWriter, status, msg)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return len(p), nil
}
