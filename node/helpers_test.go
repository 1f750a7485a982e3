package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/node"
	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// settle bounds how long a test waits for the mesh to reach a state. It is a
// safety net against hangs, not a performance assertion: on a healthy run
// every wait ends in milliseconds.
const settle = 60 * time.Second

// withAntiEntropy is a config tweak that turns on anti-entropy at a short
// period, for tests whose nodes must repair a copy a loaded machine made
// them drop (flood alone never does).
func withAntiEntropy(c *node.Config) { c.Gossip.AntiEntropy = 200 * time.Millisecond }

// eventually polls cond until it holds or settle passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, settle, what, cond)
}

// eventuallyWithin is eventually with its own bound.
func eventuallyWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testMesh is n nodes on one memnet network. Node i is host "h<i>",
// listens on "h<i>:7000", has id i+1 and dials exactly the candidates the
// test chose for it, so the topology is known to the test.
type testMesh struct {
	t     *testing.T
	nw    *memnet.Network
	nodes []*node.Node
	adj   [][]int // undirected links the mesh should settle on
	// index maps a node's id (which derives from its key) to its index.
	index map[wire.NodeID]int
}

func host(i int) string { return fmt.Sprintf("h%d", i) }
func addr(i int) string { return host(i) + ":7000" }

// randomConnected returns, for each node, the nodes it dials: one earlier
// node (so the graph is connected: a random spanning tree) and extra more
// random ones.
func randomConnected(n, extra int, rng *rand.Rand) [][]int {
	dials := make([][]int, n)
	for i := 1; i < n; i++ {
		dials[i] = append(dials[i], rng.IntN(i))
		for len(dials[i]) < 1+extra && len(dials[i]) < n-1 {
			j := rng.IntN(n)
			if j != i && !slices.Contains(dials[i], j) {
				dials[i] = append(dials[i], j)
			}
		}
	}
	return dials
}

// memnetConfig is the config of test node i on nw: host "h<i>", id from
// key i+1, dialing the nodes of dials, with short redial backoffs and no
// logs. Every memnet mesh of these tests starts its nodes from it.
func memnetConfig(nw *memnet.Network, i int, dials []int) node.Config {
	cfg := node.DefaultConfig()
	cfg.Key = node.KeyForTest(i + 1)
	cfg.Gossip.Auth = modelAuth()
	cfg.Seed = uint64(i + 1)
	cfg.Transport = nw.Host(host(i))
	cfg.Listen = addr(i)
	cfg.Peers = len(dials)
	for _, j := range dials {
		cfg.Candidates = append(cfg.Candidates, addr(j))
	}
	cfg.BackoffMin = 5 * time.Millisecond
	cfg.BackoffMax = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// startMesh starts one node per entry of dials. tweak, if not nil, adjusts
// each node's config.
func startMesh(t *testing.T, dials [][]int, tweak func(i int, c *node.Config)) *testMesh {
	t.Helper()
	m := &testMesh{t: t, nw: memnet.New(), adj: adjacency(dials), index: make(map[wire.NodeID]int)}
	ctx, cancel := context.WithCancel(context.Background())
	for i, ds := range dials {
		cfg := memnetConfig(m.nw, i, ds)
		if tweak != nil {
			tweak(i, &cfg)
		}
		n, err := node.New(cfg)
		if err != nil {
			cancel()
			t.Fatalf("node %d: %v", i, err)
		}
		m.index[n.ID()] = i
		m.nodes = append(m.nodes, n)
	}
	for _, n := range m.nodes {
		go n.Run(ctx)
	}
	t.Cleanup(func() {
		cancel()
		for _, n := range m.nodes {
			<-n.Done()
		}
	})
	return m
}

// waitLinked waits until every node has exactly the links of adj.
func (m *testMesh) waitLinked() {
	m.t.Helper()
	eventually(m.t, "every node to link to exactly its peers", func() bool {
		for i, n := range m.nodes {
			if !m.linkedAsExpected(i, n) {
				return false
			}
		}
		return true
	})
}

func (m *testMesh) linkedAsExpected(i int, n *node.Node) bool {
	ps := n.Peers()
	if len(ps) != len(m.adj[i]) {
		return false
	}
	for _, p := range ps {
		id, err := wire.ParseNodeID(p.ID)
		j, ok := m.index[id]
		if err != nil || !ok || !slices.Contains(m.adj[i], j) {
			return false
		}
	}
	return true
}

// adjacency turns who-dials-whom into undirected links: a pair that dial
// each other is one link.
func adjacency(dials [][]int) [][]int {
	adj := make([][]int, len(dials))
	for i, ds := range dials {
		for _, j := range ds {
			if !slices.Contains(adj[i], j) {
				adj[i] = append(adj[i], j)
				adj[j] = append(adj[j], i)
			}
		}
	}
	return adj
}

// bfs returns every node's shortest-path distance from src.
func bfs(adj [][]int, src int) []int {
	dist := make([]int, len(adj))
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, v := range adj[u] {
			if dist[v] < 0 {
				dist[v] = dist[u] + 1
				queue = append(queue, v)
			}
		}
	}
	return dist
}

// edges counts undirected links.
func edges(adj [][]int) int {
	e := 0
	for _, a := range adj {
		e += len(a)
	}
	return e / 2
}
