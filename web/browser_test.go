package web

// Browser tests: the page in headless Chromium, driven by chromedp. They
// need Debian's chromium at /usr/bin/chromium; without it they skip, except
// under CI=true, where a missing browser is a failure (.ci/run installs it).
//
// Screenshots go to $GOSSIPMESH_ARTIFACTS/<test name>/ when that is set,
// else to web/testdata-out/<test name>/ (ignored by git); the test logs
// the path. -update-docs copies the real mesh's screenshot to
// docs/img/dashboard.png for the README.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gossipmesh/cluster"
)

var updateDocs = flag.Bool("update-docs", false, "copy the real-mesh dashboard screenshot to docs/img/dashboard.png")

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with the flags this machine needs
// (DESIGN.md): no sandbox as root, and nothing that tries the network at
// start. It returns a tab context that ends with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return startBrowser(t, true)
}

// startBrowser is newBrowser; with watchConsole false, the page's console
// errors do not fail the test (a hostile page's refused requests log
// them).
func startBrowser(t *testing.T, watchConsole bool) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: starts Chromium")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: .ci/run must install it (apt-get install -y chromium)", chromiumPath)
		}
		t.Skipf("browser test skipped: %s not found; install it with `apt-get install -y chromium`", chromiumPath)
	}
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1100),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelAlloc)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	// Any script error, console error or refused load (a CSP violation,
	// a missing asset) fails the test: a broken page that happens to show
	// the right numbers is still broken.
	// What the page logs once the test body has returned does not count:
	// the cleanups stop the dashboard server before the browser (they run
	// last-registered first), and the page's live stream then logs its
	// refused reconnects.
	messages := chromedp.Console(ctx)
	bodyDone := t.Context()
	var mu sync.Mutex
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if bodyDone.Err() != nil || !watchConsole {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page console: %s", p)
		}
	})
	return ctx
}

// artifactDir is where a test leaves screenshots for people to look at.
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("GOSSIPMESH_ARTIFACTS")
	if root == "" {
		root = "testdata-out"
	}
	dir, err := filepath.Abs(filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serve runs a dashboard over m on a local port until the test ends.
func serve(t *testing.T, m Mesh) string {
	t.Helper()
	s, err := New(m, Options{})
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
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// row is one line of the page's node table, as the page shows it.
type row struct {
	Index   int    `json:"index"`
	Reached bool   `json:"reached"`
	Hop     string `json:"hop"`
	From    string `json:"from"`
	State   string `json:"state"`
}

const readRows = `[...document.querySelectorAll('#nodes tbody tr')].map(tr => ({
	index: +tr.dataset.index, reached: tr.dataset.reached === 'true',
	hop: tr.dataset.hop || '', from: tr.dataset.from || '',
	state: tr.cells[2].textContent}))`

// waitJS polls a JavaScript condition until it is true or the timeout.
func waitJS(ctx context.Context, cond string, timeout time.Duration) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	return err
}

func readTable(ctx context.Context) ([]row, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]row](readRows))
}

// publishFromPage chooses node from, types a message, clicks Publish and
// waits for the page to show every node of want reached. It returns the
// message id and the time from the click to that moment, measured in the
// page.
func publishFromPage(ctx context.Context, from int, body string, want int) (id string, took time.Duration, err error) {
	script := fmt.Sprintf(`new Promise((resolve, reject) => {
		const sum = document.querySelector('#summary'), before = sum.dataset.msg;
		const done = () => sum.dataset.msg && sum.dataset.msg !== before && sum.dataset.reached === '%d';
		const t0 = performance.now();
		const obs = new MutationObserver(() => { if (done()) { obs.disconnect(); resolve(performance.now() - t0); } });
		obs.observe(sum, {attributes: true, childList: true, characterData: true, subtree: true});
		setTimeout(() => { obs.disconnect(); reject(new Error('page shows ' + sum.textContent)); }, 15000);
		document.querySelector('#publish').click();
	})`, want)
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#pub-node"), fmt.Sprint(from)),
		chromedp.SetValue(chromedp.CSS("#pub-body"), body),
	)
	if err != nil {
		return "", 0, err
	}
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](script, chromedp.EvalAwaitPromise))
	if err != nil {
		return "", 0, err
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#summary"), "data-msg"))
	id = attr.Value
	return id, time.Duration(ms * float64(time.Millisecond)), err
}

