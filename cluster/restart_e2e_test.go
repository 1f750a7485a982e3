package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// TestEndToEndRestartsLoseNoPublish restarts one node three times with the
// same identity and has it publish the same body after every boot: each
// publish answered 201 must reach every node. Before boots were numbered
// from their start time, the second boot's message had the id of the
// first, and every other node dropped it as a duplicate.
func TestEndToEndRestartsLoseNoPublish(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	c := startCluster(t, bin, 6, 11)
	ctx := context.Background()
	const node, restarts = 2, 3
	// Every node's key is in a file only the owner can read, in a
	// directory only the owner can enter.
	for i := range 6 {
		st, err := os.Stat(c.KeyPath(i))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("node %d's key file: %v, %v; want mode 0600", i, st, err)
		}
	}
	if st, err := os.Stat(filepath.Dir(c.KeyPath(0))); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the key directory: %v, %v; want mode 0700", st, err)
	}
	lost := 0
	ids := map[string]int{} // id → boot that published it
	for boot := 0; boot <= restarts; boot++ {
		if boot > 0 {
			if err := c.Kill(node); err != nil {
				t.Fatal(err)
			}
			if err := c.Restart(ctx, node); err != nil {
				t.Fatal(err)
			}
		}
		// The restarted process proves the same id: the launcher passes
		// the same key file every time.
		if h, err := c.Client(node).Health(ctx); err != nil || h.ID != c.Topology().IDs[node].String() {
			t.Fatalf("boot %d: node %d answers as %+v, %v; want id %v", boot, node, h, err, c.Topology().IDs[node])
		}
		// The same body from the same node id in every boot, and one from
		// a node that never restarted, so a partial mesh is told apart.
		for _, pub := range []int{node, 0} {
			r, err := c.Mesh().Propagate(ctx, pub, "the same body every boot", cluster.PropagateOptions{Wait: 20 * time.Second})
			if err != nil {
				t.Fatalf("boot %d, publish at node %d: %v", boot, pub, err)
			}
			// A receipt of an earlier boot's message with the same id would
			// make the report look complete: the id must be new.
			if prev, ok := ids[r.ID]; ok && pub == node {
				lost++
				t.Errorf("boot %d: publish at node %d answered 201 with id %s, already published in boot %d: every node drops it as a duplicate", boot, pub, r.ID, prev)
				continue
			}
			if pub == node {
				ids[r.ID] = boot
			}
			if !r.Complete() {
				lost++
				t.Errorf("boot %d: message %s published at node %d reached %d/%d, missing %v", boot, r.ID, pub, r.Reached, r.Nodes, r.Missing)
			}
		}
	}
	t.Logf("publishes answered 201 that did not reach every node, across %d restarts: %d", restarts, lost)
}
