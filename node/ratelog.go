package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLimitHandler passes at most limit records per window for each
// distinct (level, message) to the handler it wraps, and counts the rest.
// When a window in which records were suppressed ends, it writes one line
// per such message saying how many were suppressed. A misbehaving peer
// usually produces the same warning again and again (64 squatted handshake
// slots once wrote warnings at 1.3 MB/s); the first lines say what is
// happening, the count says how much, and the log stays bounded.
//
// Records for which exempt reports true always pass: the node's receipt
// lines, one per first receipt, are its point.
type rateLimitHandler struct {
	next  slog.Handler
	state *rateState // shared by the handlers WithAttrs and WithGroup derive
}

// rateKey is what counts as "the same line".
type rateKey struct {
	level slog.Level
	msg   string
}

type rateState struct {
	limit  int
	window time.Duration
	exempt func(slog.Record) bool
	// onSuppress, if set, is called once per record left out (a metric),
	// with mu held: it must be quick and must not log.
	onSuppress func()

	mu      sync.Mutex
	start   time.Time                // when the current window began
	counts  map[rateKey]int          // records seen in the current window
	pending map[rateKey]slog.Handler // suppressed keys, with a handler to report through
	timer   *time.Timer              // reports the window's suppressed counts when it ends
}

// newRateLimitHandler wraps next; limit is records per key per window.
// onSuppress may be nil.
func newRateLimitHandler(next slog.Handler, limit int, window time.Duration, exempt func(slog.Record) bool, onSuppress func()) *rateLimitHandler {
	return &rateLimitHandler{next: next, state: &rateState{
		limit:      limit,
		window:     window,
		exempt:     exempt,
		onSuppress: onSuppress,
		counts:     make(map[rateKey]int),
		pending:    make(map[rateKey]slog.Handler),
	}}
}

// Enabled defers to the wrapped handler: limiting is per record, not per
// level.
func (h *rateLimitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle passes r on unless its key has used up the window's allowance.
func (h *rateLimitHandler) Handle(ctx context.Context, r slog.Record) error {
	s := h.state
	if s.exempt != nil && s.exempt(r) {
		return h.next.Handle(ctx, r)
	}
	key := rateKey{r.Level, r.Message}
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	s.mu.Lock()
	var late map[rateKey]int
	// Windows only move forward. A record stamped before the window began
	// was stamped before the record that rolled the window and reached the
	// lock after it (concurrent loggers): it counts in the current window.
	// Rolling back for it would start a window afresh, with a fresh
	// allowance, each time loggers race.
	if now.Sub(s.start) >= s.window {
		late = s.rollLocked(now)
	}
	s.counts[key]++
	pass := s.counts[key] <= s.limit
	if !pass {
		s.pending[key] = h.next
		if s.timer == nil {
			// Report once the window is over, even if nothing else is
			// logged: otherwise the last burst's count would never show.
			s.timer = time.AfterFunc(s.start.Add(s.window).Sub(now), s.flush)
		}
		// Counted before the lock is released: a summary line that
		// reports this record (written by whoever rolls the window next)
		// never runs ahead of the metric.
		if s.onSuppress != nil {
			s.onSuppress()
		}
	}
	handlers := s.takeHandlersLocked(late)
	s.mu.Unlock()
	h.report(late, handlers)
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// rollLocked starts a new window at now and returns the suppressed counts
// of the one that ended, still to be reported.
func (s *rateState) rollLocked(now time.Time) map[rateKey]int {
	var late map[rateKey]int
	for k := range s.pending {
		if late == nil {
			late = make(map[rateKey]int, len(s.pending))
		}
		late[k] = s.counts[k] - s.limit
	}
	clear(s.counts)
	s.start = now
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return late
}

// takeHandlersLocked moves the handlers of the keys in late out of pending.
func (s *rateState) takeHandlersLocked(late map[rateKey]int) map[rateKey]slog.Handler {
	if len(late) == 0 {
		return nil
	}
	hs := make(map[rateKey]slog.Handler, len(late))
	for k := range late {
		hs[k] = s.pending[k]
		delete(s.pending, k)
	}
	return hs
}

// flush ends the current window from the timer, reporting what it
// suppressed.
func (s *rateState) flush() {
	s.mu.Lock()
	if time.Since(s.start) < s.window {
		// A stale timer: a record already rolled the window it was for.
		s.mu.Unlock()
		return
	}
	late := s.rollLocked(time.Now())
	hs := s.takeHandlersLocked(late)
	s.mu.Unlock()
	(&rateLimitHandler{state: s}).report(late, hs)
}

// report writes one line per key that had records suppressed. It runs
// without the lock: the wrapped handler may be slow.
func (h *rateLimitHandler) report(late map[rateKey]int, hs map[rateKey]slog.Handler) {
	for k, n := range late {
		r := slog.NewRecord(time.Now(), k.level, "suppressed similar log lines", 0)
		r.AddAttrs(slog.String("message", k.msg), slog.Int("suppressed", n), slog.Duration("window", h.state.window))
		_ = hs[k].Handle(context.Background(), r) // nowhere to report a failing log destination
	}
}

// WithAttrs wraps next's WithAttrs, sharing the counts.
func (h *rateLimitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &rateLimitHandler{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup wraps next's WithGroup, sharing the counts.
func (h *rateLimitHandler) WithGroup(name string) slog.Handler {
	return &rateLimitHandler{next: h.next.WithGroup(name), state: h.state}
}

// isReceiptLine reports whether r is one of the node's receipt lines,
// which are never rate-limited.
func isReceiptLine(r slog.Record) bool {
	return r.Level == slog.LevelInfo && (r.Message == "delivered" || r.Message == "published")
}
