package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReliabilityOverLiveNodes: crashed nodes are not unreached. With a
// fifth of the nodes crashed before the first publish, a dense graph still
// reaches every node that is up: reliability over all nodes is 0.8, over
// the live ones 1, and every broadcast reached every live node.
func TestReliabilityOverLiveNodes(t *testing.T) {
	cfg := small(TopologyUndirected, 16)
	cfg.Crash = Crash{Fraction: 0.2}
	r := run(t, cfg)
	for _, b := range r.PerBroadcast {
		if b.Live != 400 || b.ReachedLive != b.Live || b.ReliabilityLive != 1 || b.Reliability != 0.8 {
			t.Errorf("broadcast %d: live %d, reached live %d, reliability %v (live %v); want 400, 400, 0.8 (1)",
				b.Index, b.Live, b.ReachedLive, b.Reliability, b.ReliabilityLive)
		}
	}
	if r.ReliabilityLive != 1 || r.AllLiveReached != 1 || r.AllReached != 0 || r.Reliability != 0.8 {
		t.Errorf("summary: reliability %v (live %v), all reached %v (live %v)", r.Reliability, r.ReliabilityLive, r.AllReached, r.AllLiveReached)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"100 of 500 nodes crashed", "3 broadcast(s) reached every live node (100.0%)", "reliability (live)     1.000000"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	// A node that had the message and crashed afterwards counts as reached
	// over all nodes, and not at all over the live ones.
	cfg = small(TopologyUndirected, 16)
	cfg.Broadcasts = 1
	cfg.Crash = Crash{Fraction: 0.5, At: 150 * time.Millisecond}
	cfg.Latency = Latency{Kind: LatencyConstant, Min: 100 * time.Millisecond}
	r = run(t, cfg)
	b := r.PerBroadcast[0]
	if b.Live != 250 || b.Reached <= b.ReachedLive || b.ReachedLive > b.Live {
		t.Errorf("crash mid-broadcast: live %d, reached %d, reached live %d", b.Live, b.Reached, b.ReachedLive)
	}
}

// TestCrashAfterRunEnds: a crash that comes after the run has ended is an
// error, not a crash-free run labelled with a crash. When the latency has
// a longest delay the config is refused before running; otherwise Run
// says so at the end.
func TestCrashAfterRunEnds(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Broadcasts = 2
	cfg.Gap = time.Second
	end, ok := cfg.RunEndBound()
	if !ok || end != 2*64*100*time.Millisecond+time.Second {
		t.Fatalf("RunEndBound = %v, %v", end, ok)
	}
	cfg.Crash = Crash{Fraction: 0.1, At: end + 1}
	if err := cfg.Validate(); !errors.Is(err, ErrCrashNeverHappened) {
		t.Errorf("Validate with a crash after the bound: %v", err)
	}
	cfg.Crash.At = end
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with a crash at the bound: %v", err)
	}
	// Within the bound, but after the real end (a broadcast of 500 nodes
	// settles in well under a second, then a 1 s gap, then the second).
	cfg.Crash.At = 5 * time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); !errors.Is(err, ErrCrashNeverHappened) {
		t.Errorf("Run with a crash after its end: %v", err)
	}
	// Log-normal delays have no longest one: only the run can tell.
	cfg.Latency = Latency{Kind: LatencyLogNormal, Median: 50 * time.Millisecond, Sigma: 0.5}
	cfg.Crash.At = time.Hour
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate (log-normal): %v", err)
	}
	if s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(context.Background()); !errors.Is(err, ErrCrashNeverHappened) {
		t.Errorf("Run (log-normal) with a crash after its end: %v", err)
	}
	// A crash in the gap between broadcasts happens at the next publish.
	cfg.Crash.At = 1500 * time.Millisecond
	r := run(t, cfg)
	if r.PerBroadcast[0].Live != 500 || r.PerBroadcast[1].Live != 450 {
		t.Errorf("crash in the gap: live %d then %d, want 500 then 450", r.PerBroadcast[0].Live, r.PerBroadcast[1].Live)
	}
}

