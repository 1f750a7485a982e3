package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"

	"gossipmesh/identity"
	"gossipmesh/wire"
)

// Topology is the mesh the launcher asks for: every node's key and id, its
// own seed and the peers it dials. It depends only on (nodes, peers, seed),
// so the same seed gives the same mesh, keys and ids run after run.
//
// The launcher makes the random choice itself and passes each node exactly
// its chosen peers as candidates: it then knows every link to wait for and
// can print the topology without asking, and the topology does not depend
// on how the node draws random numbers.
type Topology struct {
	Seed uint64
	// Keys are the nodes' key pairs, derived from Seed and the index (see
	// NodeKey): the launcher writes them to files and passes --key.
	Keys []*identity.Key
	// IDs are the node ids, the keys' ids (identity.IDOf): never zero,
	// and distinct.
	IDs []wire.NodeID
	// Seeds are the per-node seeds passed as --seed.
	Seeds []uint64
	// Chosen[i] lists, ascending, the nodes that node i dials.
	Chosen [][]int
	// Redraws counts the draws that came out disconnected and were drawn
	// again from a seed derived from Seed (see NewTopology).
	Redraws int
	// Added lists the links, as (dialer, dialed), that NewTopology added to
	// join the components of a graph that no draw connected.
	Added [][2]int
}

// Salts keep the streams derived from one seed apart.
const (
	saltSeed = 0x6e6f64652d736430 // "node-sd0"
	saltPick = 0x7065657273303030 // "peers000"
	// saltRedraw derives the seeds of the redraws of a disconnected graph.
	saltRedraw = 0x7265647261773030 // "redraw00"
)

// keyDomain separates the hash that derives a launched node's key seed
// from every other use of SHA-256.
const keyDomain = "gossipmesh/cluster-key/v1"

// NodeKey derives the key of node i of a mesh launched with seed: the
// ed25519 key whose seed is SHA-256(keyDomain || seed || i || attempt),
// integers as 8 bytes big-endian, for the first attempt from 0 up whose key
// is valid (its id is not 0, a 1-in-2^64 event). The same (seed, i) gives
// the same key, so a relaunch keeps every node's id; anyone who knows the
// launch seed knows the keys, which is what a local test mesh wants and no
// real deployment should do.
func NodeKey(seed uint64, i int) *identity.Key {
	k, _ := nodeKey(seed, i, 0)
	return k
}

