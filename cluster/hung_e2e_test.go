package cluster_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// TestEndToEndHungNodeDoesNotHoldAPublish stops one node with SIGSTOP (it
// keeps its sockets, so connections to it hang rather than fail) and
// publishes at another within a deadline of the wait plus a second, as
// `mesh publish --wait` does: the report names the hung node as missing
// instead of failing with the deadline. Publishing at the hung node fails
// with an error within the same deadline.
func TestEndToEndHungNodeDoesNotHoldAPublish(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	c := startCluster(t, bin, 5, 5)
	const hung = 2
	pid := c.Nodes()[hung].PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	const wait = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), wait+time.Second)
	defer cancel()
	r, err := c.Mesh().Propagate(ctx, 0, "past a hung node", cluster.PropagateOptions{Wait: wait})
	if err != nil {
		t.Fatalf("publish with node %d hung: %v (want a report that names it missing)", hung, err)
	}
	if !slices.Contains(r.Missing, hung) || r.Reached != r.Nodes-1 {
		t.Errorf("reached %d/%d, missing %v; want every node but %d", r.Reached, r.Nodes, r.Missing, hung)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), wait+time.Second)
	defer cancel2()
	if _, err := c.Mesh().Propagate(ctx2, hung, "at the hung node", cluster.PropagateOptions{Wait: wait}); err == nil {
		t.Errorf("publishing at the hung node %d succeeded", hung)
	}
}
