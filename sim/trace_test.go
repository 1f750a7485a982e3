package sim

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// traced runs cfg on one graph with a Tracer of the given limit.
func traced(t *testing.T, cfg Config, limit int) (*Report, *Tracer) {
	t.Helper()
	tr := NewTracer(limit)
	r, err := RunObserved(context.Background(), cfg, 1, nil, tr.Observer())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	return r, tr
}

// TestTracerMatchesRun: a trace has every first delivery once with the
// run's hops, every duplicate and every crash, in time order; and
// watching a run does not change it.
func TestTracerMatchesRun(t *testing.T) {
	cfg := small(TopologyKOut, 4)
	cfg.Nodes = 300
	cfg.Loss = 0.05
	cfg.Crash = Crash{Fraction: 0.1, At: 40 * time.Millisecond}
	cfg.Broadcasts = 3
	cfg.Gap = 0

	// The reference: the same run with only the delivery hook.
	want := map[[2]int]int{} // {broadcast, node} → hop
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.OnDeliver(func(d Delivery) { want[[2]int{d.Broadcast, d.Node}] = d.Hop })
	plain, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	r, tr := traced(t, cfg, 1_000_000)
	if !bytes.Equal(render(t, r), render(t, plain)) {
		t.Fatal("a traced run reports differently from the same run untraced")
	}
	got := map[[2]int]int{}
	var dups int64
	var down, pubs int
	var prev int64
	for k, e := range tr.Events() {
		if e.At < prev {
			t.Fatalf("event %d at %d is before the previous one at %d", k, e.At, prev)
		}
		prev = e.At
		switch e.Kind {
		case TracePublished, TraceDelivered:
			key := [2]int{int(e.Broadcast), int(e.Node)}
			if _, ok := got[key]; ok {
				t.Fatalf("node %d has two first deliveries of broadcast %d", e.Node, e.Broadcast)
			}
			got[key] = int(e.Hop)
			if e.Kind == TracePublished {
				pubs++
				if e.Hop != 0 || e.From != -1 || int(e.Node) != r.PerBroadcast[e.Broadcast].Publisher {
					t.Fatalf("bad publish event %+v", e)
				}
			}
		case TraceDuplicate:
			dups++
		case TraceDown:
			down++
			if e.At != int64(cfg.Crash.At) {
				t.Fatalf("crash event at %d, want %d", e.At, cfg.Crash.At)
			}
		}
	}
	if pubs != cfg.Broadcasts {
		t.Errorf("%d publish events, want %d", pubs, cfg.Broadcasts)
	}
	if down != 30 {
		t.Errorf("%d down events, want 30 (10%% of 300)", down)
	}
	var wantDups int64
	for _, b := range r.PerBroadcast {
		wantDups += b.Duplicates
	}
	if dups != wantDups || tr.DroppedDuplicates() != 0 {
		t.Errorf("%d duplicate events (dropped %d), report says %d", dups, tr.DroppedDuplicates(), wantDups)
	}
	if len(got) != len(want) {
		t.Fatalf("%d first deliveries traced, %d in the run", len(got), len(want))
	}
	for k, h := range want {
		if g, ok := got[k]; !ok || g != h {
			t.Fatalf("broadcast %d node %d: traced hop %d (present %v), run hop %d", k[0], k[1], g, ok, h)
		}
	}
}

// TestTracerDropsDuplicatesWhole: past the limit every duplicate goes and
// every first delivery stays.
func TestTracerDropsDuplicatesWhole(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 200
	cfg.Broadcasts = 2
	r, tr := traced(t, cfg, 600)
	if tr.DroppedDuplicates() == 0 {
		t.Fatal("no duplicates dropped; the test needs a tighter limit")
	}
	reached := 0
	for _, b := range r.PerBroadcast {
		reached += b.Reached
	}
	if len(tr.Events()) != reached {
		t.Fatalf("%d events, want the %d first deliveries only", len(tr.Events()), reached)
	}
	if slices.ContainsFunc(tr.Events(), func(e TraceEvent) bool { return e.Kind == TraceDuplicate }) {
		t.Fatal("a duplicate survived")
	}
	// A limit below the first deliveries is an error, not a quiet cut.
	tr = NewTracer(100)
	if _, err := RunObserved(context.Background(), cfg, 1, nil, tr.Observer()); err != nil {
		t.Fatal(err)
	}
	if tr.Err() == nil {
		t.Fatal("no error for a trace that lost first deliveries")
	}
}

func TestGraphLinks(t *testing.T) {
	g, err := LoadGraph(strings.NewReader("0 1\n1 2\n2 0\n2 3\n3 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Links(), [][2]int{{0, 1}, {0, 2}, {1, 2}, {2, 3}}; !slices.Equal(got, want) {
		t.Fatalf("links %v, want %v", got, want)
	}
	// One-way links become pairs, one per pair of nodes.
	cfg := small(TopologyKOut, 3)
	kg, err := BuildGraph(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[[2]int]bool{}
	for a := 0; a < kg.N(); a++ {
		for _, id := range kg.Peers(a) {
			b := int(id) - 1
			pairs[[2]int{min(a, b), max(a, b)}] = true
		}
	}
	if l := kg.Links(); len(l) != len(pairs) {
		t.Fatalf("%d links for %d distinct pairs", len(l), len(pairs))
	}
}

// checkSVG decodes an SVG as XML to the end and returns its text.
func checkSVG(t *testing.T, data []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			text.Write(cd)
		}
	}
	return text.String()
}

func TestRunCharts(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 400
	cfg.Broadcasts = 4
	cfg.Latency = Latency{Kind: LatencyUniform, Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	rc := NewRunCharts()
	r, err := RunObserved(context.Background(), cfg, 1, nil, rc.Observer())
	if err != nil {
		t.Fatal(err)
	}
	cov, hops := rc.Charts(r)
	c := cov.Series[0]
	if last := c.Y[len(c.Y)-1]; last < 100*r.Reliability-1e-9 || last > 100*r.Reliability+1e-9 {
		t.Errorf("coverage curve ends at %v%%, reliability is %v", last, r.Reliability)
	}
	if !slices.IsSorted(c.X) || !slices.IsSorted(c.Y) {
		t.Error("coverage curve is not monotone")
	}
	// The pooled curve crosses 50% near the broadcasts' mean t50.
	for i, y := range c.Y {
		if y >= 50 {
			if d := c.X[i] - r.TimeToCoverageMS[0]; d < -10 || d > 10 {
				t.Errorf("curve reaches 50%% at %v ms, report's mean t50 is %v ms", c.X[i], r.TimeToCoverageMS[0])
			}
			break
		}
	}
	var sum float64
	for _, y := range hops.Series[0].Y {
		sum += y
	}
	if sum < 100*r.Reliability-1e-6 || sum > 100*r.Reliability+1e-6 {
		t.Errorf("hop histogram sums to %v%%, want %v", sum, 100*r.Reliability)
	}
	for _, ch := range []*Chart{cov, hops} {
		var a, b bytes.Buffer
		if err := ch.WriteSVG(&a); err != nil {
			t.Fatal(err)
		}
		text := checkSVG(t, a.Bytes())
		for _, s := range ch.Series {
			if !strings.Contains(text, s.Name) {
				t.Errorf("%q: no legend for series %q", ch.Title, s.Name)
			}
		}
		ch.WriteSVG(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Error("two renderings differ")
		}
	}
	if !strings.Contains(hops.Title, "mean hop") || hops.Series[0].Name != "first reached at hop h" || !hops.Series[0].Bars {
		t.Errorf("hop chart: %q %+v", hops.Title, hops.Series[0].Name)
	}
}
