package gossip

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"testing"

	"gossipmesh/wire"
)

// fifoNet drives cores the simplest possible way, through the Protocol
// interface: one FIFO queue of sends. With every link equally fast that is
// breadth-first order, so under flood each node's first copy comes along a
// shortest path. Every send leaves its node through egress, as in the
// other drivers.
type fifoNet struct {
	cores  map[wire.NodeID]Protocol
	egress Egress
	queue  []Send
	from   []wire.NodeID
	// trace hashes every step, to compare runs.
	trace     uint64
	delivered map[wire.NodeID]int
	hop       map[wire.NodeID]uint16
}

func newFifoNet(t *testing.T, cfg Config, adj map[wire.NodeID][]wire.NodeID, seed uint64) *fifoNet {
	t.Helper()
	n := &fifoNet{cores: map[wire.NodeID]Protocol{}, delivered: map[wire.NodeID]int{}, hop: map[wire.NodeID]uint16{}}
	for id := wire.NodeID(1); int(id) <= len(adj); id++ {
		c, err := New(cfg, id, rand.New(rand.NewPCG(seed, uint64(id))))
		if err != nil {
			t.Fatal(err)
		}
		var out Output
		for _, p := range adj[id] {
			c.PeerUp(0, p, &out)
		}
		n.cores[id] = c
	}
	return n
}

func (n *fifoNet) publish(id wire.NodeID, body string) *wire.Message {
	var out Output
	m, _ := n.cores[id].Publish(0, []byte(body), &out)
	n.hop[id] = 0
	n.take(id, &out)
	n.run()
	return m
}

func (n *fifoNet) take(from wire.NodeID, out *Output) {
	for i := range out.Sends {
		if !n.egress.Pass(1, from, &out.Sends[i]) {
			continue
		}
		n.queue = append(n.queue, out.Sends[i])
		n.from = append(n.from, from)
	}
	h := fnv.New64a()
	for _, e := range out.Events {
		fmt.Fprintf(h, "%d %v %d %d|", from, e.Kind, e.From, e.Msg.Hop)
		if e.Kind == EventDelivered {
			n.delivered[from]++
			n.hop[from] = e.Msg.Hop
		}
	}
	for _, s := range out.Sends {
		fmt.Fprintf(h, ">%d", s.To)
	}
	n.trace = n.trace*31 + h.Sum64()
}

func (n *fifoNet) run() {
	var out Output
	for len(n.queue) > 0 {
		s, from := n.queue[0], n.from[0]
		n.queue, n.from = n.queue[1:], n.from[1:]
		out.Reset()
		n.cores[s.To].Step(1, from, s.Frame, &out)
		n.take(s.To, &out)
	}
}

// randomGraph links node i to k random others, both ways.
func randomGraph(nodes, k int, rng *rand.Rand) map[wire.NodeID][]wire.NodeID {
	adj := map[wire.NodeID][]wire.NodeID{}
	seen := map[[2]wire.NodeID]bool{}
	link := func(a, b wire.NodeID) {
		if a == b || seen[[2]wire.NodeID{a, b}] {
			return
		}
		seen[[2]wire.NodeID{a, b}], seen[[2]wire.NodeID{b, a}] = true, true
		adj[a], adj[b] = append(adj[a], b), append(adj[b], a)
	}
	for i := 1; i <= nodes; i++ {
		adj[wire.NodeID(i)] = adj[wire.NodeID(i)]
		for range k {
			link(wire.NodeID(i), wire.NodeID(1+rng.IntN(nodes)))
		}
	}
	return adj
}

func bfs(adj map[wire.NodeID][]wire.NodeID, src wire.NodeID) map[wire.NodeID]int {
	dist := map[wire.NodeID]int{src: 0}
	q := []wire.NodeID{src}
	for len(q) > 0 {
		u := q[0]
		q = q[1:]
		for _, v := range adj[u] {
			if _, ok := dist[v]; !ok {
				dist[v] = dist[u] + 1
				q = append(q, v)
			}
		}
	}
	return dist
}

func TestFloodReachesEveryNodeAlongShortestPaths(t *testing.T) {
	const nodes = 300
	adj := randomGraph(nodes, 3, rand.New(rand.NewPCG(7, 7)))
	net := newFifoNet(t, unsignedConfig(), adj, 1)
	for msg := range 5 {
		src := wire.NodeID(1 + msg*37)
		net.delivered = map[wire.NodeID]int{}
		net.publish(src, fmt.Sprint("m", msg))
		dist := bfs(adj, src)
		if len(dist) != nodes {
			t.Fatalf("test graph is not connected: %d of %d reachable", len(dist), nodes)
		}
		for id := wire.NodeID(1); id <= nodes; id++ {
			if id == src {
				continue
			}
			if net.delivered[id] != 1 {
				t.Fatalf("message %d: node %d delivered %d times, want exactly 1", msg, id, net.delivered[id])
			}
			if int(net.hop[id]) != dist[id] {
				t.Errorf("message %d: node %d at hop %d, BFS distance %d", msg, id, net.hop[id], dist[id])
			}
		}
	}
}

func TestSameSeedSameRun(t *testing.T) {
	cfg := unsignedConfig()
	cfg.Strategy, cfg.Fanout = Fanout, 3
	adj := randomGraph(200, 4, rand.New(rand.NewPCG(3, 3)))
	run := func(seed uint64) uint64 {
		net := newFifoNet(t, cfg, adj, seed)
		for i := range 10 {
			net.publish(wire.NodeID(1+i*13), fmt.Sprint(i))
		}
		return net.trace
	}
	a, b, c := run(1), run(1), run(2)
	if a != b {
		t.Errorf("same seed gave different runs: %x vs %x", a, b)
	}
	if a == c {
		t.Errorf("different seeds gave identical fanout runs; randomness is not reaching the router")
	}
}

// TestEgressSeesEverySend: the test network's egress hook sees every send
// of every node, and a send it drops never arrives: cutting the links out
// of one node of a line stops a flood there.
func TestEgressSeesEverySend(t *testing.T) {
	// A line 1-2-3-4-5.
	adj := map[wire.NodeID][]wire.NodeID{1: {2}, 2: {1, 3}, 3: {2, 4}, 4: {3, 5}, 5: {4}}
	net := newFifoNet(t, unsignedConfig(), adj, 1)
	sends := map[wire.NodeID]int{}
	net.egress = func(_ int64, from wire.NodeID, s *Send) bool {
		sends[from]++
		return !(from == 3 && s.To == 4)
	}
	net.publish(1, "x")
	if want := map[wire.NodeID]int{1: 1, 2: 1, 3: 1}; !maps.Equal(sends, want) {
		t.Errorf("egress saw sends %v, want %v", sends, want)
	}
	for id, want := range map[wire.NodeID]int{2: 1, 3: 1, 4: 0, 5: 0} {
		if net.delivered[id] != want {
			t.Errorf("node %d delivered %d, want %d", id, net.delivered[id], want)
		}
	}
}
