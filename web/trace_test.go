package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// sampleTrace is a 4-node line 0–1–2–3 plus 1–3, one message from node 0,
// and node 2 failing after it.
func sampleTrace() *Trace {
	return &Trace{
		Version: TraceVersion, Source: "test", Nodes: 4,
		Links: [][2]int{{0, 1}, {1, 2}, {2, 3}, {1, 3}},
		Events: []TraceEvent{
			{AtMS: 0, Kind: TracePublished, Node: 0, From: -1, Hop: 0, Msg: "m1"},
			{AtMS: 0.2, Kind: TraceDelivered, Node: 1, From: 0, Hop: 1, Msg: "m1"},
			{AtMS: 0.4, Kind: TraceDelivered, Node: 2, From: 1, Hop: 2, Msg: "m1"},
			{AtMS: 0.45, Kind: TraceDelivered, Node: 3, From: 1, Hop: 2, Msg: "m1"},
			{AtMS: 0.6, Kind: TraceDuplicate, Node: 3, From: 2, Hop: 3, Msg: "m1"},
			{AtMS: 0.6, Kind: TraceDuplicate, Node: 2, From: 3, Hop: 3, Msg: "m1"},
			{AtMS: 5, Kind: TraceDown, Node: 2, From: -1},
		},
	}
}

func writeTrace(t *testing.T, tr *Trace) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw, err := NewTraceWriter(&buf, TraceHeader{Source: tr.Source, Nodes: tr.Nodes, IDs: tr.IDs, Links: tr.Links})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range tr.Events {
		if err := tw.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTraceWriterRoundTrip(t *testing.T) {
	t.Parallel()
	want := sampleTrace()
	b := writeTrace(t, want)
	if !bytes.Equal(b, writeTrace(t, want)) {
		t.Error("the same events gave different bytes")
	}
	got, err := ReadTrace(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ReadTrace of TraceWriter output: %v\n%s", err, b)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
	}
	// One event per line keeps traces diffable.
	if lines := bytes.Count(b, []byte("\n")); lines != len(want.Events)+2 {
		t.Errorf("%d lines for %d events:\n%s", lines, len(want.Events), b)
	}
	// An empty trace is still valid JSON.
	var buf bytes.Buffer
	tw, _ := NewTraceWriter(&buf, TraceHeader{Nodes: 1})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTrace(&buf); err != nil {
		t.Errorf("empty trace: %v", err)
	}
}

func TestTraceWriterRejects(t *testing.T) {
	t.Parallel()
	if _, err := NewTraceWriter(&bytes.Buffer{}, TraceHeader{Nodes: 0}); err == nil {
		t.Error("a trace of 0 nodes should be refused")
	}
	var buf bytes.Buffer
	tw, _ := NewTraceWriter(&buf, TraceHeader{Nodes: 2, Links: [][2]int{{0, 1}}})
	if err := tw.Write(TraceEvent{AtMS: 1, Kind: TracePublished, Node: 0, From: -1, Msg: "a"}); err != nil {
		t.Fatal(err)
	}
	err := tw.Write(TraceEvent{AtMS: 0.5, Kind: TraceDelivered, Node: 1, From: 0, Hop: 1, Msg: "a"})
	if err == nil || !strings.Contains(err.Error(), "time order") {
		t.Errorf("out-of-order event: %v", err)
	}
	// The first error sticks.
	if err2 := tw.Close(); err2 == nil {
		t.Error("Close after a bad event should report it")
	}
	if err := tw.Write(TraceEvent{AtMS: 2, Kind: TraceUp, Node: 1, From: -1}); err == nil {
		t.Error("Write after a failure should fail")
	}
}

func TestReadTraceErrors(t *testing.T) {
	t.Parallel()
	mut := func(f func(*Trace)) string {
		tr := sampleTrace()
		f(tr)
		b, _ := json.Marshal(tr)
		return string(b)
	}
	for _, tc := range []struct{ name, in, has string }{
		{"not JSON", `{"version":`, "invalid JSON"},
		{"trailing", mut(func(*Trace) {}) + `{}`, "trailing"},
		{"version", mut(func(t *Trace) { t.Version = 9 }), "version 9"},
		{"no nodes", mut(func(t *Trace) { t.Nodes = 0 }), "nodes must be"},
		{"too many nodes", mut(func(t *Trace) { t.Nodes = MaxTraceNodes + 1 }), "nodes must be"},
		{"ids", mut(func(t *Trace) { t.IDs = []string{"a"} }), "1 ids for 4 nodes"},
		{"link out of range", mut(func(t *Trace) { t.Links[0] = [2]int{0, 4} }), "link 0"},
		{"self link", mut(func(t *Trace) { t.Links[0] = [2]int{2, 2} }), "link 0"},
		{"negative time", mut(func(t *Trace) { t.Events[0].AtMS = -1 }), "at_ms -1"},
		{"time order", mut(func(t *Trace) { t.Events[2].AtMS = 0.1 }), "time order"},
		{"node", mut(func(t *Trace) { t.Events[1].Node = 4 }), "node 4"},
		{"kind", mut(func(t *Trace) { t.Events[1].Kind = "teleported" }), `kind "teleported"`},
		{"published from", mut(func(t *Trace) { t.Events[0].From = 1 }), "published"},
		{"delivered from self", mut(func(t *Trace) { t.Events[1].From = 1 }), "from 1"},
		{"delivered hop 0", mut(func(t *Trace) { t.Events[1].Hop = 0 }), "hop ≥ 1"},
		{"delivered no msg", mut(func(t *Trace) { t.Events[1].Msg = "" }), "msg"},
		{"down with from", mut(func(t *Trace) { t.Events[6].From = 0 }), "from -1"},
		{"long msg", mut(func(t *Trace) { t.Events[0].Msg = strings.Repeat("m", 200) }), "limit 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.has) {
				t.Errorf("err = %v, want one containing %q", err, tc.has)
			}
		})
	}
	tr := sampleTrace()
	tr.Events[0].AtMS = math.NaN()
	if err := tr.Validate(); err == nil {
		t.Error("NaN time should be refused")
	}
	if _, err := ReadTrace(errReader{}); err == nil {
		t.Error("a read error should be reported")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// FuzzReadTrace: a trace is outside input; ReadTrace must not panic, and
// whatever it accepts must validate and survive a round trip.
func FuzzReadTrace(f *testing.F) {
	b, _ := json.Marshal(sampleTrace())
	f.Add(b)
	f.Add([]byte(`{"version":1,"nodes":1,"links":[],"events":[]}`))
	f.Add([]byte(`{"version":1,"nodes":3,"links":[[0,1]],"events":[{"at_ms":0,"kind":"down","node":2,"from":-1,"hop":0}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		tr, err := ReadTrace(bytes.NewReader(in))
		if err != nil {
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("ReadTrace accepted an invalid trace: %v", err)
		}
		out, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadTrace(bytes.NewReader(out)); err != nil {
			t.Fatalf("re-encoded trace refused: %v", err)
		}
	})
}
