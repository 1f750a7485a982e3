package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"gossipmesh/wire"
)

// Graph is a topology in compressed sparse row form: the peers of node i
// (0-based) are Adj[Off[i]:Off[i+1]], stored as wire.NodeIDs (index+1,
// since id 0 means "no node") so that each core's peer list is a window of
// this one array. At a million nodes of degree 16 that is 128 MiB in one
// allocation instead of a million small slices.
type Graph struct {
	Off []int
	Adj []wire.NodeID
	// Directed records that links are one-way (kout).
	Directed bool
	// Dialed, when not nil, says how many of the first peers in each
	// node's list are links the node dialed (picked) itself; the rest
	// dialed it. LinksUp passes it on (gossip.LinkUp), so that routers
	// keep eager slots on dialed links. SybilGraph sets it: honest nodes
	// dial their honest picks, sybils dial the honest nodes they link to.
	Dialed []uint32
}

// dialed reports whether node i dialed the k-th peer of its list.
func (g *Graph) dialed(i, k int) bool { return g.Dialed != nil && k < int(g.Dialed[i]) }

// N is the number of nodes.
func (g *Graph) N() int { return len(g.Off) - 1 }

// Peers returns node i's peer list as a full slice expression, so that an
// append by its owner reallocates instead of overwriting node i+1's peers.
func (g *Graph) Peers(i int) []wire.NodeID {
	lo, hi := g.Off[i], g.Off[i+1]
	return g.Adj[lo:hi:hi]
}

// MeanDegree is the mean number of peers per node (out-links for kout).
func (g *Graph) MeanDegree() float64 { return float64(len(g.Adj)) / float64(g.N()) }

// BFS returns every node's hop distance from src along the graph's links,
// or -1 for a node src cannot reach.
func (g *Graph) BFS(src int) []int {
	dist := make([]int, g.N())
	for i := range dist {
		dist[i] = -1
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, p := range g.Peers(v) {
			w := int(p) - 1
			if dist[w] < 0 {
				dist[w] = dist[v] + 1
				queue = append(queue, w)
			}
		}
	}
	return dist
}

// topoStream is the PCG stream of the topology's random source; the cores
// use streams 0..N-1 and the network netStream.
const (
	topoStream = 1<<63 | 0x746f706f
	netStream  = 1<<63 | 0x6e6574
)

// BuildGraph generates the topology that cfg names (kout, undirected or
// regular) from cfg.Seed.
func BuildGraph(cfg *Config) (*Graph, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, topoStream))
	switch cfg.Topology {
	case TopologyKOut:
		return KOut(cfg.Nodes, cfg.Degree, rng), nil
	case TopologyUndirected:
		return Undirected(cfg.Nodes, cfg.Degree, rng), nil
	case TopologyRegular:
		return Regular(cfg.Nodes, cfg.Degree, rng)
	}
	return nil, fmt.Errorf("sim: unknown topology %q", cfg.Topology)
}

// pickDistinct writes k distinct random nodes other than self into dst.
// k is small next to n, so rejection with a linear duplicate scan wins.
func pickDistinct(dst []uint32, self, n int, rng *rand.Rand) {
	for j := range dst {
	again:
		t := rng.IntN(n - 1)
		if t >= self {
			t++
		}
		for _, u := range dst[:j] {
			if int(u) == t {
				goto again
			}
		}
		dst[j] = uint32(t)
	}
}

// KOut gives every node k random distinct out-links: the lesson's starter.
func KOut(n, k int, rng *rand.Rand) *Graph {
	g := &Graph{Off: hugeSlice[int](n+1, n+1), Adj: hugeSlice[wire.NodeID](n*k, n*k), Directed: true}
	pick := make([]uint32, k)
	for i := 0; i < n; i++ {
		pickDistinct(pick, i, n, rng)
		for j, t := range pick {
			g.Adj[i*k+j] = wire.NodeID(t) + 1
		}
		g.Off[i+1] = (i + 1) * k
	}
	return g
}

