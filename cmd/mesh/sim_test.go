package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gossipmesh/sim"
	"gossipmesh/web"
)

// TestSimDeterministic: the same seed and flags give byte-identical
// output, in every format.
func TestSimDeterministic(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--nodes", "400", "--degree", "8", "--broadcasts", "3"},
		{"sim", "--nodes", "400", "--topology", "kout", "--degree", "4", "--loss", "0.05", "--crash", "0.1@40ms", "--json", "--broadcasts", "2"},
		{"sim", "--nodes", "300", "--strategy", "fanout", "--fanout", "3", "--latency", "lognormal:50ms,0.5", "--csv", "--graphs", "2"},
	} {
		var a, b, errs bytes.Buffer
		if code := run(args, &a, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if code := run(args, &b, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if a.Len() == 0 || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%v: two runs differ:\n%s\n---\n%s", args, a.String(), b.String())
		}
	}
}

func TestSimSweepWritesChart(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "fanout.svg")
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--nodes", "300", "--sweep", "fanout=2..4", "--svg", svg}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 6 {
		t.Errorf("want a header, a blank line, a column line and 3 rows, got:\n%s", out.String())
	}
	data, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(data, []byte("<svg")) || !bytes.Contains(data, []byte("fanout=4")) {
		t.Fatalf("chart: %v\n%.200s", err, data)
	}
}

func TestSimExperimentSmall(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--experiment", "slot", "--nodes", "300", "--graphs", "1", "--broadcasts", "2"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "| random 8-regular, flood |") {
		t.Fatalf("no slot table:\n%s", out.String())
	}
}

// TestSimBadFlags: bad flags are reported clearly and exit 2.
func TestSimBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "1"},
		{"--latency", "fast"},
		{"--latency", "200ms-100ms"},
		{"--strategy", "gossipsub"},
		{"--topology", "no-such-file.txt"},
		{"--crash", "2@1s"},
		{"--loss", "1.5"},
		{"--sweep", "color=1..3"},
		{"--sweep", "fanout=5..1"},
		{"--experiment", "nope"},
		{"--json", "--csv"},
		{"--graphs", "0"},
		{"--regions", "no-such-file"},
		{"extra"},
		{"--bogus"},
		{"--nodes", "2001", "--trace", "t.json"},
		{"--nodes", "2000", "--broadcasts", "500", "--trace", "t.json"},
		{"--trace", "t.json", "--graphs", "2"},
		{"--sweep", "fanout=2..3", "--chart", "c"},
		{"--churn-rate", "0.02"},
		{"--experiment", "churn", "--churn-rate", "0.9"},
		{"--experiment", "churn", "--churn-duration", "10ms"},
		{"--silent-crash"},
		{"--membership", "--topology", "kout"},
		{"--membership", "--active-low", "5", "--active-high", "4"},
		{"--membership", "--trace", "t.json", "--nodes", "50"},
	} {
		var out, errs bytes.Buffer
		if code := run(append([]string{"sim"}, args...), &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errs.String())
		}
		if !strings.Contains(errs.String(), "Run 'mesh sim -h'") {
			t.Errorf("%v: no hint on stderr: %q", args, errs.String())
		}
	}
}

