package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/fault"
	"gossipmesh/wire"
)

// faultNode is a fakeNode with a fault plan, validated as a node with id
// 0xaa would.
type faultNode struct {
	*fakeNode
	mu   sync.Mutex
	plan fault.Plan
}

func (f *faultNode) Faults() fault.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.plan.Clone()
}

func (f *faultNode) SetFaults(p fault.Plan) error {
	if err := p.ValidateFor(0xaa); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan = *p.Clone()
	return nil
}

func newFaultServer(t *testing.T) (*httptest.Server, *api.Client) {
	t.Helper()
	srv := httptest.NewServer(api.NewHandler(&faultNode{fakeNode: newFake()}, nil))
	t.Cleanup(srv.Close)
	return srv, api.NewClient(srv.URL, srv.Client())
}

func TestFaultsRoundTrip(t *testing.T) {
	t.Parallel()
	_, c := newFaultServer(t)
	ctx := context.Background()
	p, err := c.Faults(ctx)
	if err != nil || !p.IsZero() {
		t.Fatalf("initial plan %+v, %v: want none", p, err)
	}
	want := fault.Plan{Rule: fault.Rule{Drop: 0.2, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}, Cut: map[wire.NodeID]bool{0xbb: true}}
	got, err := c.SetFaults(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rule != want.Rule || !got.Cut[0xbb] || len(got.Cut) != 1 {
		t.Fatalf("PUT answered %+v, want %+v", got, want)
	}
	if p, _ := c.Faults(ctx); p.Rule != want.Rule || !p.Cut[0xbb] {
		t.Fatalf("GET after PUT: %+v", p)
	}
	if err := c.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Faults(ctx); !p.IsZero() {
		t.Fatalf("GET after DELETE: %+v", p)
	}
}

// TestFaultsRefuseBadValues: every bad value is a 4xx JSON error that
// names the field, and leaves the plan as it was.
func TestFaultsRefuseBadValues(t *testing.T) {
	t.Parallel()
	srv, c := newFaultServer(t)
	cases := []struct {
		body, field string
		status      int
	}{
		{`{"drop":1.5}`, "drop", 400},
		{`{"drop":-1}`, "drop", 400},
		{`{"delay":"soon"}`, "delay", 400},
		{`{"delay":"-1s"}`, "delay", 400},
		{`{"jitter":"2m"}`, "jitter", 400},
		{`{"cut":["bb"]}`, "cut[0]", 400},
		{`{"cut":["00000000000000aa"]}`, "cut", 400}, // the node's own id
		{`{"paused":["00000000000000bb"]}`, "paused", 400},
		{`{"dorp":0.2}`, "dorp", 400},
		{`{"drop":"0.2"}`, "drop", 400},
		{`{"cut":["` + strings.Repeat("a", api.MaxFaultsBody) + `"]}`, "request body over", 413},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/faults", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e api.Error
		decode(t, resp, &e)
		if resp.StatusCode != tc.status || !strings.Contains(e.Error, tc.field) {
			t.Errorf("PUT %.60s: %d %q, want %d naming %q", tc.body, resp.StatusCode, e.Error, tc.status, tc.field)
		}
	}
	if p, _ := c.Faults(context.Background()); !p.IsZero() {
		t.Errorf("a refused plan took effect: %+v", p)
	}
}

// TestFaultsGuarded: PUT and DELETE change a node's behaviour, so they
// pass the same checks as the other state-changing routes.
func TestFaultsGuarded(t *testing.T) {
	t.Parallel()
	srv, _ := newFaultServer(t)
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(method, srv.URL+"/faults", strings.NewReader(`{"drop":1}`))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s with text/plain: %d, want 415", method, resp.StatusCode)
		}
		req, _ = http.NewRequest(method, srv.URL+"/faults", strings.NewReader(`{"drop":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err = srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site %s: %d, want 403", method, resp.StatusCode)
		}
	}
}

// TestFaultsOnlyForFaultBackends: a backend without a plan has no
// /faults routes.
func TestFaultsOnlyForFaultBackends(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	resp, err := srv.Client().Get(srv.URL + "/faults")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /faults on a backend without faults: %d, want 404", resp.StatusCode)
	}
}

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decoding the answer: %v", err)
	}
}
