package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"time"

	"gossipmesh/gossip"
)

// ExperimentChurn runs membership under churn: nodes crash and fresh ones
// join at a steady rate while messages are broadcast throughout, and it
// reports how many broadcasts reach every node that was in the overlay
// for the whole broadcast, and the active degree over time.
const ExperimentChurn = "churn"

// The churn experiment's setup.
const (
	// ChurnExperimentDegree is the boot overlay: undirected, every node
	// dials 3 random peers (mean degree 6), as `mesh up` boots nodes
	// with 3 peers; the membership takes it from there.
	ChurnExperimentDegree = 6
	// ChurnBroadcastInterval is the time between broadcasts, each from a
	// random node in the overlay: 10 messages a second.
	ChurnBroadcastInterval = 100 * time.Millisecond
	// ChurnWindow is how long a broadcast lasts for the reliability
	// count: it must reach, within this time of its publish, every node
	// that joined the overlay (its first link came up) before the publish
	// and stayed up until the window's end. A node that crashed or joined
	// inside the window is not counted either way.
	ChurnWindow = 5 * time.Second
	// ChurnSeenTTL is the experiment's acceptance window and store TTL
	// (the cores' SeenTTL and StoreTTL, 2 min by default), which bound
	// what the seen-caches remember, what the stores keep and what every
	// anti-entropy digest lists: with 10 broadcasts a second from random nodes, a digest
	// names about one origin per message in the window, and at 2 min
	// the digests of 16,000 Plumtree nodes, each pulling every second,
	// made a 60 s run take hours here. 15 s outlasts the reliability
	// window threefold, so no repair the count could see is refused.
	ChurnSeenTTL = 15 * time.Second
	// DefaultChurnRate and DefaultChurnDuration are the experiment's
	// churn: 1% of the nodes replaced every second for 60 s.
	DefaultChurnRate     = 0.01
	DefaultChurnDuration = 60 * time.Second
)

// ChurnStrategies are the strategies the experiment compares: flood
// (the default, no anti-entropy) and Plumtree with its default
// anti-entropy (1 s).
var ChurnStrategies = []gossip.Strategy{gossip.Flood, gossip.Plumtree}

// ChurnRun is one strategy on one boot overlay under churn.
type ChurnRun struct {
	Experiment string  `json:"experiment"`
	Strategy   string  `json:"strategy"`
	Seed       uint64  `json:"seed"`
	Nodes      int     `json:"nodes"`
	Rate       float64 `json:"churn_rate"`
	DurationS  float64 `json:"churn_duration_s"`
	// Broadcasts were published; Reliable of them reached every node
	// counted for them (see ChurnWindow) within the window.
	Broadcasts  int     `json:"broadcasts"`
	Reliable    int     `json:"reliable"`
	Reliability float64 `json:"reliability"`
	// Required sums, over the broadcasts, the nodes counted for them;
	// Missed how many of those a broadcast did not reach in its window;
	// WorstMissed the most one broadcast missed.
	Required    int64 `json:"required"`
	Missed      int64 `json:"missed"`
	WorstMissed int   `json:"worst_missed"`
	// ReliableByEnd counts the broadcasts that reached every node counted
	// for them by the end of the run, late or not; Never is how many of
	// the missed deliveries never came, and SlowestLateMS the longest any
	// of the others took, from publish (0 when none was late).
	ReliableByEnd int     `json:"reliable_by_end"`
	Never         int64   `json:"never"`
	SlowestLateMS float64 `json:"slowest_late_ms"`
	// Copies and Controls are the payload and control frames sent per
	// broadcast (mean).
	Copies     float64         `json:"copies_per_broadcast"`
	Controls   float64         `json:"controls_per_broadcast"`
	Membership MembershipStats `json:"membership"`
	// InBounds is the fraction of (sample, live node) pairs whose degree
	// was within the membership's bounds; InBoundsSettled leaves out the
	// nodes that joined in the step before the sample.
	InBounds        float64        `json:"in_bounds"`
	InBoundsSettled float64        `json:"in_bounds_settled"`
	Degrees         []DegreeSample `json:"degrees"`
	// Partial marks a run stopped early.
	Partial bool `json:"partial,omitempty"`
}

// ChurnExperiment is the result: one run per strategy and boot overlay.
type ChurnExperiment struct {
	Nodes        int
	Rate         float64
	Duration     time.Duration
	Graphs       int
	Low, High    int
	Runs         []ChurnRun
	progressLock sync.Mutex // the runs report progress from their goroutines
}

