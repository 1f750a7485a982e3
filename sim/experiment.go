package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"gossipmesh/gossip"
)

// Named experiments.
const (
	// ExperimentLesson tests "with k=8 a 10k-node net saturates in ~4
	// hops": hops and reliability for one-way k-out and undirected links
	// beside log_k N and e^(−e^(−c)), and P(every node reached) against k.
	ExperimentLesson = "lesson"
	// ExperimentSlot tests "propagation delay is why blocks can't come every
	// 100ms": time to 50/90/99/100% coverage with 50–200 ms links.
	ExperimentSlot = "slot"
)

// Experiments lists the named experiments.
func Experiments() []string {
	return []string{ExperimentLesson, ExperimentSlot, ExperimentPlumtree, ExperimentChurn, ExperimentByzantine, ExperimentTestbed}
}

// ExperimentConfig sizes a named experiment. Zero fields take the
// experiment's defaults, which are the figures in docs/sim.md.
type ExperimentConfig struct {
	// Nodes is N. Default 10,000, the lesson's N.
	Nodes int
	// Graphs is the number of independent topologies per setup. Default
	// 20 (lesson table 1 and slot), 100 (lesson table 2, one broadcast
	// each: P(every node reached) with one-way links is mostly decided by
	// the graph, so trials must be graphs, not publishers) and 1
	// (plumtree: each graph runs every crash size for both strategies).
	Graphs int
	// Broadcasts per topology. Default 5 (lesson table 1) and 5 (slot);
	// for plumtree, the broadcasts after the crash, default 15.
	Broadcasts int
	// Seed is the first topology's seed. Default 1.
	Seed uint64
	// ChurnRate and ChurnDuration are the churn experiment's: the
	// fraction of the nodes replaced per second, and for how long.
	// Default DefaultChurnRate (1%) and DefaultChurnDuration (60 s).
	ChurnRate     float64
	ChurnDuration time.Duration
	// Workers is how many goroutines run the churn experiment's runs (one
	// per strategy and overlay) and how many scenarios the byzantine and
	// testbed experiments run at once; it changes only the wall time.
	// Default 0: GOMAXPROCS.
	Workers int
	// ActiveLow and ActiveHigh are the churn experiment's degree bounds.
	// Default the membership package's (3 and 8).
	ActiveLow, ActiveHigh int
	// Progress, if set, gets the fraction done.
	Progress func(float64)
	// Testbed scales the testbed experiment (zero fields: the paper's
	// size); Nodes, when set, is its honest nodes.
	Testbed TestbedSize
	// Kinds, when set, limits the byzantine experiment to these kinds of
	// adversary (of ByzantineKinds), beside the row without any. Default
	// all.
	Kinds []string
}

func (e ExperimentConfig) withDefaults() ExperimentConfig {
	if e.Nodes == 0 {
		e.Nodes = 10_000
	}
	if e.Seed == 0 {
		e.Seed = 1
	}
	return e
}

// ExperimentRow is one setup of an experiment with its measurement and
// the theory beside it.
type ExperimentRow struct {
	Experiment string `json:"experiment"`
	Setup      string `json:"setup"`
	// K is the k of the theory columns (peers or fanout per node).
	K int `json:"k"`
	// TheoryHops is log_k N.
	TheoryHops float64 `json:"theory_log_k_n"`
	// TheoryAllReached is e^(−e^(−c)) with c = k − ln N, for setups where
	// every node passes the message to k random members; null otherwise.
	TheoryAllReached *float64 `json:"theory_p_all_reached"`
	// CoverageAt is the mean fraction of nodes reached within each time
	// after publish (slot experiment).
	CoverageAt map[string]float64 `json:"coverage_at,omitempty"`
	Report     *Report            `json:"report"`
}

// Experiment is the result of a named experiment.
type Experiment struct {
	Name   string
	Config ExperimentConfig
	Tables [][]ExperimentRow
	// Plumtree is the plumtree experiment's result (its rows do not fit
	// ExperimentRow); nil for the others.
	Plumtree *PlumtreeExperiment
	// Churn is the churn experiment's result; nil for the others.
	Churn *ChurnExperiment
	// Byzantine is the byzantine or testbed experiment's result; nil for
	// the others.
	Byzantine *ByzantineExperiment
	// Partial marks an experiment stopped early.
	Partial bool
}

