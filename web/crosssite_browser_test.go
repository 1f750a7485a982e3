package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gossipmesh/api"
)

// recordingNode is a node API backend that records every state change.
type recordingNode struct {
	published, loads, advSets atomic.Int64
}

func (r *recordingNode) Adversary(context.Context) (api.Adversary, error) {
	return api.Adversary{}, nil
}
func (r *recordingNode) SetAdversary(_ context.Context, mode string) (api.Adversary, error) {
	r.advSets.Add(1)
	return api.Adversary{Mode: mode}, nil
}

func (r *recordingNode) Publish(_ context.Context, body []byte) (api.Receipt, error) {
	r.published.Add(1)
	return api.Receipt{ID: fmt.Sprintf("%032x", r.published.Load()), Size: len(body)}, nil
}
func (r *recordingNode) Receipt(context.Context, string, time.Duration) (api.Receipt, bool) {
	return api.Receipt{}, false
}
func (r *recordingNode) Recent(int) []api.Receipt { return nil }
func (r *recordingNode) Peers() []api.Peer        { return nil }
func (r *recordingNode) Health() api.Health       { return api.Health{Status: "ok"} }
func (r *recordingNode) MaxBody() int             { return 1 << 10 }
func (r *recordingNode) Load(_ context.Context, req api.LoadRequest) (api.LoadResult, error) {
	r.loads.Add(1)
	return api.LoadResult{Published: req.Count}, nil
}

// requestCounter counts what reaches a server, by method, so that the test
// knows the browser did send the attacks that were refused.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[r.Method]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *requestCounter) get(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

// attackPage is what a page of another local origin tries against the
// dashboard (dash) and a node's API (node): no-cors fetches, fetches with
// a JSON content type (which need a preflight), and HTML forms, including
// the text/plain form that sends a body that parses as JSON. Each form
// posts into its own iframe, so the page stays; window.attacks resolves
// once every attempt has settled.
const attackPage = `<!doctype html><html><head><meta charset="utf-8"><title>attacker</title></head><body>
<iframe name="f1"></iframe><iframe name="f2"></iframe><iframe name="f3"></iframe><iframe name="f4"></iframe><iframe name="f5"></iframe><iframe name="f6"></iframe>
<form id="pub-form" method="POST" action="%[1]s/api/publish" enctype="text/plain" target="f1"><input name='{"node":0,"body":"' value='form"}'></form>
<form id="kill-form" method="POST" action="%[1]s/api/nodes/2/kill" target="f2"><input name="x" value="1"></form>
<form id="node-form" method="POST" action="%[2]s/messages" enctype="text/plain" target="f3"><input name='{"body":"' value='form"}'></form>
<form id="loss-form" method="POST" action="%[1]s/api/faults/loss" enctype="text/plain" target="f4"><input name='{"drop":0.4,"x":"' value='"}'></form>
<form id="adv-form" method="POST" action="%[1]s/api/nodes/1/adversary" enctype="text/plain" target="f5"><input name='{"mode":"blackhole","x":"' value='"}'></form>
<form id="node-adv-form" method="POST" action="%[2]s/adversary" enctype="text/plain" target="f6"><input name='{"mode":"blackhole","x":"' value='"}'></form>
<script>
const dash = %[1]q, node = %[2]q;
const tries = [
  ['no-cors kill', fetch(dash + '/api/nodes/1/kill', {method: 'POST', mode: 'no-cors'})],
  ['no-cors kill with a body', fetch(dash + '/api/nodes/2/kill', {method: 'POST', mode: 'no-cors', body: '{}'})],
  ['no-cors publish', fetch(dash + '/api/publish', {method: 'POST', mode: 'no-cors', body: JSON.stringify({node: 0, body: 'no-cors'})})],
  ['JSON publish', fetch(dash + '/api/publish', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({node: 0, body: 'json'})})],
  ['JSON kill with a guessed token', fetch(dash + '/api/nodes/0/kill', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Mesh-Token': 'guess'}})],
  ['no-cors split', fetch(dash + '/api/faults/split', {method: 'POST', mode: 'no-cors', body: '{}'})],
  ['no-cors loss', fetch(dash + '/api/faults/loss', {method: 'POST', mode: 'no-cors', body: JSON.stringify({drop: 0.5})})],
  ['no-cors pause', fetch(dash + '/api/nodes/1/pause', {method: 'POST', mode: 'no-cors'})],
  ['JSON split', fetch(dash + '/api/faults/split', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})],
  ['JSON pause with a guessed token', fetch(dash + '/api/nodes/2/pause', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Mesh-Token': 'guess'}})],
  ['no-cors node publish', fetch(node + '/messages', {method: 'POST', mode: 'no-cors', body: JSON.stringify({body: 'no-cors'})})],
  ['no-cors node load', fetch(node + '/load', {method: 'POST', mode: 'no-cors', body: JSON.stringify({count: 5})})],
  ['JSON node publish', fetch(node + '/messages', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({body: 'json'})})],
  ['JSON node load', fetch(node + '/load', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({count: 5})})],
  ['no-cors adversary', fetch(dash + '/api/nodes/1/adversary', {method: 'POST', mode: 'no-cors', body: JSON.stringify({mode: 'blackhole'})})],
  ['JSON adversary with a guessed token', fetch(dash + '/api/nodes/2/adversary', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Mesh-Token': 'guess'}, body: JSON.stringify({mode: 'spam'})})],
  ['JSON node PUT /adversary', fetch(node + '/adversary', {method: 'PUT', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({mode: 'blackhole'})})],
  ['no-cors node POST /adversary', fetch(node + '/adversary', {method: 'POST', mode: 'no-cors', body: JSON.stringify({mode: 'blackhole'})})],
];
const forms = ['pub-form', 'kill-form', 'node-form', 'loss-form', 'adv-form', 'node-adv-form'].map((id, i) => new Promise(resolve => {
  const frame = document.getElementsByName('f' + (i + 1))[0];
  frame.addEventListener('load', () => resolve(id + ': loaded'), {once: true});
  setTimeout(() => resolve(id + ': no load event'), 10000);
  document.getElementById(id).submit();
}));
window.attacks = Promise.allSettled(tries.map(([name, p]) => p.then(r => name + ': ' + r.type + ' ' + r.status, e => name + ': ' + e)))
  .then(rs => Promise.all(forms).then(fs => rs.map(r => r.value).concat(fs)));
</script></body></html>`

