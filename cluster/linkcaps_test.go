package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"gossipmesh/node"
)

// TestDenseMeshRaisesTheNodesLinkCaps checks that in a complete mesh of 200
// local nodes, every node is started with link caps that fit all of its
// links (every one of them from 127.0.0.1), and that a sparse mesh keeps
// the node's defaults.
func TestDenseMeshRaisesTheNodesLinkCaps(t *testing.T) {
	def := node.DefaultConfig()
	for _, tc := range []struct {
		nodes, peers int
		raised       bool
	}{{200, 199, true}, {1000, 3, false}} {
		c := &Cluster{cfg: DefaultConfig(), topo: NewTopology(tc.nodes, tc.peers, 1)}
		for i := range tc.nodes {
			c.procs = append(c.procs, &proc{index: i, gossipAddr: fmt.Sprintf("127.0.0.1:%d", 10000+i)})
		}
		for i := range tc.nodes {
			args := c.nodeArgs(i)
			flag := func(name string, def int) int {
				k := slices.Index(args, name)
				if k < 0 {
					return def
				}
				v, err := strconv.Atoi(args[k+1])
				if err != nil {
					t.Fatalf("node %d: %s %q: %v", i, name, args[k+1], err)
				}
				return v
			}
			inbound := 0
			for _, cs := range c.topo.Chosen {
				if slices.Contains(cs, i) {
					inbound++
				}
			}
			maxPeers, perIP := flag("--max-peers", def.MaxPeers), flag("--max-inbound-per-ip", def.MaxInboundPerIP)
			if links := len(c.topo.Chosen[i]) + inbound; maxPeers < links || perIP < inbound {
				t.Fatalf("%d nodes, %d peers: node %d has %d links (%d inbound) but caps --max-peers %d, --max-inbound-per-ip %d", tc.nodes, tc.peers, i, links, inbound, maxPeers, perIP)
			}
			if !tc.raised && (maxPeers != def.MaxPeers || perIP != def.MaxInboundPerIP) {
				t.Fatalf("%d nodes, %d peers: node %d's caps raised to %d and %d; the defaults fit", tc.nodes, tc.peers, i, maxPeers, perIP)
			}
		}
	}
}