type setup struct {
	name       string
	k          int
	randomPush bool // gossip to k random members: the e^(−e^(−c)) setting
	mod        func(*Config)
}

// RunExperiment runs a named experiment. When ctx is cancelled it returns
// the rows done so far, the last one partial (or left out if it had not
// finished a broadcast).
func RunExperiment(ctx context.Context, name string, ec ExperimentConfig) (*Experiment, error) {
	switch name {
	case ExperimentByzantine:
		sizes := ByzantineSizes
		if ec.Nodes > 0 {
			sizes = []int{ec.Nodes}
		}
		return runByzantineExperiment(ctx, ec.withDefaults(), sizes)
	case ExperimentTestbed:
		size := ec.Testbed
		if ec.Nodes > 0 {
			size.Honest = ec.Nodes
		}
		return runTestbedExperiment(ctx, ec.withDefaults(), size)
	}
	ec = ec.withDefaults()
	switch name {
	case ExperimentPlumtree:
		return runPlumtreeExperiment(ctx, ec)
	case ExperimentChurn:
		return runChurnExperiment(ctx, ec)
	}
	out := &Experiment{Name: name, Config: ec}
	var tables [][]setup
	var graphs, bcasts []int
	undirected16 := func(c *Config) { c.Topology, c.Degree = TopologyUndirected, 16 }
	kout := func(k int) func(*Config) { return func(c *Config) { c.Topology, c.Degree = TopologyKOut, k } }
	fanout8 := func(c *Config) {
		undirected16(c)
		c.Gossip.Strategy, c.Gossip.Fanout = gossip.Fanout, 8
	}
	regular8 := func(c *Config) { c.Topology, c.Degree = TopologyRegular, 8 }
	switch name {
	case ExperimentLesson:
		// Constant latency: the first copy then comes along a shortest
		// path, so hops measure the graph. The last row shows what random
		// link delays do to that.
		constant := func(f func(*Config)) func(*Config) {
			return func(c *Config) { f(c); c.Latency = Latency{Kind: LatencyConstant, Min: 100 * time.Millisecond} }
		}
		tables = append(tables, []setup{
			{"k-out, one-way links (the lesson's starter), flood", 8, true, constant(kout(8))},
			{"k-out made undirected (mean degree ~16), flood", 8, false, constant(undirected16)},
			{"random 8-regular, undirected, flood", 8, false, constant(regular8)},
			{"undirected, mean degree 8, flood", 8, false, constant(func(c *Config) { c.Topology, c.Degree = TopologyUndirected, 8 })},
			{"fanout 8 over k-out made undirected", 8, false, constant(fanout8)},
			{"k-out made undirected, flood, latency 10ms-100ms", 8, false, undirected16},
		})
		graphs = append(graphs, or(ec.Graphs, 20))
		bcasts = append(bcasts, or(ec.Broadcasts, 5))
		var sweep []setup
		for k := 4; k <= 14; k++ {
			sweep = append(sweep, setup{fmt.Sprintf("k-out k=%d, one-way, flood", k), k, true, constant(kout(k))})
		}
		tables = append(tables, sweep)
		graphs = append(graphs, or(ec.Graphs, 100))
		bcasts = append(bcasts, 1)
	case ExperimentSlot:
		lat := Latency{Kind: LatencyUniform, Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}
		withLat := func(f func(*Config)) func(*Config) {
			return func(c *Config) { f(c); c.Latency = lat }
		}
		tables = append(tables, []setup{
			{"k-out made undirected (mean degree ~16), flood", 16, false, withLat(undirected16)},
			{"random 8-regular, flood", 8, false, withLat(regular8)},
			{"k-out k=8, one-way, flood", 8, false, withLat(kout(8))},
			{"fanout 8 over k-out made undirected", 8, false, withLat(fanout8)},
			{"k-out made undirected, flood, lognormal:125ms,0.5", 16, false, func(c *Config) {
				undirected16(c)
				c.Latency = Latency{Kind: LatencyLogNormal, Median: 125 * time.Millisecond, Sigma: 0.5}
			}},
		})
		graphs = append(graphs, or(ec.Graphs, 20))
		bcasts = append(bcasts, or(ec.Broadcasts, 5))
	default:
		return nil, fmt.Errorf("sim: unknown experiment %q (want one of %v)", name, Experiments())
	}
	total, done := 0, 0
	for _, t := range tables {
		total += len(t)
	}
	for ti, t := range tables {
		var rows []ExperimentRow
		for _, st := range t {
			cfg := DefaultConfig()
			cfg.Nodes = ec.Nodes
			cfg.Seed = ec.Seed
			cfg.Broadcasts = bcasts[ti]
			st.mod(&cfg)
			var p func(float64)
			if ec.Progress != nil {
				d := done
				p = func(f float64) { ec.Progress((float64(d) + f) / float64(total)) }
			}
			row := ExperimentRow{Experiment: name, Setup: st.name, K: st.k, TheoryHops: TheoryHops(ec.Nodes, st.k)}
			if st.randomPush {
				v := round(TheoryAllReached(ec.Nodes, st.k), 4)
				row.TheoryAllReached = &v
			}
			var hook func(Delivery)
			var at map[string]float64
			if name == ExperimentSlot {
				at, hook = coverageAt(ec.Nodes, cfg.Broadcasts*graphs[ti])
			}
			r, err := RunObserved(ctx, cfg, graphs[ti], p, Observer{Deliver: hook})
			if err != nil {
				return nil, fmt.Errorf("experiment %s, %s: %w", name, st.name, err)
			}
			row.Report = r
			row.CoverageAt = at
			done++
			if r.Partial {
				out.Partial = true
				if r.Broadcasts > 0 {
					rows = append(rows, row)
				}
				break
			}
			rows = append(rows, row)
		}
		out.Tables = append(out.Tables, rows)
		if out.Partial {
			break
		}
	}
	return out, nil
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// coverageTimes are the times after publish at which the slot experiment
// reports coverage: a 100 ms block time, half a second, a second, and
// Ethereum's 12 s slot.
var coverageTimes = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second, 12 * time.Second}