// TestBrowserCrossSiteChangesNothing opens a page of another local origin
// in Chromium, lets it try every way a page can send the dashboard's kill
// and publish routes and a node's POST /messages and /load, the
// dashboard's adversary control and a node's PUT /adversary, and checks
// through the APIs that nothing changed: no node killed, nothing
// published, no load run, no fault injected (no split, loss or pause), no
// node made an adversary.
func TestBrowserCrossSiteChangesNothing(t *testing.T) {
	ctx := startBrowser(t, false) // the refused requests log CORS errors
	f := newFaultFake(t, 3)
	m := f.fakeMesh
	s, err := New(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dashSeen := &requestCounter{n: map[string]int{}}
	dash := httptest.NewServer(dashSeen.wrap(s.Handler()))
	t.Cleanup(dash.Close)
	rec := &recordingNode{}
	nodeSeen := &requestCounter{n: map[string]int{}}
	nodeAPI := httptest.NewServer(nodeSeen.wrap(api.NewHandler(rec, nil)))
	t.Cleanup(nodeAPI.Close)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackPage, dash.URL, nodeAPI.URL)
	}))
	t.Cleanup(evil.Close)

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL+"/")); err != nil {
		t.Fatal(err)
	}
	outcomes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.attacks`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the attacks: %v", err)
	}
	for _, o := range outcomes {
		t.Logf("attempt %s", o)
	}

	// What changed, asked through the APIs.
	changes := 0
	var res struct{ Nodes []NodeRow }
	if code := call(t, "GET", dash.URL+"/api/nodes", "", &res); code != 200 || len(res.Nodes) != 3 {
		t.Fatalf("GET /api/nodes: %d %+v", code, res)
	}
	for _, n := range res.Nodes {
		if !n.Alive {
			changes++
			t.Errorf("node %d was killed by another origin's page", n.Index)
		}
	}
	for i := range res.Nodes {
		m.mu.Lock()
		got := len(m.nodes[i].receipts)
		m.mu.Unlock()
		if got > 0 {
			changes += got
			t.Errorf("node %d has %d messages published by another origin's page", i, got)
		}
	}
	if k := f.changed(); k > 0 {
		changes += k
		t.Errorf("another origin's page injected %d faults", k)
	}
	if p, l := rec.published.Load(), rec.loads.Load(); p+l > 0 {
		changes += int(p + l)
		t.Errorf("the node API ran %d publishes and %d loads for another origin's page", p, l)
	}
	if k := rec.advSets.Load(); k > 0 {
		changes += int(k)
		t.Errorf("the node API took %d adversary modes from another origin's page", k)
	}
	if k := m.advSets(); k > 0 {
		changes += k
		t.Errorf("the dashboard set %d adversary modes for another origin's page", k)
	}
	t.Logf("cross-site state changes: %d (dashboard saw %d POSTs and %d preflights; the node API %d POSTs and %d preflights)",
		changes, dashSeen.get("POST"), dashSeen.get("OPTIONS"), nodeSeen.get("POST"), nodeSeen.get("OPTIONS"))
	// The attempts did reach the servers and were refused there, rather
	// than being stopped by the browser before they were sent.
	if dashSeen.get("POST") < 9 || nodeSeen.get("POST") < 3 {
		t.Errorf("too few attacks reached the servers (dashboard %d POSTs, node %d): the test proves nothing", dashSeen.get("POST"), nodeSeen.get("POST"))
	}
}
