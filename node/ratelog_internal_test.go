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

// TestRateLimitHandlerLateRecordKeepsTheWindow: records from concurrent
// loggers reach the limiter out of order, one stamped a moment before the
// record that rolled the window arriving just after it. It must count in
// the current window: rolling back for it used to start a window afresh,
// so racing loggers got a fresh allowance each time and the log carried
// more than the limit per window.
func TestRateLimitHandlerLateRecordKeepsTheWindow(t *testing.T) {
	buf := &syncBuffer{}
	const limit = 2
	h := newRateLimitHandler(slog.NewJSONHandler(buf, nil), limit, time.Hour, nil, nil)
	t0 := time.Now()
	at := func(when time.Time) {
		if err := h.Handle(context.Background(), slog.NewRecord(when, slog.LevelWarn, "dropping connection", 0)); err != nil {
			t.Fatal(err)
		}
	}
	at(t0)
	rolled := t0.Add(time.Hour) // starts the second window
	at(rolled)
	for k := range 10 {
		// Stamped before the roll, handled after it.
		at(rolled.Add(-time.Duration(k+1) * time.Millisecond))
	}
	logged := 0
	for _, r := range buf.records(t) {
		if r["msg"] == "dropping connection" {
			logged++
		}
	}
	if want := 1 + limit; logged != want {
		t.Errorf("%d lines logged: 1 in the first window and %d in the second, want %d in all", logged, logged-1, want)
	}
}

// TestRateLimitHandlerCountsBeforeItReports: the metric of suppressed
// lines counts a record before any summary line reports it, so a reader
// who sees the summary sees the metric include it. The record's count
// used to be taken after the lock was released, where a summary written
// by the next window's first record could overtake it.
func TestRateLimitHandlerCountsBeforeItReports(t *testing.T) {
	buf := &syncBuffer{}
	var mu sync.Mutex
	counted := 0
	var reported []int // counted, as of each summary line
	summaries := make(chan struct{}, 1)
	entered := make(chan struct{})
	onSuppress := func() {
		mu.Lock()
		first := counted == 0
		mu.Unlock()
		if first {
			close(entered)
			// Hold the count back, to give a summary the chance to get
			// ahead of it. The bound only ends the wait when nothing
			// can get ahead (the limiter holds its lock meanwhile).
			select {
			case <-summaries:
			case <-time.After(time.Second):
			}
		}
		mu.Lock()
		counted++
		mu.Unlock()
	}
	next := &summaryWatcher{next: slog.NewJSONHandler(buf, nil), onSummary: func() {
		mu.Lock()
		reported = append(reported, counted)
		mu.Unlock()
		select {
		case summaries <- struct{}{}:
		default:
		}
	}}
	h := newRateLimitHandler(next, 1, time.Hour, nil, onSuppress)
	t0 := time.Now()
	at := func(when time.Time) {
		if err := h.Handle(context.Background(), slog.NewRecord(when, slog.LevelWarn, "stalled", 0)); err != nil {
			t.Error(err)
		}
	}
	at(t0)
	done := make(chan struct{})
	go func() { defer close(done); at(t0) }() // suppressed: its count is held back
	select {
	case <-entered:
	case <-done:
		t.Fatal("the second record of a window with room for one was not suppressed")
	}
	at(t0.Add(time.Hour)) // rolls the window and reports the one suppressed
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0] != 1 {
		t.Errorf("the metric stood at %v when the summary of 1 suppressed line was written, want [1]", reported)
	}
}

// summaryWatcher passes records on to next and calls onSummary after
// writing each summary line.
type summaryWatcher struct {
	next      slog.Handler
	onSummary func()
}

func (w *summaryWatcher) Enabled(ctx context.Context, l slog.Level) bool {
	return w.next.Enabled(ctx, l)
}

func (w *summaryWatcher) Handle(ctx context.Context, r slog.Record) error {
	err := w.next.Handle(ctx, r)
	if r.Message == "suppressed similar log lines" {
		w.onSummary()
	}
	return err
}

func (w *summaryWatcher) WithAttrs(a []slog.Attr) slog.Handler {
	return &summaryWatcher{next: w.next.WithAttrs(a), onSummary: w.onSummary}
}

func (w *summaryWatcher) WithGroup(g string) slog.Handler {
	return &summaryWatcher{next: w.next.WithGroup(g), onSummary: w.onSummary}
}