// churnJob is one run of the experiment.
type churnJob struct {
	graph int
	strat gossip.Strategy
}

// runChurnExperiment runs every strategy on every boot overlay, the runs
// on up to ec.Workers goroutines (each run is one goroutine's; the
// results do not depend on how many).
func runChurnExperiment(ctx context.Context, ec ExperimentConfig) (*Experiment, error) {
	rate, dur := ec.ChurnRate, ec.ChurnDuration
	if rate == 0 {
		rate = DefaultChurnRate
	}
	if dur == 0 {
		dur = DefaultChurnDuration
	}
	graphs := or(ec.Graphs, 1)
	mc := churnMembership(ec)
	res := &ChurnExperiment{Nodes: ec.Nodes, Rate: rate, Duration: dur, Graphs: graphs, Low: mc.Config.ActiveLow, High: mc.Config.ActiveHigh}
	out := &Experiment{Name: ExperimentChurn, Config: ec, Churn: res}
	var jobs []churnJob
	for g := range graphs {
		for _, st := range ChurnStrategies {
			jobs = append(jobs, churnJob{g, st})
		}
	}
	// Check the setup once, before any goroutine starts.
	if _, err := churnConfig(ec, 0, gossip.Flood, rate, dur); err != nil {
		return nil, fmt.Errorf("experiment churn: %w", err)
	}
	workers := ec.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(jobs))
	runs := make([]ChurnRun, len(jobs))
	errs := make([]error, len(jobs))
	done := make([]float64, len(jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				var progress func(float64)
				if ec.Progress != nil {
					progress = func(f float64) {
						res.progressLock.Lock()
						defer res.progressLock.Unlock()
						done[k] = f
						sum := 0.0
						for _, d := range done {
							sum += d
						}
						ec.Progress(sum / float64(len(jobs)))
					}
				}
				runs[k], errs[k] = runChurn(ctx, ec, jobs[k], rate, dur, progress)
			}
		}()
	}
	for k := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	for k := range jobs {
		if errs[k] != nil {
			return nil, errs[k]
		}
		if runs[k].Strategy == "" {
			out.Partial = true // never started
			continue
		}
		res.Runs = append(res.Runs, runs[k])
		if runs[k].Partial {
			out.Partial = true
		}
	}
	return out, nil
}

// churnConfig is the simulator config of one run.
func churnConfig(ec ExperimentConfig, graph int, strat gossip.Strategy, rate float64, dur time.Duration) (Config, error) {
	cfg := DefaultConfig()
	cfg.Nodes = ec.Nodes
	cfg.Seed = ec.Seed + uint64(graph)
	cfg.Topology, cfg.Degree = TopologyUndirected, ChurnExperimentDegree
	cfg.Gossip.Strategy = strat
	cfg.Gossip.SeenTTL, cfg.Gossip.StoreTTL = ChurnSeenTTL, ChurnSeenTTL
	cfg.Gap = 0
	cfg.Interval = ChurnBroadcastInterval
	cfg.Broadcasts = int(dur / ChurnBroadcastInterval)
	cfg.Membership = churnMembership(ec)
	cfg.Membership.Churn = Churn{Rate: rate, Every: time.Second, Duration: dur}
	cfg.Membership.Until = dur + ChurnWindow
	return cfg, cfg.Validate()
}

// churnMembership is the experiment's membership: the defaults, with
// ec's degree bounds when set.
func churnMembership(ec ExperimentConfig) *MembershipConfig {
	mc := DefaultMembershipConfig()
	if ec.ActiveLow > 0 {
		mc.Config.ActiveLow = ec.ActiveLow
	}
	if ec.ActiveHigh > 0 {
		mc.Config.ActiveHigh = ec.ActiveHigh
	}
	return mc
}

