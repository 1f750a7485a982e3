package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"gossipmesh/membership"
)

// TestMembershipHighBoundFitsTheTopology: with Config.Membership every node
// gets --membership, and a node whose topology degree is above the
// default high bound gets --active-high raised to it, so that the
// membership never drops a link WaitReady waits for; other nodes keep the
// default.
func TestMembershipHighBoundFitsTheTopology(t *testing.T) {
	def := membership.DefaultConfig().ActiveHigh
	cfg := DefaultConfig()
	cfg.Membership = true
	const nodes = 300
	c := &Cluster{cfg: cfg, topo: NewTopology(nodes, 3, 1)}
	for i := range nodes {
		c.procs = append(c.procs, &proc{index: i, gossipAddr: fmt.Sprintf("127.0.0.1:%d", 10000+i)})
	}
	raised := 0
	for i := range nodes {
		args := c.nodeArgs(i)
		if !slices.Contains(args, "--membership") {
			t.Fatalf("node %d: no --membership in %v", i, args)
		}
		high := def
		if k := slices.Index(args, "--active-high"); k >= 0 {
			v, err := strconv.Atoi(args[k+1])
			if err != nil {
				t.Fatal(err)
			}
			high = v
			raised++
		}
		deg := len(c.topo.Chosen[i])
		for _, cs := range c.topo.Chosen {
			if slices.Contains(cs, i) {
				deg++
			}
		}
		if deg > high {
			t.Errorf("node %d: topology degree %d above its --active-high %d", i, deg, high)
		}
		if high > def && high != deg {
			t.Errorf("node %d: --active-high %d, want its degree %d", i, high, deg)
		}
	}
	if raised == 0 {
		t.Error("no node got a raised bound: with this seed some have a topology degree above the default")
	}
}
