package fault

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

func TestParseWindow(t *testing.T) {
	w, err := ParseWindow("1s-11s")
	if err != nil || w != (Window{time.Second, 11 * time.Second}) || w.String() != "1s-11s" {
		t.Fatalf("1s-11s: %v %v", w, err)
	}
	if !w.Contains(int64(time.Second)) || w.Contains(int64(11*time.Second)) || w.Contains(int64(time.Second)-1) {
		t.Error("a window holds its start and not its end")
	}
	for in, want := range map[string]string{
		"1s":      "want FROM-TO",
		"x-1s":    `start "x" is not a duration`,
		"1s-y":    `end "y" is not a duration`,
		"5s-1s":   "the end must come after the start",
		"1s-1s":   "the end must come after the start",
		"-1s-2s":  `start "" is not a duration`,
		"100ms-1": `end "1" is not a duration`,
	} {
		if _, err := ParseWindow(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// TestScheduleAt: the plan in force is the base plan outside every window
// and the merge of the base with each window's plan inside it, overlaps
// included, with the time of the next change.
func TestScheduleAt(t *testing.T) {
	base := &Plan{Rule: Rule{Drop: 0.1}}
	split := &Plan{Sides: map[wire.NodeID]int{1: 0, 2: 1}}
	pause := &Plan{Paused: map[wire.NodeID]bool{3: true}}
	s, err := NewSchedule(base,
		Timed{Window{time.Second, 3 * time.Second}, split},
		Timed{Window{2 * time.Second, 4 * time.Second}, pause})
	if err != nil {
		t.Fatal(err)
	}
	sec := int64(time.Second)
	for _, c := range []struct {
		at, until   int64
		drop        float64
		cut, paused bool
	}{
		{0, sec, 0.1, false, false},
		{sec, 2 * sec, 0.1, true, false},
		{2*sec + 5, 3 * sec, 0.1, true, true},
		{3 * sec, 4 * sec, 0.1, false, true},
		{4 * sec, 0, 0.1, false, false},
		{100 * sec, 0, 0.1, false, false},
	} {
		p, until := s.At(c.at)
		if until != c.until || p.Drop != c.drop || p.IsCut(1, 2) != c.cut || p.IsPaused(3) != c.paused {
			t.Errorf("at %v: until %v drop %v cut %v paused %v; want %v %v %v %v",
				time.Duration(c.at), time.Duration(until), p.Drop, p.IsCut(1, 2), p.IsPaused(3), time.Duration(c.until), c.drop, c.cut, c.paused)
		}
	}
	if base.IsCut(1, 2) || len(base.Paused) > 0 {
		t.Error("NewSchedule modified the base plan")
	}
	if _, err := NewSchedule(base, Timed{Window{2 * time.Second, time.Second}, split}); err == nil || !strings.Contains(err.Error(), "timed plan 0") {
		t.Errorf("a backwards window: %v", err)
	}
	if _, err := NewSchedule(base, Timed{Window{0, time.Second}, &Plan{Rule: Rule{Drop: 2}}}); err == nil || !strings.Contains(err.Error(), "drop 2") {
		t.Errorf("a bad timed plan: %v", err)
	}
	var none *Schedule
	if p, until := none.At(5); p != nil || until != 0 {
		t.Error("a nil schedule has a plan")
	}
}

func TestMerge(t *testing.T) {
	a := &Plan{Rule: Rule{Drop: 0.2}, Cut: map[wire.NodeID]bool{5: true}}
	b := &Plan{Cut: map[wire.NodeID]bool{6: true}, Links: map[Link]LinkRule{{1, 2}: {Cut: true}}}
	m := Merge(a, b)
	if m.Drop != 0.2 || !m.Cut[5] || !m.Cut[6] || !m.IsCut(1, 2) || m.IsCut(2, 1) {
		t.Errorf("merge: %+v", m)
	}
	if a.Cut[6] || len(a.Links) > 0 {
		t.Error("Merge modified its first plan")
	}
	if Merge(a, nil) != a || Merge(nil, b) != b {
		t.Error("merging with no fault should return the other plan")
	}
	if m := Merge(a, &Plan{Rule: Rule{Delay: time.Millisecond}}); m.Drop != 0 || m.Delay != time.Millisecond {
		t.Errorf("the second plan's rule wins where it is set: %+v", m.Rule)
	}
}

func TestParseSides(t *testing.T) {
	got, err := ParseSides("halves", 5)
	if err != nil || !reflect.DeepEqual(got, [][]int{{0, 1}, {2, 3, 4}}) {
		t.Errorf("halves of 5: %v %v", got, err)
	}
	got, err = ParseSides("0-1/3,4/2", 6)
	if err != nil || !reflect.DeepEqual(got, [][]int{{0, 1}, {3, 4}, {2}}) {
		t.Errorf("three sides: %v %v", got, err)
	}
	for in, want := range map[string]string{
		"0-4":      "two or more node sets joined by /",
		"0-4/4-9":  "node 4 is on side 0 and side 1",
		"0-4/5-10": "node 10 does not exist",
		"0-4//5-9": "side 1: empty node set",
		"all/3":    "node 3 is on side 0 and side 1",
	} {
		if _, err := ParseSides(in, 10); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}

// TestNodePlan: each node's part of a whole-mesh plan cuts it from the
// nodes across the split, both ways, keeps the rule, and passes the node
// runtime's own check.
func TestNodePlan(t *testing.T) {
	p := &Plan{
		Rule:  Rule{Drop: 0.1},
		Sides: map[wire.NodeID]int{1: 0, 2: 0, 3: 1, 4: 1},
		Cut:   map[wire.NodeID]bool{6: true},
		Links: map[Link]LinkRule{{5, 1}: {Cut: true}},
	}
	ids := []wire.NodeID{1, 2, 3, 4, 5, 6}
	for self, want := range map[wire.NodeID][]wire.NodeID{
		1: {3, 4, 5, 6},
		3: {1, 2, 6},
		5: {1, 6},
		6: {1, 2, 3, 4, 5},
	} {
		q := p.NodePlan(self, ids)
		if got := q.CutIDs(); !reflect.DeepEqual(got, want) || q.Drop != 0.1 {
			t.Errorf("node %d: cut %v drop %v, want %v and 0.1", self, got, q.Drop, want)
		}
		if err := q.ValidateFor(self); err != nil {
			t.Errorf("node %d: %v", self, err)
		}
	}
	var none *Plan
	if q := none.NodePlan(1, ids); !q.IsZero() {
		t.Error("no plan, no faults")
	}
}
