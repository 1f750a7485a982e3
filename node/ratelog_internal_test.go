package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the rate limiter's timer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestRateLimitHandlerCountsPerMessage checks the limit per (level,
// message), shared by derived handlers; that receipt lines pass; and that
// the next window begins with one line giving the count left out, written
// with the attributes of the handler that left out the last of them.
func TestRateLimitHandlerCountsPerMessage(t *testing.T) {
	buf := &syncBuffer{}
	suppressed := 0
	h := newRateLimitHandler(slog.NewJSONHandler(buf, nil), 2, time.Hour, isReceiptLine, func() { suppressed++ })
	base := slog.New(h)
	tagged := base.With("node", "n1")
	t0 := time.Now()
	at := func(l *slog.Logger, when time.Time, level slog.Level, msg string) {
		r := slog.NewRecord(when, level, msg, 0)
		if err := l.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for k := range 6 { // the last, suppressed, through tagged
		at([]*slog.Logger{base, tagged}[k%2], t0, slog.LevelWarn, "dropping connection")
	}
	at(base, t0, slog.LevelWarn, "refusing link")
	at(base, t0, slog.LevelInfo, "dropping connection") // another level: another key
	for range 20 {
		at(tagged, t0, slog.LevelInfo, "delivered")
	}
	count := func(msg string) int {
		n := 0
		for _, r := range buf.records(t) {
			if r["msg"] == msg {
				n++
			}
		}
		return n
	}
	if got := count("dropping connection"); got != 3 {
		t.Errorf("%d \"dropping connection\" lines, want 2 warnings and 1 info", got)
	}
	if got := count("refusing link"); got != 1 {
		t.Errorf("%d \"refusing link\" lines, want 1", got)
	}
	if got := count("delivered"); got != 20 {
		t.Errorf("%d receipt lines, want all 20", got)
	}
	if suppressed != 4 || count("suppressed similar log lines") != 0 {
		t.Errorf("suppressed %d (want 4), with %d summary lines before the window ends (want 0)", suppressed, count("suppressed similar log lines"))
	}

	at(base, t0.Add(time.Hour), slog.LevelWarn, "dropping connection")
	var summary map[string]any
	for _, r := range buf.records(t) {
		if r["msg"] == "suppressed similar log lines" {
			summary = r
		}
	}
	if summary == nil || summary["message"] != "dropping connection" || summary["suppressed"] != 4.0 || summary["level"] != "WARN" {
		t.Fatalf("summary after the window: %v, want 4 \"dropping connection\" warnings suppressed", summary)
	}
	if summary["node"] != "n1" {
		t.Errorf("summary %v lacks the attributes of the handler that suppressed the last line", summary)
	}
	if got := count("dropping connection"); got != 4 {
		t.Errorf("%d \"dropping connection\" lines after the window rolled, want 4", got)
	}
}

// TestRateLimitHandlerReportsWhenTheWindowEnds checks that the count of a
// burst is written once its window is over, with nothing logged after it.
func TestRateLimitHandlerReportsWhenTheWindowEnds(t *testing.T) {
	buf := &syncBuffer{}
	l := slog.New(newRateLimitHandler(slog.NewJSONHandler(buf, nil), 1, 20*time.Millisecond, nil, nil))
	for range 3 {
		l.Warn("stalled")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, r := range buf.records(t) {
			if r["msg"] == "suppressed similar log lines" {
				if r["suppressed"] != 2.0 || r["message"] != "stalled" {
					t.Fatalf("summary %v, want 2 \"stalled\" lines suppressed", r)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no summary a minute after the window ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
