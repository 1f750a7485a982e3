package web

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gossipmesh/api"
	"gossipmesh/cluster"
	"gossipmesh/gossip"
)

// TestBrowserFaultsRealMesh drives the fault controls of the page over a
// real mesh of ten `mesh node` processes running Plumtree with
// anti-entropy every second. Split into halves: the page draws exactly
// the links between the halves cut, and a message published on each side
// reaches every node of its side and none of the other. Heal: no link is
// drawn cut, and anti-entropy brings both messages to every node. Pause a
// node: its process is stopped and the page draws it paused, and another
// node killed meanwhile restarts from the page; resume: it runs and is
// drawn up. The loss slider sets every node's plan. Every
// check is of state, read from the page and from the nodes' own APIs;
// the waits are generous bounds, never asserted speeds.
func TestBrowserFaultsRealMesh(t *testing.T) {
	ctx := newBrowser(t)
	bin := buildMesh(t)
	cfg := cluster.DefaultConfig()
	cfg.Binary = bin
	cfg.Nodes = 10
	cfg.Seed = 11
	cfg.LogLevel = "warn"
	cfg.StartTimeout = time.Minute
	cfg.Strategy = gossip.Plumtree
	cfg.AntiEntropy = time.Second
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	startCtx, cancelStart := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelStart()
	if err := c.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	// The fault controls work through the state file, as `mesh chaos`
	// does; this test process plays the launcher.
	if err := c.TrackState(filepath.Join(t.TempDir(), "cluster.json"), os.Getpid()); err != nil {
		t.Fatal(err)
	}
	base := serve(t, ClusterMesh(c))

	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#nodes tbody tr').length === 10 && !document.querySelector('#nodes tbody tr.down') && document.body.classList.contains('faults')`, 30*time.Second); err != nil {
		t.Fatalf("page never showed 10 live nodes with fault controls: %v", err)
	}

	// The links between the halves, from the launcher's own topology.
	side := func(i int) int { return i / 5 }
	want := map[string]bool{}
	for _, n := range c.Nodes() {
		for _, p := range n.Chosen {
			if side(n.Index) != side(p) {
				want[fmt.Sprintf("%d-%d", min(n.Index, p), max(n.Index, p))] = true
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the topology has no link between the halves: the split proves nothing")
	}

	// Split.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#split"))); err != nil {
		t.Fatal(err)
	}
	cutShown := `[...document.querySelectorAll('#g-links line.cut')].map(l => l.dataset.a + '-' + l.dataset.b)`
	if err := waitJS(ctx, fmt.Sprintf(`document.querySelectorAll('#g-links line.cut').length === %d`, len(want)), 30*time.Second); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](cutShown))
		t.Fatalf("after Split the page draws links %v cut, want the %d between the halves: %v", got, len(want), err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](cutShown))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		if !want[l] {
			t.Errorf("the page draws link %s cut, which does not cross the split", l)
		}
	}
	// Every node's own plan holds the cut.
	for i := range 10 {
		p, err := c.Client(i).Faults(ctx)
		if err != nil {
			t.Fatalf("node %d: GET /faults: %v", i, err)
		}
		if n := len(p.CutIDs()); n != 5 {
			t.Errorf("node %d cuts %d peers after Split, want the 5 of the other half", i, n)
		}
	}

	// A message on each side reaches exactly the nodes its publisher can
	// reach without crossing the split: its side, less any node whose
	// links all cross (the launcher's random topology may leave one).
	reach := func(from int) map[int]bool {
		seen := map[int]bool{from: true}
		q := []int{from}
		for len(q) > 0 {
			i := q[0]
			q = q[1:]
			for _, l := range links(ClusterMesh(c).Nodes()) {
				for k, j := range l {
					if l[1-k] == i && side(j) == side(i) && !seen[j] {
						seen[j] = true
						q = append(q, j)
					}
				}
			}
		}
		return seen
	}
	reachA, reachB := reach(0), reach(7)
	t.Logf("during the split node 0 can reach %d nodes, node 7 %d", len(reachA), len(reachB))
	idA, _, err := publishFromPage(ctx, 0, "left of the split", len(reachA))
	if err != nil {
		t.Fatalf("publish on the left during the split: %v", err)
	}
	idB, _, err := publishFromPage(ctx, 7, "right of the split", len(reachB))
	if err != nil {
		t.Fatalf("publish on the right during the split: %v", err)
	}
	holds := func(i int, id string, wait time.Duration) (bool, error) {
		_, err := c.Client(i).Receipt(ctx, id, wait)
		if errors.Is(err, api.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	msgs := []struct {
		id    string
		reach map[int]bool
	}{{idA, reachA}, {idB, reachB}}
	for i := range 10 {
		for _, m := range msgs {
			if !m.reach[i] {
				continue
			}
			if ok, err := holds(i, m.id, 10*time.Second); !ok {
				t.Errorf("node %d does not hold %s, published on its own side during the split: %v", i, m.id, err)
			}
		}
	}
	// Only once each side holds its own message, and anti-entropy has
	// had rounds to leak it: no other node holds any of it.
	for i := range 10 {
		for _, m := range msgs {
			if m.reach[i] {
				continue
			}
			if ok, err := holds(i, m.id, 0); ok || err != nil {
				t.Errorf("node %d, cut off from %s's publisher by the split, holds it (err %v)", i, m.id, err)
			}
		}
	}
	if err := waitJS(ctx, fmt.Sprintf(`document.querySelector('#summary').dataset.reached === '%d'`, len(reachB)), 5*time.Second); err != nil {
		t.Errorf("the page does not show the right-hand message at %d/10 during the split: %v", len(reachB), err)
	}
	time.Sleep(800 * time.Millisecond) // the last rings fade, for the picture
	shot := screenshot(t, ctx, "split.png")
	if *updateDocs {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "dashboard-split.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("copied to docs/img/dashboard-split.png")
	}

	// Heal: no link drawn cut, and every node gets both messages.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#heal"))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#g-links line.cut').length === 0 && document.querySelector('#fault-state').dataset.cut === '0'`, 30*time.Second); err != nil {
		t.Fatalf("after Heal the page still draws cut links: %v", err)
	}
	for i := range 10 {
		for _, id := range []string{idA, idB} {
			if ok, err := holds(i, id, 10*time.Second); !ok {
				t.Errorf("node %d does not hold %s after the heal: %v", i, id, err)
			}
		}
	}
	if err := waitJS(ctx, `document.querySelector('#summary').dataset.reached === '10'`, 30*time.Second); err != nil {
		t.Errorf("the page does not show the right-hand message at 10/10 after the heal: %v", err)
	}

	// Pause node 3, then resume it.
	pid := c.Nodes()[3].PID
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="3"] button[data-action="pause"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#nodes tbody tr[data-index="3"]').classList.contains('paused') &&
		document.querySelector('#nodes tbody tr[data-index="3"]').cells[2].textContent === 'paused' &&
		!!document.querySelector('#g-nodes g[data-index="3"] circle.node.paused') &&
		document.querySelector('#g-nodes g[data-index="3"] .pause-mark').getAttribute('visibility') === 'visible' &&
		document.querySelectorAll('#g-nodes circle.node.paused').length === 1`, 30*time.Second); err != nil {
		t.Fatalf("node 3 not drawn paused after Pause: %v", err)
	}
	if st, err := procState(pid); err != nil || st != "T" {
		t.Errorf("node 3 (pid %d) after Pause from the page: process state %q (%v), want T (stopped)", pid, st, err)
	}
	screenshot(t, ctx, "paused.png")
	// While node 3 is paused the mesh cannot be ready, yet a node killed
	// now restarts from the page: Restart waits for that node alone.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="5"] button[data-action="kill"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#nodes tbody tr[data-index="5"]').classList.contains('down')`, 30*time.Second); err != nil {
		t.Fatalf("node 5 not shown down after Kill: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="5"] button[data-action="restart"]`))); err != nil {
		t.Fatal(err)
	}
	// The restart has answered (no request pending), without an error.
	if err := waitJS(ctx, `!document.querySelector('#nodes tbody tr[data-index="5"]').classList.contains('down') &&
		document.querySelector('#nodes tbody tr[data-index="5"]').cells[2].textContent === 'up' &&
		!document.querySelector('#nodes tbody tr[data-index="5"]').dataset.pending && !document.querySelector('#status.bad')`, 30*time.Second); err != nil {
		st, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		t.Fatalf("node 5 not back after Restart with node 3 paused (status: %s): %v", st, err)
	}
	if n := c.Nodes()[5]; !n.Running {
		t.Errorf("node 5 not running after Restart from the page: %+v", n)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="3"] button[data-action="resume"]`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `!document.querySelector('#nodes tbody tr.paused') && !document.querySelector('#g-nodes circle.node.paused') &&
		document.querySelector('#nodes tbody tr[data-index="3"]').cells[2].textContent === 'up'`, 30*time.Second); err != nil {
		t.Fatalf("node 3 still drawn paused after Resume: %v", err)
	}
	if st, err := procState(pid); err != nil || st == "T" {
		t.Errorf("node 3 (pid %d) after Resume from the page: process state %q (%v), want running", pid, st, err)
	}

	// The loss slider sets every node's drop probability, and back.
	for _, pct := range []int{20, 0} {
		set := fmt.Sprintf(`(() => { const s = document.querySelector('#loss'); s.value = %d; s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); return true; })()`, pct)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](set)); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(ctx, fmt.Sprintf(`Number(document.querySelector('#fault-state').dataset.loss) === %v`, float64(pct)/100), 30*time.Second); err != nil {
			t.Fatalf("the page does not show loss %d%%: %v", pct, err)
		}
		for i := range 10 {
			p, err := c.Client(i).Faults(ctx)
			if err != nil {
				t.Fatalf("node %d: GET /faults: %v", i, err)
			}
			if p.Drop != float64(pct)/100 {
				t.Errorf("node %d drops %v after the slider was set to %d%%", i, p.Drop, pct)
			}
		}
	}
}

// procState is the state letter of a process in /proc/PID/stat: T when
// it is stopped.
func procState(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(b)
	k := strings.LastIndexByte(s, ')')
	if k < 0 || k+3 > len(s) {
		return "", fmt.Errorf("pid %d: unreadable stat %q", pid, s)
	}
	return s[k+2 : k+3], nil
}
