package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
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
		e, err := RunExperiment(context.Background(), name, ExperimentConfig{Nodes: 200, Graphs: 2, Broadcasts: 1})
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