// nodeKey is NodeKey from the given attempt on; it returns the key and the
// attempt that made it.
func nodeKey(seed uint64, i int, attempt uint64) (*identity.Key, uint64) {
	for ; ; attempt++ {
		h := sha256.New()
		h.Write([]byte(keyDomain))
		var b [24]byte
		binary.BigEndian.PutUint64(b[:], seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		binary.BigEndian.PutUint64(b[16:], attempt)
		h.Write(b[:])
		if k, err := identity.FromSeed(h.Sum(nil)); err == nil {
			return k, attempt
		}
	}
}

// mix is SplitMix64's finaliser over (seed, salt, i): a cheap, well-mixed,
// stateless derivation.
func mix(seed, salt, i uint64) uint64 {
	z := seed ^ salt ^ (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// maxRedraws is how many times NewTopology redraws a disconnected graph
// from derived seeds before it joins the components itself. With 2 or more
// peers per node a redraw is rare (seed 1 at 10 nodes and 1 peer needs
// one); with 1 peer per node, a large mesh is almost never connected by
// chance, and the joining links are what makes it so.
const maxRedraws = 64

// NewTopology draws a topology of n nodes, each dialing peers others chosen
// uniformly at random (capped at n-1), and makes sure it is connected: a
// launched mesh that cannot be connected only fails 20 s later with a
// misleading "node not answering". A disconnected draw is redrawn from
// seeds derived from seed (Redraws counts them); after maxRedraws, the
// components are joined with the fewest links that connect them (Added).
// Either way the result depends only on (n, peers, seed), and the node ids
// and per-node seeds are those of seed itself. With peers < 1 and n > 1 no
// graph is drawn at all; Config.Validate refuses that before it gets here.
func NewTopology(n, peers int, seed uint64) Topology {
	peers = min(peers, n-1)
	t := Topology{
		Seed:   seed,
		Keys:   make([]*identity.Key, n),
		IDs:    make([]wire.NodeID, n),
		Seeds:  make([]uint64, n),
		Chosen: make([][]int, n),
	}
	used := make(map[wire.NodeID]bool, n)
	for i := range n {
		// Two keys with one id are a 1-in-2^64 event per pair; should it
		// happen, the later node takes its next attempt.
		k, attempt := nodeKey(seed, i, 0)
		for used[k.ID()] {
			k, attempt = nodeKey(seed, i, attempt+1)
		}
		used[k.ID()] = true
		t.Keys[i], t.IDs[i] = k, k.ID()
		t.Seeds[i] = mix(seed, saltSeed, uint64(i))
	}
	if peers < 1 {
		return t
	}
	pick := seed
	for {
		t.Chosen = drawChosen(n, peers, pick)
		if t.Graph().Connected() || t.Redraws == maxRedraws {
			break
		}
		t.Redraws++
		pick = mix(seed, saltRedraw, uint64(t.Redraws))
	}
	t.Added = t.join()
	return t
}

// drawChosen picks every node's peers from pick.
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

// join connects the components of a disconnected topology with one link
// per extra component, the fewest that can connect it: the lowest node of
// each component after the first also dials the lowest node of the one
// before it. It returns the links added, as (dialer, dialed).
func (t *Topology) join() [][2]int {
	g := t.Graph()
	comp := make([]int, g.Len())
	for i := range comp {
		comp[i] = -1
	}
	var roots []int // lowest node of each component, ascending
	for i := range comp {
		if comp[i] >= 0 {
			continue
		}
		for j, d := range g.Distances(i) {
			if d >= 0 {
				comp[j] = len(roots)
			}
		}
		roots = append(roots, i)
	}
	var added [][2]int
	for k := 1; k < len(roots); k++ {
		a, b := roots[k], roots[k-1]
		t.Chosen[a] = append(t.Chosen[a], b)
		slices.Sort(t.Chosen[a])
		added = append(added, [2]int{a, b})
	}
	return added
}

// Note says, for a person, whether the topology is not simply the seed's
// first draw; "" when it is.
func (t Topology) Note() string {
	switch {
	case len(t.Added) > 0:
		return fmt.Sprintf("topology: seed %d drew no connected graph in %d tries; added %d link(s) %v to connect it", t.Seed, t.Redraws+1, len(t.Added), t.Added)
	case t.Redraws > 0:
		return fmt.Sprintf("topology: seed %d drew a disconnected graph; redrawn %d time(s) from seeds derived from it", t.Seed, t.Redraws)
	}
	return ""
}

// Len is the number of nodes.
func (t Topology) Len() int { return len(t.IDs) }

// Links lists the chosen links, undirected and without repeats: a pair
// that chose each other is one link.
func (t Topology) Links() [][2]int {
	return t.Graph().Links()
}

// Graph is the undirected graph of the chosen links.
func (t Topology) Graph() Graph {
	var links [][2]int
	for i, cs := range t.Chosen {
		for _, j := range cs {
			links = append(links, [2]int{i, j})
		}
	}
	return NewGraph(len(t.IDs), links)
}

// Graph is an undirected graph over nodes 0..n-1.
type Graph struct {
	adj [][]int // sorted, no repeats, no self-loops
}

// NewGraph builds a graph from links; direction, repeats and self-loops are
// ignored, as are links to nodes outside 0..n-1.
func NewGraph(n int, links [][2]int) Graph {
	g := Graph{adj: make([][]int, n)}
	for _, l := range links {
		a, b := l[0], l[1]
		if a == b || a < 0 || b < 0 || a >= n || b >= n {
			continue
		}
		g.adj[a] = append(g.adj[a], b)
		g.adj[b] = append(g.adj[b], a)
	}
	for i := range g.adj {
		slices.Sort(g.adj[i])
		g.adj[i] = slices.Compact(g.adj[i])
	}
	return g
}

// Len is the number of nodes.
func (g Graph) Len() int { return len(g.adj) }

// Neighbours lists node i's neighbours, ascending. The caller must not
// modify the slice.
func (g Graph) Neighbours(i int) []int { return g.adj[i] }

// Has reports whether a and b are linked.
func (g Graph) Has(a, b int) bool {
	_, ok := slices.BinarySearch(g.adj[a], b)
	return ok
}

// Links lists every link once, as (low, high), ascending.
func (g Graph) Links() [][2]int {
	var out [][2]int
	for a, ns := range g.adj {
		for _, b := range ns {
			if a < b {
				out = append(out, [2]int{a, b})
			}
		}
	}
	return out
}

// Distances returns every node's shortest-path distance in links from src,
// by breadth-first search; -1 marks a node src cannot reach.
func (g Graph) Distances(src int) []int {
	dist := make([]int, len(g.adj))
	for i := range dist {
		dist[i] = -1
	}
	if src < 0 || src >= len(g.adj) {
		return dist
	}
	dist[src] = 0
	queue := []int{src}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		for _, b := range g.adj[a] {
			if dist[b] < 0 {
				dist[b] = dist[a] + 1
				queue = append(queue, b)
			}
		}
	}
	return dist
}

// Connected reports whether every node can reach every other. An empty
// graph is connected.
func (g Graph) Connected() bool {
	if len(g.adj) == 0 {
		return true
	}
	return !slices.Contains(g.Distances(0), -1)
}
