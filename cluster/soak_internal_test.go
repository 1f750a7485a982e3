package cluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
)

const (
	idA = "0123456789abcdef0123456789abcdef"
	idB = "fedcba9876543210fedcba9876543210"
	idC = "00000000000000000000000000000001"
)

// writeLog writes a node log file in dir and returns its path.
func writeLog(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSoakLogCountsBothFormatsAndDroppedLines(t *testing.T) {
	dir := t.TempDir()
	p := writeLog(t, dir, "node-0.log",
		`time=2026-12-01T08:00:00.000Z level=INFO msg="node up" gossip=127.0.0.1:1`,
		`time=2026-12-01T08:00:00.001Z level=INFO msg=published id=`+idA+` size=64`,
		`time=2026-12-01T08:00:00.002Z level=INFO msg=delivered id=`+idB+` hop=1 from=00000000000000aa latency=1ms`,
		`time=2026-12-01T08:00:00.003Z level=INFO msg="peer down" peer_id=`+idC[:16]+` reason=EOF`,
		`{"time":"2026-12-01T08:00:00.004Z","level":"INFO","msg":"delivered","id":"`+idC+`","hop":2,"from":"00000000000000bb"}`,
		`{"time":"2026-12-01T08:00:00.005Z","level":"INFO","msg":"delivered","id":"`+idB+`","hop":3,"from":"00000000000000bb"}`,
		`log: 7 lines dropped: the log destination was not keeping up`,
	)
	// A rotated sibling is read too.
	writeLog(t, dir, "node-0.log.1", `time=x level=INFO msg=published id=`+idC+` size=1`)
	nl, err := readNodeLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if nl.publishedLines != 2 || nl.deliveredLines != 3 || nl.dropped != 7 {
		t.Errorf("lines: published %d, delivered %d, dropped %d; want 2, 3, 7", nl.publishedLines, nl.deliveredLines, nl.dropped)
	}
	if len(nl.delivered) != 2 {
		t.Errorf("distinct delivered ids %d, want 2", len(nl.delivered))
	}
	for id, n := range nl.delivered {
		if want := map[string]uint32{idB: 2, idC: 1}[id.String()]; n != want {
			t.Errorf("id %s delivered %d times, want %d", id, n, want)
		}
	}
}

// soakRunWithLogs builds a soakRun over fake nodes whose logs are given,
// without processes: countLogs and finish only read files and counters.
func soakRunWithLogs(t *testing.T, logs [][]string, metrics []map[string]float64) SoakResult {
	t.Helper()
	dir := t.TempDir()
	s := &soakRun{cfg: DefaultSoakConfig(), cross: map[[2]string]*CrossSiteCount{}}
	for i, lines := range logs {
		s.nodes = append(s.nodes, NodeInfo{Member: Member{Index: i}, LogPath: writeLog(t, dir, "node-"+string(rune('0'+i))+".log", lines...)})
	}
	s.samples = make([]SoakNode, len(logs))
	if err := s.countLogs(metrics); err != nil {
		t.Fatal(err)
	}
	s.finish()
	return s.res
}

func pub(id string) string { return "time=x level=INFO msg=published id=" + id + " size=1" }
func del(id string) string {
	return "time=x level=INFO msg=delivered id=" + id + " hop=1 from=0000000000000001 latency=1ms"
}

func counters(published, delivered float64) map[string]float64 {
	return map[string]float64{metricPublished: published, metricDelivered: delivered}
}

func TestSoakExactlyOnceHolds(t *testing.T) {
	r := soakRunWithLogs(t, [][]string{
		{pub(idA), del(idB)},
		{pub(idB), del(idA)},
	}, []map[string]float64{counters(1, 1), counters(1, 1)})
	if !r.OK() {
		t.Fatalf("failures on a clean run: %q", r.Failures)
	}
	for _, n := range r.PerNode {
		if !n.Exact || n.Twice != 0 || n.MaxPerMessage != 1 || n.Missing != 0 || n.Expected != 1 {
			t.Errorf("node %d: %+v; want exact, each message once, none missing", n.Index, n)
		}
	}
}

// A planted double delivery: node 1's log holds idA twice. The soak must
// name the node and the message.
func TestSoakDetectsADoubleDelivery(t *testing.T) {
	r := soakRunWithLogs(t, [][]string{
		{pub(idA), del(idB)},
		{pub(idB), del(idA), del(idA)},
	}, []map[string]float64{counters(1, 1), counters(1, 2)})
	if r.OK() {
		t.Fatal("a message delivered twice passed the soak")
	}
	if n := r.PerNode[1]; n.Twice != 1 || n.MaxPerMessage != 2 || n.TwiceExample != idA {
		t.Errorf("node 1: twice %d, max %d, example %q; want 1, 2, %s", n.Twice, n.MaxPerMessage, n.TwiceExample, idA)
	}
	if !strings.Contains(strings.Join(r.Failures, "\n"), "node 1 delivered 1 message(s) more than once") {
		t.Errorf("failures do not name node 1's double delivery: %q", r.Failures)
	}
	// The counter check sees it independently: 2 deliveries of the 1
	// message node 0 published.
	if !strings.Contains(strings.Join(r.Failures, "\n"), "node 1 counted 2 deliveries of the 1 messages") {
		t.Errorf("failures miss the counter check: %q", r.Failures)
	}
}

// A log that lost lines cannot prove exactly-once, even when the lines it
// has look clean.
func TestSoakIncompleteLogIsNotProof(t *testing.T) {
	r := soakRunWithLogs(t, [][]string{
		{pub(idA), del(idB)},
		{pub(idB), pub(idC), "log: 1 lines dropped: the log destination was not keeping up"},
	}, []map[string]float64{counters(1, 2), counters(2, 1)})
	if r.OK() {
		t.Fatal("incomplete logs passed as proof of exactly-once delivery")
	}
	if r.PerNode[0].Exact || r.PerNode[1].Exact {
		t.Errorf("exact: node 0 %v (log 1 delivered line, counter 2), node 1 %v (dropped lines); want both false", r.PerNode[0].Exact, r.PerNode[1].Exact)
	}
	if got := r.PerNode[0].Missing; got != 1 {
		t.Errorf("node 0 missing %d, want 1 (idC)", got)
	}
}

func TestSoakRSSBudgetAndHonestDelivery(t *testing.T) {
	cfg := DefaultSoakConfig()
	r := SoakResult{
		PerNode: []SoakNode{{Index: 0, PeakRSS: 300 << 20, Exact: true, MaxPerMessage: 1}},
		Honest:  SoakHonest{Messages: 2, Pairs: 4, Delivered: 3, Missing: []string{"m at node 2: not found"}},
	}
	got := strings.Join(soakFailures(r, cfg), "\n")
	for _, want := range []string{"node 0 peaked at 300.0 MiB RSS, over the 256.0 MiB budget", "honest delivery 3 of 4"} {
		if !strings.Contains(got, want) {
			t.Errorf("failures %q lack %q", got, want)
		}
	}
}

// The cross-site counter must tell a route that serves a cross-site
// request from one that refuses it, for every kind of request.
func TestSoakCrossSiteCounting(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusCreated, api.PublishResponse{ID: idA})
	}))
	defer open.Close()
	// guarded refuses what the hardened routes refuse: a foreign Origin
	// or Host, Sec-Fetch-Site cross-site, a body that is not JSON.
	guarded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" || r.Header.Get("Sec-Fetch-Site") == "cross-site" ||
			!strings.HasPrefix(r.Host, "127.0.0.1:") || r.Header.Get("Content-Type") != "application/json" {
			api.WriteError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		api.WriteJSON(w, http.StatusCreated, api.PublishResponse{ID: idA})
	}))
	defer guarded.Close()
	ctx := context.Background()
	for _, srv := range []struct {
		url  string
		want crossSiteOutcome
	}{{open.URL, outcomeChanged}, {guarded.URL, outcomeRefused}} {
		for _, kind := range crossSiteKinds() {
			got, example := sendCrossSite(ctx, open.Client(), srv.url, "/messages", `{"body":"x"}`, kind)
			if got != srv.want {
				t.Errorf("%s to %s: outcome %d (%s), want %d", kind.name, srv.url, got, example, srv.want)
			}
		}
	}
	// The same request with honest headers goes through the guard: the
	// kinds differ from it only in what makes them cross-site.
	honest := crossSiteKind{name: "honest", ctype: "application/json"}
	if got, ex := sendCrossSite(ctx, guarded.Client(), guarded.URL, "/messages", `{"body":"x"}`, honest); got != outcomeChanged {
		t.Errorf("honest request refused by the guard: %s", ex)
	}
}

