package fault

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gossipmesh/wire"
)

// Window is a span [From, To) of a driver's clock (virtual time in the
// simulator): a fault in force during a window starts at From and is gone
// at To. The zero Window is empty.
type Window struct {
	From, To time.Duration
}

// Contains reports whether now (nanoseconds on the driver's clock) is in
// w.
func (w Window) Contains(now int64) bool { return now >= int64(w.From) && now < int64(w.To) }

// Validate reports a window that is empty, runs backwards or starts before
// the clock does.
func (w Window) Validate() error {
	if w.From < 0 {
		return fmt.Errorf("window %v: the start must not be negative", w)
	}
	if w.To <= w.From {
		return fmt.Errorf("window %v: the end must come after the start", w)
	}
	return nil
}

// String renders w as ParseWindow reads it: "1s-11s".
func (w Window) String() string { return w.From.String() + "-" + w.To.String() }

// ParseWindow reads FROM-TO, two Go durations such as "1s-11s" (from 1 s
// to 11 s of the driver's clock, the end excluded).
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want FROM-TO, two durations such as 1s-11s", s)
	}
	from, err := time.ParseDuration(strings.TrimSpace(a))
	if err != nil {
		return Window{}, fmt.Errorf("window %q: start %q is not a duration such as 1s", s, a)
	}
	to, err := time.ParseDuration(strings.TrimSpace(b))
	if err != nil {
		return Window{}, fmt.Errorf("window %q: end %q is not a duration such as 11s", s, b)
	}
	w := Window{From: from, To: to}
	if err := w.Validate(); err != nil {
		return Window{}, err
	}
	return w, nil
}

// Timed is a plan in force during a window only.
type Timed struct {
	Window
	Plan *Plan
}

// Schedule is a plan that changes over time: a base plan always, and
// each timed plan during its window, merged (Merge) where windows
// overlap. It is built once and read only, like a Plan: At is pure, so
// every driver that reads it at the same times sees the same plans.
type Schedule struct {
	// starts[k] is when segment k begins (starts[0] is 0); plans[k] is
	// the plan in force from then until starts[k+1].
	starts []int64
	plans  []*Plan
}

// NewSchedule builds the schedule of base and the timed plans. The plan
// in force at any time is base merged with every timed plan whose window
// contains it, in the order given.
func NewSchedule(base *Plan, timed ...Timed) (*Schedule, error) {
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("base plan: %w", err)
	}
	edges := []int64{0}
	for i, t := range timed {
		if err := t.Window.Validate(); err != nil {
			return nil, fmt.Errorf("timed plan %d: %w", i, err)
		}
		if err := t.Plan.Validate(); err != nil {
			return nil, fmt.Errorf("timed plan %d (%v): %w", i, t.Window, err)
		}
		edges = append(edges, int64(t.From), int64(t.To))
	}
	slices.Sort(edges)
	edges = slices.Compact(edges)
	s := &Schedule{}
	for _, at := range edges {
		p := base
		for _, t := range timed {
			if t.Contains(at) {
				p = Merge(p, t.Plan)
			}
		}
		s.starts = append(s.starts, at)
		s.plans = append(s.plans, p)
	}
	return s, nil
}

// At returns the plan in force at now, and the time at which the next
// change comes (0 when none does): a driver whose clock only moves
// forward asks again only once it reaches that time.
func (s *Schedule) At(now int64) (p *Plan, until int64) {
	if s == nil || len(s.plans) == 0 {
		return nil, 0
	}
	k, found := slices.BinarySearch(s.starts, now)
	if !found {
		k--
	}
	k = max(k, 0)
	if k+1 < len(s.starts) {
		until = s.starts[k+1]
	}
	return s.plans[k], until
}

// Merge returns a plan with the faults of both: b's Rule where it is set
// (else a's), the union of the cut lists, links (b's entry wins on the
// same link) and paused nodes, and b's Sides where b has any (two
// partitions at once are written as one with more sides). Neither a nor
// b is modified; a nil plan is no fault.
func Merge(a, b *Plan) *Plan {
	switch {
	case b.IsZero():
		return a
	case a.IsZero():
		return b
	}
	q := a.Clone()
	if !b.Rule.IsZero() {
		q.Rule = b.Rule
	}
	for id, v := range b.Cut {
		if v {
			if q.Cut == nil {
				q.Cut = map[wire.NodeID]bool{}
			}
			q.Cut[id] = true
		}
	}
	for l, r := range b.Links {
		if q.Links == nil {
			q.Links = map[Link]LinkRule{}
		}
		q.Links[l] = r
	}
	if len(b.Sides) > 0 {
		q.Sides = b.Sides
	}
	for id, v := range b.Paused {
		if v {
			if q.Paused == nil {
				q.Paused = map[wire.NodeID]bool{}
			}
			q.Paused[id] = true
		}
	}
	return q
}
