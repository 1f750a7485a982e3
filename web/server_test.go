package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dashboard runs a dashboard over m (and trace, if any) until the test
// ends, and returns its URL.
func dashboard(t *testing.T, m Mesh, trace *Trace) string {
	t.Helper()
	opts := Options{Trace: trace, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	s, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return srv.URL
}

// call does one request and decodes a JSON answer into out (if non-nil).
// A state-changing request goes as the page sends it: JSON, with the
// token that the page carries.
func call(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Mesh-Token", pageToken(t, "http://"+req.URL.Host))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d, answer is not JSON: %v: %q", method, url, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode
}

// tokenRE finds the token in the dashboard's page.
var tokenRE = regexp.MustCompile(`<meta name="mesh-token" content="([0-9a-f]{64})">`)

// pageToken reads the dashboard's token from its page, as a browser that
// has the page open has it.
func pageToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := tokenRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("GET %s/: no mesh-token meta tag in the page", base)
	}
	return string(m[1])
}

// waitStreams waits until the dashboard follows every live node's events.
func waitStreams(t *testing.T, base string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var res struct{ Nodes []NodeRow }
		call(t, "GET", base+"/api/nodes", "", &res)
		n := 0
		for _, r := range res.Nodes {
			if r.Stream.Connected {
				n++
			}
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d node streams connected after 10 s: %+v", n, want, res.Nodes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sse reads the dashboard's aggregated stream.
type sse struct {
	t  *testing.T
	sc *bufio.Scanner
}

func openSSE(t *testing.T, base string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET /api/events: Content-Type %q", ct)
	}
	return &sse{t: t, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event whose type is one of types.
func (s *sse) next(types ...string) map[string]any {
	s.t.Helper()
	for s.sc.Scan() {
		data, ok := strings.CutPrefix(s.sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			s.t.Fatalf("stream line %q: %v", data, err)
		}
		for _, ty := range types {
			if ev["type"] == ty {
				return ev
			}
		}
	}
	s.t.Fatalf("stream ended: %v", s.sc.Err())
	return nil
}

func TestPageAndAssets(t *testing.T) {
	t.Parallel()
	base := dashboard(t, newFakeMesh(t, 4, ringLinks(4)), nil)
	for _, tc := range []struct{ path, ctype, has string }{
		{"/", "text/html; charset=utf-8", `<script src="/static/app.js"`},
		{"/replay", "text/html; charset=utf-8", `id="replay"`},
		{"/static/app.js", "text/javascript; charset=utf-8", "EventSource('/api/events')"},
		{"/static/style.css", "text/css; charset=utf-8", ".tree"},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.ctype || !strings.Contains(string(b), tc.has) {
			t.Errorf("GET %s: %d %q, has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.has, strings.Contains(string(b), tc.has))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q: the page must load nothing from elsewhere", tc.path, csp)
		}
	}
	// Nothing in the assets may point off the machine.
	for _, f := range []string{"index.html", "app.js", "style.css"} {
		b, err := staticFiles.ReadFile("static/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if (strings.Contains(line, "http://") || strings.Contains(line, "https://")) && !strings.Contains(line, "http://www.w3.org/2000/svg") {
				t.Errorf("%s refers to an outside URL: %s", f, strings.TrimSpace(line))
			}
		}
	}
}

func TestTopologyAndNodes(t *testing.T) {
	t.Parallel()
	m := newFakeMesh(t, 6, ringLinks(6))
	base := dashboard(t, m, nil)
	var topo Topology
	if code := call(t, "GET", base+"/api/topology", "", &topo); code != 200 {
		t.Fatalf("GET /api/topology: %d", code)
	}
	if len(topo.Nodes) != 6 || topo.Nodes[2].ID != m.nodes[2].id {
		t.Errorf("topology nodes = %+v", topo.Nodes)
	}
	// ringLinks(6): the ring plus chords 0–3 and 3–0 (the same link).
	want := [][2]int{{0, 1}, {0, 3}, {0, 5}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}
	if len(topo.Links) != len(want) {
		t.Fatalf("links = %v, want %v", topo.Links, want)
	}
	for k := range want {
		if topo.Links[k] != want[k] {
			t.Fatalf("links = %v, want %v", topo.Links, want)
		}
	}
	var mode map[string]bool
	call(t, "GET", base+"/api/mode", "", &mode)
	if !mode["live"] || mode["trace"] {
		t.Errorf("mode = %v", mode)
	}
	waitStreams(t, base, 6)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	base := dashboard(t, newFakeMesh(t, 3, ringLinks(3)), nil)
	id := strings.Repeat("a", 32)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		has                      string
	}{
		{"invalid JSON", "POST", "/api/publish", `{"node":`, 400, "invalid JSON"},
		{"empty", "POST", "/api/publish", ``, 400, "empty request body"},
		{"no node", "POST", "/api/publish", `{"body":"x"}`, 400, `missing field "node"`},
		{"no body", "POST", "/api/publish", `{"node":0}`, 400, `missing field "body"`},
		{"unknown field", "POST", "/api/publish", `{"node":0,"body":"x","hops":3}`, 400, "hops"},
		{"trailing", "POST", "/api/publish", `{"node":0,"body":"x"}{}`, 400, "trailing"},
		{"node out of range", "POST", "/api/publish", `{"node":7,"body":"x"}`, 404, "nodes 0 to 2"},
		{"negative node", "POST", "/api/publish", `{"node":-1,"body":"x"}`, 404, "node -1"},
		{"node as string", "POST", "/api/publish", `{"node":"1","body":"x"}`, 400, "invalid JSON"},
		{"over the dashboard limit", "POST", "/api/publish", `{"node":0,"body":"` + strings.Repeat("x", MaxPublishBody+1) + `"}`, 413, "dashboard's limit"},
		{"over the node's limit", "POST", "/api/publish", `{"node":0,"body":"` + strings.Repeat("x", 2000) + `"}`, 413, "limit 1024"},
		{"kill bad index", "POST", "/api/nodes/x/kill", ``, 400, "whole number"},
		{"kill no such node", "POST", "/api/nodes/9/kill", ``, 404, "node 9"},
		{"restart no such node", "POST", "/api/nodes/-2/restart", ``, 404, "node -2"},
		{"kill with GET", "GET", "/api/nodes/1/kill", ``, 405, "method not allowed"},
		{"unknown action", "POST", "/api/nodes/1/explode", ``, 404, "no such route"},
		{"unknown route", "GET", "/api/nope", ``, 404, "no such route"},
		{"bad message id", "GET", "/api/messages/xyz", ``, 400, "32 hex digits"},
		{"bad wait", "GET", "/api/messages/" + id + "?wait=forever", ``, 400, "wait"},
		{"wait too long", "GET", "/api/messages/" + id + "?wait=1h", ``, 400, "wait"},
		{"no trace", "GET", "/api/trace", ``, 404, "no trace loaded"},
		{"publish with GET", "GET", "/api/publish", ``, 405, "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error string }
			code := call(t, tc.method, base+tc.path, tc.body, &e)
			if code != tc.status || !strings.Contains(e.Error, tc.has) {
				t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, code, e.Error, tc.status, tc.has)
			}
		})
	}
}