// TestSimTrace: --trace writes a trace that web.ReadTrace accepts, whose
// first deliveries match the run's report, and that is byte-identical for
// the same seed and flags.
func TestSimTrace(t *testing.T) {
	dir := t.TempDir()
	args := []string{"sim", "--nodes", "120", "--degree", "6", "--broadcasts", "3", "--gap", "0",
		"--loss", "0.05", "--crash", "0.1@30ms", "--json"}
	var traces [2][]byte
	var report sim.Report
	for i := range traces {
		path := filepath.Join(dir, []string{"a.json", "b.json"}[i])
		var out, errs bytes.Buffer
		if code := run(append(args, "--trace", path), &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		if !strings.Contains(errs.String(), "wrote "+path) {
			t.Errorf("stderr does not name the trace: %q", errs.String())
		}
		if err := json.Unmarshal(out.Bytes(), &report); err != nil {
			t.Fatal(err)
		}
		var err error
		if traces[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(traces[0], traces[1]) {
		t.Fatal("two traces of the same run differ")
	}
	tr, err := web.ReadTrace(bytes.NewReader(traces[0]))
	if err != nil {
		t.Fatalf("web.ReadTrace: %v", err)
	}
	if tr.Nodes != 120 || len(tr.Links) == 0 {
		t.Fatalf("header: %d nodes, %d links", tr.Nodes, len(tr.Links))
	}
	links := map[[2]int]bool{}
	for _, l := range tr.Links {
		links[l] = true
	}
	type key struct {
		msg  string
		node int
	}
	first := map[key]bool{}
	byHop := map[string][]int{}
	var dups int64
	down := 0
	for _, ev := range tr.Events {
		switch ev.Kind {
		case web.TracePublished, web.TraceDelivered:
			k := key{ev.Msg, ev.Node}
			if first[k] {
				t.Fatalf("node %d has two first deliveries of %s", ev.Node, ev.Msg)
			}
			first[k] = true
			for len(byHop[ev.Msg]) <= ev.Hop {
				byHop[ev.Msg] = append(byHop[ev.Msg], 0)
			}
			byHop[ev.Msg][ev.Hop]++
			if ev.Kind == web.TraceDelivered && !links[[2]int{min(ev.Node, ev.From), max(ev.Node, ev.From)}] {
				t.Fatalf("%s reached %d from %d over no link", ev.Msg, ev.Node, ev.From)
			}
		case web.TraceDuplicate:
			dups++
		case web.TraceDown:
			down++
		}
	}
	if down != 12 {
		t.Errorf("%d down events, want 12", down)
	}
	var wantDups int64
	for i, b := range report.PerBroadcast {
		msg := "m" + string(rune('1'+i))
		got := byHop[msg]
		if len(got) != len(b.ReachedByHop) {
			t.Fatalf("%s: delivered by hop %v, report %v", msg, got, b.ReachedByHop)
		}
		for h := range got {
			if got[h] != b.ReachedByHop[h] {
				t.Fatalf("%s: delivered by hop %v, report %v", msg, got, b.ReachedByHop)
			}
		}
		wantDups += b.Duplicates
	}
	if dups != wantDups {
		t.Errorf("%d duplicate events, report says %d", dups, wantDups)
	}
}

// TestSimTraceLimit: a run over the trace's node limit is refused before
// it starts, with the limit in the message.
func TestSimTraceLimit(t *testing.T) {
	var out, errs bytes.Buffer
	path := filepath.Join(t.TempDir(), "t.json")
	if code := run([]string{"sim", "--nodes", "5000", "--trace", path}, &out, &errs); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errs.String(), "trace limit of 2000 nodes") {
		t.Errorf("message does not name the limit: %q", errs.String())
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a refused run wrote a trace")
	}
}

// TestSimChart: --chart writes two well-formed, deterministic SVGs with
// the expected series.
func TestSimChart(t *testing.T) {
	dir := t.TempDir()
	var first [2][]byte
	for round := range 2 {
		prefix := filepath.Join(dir, "run"+string(rune('a'+round))+".svg")
		var out, errs bytes.Buffer
		if code := run([]string{"sim", "--nodes", "500", "--broadcasts", "3", "--chart", prefix}, &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		base := strings.TrimSuffix(prefix, ".svg")
		for i, c := range []struct{ file, want string }{
			{base + "-coverage.svg", "nodes reached"},
			{base + "-hops.svg", "first reached at hop h"},
		} {
			data, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if text := xmlText(t, data); !strings.Contains(text, c.want) || !strings.Contains(text, "500 nodes") {
				t.Errorf("%s: no %q or run description in %q", c.file, c.want, text)
			}
			if round == 0 {
				first[i] = data
			} else if !bytes.Equal(first[i], data) {
				t.Errorf("%s differs from the first run's", c.file)
			}
		}
	}
}

// xmlText decodes data as XML to the end and returns its character data.
func xmlText(t *testing.T, data []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return b.String()
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			b.Write(cd)
		}
	}
}

// TestSimCrashAfterEnd: a crash scheduled after the run ends exits 2 with
// a message that names the crash: before running when the latency bounds
// the run (uniform, constant), at the end otherwise.
func TestSimCrashAfterEnd(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "300", "--crash", "0.1@1h"},
		{"--nodes", "300", "--crash", "0.1@5s"},
		{"--nodes", "300", "--crash", "0.1@1h", "--latency", "lognormal:50ms,0.5"},
		{"--nodes", "300", "--crash", "0.1@5s", "--sweep", "fanout=2..3", "--svg", "-"},
	} {
		var out, errs bytes.Buffer
		if code := run(append([]string{"sim"}, args...), &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errs.String())
		}
		if !strings.Contains(errs.String(), "crash would come after the end of the run") {
			t.Errorf("%v: stderr does not say why: %q", args, errs.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: a report was printed:\n%s", args, out.String())
		}
	}
}

