package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"gossipmesh/cluster"
)

// ClusterMesh adapts a launcher-run cluster to the dashboard. The links it
// reports are the ones the launcher chose, which are the links the nodes
// dial: every first copy travels along one of them.
//
// When the cluster tracks its state file (cluster.TrackState, as `mesh up`
// does), the mesh is also a FaultMesh: each fault is cluster.Chaos's, the
// code of `mesh chaos`, opened on that file, so that pauses are signals to
// processes proven to be the mesh's and every change is read back from
// the nodes before it is reported. Without a state file the fault routes
// answer 501.
func ClusterMesh(c *cluster.Cluster) Mesh { return &clusterMesh{c: c} }

type clusterMesh struct {
	c *cluster.Cluster
	// faultMu serialises the fault verbs: each one reads, edits and
	// writes back every node's plan, and two at once would lose one's
	// edit.
	faultMu sync.Mutex
}

func (m *clusterMesh) Nodes() []NodeInfo {
	nodes := m.c.Nodes()
	out := make([]NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = NodeInfo{
			Index:      n.Index,
			ID:         n.ID,
			PID:        n.PID,
			GossipAddr: n.GossipAddr,
			HTTPURL:    n.HTTPURL,
			Peers:      slices.Clone(n.Chosen),
			Alive:      n.Running,
		}
		if !n.Running {
			out[i].PID = 0
		}
	}
	return out
}

func (m *clusterMesh) Kill(_ context.Context, i int) error { return m.c.Kill(i) }

// Restart waits for the whole mesh to be ready again, as it always has,
// unless faults are in force (a cut, a paused node): then the mesh cannot
// be ready, and Restart waits only for the node itself to answer. Either
// way the node starts with no fault plan of its own.
func (m *clusterMesh) Restart(ctx context.Context, i int) error {
	if m.faulted(ctx) {
		return m.c.RestartNode(ctx, i)
	}
	return m.c.Restart(ctx, i)
}

// faulted reports whether a cut or a paused node keeps the mesh from being
// ready.
func (m *clusterMesh) faulted(ctx context.Context) bool {
	nodes, err := m.Faults(ctx)
	if err != nil {
		return false
	}
	for _, n := range nodes {
		if n.State == StatePaused || len(n.Cut) > 0 {
			return true
		}
	}
	return false
}

// chaos opens the cluster's state file for one fault verb.
func (m *clusterMesh) chaos() (*cluster.Chaos, error) {
	path := m.c.StatePath()
	if path == "" {
		return nil, fmt.Errorf("the mesh keeps no state file, which the fault controls need: %w", errors.ErrUnsupported)
	}
	ch, err := cluster.OpenChaos(path)
	if err != nil {
		return nil, fmt.Errorf("opening the mesh's state: %w", err)
	}
	return ch, nil
}

// do runs one fault verb on a fresh view of the state file.
func (m *clusterMesh) do(f func(ch *cluster.Chaos) error) error {
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	ch, err := m.chaos()
	if err != nil {
		return err
	}
	return f(ch)
}

func (m *clusterMesh) Split(ctx context.Context, a, b []int) error {
	return m.do(func(ch *cluster.Chaos) error { return ch.Split(ctx, a, b) })
}

func (m *clusterMesh) Heal(ctx context.Context) error {
	return m.do(func(ch *cluster.Chaos) error { return ch.Heal(ctx) })
}

func (m *clusterMesh) Loss(ctx context.Context, drop float64) error {
	return m.do(func(ch *cluster.Chaos) error { return ch.Loss(ctx, drop, allNodes(ch.Len())) })
}

func (m *clusterMesh) Pause(ctx context.Context, i int) error {
	return m.do(func(ch *cluster.Chaos) error { return ch.Pause(ctx, []int{i}) })
}

func (m *clusterMesh) Resume(ctx context.Context, i int) error {
	return m.do(func(ch *cluster.Chaos) error { return ch.Resume(ctx, []int{i}) })
}

func (m *clusterMesh) Faults(ctx context.Context) ([]NodeFaults, error) {
	ch, err := m.chaos()
	if err != nil {
		return nil, err
	}
	st := ch.Status(ctx)
	out := make([]NodeFaults, len(st))
	for i, n := range st {
		out[i] = NodeFaults{Index: n.Index, State: string(n.State), Cut: n.Cut, Error: n.Error}
		if n.Faults != nil {
			out[i].Drop = n.Faults.Drop
		}
	}
	return out, nil
}

func allNodes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
