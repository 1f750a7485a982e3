package node_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gossipmesh/node"
	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// TestBadConnectionFloodLogsBoundedLines sends 10,000 connections that
// each open with garbage. Each one is dropped with a warning, but the log
// carries at most LogRate of them per second, and "suppressed" lines
// account for every one left out. The receipt lines of a healthy peer's
// messages all pass.
func TestBadConnectionFloodLogsBoundedLines(t *testing.T) {
	t.Parallel()
	const bad, workers, messages = 10_000, 8, 50
	// The bound on lines counts the seconds from before the node's first
	// line to after its last: every line falls in that span.
	began := time.Now()
	logs := &logSink{}
	nw := memnet.New()
	cfg := node.DefaultConfig()
	cfg.Key = node.KeyForTest(1)
	cfg.Gossip.Auth = modelAuth() // as startMesh's nodes sign
	cfg.Transport = nw.Host("target")
	cfg.Listen = "target:7000"
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	// No frame of the healthy peer's may be shed for waiting: on a loaded
	// machine the flood can hold one past the default second, and flood
	// routing would not repair it. Shedding is not what this test is about.
	cfg.MaxQueueDelay = settle
	target, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go target.Run(ctx)
	t.Cleanup(func() { cancel(); <-target.Done() })
	healthy := startMesh(t, [][]int{nil}, func(_ int, c *node.Config) {
		c.Key = node.KeyForTest(2)
		c.Transport = nw.Host("healthy")
		c.Listen = "healthy:7000"
		c.Candidates = []string{"target:7000"}
		c.Peers = 1
		c.MaxQueueDelay = settle
	}).nodes[0]
	// Both ends: the target can hold the link before the healthy peer's
	// handshake is over, and a message published meanwhile goes nowhere.
	eventually(t, "the healthy link", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })

	garbage := frame(9, wire.FrameHello, make([]byte, 12)) // an unknown version
	attacker := nw.Host("attacker")
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range bad / workers {
				c, err := attacker.Dial(context.Background(), "target:7000")
				if err != nil {
					t.Error(err)
					return
				}
				c.Write(garbage)
				io.Copy(io.Discard, c) // until the node hangs up
				c.Close()
			}
		}()
	}
	var ids []string
	for k := range messages {
		rc, err := healthy.Publish(context.Background(), []byte{byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	wg.Wait()

	// Every bad connection is either logged or counted as suppressed, once
	// the last window's count is out.
	var logged, suppressed, delivered int
	count := func() {
		logged, suppressed, delivered = 0, 0, 0
		logs.each(func(r map[string]any) {
			switch {
			case r["msg"] == "dropping connection":
				logged++
			case r["msg"] == "suppressed similar log lines" && r["message"] == "dropping connection":
				suppressed += int(r["suppressed"].(float64))
			case r["msg"] == "delivered":
				delivered++
			}
		})
	}
	eventually(t, "every bad connection logged or counted", func() bool {
		count()
		return logged+suppressed == bad
	})
	// At most LogRate lines in each one-second window. The node logs a
	// dropped connection after hanging up on it, so its last lines may
	// come after the flood's last connection: the span ends only now that
	// every line is in. Windows last a second or more, one after another,
	// and each begins inside the span (at a line, or when the last
	// window's count is written): at most its whole seconds and one more.
	seconds := time.Since(began).Seconds()
	windows := int(seconds) + 1
	if max := cfg.LogRate * windows; logged > max {
		t.Errorf("%d warnings logged for %d bad connections in %.1f s, want at most %d", logged, bad, seconds, max)
	}
	t.Logf("%d bad connections in %.1f s: %d warnings logged, %d suppressed", bad, seconds, logged, suppressed)
	if got := counter(t, target, "gossipmesh_log_lines_suppressed_total"); int(got) != suppressed {
		t.Errorf("log_lines_suppressed_total %v, want %d", got, suppressed)
	}
	for k, id := range ids {
		if _, ok := target.Receipt(context.Background(), id, settle); !ok {
			t.Fatalf("message %d (%s) never arrived (the healthy peer queued %v of %d and dropped %v, the target dropped %v)", k, id,
				metricSum(t, healthy, "gossipmesh_messages_forwarded_total"), messages,
				metricSum(t, healthy, "gossipmesh_dropped_total"), metricSum(t, target, "gossipmesh_dropped_total"))
		}
	}
	eventually(t, "a receipt line per message", func() bool { count(); return delivered == messages })
}

// each calls f with every JSON record logged so far.
func (s *logSink) each(f func(map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(s.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			f(rec)
		}
	}
}
