package web

import (
	"context"
	"slices"

	"gossipmesh/cluster"
)

// ClusterMesh adapts a launcher-run cluster to the dashboard. The links it
// reports are the ones the launcher chose, which are the links the nodes
// dial: every first copy travels along one of them.
func ClusterMesh(c *cluster.Cluster) Mesh { return clusterMesh{c} }

type clusterMesh struct{ c *cluster.Cluster }

func (m clusterMesh) Nodes() []NodeInfo {
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

func (m clusterMesh) Kill(_ context.Context, i int) error { return m.c.Kill(i) }

func (m clusterMesh) Restart(ctx context.Context, i int) error { return m.c.Restart(ctx, i) }
