package sim

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gossipmesh/gossip"
)

// observed runs cfg on graphs topologies with a tracer and run charts
// watching, and renders everything a user can get out of it: the report
// in text, JSON and CSV, every trace event and both charts.
func observed(t *testing.T, cfg Config, graphs int) []byte {
	t.Helper()
	tr := NewTracer(1 << 22)
	rc := NewRunCharts()
	r, err := RunObserved(context.Background(), cfg, graphs, nil, tr.Observer().Also(rc.Observer()))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	out := render(t, r)
	for _, e := range tr.Events() {
		out = fmt.Appendf(out, "%d %d %d %d %d %d\n", e.At, e.Broadcast, e.Node, e.From, e.Hop, e.Kind)
	}
	cov, hops := rc.Charts(r)
	var b bytes.Buffer
	for _, ch := range []*Chart{cov, hops} {
		if err := ch.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
	}
	return append(out, b.Bytes()...)
}

// TestWorkersSameOutput: the number of workers never changes a run's
// output, in any format, for several seeds and modes, pooled graphs
// included.
func TestWorkersSameOutput(t *testing.T) {
	modes := map[string]func(*Config){
		"flood": func(c *Config) {},
		"kout fanout lossy": func(c *Config) {
			c.Topology, c.Degree = TopologyKOut, 4
			c.Gossip.Strategy, c.Gossip.Fanout = gossip.Fanout, 3
			c.Loss = 0.1
		},
		"lognormal": func(c *Config) {
			c.Latency = Latency{Kind: LatencyLogNormal, Median: 40 * time.Millisecond, Sigma: 0.7}
		},
		"regions": func(c *Config) {
			c.Regions = &Regions{Names: []string{"a", "b", "c"}, Delay: [][]time.Duration{
				{time.Millisecond, 80 * time.Millisecond, 150 * time.Millisecond},
				{80 * time.Millisecond, time.Millisecond, 120 * time.Millisecond},
				{150 * time.Millisecond, 120 * time.Millisecond, time.Millisecond}}}
		},
		"crash at 0": func(c *Config) { c.Crash = Crash{Fraction: 0.2} },
		// Dependent modes run on one goroutine whatever Workers says.
		"back to back": func(c *Config) { c.Gap = 0 },
		"crash later":  func(c *Config) { c.Crash = Crash{Fraction: 0.1, At: 30 * time.Millisecond} },
		"plumtree":     func(c *Config) { c.Gossip.Strategy = gossip.Plumtree },
	}
	for name, mod := range modes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= 3; seed++ {
				cfg := small(TopologyUndirected, 8)
				cfg.Nodes = 200
				cfg.Broadcasts = 9
				cfg.Seed = seed
				mod(&cfg)
				cfg.Workers = 1
				want := observed(t, cfg, 2)
				for _, w := range []int{2, 3} {
					cfg.Workers = w
					if got := observed(t, cfg, 2); !bytes.Equal(got, want) {
						t.Fatalf("seed %d: %d workers give other output than one:\n%s\n---\n%s", seed, w, got, want)
					}
				}
			}
		})
	}
}

// TestParallelPathTaken: with two workers and independent broadcasts, two
// goroutines run trials at the same time. Worker 0 waits in its first
// trial until worker 1 has started one, which a run on one goroutine
// never does. The output is still that of one worker.
func TestParallelPathTaken(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 300
	cfg.Broadcasts = 8
	cfg.Workers = 2
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	other := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	ran := map[int]int{} // worker → trials
	s.testTrialStart = func(worker, k int) {
		mu.Lock()
		ran[worker]++
		first := ran[worker] == 1
		mu.Unlock()
		if worker != 0 {
			once.Do(func() { close(other) })
			return
		}
		if first {
			select {
			case <-other:
			case <-time.After(time.Minute): // a liveness guard, not a speed check
			}
		}
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s.workersUsed != 2 || ran[0] == 0 || ran[1] == 0 || ran[0]+ran[1] != cfg.Broadcasts {
		t.Fatalf("%d workers used, trials per worker %v: want 2 workers sharing %d trials", s.workersUsed, ran, cfg.Broadcasts)
	}
	cfg.Workers = 1
	if !bytes.Equal(render(t, r), render(t, run(t, cfg))) {
		t.Fatal("two workers report otherwise than one")
	}
}

// TestDependentModesUseOneWorker: broadcasts that are not independent
// trials (state carried from one to the next) run on one goroutine.
func TestDependentModesUseOneWorker(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"gap below the seen ttl": func(c *Config) { c.Gap = c.Gossip.SeenTTL - 1 },
		"interval":               func(c *Config) { c.Interval = 50 * time.Millisecond },
		"crash after 0":          func(c *Config) { c.Crash = Crash{Fraction: 0.1, At: time.Millisecond} },
		"plumtree":               func(c *Config) { c.Gossip.Strategy = gossip.Plumtree },
	} {
		cfg := small(TopologyUndirected, 8)
		cfg.Nodes = 200
		cfg.Workers = 4
		mod(&cfg)
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.trials || s.workersUsed != 0 {
			t.Errorf("%s: ran as independent trials on %d workers", name, s.workersUsed)
		}
	}
}

