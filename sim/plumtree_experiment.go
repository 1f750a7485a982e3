package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"gossipmesh/gossip"
)

// ExperimentPlumtree reproduces the evaluation of Leitão, Pereira and
// Rodrigues, "Epidemic Broadcast Trees" (SRDS 2007): let the tree settle,
// crash X% of the nodes at once, then plot the reliability of each
// broadcast after the crash (the healing curve) with its RMR and last
// delivery hop, Plumtree beside flood on the same graphs, crashes and
// publishers.
const ExperimentPlumtree = "plumtree"

// The plumtree experiment's setup. The overlay is static (the paper runs
// HyParView, which replaces crashed neighbours; here nothing does), so a
// crash splits it, and reliability is the fraction of the largest
// surviving connected component reached, by broadcasts published inside
// it.
const (
	// PlumtreeExperimentDegree is the overlay: undirected, every node
	// picks 3 random peers, mean degree 6, about HyParView's active view
	// of 5.
	PlumtreeExperimentDegree = 6
	// PlumtreeSettleBroadcasts are published before the crash, for the
	// tree to form and settle.
	PlumtreeSettleBroadcasts = 5
	// PlumtreeExperimentInterval is the virtual time between publishes:
	// far longer than any broadcast takes, GRAFT repairs included, so that
	// each one runs alone; the crash comes half an interval before the
	// first broadcast after it.
	PlumtreeExperimentInterval = 60 * time.Second
)

// PlumtreeCrashPercents are the crash sizes X, in percent of N.
var PlumtreeCrashPercents = []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 95}

// PlumtreeExperimentRow is one broadcast after a crash, for one strategy
// on one graph.
type PlumtreeExperimentRow struct {
	Experiment string `json:"experiment"`
	Strategy   string `json:"strategy"`
	Graph      int    `json:"graph"`
	Seed       uint64 `json:"seed"`
	Nodes      int    `json:"nodes"`
	// CrashedPct is X; Live the nodes left; Component the size of the
	// largest connected component of the live nodes, which reliability
	// counts.
	CrashedPct int `json:"crashed_pct"`
	Live       int `json:"live"`
	Component  int `json:"component"`
	// After is the broadcast's number after the crash, from 1.
	After int `json:"broadcast_after_crash"`
	// Reliability is the fraction of the largest surviving component that
	// the broadcast reached; its publisher is in that component.
	Reliability float64 `json:"reliability_component"`
	// RMR counts every payload copy sent, those to crashed nodes too:
	// nothing tells a node that its peer crashed (the simulator has no
	// failure detector), so its links to crashed peers stay eager.
	// RMRLive leaves out the copies that went to crashed nodes, as a
	// sender that sees its link fail (the paper's TCP) would not count.
	RMR             float64 `json:"rmr"`
	RMRLive         float64 `json:"rmr_live"`
	LastDeliveryHop int     `json:"last_delivery_hop"`
	Messages        int64   `json:"messages"`
	ControlMessages int64   `json:"control_messages"`
}

// PlumtreeExperiment is the result: every broadcast after every crash, for
// both strategies.
type PlumtreeExperiment struct {
	Nodes, Graphs, Broadcasts int
	Rows                      []PlumtreeExperimentRow
}

// largestComponent returns the nodes of the largest connected component
// of g without the crashed nodes (the lowest-numbered one on a tie), in
// node order.
func largestComponent(g *Graph, crashed []bool) []int {
	n := g.N()
	comp := make([]int32, n)
	for i := range comp {
		comp[i] = -1
	}
	var best []int
	var queue []int
	for src := range n {
		if crashed[src] || comp[src] >= 0 {
			continue
		}
		id := int32(src)
		comp[src] = id
		queue = append(queue[:0], src)
		for k := 0; k < len(queue); k++ {
			for _, p := range g.Peers(queue[k]) {
				j := int(p) - 1
				if !crashed[j] && comp[j] < 0 {
					comp[j] = id
					queue = append(queue, j)
				}
			}
		}
		if len(queue) > len(best) {
			best = append(best[:0], queue...)
		}
	}
	// In node order, for a deterministic draw of publishers from it.
	in := make([]bool, n)
	for _, i := range best {
		in[i] = true
	}
	best = best[:0]
	for i, ok := range in {
		if ok {
			best = append(best, i)
		}
	}
	return best
}