// runChurn runs one job and counts its broadcasts.
func runChurn(ctx context.Context, ec ExperimentConfig, job churnJob, rate float64, dur time.Duration, progress func(float64)) (ChurnRun, error) {
	cfg, err := churnConfig(ec, job.graph, job.strat, rate, dur)
	if err != nil {
		return ChurnRun{}, fmt.Errorf("experiment churn: %w", err)
	}
	s, err := New(cfg)
	if err != nil {
		return ChurnRun{}, fmt.Errorf("experiment churn, %s: %w", job.strat, err)
	}
	n := s.n
	joinAt := make([]int64, n)
	crashAt := make([]int64, n)
	for i := range n {
		joinAt[i], crashAt[i] = -1, math.MaxInt64
	}
	// Publishers are drawn from the nodes in the overlay, on a source of
	// their own, so that no broadcast starts at a node with no link yet.
	var inOverlay []int
	pos := make([]int, n)
	pubRng := rand.New(rand.NewPCG(cfg.Seed, 1<<62+4))
	s.OnJoin(func(i int, at int64) {
		joinAt[i] = at
		pos[i] = len(inOverlay)
		inOverlay = append(inOverlay, i)
	})
	s.OnCrash(func(i int, at int64) {
		crashAt[i] = at
		if joinAt[i] >= 0 {
			k, last := pos[i], inOverlay[len(inOverlay)-1]
			inOverlay[k], pos[last] = last, k
			inOverlay = inOverlay[:len(inOverlay)-1]
		}
	})
	s.SetPublishers(func(int) int { return inOverlay[pubRng.IntN(len(inOverlay))] })
	got := make([]bitset, cfg.Broadcasts)
	pubAt := make([]int64, cfg.Broadcasts)
	// Deliveries after the window: rare, but for fresh nodes that
	// anti-entropy brings up to date.
	type late struct {
		b, node int
		after   int64
	}
	var lates []late
	s.OnDeliver(func(d Delivery) {
		if got[d.Broadcast] == nil {
			got[d.Broadcast] = newBitset(n)
		}
		if d.Hop == 0 {
			pubAt[d.Broadcast] = d.At
		}
		if after := d.At - pubAt[d.Broadcast]; after <= int64(ChurnWindow) {
			got[d.Broadcast].set(uint32(d.Node))
		} else {
			lates = append(lates, late{d.Broadcast, d.Node, after})
		}
	})
	run := ChurnRun{Experiment: ExperimentChurn, Strategy: string(job.strat), Seed: cfg.Seed, Nodes: ec.Nodes, Rate: rate, DurationS: dur.Seconds()}
	var pairs, inside, settled, settledIn int64
	s.OnDegree(func(d DegreeSample) {
		run.Degrees = append(run.Degrees, d)
		pairs += int64(d.Live)
		inside += int64(d.Live - d.Below - d.Above)
		settled += int64(d.Live - d.Booting)
		settledIn += int64(d.Live - d.Below - d.Above - (d.Booting - d.BootingOutside))
	})
	if progress != nil {
		s.OnProgress(progress)
	}
	r, err := s.Run(ctx)
	if err != nil {
		return ChurnRun{}, fmt.Errorf("experiment churn, %s: %w", job.strat, err)
	}
	run.Partial = r.Partial
	if pairs > 0 {
		run.InBounds = round(float64(inside)/float64(pairs), 6)
		run.InBoundsSettled = round(float64(settledIn)/float64(settled), 6)
	}
	run.Membership, _ = s.MembershipStats()
	counted := func(b, i int) bool {
		return joinAt[i] >= 0 && joinAt[i] <= pubAt[b] && crashAt[i] > pubAt[b]+int64(ChurnWindow)
	}
	lateMissed := make(map[int]int) // by broadcast: missed deliveries that came late
	for _, l := range lates {
		if counted(l.b, l.node) {
			lateMissed[l.b]++
			run.SlowestLateMS = max(run.SlowestLateMS, ms(l.after))
		}
	}
	for _, b := range r.PerBroadcast {
		run.Copies += float64(b.Messages)
		run.Controls += float64(b.ControlMessages)
		g := got[b.Index]
		if g == nil {
			continue
		}
		missed := 0
		for i := range n {
			if !counted(b.Index, i) {
				continue
			}
			run.Required++
			if !g.has(uint32(i)) {
				missed++
			}
		}
		run.Broadcasts++
		run.Missed += int64(missed)
		run.WorstMissed = max(run.WorstMissed, missed)
		if missed == 0 {
			run.Reliable++
		}
		if missed == lateMissed[b.Index] {
			run.ReliableByEnd++
		}
		run.Never += int64(missed - lateMissed[b.Index])
	}
	if run.Broadcasts > 0 {
		run.Reliability = round(float64(run.Reliable)/float64(run.Broadcasts), 6)
		run.Copies = round(run.Copies/float64(run.Broadcasts), 1)
		run.Controls = round(run.Controls/float64(run.Broadcasts), 1)
	}
	return run, nil
}