// TestTrialDependsOnItsIndexOnly: broadcast k of a run is the same
// whatever the number of broadcasts after it, and the first broadcast of a
// run is the one-broadcast run of the same seed (the sources a run has
// always started with), bar nothing.
func TestTrialDependsOnItsIndexOnly(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 300
	cfg.Broadcasts = 1
	one := run(t, cfg)
	cfg.Broadcasts = 9
	cfg.Workers = 2
	nine := run(t, cfg)
	cfg.Broadcasts = 5
	five := run(t, cfg)
	if fmt.Sprint(one.PerBroadcast[0]) != fmt.Sprint(nine.PerBroadcast[0]) {
		t.Fatalf("first broadcast of nine differs from a run of one:\n%+v\n%+v", nine.PerBroadcast[0], one.PerBroadcast[0])
	}
	for k := range five.PerBroadcast {
		if fmt.Sprint(five.PerBroadcast[k]) != fmt.Sprint(nine.PerBroadcast[k]) {
			t.Fatalf("broadcast %d differs between runs of 5 and 9", k)
		}
	}
	if five.PerBroadcast[1].Publisher == five.PerBroadcast[2].Publisher && five.PerBroadcast[2].Publisher == five.PerBroadcast[3].Publisher {
		t.Fatal("trials draw the same publisher: their sources are not their own")
	}
}

// TestTrialWorkersCapped: a run uses at most one worker per broadcast and
// at most MaxParallelNodes/N workers (the memory rule).
func TestTrialWorkersCapped(t *testing.T) {
	for _, tc := range []struct{ want, broadcasts, n, got int }{
		{2, 1000, 10_000, 2},
		{8, 3, 10_000, 3},
		{2, 1000, 1_000_000, 1},
		{4, 1000, 400_000, 2},
		{4, 1000, 600_000, 1},
		{1, 1000, 100, 1},
	} {
		s := &Sim{cfg: Config{Workers: tc.want, Broadcasts: tc.broadcasts}, n: tc.n}
		if got := s.workers(); got != tc.got {
			t.Errorf("%d workers wanted, %d broadcasts, %d nodes: %d workers, want %d", tc.want, tc.broadcasts, tc.n, got, tc.got)
		}
	}
}

// TestParallelCancelFromHook: a hook that cancels the run in its third
// broadcast leaves the two before it, whole, as on one goroutine.
func TestParallelCancelFromHook(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 300
	cfg.Broadcasts = 20
	cfg.Workers = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.OnDeliver(func(d Delivery) {
		if d.Broadcast == 2 {
			cancel()
		}
	})
	r, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Partial || r.Broadcasts != 2 {
		t.Fatalf("partial %v with %d broadcasts, want the 2 before the cancel", r.Partial, r.Broadcasts)
	}
	cfg.Broadcasts = 2
	cfg.Workers = 1
	whole := run(t, cfg)
	if fmt.Sprint(whole.PerBroadcast) != fmt.Sprint(r.PerBroadcast) || whole.Events != r.Events {
		t.Fatal("the two broadcasts kept differ from a run of two")
	}
}

func TestValidateWorkers(t *testing.T) {
	cfg := DefaultConfig()
	for _, w := range []int{-1, MaxWorkers + 1} {
		cfg.Workers = w
		if err := cfg.Validate(); err == nil {
			t.Errorf("workers %d accepted", w)
		}
	}
	for _, w := range []int{0, 1, MaxWorkers} {
		cfg.Workers = w
		if err := cfg.Validate(); err != nil {
			t.Errorf("workers %d: %v", w, err)
		}
	}
}

// TestCrashAtZeroTrials: a crash at time 0 takes the same nodes down for
// every trial, the ones a run of one broadcast takes down, on any number
// of workers.
func TestCrashAtZeroTrials(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	cfg.Nodes = 300
	cfg.Crash = Crash{Fraction: 0.3}
	cfg.Broadcasts = 1
	var want []int
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.OnCrash(func(node int, _ int64) { want = append(want, node) })
	one, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Broadcasts = 12
	for _, w := range []int{1, 2} {
		cfg.Workers = w
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		s.OnCrash(func(node int, _ int64) { got = append(got, node) })
		r, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !s.trials || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%d workers: trials %v, crashed %v, want %v", w, s.trials, got, want)
		}
		if fmt.Sprint(r.PerBroadcast[0]) != fmt.Sprint(one.PerBroadcast[0]) {
			t.Fatalf("%d workers: first broadcast differs from a run of one", w)
		}
		for _, b := range r.PerBroadcast {
			if b.Live != cfg.Nodes-len(want) || b.Reached > b.Live || b.ToCrashed == 0 {
				t.Fatalf("%d workers: broadcast %d: live %d, reached %d, %d copies to crashed nodes; %d nodes are down", w, b.Index, b.Live, b.Reached, b.ToCrashed, len(want))
			}
		}
	}
}

// TestStatelessProbe: flood and fanout keep nothing between broadcasts;
// plumtree keeps its tree and its store.
func TestStatelessProbe(t *testing.T) {
	for strategy, want := range map[gossip.Strategy]bool{gossip.Flood: true, gossip.Fanout: true, gossip.Plumtree: false} {
		cfg := gossip.DefaultConfig()
		cfg.Strategy = strategy
		cfg.Auth = gossip.NewModelAuth(1)
		sh, err := gossip.Share(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := stateless(sh, idsOf(1, 2, 3)); got != want {
			t.Errorf("%s: stateless %v, want %v", strategy, got, want)
		}
	}
}
