package web

// Browser tests of the dashboard's layout and of the views that keep a
// large mesh readable. Like browser_test.go they drive headless Chromium
// and skip without /usr/bin/chromium unless CI=true.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// serveTrace runs a replay-only dashboard over tr until the test ends.
func serveTrace(t *testing.T, tr *Trace) string {
	t.Helper()
	s, err := New(nil, Options{Trace: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String() + "/replay"
}

// layoutCheck generates random graphs of the kinds the dashboard shows,
// lays each out with the page's own layout, and checks the drawing with a
// geometry of its own: no link may pass within the node radius plus PAD of
// a node that is not one of its ends, no two nodes may overlap, every node
// must be inside the view box, and the radius must be at least MIN_R. It returns how many graphs
// of each kind were drawn, how many fell back to the aggregated view, and
// every violation found.
const layoutCheck = `(() => {
  const L = window.gossipmeshLayout;
  if (!L) throw new Error('the page exposes no layout');
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const W = 640, H = 460;
  const dist = (p, a, b) => {
    const dx = b[0] - a[0], dy = b[1] - a[1], L2 = dx * dx + dy * dy;
    const t = L2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L2)) : 0;
    return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
  };
  // What the launcher and the simulator draw: every node picks k distinct
  // random peers and links are undirected; plus rings.
  const graph = (n, k) => {
    const seen = new Set(), links = [];
    for (let a = 0; a < n; a++) {
      let picked = 0, tries = 0;
      while (picked < k && tries++ < 100) {
        const b = Math.floor(rnd() * n);
        if (b === a) continue;
        const key = Math.min(a, b) + '-' + Math.max(a, b);
        if (seen.has(key)) { picked++; continue; }
        seen.add(key); links.push([Math.min(a, b), Math.max(a, b)]); picked++;
      }
    }
    return links;
  };
  const out = { drawn: {}, fallback: {}, violations: [] };
  const kinds = [];
  for (let g = 0; g < 40; g++) kinds.push(['mesh', 3 + Math.floor(rnd() * 48), 3]);
  for (let g = 0; g < 10; g++) kinds.push(['small', 2 + Math.floor(rnd() * 8), 1]);
  for (let g = 0; g < 10; g++) kinds.push(['ring', 5 + Math.floor(rnd() * 60), 0]);
  for (let g = 0; g < 10; g++) kinds.push(['sim', 50 + Math.floor(rnd() * 151), 2 + Math.floor(rnd() * 3)]);
  for (const [kind, n, k] of kinds) {
    const links = kind === 'ring' ? Array.from({ length: n }, (_, i) => [Math.min(i, (i + 1) % n), Math.max(i, (i + 1) % n)]) : graph(n, Math.min(k, n - 1));
    const lay = L.layoutGraph(n, links);
    if (!lay) { out.fallback[kind] = (out.fallback[kind] || 0) + 1; continue; }
    out.drawn[kind] = (out.drawn[kind] || 0) + 1;
    const { pos, r } = lay;
    if (!(r >= L.MIN_R)) out.violations.push(kind + ' n=' + n + ': radius ' + r);
    for (let i = 0; i < n; i++) {
      const [x, y] = pos[i];
      if (!(x - r >= 0 && x + r <= W && y - r >= 0 && y + r <= H)) out.violations.push(kind + ' n=' + n + ': node ' + i + ' outside the box at ' + x + ',' + y);
    }
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
      const d = Math.hypot(pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]);
      if (d < 2 * r) out.violations.push(kind + ' n=' + n + ': nodes ' + i + ' and ' + j + ' overlap (' + d.toFixed(2) + ' px apart, radius ' + r.toFixed(2) + ')');
    }
    for (const [a, b] of links) for (let i = 0; i < n; i++) {
      if (i === a || i === b) continue;
      const d = dist(pos[i], pos[a], pos[b]);
      if (d < r + L.PAD) out.violations.push(kind + ' n=' + n + ': link ' + a + '-' + b + ' passes ' + d.toFixed(2) + ' px from node ' + i + ' (radius ' + r.toFixed(2) + ')');
    }
  }
  return out;
})()`

type layoutResult struct {
	Drawn      map[string]int `json:"drawn"`
	Fallback   map[string]int `json:"fallback"`
	Violations []string       `json:"violations"`
}

// TestBrowserLayoutNoEdgeUnderNode: over 70 random graphs, no drawn link
// runs under a node that is not one of its ends, and every mesh of up to
// 50 nodes with 3 peers each, and every ring, is drawn node by node rather
// than aggregated. Larger dense graphs may be aggregated, but those drawn
// must pass the same check.
func TestBrowserLayoutNoEdgeUnderNode(t *testing.T) {
	ctx := newBrowser(t)
	url := serveTrace(t, sampleTrace())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#scrub"))); err != nil {
		t.Fatal(err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[layoutResult](layoutCheck))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drawn %v, aggregated %v", res.Drawn, res.Fallback)
	for i, v := range res.Violations {
		if i == 20 {
			t.Errorf("… and %d more", len(res.Violations)-20)
			break
		}
		t.Error(v)
	}
	for _, kind := range []string{"mesh", "small", "ring"} {
		if res.Fallback[kind] > 0 {
			t.Errorf("%d %s graphs were not drawn node by node", res.Fallback[kind], kind)
		}
	}
	if res.Drawn["mesh"] != 40 || res.Drawn["small"] != 10 || res.Drawn["ring"] != 10 {
		t.Errorf("drawn: %v", res.Drawn)
	}
	// The sample trace itself is drawn, and clean by the same check.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#g-nodes circle.node').length`))
	if err != nil || n != sampleTrace().Nodes {
		t.Errorf("the page draws %d nodes (%v), want %d", n, err, sampleTrace().Nodes)
	}
}

// bigTrace is a replay of one message over n nodes with 3 random peers
// each, first copies along breadth-first paths, 10 ms a hop.
func bigTrace(n int) *Trace {
	r := rand.New(rand.NewPCG(7, 7))
	seen := map[[2]int]bool{}
	adj := make([][]int, n)
	tr := &Trace{Version: TraceVersion, Source: fmt.Sprintf("test: %d nodes", n), Nodes: n}
	add := func(a, b int) {
		k := [2]int{min(a, b), max(a, b)}
		if a == b || seen[k] {
			return
		}
		seen[k] = true
		tr.Links = append(tr.Links, k)
		adj[a] = append(adj[a], b)
		adj[b] = append(adj[b], a)
	}
	for a := 0; a < n; a++ {
		add(a, (a+1)%n) // a ring, so that every node is reached
		for range 2 {
			add(a, r.IntN(n))
		}
	}
	hop := make([]int, n)
	for i := range hop {
		hop[i] = -1
	}
	hop[0] = 0
	tr.Events = append(tr.Events, TraceEvent{AtMS: 0, Kind: TracePublished, Node: 0, From: -1, Msg: "m1"})
	q := []int{0}
	for k := 0; k < len(q); k++ {
		a := q[k]
		for _, b := range adj[a] {
			if hop[b] < 0 {
				hop[b] = hop[a] + 1
				q = append(q, b)
				tr.Events = append(tr.Events, TraceEvent{AtMS: float64(10 * hop[b]), Kind: TraceDelivered, Node: b, From: a, Hop: hop[b], Msg: "m1"})
			}
		}
	}
	return tr
}

// TestBrowserReplayLargeAggregates: a replay of 1,000 nodes switches to
// the view by hop, and the page stays under 3,000 px tall; at the end
// of the replay the view counts every node reached.
func TestBrowserReplayLargeAggregates(t *testing.T) {
	ctx := newBrowser(t)
	tr := bigTrace(1000)
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	url := serveTrace(t, tr)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#agg-chart"))); err != nil {
		t.Fatalf("the aggregated view never showed: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#scrub'); s.value = 1000; s.dispatchEvent(new Event('input')); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#agg').dataset.reached === '1000' && document.querySelector('#summary').dataset.reached === '1000'`, 20*time.Second); err != nil {
		t.Fatalf("the view by hop never counted 1000 nodes reached: %v", err)
	}
	type page struct {
		Height    int  `json:"height"`
		Aggregate bool `json:"aggregate"`
		GraphShow bool `json:"graphShown"`
		Rows      int  `json:"rows"`
		Hops      int  `json:"hops"`
	}
	p, err := chromedp.Run(ctx, chromedp.Evaluate[page](`({
		height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
		aggregate: document.body.classList.contains('aggregate'),
		graphShown: document.querySelector('#graph').getBoundingClientRect().height > 0,
		rows: document.querySelectorAll('#agg-table tbody tr').length,
		hops: +document.querySelector('#agg').dataset.hops})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page: %+v", p)
	if p.Height >= 3000 {
		t.Errorf("the page is %d px tall, want < 3000", p.Height)
	}
	if !p.Aggregate || p.GraphShow || p.Rows == 0 || p.Rows != p.Hops {
		t.Errorf("want the view by hop instead of the graph: %+v", p)
	}
	screenshot(t, ctx, "replay-1000.png")
}

// TestBrowserTableFollowsAnimation: on a live mesh, the node table shows a
// node reached when the graph lights it up, not before: at every change of
// the page, the rows marked reached are exactly the nodes drawn lit, and
// the table passes through states between one node and all of them.
func TestBrowserTableFollowsAnimation(t *testing.T) {
	ctx := newBrowser(t)
	const n = 10
	m := newFakeMesh(t, n, ringLinks(n))
	base := serve(t, m)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#nodes tbody tr').length === 10 && !document.querySelector('#nodes tbody tr.down')`, 10*time.Second); err != nil {
		t.Fatalf("page never showed 10 live nodes: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.__snaps = []; window.__mismatch = [];
		const look = () => {
			const rows = [...document.querySelectorAll('#nodes tbody tr[data-reached="true"]')].map((tr) => +tr.dataset.index).sort((a, b) => a - b);
			const lit = [...document.querySelectorAll('#g-nodes g')].filter((g) => /\b(reached|origin)\b/.test(g.querySelector('circle.node').getAttribute('class'))).map((g) => +g.dataset.index).sort((a, b) => a - b);
			if (rows.join() !== lit.join()) window.__mismatch.push('table ' + rows.join() + ' / graph ' + lit.join());
			if (window.__snaps[window.__snaps.length - 1] !== rows.length) window.__snaps.push(rows.length);
		};
		new MutationObserver(look).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['class', 'data-reached'] });
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := publishFromPage(ctx, 3, "watch the table", n); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		Snaps    []int    `json:"snaps"`
		Mismatch []string `json:"mismatch"`
	}
	s, err := chromedp.Run(ctx, chromedp.Evaluate[seen](`({snaps: window.__snaps, mismatch: window.__mismatch})`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reached rows over time: %v", s.Snaps)
	for i, mm := range s.Mismatch {
		if i == 5 {
			break
		}
		t.Errorf("the table ran ahead of the graph: %s", mm)
	}
	between := 0
	for _, k := range s.Snaps {
		if k > 1 && k < n {
			between++
		}
	}
	if between == 0 {
		t.Errorf("the table went from none to all without the hops between: %v", s.Snaps)
	}
}