// runPlumtreeExperiment runs the crash sweep: for each graph and each X,
// the same crash and publishers for Plumtree and for flood.
func runPlumtreeExperiment(ctx context.Context, ec ExperimentConfig) (*Experiment, error) {
	graphs := or(ec.Graphs, 1)
	after := or(ec.Broadcasts, 15)
	res := &PlumtreeExperiment{Nodes: ec.Nodes, Graphs: graphs, Broadcasts: after}
	out := &Experiment{Name: ExperimentPlumtree, Config: ec, Plumtree: res}
	strategies := []gossip.Strategy{gossip.Plumtree, gossip.Flood}
	total := float64(graphs * len(PlumtreeCrashPercents) * len(strategies))
	done := 0
	for gi := range graphs {
		seed := ec.Seed + uint64(gi)
		base := DefaultConfig()
		base.Nodes = ec.Nodes
		base.Seed = seed
		base.Topology, base.Degree = TopologyUndirected, PlumtreeExperimentDegree
		g, err := BuildGraph(&base)
		if err != nil {
			return nil, fmt.Errorf("experiment plumtree: %w", err)
		}
		base.Graph = g
		base.Broadcasts = PlumtreeSettleBroadcasts + after
		base.Gap = 0
		base.Interval = PlumtreeExperimentInterval
		n := g.N()
		for _, x := range PlumtreeCrashPercents {
			// The crash and the publishers come from a source of their
			// own, so that both strategies get the same ones.
			rng := rand.New(rand.NewPCG(seed, uint64(x)))
			k := int(math.Round(float64(x) * float64(n) / 100))
			crashed := make([]bool, n)
			var nodes []int
			for _, i := range rng.Perm(n)[:k] {
				crashed[i] = true
				nodes = append(nodes, i)
			}
			comp := largestComponent(g, crashed)
			inComp := make([]bool, n)
			for _, i := range comp {
				inComp[i] = true
			}
			pubs := make([]int, base.Broadcasts)
			for b := range pubs {
				if b < PlumtreeSettleBroadcasts {
					pubs[b] = rng.IntN(n)
				} else {
					pubs[b] = comp[rng.IntN(len(comp))]
				}
			}
			for _, strat := range strategies {
				cfg := base
				cfg.Gossip.Strategy = strat
				// The paper's method: Plumtree heals by its own GRAFTs, without
				// the anti-entropy that is on by default for it.
				cfg.Gossip.AntiEntropy = -1
				cfg.Crash = Crash{Fraction: float64(k) / float64(n),
					At: time.Duration(PlumtreeSettleBroadcasts)*PlumtreeExperimentInterval - PlumtreeExperimentInterval/2}
				s, err := New(cfg)
				if err != nil {
					return nil, fmt.Errorf("experiment plumtree, %d%%, %s: %w", x, strat, err)
				}
				if err := s.SetCrashNodes(nodes); err != nil {
					return nil, err
				}
				s.SetPublishers(func(b int) int { return pubs[b] })
				reached := make([]int, base.Broadcasts)
				s.OnDeliver(func(d Delivery) {
					if inComp[d.Node] {
						reached[d.Broadcast]++
					}
				})
				if ec.Progress != nil {
					d := done
					s.OnProgress(func(f float64) { ec.Progress((float64(d) + f) / total) })
				}
				r, err := s.Run(ctx)
				if err != nil {
					return nil, fmt.Errorf("experiment plumtree, %d%%, %s: %w", x, strat, err)
				}
				done++
				for _, b := range r.PerBroadcast {
					if b.Index < PlumtreeSettleBroadcasts {
						continue
					}
					res.Rows = append(res.Rows, PlumtreeExperimentRow{
						Experiment: ExperimentPlumtree, Strategy: string(strat), Graph: gi, Seed: seed, Nodes: n,
						CrashedPct: x, Live: n - k, Component: len(comp), After: b.Index - PlumtreeSettleBroadcasts + 1,
						Reliability: round(float64(reached[b.Index])/float64(len(comp)), 6),
						RMR:         round(b.RMR, 6), RMRLive: round(rmrLive(&b), 6), LastDeliveryHop: b.LastDeliveryHop,
						Messages: b.Messages, ControlMessages: b.ControlMessages,
					})
				}
				if r.Partial {
					out.Partial = true
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// rmrLive is b's RMR over the copies that reached a live node.
func rmrLive(b *Broadcast) float64 {
	if b.Reached <= 1 {
		return 0
	}
	return float64(b.Messages-b.ToCrashed-b.Lost-int64(b.Reached-1)) / float64(b.Reached-1)
}

// plumtreeCell is the figures of one (X, strategy) over its graphs.
type plumtreeCell struct {
	live, comp float64 // means over graphs
	rel        [][]float64
	rmr, ldh   []float64 // broadcasts 3.. after the crash
	rmrLive    []float64
	rmr1       []float64 // the first broadcast after the crash
	// all is rmr, rmrLive and ldh over every broadcast after the crash.
	all     struct{ rmr, rmrLive, ldh []float64 }
	minRel3 float64 // lowest reliability from the 3rd broadcast on
	full3   bool    // every broadcast from the 3rd reached the whole component
}

func (p *PlumtreeExperiment) cells() map[string]*plumtreeCell {
	m := map[string]*plumtreeCell{}
	for _, r := range p.Rows {
		key := r.Strategy + "/" + strconv.Itoa(r.CrashedPct)
		c := m[key]
		if c == nil {
			c = &plumtreeCell{rel: make([][]float64, p.Broadcasts), minRel3: 1, full3: true}
			m[key] = c
		}
		if r.After == 1 {
			c.live += float64(r.Live) / float64(p.Graphs)
			c.comp += float64(r.Component) / float64(p.Graphs)
			c.rmr1 = append(c.rmr1, r.RMR)
		}
		if r.After <= len(c.rel) {
			c.rel[r.After-1] = append(c.rel[r.After-1], r.Reliability)
		}
		c.all.rmr = append(c.all.rmr, r.RMR)
		c.all.rmrLive = append(c.all.rmrLive, r.RMRLive)
		c.all.ldh = append(c.all.ldh, float64(r.LastDeliveryHop))
		if r.After >= 3 {
			c.rmr = append(c.rmr, r.RMR)
			c.rmrLive = append(c.rmrLive, r.RMRLive)
			c.ldh = append(c.ldh, float64(r.LastDeliveryHop))
			c.minRel3 = min(c.minRel3, r.Reliability)
			c.full3 = c.full3 && r.Reliability == 1
		}
	}
	return m
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// Healed reports, for each X, whether every Plumtree broadcast from the
// 3rd after the crash reached the whole largest surviving component.
func (p *PlumtreeExperiment) Healed() map[int]bool {
	out := map[int]bool{}
	cs := p.cells()
	for _, x := range PlumtreeCrashPercents {
		if c := cs[string(gossip.Plumtree)+"/"+strconv.Itoa(x)]; c != nil {
			out[x] = c.full3
		}
	}
	return out
}

// writeMarkdown writes the experiment's table.
func (p *PlumtreeExperiment) writeMarkdown(ew *errWriter) {
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	pct := func(v float64) string { return f(100*v, 1) + "%" }
	ew.printf("N = %d, undirected overlay of mean degree %d, links %s; %d graph(s) (seed %d…). %d broadcasts settle the tree, X%% of the nodes crash at once, then %d broadcasts from random nodes of the largest surviving component. Reliability is the fraction of the **largest surviving connected component** reached (the overlay is not repaired, so a crash splits it). Plumtree's GRAFT timeout is %v (10 link delays).\n\n",
		p.Nodes, PlumtreeExperimentDegree, DefaultConfig().Latency, p.Graphs, p.seed(), PlumtreeSettleBroadcasts, p.Broadcasts, GraftTimeoutDelays*DefaultConfig().Latency.Max)
	ew.printf("RMR counts every payload copy sent, those to crashed nodes too (nothing tells a node that a peer crashed, so its links to crashed peers stay eager); RMR live leaves those out. RMR and LDH are means over the broadcasts from the 3rd after the crash; flood's are over all of them.\n\n")
	ew.printf("| X | live | largest component | plumtree reliability #1 | #2 | #3 | lowest from #3 | plumtree RMR #1 | RMR | RMR live | LDH | flood lowest reliability | flood RMR | flood RMR live | flood LDH |\n")
	ew.printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cs := p.cells()
	for _, x := range PlumtreeCrashPercents {
		pc, fc := cs["plumtree/"+strconv.Itoa(x)], cs["flood/"+strconv.Itoa(x)]
		if pc == nil {
			continue
		}
		rel := func(i int) string {
			if i >= len(pc.rel) || len(pc.rel[i]) == 0 {
				return "–"
			}
			return pct(mean(pc.rel[i]))
		}
		floodRel, floodRMR, floodLive, floodLDH := "–", "–", "–", "–"
		if fc != nil {
			lo := 1.0
			for _, v := range fc.rel {
				for _, r := range v {
					lo = min(lo, r)
				}
			}
			floodRel, floodRMR, floodLive, floodLDH = pct(lo), f(mean(fc.all.rmr), 2), f(mean(fc.all.rmrLive), 2), f(mean(fc.all.ldh), 1)
		}
		ew.printf("| %d%% | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			x, f(pc.live, 0), f(pc.comp, 0), rel(0), rel(1), rel(2), pct(pc.minRel3),
			f(mean(pc.rmr1), 3), f(mean(pc.rmr), 3), f(mean(pc.rmrLive), 3), f(mean(pc.ldh), 1), floodRel, floodRMR, floodLive, floodLDH)
	}
}

func (p *PlumtreeExperiment) seed() uint64 {
	if len(p.Rows) == 0 {
		return 0
	}
	return p.Rows[0].Seed
}

// writeJSON writes one line per row.
func (p *PlumtreeExperiment) writeJSON(w io.Writer) error {
	for _, r := range p.Rows {
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("sim: experiment: %w", err)
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// Chart draws the healing curves: the mean reliability of each broadcast
// after the crash, one line per X for Plumtree, and flood's lowest over
// every X, dashed.
func (p *PlumtreeExperiment) Chart() *Chart {
	ch := &Chart{
		Title:    "Plumtree healing after a crash of X% of the nodes",
		Subtitle: fmt.Sprintf("N = %d, mean degree %d, %d graph(s); reliability over the largest surviving component", p.Nodes, PlumtreeExperimentDegree, p.Graphs),
		XLabel:   "broadcast after the crash",
		YLabel:   "% of the largest surviving component reached",
		YMax:     100,
	}
	cs := p.cells()
	floodLo := make([]float64, p.Broadcasts)
	for i := range floodLo {
		floodLo[i] = math.NaN()
	}
	for _, x := range PlumtreeCrashPercents {
		if pc := cs["plumtree/"+strconv.Itoa(x)]; pc != nil {
			s := Series{Name: fmt.Sprintf("plumtree, X = %d%%", x)}
			for i, v := range pc.rel {
				if len(v) > 0 {
					s.X = append(s.X, float64(i+1))
					s.Y = append(s.Y, 100*mean(v))
				}
			}
			ch.Series = append(ch.Series, s)
		}
		if fc := cs["flood/"+strconv.Itoa(x)]; fc != nil {
			for i, v := range fc.rel {
				if len(v) > 0 && (math.IsNaN(floodLo[i]) || 100*mean(v) < floodLo[i]) {
					floodLo[i] = 100 * mean(v)
				}
			}
		}
	}
	fl := Series{Name: "flood, lowest over every X", Dashed: true}
	for i, v := range floodLo {
		if !math.IsNaN(v) {
			fl.X = append(fl.X, float64(i+1))
			fl.Y = append(fl.Y, v)
		}
	}
	if len(fl.X) > 0 {
		ch.Series = append(ch.Series, fl)
	}
	return ch
}
