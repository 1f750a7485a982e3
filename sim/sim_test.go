package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"gossipmesh/gossip"
)

// small returns a quick config: 500 nodes, a few broadcasts.
func small(topology string, degree int) Config {
	cfg := DefaultConfig()
	cfg.Nodes = 500
	cfg.Topology = topology
	cfg.Degree = degree
	cfg.Broadcasts = 3
	return cfg
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func render(t *testing.T, r *Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterminism(t *testing.T) {
	for _, cfg := range []Config{
		small(TopologyUndirected, 8),
		func() Config {
			c := small(TopologyKOut, 4)
			c.Gossip.Strategy = gossip.Fanout
			c.Gossip.Fanout = 3
			c.Loss = 0.1
			c.Crash = Crash{Fraction: 0.1, At: 50 * time.Millisecond}
			c.Latency = Latency{Kind: LatencyLogNormal, Median: 40 * time.Millisecond, Sigma: 0.7}
			c.Gap = 0
			return c
		}(),
	} {
		a, b := render(t, run(t, cfg)), render(t, run(t, cfg))
		if !bytes.Equal(a, b) {
			t.Fatalf("same config, different output:\n%s\n---\n%s", a, b)
		}
		cfg.Seed++
		if c := render(t, run(t, cfg)); bytes.Equal(a, c) {
			t.Fatalf("seeds %d and %d gave the same output", cfg.Seed-1, cfg.Seed)
		}
	}
}

// TestInvariants checks, over many seeds and setups, what must hold
// whatever the randomness: every node delivers a broadcast at most once;
// no hop exceeds the last delivery hop; every copy sent is accounted for
// (a first receipt, a duplicate, lost, or at a crashed node); coverage
// grows with time.
func TestInvariants(t *testing.T) {
	setups := map[string]func(*Config){
		"undirected flood": func(c *Config) {},
		"kout flood":       func(c *Config) { c.Topology, c.Degree = TopologyKOut, 3 },
		"regular fanout": func(c *Config) {
			c.Topology, c.Degree = TopologyRegular, 6
			c.Gossip.Strategy, c.Gossip.Fanout = gossip.Fanout, 2
		},
		"lossy crashy": func(c *Config) {
			c.Loss = 0.3
			c.Crash = Crash{Fraction: 0.2, At: 30 * time.Millisecond}
		},
		"back to back": func(c *Config) { c.Gap = 0; c.Broadcasts = 6 },
		"regions": func(c *Config) {
			c.Regions = &Regions{Names: []string{"a", "b"}, Delay: [][]time.Duration{{time.Millisecond, 80 * time.Millisecond}, {80 * time.Millisecond, time.Millisecond}}}
			c.Latency = Latency{Kind: LatencyConstant}
		},
	}
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for name, mod := range setups {
		t.Run(name, func(t *testing.T) {
			for seed := 1; seed <= seeds; seed++ {
				cfg := small(TopologyUndirected, 6)
				cfg.Nodes = 300
				cfg.Seed = uint64(seed)
				mod(&cfg)
				s, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				n := s.Graph().N()
				seen := make([][]bool, cfg.Broadcasts)
				hops := make([][]int, cfg.Broadcasts)
				last := make([]int64, cfg.Broadcasts)
				for i := range seen {
					seen[i] = make([]bool, n)
				}
				s.OnDeliver(func(d Delivery) {
					if seen[d.Broadcast][d.Node] {
						t.Fatalf("seed %d: node %d delivered broadcast %d twice", seed, d.Node, d.Broadcast)
					}
					if d.At < last[d.Broadcast] {
						t.Fatalf("seed %d: deliveries out of time order", seed)
					}
					last[d.Broadcast] = d.At
					seen[d.Broadcast][d.Node] = true
					hops[d.Broadcast] = append(hops[d.Broadcast], d.Hop)
				})
				r, err := s.Run(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for i, b := range r.PerBroadcast {
					if len(hops[i]) != b.Reached {
						t.Fatalf("seed %d: %d deliveries observed, report says %d", seed, len(hops[i]), b.Reached)
					}
					if m := slices.Max(hops[i]); m != b.LastDeliveryHop {
						t.Fatalf("seed %d: largest hop %d, last delivery hop %d", seed, m, b.LastDeliveryHop)
					}
					sum := 0
					for _, c := range b.ReachedByHop {
						sum += c
					}
					if sum != b.Reached {
						t.Fatalf("seed %d: coverage by hop sums to %d, reached %d", seed, sum, b.Reached)
					}
					if got := int64(b.Reached-1) + b.Duplicates + b.Lost + b.ToCrashed + b.Rejected; got != b.Messages {
						t.Fatalf("seed %d: %d copies sent but %d accounted for: %+v", seed, b.Messages, got, b)
					}
					if b.Rejected != 0 {
						t.Fatalf("seed %d: the core rejected %d copies", seed, b.Rejected)
					}
					prev := 0.0
					for _, v := range b.TimeToCoverageMS {
						if math.IsNaN(v) {
							continue
						}
						if v < prev {
							t.Fatalf("seed %d: coverage times not increasing: %v", seed, b.TimeToCoverageMS)
						}
						prev = v
					}
					if b.Reliability < 1 != math.IsNaN(b.TimeToCoverageMS[3]) {
						t.Fatalf("seed %d: reliability %v but time to 100%% %v", seed, b.Reliability, b.TimeToCoverageMS[3])
					}
				}
			}
		})
	}
}

// TestFloodIsBFS: on a connected undirected graph, flood with constant
// latency reaches every node, each at its BFS distance from the publisher.
func TestFloodIsBFS(t *testing.T) {
	f, err := os.Open("testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ring, err := LoadGraph(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		graph *Graph
		cfg   Config
	}{
		{"undirected", nil, small(TopologyUndirected, 6)},
		{"regular", nil, small(TopologyRegular, 3)},
		{"status file", ring, small("testdata/status.json", 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				cfg := tc.cfg
				cfg.Graph = tc.graph
				cfg.Seed = seed
				cfg.Latency = Latency{Kind: LatencyConstant, Min: 20 * time.Millisecond}
				s, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				g := s.Graph()
				if d := g.BFS(0); slices.Contains(d, -1) {
					t.Skipf("seed %d: graph not connected", seed)
				}
				got := map[int]map[int]int{}
				s.OnDeliver(func(d Delivery) {
					if got[d.Broadcast] == nil {
						got[d.Broadcast] = map[int]int{}
					}
					got[d.Broadcast][d.Node] = d.Hop
				})
				r, err := s.Run(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range r.PerBroadcast {
					if b.Reliability != 1 {
						t.Fatalf("seed %d: reliability %v, want 1", seed, b.Reliability)
					}
					dist := g.BFS(b.Publisher)
					for node, d := range dist {
						if got[b.Index][node] != d {
							t.Fatalf("seed %d: node %d at hop %d, BFS distance %d", seed, node, got[b.Index][node], d)
						}
					}
				}
			}
		})
	}
}

// TestRingByHand: flood on a ring of six, 10 ms per link. The publisher
// sends 2 copies, its neighbours 1 each onward, the next two 1 each to the
// far node, which passes its copy on to the neighbour it did not get it
// from: 7 copies for 5 new nodes, RMR 7/5−1 = 0.4, 2 duplicates. Hops
// 1,1,2,2,3: mean 1.8. Coverage: 3 nodes (50%) at 10 ms, all 6 at 30 ms.
func TestRingByHand(t *testing.T) {
	g, err := LoadGraph(bytes.NewReader([]byte("0 1\n1 2\n2 3\n3 4\n4 5\n5 0\n")))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Graph = g
	cfg.Topology = "ring6"
	cfg.Latency = Latency{Kind: LatencyConstant, Min: 10 * time.Millisecond}
	cfg.Broadcasts = 4
	r := run(t, cfg)
	for _, b := range r.PerBroadcast {
		want := Broadcast{
			Index: b.Index, Publisher: b.Publisher, PublishedAtMS: b.PublishedAtMS,
			Reached: 6, Reliability: 1, Live: 6, ReachedLive: 6, ReliabilityLive: 1, MeanHop: 1.8, LastDeliveryHop: 3, RMR: 0.4,
			TimeToCoverageMS: Coverage{10, 30, 30, 30}, ReachedByHop: []int{1, 2, 2, 1},
			Messages: 7, Duplicates: 2,
		}
		if fmt.Sprint(b) != fmt.Sprint(want) {
			t.Errorf("broadcast %d:\n got %+v\nwant %+v", b.Index, b, want)
		}
	}
	if r.Reliability != 1 || r.MeanHop != 1.8 || r.RMR != 0.4 || r.AllReached != 1 {
		t.Errorf("summary: %+v", r)
	}
}

// TestKOutOneWay: one-way links reach only what the out-links reach. In a
// directed 3-cycle with a tail (3 → 0, nobody links to 3), a publisher on
// the cycle never reaches node 3.
func TestKOutOneWay(t *testing.T) {
	g := &Graph{Off: []int{0, 1, 2, 3, 4}, Adj: idsOf(1, 2, 0, 0), Directed: true}
	cfg := DefaultConfig()
	cfg.Graph = g
	cfg.Latency = Latency{Kind: LatencyConstant, Min: time.Millisecond}
	cfg.Broadcasts = 20
	r := run(t, cfg)
	for _, b := range r.PerBroadcast {
		want := 3
		if b.Publisher == 3 {
			want = 4
		}
		if b.Reached != want {
			t.Errorf("publisher %d reached %d nodes, want %d", b.Publisher, b.Reached, want)
		}
	}
}

func TestCancelGivesPartialReport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := New(small(TopologyUndirected, 8))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Partial || r.Broadcasts != 0 || len(r.PerBroadcast) != 0 || r.Events != 0 {
		t.Fatalf("want a partial report without the broadcast that was cut off, got %+v", r)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil || !bytes.Contains(b.Bytes(), []byte("PARTIAL")) {
		t.Fatalf("text report does not say it is partial (%v):\n%s", err, b.String())
	}
}

func TestCrashAndLoss(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Crash = Crash{Fraction: 0.5}
	r := run(t, cfg)
	for _, b := range r.PerBroadcast {
		if b.Reached > cfg.Nodes/2 || b.ToCrashed == 0 {
			t.Fatalf("half the nodes crashed at 0, yet %+v", b)
		}
	}
	cfg = small(TopologyUndirected, 8)
	cfg.Loss = 0.5
	r = run(t, cfg)
	for _, b := range r.PerBroadcast {
		if f := float64(b.Lost) / float64(b.Messages); f < 0.4 || f > 0.6 {
			t.Fatalf("loss 0.5 dropped %.2f of the copies", f)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"nodes":     func(c *Config) { c.Nodes = 1 },
		"degree":    func(c *Config) { c.Degree = 0 },
		"too dense": func(c *Config) { c.Nodes, c.Degree = 5, 5 },
		"regular":   func(c *Config) { c.Topology, c.Nodes, c.Degree = TopologyRegular, 5, 3 },
		"topology":  func(c *Config) { c.Topology = "nope.txt" },
		"loss":      func(c *Config) { c.Loss = 1 },
		"crash":     func(c *Config) { c.Crash.Fraction = -0.1 },
		"bcasts":    func(c *Config) { c.Broadcasts = 0 },
		"gossip":    func(c *Config) { c.Gossip.Fanout = 0 },
		"latency":   func(c *Config) { c.Latency = Latency{Kind: LatencyUniform, Min: 2, Max: 1} },
		"gap":       func(c *Config) { c.Gap = -1 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}

func TestParseLatency(t *testing.T) {
	for in, want := range map[string]string{
		"100ms":               "100ms",
		"0":                   "0s",
		"50ms-200ms":          "50ms-200ms",
		"lognormal:100ms,0.5": "lognormal:100ms,0.5",
		" 1s - 2s ":           "1s-2s",
	} {
		l, err := ParseLatency(in)
		if err != nil || l.String() != want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %s", in, l, err, want)
		}
	}
	for _, in := range []string{"", "fast", "200ms-100ms", "-5ms", "lognormal:100ms", "lognormal:0s,1", "lognormal:1s,x"} {
		if _, err := ParseLatency(in); err == nil {
			t.Errorf("ParseLatency(%q) accepted", in)
		}
	}
}

func TestParseCrash(t *testing.T) {
	c, err := ParseCrash("0.1@500ms")
	if err != nil || c != (Crash{0.1, 500 * time.Millisecond}) || c.String() != "0.1@500ms" {
		t.Errorf("ParseCrash: %+v, %v", c, err)
	}
	if c, err := ParseCrash("0.25"); err != nil || c != (Crash{Fraction: 0.25}) {
		t.Errorf("ParseCrash(0.25): %+v, %v", c, err)
	}
	for _, in := range []string{"x", "1.5", "0.1@soon", "0.1@-1s"} {
		if _, err := ParseCrash(in); err == nil {
			t.Errorf("ParseCrash(%q) accepted", in)
		}
	}
}

func TestParseRegions(t *testing.T) {
	r, err := ParseRegions("# matrix\nus 10ms 80ms\n\neu 80ms 10ms\n")
	if err != nil || len(r.Names) != 2 || r.Delay[0][1] != 80*time.Millisecond {
		t.Fatalf("ParseRegions: %+v, %v", r, err)
	}
	for _, in := range []string{"", "us 10ms 80ms\n", "us 10ms\neu 10ms x\n", "us -1ms\n"} {
		if _, err := ParseRegions(in); err == nil {
			t.Errorf("ParseRegions(%q) accepted", in)
		}
	}
}
