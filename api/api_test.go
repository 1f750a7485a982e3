package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// fakeNode is an in-memory Backend: it "publishes" by storing a receipt.
type fakeNode struct {
	mu       sync.Mutex
	receipts map[string]api.Receipt
	order    []string
	maxBody  int
	loads    int
}

func (f *fakeNode) loadCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads
}

func newFake() *fakeNode { return &fakeNode{receipts: map[string]api.Receipt{}, maxBody: 16} }

func (f *fakeNode) Publish(_ context.Context, body []byte) (api.Receipt, error) {
	if len(body) > f.maxBody {
		return api.Receipt{}, fmt.Errorf("publish: %w", api.ErrBodyTooLarge)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("%032x", len(f.order)+1)
	rc := api.Receipt{ID: id, Origin: "00000000000000aa", Body: string(body), Size: len(body), ReceivedAt: time.Unix(0, 1).UTC()}
	f.receipts[id] = rc
	f.order = append(f.order, id)
	return rc, nil
}

func (f *fakeNode) Receipt(_ context.Context, id string, _ time.Duration) (api.Receipt, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rc, ok := f.receipts[id]
	return rc, ok
}

func (f *fakeNode) Recent(limit int) []api.Receipt {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Receipt
	for i := len(f.order) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, f.receipts[f.order[i]])
	}
	return out
}

func (f *fakeNode) Peers() []api.Peer {
	return []api.Peer{{ID: "00000000000000bb", Addr: "127.0.0.1:1"}}
}
func (f *fakeNode) Health() api.Health {
	return api.Health{Status: "ok", ID: "00000000000000aa"}
}
func (f *fakeNode) Load(_ context.Context, req api.LoadRequest) (api.LoadResult, error) {
	f.mu.Lock()
	f.loads++
	f.mu.Unlock()
	return api.LoadResult{Published: req.Count}, nil
}
func (f *fakeNode) MaxBody() int { return f.maxBody }

