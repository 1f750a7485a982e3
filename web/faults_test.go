package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// faultFake is a fakeMesh that takes faults: it records each node's cuts,
// drop and pause, and counts every change, so that a test can tell that a
// refused request changed nothing.
type faultFake struct {
	*fakeMesh
	mu      sync.Mutex
	cut     []map[int]bool
	drop    float64
	paused  []bool
	changes int
}

func newFaultFake(t *testing.T, n int) *faultFake {
	f := &faultFake{fakeMesh: newFakeMesh(t, n, ringLinks(n)), cut: make([]map[int]bool, n), paused: make([]bool, n)}
	for i := range f.cut {
		f.cut[i] = map[int]bool{}
	}
	return f
}

func (f *faultFake) Split(_ context.Context, a, b []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range a {
		for _, j := range b {
			f.cut[i][j], f.cut[j][i] = true, true
		}
	}
	f.changes++
	return nil
}

func (f *faultFake) Heal(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.cut {
		f.cut[i] = map[int]bool{}
	}
	f.changes++
	return nil
}

func (f *faultFake) Loss(_ context.Context, drop float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = drop
	f.changes++
	return nil
}

func (f *faultFake) Pause(_ context.Context, i int) error  { return f.setPaused(i, true) }
func (f *faultFake) Resume(_ context.Context, i int) error { return f.setPaused(i, false) }

func (f *faultFake) setPaused(i int, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused[i] == on {
		return fmt.Errorf("node %d is already %s", i, map[bool]string{true: "paused", false: "running"}[on])
	}
	f.paused[i] = on
	f.changes++
	return nil
}

func (f *faultFake) Faults(context.Context) ([]NodeFaults, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]NodeFaults, len(f.cut))
	for i := range out {
		out[i] = NodeFaults{Index: i, State: StateRunning, Cut: []int{}, Drop: f.drop}
		if f.paused[i] {
			out[i].State = StatePaused
		}
		for j := range f.cut[i] {
			out[i].Cut = append(out[i].Cut, j)
		}
		slices.Sort(out[i].Cut)
	}
	return out, nil
}

func (f *faultFake) changed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

// TestFaultRoutes drives every fault route over a fake: a split into
// halves by default, the cut links it reports (exactly the topology's
// links between the halves), heal, loss, pause and resume, and the
// errors, each naming the field or the node.
func TestFaultRoutes(t *testing.T) {
	t.Parallel()
	const n = 6
	f := newFaultFake(t, n)
	base := dashboard(t, f, nil)

	var v FaultsView
	if code := call(t, "GET", base+"/api/faults", "", &v); code != 200 || !v.Available || len(v.Nodes) != n || len(v.CutLinks) != 0 || v.Loss != 0 {
		t.Fatalf("GET /api/faults before any fault: %d %+v", code, v)
	}

	// Halves: 0-2 against 3-5, and the cut links are the ring's links
	// that cross.
	if code := call(t, "POST", base+"/api/faults/split", `{}`, &v); code != 200 {
		t.Fatalf("split: %d %+v", code, v)
	}
	var want [][2]int
	for _, l := range ringLinks(n) {
		a, b := min(l[0], l[1]), max(l[0], l[1])
		if (a < n/2) != (b < n/2) && !slices.Contains(want, [2]int{a, b}) {
			want = append(want, [2]int{a, b})
		}
	}
	slices.SortFunc(want, func(x, y [2]int) int { return (x[0]-y[0])*100 + x[1] - y[1] })
	if !slices.Equal(v.CutLinks, want) || len(want) == 0 {
		t.Errorf("cut links after a split into halves: %v, want %v", v.CutLinks, want)
	}
	for _, nf := range v.Nodes {
		wantCut := []int{3, 4, 5}
		if nf.Index >= n/2 {
			wantCut = []int{0, 1, 2}
		}
		if !slices.Equal(nf.Cut, wantCut) {
			t.Errorf("node %d cuts %v, want %v", nf.Index, nf.Cut, wantCut)
		}
	}
	if code := call(t, "POST", base+"/api/faults/heal", ``, &v); code != 200 || len(v.CutLinks) != 0 {
		t.Errorf("heal: %d %+v", code, v)
	}
	// Given sides.
	if code := call(t, "POST", base+"/api/faults/split", `{"a":[0],"b":[1,2]}`, &v); code != 200 || !slices.Equal(v.CutLinks, [][2]int{{0, 1}}) {
		t.Errorf("split 0 | 1,2: %d cut links %v, want [[0 1]]", code, v.CutLinks)
	}
	call(t, "POST", base+"/api/faults/heal", ``, &v)

	if code := call(t, "POST", base+"/api/faults/loss", `{"drop":0.25}`, &v); code != 200 || v.Loss != 0.25 {
		t.Errorf("loss 0.25: %d %+v", code, v)
	}
	if code := call(t, "POST", base+"/api/nodes/4/pause", ``, &v); code != 200 || v.Nodes[4].State != StatePaused {
		t.Errorf("pause 4: %d %+v", code, v)
	}
	var e struct{ Error string }
	if code := call(t, "POST", base+"/api/nodes/4/pause", ``, &e); code != http.StatusConflict || !strings.Contains(e.Error, "pause node 4") {
		t.Errorf("pausing a paused node: %d %q, want 409 naming it", code, e.Error)
	}
	if code := call(t, "POST", base+"/api/nodes/4/resume", ``, &v); code != 200 || v.Nodes[4].State != StateRunning {
		t.Errorf("resume 4: %d %+v", code, v)
	}

	before := f.changed()
	for _, c := range []struct {
		path, body string
		status     int
		mention    string
	}{
		{"/api/faults/loss", `{"drop":0.6}`, 400, `"drop"`},
		{"/api/faults/loss", `{"drop":-0.1}`, 400, `"drop"`},
		{"/api/faults/loss", `{}`, 400, `"drop"`},
		{"/api/faults/loss", `{"drop":"lots"}`, 400, "drop"},
		{"/api/faults/split", `{"a":[0,1]}`, 400, `"b"`},
		{"/api/faults/split", `{"a":[0,9],"b":[1]}`, 400, `"a": node 9`},
		{"/api/faults/split", `{"a":[0,1],"b":[1,2]}`, 400, "node 1 is on both sides"},
		{"/api/faults/split", ``, 400, "empty request body"},
		{"/api/faults/split", `{"sides":[]}`, 400, "sides"},
		{"/api/nodes/9/pause", ``, 404, "node 9"},
		{"/api/nodes/x/resume", ``, 400, `"x"`},
	} {
		var e struct{ Error string }
		if code := call(t, "POST", base+c.path, c.body, &e); code != c.status || !strings.Contains(e.Error, c.mention) {
			t.Errorf("POST %s %s: %d %q, want %d mentioning %s", c.path, c.body, code, e.Error, c.status, c.mention)
		}
	}
	if got := f.changed(); got != before {
		t.Errorf("refused requests made %d changes", got-before)
	}
}