// Undirected builds a random graph of mean degree about d: every node
// picks d/2 random peers (one more for even nodes when d is odd) and every
// link is used both ways. A link picked from both ends counts once, so the
// mean is a hair under d.
func Undirected(n, d int, rng *rand.Rand) *Graph {
	outs := func(i int) int { return d/2 + (d%2)*(1-i%2) }
	off := make([]int, n+1)
	for i := 0; i < n; i++ {
		off[i+1] = off[i] + outs(i)
	}
	out := make([]uint32, off[n])
	for i := 0; i < n; i++ {
		pickDistinct(out[off[i]:off[i+1]], i, n, rng)
	}
	return fromArcs(n, off, out)
}

// fromArcs turns out-arcs (out[off[i]:off[i+1]] from node i) into an
// undirected CSR graph without duplicate links: node i's peers are its own
// picks in order, then the nodes that picked it, in node order.
func fromArcs(n int, off []int, out []uint32) *Graph {
	deg := make([]int, n+1)
	for i := 0; i < n; i++ {
		deg[i] += off[i+1] - off[i]
		for _, t := range out[off[i]:off[i+1]] {
			deg[t]++
		}
	}
	g := &Graph{Off: hugeSlice[int](n+1, n+1)}
	for i := 0; i < n; i++ {
		g.Off[i+1] = g.Off[i] + deg[i]
	}
	adj := hugeSlice[wire.NodeID](g.Off[n], g.Off[n])
	fill := deg[:n]
	for i := 0; i < n; i++ {
		fill[i] = g.Off[i]
		for _, t := range out[off[i]:off[i+1]] {
			adj[fill[i]] = wire.NodeID(t) + 1
			fill[i]++
		}
	}
	for i := 0; i < n; i++ {
		for _, t := range out[off[i]:off[i+1]] {
			adj[fill[t]] = wire.NodeID(i) + 1
			fill[t]++
		}
	}
	// Drop the second copy of links both ends picked, and compact. stamp
	// marks the peers of the node at hand with its id.
	stamp := make([]uint32, n)
	w := 0
	for i := 0; i < n; i++ {
		lo, hi := g.Off[i], g.Off[i+1]
		g.Off[i] = w
		for _, p := range adj[lo:hi] {
			if stamp[p-1] == uint32(i)+1 {
				continue
			}
			stamp[p-1] = uint32(i) + 1
			adj[w] = p
			w++
		}
	}
	g.Off[n] = w
	g.Adj = adj[:w:w]
	return g
}

// Regular builds a random d-regular graph: the configuration model (pair
// up n·d stubs at random), then double-edge switches that remove every
// self-loop and repeated link. n·d must be even and d < n.
func Regular(n, d int, rng *rand.Rand) (*Graph, error) {
	if n*d%2 != 0 || d >= n {
		return nil, fmt.Errorf("sim: no %d-regular graph on %d nodes", d, n)
	}
	s := n * d
	partner := make([]int32, s)
	{
		stubs := make([]int32, s)
		for i := range stubs {
			stubs[i] = int32(i)
		}
		rng.Shuffle(s, func(i, j int) { stubs[i], stubs[j] = stubs[j], stubs[i] })
		for p := 0; p < s; p += 2 {
			a, b := stubs[p], stubs[p+1]
			partner[a], partner[b] = b, a
		}
	}
	node := func(stub int32) int { return int(stub) / d }
	// bad reports whether stub x's link is a self-loop or repeats a link of
	// an earlier stub of the same node.
	bad := func(x int32) bool {
		u, v := node(x), node(partner[x])
		if u == v {
			return true
		}
		for y := int32(u * d); y < int32(u*d+d); y++ {
			if y != x && node(partner[y]) == v {
				return true
			}
		}
		return false
	}
	has := func(u, v int) bool {
		for y := u * d; y < u*d+d; y++ {
			if node(partner[y]) == v {
				return true
			}
		}
		return false
	}
	stamp := make([]int32, n)
	for round := 0; ; round++ {
		var todo []int32
		for u := 0; u < n; u++ {
			for x := int32(u * d); x < int32(u*d+d); x++ {
				v := node(partner[x])
				if v == u || stamp[v] == int32(u)+1 {
					todo = append(todo, x)
				}
				stamp[v] = int32(u) + 1
			}
		}
		for i := range stamp {
			stamp[i] = 0
		}
		if len(todo) == 0 {
			break
		}
		if round > 100 {
			return nil, fmt.Errorf("sim: could not build a simple %d-regular graph on %d nodes", d, n)
		}
		for _, x := range todo {
			for tries := 0; bad(x) && tries < 1000; tries++ {
				t := partner[x]
				y := int32(rng.IntN(s))
				z := partner[y]
				if y == x || y == t || z == x || z == t {
					continue
				}
				u, v, w, q := node(x), node(t), node(y), node(z)
				if u == w || v == q || has(u, w) || has(v, q) {
					continue
				}
				partner[x], partner[y] = y, x
				partner[t], partner[z] = z, t
			}
		}
	}
	g := &Graph{Off: hugeSlice[int](n+1, n+1), Adj: hugeSlice[wire.NodeID](s, s)}
	for i := 0; i < n; i++ {
		g.Off[i+1] = (i + 1) * d
	}
	for x := range partner {
		g.Adj[x] = wire.NodeID(node(partner[x])) + 1
	}
	return g, nil
}

