package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gossipmesh/api"
)

// advNode is a fakeNode that can be made an adversary. It knows two
// modes, enough to tell a good mode from a bad one; the node's parser
// is the adversary package's.
type advNode struct {
	*fakeNode
	mu    sync.Mutex
	mode  string
	stats api.AdversaryStats
	sets  int // successful SetAdversary calls
}

func (a *advNode) Adversary(context.Context) (api.Adversary, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return api.Adversary{Mode: a.mode, Stats: a.stats}, nil
}

func (a *advNode) SetAdversary(ctx context.Context, mode string) (api.Adversary, error) {
	switch mode {
	case "", "blackhole", "spam=100":
	default:
		return api.Adversary{}, fmt.Errorf("%w: unknown mode %q", api.ErrBadMode, mode)
	}
	a.mu.Lock()
	a.mode, a.sets = mode, a.sets+1
	a.stats.Dropped += 3 // as if it had dropped something meanwhile
	a.mu.Unlock()
	return a.Adversary(ctx)
}

func (a *advNode) setCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sets
}

func newAdvServer(t *testing.T) (*httptest.Server, *api.Client, *advNode) {
	t.Helper()
	a := &advNode{fakeNode: newFake()}
	srv := httptest.NewServer(api.NewHandler(a, nil))
	t.Cleanup(srv.Close)
	return srv, api.NewClient(srv.URL, srv.Client()), a
}

// TestAdversaryRoundTrip: the client's PUT puts a mode in force, GET
// reads it and the counts back, and "" turns the node honest again.
func TestAdversaryRoundTrip(t *testing.T) {
	t.Parallel()
	_, c, _ := newAdvServer(t)
	ctx := t.Context()
	a, err := c.Adversary(ctx)
	if err != nil || !a.Honest() || a.Stats.Total() != 0 {
		t.Fatalf("initial state %+v, %v: want honest with no counts", a, err)
	}
	a, err = c.SetAdversary(ctx, "blackhole")
	if err != nil || a.Mode != "blackhole" || a.Stats.Dropped != 3 {
		t.Fatalf("PUT blackhole answered %+v, %v", a, err)
	}
	if a, err = c.Adversary(ctx); err != nil || a.Mode != "blackhole" {
		t.Fatalf("GET after PUT: %+v, %v", a, err)
	}
	if a, err = c.SetAdversary(ctx, ""); err != nil || !a.Honest() || a.Stats.Dropped != 6 {
		t.Fatalf("PUT honest answered %+v, %v: want honest, counts kept", a, err)
	}
}

// TestAdversaryBadRequests: a bad mode, a missing field and a wrong field
// are 400s that name the field; none changes the node.
func TestAdversaryBadRequests(t *testing.T) {
	t.Parallel()
	srv, c, a := newAdvServer(t)
	for _, tc := range []struct{ body, has string }{
		{`{"mode":"wormhole"}`, `field "mode": bad adversary mode: unknown mode "wormhole"`},
		{`{}`, `missing field "mode"`},
		{`{"mode":null}`, `missing field "mode"`},
		{`{"modes":"blackhole"}`, `unknown field "modes"`},
		{`{"mode":3}`, `invalid JSON`},
		{``, `empty request body`},
	} {
		status, msg := send(t, http.MethodPut, srv.URL+"/adversary", "", tc.body, map[string]string{"Content-Type": "application/json"})
		if status != http.StatusBadRequest || !strings.Contains(msg, tc.has) {
			t.Errorf("PUT %s: %d %q, want 400 with %q", tc.body, status, msg, tc.has)
		}
	}
	_, err := c.SetAdversary(t.Context(), "wormhole")
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Message, `"mode"`) {
		t.Errorf("client SetAdversary(wormhole): %v, want a 400 naming the field", err)
	}
	if n := a.setCalls(); n != 0 {
		t.Errorf("refused requests changed the mode %d times", n)
	}
}

// TestAdversaryOnlyForAdversaryBackends: a backend that cannot misbehave
// has no /adversary routes.
func TestAdversaryOnlyForAdversaryBackends(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		status, _ := send(t, method, srv.URL+"/adversary", "", `{"mode":"blackhole"}`, map[string]string{"Content-Type": "application/json"})
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("%s /adversary on a plain backend: %d, want 404", method, status)
		}
	}
}