// TestSimJSONCounts: the JSON report carries the copy counts as integers
// beside the live-node reliability.
func TestSimJSONCounts(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--nodes", "300", "--loss", "0.1", "--crash", "0.1", "--json"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"messages", "lost", "duplicates", "to_crashed", "events"} {
		v := string(m[k])
		if v == "" || strings.ContainsAny(v, ".eE") || v == "0" {
			t.Errorf("%s = %q, want a positive integer", k, v)
		}
	}
	if string(m["reliability_live"]) != "1" || string(m["all_live_reached"]) != "1" {
		t.Errorf("reliability_live %s, all_live_reached %s: want 1 and 1 (a crash is not a miss)", m["reliability_live"], m["all_live_reached"])
	}
}

// TestSimPartialTraceAndCharts: a run stopped in its third broadcast
// writes a trace and charts of the two broadcasts that finished, as its
// report has them, and nothing of the third.
func TestSimPartialTraceAndCharts(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Nodes = 2000 // ~32,000 arrivals a broadcast: the context is looked at mid-broadcast
	cfg.Broadcasts = 5
	g, err := sim.BuildGraph(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Graph = g
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tracer := sim.NewTracer(web.MaxTraceEvents)
	charts := sim.NewRunCharts()
	stop := sim.Observer{Deliver: func(d sim.Delivery) {
		if d.Broadcast == 2 {
			cancel()
		}
	}}
	r, err := sim.RunObserved(ctx, cfg, 1, nil, tracer.Observer().Also(charts.Observer()).Also(stop))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Partial || r.Broadcasts != 2 {
		t.Fatalf("partial %v with %d broadcasts, want the 2 that finished", r.Partial, r.Broadcasts)
	}
	path := filepath.Join(t.TempDir(), "t.json")
	if err := writeTrace(path, g, r, tracer); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := web.ReadTrace(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	firsts := map[string]int{}
	for _, ev := range tr.Events {
		if ev.Kind == web.TracePublished || ev.Kind == web.TraceDelivered {
			firsts[ev.Msg]++
		}
	}
	if len(firsts) != 2 || firsts["m1"] != cfg.Nodes || firsts["m2"] != cfg.Nodes {
		t.Errorf("first deliveries by message %v, want m1 and m2 with %d each and no m3", firsts, cfg.Nodes)
	}
	cov, _ := charts.Charts(r)
	if last := cov.Series[0].Y[len(cov.Series[0].Y)-1]; last < 99.999 || last > 100.001 {
		t.Errorf("the coverage curve ends at %v%%: the cut-off broadcast is in it", last)
	}
}

// TestSimPlumtreeExperiment: `mesh sim --experiment plumtree` prints its
// table, writes its SVG where --svg says, and prints one JSON row per
// broadcast after each crash with --json.
func TestSimPlumtreeExperiment(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "heal.svg")
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--experiment", "plumtree", "--nodes", "200", "--broadcasts", "3", "--svg", svg}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "largest surviving connected component") || !strings.Contains(out.String(), "| 95% |") {
		t.Errorf("no crash-sweep table:\n%s", out.String())
	}
	data, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(data, []byte("<svg")) || !bytes.Contains(data, []byte("X = 80%")) {
		t.Fatalf("chart: %v\n%.200s", err, data)
	}
	out.Reset()
	if code := run([]string{"sim", "--experiment", "plumtree", "--nodes", "200", "--broadcasts", "3", "--svg", "-", "--json"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if want := len(sim.PlumtreeCrashPercents) * 2 * 3; len(lines) != want {
		t.Fatalf("%d JSON rows, want %d", len(lines), want)
	}
	var row sim.PlumtreeExperimentRow
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row.Strategy != "plumtree" || row.After != 1 || row.Component == 0 {
		t.Errorf("first row %+v (%v)", row, err)
	}
}

// TestSimControlMessages: --json counts control frames per broadcast:
// none for flood, some for plumtree.
func TestSimControlMessages(t *testing.T) {
	for _, strategy := range []string{"flood", "plumtree"} {
		var out, errs bytes.Buffer
		if code := run([]string{"sim", "--nodes", "300", "--strategy", strategy, "--broadcasts", "3", "--gap", "0s", "--json"}, &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		var r struct {
			Control      *int64 `json:"control_messages"`
			PerBroadcast []struct {
				Control *int64 `json:"control_messages"`
			} `json:"per_broadcast"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Control == nil || len(r.PerBroadcast) != 3 {
			t.Fatalf("%s: no control_messages in %s", strategy, out.String())
		}
		for i, b := range r.PerBroadcast {
			if b.Control == nil || (strategy == "flood") != (*b.Control == 0) {
				t.Errorf("%s broadcast %d: control_messages %v", strategy, i, b.Control)
			}
		}
	}
}

// TestSimChurnExperiment: `mesh sim --experiment churn` prints its tables,
// writes its degree chart, and prints one JSON row per strategy; the same
// flags give the same bytes.
func TestSimChurnExperiment(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "churn.svg")
	args := []string{"sim", "--experiment", "churn", "--nodes", "200", "--churn-rate", "0.02", "--churn-duration", "3s"}
	var out, errs bytes.Buffer
	if code := run(append(args, "--svg", svg), &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "| flood | 30 |") || !strings.Contains(out.String(), "| plumtree | 30 |") || !strings.Contains(out.String(), "| t (s) | live |") {
		t.Errorf("no churn tables:\n%s", out.String())
	}
	data, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(data, []byte("<svg")) || !bytes.Contains(data, []byte("plumtree, mean")) {
		t.Fatalf("chart: %v\n%.200s", err, data)
	}
	var js [2]bytes.Buffer
	for k := range js {
		if code := run(append(args, "--svg", "-", "--json"), &js[k], &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
	}
	if !bytes.Equal(js[0].Bytes(), js[1].Bytes()) {
		t.Error("two runs of the same flags differ")
	}
	lines := strings.Split(strings.TrimSpace(js[0].String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON rows, want 2", len(lines))
	}
	var row sim.ChurnRun
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row.Strategy != "flood" || row.Membership.Crashed != 12 || row.Membership.Joined != 12 || len(row.Degrees) != 5 {
		t.Errorf("first row %+v (%v)", row, err)
	}
}

// TestSimCPUProfile: --cpuprofile writes a pprof profile (gzip) and leaves
// the report as it is without it; a path that cannot be created is an
// error before the run.
func TestSimCPUProfile(t *testing.T) {
	args := []string{"sim", "--nodes", "400", "--broadcasts", "3"}
	var plain, profiled, errs bytes.Buffer
	if code := run(args, &plain, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	path := filepath.Join(t.TempDir(), "cpu.prof")
	if code := run(append(args, "--cpuprofile", path), &profiled, &errs); code != 0 {
		t.Fatalf("--cpuprofile: exit %d: %s", code, errs.String())
	}
	if !bytes.Equal(plain.Bytes(), profiled.Bytes()) {
		t.Errorf("the report changed with --cpuprofile:\n%s\n---\n%s", plain.String(), profiled.String())
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("profile: %v, %d bytes, want a gzip-compressed pprof profile", err, len(data))
	}
	errs.Reset()
	bad := filepath.Join(t.TempDir(), "missing", "cpu.prof")
	if code := run(append(args, "--cpuprofile", bad), io.Discard, &errs); code == 0 || !strings.Contains(errs.String(), "--cpuprofile") {
		t.Errorf("--cpuprofile into a missing directory: exit %d, %q; want an error naming the flag", code, errs.String())
	}
}
