package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"gossipmesh/api"
	"gossipmesh/node"
)

// TestLoadPublishesOnSchedule: Load publishes exactly Count messages of
// Size bytes, all distinct, that every node then has.
func TestLoadPublishesOnSchedule(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}, {1}}, nil)
	m.waitLinked()
	for _, req := range []api.LoadRequest{{Rate: 0, Count: 200, Size: 10}, {Rate: 2000, Count: 50, Size: 0}} {
		res, err := m.nodes[0].Load(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Published != req.Count || len(res.IDs) != req.Count {
			t.Fatalf("%+v: published %d with %d ids", req, res.Published, len(res.IDs))
		}
		if res.AchievedRate <= 0 || res.End.Before(res.Start) {
			t.Errorf("%+v: achieved rate %v from %v to %v", req, res.AchievedRate, res.Start, res.End)
		}
		seen := map[string]bool{}
		for _, id := range res.IDs {
			if seen[id] {
				t.Fatalf("id %s published twice", id)
			}
			seen[id] = true
		}
		last := res.IDs[len(res.IDs)-1]
		rc, ok := m.nodes[2].Receipt(context.Background(), last, settle)
		if !ok || rc.Size != req.Size || rc.Hop != 2 {
			t.Fatalf("%+v: last message at the far node: %+v, %v", req, rc, ok)
		}
	}
	for _, bad := range []api.LoadRequest{{Count: -1}, {Count: 1, Size: -1}, {Count: 1, Size: 1 << 30}, {Count: 1, Rate: -5}} {
		if _, err := m.nodes[0].Load(context.Background(), bad); err == nil {
			t.Errorf("Load(%+v) succeeded", bad)
		}
	}
}

func TestPublishLimitsAndReceiptWait(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, func(i int, c *node.Config) { c.Gossip.MaxBody = 16 })
	m.waitLinked()
	if _, err := m.nodes[0].Publish(context.Background(), make([]byte, 17)); !errors.Is(err, api.ErrBodyTooLarge) {
		t.Errorf("17-byte body with a 16-byte limit: %v, want ErrBodyTooLarge", err)
	}
	if got := m.nodes[0].MaxBody(); got != 16 {
		t.Errorf("MaxBody = %d, want 16", got)
	}
	if _, ok := m.nodes[1].Receipt(context.Background(), "not an id", time.Second); ok {
		t.Error("receipt for a malformed id")
	}
	// A wait that ends with its context reports not found.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, ok := m.nodes[1].Receipt(ctx, strings.Repeat("ab", 16), time.Minute); ok {
		t.Error("receipt for a message nobody published")
	}
	// A waiter that is already waiting when the message arrives gets it.
	body := []byte("awaited")
	done := make(chan api.Receipt)
	rc0, err := m.nodes[0].Publish(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		rc, _ := m.nodes[1].Receipt(context.Background(), rc0.ID, settle)
		done <- rc
	}()
	if rc := <-done; rc.Body != "awaited" || rc.Hop != 1 || rc.From != m.nodes[0].ID().String() {
		t.Errorf("receipt %+v", rc)
	}
	h := m.nodes[1].Health()
	if h.Status != "ok" || h.ID != m.nodes[1].ID().String() || h.Peers != 1 || h.GossipAddr != addr(1) {
		t.Errorf("health %+v", h)
	}
	if rs := m.nodes[1].Recent(10); len(rs) != 1 || rs[0].ID != rc0.ID || rs[0].Body != "" {
		t.Errorf("recent: %+v", rs)
	}
}