// TestFaultRoutesGuarded sends every fault route without the page's
// token, and as another origin would: each is refused, and nothing
// changes.
func TestFaultRoutesGuarded(t *testing.T) {
	t.Parallel()
	f := newFaultFake(t, 4)
	base := dashboard(t, f, nil)
	routes := []string{"/api/faults/split", "/api/faults/heal", "/api/faults/loss", "/api/nodes/1/pause", "/api/nodes/1/resume"}
	for _, r := range routes {
		for _, hdr := range []map[string]string{
			{"Content-Type": "application/json"},
			{"Content-Type": "application/json", "X-Mesh-Token": "guess"},
			{"Content-Type": "text/plain", "X-Mesh-Token": pageToken(t, base)},
			{"Content-Type": "application/json", "X-Mesh-Token": pageToken(t, base), "Origin": "http://evil.example"},
		} {
			req, err := http.NewRequest("POST", base+r, strings.NewReader(`{"drop":0.1}`))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 4 {
				t.Errorf("POST %s with %v: %d, want refused", r, hdr, resp.StatusCode)
			}
		}
	}
	if got := f.changed(); got != 0 {
		t.Errorf("%d changes from refused requests", got)
	}
}

// TestFaultsWithoutFaultMesh: a mesh that takes no faults says so on GET
// (the page hides its controls) and answers 501 to every fault route.
func TestFaultsWithoutFaultMesh(t *testing.T) {
	t.Parallel()
	m := newFakeMesh(t, 3, ringLinks(3))
	base := dashboard(t, m, nil)
	var v FaultsView
	if code := call(t, "GET", base+"/api/faults", "", &v); code != 200 || v.Available || v.Why == "" {
		t.Errorf("GET /api/faults: %d %+v, want unavailable with a reason", code, v)
	}
	for _, r := range []string{"/api/faults/split", "/api/faults/heal", "/api/faults/loss", "/api/nodes/1/pause", "/api/nodes/1/resume"} {
		var e struct{ Error string }
		if code := call(t, "POST", base+r, `{}`, &e); code != http.StatusNotImplemented || e.Error == "" {
			t.Errorf("POST %s: %d %q, want 501", r, code, e.Error)
		}
	}
}
