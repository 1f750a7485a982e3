package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// TestEclipseSybilsDialTheirTarget: `--adversaries 3:eclipse=@0` over
// real processes: node 0 stays honest, three other nodes run eclipse with
// node 0's id, and each holds a link to it whether or not the topology
// chose one (the launcher gives each the target's address).
func TestEclipseSybilsDialTheirTarget(t *testing.T) {
	bin := buildMesh(t)
	t.Parallel()
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Peers, cfg.Seed = bin, 8, 2, 4
	cfg.LogDir = t.TempDir()
	cfg.StartTimeout = time.Minute
	cfg.Adversaries = []cluster.AdversarySpec{{Count: 3, Mode: "eclipse=@0"}}
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	target := c.Nodes()[0].ID
	var sybils []string
	for i, m := range c.Adversaries() {
		switch {
		case i == 0 && m != "":
			t.Fatalf("the target runs %q", m)
		case m == "":
		case m != "eclipse="+target:
			t.Fatalf("node %d runs %q, want eclipse=%s", i, m, target)
		default:
			sybils = append(sybils, c.Nodes()[i].ID)
		}
	}
	if len(sybils) != 3 {
		t.Fatalf("%d sybils, want 3", len(sybils))
	}
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		ps, err := c.Client(0).Peers(ctx)
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		all := err == nil
		for _, s := range sybils {
			all = all && slices.Contains(ids, s)
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's peers are %v (%v), want every sybil of %v among them", ids, err, sybils)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, m := range c.Adversaries() {
		if m == "" {
			continue
		}
		a, err := c.Client(i).Adversary(ctx)
		if err != nil || a.Mode != m {
			t.Errorf("node %d reports %+v, %v; launched with %q", i, a, err, m)
		}
	}
}
