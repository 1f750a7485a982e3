package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gossipmesh/gossip"
)

// Sweep parameters.
const (
	SweepFanout = "fanout"
	SweepDegree = "degree"
	SweepNodes  = "nodes"
	SweepLoss   = "loss"
)

// Sweep runs the same setup for each value of one parameter.
type Sweep struct {
	Param  string
	Values []float64
}

// ParseSweep reads PARAM=VALUES, where PARAM is fanout, degree, nodes or
// loss and VALUES is a comma-separated list of numbers or ranges
// FROM..TO[/STEP] (STEP defaults to 1): "fanout=1..12",
// "nodes=1000,10000,100000", "loss=0..0.5/0.1".
func ParseSweep(s string) (Sweep, error) {
	param, vals, ok := strings.Cut(s, "=")
	if !ok {
		return Sweep{}, fmt.Errorf("sweep %q: want PARAM=VALUES, e.g. fanout=1..12", s)
	}
	sw := Sweep{Param: strings.TrimSpace(param)}
	switch sw.Param {
	case SweepFanout, SweepDegree, SweepNodes, SweepLoss:
	default:
		return Sweep{}, fmt.Errorf("sweep %q: parameter must be fanout, degree, nodes or loss", s)
	}
	for _, part := range strings.Split(vals, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "..")
		if !isRange {
			v, err := strconv.ParseFloat(part, 64)
			if err != nil {
				return Sweep{}, fmt.Errorf("sweep %q: %q is not a number", s, part)
			}
			sw.Values = append(sw.Values, v)
			continue
		}
		to, stepS, hasStep := strings.Cut(to, "/")
		a, err1 := strconv.ParseFloat(strings.TrimSpace(from), 64)
		b, err2 := strconv.ParseFloat(strings.TrimSpace(to), 64)
		step := 1.0
		var err3 error
		if hasStep {
			step, err3 = strconv.ParseFloat(strings.TrimSpace(stepS), 64)
		}
		if err1 != nil || err2 != nil || err3 != nil || !(step > 0) || b < a {
			return Sweep{}, fmt.Errorf("sweep %q: bad range %q (want FROM..TO[/STEP], FROM <= TO, STEP > 0)", s, part)
		}
		n := int(math.Floor((b-a)/step+1e-9)) + 1
		if n > 1000 {
			return Sweep{}, fmt.Errorf("sweep %q: %d values, at most 1000", s, n)
		}
		for i := 0; i < n; i++ {
			// Round away float noise such as 0.30000000000000004.
			sw.Values = append(sw.Values, round(a+float64(i)*step, 9))
		}
	}
	if len(sw.Values) == 0 {
		return Sweep{}, fmt.Errorf("sweep %q: no values", s)
	}
	for _, v := range sw.Values {
		if sw.Param != SweepLoss && v != math.Trunc(v) {
			return Sweep{}, fmt.Errorf("sweep %q: %s takes whole numbers, got %v", s, sw.Param, v)
		}
	}
	return sw, nil
}

// Apply returns base with the swept parameter set to v. Sweeping fanout
// switches the strategy to fanout: with flood there is nothing to sweep.
func (sw Sweep) Apply(base Config, v float64) Config {
	c := base
	switch sw.Param {
	case SweepFanout:
		c.Gossip.Strategy = gossip.Fanout
		c.Gossip.Fanout = int(v)
	case SweepDegree:
		c.Degree = int(v)
	case SweepNodes:
		c.Nodes = int(v)
	case SweepLoss:
		c.Loss = v
	}
	return c
}