// TestPublishAndStream publishes through the dashboard and checks that the
// aggregated stream carries every node's receipt, annotated with indices
// that match the fake mesh's breadth-first tree, and that the receipts
// route agrees.
func TestPublishAndStream(t *testing.T) {
	t.Parallel()
	const n = 8
	m := newFakeMesh(t, n, ringLinks(n))
	base := dashboard(t, m, nil)
	waitStreams(t, base, n)
	stream := openSSE(t, base)
	if hello := stream.next("hello"); len(hello["streams"].([]any)) != n {
		t.Fatalf("hello = %v", hello)
	}
	var pub PublishResponse
	if code := call(t, "POST", base+"/api/publish", `{"node":2,"body":"hi"}`, &pub); code != 201 || pub.Node != 2 || len(pub.ID) != 32 {
		t.Fatalf("publish: %d %+v", code, pub)
	}
	wantHop, wantParent := m.hopsFrom(2)
	got := map[int]bool{}
	for len(got) < n {
		ev := stream.next("event")
		if ev["id"] != pub.ID || ev["kind"] == "duplicate" {
			continue
		}
		i := int(ev["index"].(float64))
		if got[i] {
			t.Fatalf("node %d reported twice", i)
		}
		got[i] = true
		if hop := int(ev["hop"].(float64)); hop != wantHop[i] {
			t.Errorf("node %d: hop %d, want %d", i, hop, wantHop[i])
		}
		if from := int(ev["from_index"].(float64)); from != wantParent[i] {
			t.Errorf("node %d: from_index %d, want %d", i, from, wantParent[i])
		}
		if origin := int(ev["origin_index"].(float64)); origin != 2 {
			t.Errorf("node %d: origin_index %d, want 2", i, origin)
		}
	}
	var rec struct {
		ID       string
		Receipts []NodeReceipt
	}
	if code := call(t, "GET", base+"/api/messages/"+pub.ID, "", &rec); code != 200 || len(rec.Receipts) != n {
		t.Fatalf("receipts: %d %+v", code, rec)
	}
	for _, r := range rec.Receipts {
		if !r.Reached || r.Hop != wantHop[r.Index] || r.FromIndex != wantParent[r.Index] {
			t.Errorf("receipt %+v, want hop %d from %d", r, wantHop[r.Index], wantParent[r.Index])
		}
	}
}

