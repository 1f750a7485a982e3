package sim

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"gossipmesh/wire"
)

func idsOf(idx ...int) []wire.NodeID {
	out := make([]wire.NodeID, len(idx))
	for i, v := range idx {
		out[i] = wire.NodeID(v + 1)
	}
	return out
}

// checkSimple fails unless every peer list is free of the node itself and
// of repeats, and (for undirected graphs) every link is listed both ways.
func checkSimple(t *testing.T, g *Graph) {
	t.Helper()
	n := g.N()
	for i := 0; i < n; i++ {
		p := g.Peers(i)
		if cap(p) != len(p) {
			t.Fatalf("node %d: peer window has spare capacity, appends would clobber node %d", i, i+1)
		}
		seen := map[wire.NodeID]bool{}
		for _, q := range p {
			if q < 1 || int(q) > n || int(q) == i+1 || seen[q] {
				t.Fatalf("node %d: bad peer list %v", i, p)
			}
			seen[q] = true
			if !g.Directed && !slices.Contains(g.Peers(int(q)-1), wire.NodeID(i+1)) {
				t.Fatalf("link %d-%d listed one way only", i, q-1)
			}
		}
	}
}

func TestKOut(t *testing.T) {
	g := KOut(200, 8, rand.New(rand.NewPCG(1, 2)))
	checkSimple(t, g)
	for i := 0; i < g.N(); i++ {
		if len(g.Peers(i)) != 8 {
			t.Fatalf("node %d has %d out-links", i, len(g.Peers(i)))
		}
	}
}

func TestUndirected(t *testing.T) {
	for _, d := range []int{1, 7, 16} {
		g := Undirected(1000, d, rand.New(rand.NewPCG(3, 4)))
		checkSimple(t, g)
		if m := g.MeanDegree(); m < float64(d)*0.95 || m > float64(d)*1.05 {
			t.Errorf("degree %d: mean degree %.2f", d, m)
		}
	}
}

func TestRegular(t *testing.T) {
	for _, tc := range [][2]int{{10, 3}, {100, 8}, {2000, 16}, {7, 6}} {
		g, err := Regular(tc[0], tc[1], rand.New(rand.NewPCG(5, 6)))
		if err != nil {
			t.Fatal(err)
		}
		checkSimple(t, g)
		for i := 0; i < g.N(); i++ {
			if len(g.Peers(i)) != tc[1] {
				t.Fatalf("%v: node %d has degree %d", tc, i, len(g.Peers(i)))
			}
		}
	}
	if _, err := Regular(5, 3, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("built a 3-regular graph on 5 nodes")
	}
}

func TestLoadGraph(t *testing.T) {
	for _, name := range []string{"testdata/ring6.txt", "testdata/status.json"} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		g, err := LoadGraph(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkSimple(t, g)
		if g.N() != 6 || len(g.Adj) != 12 {
			t.Fatalf("%s: %d nodes, %d arcs; want a ring of 6", name, g.N(), len(g.Adj))
		}
		if d := g.BFS(0); !slices.Equal(d, []int{0, 1, 2, 3, 2, 1}) {
			t.Fatalf("%s: BFS %v", name, d)
		}
	}
	for _, bad := range []string{"", "0 0\n", "0 1 2\n", "a b\n", "0 -1\n", `{"nodes":[{"peers":[1]}]}`, `{"nodes":`, "5\n"} {
		if _, err := LoadGraph(strings.NewReader(bad)); err == nil {
			t.Errorf("LoadGraph(%q) accepted", bad)
		}
	}
}

// TestQueueOrder pushes random events (near, same-bucket and far future)
// while popping, and checks that they come out in (at, seq) order.
func TestQueueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	q := newQueue(100_000, 1_000)
	var now int64
	var seq uint32
	var out []event
	pending := 0
	for step := 0; step < 200_000; step++ {
		if pending == 0 || rng.IntN(3) > 0 {
			var d int64
			switch rng.IntN(4) {
			case 0:
				d = rng.Int64N(1_000) // same or next bucket
			case 1:
				d = 0 // a tie
			case 2:
				d = rng.Int64N(100_000)
			default:
				d = rng.Int64N(10_000_000) // beyond the ring
			}
			seq++
			q.push(event{at: now + d, seq: seq})
			pending++
			continue
		}
		e := q.pop()
		pending--
		if e.at < now {
			t.Fatalf("popped an event at %d after time %d", e.at, now)
		}
		now = e.at
		out = append(out, e)
	}
	for pending > 0 {
		out = append(out, q.pop())
		pending--
	}
	if q.len() != 0 {
		t.Fatalf("queue holds %d events after draining", q.len())
	}
	for i := 1; i < len(out); i++ {
		if out[i].before(&out[i-1]) {
			t.Fatalf("event %d (%+v) came after %+v", i, out[i], out[i-1])
		}
	}
}
