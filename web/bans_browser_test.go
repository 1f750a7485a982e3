package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gossipmesh/api"
)

// bannedNode is a node API backend with a ban list, as a node with
// scoring on.
type bannedNode struct{ recordingNode }

func (*bannedNode) BannedPeers() ([]api.BannedPeer, bool) {
	return []api.BannedPeer{{ID: "00000000000000aa", Until: time.Now().Add(time.Hour), Reason: "secret-reason-xyzzy"}}, true
}

const banReadPage = `<!doctype html><html><body><script>
const node = %q;
window.reads = Promise.allSettled([
  fetch(node + '/peers/banned').then(r => r.text()),
  fetch(node + '/peers').then(r => r.text()),
]).then(rs => rs.map(r => r.status + ': ' + (r.value || String(r.reason))));
</script></body></html>`

// TestBrowserCannotReadBans: a page of another local origin asks a node
// for GET /peers/banned and GET /peers; the requests reach the node, but
// the page reads nothing (the node grants no cross-origin read), so the
// ban list does not leak to any web page.
func TestBrowserCannotReadBans(t *testing.T) {
	ctx := startBrowser(t, false) // the refused reads log CORS errors
	seen := &requestCounter{n: map[string]int{}}
	nodeAPI := httptest.NewServer(seen.wrap(api.NewHandler(&bannedNode{}, nil)))
	t.Cleanup(nodeAPI.Close)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, banReadPage, nodeAPI.URL)
	}))
	t.Cleanup(evil.Close)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL+"/")); err != nil {
		t.Fatal(err)
	}
	reads, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.reads`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the reads: %v", err)
	}
	for _, r := range reads {
		t.Logf("read %s", r)
		if !strings.HasPrefix(r, "rejected: ") || strings.Contains(r, "secret-reason-xyzzy") {
			t.Errorf("another origin's page read a node route: %s", r)
		}
	}
	if seen.get("GET") < 2 {
		t.Errorf("the node saw %d GETs: the reads never reached it, so the test proves nothing", seen.get("GET"))
	}
}
