package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// TestEndToEndSoakReportsAndCatchesAPlantedFailure runs a short soak on a
// real 3-node mesh with every kind of load, small counts, and an RSS budget
// no node can keep (1 MiB). The report must have its figures for every
// node, and the planted failure must be caught and named. It does not
// require the other invariants to hold: which do is what the soak is for.
func TestEndToEndSoakReportsAndCatchesAPlantedFailure(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Peers, cfg.Seed = bin, 3, 2, 5
	cfg.LogDir = t.TempDir() // the soak reads the logs after it stops the mesh
	cfg.StartTimeout = time.Minute
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	sc := cluster.DefaultSoakConfig()
	sc.Duration = 5 * time.Second
	sc.Seed = 5
	sc.Rate, sc.Tracked, sc.LargeRate, sc.LargeSize = 20, 2, 0.5, 64<<10
	sc.SlowConns, sc.Attempts, sc.Tricklers, sc.Subscribers = 3, 9, 3, 6
	sc.CrossSiteEvery = time.Second
	sc.RSSBudget = 1 << 20
	sc.Storm, sc.StormHonest = 200, 2
	sc.StormWithin = time.Minute // a loaded CI machine is slow, not broken
	res, err := cluster.Soak(context.Background(), c, sc)
	if err != nil {
		t.Fatal(err)
	}

	if res.OK() {
		t.Fatal("a 1 MiB RSS budget passed")
	}
	found := false
	for _, f := range res.Failures {
		if strings.Contains(f, "RSS, over the 1.0 MiB budget") {
			found = true
		}
	}
	if !found {
		t.Errorf("failures do not name the RSS budget: %q", res.Failures)
	}

	if len(res.PerNode) != 3 {
		t.Fatalf("%d node rows, want 3", len(res.PerNode))
	}
	published := 0
	for _, n := range res.PerNode {
		if n.PeakRSS <= 1<<20 || n.PeakFDs <= 0 || n.PeakGoroutines <= 0 || n.LogBytes <= 0 || len(n.PIDs) == 0 {
			t.Errorf("node %d lacks resource figures: %+v", n.Index, n)
		}
		if n.Delivered == 0 || n.Expected == 0 || n.MaxPerMessage < 1 {
			t.Errorf("node %d lacks delivery figures: %+v", n.Index, n)
		}
		if n.MetricDelivered == 0 {
			t.Errorf("node %d: delivery counter not read", n.Index)
		}
		published += n.Published
	}
	// The storm alone published 200 messages.
	if published < sc.Storm {
		t.Errorf("logs show %d published messages, want at least the storm's %d", published, sc.Storm)
	}
	if st := res.Storm; st == nil || st.Messages != sc.Storm || st.Honest.Messages != 2 || st.Honest.Pairs != 4 {
		t.Errorf("storm report %+v; want %d messages, then 2 honest ones checked at 2 nodes each", st, sc.Storm)
	}
	if res.Load.Small == 0 || res.Load.Tracked == 0 || res.Load.Large == 0 || res.Honest.Pairs == 0 {
		t.Errorf("honest load not published or not tracked: %+v %+v", res.Load, res.Honest)
	}
	h := res.Hostile
	if h.SlowConns.Tried != 3 || h.SilentConns.Tried != 6 || h.Tricklers.Tried != 3 || h.Subscribers.Tried != 6 {
		t.Errorf("hostile connections tried: %+v; want 3 slow, 6 silent, 3 tricklers, 6 subscribers", h)
	}
	for _, cc := range []cluster.ConnCount{h.SlowConns, h.SilentConns, h.Tricklers, h.Subscribers} {
		if cc.Refused+cc.Closed+cc.Open != cc.Tried {
			t.Errorf("connection counts do not add up: %+v", cc)
		}
	}
	if _, sent := res.CrossSiteChanged(); sent == 0 {
		t.Error("no cross-site request was sent")
	}
	// Everything stopped by itself: the soak stops the mesh it drove.
	for _, n := range c.Nodes() {
		if n.Running {
			t.Errorf("node %d still running after the soak", n.Index)
		}
	}
}
