// Package web is gossipmesh's dashboard: an HTTP server with embedded
// assets (no CDN, no build step) that shows a running mesh as a graph,
// publishes from any node, animates the propagation hop by hop over one
// aggregated Server-Sent Events stream, kills and restarts nodes, and
// replays simulator traces in the same view.
//
// The server needs only the small Mesh interface from whatever runs the
// nodes, so that it can be tested against fakes and does not depend on how
// the launcher supervises its processes; ClusterMesh adapts the launcher's
// type.
package web

import (
	"cmp"
	"context"
	"errors"
	"slices"
)

// NodeInfo is one node as the dashboard shows it. The JSON names match
// `mesh status --json` where the fields overlap.
type NodeInfo struct {
	// Index is the node's position in the mesh, 0..n-1.
	Index int `json:"index"`
	// ID is the node id, 16 hex digits.
	ID string `json:"id"`
	// PID is the node's process id, 0 when it is not running.
	PID int `json:"pid"`
	// GossipAddr is the node's gossip listen address.
	GossipAddr string `json:"gossip_addr"`
	// HTTPURL is the node's API base URL. It may change across a restart;
	// the dashboard reads it again whenever it reconnects.
	HTTPURL string `json:"http_url"`
	// Peers lists the indices of the nodes this node links to. Links are
	// undirected: a link may be listed at either end or at both.
	Peers []int `json:"peers"`
	// Alive reports whether the node's process is running.
	Alive bool `json:"alive"`
}

// Mesh is what the dashboard needs from a running mesh.
type Mesh interface {
	// Nodes describes every node, in index order. It is called on every
	// table refresh and whenever a node's event stream reconnects, so it
	// should be cheap.
	Nodes() []NodeInfo
	// Kill stops node i's process abruptly, as a crash would.
	Kill(ctx context.Context, i int) error
	// Restart starts node i again after Kill, with the same id and
	// addresses where possible, and returns once it is linked again.
	Restart(ctx context.Context, i int) error
}

// ErrNoSuchNode is what a Mesh may wrap for an index outside the mesh; the
// dashboard answers 404.
var ErrNoSuchNode = errors.New("no such node")

// links returns the undirected links of nodes once each, as (low, high),
// dropping self-loops and indices outside the mesh.
func links(nodes []NodeInfo) [][2]int {
	seen := make(map[[2]int]bool)
	out := [][2]int{}
	for _, n := range nodes {
		for _, p := range n.Peers {
			a, b := min(n.Index, p), max(n.Index, p)
			if a == b || a < 0 || b >= len(nodes) || seen[[2]int{a, b}] {
				continue
			}
			seen[[2]int{a, b}] = true
			out = append(out, [2]int{a, b})
		}
	}
	slices.SortFunc(out, func(x, y [2]int) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
	})
	return out
}