// TestLossReportedApart: copies lost to --loss are counted apart from the
// copies sent, per broadcast and in the summary, and the text says how
// many were lost.
func TestLossReportedApart(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Loss = 0.2
	r := run(t, cfg)
	var sent, lost int64
	for _, b := range r.PerBroadcast {
		sent += b.Messages
		lost += b.Lost
	}
	if r.Messages != sent || r.Lost != lost || lost == 0 {
		t.Fatalf("summary: %d sent, %d lost; broadcasts add up to %d and %d", r.Messages, r.Lost, sent, lost)
	}
	if r.Events != r.Messages-r.Lost {
		t.Errorf("%d arrivals, want sent − lost = %d", r.Events, r.Messages-r.Lost)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("copies: %d sent, %d of them lost on the links", sent, lost)
	if !strings.Contains(text.String(), want) {
		t.Errorf("text report lacks %q:\n%s", want, text.String())
	}
}

// TestCancelLeavesOutCutBroadcast: a run stopped in its third broadcast
// reports the two that finished, whole, and none of the third.
func TestCancelLeavesOutCutBroadcast(t *testing.T) {
	cfg := small(TopologyUndirected, 16)
	cfg.Nodes = 3000 // ~48,000 arrivals a broadcast: the context is looked at mid-broadcast
	cfg.Broadcasts = 5
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var arrivals [2]int64
	s.OnDeliver(func(d Delivery) {
		if d.Broadcast == 2 {
			cancel()
		}
	})
	r, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Partial || r.Broadcasts != 2 || len(r.PerBroadcast) != 2 {
		t.Fatalf("partial %v, %d broadcasts reported; want the 2 that finished", r.Partial, r.Broadcasts)
	}
	for i, b := range r.PerBroadcast {
		if b.Reached != cfg.Nodes {
			t.Errorf("broadcast %d reached %d of %d", i, b.Reached, cfg.Nodes)
		}
		arrivals[i] = b.Messages - b.Lost
	}
	if r.Events != arrivals[0]+arrivals[1] {
		t.Errorf("%d arrivals reported, the two broadcasts had %d", r.Events, arrivals[0]+arrivals[1])
	}
}

// TestCountsAreIntegers: every count prints as an integer, in JSON and in
// the text report, and a count whose mean is whole prints without
// decimals.
func TestCountsAreIntegers(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Broadcasts = 1
	cfg.Loss = 0.1
	cfg.Crash = Crash{Fraction: 0.1}
	r := run(t, cfg)
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&js)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	isInt := func(where string, v any) {
		t.Helper()
		n, ok := v.(json.Number)
		if !ok {
			t.Errorf("%s: %v is not a number", where, v)
			return
		}
		if _, err := n.Int64(); err != nil {
			t.Errorf("%s = %s, want an integer", where, n)
		}
	}
	for _, k := range []string{"nodes", "broadcasts", "seed", "events", "messages", "lost", "duplicates", "to_crashed", "max_last_delivery_hop", "graphs", "degree"} {
		isInt(k, m[k])
	}
	b := m["per_broadcast"].([]any)[0].(map[string]any)
	for _, k := range []string{"index", "publisher", "reached", "live", "reached_live", "last_delivery_hop", "messages", "duplicates", "lost", "to_crashed", "rejected"} {
		isInt("per_broadcast[0]."+k, b[k])
	}
	for h, v := range b["reached_by_hop"].([]any) {
		isInt(fmt.Sprintf("reached_by_hop[%d]", h), v)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(text.String(), "\n")
	found := false
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 4 && f[0] == "last" && f[1] == "delivery" {
			found = true
			if want := fmt.Sprint(r.PerBroadcast[0].LastDeliveryHop); f[3] != want {
				t.Errorf("last delivery hop mean prints as %q, want %q", f[3], want)
			}
		}
	}
	if !found {
		t.Errorf("no last delivery hop row:\n%s", text.String())
	}
	// The hop table: one row per hop with the count of new nodes.
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "hop ") {
			at = i + 1
		}
	}
	if at < 0 {
		t.Fatalf("no hop table:\n%s", text.String())
	}
	for h, want := range r.PerBroadcast[0].ReachedByHop {
		f := strings.Fields(lines[at+h])
		if len(f) != 3 || f[0] != fmt.Sprint(h) || f[1] != fmt.Sprint(want) {
			t.Errorf("hop row %q, want hop %d with %d new nodes", lines[at+h], h, want)
		}
	}
}
