package sim

import (
	"fmt"
	"testing"

	"gossipmesh/gossip"
)

// TestLazyPartitionReachesEverySideOverSeeds: lazy push repairs every
// broadcast of the split inside its side by the heal, on seeds whose
// topology leaves some node a single link on its own side. Its eager
// links, all across the split, push nothing (a partition cuts links
// without a PeerDown), so without Gossip.LazyEagerSilence the node heard
// of each message only if that one neighbour's random announcements or
// its own random pulls happened to pick the other: seeds 1, 7 and 12 each
// left a node without a broadcast at the heal (2 and 5 did with the
// announcement count of LazyDLazy alone).
func TestLazyPartitionReachesEverySideOverSeeds(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 5, 7, 12} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			cfg := partitionConfig(gossip.Lazy)
			cfg.Seed = seed
			runPartition(t, cfg)
		})
	}
}
