package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSweep(t *testing.T) {
	for in, want := range map[string][]float64{
		"fanout=1..4":           {1, 2, 3, 4},
		"degree=4..10/3":        {4, 7, 10},
		"nodes=100,1000, 10000": {100, 1000, 10000},
		"loss=0..0.3/0.1":       {0, 0.1, 0.2, 0.3},
		"fanout=1,3..4":         {1, 3, 4},
	} {
		sw, err := ParseSweep(in)
		if err != nil || !slices.Equal(sw.Values, want) {
			t.Errorf("ParseSweep(%q) = %v, %v; want %v", in, sw.Values, err, want)
		}
	}
	for _, in := range []string{"fanout", "speed=1..2", "fanout=3..1", "fanout=1..5/0", "nodes=1.5", "loss=x", "fanout=1..100000"} {
		if _, err := ParseSweep(in); err == nil {
			t.Errorf("ParseSweep(%q) accepted", in)
		}
	}
}

func TestSweepAndChart(t *testing.T) {
	base := small(TopologyUndirected, 8)
	base.Broadcasts = 2
	for _, spec := range []string{"fanout=2..3", "nodes=100,300"} {
		sw, err := ParseSweep(spec)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := RunSweep(context.Background(), base, sw, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2 || rs[0].Graphs != 2 || rs[0].Broadcasts != 4 {
			t.Fatalf("%s: want 2 runs of 2 graphs × 2 broadcasts, got %d runs, %+v", spec, len(rs), rs[0])
		}
		if sw.Param == SweepFanout && (rs[1].Strategy != "fanout" || rs[1].Fanout != 3) {
			t.Fatalf("fanout sweep ran %s %d", rs[1].Strategy, rs[1].Fanout)
		}
		var text, svg bytes.Buffer
		if err := WriteSweepText(&text, sw, rs); err != nil {
			t.Fatal(err)
		}
		if err := SweepChart(sw, rs).WriteSVG(&svg); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(svg.String(), "<svg") || strings.Count(svg.String(), "<polyline") != len(SweepChart(sw, rs).Series) {
			t.Fatalf("%s: bad SVG:\n%.300s", spec, svg.String())
		}
		if strings.Contains(svg.String(), "NaN") || strings.Contains(svg.String(), "Inf") {
			t.Fatalf("%s: SVG holds NaN/Inf", spec)
		}
	}
}

func TestExperimentsSmall(t *testing.T) {
	for _, name := range Experiments() {
		cfg := ExperimentConfig{Nodes: 200, Graphs: 2, Broadcasts: 1}
		switch name {
		case ExperimentByzantine:
			// One kind: the tables' shape is what this test reads;
			// byzantine_test.go covers the kinds.
			cfg.Kinds = []string{"blackhole"}
		case ExperimentTestbed:
			cfg.Nodes = 0
			cfg.Testbed = TestbedSize{Honest: 100, Sybils: 50, Duration: 500 * time.Millisecond, Calm: time.Second}
		}
		e, err := RunExperiment(context.Background(), name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var md, js bytes.Buffer
		if err := e.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if err := e.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "|---") {
			t.Fatalf("%s: no table:\n%s", name, md.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
			var row map[string]any
			if err := json.Unmarshal([]byte(line), &row); err != nil {
				t.Fatalf("%s: %v: %s", name, err, line)
			}
		}
	}
	if _, err := RunExperiment(context.Background(), "nope", ExperimentConfig{}); err == nil {
		t.Fatal("unknown experiment accepted")
	}
}

func TestReportJSONShape(t *testing.T) {
	r := run(t, small(TopologyKOut, 2))
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nodes", "broadcasts", "seed", "reliability", "mean_hop", "last_delivery_hop", "rmr", "time_to_coverage_ms", "per_broadcast"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var cov map[string]*float64
	if err := json.Unmarshal(m["time_to_coverage_ms"], &cov); err != nil || len(cov) != 4 || cov["50"] == nil {
		t.Errorf("time_to_coverage_ms = %s (%v)", m["time_to_coverage_ms"], err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Nodes != r.Nodes || len(back.PerBroadcast) != r.Broadcasts {
		t.Errorf("JSON does not read back: %v", err)
	}
}

// TestSweepChartClipsAndTellsApart: a fanout sweep whose fanout 1 creeps
// on for dozens of hops gets an x axis cut where the spreading curves
// have settled, says so, names the cut tail, and draws every series in a
// colour and dash of its own, with colours far apart.
func TestSweepChartClipsAndTellsApart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 2000
	sw, err := ParseSweep("fanout=1..12")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunSweep(context.Background(), cfg, sw, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := SweepChart(sw, rs)
	longest := 0.0
	for _, s := range ch.Series {
		longest = max(longest, s.X[len(s.X)-1])
	}
	if ch.XMax <= 0 || ch.XMax >= longest/2 {
		t.Fatalf("x axis ends at %v (0: not cut); the longest curve goes to hop %v", ch.XMax, longest)
	}
	if !strings.Contains(ch.XLabel, "cut at") || !strings.Contains(ch.Series[0].Name, fmt.Sprintf("hop %v", longest)) {
		t.Errorf("the cut is not explained: x label %q, fanout 1 named %q", ch.XLabel, ch.Series[0].Name)
	}
	// Every spreading curve has settled by the cut.
	for i, s := range ch.Series {
		final := s.Y[len(s.Y)-1]
		if final < 100*clipSpread {
			continue
		}
		k := min(int(ch.XMax), len(s.Y)-1)
		if final-s.Y[k] > 100*clipGain+1e-9 {
			t.Errorf("series %d: %.2f%% at the cut, %.2f%% at the end", i, s.Y[k], final)
		}
	}
	var b strings.Builder
	if err := ch.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), fmt.Sprintf(`text-anchor="middle">%v</text>`, longest)) {
		t.Error("the SVG still has a tick at the longest curve's last hop")
	}
	styles := map[[2]string]int{}
	for i := range ch.Series {
		col, dash := seriesStyle(i, &ch.Series[i])
		if j, ok := styles[[2]string{col, dash}]; ok {
			t.Errorf("series %d and %d look alike (%s %q)", j, i, col, dash)
		}
		styles[[2]string{col, dash}] = i
	}
	for i := range palette {
		for j := i + 1; j < len(palette); j++ {
			if d := deltaE(palette[i], palette[j]); d < 25 {
				t.Errorf("colours %s and %s are only ΔE %.1f apart", palette[i], palette[j], d)
			}
		}
	}
}

// deltaE is the CIE76 distance between two #rrggbb colours.
func deltaE(a, b string) float64 {
	lab := func(h string) [3]float64 {
		var c [3]float64
		for k := range c {
			v, _ := strconv.ParseUint(h[1+2*k:3+2*k], 16, 8)
			x := float64(v) / 255
			if x <= 0.04045 {
				c[k] = x / 12.92
			} else {
				c[k] = math.Pow((x+0.055)/1.055, 2.4)
			}
		}
		X := (0.4124*c[0] + 0.3576*c[1] + 0.1805*c[2]) / 0.95047
		Y := 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
		Z := (0.0193*c[0] + 0.1192*c[1] + 0.9505*c[2]) / 1.08883
		f := func(t float64) float64 {
			if t > 0.008856 {
				return math.Cbrt(t)
			}
			return 7.787*t + 16.0/116
		}
		return [3]float64{116*f(Y) - 16, 500 * (f(X) - f(Y)), 200 * (f(Y) - f(Z))}
	}
	p, q := lab(a), lab(b)
	return math.Sqrt((p[0]-q[0])*(p[0]-q[0]) + (p[1]-q[1])*(p[1]-q[1]) + (p[2]-q[2])*(p[2]-q[2]))
}

// TestSweepTextCountsAreIntegers: with one broadcast per value, the last
// delivery hop is a count and prints as one, equal to the max hop.
func TestSweepTextCountsAreIntegers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 500
	sw, err := ParseSweep("fanout=2..4")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunSweep(context.Background(), cfg, sw, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSweepText(&b, sw, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for _, l := range lines[len(lines)-3:] {
		f := strings.Fields(l)
		if len(f) < 8 || f[6] != f[7] || strings.Contains(f[6], ".") {
			t.Errorf("row %q: last hop %q, max hop %q; want the same integer", l, f[6], f[7])
		}
	}
}

// TestSweepTextLiveReliability: a sweep with crashes shows reliability
// over the live nodes beside the one over all nodes.
func TestSweepTextLiveReliability(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 500
	cfg.Crash = Crash{Fraction: 0.2}
	sw, err := ParseSweep("degree=12..16/4")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunSweep(context.Background(), cfg, sw, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteSweepText(&b, sw, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if f := strings.Fields(lines[2]); len(f) < 5 || f[3] != "reliability" || f[4] != "rel_live" {
		t.Fatalf("header %q: want reliability then rel_live", lines[2])
	}
	for _, l := range lines[3:] {
		if f := strings.Fields(l); f[3] != "0.800000" || f[4] != "1.000000" {
			t.Errorf("row %q: want 0.8 over all nodes and 1 over the live ones", l)
		}
	}
}