// TestSlowSubscriberLosesEventsNotTheNode: a subscriber that never reads
// costs it events, counted, while the node keeps delivering.
func TestSlowSubscriberLosesEventsNotTheNode(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, nil)
	m.waitLinked()
	ch, cancel := m.nodes[1].Subscribe(2)
	res, err := m.nodes[0].Load(context.Background(), api.LoadRequest{Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.nodes[1].Receipt(context.Background(), res.IDs[19], settle); !ok {
		t.Fatal("the node stopped delivering behind a stuck subscriber")
	}
	if got := counter(t, m.nodes[1], "gossipmesh_events_dropped_total"); got != 18 {
		t.Errorf("events dropped: %v, want 18 (20 deliveries, buffer 2)", got)
	}
	cancel()
	n := 0
	for range ch { // cancel closes the channel after what was buffered
		n++
	}
	if n != 2 {
		t.Errorf("%d buffered events, want 2", n)
	}
}

// counter reads one unlabelled counter or gauge from a node's registry.
func counter(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return value(mf.GetMetric()[0])
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestMetricsAndReceiptLogs checks the counters against a known run on a
// line of three nodes, and that each node logs exactly one line per first
// receipt, with the fields the README promises, and no line for
// duplicates.
func TestMetricsAndReceiptLogs(t *testing.T) {
	t.Parallel()
	sinks := make([]*logSink, 3)
	// A triangle: every message reaches each node twice.
	m := startMesh(t, [][]int{nil, {0}, {0, 1}}, func(i int, c *node.Config) {
		sinks[i] = &logSink{}
		c.Logger = slog.New(slog.NewJSONHandler(sinks[i], nil))
	})
	m.waitLinked()
	const msgs = 5
	var last string
	for range msgs {
		rc, err := m.nodes[0].Publish(context.Background(), []byte("counted"))
		if err != nil {
			t.Fatal(err)
		}
		last = rc.ID
	}
	for _, n := range m.nodes {
		if _, ok := n.Receipt(context.Background(), last, settle); !ok {
			t.Fatal("message lost")
		}
	}
	// In a triangle with flood, each message crosses every link both ways
	// except back to the sender of a first copy: 6 - 2 = 4 copies, 2 of
	// them first receipts, 2 duplicates (one at node 1 or 2, one at the
	// publisher).
	eventually(t, "all duplicates", func() bool {
		sum := 0.0
		for _, n := range m.nodes {
			sum += counter(t, n, "gossipmesh_messages_duplicate_total")
		}
		return sum == 2*msgs
	})
	want := map[string][3]float64{
		"gossipmesh_messages_published_total": {msgs, 0, 0},
		"gossipmesh_messages_delivered_total": {0, msgs, msgs},
		"gossipmesh_delivery_hops":            {0, msgs, msgs},
		"gossipmesh_delivery_latency_seconds": {0, msgs, msgs},
		"gossipmesh_peers":                    {2, 2, 2},
		"gossipmesh_messages_dropped_total":   {0, 0, 0},
	}
	for name, w := range want {
		for i, n := range m.nodes {
			if got := counter(t, n, name); got != w[i] {
				t.Errorf("node %d: %s = %v, want %v", i, name, got, w[i])
			}
		}
	}
	if got := counter(t, m.nodes[0], "gossipmesh_messages_forwarded_total"); got != 2*msgs {
		t.Errorf("publisher forwarded %v frames, want %v", got, 2*msgs)
	}
	if got := counter(t, m.nodes[1], "gossipmesh_sent_bytes_total"); got == 0 {
		t.Error("no bytes sent counted")
	}

	for i, sink := range sinks {
		// Logging happens after the batch's sends: wait for the lines.
		wantKind := "delivered"
		if i == 0 {
			wantKind = "published"
		}
		eventually(t, "the log lines", func() bool { return sink.count(wantKind) == msgs })
		if got := sink.count("delivered") + sink.count("published"); got != msgs {
			t.Errorf("node %d logged %d receipt lines for %d messages", i, got, msgs)
		}
		if i == 0 {
			continue
		}
		rec := sink.find(func(r map[string]any) bool { return r["msg"] == "delivered" })
		for _, field := range []string{"node", "id", "hop", "from", "latency"} {
			if _, ok := rec[field]; !ok {
				b, _ := json.Marshal(rec)
				t.Errorf("node %d: delivered line without %q: %s", i, field, b)
			}
		}
	}
}

// count returns the number of records whose msg is kind.
func (s *logSink) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, line := range strings.Split(s.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == kind {
			n++
		}
	}
	return n
}

// lossReport lists n's non-zero counters whose names say a frame or a
// message went missing (dropped, rejected, refused, stale, closed links),
// with their labels, for a test's failure message: a copy that never
// arrived on a loaded CI machine should say which budget took it.
func lossReport(t *testing.T, n *node.Node) string {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	says := func(name string) bool {
		return slices.ContainsFunc([]string{"drop", "reject", "refus", "stale", "disconnect", "passed_over"},
			func(word string) bool { return strings.Contains(name, word) })
	}
	var b strings.Builder
	for _, mf := range mfs {
		name := mf.GetName()
		if !says(name) {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := value(m)
			if v == 0 {
				continue
			}
			fmt.Fprintf(&b, " %s", name)
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, "{%s=%s}", l.GetName(), l.GetValue())
			}
			fmt.Fprintf(&b, "=%v", v)
		}
	}
	if b.Len() == 0 {
		return " (no loss counted)"
	}
	return b.String()
}
