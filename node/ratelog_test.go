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
	logs := &logSink{}
	nw := memnet.New()
	cfg := node.DefaultConfig()
	cfg.Key = node.KeyForTest(1)
	cfg.Gossip.Auth = modelAuth() // as startMesh's nodes sign
	cfg.Transport = nw.Host("target")
	cfg.Listen = "target:7000"
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
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
	}).nodes[0]
	eventually(t, "the healthy link", func() bool { return len(target.Peers()) == 1 })

	began := time.Now()
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
	seconds := time.Since(began).Seconds()

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
	// At most LogRate lines in each one-second window: the windows the
	// flood spanned, and one more for a window cut short.
	windows := int(seconds) + 2
	if max := cfg.LogRate * windows; logged > max {
		t.Errorf("%d warnings logged for %d bad connections in %.1f s, want at most %d", logged, bad, seconds, max)
	}
	t.Logf("%d bad connections in %.1f s: %d warnings logged, %d suppressed", bad, seconds, logged, suppressed)
	if got := counter(t, target, "gossipmesh_log_lines_suppressed_total"); int(got) != suppressed {
		t.Errorf("log_lines_suppressed_total %v, want %d", got, suppressed)
	}
	for _, id := range ids {
		if _, ok := target.Receipt(context.Background(), id, settle); !ok {
			t.Fatalf("message %s never arrived", id)
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
