package cluster

import (
	"encoding/json"
	"testing"
	"time"
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
	}
	if s != want {
		t.Errorf("summary\n got %+v\nwant %+v", s, want)
	}
	b, err := json.Marshal(map[string]Summary{"summary": s})
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"summary":{"messages":3,"complete":2,"time_to_last_ms":{"p50":3,"p99":5},"receipts":8,` +
		`"mean_hop":1.75,"mean_distance":1.5,"hop_equals_distance":0.75,"neighbours":6,"neighbours_at_hop_1":0.6667}}`
	if string(b) != wantJSON {
		t.Errorf("JSON\n got %s\nwant %s", b, wantJSON)
	}
	if z := Summarize(nil); z != (Summary{}) {
		t.Errorf("empty summary %+v", z)
	}
}