// LoadGraph reads an undirected edge list: either the output of
// `mesh status --json` ({"nodes":[{"index":0,"peers":[3,5,8]},…]}) or
// plain text with one "a b" pair of 0-based node indexes per line (blank
// lines and # comments skipped). Links listed from both ends, or twice,
// count once; a self-link is an error.
func LoadGraph(r io.Reader) (*Graph, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("edge list: %w", err)
	}
	var edges [][2]int
	n := 0
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		var st struct {
			Nodes []struct {
				Index *int  `json:"index"`
				Peers []int `json:"peers"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(t, &st); err != nil {
			return nil, fmt.Errorf("edge list: status JSON: %w", err)
		}
		n = len(st.Nodes)
		for k, nd := range st.Nodes {
			if nd.Index == nil {
				return nil, fmt.Errorf("edge list: status JSON: node %d has no index", k)
			}
			for _, p := range nd.Peers {
				edges = append(edges, [2]int{*nd.Index, p})
			}
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			f := strings.Fields(s)
			if len(f) != 2 {
				return nil, fmt.Errorf("edge list: line %d: want two node indexes, got %q", line, s)
			}
			a, err1 := strconv.Atoi(f[0])
			b, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("edge list: line %d: want two node indexes, got %q", line, s)
			}
			edges = append(edges, [2]int{a, b})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("edge list: %w", err)
		}
	}
	for _, e := range edges {
		for _, v := range e {
			if v < 0 || v >= MaxNodes {
				return nil, fmt.Errorf("edge list: node index %d out of range", v)
			}
			n = max(n, v+1)
		}
		if e[0] == e[1] {
			return nil, fmt.Errorf("edge list: self-link at node %d", e[0])
		}
	}
	if n < 2 {
		return nil, fmt.Errorf("edge list: need at least 2 nodes, got %d", n)
	}
	off := make([]int, n+1)
	for _, e := range edges {
		off[e[0]+1]++
	}
	for i := 0; i < n; i++ {
		off[i+1] += off[i]
	}
	out := make([]uint32, len(edges))
	fill := append([]int(nil), off[:n]...)
	for _, e := range edges {
		out[fill[e[0]]] = uint32(e[1])
		fill[e[0]]++
	}
	return fromArcs(n, off, out), nil
}

// SybilSpec describes an overlay of honest nodes and sybils, the shape of
// the gossipsub v1.1 testbed: honest nodes are indexes 0..Honest−1, sybils
// Honest..Honest+Sybils−1.
type SybilSpec struct {
	// Honest nodes form a random undirected graph of mean degree about
	// Degree among themselves, as Undirected builds: each picks Degree/2
	// honest peers (its outbound links).
	Honest, Degree int
	// Sybils each link to SybilLinks random honest nodes, so that a sybil
	// has a high degree and each honest node about Sybils × SybilLinks /
	// Honest sybil links besides its honest ones. Sybils have no links
	// among themselves: a sybil learns nothing from another that it does
	// not know already.
	Sybils, SybilLinks int
	// Targets are honest nodes every sybil links to as well (eclipse),
	// or TargetLinks of them at random per sybil when TargetLinks is
	// positive and below len(Targets).
	Targets     []int
	TargetLinks int
	// TargetsOutbound leaves each target only the honest links it picked
	// itself (its outbound quota, Degree/2): the honest nodes that would
	// have picked it pick another node, so the sybils hold every inbound
	// slot a target has.
	TargetsOutbound bool
	// TargetsCut leaves the targets no honest link at all: the sybils hold
	// every slot, inbound and outbound, as they do when a node keeps no
	// outbound quota. It implies TargetsOutbound for the other nodes.
	TargetsCut bool
}

// Validate reports a spec that cannot be built.
func (sp *SybilSpec) Validate() error {
	switch {
	case sp.Honest < 2 || sp.Degree < 2 || sp.Degree/2 >= sp.Honest:
		return fmt.Errorf("sim: sybil overlay needs at least 2 honest nodes and a degree in 2..%d, got %d and %d", 2*(sp.Honest-1), sp.Honest, sp.Degree)
	case sp.Sybils < 0 || sp.SybilLinks < 0 || sp.SybilLinks > sp.Honest:
		return fmt.Errorf("sim: sybil overlay: %d sybils of %d links each over %d honest nodes", sp.Sybils, sp.SybilLinks, sp.Honest)
	case sp.Sybils > 0 && sp.SybilLinks == 0 && len(sp.Targets) == 0:
		return errors.New("sim: sybil overlay: sybils with no link to any honest node")
	case uint64(sp.Honest)+uint64(sp.Sybils) > MaxNodes:
		return fmt.Errorf("sim: sybil overlay of %d nodes is over %d", sp.Honest+sp.Sybils, MaxNodes)
	case (sp.TargetsOutbound || sp.TargetsCut) && len(sp.Targets)*2 > sp.Honest:
		return fmt.Errorf("sim: sybil overlay: %d outbound-only targets leave too few honest nodes (%d) to link to", len(sp.Targets), sp.Honest)
	}
	for _, t := range sp.Targets {
		if t < 0 || t >= sp.Honest {
			return fmt.Errorf("sim: sybil overlay: target %d is not an honest node (0..%d)", t, sp.Honest-1)
		}
	}
	return nil
}

// SybilGraph builds the overlay sp describes from rng.
func SybilGraph(sp SybilSpec, rng *rand.Rand) (*Graph, error) {
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	h, n := sp.Honest, sp.Honest+sp.Sybils
	target := make([]bool, h)
	for _, t := range sp.Targets {
		target[t] = true
	}
	per := len(sp.Targets)
	if sp.TargetLinks > 0 && sp.TargetLinks < per {
		per = sp.TargetLinks
	}
	outbound := sp.TargetsOutbound || sp.TargetsCut
	off := make([]int, n+1)
	for i := range n {
		k := sp.Degree / 2
		if i < h && target[i] && sp.TargetsCut {
			k = 0
		}
		if i >= h {
			k = sp.SybilLinks + per
		}
		off[i+1] = off[i] + k
	}
	out := make([]uint32, off[n])
	for i := range h {
		pick := out[off[i]:off[i+1]]
		for {
			pickDistinct(pick, i, h, rng)
			if !outbound || target[i] || !slices.ContainsFunc(pick, func(t uint32) bool { return target[t] }) {
				break
			}
		}
	}
	tpick := make([]uint32, per)
	for i := h; i < n; i++ {
		pick := out[off[i] : off[i]+sp.SybilLinks]
		pickDistinct(pick, h, h+1, rng) // h+1 nodes with h left out: 0..h-1
		// A sybil's extra links go to targets it did not pick already.
		k := 0
		if per == len(sp.Targets) {
			for _, t := range sp.Targets {
				tpick[k] = uint32(t)
				k++
			}
		} else {
			pickDistinct(tpick, len(sp.Targets), len(sp.Targets)+1, rng)
			for j, x := range tpick {
				tpick[j] = uint32(sp.Targets[x])
			}
		}
		copy(out[off[i]+sp.SybilLinks:off[i+1]], tpick)
	}
	g := fromArcs(n, off, out)
	// fromArcs puts each node's own picks first, distinct, and drops
	// only the second copy of a link both ends picked.
	g.Dialed = make([]uint32, n)
	for i := range n {
		g.Dialed[i] = uint32(off[i+1] - off[i])
	}
	return g, nil
}