// writeJSON writes one line per run.
func (c *ChurnExperiment) writeJSON(w io.Writer) error {
	for _, r := range c.Runs {
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

// writeMarkdown writes the reliability table and the degree table.
func (c *ChurnExperiment) writeMarkdown(ew *errWriter) {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	pct := func(v float64, prec int) string { return f(100*v, prec) + "%" }
	ew.printf("N = %d at boot (undirected, mean degree %d), links %s; membership with its defaults (active %d..%d, passive %d). Every second %s of the nodes crash (their links close) and as many fresh nodes join, each through one random live node, for %v; a broadcast every %v from a random node in the overlay. A broadcast counts as reliable when, within %v of its publish, it reached every node that was in the overlay (had a link up) at its publish and stayed up to the end of that window. %d boot overlay(s) (seed %d…).\n\n",
		c.Nodes, ChurnExperimentDegree, DefaultConfig().Latency, c.Low, c.High, DefaultMembershipConfig().Config.PassiveSize,
		pct(c.Rate, 1), c.Duration, ChurnBroadcastInterval, ChurnWindow, c.Graphs, c.seed())
	ew.printf("| strategy | broadcasts | reliable | reliability | deliveries missed (never came) | worst broadcast | reliable by the end | slowest late delivery | payload copies / broadcast | control frames / broadcast | crashed | joined | dials (failed) | degree in bounds |\n")
	ew.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range c.Runs {
		m := r.Membership
		slow := "–"
		if r.SlowestLateMS > 0 {
			slow = f(r.SlowestLateMS/1e3, 2) + " s"
		}
		ew.printf("| %s | %d | %d | %s | %d of %d (%d) | %d | %d | %s | %s | %s | %d | %d | %d (%d) | %s |\n",
			r.Strategy, r.Broadcasts, r.Reliable, pct(r.Reliability, 2), r.Missed, r.Required, r.Never, r.WorstMissed,
			r.ReliableByEnd, slow, f(r.Copies, 0), f(r.Controls, 0), m.Crashed, m.Joined, m.Dials, m.DialsFailed, pct(r.InBounds, 2))
	}
	if len(c.Runs) == 0 {
		return
	}
	ew.printf("\nActive degree of the live nodes over time (first overlay; sampled each second just before that second's churn): min / mean / max, how many live nodes are below %d or above %d, and the lowest degree and the nodes below %d right after the second's crashes, before anyone replaced a link.\n\n", c.Low, c.High, c.Low)
	var first []ChurnRun
	for _, r := range c.Runs {
		if r.Seed == c.Runs[0].Seed {
			first = append(first, r)
		}
	}
	ew.printf("| t (s) | live |")
	for _, r := range first {
		ew.printf(" %s min / mean / max | below / above | after the crashes: min, below |", r.Strategy)
	}
	ew.printf("\n|---:|---:|")
	for range first {
		ew.printf("---:|---:|---:|")
	}
	ew.printf("\n")
	for k := range first[0].Degrees {
		d0 := first[0].Degrees[k]
		ew.printf("| %s | %d |", f(float64(d0.At)/1e9, 0), d0.Live)
		for _, r := range first {
			if k >= len(r.Degrees) {
				ew.printf(" – | – | – |")
				continue
			}
			d := r.Degrees[k]
			ew.printf(" %d / %s / %d | %d / %d | %d, %d |", d.Min, f(d.Mean, 2), d.Max, d.Below, d.Above, d.DipMin, d.DipBelow)
		}
		ew.printf("\n")
	}
}

func (c *ChurnExperiment) seed() uint64 {
	if len(c.Runs) == 0 {
		return 0
	}
	return c.Runs[0].Seed
}

// Chart draws the active degree over time of the first overlay: each
// strategy's mean, and its min and max dashed, with the bounds.
func (c *ChurnExperiment) Chart() *Chart {
	ch := &Chart{
		Title:    "Active degree under churn",
		Subtitle: fmt.Sprintf("N = %d, %.1f%% of the nodes replaced per second for %v; bounds %d..%d", c.Nodes, 100*c.Rate, c.Duration, c.Low, c.High),
		XLabel:   "virtual time (s)",
		YLabel:   "active degree of the live nodes",
	}
	for _, r := range c.Runs {
		if r.Seed != c.seed() {
			continue
		}
		mean := Series{Name: r.Strategy + ", mean"}
		lo := Series{Name: r.Strategy + ", min", Dashed: true}
		hi := Series{Name: r.Strategy + ", max", Dashed: true}
		for _, d := range r.Degrees {
			x := float64(d.At) / 1e9
			mean.X, mean.Y = append(mean.X, x), append(mean.Y, d.Mean)
			lo.X, lo.Y = append(lo.X, x), append(lo.Y, float64(d.Min))
			hi.X, hi.Y = append(hi.X, x), append(hi.Y, float64(d.Max))
		}
		ch.Series = append(ch.Series, mean, lo, hi)
	}
	return ch
}
