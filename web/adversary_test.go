package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gossipmesh/adversary"
	"gossipmesh/api"
)

// Adversary implements api.AdversaryBackend for the fake node.
func (fn *fakeNode) Adversary(context.Context) (api.Adversary, error) {
	fn.m.mu.Lock()
	defer fn.m.mu.Unlock()
	return fn.adv, nil
}

// SetAdversary implements api.AdversaryBackend with the real parser, so
// that the page sees the node's own refusals.
func (fn *fakeNode) SetAdversary(_ context.Context, mode string) (api.Adversary, error) {
	ms, err := adversary.Parse(mode)
	if err != nil {
		return api.Adversary{}, fmt.Errorf("%w: %w", api.ErrBadMode, err)
	}
	fn.m.mu.Lock()
	defer fn.m.mu.Unlock()
	fn.adv.Mode = ms.String()
	fn.advSets++
	return fn.adv, nil
}

// setDropped sets what node i reports it dropped as an adversary.
func (m *fakeMesh) setDropped(i int, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[i].adv.Stats.Dropped = n
}

func (m *fakeMesh) advSets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := 0
	for _, fn := range m.nodes {
		k += fn.advSets
	}
	return k
}

// TestAdversaryRoutes: the dashboard reads every node's adversary state,
// sets one through the node's API, passes the node's refusal of a bad
// mode back as a 400 naming the field, and refuses a down node.
func TestAdversaryRoutes(t *testing.T) {
	t.Parallel()
	m := newFakeMesh(t, 4, ringLinks(4))
	base := dashboard(t, m, nil)
	var v AdversariesView
	if code := call(t, "GET", base+"/api/adversaries", "", &v); code != 200 || len(v.Nodes) != 4 || v.Nodes[2].Mode != "" {
		t.Fatalf("GET /api/adversaries: %d %+v", code, v)
	}
	if code := call(t, "POST", base+"/api/nodes/2/adversary", `{"mode":"spam=100,blackhole"}`, &v); code != 200 || v.Nodes[2].Mode != "blackhole,spam=100" {
		t.Fatalf("POST adversary: %d %+v", code, v)
	}
	m.setDropped(2, 7)
	if call(t, "GET", base+"/api/adversaries", "", &v); v.Nodes[2].Stats.Dropped != 7 {
		t.Errorf("the counts are not shown: %+v", v.Nodes[2])
	}
	var e api.Error
	for _, tc := range []struct {
		path, body string
		status     int
		has        string
	}{
		{"/api/nodes/1/adversary", `{"mode":"wormhole"}`, 400, `field "mode"`},
		{"/api/nodes/1/adversary", `{}`, 400, `missing field "mode"`},
		{"/api/nodes/9/adversary", `{"mode":""}`, 404, "nodes 0 to 3"},
		{"/api/nodes/x/adversary", `{"mode":""}`, 400, "whole number"},
	} {
		e = api.Error{}
		if code := call(t, "POST", base+tc.path, tc.body, &e); code != tc.status || !strings.Contains(e.Error, tc.has) {
			t.Errorf("POST %s %s: %d %q, want %d with %q", tc.path, tc.body, code, e.Error, tc.status, tc.has)
		}
	}
	_ = m.Kill(context.Background(), 3)
	e = api.Error{}
	if code := call(t, "POST", base+"/api/nodes/3/adversary", `{"mode":"tamper"}`, &e); code != 409 || !strings.Contains(e.Error, "down") {
		t.Errorf("a down node: %d %q, want 409", code, e.Error)
	}
	if call(t, "GET", base+"/api/adversaries", "", &v); v.Nodes[3].Error == "" {
		t.Errorf("a down node's line has no error: %+v", v.Nodes[3])
	}
	if n := m.advSets(); n != 1 {
		t.Errorf("%d modes set, want the one good request's", n)
	}
}