// TestKillRestart kills a node from the dashboard, sees it marked down and
// its stream lost, restarts it and sees the stream come back.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	const n = 5
	m := newFakeMesh(t, n, ringLinks(n))
	base := dashboard(t, m, nil)
	waitStreams(t, base, n)
	stream := openSSE(t, base)
	stream.next("hello")

	var res struct{ Nodes []NodeRow }
	if code := call(t, "POST", base+"/api/nodes/3/kill", "", &res); code != 200 || res.Nodes[3].Alive || res.Nodes[3].PID != 0 {
		t.Fatalf("kill: %d %+v", code, res.Nodes)
	}
	for {
		ev := stream.next("stream", "control")
		if ev["type"] == "stream" && ev["index"] == 3.0 && ev["connected"] == false {
			break
		}
	}
	// Publishing from the dead node is a gateway error, not a hang.
	var e struct{ Error string }
	if code := call(t, "POST", base+"/api/publish", `{"node":3,"body":"x"}`, &e); code != http.StatusBadGateway {
		t.Errorf("publish from a dead node: %d %q, want 502", code, e.Error)
	}
	// The others still get messages, around the hole.
	var pub PublishResponse
	call(t, "POST", base+"/api/publish", `{"node":0,"body":"x"}`, &pub)
	var rec struct{ Receipts []NodeReceipt }
	call(t, "GET", base+"/api/messages/"+pub.ID, "", &rec)
	if r := rec.Receipts[3]; r.Reached || r.Error != "node is down" {
		t.Errorf("dead node's receipt: %+v", r)
	}
	if code := call(t, "POST", base+"/api/nodes/3/restart", "", &res); code != 200 || !res.Nodes[3].Alive {
		t.Fatalf("restart: %d %+v", code, res.Nodes)
	}
	for {
		ev := stream.next("stream")
		if ev["index"] == 3.0 && ev["connected"] == true {
			break
		}
	}
	waitStreams(t, base, n)
}

// TestReplayOnly serves a trace without a mesh.
func TestReplayOnly(t *testing.T) {
	t.Parallel()
	tr := sampleTrace()
	base := dashboard(t, nil, tr)
	var mode map[string]bool
	call(t, "GET", base+"/api/mode", "", &mode)
	if mode["live"] || !mode["trace"] {
		t.Errorf("mode = %v", mode)
	}
	var got Trace
	if code := call(t, "GET", base+"/api/trace", "", &got); code != 200 || got.Nodes != tr.Nodes || len(got.Events) != len(tr.Events) {
		t.Errorf("trace: %d %+v", code, got)
	}
	var e struct{ Error string }
	if code := call(t, "GET", base+"/api/nodes", "", &e); code != 404 || !strings.Contains(e.Error, "only replays") {
		t.Errorf("nodes without a mesh: %d %q", code, e.Error)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New with neither mesh nor trace should fail")
	}
	bad := sampleTrace()
	bad.Version = 2
	if _, err := New(nil, Options{Trace: bad}); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("New with a bad trace: %v", err)
	}
}

// TestServeShutdown checks that Serve returns promptly when its context
// ends, even with a browser stream open.
func TestServeShutdown(t *testing.T) {
	t.Parallel()
	s, err := New(newFakeMesh(t, 2, [][2]int{{0, 1}}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil) // only for its listener
	ln := srv.Listener
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	stream := openSSE(t, "http://"+ln.Addr().String())
	stream.next("hello")
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5 s of its context ending")
	}
}

// TestPageWeight logs what a browser downloads for the page (everything is
// embedded; nothing else is fetched) and keeps it within a budget, so the
// dashboard stays quick to load on a slow link.
func TestPageWeight(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	total := 0
	for _, f := range []string{"index.html", "app.js", "style.css"} {
		b, err := staticFiles.ReadFile("static/" + f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		t.Logf("%-10s %6.1f KiB", f, float64(len(b))/1024)
	}
	t.Logf("page weight %.1f KiB uncompressed (budget %d KiB)", float64(total)/1024, budget>>10)
	if total > budget {
		t.Errorf("page weight %d bytes is over the %d-byte budget", total, budget)
	}
}