func TestSoakConfigValidate(t *testing.T) {
	if err := DefaultSoakConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := []func(*SoakConfig){
		func(c *SoakConfig) { c.Duration = 0 },
		func(c *SoakConfig) { c.Rate = -1 },
		func(c *SoakConfig) { c.Rate = 1e308 },
		func(c *SoakConfig) { c.LargeSize = 2 << 20 },
		func(c *SoakConfig) { c.Attempts = c.SlowConns - 1 },
		func(c *SoakConfig) { c.Subscribers = MaxSoakConns + 1 },
		func(c *SoakConfig) { c.RSSBudget = 0 },
		func(c *SoakConfig) { c.Storm = api.MaxLoadCount + 1 },
		func(c *SoakConfig) { c.HonestWait = 2 * api.MaxWait },
		func(c *SoakConfig) { c.CrossSiteEvery = time.Millisecond },
		func(c *SoakConfig) { c.DashboardURL = "ftp://x" },
	}
	for k, mutate := range bad {
		c := DefaultSoakConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", k, c)
		}
	}
}

func TestParseMetricsKeepsUnlabelledSeries(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 17\ngossipmesh_rejected_total{reason=\"stalled\"} 3\ngossipmesh_messages_delivered_total 1.2e+06\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 17 || m[metricDelivered] != 1.2e6 || len(m) != 2 {
		t.Errorf("parsed %v", m)
	}
}

// The launcher rotates a node's log on write boundaries, not line
// boundaries: a receipt line split between node-N.log.1 and node-N.log is
// still one receipt.
func TestSoakLogReadsRotatedFilesAsOneStream(t *testing.T) {
	dir := t.TempDir()
	line := del(idA)
	cut := strings.Index(line, idA) + 10 // inside the id
	if err := os.WriteFile(filepath.Join(dir, "node-0.log.1"), []byte(del(idB)+"\n"+line[:cut]), 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeLog(t, dir, "node-0.log", line[cut:])
	writeLog(t, dir, "node-0.log.old", del(idC)) // not a rotation: ignored
	nl, err := readNodeLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if nl.deliveredLines != 2 || len(nl.delivered) != 2 {
		t.Errorf("delivered lines %d, distinct %d; want 2, 2 (idB, then idA across the rotation)", nl.deliveredLines, len(nl.delivered))
	}
}
