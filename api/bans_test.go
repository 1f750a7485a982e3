package api_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"gossipmesh/api"
)

// banFake is the fake backend with a ban list, as a node with scoring on.
type banFake struct {
	*fakeNode
	bans []api.BannedPeer
	on   bool
}

func (b *banFake) BannedPeers() ([]api.BannedPeer, bool) { return b.bans, b.on }

// TestBannedPeersRoute: GET /peers/banned lists the bans with an RFC 3339
// end, answers an empty list rather than null, is a 404 while scoring is
// off or the backend keeps no bans, and stays behind the Host check that
// keeps a rebound DNS name from reading it.
func TestBannedPeersRoute(t *testing.T) {
	t.Parallel()
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &banFake{fakeNode: newFake(), on: true, bans: []api.BannedPeer{{ID: "00000000000000aa", Until: until, Reason: "invalid_messages"}}}
	srv, c := newServerFor(t, b)
	got, err := c.BannedPeers(t.Context())
	if err != nil || len(got) != 1 || got[0].ID != "00000000000000aa" || !got[0].Until.Equal(until) || got[0].Reason != "invalid_messages" {
		t.Fatalf("GET /peers/banned: %+v, %v", got, err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if status, msg := send(t, "GET", srv.URL+"/peers/banned", "evil.example:"+port, "", nil); status != http.StatusMisdirectedRequest {
		t.Errorf("rebound name: %d %q, want 421", status, msg)
	}
	b.bans = nil
	if got, err := c.BannedPeers(t.Context()); err != nil || got == nil || len(got) != 0 {
		t.Errorf("no bans: %#v, %v; want an empty list", got, err)
	}
	b.on = false
	if status, msg := send(t, "GET", srv.URL+"/peers/banned", "", "", nil); status != http.StatusNotFound {
		t.Errorf("scoring off: %d %q, want 404", status, msg)
	}
	plain, _ := newServerFor(t, newFake())
	if status, _ := send(t, "GET", plain.URL+"/peers/banned", "", "", nil); status != http.StatusNotFound {
		t.Errorf("a backend without bans: %d, want 404", status)
	}
}
