package cluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
)

// Summarize counts hop against distance over the non-publishers' receipts,
// the publisher's direct neighbours (reached or not) at hop 1, and the
// time to the last node over the complete messages only.
func TestSummarize(t *testing.T) {
	// A path 0-1-2-3 and a triangle 0-1-2 with 3 hanging off 2.
	path := NewGraph(4, [][2]int{{0, 1}, {1, 2}, {2, 3}})
	tri := NewGraph(4, [][2]int{{0, 1}, {1, 2}, {0, 2}, {2, 3}})
	ms := time.Millisecond
	rs := []Report{
		{ // complete; every hop equals the distance
			Publisher: 0, Nodes: 4, Reached: 4, TimeToLast: 3 * ms, Distances: path.Distances(0),
			Receipts: []NodeReceipt{{Index: 0}, {Index: 1, Hop: 1, Distance: 1}, {Index: 2, Hop: 2, Distance: 2}, {Index: 3, Hop: 3, Distance: 3}},
		},
		{ // complete; neighbour 2 took the long way (hop 2, distance 1)
			Publisher: 0, Nodes: 4, Reached: 4, TimeToLast: 5 * ms, Distances: tri.Distances(0),
			Receipts: []NodeReceipt{{Index: 0}, {Index: 1, Hop: 1, Distance: 1}, {Index: 2, Hop: 2, Distance: 1}, {Index: 3, Hop: 3, Distance: 2}},
		},
		{ // incomplete: neighbour 1 missed it; its time to last is left out
			Publisher: 2, Nodes: 4, Reached: 3, TimeToLast: 100 * ms, Distances: tri.Distances(2), Missing: []int{1},
			Receipts: []NodeReceipt{{Index: 0, Hop: 1, Distance: 1}, {Index: 2}, {Index: 3, Hop: 1, Distance: 1}},
		},
	}
	s := Summarize(rs)
	want := Summary{
		Messages: 3, Complete: 2,
		TimeToLastP50: 3 * ms, TimeToLastP99: 5 * ms,
		Receipts: 8,
		MeanHop:  14.0 / 8, MeanDistance: 12.0 / 8,
		HopIsDistance: 6.0 / 8,
		// Neighbours: 1 (path), 1 and 2 (triangle), 0, 1 and 3 (from 2).
		Neighbours: 6, NeighboursAtHop1: 4.0 / 6,
		// No frames counted: each report's RMR is 0/(N-1) - 1.
		RMR: -1,
	}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	b, err := json.Marshal(map[string]Summary{"summary": s})
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"summary":{"messages":3,"complete":2,"time_to_last_ms":{"p50":3,"p99":5},"receipts":8,` +
		`"mean_hop":1.75,"mean_distance":1.5,"hop_equals_distance":0.75,"neighbours":6,"neighbours_at_hop_1":0.6667,` +
		`"payload_frames_per_msg":0,"control_frames_per_msg":0,"mean_rmr":-1}}`
	if string(b) != wantJSON {
		t.Errorf("JSON\n got %s\nwant %s", b, wantJSON)
	}
	if z := Summarize(nil); z != (Summary{}) {
		t.Errorf("empty summary %+v", z)
	}
}

// TestReportCountsFrames: a report sums every reached node's payload and
// control frames for the message, and its RMR is payload / (N-1) - 1 with
// N the mesh's node count; the JSON carries all three, per message and per
// receipt.
func TestReportCountsFrames(t *testing.T) {
	m := testMesh(t, 4)
	id := func(i int) string { return m.members[i].ID }
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rcs := []*api.Receipt{
		{Hop: 0, ReceivedAt: t0, PayloadFrames: 3},
		{Hop: 1, From: id(0), ReceivedAt: t0, PayloadFrames: 1, ControlFrames: 2},
		{Hop: 1, From: id(0), ReceivedAt: t0, PayloadFrames: 2, ControlFrames: 1},
		{Hop: 2, From: id(2), ReceivedAt: t0},
	}
	r := m.newReport("abc", 0, t0, rcs, NewGraph(4, [][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 2}, {2, 3}}))
	if r.PayloadFrames != 6 || r.ControlFrames != 3 {
		t.Errorf("frames: payload %d control %d, want 6 and 3", r.PayloadFrames, r.ControlFrames)
	}
	if got := r.RMR(); got != 1 {
		t.Errorf("RMR %v, want 6/3 - 1 = 1", got)
	}
	if r.Receipts[1].PayloadFrames != 1 || r.Receipts[1].ControlFrames != 2 {
		t.Errorf("node 1's receipt: %+v", r.Receipts[1])
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Payload  *int     `json:"payload_frames"`
		Control  *int     `json:"control_frames"`
		RMR      *float64 `json:"rmr"`
		Receipts []struct {
			Payload *int `json:"payload_frames"`
			Control *int `json:"control_frames"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Payload == nil || *got.Payload != 6 || got.Control == nil || *got.Control != 3 || got.RMR == nil || *got.RMR != 1 {
		t.Errorf("JSON frames: %s", b)
	}
	if len(got.Receipts) != 4 || got.Receipts[2].Payload == nil || *got.Receipts[2].Payload != 2 || *got.Receipts[2].Control != 1 {
		t.Errorf("JSON receipts: %s", b)
	}
	// A settled tree: N-1 payload frames, RMR 0; a mesh of one node: 0.
	if r := (Report{Nodes: 50, PayloadFrames: 49}); r.RMR() != 0 {
		t.Errorf("tree RMR %v, want 0", r.RMR())
	}
	if r := (Report{Nodes: 1}); r.RMR() != 0 {
		t.Errorf("one-node RMR %v, want 0", r.RMR())
	}
}

// TestSummarizeMeansFrames: the summary gives the mean payload and control
// frames per message and the mean RMR, over every message.
func TestSummarizeMeansFrames(t *testing.T) {
	rs := []Report{
		{Nodes: 5, Reached: 5, PayloadFrames: 12, ControlFrames: 0}, // RMR 2
		{Nodes: 5, Reached: 5, PayloadFrames: 4, ControlFrames: 6},  // RMR 0
		{Nodes: 5, Reached: 4, PayloadFrames: 5, ControlFrames: 3},  // RMR 0.25
	}
	s := Summarize(rs)
	if s.PayloadFrames != 7 || s.ControlFrames != 3 || s.RMR != 0.75 {
		t.Errorf("means: payload %v control %v rmr %v; want 7, 3, 0.75", s.PayloadFrames, s.ControlFrames, s.RMR)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"payload_frames_per_msg":7`, `"control_frames_per_msg":3`, `"mean_rmr":0.75`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("summary JSON lacks %s: %s", want, b)
		}
	}
}