// coverageAt returns a map that the returned hook fills with the mean
// fraction of n nodes reached within each of coverageTimes, over trials
// broadcasts.
func coverageAt(n, trials int) (map[string]float64, func(Delivery)) {
	m := map[string]float64{}
	var pubAt int64
	return m, func(d Delivery) {
		if d.Hop == 0 {
			pubAt = d.At
		}
		for _, t := range coverageTimes {
			if d.At-pubAt <= int64(t) {
				m[t.String()] += 1 / float64(n) / float64(trials)
			}
		}
	}
}

// WriteJSON writes one line of JSON per row.
func (e *Experiment) WriteJSON(w io.Writer) error {
	if e.Plumtree != nil {
		return e.Plumtree.writeJSON(w)
	}
	if e.Churn != nil {
		return e.Churn.writeJSON(w)
	}
	if e.Byzantine != nil {
		return e.Byzantine.writeJSON(w)
	}
	for _, t := range e.Tables {
		for _, row := range t {
			data, err := json.Marshal(row)
			if err != nil {
				return fmt.Errorf("sim: experiment: %w", err)
			}
			if _, err := w.Write(append(data, '\n')); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteMarkdown writes the experiment's tables as Markdown, ready for
// docs/sim.md.
func (e *Experiment) WriteMarkdown(w io.Writer) error {
	ew := &errWriter{w: w}
	ec := e.Config
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	if e.Partial {
		ew.printf("**PARTIAL: stopped early; the last row is incomplete.**\n\n")
	}
	switch e.Name {
	case ExperimentByzantine, ExperimentTestbed:
		if e.Byzantine != nil {
			e.Byzantine.writeMarkdown(ew)
		}
	case ExperimentPlumtree:
		if e.Plumtree != nil {
			e.Plumtree.writeMarkdown(ew)
		}
	case ExperimentChurn:
		if e.Churn != nil {
			e.Churn.writeMarkdown(ew)
		}
	case ExperimentLesson:
		if len(e.Tables) > 0 && len(e.Tables[0]) > 0 {
			r0 := e.Tables[0][0].Report
			ew.printf("N = %d, k = 8, latency %s unless noted; %d topologies × %d broadcasts per row (seeds %d…).\n\n",
				ec.Nodes, r0.Latency, r0.Graphs, r0.Broadcasts/max(1, r0.Graphs), ec.Seed)
			ew.printf("| setup | mean peers | mean hop | log_8 N | last hop: mean (max) | reliability | P(all reached) | e^(−e^(−c)) | RMR |\n")
			ew.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, row := range e.Tables[0] {
				r := row.Report
				th := "–"
				if row.TheoryAllReached != nil {
					th = f(*row.TheoryAllReached, 3)
				}
				ew.printf("| %s | %s | %s | %s | %s (%d) | %s | %s | %s | %s |\n", row.Setup, f(r.MeanDegree, 2), f(r.MeanHop, 2),
					f(row.TheoryHops, 2), f(r.LastDeliveryHop, 2), r.MaxLastDeliveryHop, f(r.Reliability, 5),
					f(r.AllReached, 2), th, f(r.RMR, 2))
			}
		}
		if len(e.Tables) > 1 && len(e.Tables[1]) > 0 {
			r0 := e.Tables[1][0].Report
			ew.printf("\nOne-way k-out links, flood, N = %d: %d topologies per k, one broadcast each. c = k − ln N; a node nobody links to is never reached, and N·e^(−k) = e^(−c) is how many such nodes to expect.\n\n", ec.Nodes, r0.Graphs)
			ew.printf("| k | c | P(all reached) | e^(−e^(−c)) | unreached nodes (mean) | e^(−c) | mean hop | log_k N | last hop: mean (max) |\n")
			ew.printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, row := range e.Tables[1] {
				r := row.Report
				c := float64(row.K) - math.Log(float64(ec.Nodes))
				ew.printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s (%d) |\n", row.K, f(c, 2), f(r.AllReached, 2),
					f(*row.TheoryAllReached, 3), f(float64(r.Nodes)*(1-r.Reliability), 2), f(math.Exp(-c), 2),
					f(r.MeanHop, 2), f(row.TheoryHops, 2), f(r.LastDeliveryHop, 2), r.MaxLastDeliveryHop)
			}
		}
	case ExperimentSlot:
		if len(e.Tables) > 0 && len(e.Tables[0]) > 0 {
			r0 := e.Tables[0][0].Report
			ew.printf("N = %d, latency %s per message unless noted; %d topologies × %d broadcasts per row (seeds %d…). Times in ms after publish (mean over broadcasts; max in brackets).\n\n",
				ec.Nodes, r0.Latency, r0.Graphs, r0.Broadcasts/max(1, r0.Graphs), ec.Seed)
			ew.printf("| setup | t50%% | t90%% | t99%% | t100%% (max) | reached in 100 ms | in 500 ms | in 1 s | in 12 s | mean hop | last hop |\n")
			ew.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, row := range e.Tables[0] {
				r := row.Report
				c := r.TimeToCoverageMS
				maxT := math.NaN()
				for _, b := range r.PerBroadcast {
					if t := b.TimeToCoverageMS[3]; !math.IsNaN(t) && (math.IsNaN(maxT) || t > maxT) {
						maxT = t
					}
				}
				t100 := f(c[3], 0) + " (" + f(maxT, 0) + ")"
				switch {
				case r.AllReached == 0:
					t100 = "never"
				case r.AllReached < 1:
					t100 = fmt.Sprintf("%s (%s); never in %.0f%%", f(c[3], 0), f(maxT, 0), 100*(1-r.AllReached))
				}
				pct := func(d time.Duration) string { return f(100*row.CoverageAt[d.String()], 2) + "%" }
				ew.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Setup, f(c[0], 0), f(c[1], 0), f(c[2], 0), t100,
					pct(coverageTimes[0]), pct(coverageTimes[1]), pct(coverageTimes[2]), pct(coverageTimes[3]), f(r.MeanHop, 2), f(r.LastDeliveryHop, 2))
			}
		}
	}
	return ew.err
}
