package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// The report of a message, the demo's summary and the bench's output all
// show the payload and control frames and the RMR.
func TestReportsShowFramesAndRMR(t *testing.T) {
	g := cluster.NewGraph(4, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 0}})
	r := cluster.Report{
		ID: "abc", Nodes: 4, Reached: 4, Graph: g, Distances: g.Distances(0), Hops: cluster.Histogram{0: 1, 1: 2, 2: 1},
		Receipts:      []cluster.NodeReceipt{{Index: 0, From: -1}, {Index: 1, Hop: 1}, {Index: 2, Hop: 2}, {Index: 3, Hop: 1}},
		PayloadFrames: 6, ControlFrames: 2,
	}
	var out bytes.Buffer
	printReport(&out, r)
	if want := "frames       6 payload (RMR 1.00: a tree needs 3), 2 control"; !strings.Contains(out.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	printSummary(&out, cluster.Summarize([]cluster.Report{r, {Nodes: 4, Reached: 4, PayloadFrames: 3, ControlFrames: 4}}))
	if want := "frames per message   4.5 payload (mean RMR 0.50), 3.0 control"; !strings.Contains(out.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, out.String())
	}

	res := cluster.BenchResult{
		Nodes: 50, Messages: 500, Latency: cluster.LatencyStats{P50: time.Millisecond},
		Frames: cluster.Frames{PayloadPerMsg: 49.5, ControlPerMsg: 3.14159},
	}
	b, err := json.Marshal(benchOut(res, "plumtree"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nodes", "messages", "latency_ms", "sustained", "incomplete", "late", "steps"} {
		if _, ok := got[k]; !ok {
			t.Errorf("bench JSON lost %q: %s", k, b)
		}
	}
	frames, _ := got["frames"].(map[string]any)
	if got["strategy"] != "plumtree" || frames["payload_per_msg"] != 49.5 || frames["control_per_msg"] != 3.14 || got["rmr"] != 0.0102 {
		t.Errorf("bench JSON: %s; want strategy plumtree, frames 49.5 / 3.14, rmr 0.0102", b)
	}
	out.Reset()
	printBench(&out, "header", cluster.DefaultBenchConfig(), res)
	if want := "frames per message: 49.5 payload (RMR 0.01), 3.1 control"; !strings.Contains(out.String(), want) {
		t.Errorf("bench output lacks %q:\n%s", want, out.String())
	}
}
