package cluster_test

import (
	"slices"
	"strings"
	"testing"

	"gossipmesh/cluster"
)

// Every scenario the table lists has defaults that validate; a bad name
// or value is refused with the field named.
func TestScenarioConfigValidate(t *testing.T) {
	t.Parallel()
	names := cluster.ScenarioNames()
	if !slices.Equal(names, []string{"kill", "loss", "split", "pause", "restart", "crash", "hung", "byzantine", "spam"}) {
		t.Errorf("scenarios %v", names)
	}
	for _, n := range names {
		if err := cluster.DefaultScenarioConfig(n).Validate(); err != nil {
			t.Errorf("%s defaults: %v", n, err)
		}
	}
	for _, tc := range []struct {
		cfg  cluster.ScenarioConfig
		want string
	}{
		{cluster.ScenarioConfig{Name: "nope"}, `scenario "nope": want one of kill, loss`},
		{cluster.ScenarioConfig{Name: "kill", Rate: -1}, "rate -1"},
		{cluster.ScenarioConfig{Name: "kill", Rate: 5000}, "rate 5000"},
		{cluster.ScenarioConfig{Name: "pause", Fraction: 1}, "fraction 1"},
		{cluster.ScenarioConfig{Name: "loss", Loss: 1}, "loss 1"},
		{cluster.ScenarioConfig{Name: "loss", Messages: -3}, "messages -3"},
		{cluster.ScenarioConfig{Name: "split", Duration: -1}, "duration -1ns"},
		{cluster.ScenarioConfig{Name: "split", Limit: -1}, "limit -1ns"},
		{cluster.ScenarioConfig{Name: "kill", Mode: "blackhole"}, "only byzantine and spam take a mode"},
		{cluster.ScenarioConfig{Name: "spam", Mode: "nonsense"}, "scenario spam: mode"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

// A figure's median is over the runs that reached it; the runs that did
// not are counted apart; an even count takes the mean of the middle two.
func TestMedianFigures(t *testing.T) {
	t.Parallel()
	run := func(figs ...cluster.ScenarioFigure) cluster.ScenarioResult {
		return cluster.ScenarioResult{Figures: figs}
	}
	a := func(ms float64) cluster.ScenarioFigure {
		return cluster.ScenarioFigure{What: "a", Millis: ms, Target: "≤ 5 s"}
	}
	b := func(ms float64, missing bool) cluster.ScenarioFigure {
		return cluster.ScenarioFigure{What: "b", Millis: ms, Missing: missing}
	}
	got := cluster.MedianFigures([]cluster.ScenarioResult{
		run(a(30), b(4, false)),
		run(a(10), b(0, true)),
		run(a(20), b(8, false)),
	})
	if len(got) != 2 || got[0].What != "a" || got[1].What != "b" {
		t.Fatalf("figures %+v, want a then b", got)
	}
	if got[0].Median != 20 || !slices.Equal(got[0].Runs, []float64{30, 10, 20}) || got[0].Missing != 0 || got[0].Target != "≤ 5 s" {
		t.Errorf("a: %+v, want median 20 of runs 30, 10, 20", got[0])
	}
	if got[1].Median != 6 || !slices.Equal(got[1].Runs, []float64{4, 8}) || got[1].Missing != 1 {
		t.Errorf("b: %+v, want median 6 of runs 4, 8 and one missing", got[1])
	}
}

// A result holds only when it checked something and every check held.
func TestScenarioResultOK(t *testing.T) {
	t.Parallel()
	if (cluster.ScenarioResult{}).OK() {
		t.Error("a result that checked nothing is OK")
	}
	r := cluster.ScenarioResult{Checks: []cluster.ScenarioCheck{{What: "x", Held: true}, {What: "y", Held: false}}}
	if r.OK() {
		t.Error("a result with a check that did not hold is OK")
	}
	r.Checks[1].Held = true
	if !r.OK() {
		t.Error("a result whose checks all held is not OK")
	}
}