// Label renders value v of the swept parameter.
func (sw Sweep) Label(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// RunMany runs cfg on graphs independent topologies (seeds cfg.Seed,
// cfg.Seed+1, …) and merges the reports. A file topology is the same graph
// each time, with other random draws. progress, if set, gets the fraction
// done.
func RunMany(ctx context.Context, cfg Config, graphs int, progress func(float64)) (*Report, error) {
	return RunObserved(ctx, cfg, graphs, progress, Observer{})
}

// Observer is the set of hooks a caller can put on every run of RunObserved
// (see Sim.OnDeliver, OnDuplicate and OnCrash); nil hooks cost nothing.
type Observer struct {
	Deliver   func(Delivery)
	Duplicate func(Delivery)
	Crash     func(node int, at int64)
}

// Also returns an Observer that calls o's hooks, then p's: a run can feed
// a trace and charts at once.
func (o Observer) Also(p Observer) Observer {
	both := func(a, b func(Delivery)) func(Delivery) {
		switch {
		case a == nil:
			return b
		case b == nil:
			return a
		}
		return func(d Delivery) { a(d); b(d) }
	}
	crash := o.Crash
	switch {
	case o.Crash == nil:
		crash = p.Crash
	case p.Crash != nil:
		crash = func(node int, at int64) { o.Crash(node, at); p.Crash(node, at) }
	}
	return Observer{Deliver: both(o.Deliver, p.Deliver), Duplicate: both(o.Duplicate, p.Duplicate), Crash: crash}
}

// RunObserved is RunMany with obs's hooks set on every run: charts and
// traces watch a run through it instead of reaching into the engine.
func RunObserved(ctx context.Context, cfg Config, graphs int, progress func(float64), obs Observer) (*Report, error) {
	if graphs < 1 {
		return nil, fmt.Errorf("sim: graphs must be at least 1, got %d", graphs)
	}
	var rs []*Report
	partial := false
	for g := 0; g < graphs; g++ {
		c := cfg
		c.Seed = cfg.Seed + uint64(g)
		s, err := New(c)
		if err != nil {
			return nil, err
		}
		s.OnDeliver(obs.Deliver)
		s.OnDuplicate(obs.Duplicate)
		s.OnCrash(obs.Crash)
		if progress != nil {
			s.OnProgress(func(f float64) { progress((float64(g) + f) / float64(graphs)) })
		}
		r, err := s.Run(ctx)
		if err != nil {
			return nil, err
		}
		if r.Partial {
			partial = true
			// A graph stopped before its first broadcast finished adds
			// nothing but a topology to the pool: leave it out.
			if r.Broadcasts > 0 || len(rs) == 0 {
				rs = append(rs, r)
			}
			break
		}
		rs = append(rs, r)
	}
	m := Merge(rs)
	m.Seed = cfg.Seed
	m.Partial = m.Partial || partial
	return m, nil
}

// RunSweep runs base once per value of sw (each on graphs topologies).
// It stops early, with the reports so far, when ctx is cancelled; a value
// whose run had not finished one broadcast is left out, and the last
// report is then marked partial.
func RunSweep(ctx context.Context, base Config, sw Sweep, graphs int, progress func(float64)) ([]*Report, error) {
	var out []*Report
	for i, v := range sw.Values {
		cfg := sw.Apply(base, v)
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("sweep %s=%s: %w", sw.Param, sw.Label(v), err)
		}
		var p func(float64)
		if progress != nil {
			p = func(f float64) { progress((float64(i) + f) / float64(len(sw.Values))) }
		}
		r, err := RunMany(ctx, cfg, graphs, p)
		if err != nil {
			return nil, fmt.Errorf("sweep %s=%s: %w", sw.Param, sw.Label(v), err)
		}
		if r.Partial {
			if r.Broadcasts > 0 {
				out = append(out, r)
			} else if len(out) > 0 {
				last := *out[len(out)-1]
				last.Partial = true
				out[len(out)-1] = &last
			}
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// branching is the k in log_k N for r: the fanout for the fanout router,
// otherwise the (mean) number of peers.
func branching(r *Report) float64 {
	if r.Strategy == string(gossip.Fanout) {
		return math.Min(float64(r.Fanout), r.MeanDegree)
	}
	return r.MeanDegree
}

// WriteSweepText writes one table row per run of a sweep.
func WriteSweepText(w io.Writer, sw Sweep, rs []*Report) error {
	ew := &errWriter{w: w}
	if len(rs) > 0 {
		ew.printf("mesh sim sweep over %s (first run: %s)\n\n", sw.Param, rs[0].Describe())
	}
	// With crashes, reliability over the live nodes goes beside the one
	// over all nodes: a crashed node is not one the gossip missed.
	crash := len(rs) > 0 && rs[0].Crash != ""
	live := func(r *Report) string {
		if !crash {
			return ""
		}
		return fmt.Sprintf(" %11.6f", r.ReliabilityLive)
	}
	head := ""
	if crash {
		head = fmt.Sprintf(" %11s", "rel_live")
	}
	ew.printf("%8s %8s %7s %11s%s %9s %8s %8s %7s %8s %9s %9s %9s %9s %9s %8s\n",
		sw.Param, "nodes", "degree", "reliability", head, "all_rchd", "mean_hop", "last_hop", "max_hop", "rmr", "ctl/bcast",
		"t50_ms", "t90_ms", "t99_ms", "t100_ms", "log_k_N")
	for i, r := range rs {
		c := r.TimeToCoverageMS
		ms := func(v float64) string {
			if math.IsNaN(v) {
				return "-"
			}
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
		part := ""
		if r.Partial {
			part = "  (partial)"
		}
		// The last hop is a count, so a whole mean prints as one.
		lastHop := strconv.FormatFloat(r.LastDeliveryHop, 'f', 2, 64)
		if r.LastDeliveryHop == math.Trunc(r.LastDeliveryHop) {
			lastHop = strconv.FormatFloat(r.LastDeliveryHop, 'f', 0, 64)
		}
		ctl := 0.0
		if r.Broadcasts > 0 {
			ctl = float64(r.ControlMessages) / float64(r.Broadcasts)
		}
		ew.printf("%8s %8d %7.2f %11.6f%s %9.4f %8.3f %8s %7d %8.3f %9.1f %9s %9s %9s %9s %8.3f%s\n",
			sw.Label(sw.Values[i]), r.Nodes, r.MeanDegree, r.Reliability, live(r), r.AllReached, r.MeanHop,
			lastHop, r.MaxLastDeliveryHop, r.RMR, ctl, ms(c[0]), ms(c[1]), ms(c[2]), ms(c[3]),
			theoryHops(float64(r.Nodes), branching(r)), part)
	}
	return ew.err
}

// SweepChart draws a sweep: hops against N (log scale) with log_k N beside
// them for a nodes sweep, otherwise coverage against hop, one line per
// value.
func SweepChart(sw Sweep, rs []*Report) *Chart {
	if len(rs) == 0 {
		return &Chart{Title: "empty sweep"}
	}
	if sw.Param == SweepNodes {
		ch := &Chart{
			Title:    "hops against N",
			Subtitle: "first run: " + rs[0].Describe(),
			XLabel:   "nodes N (log scale)", YLabel: "hops", LogX: true,
		}
		mean := Series{Name: "mean hop"}
		last := Series{Name: "last delivery hop (mean)"}
		theory := Series{Name: "log_k N", Dashed: true}
		for _, r := range rs {
			x := float64(r.Nodes)
			mean.X, mean.Y = append(mean.X, x), append(mean.Y, r.MeanHop)
			last.X, last.Y = append(last.X, x), append(last.Y, r.LastDeliveryHop)
			theory.X, theory.Y = append(theory.X, x), append(theory.Y, theoryHops(x, branching(r)))
		}
		ch.Series = []Series{mean, last, theory}
		return ch
	}
	ch := &Chart{
		Title:    "coverage against hop by " + sw.Param,
		Subtitle: "first run: " + rs[0].Describe(),
		XLabel:   "hop", YLabel: "nodes reached (%)", YMax: 100,
	}
	covs := make([][]float64, len(rs))
	for i, r := range rs {
		covs[i] = meanCoverageByHop(r)
	}
	cut, longest := coverageClip(covs)
	for i, cov := range covs {
		s := Series{Name: sw.Param + "=" + sw.Label(sw.Values[i])}
		for h, c := range cov {
			s.X = append(s.X, float64(h))
			s.Y = append(s.Y, 100*c)
		}
		if last := len(cov) - 1; last > cut {
			// Say where a tail that the axis cuts off ends.
			s.Name += fmt.Sprintf(" (→ hop %d, %.2g%%)", last, 100*cov[last])
		}
		ch.Series = append(ch.Series, s)
	}
	if cut < longest {
		ch.XMax = float64(cut)
		ch.XLabel = fmt.Sprintf("hop (axis cut at %d: past it no curve that spreads gains %g%% of the nodes)", cut, clipGain*100)
	}
	return ch
}

// Where SweepChart cuts its x axis: a curve "spreads" if it ends at or
// above clipSpread of the nodes, and the axis ends one hop after the last
// hop at which a spreading curve still had more than clipGain of the nodes
// to gain. A stalled curve (fanout 1 creeping along at 2% for 40 hops)
// otherwise squashes the curves that matter into the left tenth.
const (
	clipSpread = 0.10
	clipGain   = 0.005
)

// coverageClip returns the hop to cut the axis at and the longest curve's
// last hop.
func coverageClip(covs [][]float64) (cut, longest int) {
	for _, cov := range covs {
		longest = max(longest, len(cov)-1)
		if len(cov) == 0 || cov[len(cov)-1] < clipSpread {
			continue
		}
		final := cov[len(cov)-1]
		h := 0
		for h < len(cov) && final-cov[h] > clipGain {
			h++
		}
		cut = max(cut, h+1)
	}
	if cut == 0 || cut > longest {
		cut = longest
	}
	return cut, longest
}

// meanCoverageByHop is the fraction of nodes reached by hop h, averaged
// over r's broadcasts; a broadcast that stopped spreading earlier counts
// with its final coverage.
func meanCoverageByHop(r *Report) []float64 {
	covs := make([][]float64, len(r.PerBroadcast))
	n := 0
	for i := range r.PerBroadcast {
		covs[i] = r.PerBroadcast[i].CoverageByHop(r.Nodes)
		n = max(n, len(covs[i]))
	}
	out := make([]float64, n)
	for _, cov := range covs {
		for h := range out {
			out[h] += cov[min(h, len(cov)-1)]
		}
	}
	for h := range out {
		out[h] /= float64(len(covs))
	}
	return out
}
