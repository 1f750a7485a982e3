package main

import (
	"math/rand/v2"
	"slices"
)

// This file reproduces gossipmesh's cluster.NewTopology (cluster/topology.go)
// exactly, so that `gsbench --nodes N --peers P --seed S` runs on the very
// overlay that `mesh bench --nodes N --peers P --seed S` launches: each node
// dials P others chosen uniformly at random, a disconnected draw is redrawn
// from derived seeds, and after maxRedraws the components are joined.
// Node ids are not needed here (libp2p hosts have their own), so only the
// peer choice is kept.

const (
	saltPick   = 0x7065657273303030 // "peers000"
	saltRedraw = 0x7265647261773030 // "redraw00"
	maxRedraws = 64
)

// mix is SplitMix64's finaliser over (seed, salt, i), as in cluster.mix.
func mix(seed, salt, i uint64) uint64 {
	z := seed ^ salt ^ (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// topology is the chosen links: chosen[i] lists, ascending, the nodes that
// node i dials.
type topology struct {
	chosen  [][]int
	redraws int
	added   [][2]int
}

// newTopology mirrors cluster.NewTopology's peer choice.
func newTopology(n, peers int, seed uint64) topology {
	peers = min(peers, n-1)
	t := topology{chosen: make([][]int, n)}
	if peers < 1 {
		return t
	}
	pick := seed
	for {
		t.chosen = drawChosen(n, peers, pick)
		if t.graph().connected() || t.redraws == maxRedraws {
			break
		}
		t.redraws++
		pick = mix(seed, saltRedraw, uint64(t.redraws))
	}
	t.added = t.join()
	return t
}

func drawChosen(n, peers int, pick uint64) [][]int {
	out := make([][]int, n)
	others := make([]int, 0, n-1)
	for i := range n {
		rng := rand.New(rand.NewPCG(pick, mix(pick, saltPick, uint64(i))))
		others = others[:0]
		for j := range n {
			if j != i {
				others = append(others, j)
			}
		}
		rng.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
		chosen := slices.Clone(others[:peers])
		slices.Sort(chosen)
		out[i] = chosen
	}
	return out
}

func (t *topology) join() [][2]int {
	g := t.graph()
	comp := make([]int, len(g))
	for i := range comp {
		comp[i] = -1
	}
	var roots []int
	for i := range comp {
		if comp[i] >= 0 {
			continue
		}
		for j, d := range g.distances(i) {
			if d >= 0 {
				comp[j] = len(roots)
			}
		}
		roots = append(roots, i)
	}
	var added [][2]int
	for k := 1; k < len(roots); k++ {
		a, b := roots[k], roots[k-1]
		t.chosen[a] = append(t.chosen[a], b)
		slices.Sort(t.chosen[a])
		added = append(added, [2]int{a, b})
	}
	return added
}

// graph is an undirected adjacency list, sorted, without repeats.
type graph [][]int

func (t topology) graph() graph {
	g := make(graph, len(t.chosen))
	for a, cs := range t.chosen {
		for _, b := range cs {
			if a != b {
				g[a] = append(g[a], b)
				g[b] = append(g[b], a)
			}
		}
	}
	for i := range g {
		slices.Sort(g[i])
		g[i] = slices.Compact(g[i])
	}
	return g
}

func (g graph) distances(src int) []int {
	dist := make([]int, len(g))
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		for _, b := range g[a] {
			if dist[b] < 0 {
				dist[b] = dist[a] + 1
				queue = append(queue, b)
			}
		}
	}
	return dist
}

func (g graph) connected() bool {
	return len(g) == 0 || !slices.Contains(g.distances(0), -1)
}

// links counts undirected links.
func (g graph) links() int {
	n := 0
	for _, ns := range g {
		n += len(ns)
	}
	return n / 2
}

// diameter is the longest shortest path.
func (g graph) diameter() int {
	d := 0
	for i := range g {
		for _, x := range g.distances(i) {
			d = max(d, x)
		}
	}
	return d
}
