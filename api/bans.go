package api

import (
	"context"
	"net/http"
	"time"
)

// BannedPeer is one entry of GET /peers/banned: a peer whose score fell
// below the disconnect threshold, refused until Until.
type BannedPeer struct {
	// ID is the banned node id.
	ID string `json:"id"`
	// Until is when the ban ends (RFC 3339, UTC).
	Until time.Time `json:"until"`
	// Reason is the score term that took the most off its score:
	// invalid_messages, behaviour, delivery_deficit, colocation or score.
	Reason string `json:"reason"`
}

// BanBackend is implemented by a Backend that scores its peers
// (node.Node): it gets GET /peers/banned, a 404 while scoring is off.
type BanBackend interface {
	// BannedPeers returns the bans in force, soonest end first; ok is
	// false when scoring is off.
	BannedPeers() (bans []BannedPeer, ok bool)
}

func registerBans(mux *http.ServeMux, b BanBackend) {
	mux.HandleFunc("GET /peers/banned", func(w http.ResponseWriter, _ *http.Request) {
		bans, ok := b.BannedPeers()
		if !ok {
			WriteError(w, http.StatusNotFound, "scoring is off on this node (mesh node --scoring=false)")
			return
		}
		if bans == nil {
			bans = []BannedPeer{}
		}
		WriteJSON(w, http.StatusOK, bans)
	})
}

// BannedPeers returns the peers the node has banned.
func (c *Client) BannedPeers(ctx context.Context) ([]BannedPeer, error) {
	var list []BannedPeer
	err := c.do(ctx, 0, http.MethodGet, "/peers/banned", nil, &list)
	return list, err
}
