package sim

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// membershipRun runs n nodes that boot on an undirected overlay of mean
// degree 6 with membership on, crash a fifth of them at 5 s, and go on
// broadcasting once a second until 25 s.
func membershipRun(t *testing.T, n int, silent bool) *Sim {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Nodes = n
	cfg.Degree = 6
	cfg.Broadcasts = 20
	cfg.Gap = 0
	cfg.Interval = time.Second
	cfg.Crash = Crash{Fraction: 0.2, At: 5 * time.Second}
	cfg.Membership = DefaultMembershipConfig()
	cfg.Membership.SilentCrash = silent
	cfg.Membership.Until = 25 * time.Second
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The broadcasts after the repair reach every live node.
	for _, b := range r.PerBroadcast {
		if b.PublishedAtMS >= 15_000 && b.ReachedLive != b.Live {
			t.Errorf("broadcast %d at %v ms reached %d of %d live nodes", b.Index, b.PublishedAtMS, b.ReachedLive, b.Live)
		}
	}
	return s
}

// checkRepaired checks that no live node keeps a link to a crashed one and
// that every live node is back within the degree bounds.
func checkRepaired(t *testing.T, s *Sim) {
	t.Helper()
	lo, hi := s.cfg.Membership.Config.ActiveLow, s.cfg.Membership.Config.ActiveHigh
	deg := s.Degrees()
	live := 0
	for i, d := range deg {
		if d < 0 {
			continue
		}
		live++
		if d < lo || d > hi {
			t.Errorf("node %d: degree %d outside %d..%d", i, d, lo, hi)
		}
		for j, dj := range deg {
			if dj < 0 && s.Linked(i, j) {
				t.Errorf("node %d still linked to crashed node %d", i, j)
			}
		}
		if got := len(s.cores[i].Peers()); got != d {
			t.Errorf("node %d: the core has %d peers, the membership's links are %d", i, got, d)
		}
		if a := len(s.NodeMembership(i).Active()); a != d {
			t.Errorf("node %d: the active view has %d peers, the links are %d", i, a, d)
		}
	}
	if live != s.n-s.n/5 {
		t.Errorf("%d live nodes, want %d", live, s.n-s.n/5)
	}
}

func TestMembershipReplacesCrashedLinks(t *testing.T) {
	t.Parallel()
	s := membershipRun(t, 400, false)
	checkRepaired(t, s)
	st, _ := s.MembershipStats()
	if st.LinksClosedByCrashes == 0 || st.Links == 0 {
		t.Errorf("stats %+v: want links closed by the crash and links dialed", st)
	}
}

// With silent crashes only the failure detectors notice: the crashed
// nodes' peers suspect and evict them, then replace them.
func TestMembershipEvictsSilentCrashes(t *testing.T) {
	t.Parallel()
	s := membershipRun(t, 400, true)
	checkRepaired(t, s)
	st, _ := s.MembershipStats()
	if st.Evictions == 0 || st.Suspects < st.Evictions || st.LinksClosedByCrashes != 0 {
		t.Errorf("stats %+v: want suspects, then evictions, and no link closed by the crash", st)
	}
}

// Membership off is the fixed overlay: no membership state, no figures.
func TestMembershipOffHasNoState(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Nodes = 200
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Degrees() != nil || s.NodeMembership(0) != nil {
		t.Error("membership state with membership off")
	}
	if _, ok := s.MembershipStats(); ok {
		t.Error("membership stats with membership off")
	}
}

func churnSmall(t *testing.T, nodes int, d time.Duration, workers int) *Experiment {
	t.Helper()
	e, err := RunExperiment(context.Background(), ExperimentChurn, ExperimentConfig{Nodes: nodes, ChurnDuration: d, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Churn at small N: 1% of 500 nodes replaced every second for 10 s.
func TestChurnExperimentSmall(t *testing.T) {
	t.Parallel()
	e := churnSmall(t, 500, 10*time.Second, 2)
	if e.Partial || e.Churn == nil || len(e.Churn.Runs) != len(ChurnStrategies) {
		t.Fatalf("experiment %+v", e)
	}
	for _, r := range e.Churn.Runs {
		m := r.Membership
		if m.Crashed != 50 || m.Joined != 50 {
			t.Errorf("%s: %d crashed and %d joined, want 50 and 50", r.Strategy, m.Crashed, m.Joined)
		}
		if r.Broadcasts != 100 || r.Reliability < 0.999 {
			t.Errorf("%s: %d of %d broadcasts reached every node in the overlay throughout (%d deliveries missed), want 99.9%%",
				r.Strategy, r.Reliable, r.Broadcasts, r.Missed)
		}
		if r.InBoundsSettled < 0.95 {
			t.Errorf("%s: degrees within bounds in %.2f%% of samples, want 95%%", r.Strategy, 100*r.InBoundsSettled)
		}
		if n := len(r.Degrees); n != 12 {
			t.Errorf("%s: %d degree samples, want 12 (0 s, each of 10 steps, the end)", r.Strategy, n)
		}
		// Every sample after the boot settled: the lowest degree
		// before the churn is within the bounds (a joiner of the last
		// step may still be at 1 or 2). A node may be one link above
		// its high bound at the instant of a sample: a full node keeps
		// a newcomer's link until the newcomer says whether it needs it
		// (membership's surplus rule), so at most 1% of the nodes.
		for _, d := range r.Degrees[1:] {
			if d.Below > d.BootingOutside || d.Above > 500/100 {
				t.Errorf("%s at %v: %d below and %d above the bounds, %d of them joiners", r.Strategy, time.Duration(d.At), d.Below, d.Above, d.BootingOutside)
			}
		}
	}
}

// Same seed, same result, whatever the number of workers.
func TestChurnExperimentDeterministic(t *testing.T) {
	t.Parallel()
	var outs [2]bytes.Buffer
	for k, w := range []int{1, 2} {
		if err := churnSmall(t, 300, 4*time.Second, w).WriteJSON(&outs[k]); err != nil {
			t.Fatal(err)
		}
	}
	if outs[0].Len() == 0 || !bytes.Equal(outs[0].Bytes(), outs[1].Bytes()) {
		t.Errorf("two runs of one seed differ:\n%s\n%s", outs[0].String(), outs[1].String())
	}
}