func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// TestBrowserFakeMesh drives the page over fake nodes: publish, the
// table's hops against the fake's breadth-first tree, keyboard focus, and
// kill and restart from the page's buttons.
func TestBrowserFakeMesh(t *testing.T) {
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
	id, took, err := publishFromPage(ctx, 3, "hello from the fake", n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fake mesh: publish to all %d shown in %v", n, took)
	rows, err := readTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hop, parent := m.hopsFrom(3)
	for _, r := range rows {
		if !r.Reached || r.Hop != fmt.Sprint(hop[r.Index]) || (r.Index != 3 && r.From != fmt.Sprint(parent[r.Index])) {
			t.Errorf("row %+v, want hop %d from %d (message %s)", r, hop[r.Index], parent[r.Index], id)
		}
	}
	// Keyboard: the publish button and every kill button take focus.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#nodes tbody tr[data-index="5"] button.danger`))); err != nil {
		t.Fatal(err)
	}
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.getAttribute('aria-label')`))
	if err != nil || focused != "Kill node 5" {
		t.Errorf("focus on node 5's kill button: %q, %v", focused, err)
	}
	// Kill node 5 with the keyboard (Enter on the focused button).
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#nodes tbody tr[data-index="5"]').classList.contains('down') && document.querySelector('#g-nodes g[data-index="5"] circle.node.down') !== null`, 10*time.Second); err != nil {
		t.Fatalf("node 5 not shown as failed after Kill: %v", err)
	}
	if _, _, err := publishFromPage(ctx, 0, "around the hole", n-1); err != nil {
		t.Fatalf("publish with node 5 down: %v", err)
	}
	screenshot(t, ctx, "fake-mesh-node5-down.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="5"] button.secondary`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `!document.querySelector('#nodes tbody tr.down')`, 10*time.Second); err != nil {
		t.Fatalf("node 5 still down after Restart: %v", err)
	}
}

// TestBrowserReplay replays a trace and checks the page ends in the
// trace's final state.
func TestBrowserReplay(t *testing.T) {
	ctx := newBrowser(t)
	tr := sampleTrace()
	s, err := New(nil, Options{Trace: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go s.Serve(sctx, ln)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+ln.Addr().String()+"/replay"),
		chromedp.WaitVisible(chromedp.CSS("#scrub")),
	); err != nil {
		t.Fatal(err)
	}
	// Scrub to the end: the input event jumps there.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector('#scrub'); s.value = 1000; s.dispatchEvent(new Event('input')); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#summary').dataset.reached === '4'`, 10*time.Second); err != nil {
		t.Fatalf("replay did not reach 4 nodes: %v", err)
	}
	rows, err := readTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "0", 1: "1", 2: "2", 3: "2"}
	for _, r := range rows {
		if r.Hop != want[r.Index] {
			t.Errorf("replay row %+v, want hop %s", r, want[r.Index])
		}
	}
	if rows[2].State != "down" {
		t.Errorf("node 2 fails at 5 ms in the trace; row shows %q", rows[2].State)
	}
	screenshot(t, ctx, "replay.png")
}