func newServer(t *testing.T) (*httptest.Server, *api.Client) {
	t.Helper()
	srv := httptest.NewServer(api.NewHandler(newFake(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "# metrics\n")
	})))
	t.Cleanup(srv.Close)
	return srv, api.NewClient(srv.URL, srv.Client())
}

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	_, c := newServer(t)
	ctx := context.Background()
	pub, err := c.Publish(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.Receipt(ctx, pub.ID, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Body != "hello" || rc.Hop != 0 || rc.From != "" {
		t.Errorf("receipt = %+v, want body hello at hop 0 with no from", rc)
	}
	if _, err := c.Receipt(ctx, strings.Repeat("f", 32), 0); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
	list, err := c.Recent(ctx, 10)
	if err != nil || len(list) != 1 || list[0].Body != "" {
		t.Errorf("recent = %+v, %v; want one receipt without body", list, err)
	}
	if ps, err := c.Peers(ctx); err != nil || len(ps) != 1 {
		t.Errorf("peers = %+v, %v", ps, err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("health = %+v, %v", h, err)
	}
	if res, err := c.Load(ctx, api.LoadRequest{Count: 3}); err != nil || res.Published != 3 {
		t.Errorf("load = %+v, %v", res, err)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		errHas                   string
	}{
		{"invalid JSON", "POST", "/messages", `{"body":`, 400, "invalid JSON"},
		{"empty body", "POST", "/messages", ``, 400, "empty request body"},
		{"missing body field", "POST", "/messages", `{}`, 400, `missing field "body"`},
		{"unknown field", "POST", "/messages", `{"body":"x","bogus":1}`, 400, "bogus"},
		{"trailing data", "POST", "/messages", `{"body":"x"} {}`, 400, "trailing"},
		{"body over limit", "POST", "/messages", `{"body":"` + strings.Repeat("x", 17) + `"}`, 413, "limit 16"},
		{"request over limit", "POST", "/messages", `{"body":"` + strings.Repeat("x", 2000) + `"}`, 413, "request body over"},
		{"wrong method", "DELETE", "/messages", ``, 405, "method not allowed"},
		{"unknown route", "GET", "/nope", ``, 404, "no such route"},
		{"bad id", "GET", "/messages/xyz", ``, 400, "32 hex digits"},
		{"bad wait", "GET", "/messages/" + strings.Repeat("a", 32) + "?wait=forever", ``, 400, "wait"},
		{"bad limit", "GET", "/messages?limit=0", ``, 400, "limit"},
		{"bad load", "POST", "/load", `{"count":0}`, 400, "count"},
		{"load body over limit", "POST", "/load", `{"count":1,"size":17}`, 400, "size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.method != "GET" {
				req.Header.Set("Content-Type", "application/json") // as api.Client sends
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %d with a body that is not a JSON error: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tt.status || !strings.Contains(e.Error, tt.errHas) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, e.Error, tt.status, tt.errHas)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t)
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "# metrics\n" {
		t.Errorf("GET /metrics = %d %q", resp.StatusCode, b)
	}
}

// streamingNode is a fakeNode that is also an EventSource.
type streamingNode struct {
	*fakeNode
	ch chan api.Event
}

func (s streamingNode) Subscribe(int) (<-chan api.Event, func()) { return s.ch, func() {} }

func TestEventStream(t *testing.T) {
	t.Parallel()
	node := streamingNode{fakeNode: newFake(), ch: make(chan api.Event, 2)}
	srv := httptest.NewServer(api.NewHandler(node, nil))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := api.NewClient(srv.URL, srv.Client()).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node.ch <- api.Event{Kind: "delivered", ID: "abc", Hop: 2}
	node.ch <- api.Event{Kind: "duplicate", ID: "abc", Hop: 3}
	for _, want := range []string{"delivered", "duplicate"} {
		ev, ok := <-events
		if !ok || ev.Kind != want || ev.ID != "abc" {
			t.Fatalf("event %+v (open %v), want %s of abc", ev, ok, want)
		}
	}
	close(node.ch)
	if _, ok := <-events; ok {
		t.Error("stream still open after the node closed it")
	}

	// ?kind= leaves the other kinds out.
	node = streamingNode{fakeNode: newFake(), ch: make(chan api.Event, 2)}
	srv = httptest.NewServer(api.NewHandler(node, nil))
	t.Cleanup(srv.Close)
	filtered, err := api.NewClient(srv.URL, srv.Client()).Events(ctx, "delivered")
	if err != nil {
		t.Fatal(err)
	}
	node.ch <- api.Event{Kind: "duplicate", ID: "x"}
	node.ch <- api.Event{Kind: "delivered", ID: "y"}
	close(node.ch)
	var got []string
	for ev := range filtered {
		got = append(got, ev.Kind+" "+ev.ID)
	}
	if len(got) != 1 || got[0] != "delivered y" {
		t.Errorf("?kind=delivered streamed %v, want only [delivered y]", got)
	}
	if _, err := api.NewClient(srv.URL, srv.Client()).Events(ctx, "bogus"); err == nil {
		t.Error("?kind=bogus was accepted")
	}
	// A backend without events has no /events route.
	_, c := newServer(t)
	if _, err := c.Events(ctx); err == nil {
		t.Error("Events on a node without a stream should fail")
	}
}

// TestEventKindsAreGossipNames: the API's event kinds are gossip's names
// for the events a node streams, and every one parses back to its kind.
func TestEventKindsAreGossipNames(t *testing.T) {
	ks := gossip.StreamedEvents()
	names := api.EventKinds()
	if len(names) != len(ks) {
		t.Fatalf("EventKinds %v, streamed kinds %v", names, ks)
	}
	for i, k := range ks {
		if names[i] != k.String() {
			t.Errorf("EventKinds[%d] = %q, gossip names it %q", i, names[i], k)
		}
		if back, err := gossip.ParseEventKind(names[i]); err != nil || back != k {
			t.Errorf("ParseEventKind(%q) = %v, %v", names[i], back, err)
		}
	}
	m := &wire.Message{Origin: 7, Hop: 3, PublishedAt: 1e6}
	if e := api.NewEvent(gossip.EventDelivered, "n", m, 5, 3e6); e.Kind != gossip.NameDelivered || e.Hop != 3 || e.From != wire.NodeID(5).String() || e.LatencyMS != 2 {
		t.Errorf("NewEvent(delivered) = %+v", e)
	}
	if e := api.NewEvent(gossip.EventPublished, "n", m, 5, 3e6); e.Kind != gossip.NamePublished || e.Hop != 0 || e.From != "" {
		t.Errorf("NewEvent(published) = %+v", e)
	}
}
