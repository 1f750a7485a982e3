package sim

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMembershipScratch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 500
	cfg.Degree = 6
	cfg.Broadcasts = 20
	cfg.Gap = 0
	cfg.Interval = time.Second
	cfg.Crash = Crash{Fraction: 0.2, At: 5 * time.Second}
	cfg.Membership = DefaultMembershipConfig()
	cfg.Membership.Until = 30 * time.Second
	cfg.Membership.SilentCrash = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.MembershipStats()
	t.Logf("%+v", st)
	hist := map[int]int{}
	for _, d := range s.Degrees() {
		hist[d]++
	}
	t.Logf("degrees %v", hist)
	t.Logf("reliability live %v broadcasts %d", r.ReliabilityLive, r.Broadcasts)
}

func TestChurnScratch(t *testing.T) {
	e, err := RunExperiment(context.Background(), ExperimentChurn, ExperimentConfig{Nodes: 500, ChurnDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.WriteMarkdown(&b)
	t.Log(b.String())
}

func TestChurnScratch10k(t *testing.T) {
	e, err := RunExperiment(context.Background(), ExperimentChurn, ExperimentConfig{Nodes: 10000, ChurnDuration: 3 * time.Second, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.WriteMarkdown(&b)
	t.Log(b.String())
}
