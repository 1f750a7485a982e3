package web

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gossipmesh/api"
)

// TestBrowserAdversaryMarks: a node turned blackhole through its own PUT
// /adversary (as `mesh chaos adversary` does) is marked on the page (the
// diamond and the mode under it, and the table's Adversary cell with what
// it did); the page's control makes another node a spammer (the node's
// API then reports it) and turns the first honest again (its mark goes).
// A bad mode's refusal is TestAdversaryRoutes': here it would log a
// failed request, which the console watch counts as a page error.
// Every check is of state; the waits are generous bounds.
func TestBrowserAdversaryMarks(t *testing.T) {
	ctx := newBrowser(t)
	m := newFakeMesh(t, 6, ringLinks(6))
	base := serve(t, m)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#nodes tbody tr').length === 6 && document.querySelectorAll('#g-nodes g').length === 6`, 30*time.Second); err != nil {
		t.Fatalf("page never showed 6 nodes: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#g-nodes g[data-adversary]').length`)); err != nil || n != 0 {
		t.Fatalf("an honest mesh shows %d adversaries (%v)", n, err)
	}

	// PUT /adversary on node 2, straight to the node's API.
	node2 := api.NewClient(m.Nodes()[2].HTTPURL, nil)
	if _, err := node2.SetAdversary(ctx, "blackhole"); err != nil {
		t.Fatal(err)
	}
	m.setDropped(2, 7)
	marked := `(() => { const g = document.querySelector('#g-nodes g[data-index="%d"]');
	  return g.dataset.adversary === %q && g.querySelector('.adv-mark').getAttribute('visibility') === 'visible' &&
	    g.querySelector('.adv-label').textContent === %q; })()`
	if err := waitJS(ctx, fmt.Sprintf(marked, 2, "blackhole", "blackhole"), 30*time.Second); err != nil {
		t.Fatalf("node 2, a blackhole, is not marked on the page: %v", err)
	}
	cell := `document.querySelector('#nodes tbody tr[data-index="2"] td.adv').textContent`
	if err := waitJS(ctx, cell+` === 'blackhole: dropped 7'`, 30*time.Second); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](cell))
		t.Fatalf("node 2's Adversary cell says %q, want what it did: %v", got, err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#g-nodes g[data-adversary]').length`)); n != 1 {
		t.Errorf("%d nodes marked, want 1", n)
	}

	// The control: node 4 becomes a spammer.
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#adv-node`), "4"),
		chromedp.SetValue(chromedp.CSS(`#adv-mode`), "spam=100"),
		chromedp.Click(chromedp.CSS(`#adv-set`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, fmt.Sprintf(marked, 4, "spam=100", "spam=100"), 30*time.Second); err != nil {
		t.Fatalf("node 4, made a spammer from the page, is not marked: %v", err)
	}
	if a, err := api.NewClient(m.Nodes()[4].HTTPURL, nil).Adversary(ctx); err != nil || a.Mode != "spam=100" {
		t.Fatalf("node 4 reports %+v, %v after the page's control: want spam=100", a, err)
	}
	// Node 2 turns honest from the page: its mark goes, node 4's stays.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#adv-node`), "2"),
		chromedp.Click(chromedp.CSS(`#adv-honest`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `!document.querySelector('#g-nodes g[data-index="2"]').dataset.adversary && document.querySelectorAll('#g-nodes g[data-adversary]').length === 1`, 30*time.Second); err != nil {
		t.Fatalf("node 2 is still marked after Make honest: %v", err)
	}
	if a, _ := node2.Adversary(ctx); a.Mode != "" {
		t.Errorf("node 2 runs %q after Make honest", a.Mode)
	}
}
