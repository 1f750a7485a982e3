package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// AdversaryStats counts what an adversary node did, by kind of harm: the
// frames it withheld (Dropped, Censored), altered (Tampered), made up
// (Forged, Spammed), sent again (Replayed) or held back (Delayed), and the
// promises it broke (Lies: IHAVEs it never served, IWANTs and GRAFTs it
// ignored). An honest node reports zeros; the counts stay when a node is
// turned honest again, so that what it did is still shown.
type AdversaryStats struct {
	Dropped  uint64 `json:"dropped"`
	Tampered uint64 `json:"tampered"`
	Forged   uint64 `json:"forged"`
	Replayed uint64 `json:"replayed"`
	Spammed  uint64 `json:"spammed"`
	Delayed  uint64 `json:"delayed"`
	Censored uint64 `json:"censored"`
	Lies     uint64 `json:"lies"`
}

// Total is the sum of every count: how many misdeeds in all.
func (s AdversaryStats) Total() uint64 {
	return s.Dropped + s.Tampered + s.Forged + s.Replayed + s.Spammed + s.Delayed + s.Censored + s.Lies
}

// Adversary is the answer to GET and PUT /adversary: the misbehaviour in
// force on the node and what it has done so far.
type Adversary struct {
	// Mode is the modes in force, comma-separated, in the syntax of
	// `mesh node --adversary` (for example "blackhole" or
	// "spam=20000,delay=200ms"); "" for an honest node.
	Mode string `json:"mode"`
	// Stats counts what the node did as an adversary since it started.
	Stats AdversaryStats `json:"stats"`
}

// Honest reports whether no mode is in force.
func (a Adversary) Honest() bool { return a.Mode == "" }

// AdversaryRequest is the body of PUT /adversary.
type AdversaryRequest struct {
	// Mode is the modes to put in force, in the syntax of `mesh node
	// --adversary`; "" turns the node honest. Required, so that an empty
	// body is not mistaken for "honest".
	Mode *string `json:"mode"`
}

// ErrBadMode is what an AdversaryBackend wraps when it refuses a mode it
// cannot parse or apply: PUT /adversary answers 400.
var ErrBadMode = errors.New("bad adversary mode")

// AdversaryBackend is implemented by a Backend that can be made to
// misbehave at run time (node.Node): it gets the /adversary routes. A
// node that lies on purpose is how a person watches the defences work (or
// fail with them off), so this is a test and teaching tool, behind the
// same Guard as every other route: no web page can turn a node.
type AdversaryBackend interface {
	// Adversary returns the modes in force and the counts so far.
	Adversary(ctx context.Context) (Adversary, error)
	// SetAdversary puts mode in force ("" for honest) and returns the
	// state now in force. A mode it cannot parse is refused with an error
	// wrapping ErrBadMode.
	SetAdversary(ctx context.Context, mode string) (Adversary, error)
}

// maxAdversaryBody bounds a PUT /adversary request: a handful of modes.
const maxAdversaryBody = 4 << 10

// registerAdversary adds the /adversary routes for b:
//
//	GET /adversary   {"mode": "blackhole", "stats": {"dropped": 12, ...}}; mode "" when honest
//	PUT /adversary   {"mode": "spam=20000"} or {"mode": ""} for honest; answers as GET
//
// A mode that does not parse is a 400 whose error names the field.
func registerAdversary(mux *http.ServeMux, b AdversaryBackend) {
	mux.HandleFunc("GET /adversary", func(w http.ResponseWriter, r *http.Request) {
		a, err := b.Adversary(r.Context())
		if err != nil {
			WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, a)
	})
	mux.HandleFunc("PUT /adversary", func(w http.ResponseWriter, r *http.Request) {
		var req AdversaryRequest
		if !DecodeJSON(w, r, maxAdversaryBody, &req) {
			return
		}
		if req.Mode == nil {
			WriteError(w, http.StatusBadRequest, `missing field "mode": the adversary modes, such as "blackhole" or "spam=20000", or "" for honest`)
			return
		}
		a, err := b.SetAdversary(r.Context(), *req.Mode)
		switch {
		case errors.Is(err, ErrBadMode):
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("field %q: %v", "mode", err))
			return
		case err != nil:
			WriteError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, a)
	})
}

// Adversary returns the node's adversary modes and counts.
func (c *Client) Adversary(ctx context.Context) (Adversary, error) {
	var a Adversary
	err := c.do(ctx, 0, http.MethodGet, "/adversary", nil, &a)
	return a, err
}

// SetAdversary puts mode in force on the node ("" for honest) and returns
// the state now in force, as the node reports it.
func (c *Client) SetAdversary(ctx context.Context, mode string) (Adversary, error) {
	var a Adversary
	err := c.do(ctx, 0, http.MethodPut, "/adversary", AdversaryRequest{Mode: &mode}, &a)
	return a, err
}