// TestBrowserRealMesh is the end-to-end test: a real 10-node mesh of `mesh
// node` processes launched by the cluster package, its dashboard, and the
// page in Chromium. It publishes from the page and checks that every node
// is shown reached with the hop and sender that the node's own API
// reports. It logs the time from click to "10/10" but never asserts on it.
func TestBrowserRealMesh(t *testing.T) {
	ctx := newBrowser(t)
	bin := buildMesh(t)
	cfg := cluster.DefaultConfig()
	cfg.Binary = bin
	cfg.Nodes = 10
	cfg.Seed = 7
	cfg.LogLevel = "warn"
	cfg.StartTimeout = time.Minute
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
	base := serve(t, ClusterMesh(c))

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelectorAll('#nodes tbody tr').length === 10 && !document.querySelector('#nodes tbody tr.down')`, 30*time.Second); err != nil {
		t.Fatalf("page never showed 10 live nodes: %v", err)
	}
	ids := map[string]int{}
	for i, n := range c.Nodes() {
		ids[n.ID] = i
	}
	var times []time.Duration
	var lastID string
	for k := range 5 {
		from := (3 + 2*k) % 10
		id, took, err := publishFromPage(ctx, from, fmt.Sprintf("hello from the page, %d", k+1), 10)
		if err != nil {
			t.Fatalf("publish %d from node %d: %v", k+1, from, err)
		}
		times = append(times, took)
		lastID = id
		t.Logf("publish %d from node %d: page showed 10/10 reached %v after the click", k+1, from, took)

		rows, err := readTable(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		for _, r := range rows {
			rc, err := c.Client(r.Index).Receipt(rctx, id, 2*time.Second)
			if err != nil {
				t.Errorf("node %d: its own API has no receipt of %s: %v", r.Index, id, err)
				continue
			}
			wantFrom := "-1" // the publisher
			if rc.From != "" {
				wantFrom = fmt.Sprint(ids[rc.From])
			}
			if !r.Reached || r.Hop != fmt.Sprint(rc.Hop) || r.From != wantFrom {
				t.Errorf("node %d: page shows reached=%v hop %s from %s; node reports hop %d from %s", r.Index, r.Reached, r.Hop, r.From, rc.Hop, wantFrom)
			}
		}
		rcancel()
	}
	slices.Sort(times)
	t.Logf("publish → page shows 10/10 reached: min %v, median %v, max %v over %d publishes (first one cold)", times[0], times[len(times)/2], times[len(times)-1], len(times))

	// Let the hop-by-hop animation finish, then keep a picture.
	if err := waitJS(ctx, `document.querySelectorAll('#g-tree line[visibility="visible"]').length === 9`, 10*time.Second); err != nil {
		t.Errorf("the propagation tree of %s is not drawn (9 links): %v", lastID, err)
	}
	time.Sleep(800 * time.Millisecond) // the last rings fade
	shot := screenshot(t, ctx, "dashboard.png")
	if *updateDocs {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "dashboard.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("copied to docs/img/dashboard.png")
	}

	// Kill a node from the page: it is marked failed and the rest still
	// get messages; restart it from the page and it comes back.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="6"] button.danger`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `document.querySelector('#nodes tbody tr[data-index="6"]').classList.contains('down')`, 10*time.Second); err != nil {
		t.Fatalf("node 6 not shown as failed after Kill: %v", err)
	}
	if n := c.Nodes()[6]; n.Running {
		t.Errorf("node 6 still running after Kill from the page: %+v", n)
	}
	if _, _, err := publishFromPage(ctx, 0, "with node 6 down", 9); err != nil {
		t.Fatalf("publish with node 6 down: %v", err)
	}
	screenshot(t, ctx, "dashboard-node6-down.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#nodes tbody tr[data-index="6"] button.secondary`))); err != nil {
		t.Fatal(err)
	}
	if err := waitJS(ctx, `!document.querySelector('#nodes tbody tr.down')`, 30*time.Second); err != nil {
		t.Fatalf("node 6 still down after Restart: %v", err)
	}
	if _, _, err := publishFromPage(ctx, 6, "node 6 is back", 10); err != nil {
		t.Fatalf("publish from the restarted node: %v", err)
	}
}

// buildMesh builds cmd/mesh into the test's temporary directory.
func buildMesh(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mesh")
	out, err := exec.Command("go", "build", "-o", bin, "gossipmesh/cmd/mesh").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
