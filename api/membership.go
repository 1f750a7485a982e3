package api

import (
	"context"
	"net/http"
)

// Membership is GET /membership's answer: the node's active view (its
// links, alive or suspect), its passive view (known, not linked) and the
// entries it is dialing, plus its Lifeguard awareness score.
type Membership struct {
	Awareness int          `json:"awareness"`
	Active    []MemberPeer `json:"active"`
	Passive   []MemberPeer `json:"passive"`
	Dialing   []MemberPeer `json:"dialing,omitempty"`
}

// MemberPeer is one entry of a membership view. ID is empty for a booted
// address whose node is not known yet; State, Inbound and SilentSeconds
// are set in the active view only.
type MemberPeer struct {
	ID            string  `json:"id,omitempty"`
	Addr          string  `json:"addr"`
	State         string  `json:"state,omitempty"` // "alive" or "suspect"
	Inbound       bool    `json:"inbound,omitempty"`
	SilentSeconds float64 `json:"silent_seconds,omitempty"`
}

// MembershipBackend is implemented by a Backend that runs the membership
// (node.Node): it gets GET /membership, a 404 while membership is off.
type MembershipBackend interface {
	Membership() (Membership, bool)
}

func registerMembership(mux *http.ServeMux, b MembershipBackend) {
	mux.HandleFunc("GET /membership", func(w http.ResponseWriter, _ *http.Request) {
		m, ok := b.Membership()
		if !ok {
			WriteError(w, http.StatusNotFound, "membership is off on this node (mesh node --membership)")
			return
		}
		WriteJSON(w, http.StatusOK, m)
	})
}

// Membership returns the node's membership views.
func (c *Client) Membership(ctx context.Context) (Membership, error) {
	var m Membership
	err := c.do(ctx, 0, http.MethodGet, "/membership", nil, &m)
	return m, err
}
