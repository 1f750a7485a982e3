// Package sim is gossipmesh's discrete-event simulator. It drives the same
// gossip core as `mesh node` (gossip.Core, unchanged) for up to a million
// nodes in virtual time, so that claims about gossip ("k=8 reaches 10,000
// nodes in ~4 hops", "a 12 s slot is a catch-up budget") can be checked at
// scales no machine runs as processes.
//
// The engine is a calendar queue of value-typed events in (time, seq)
// order, processed by one goroutine with one seeded random source for the
// network (latency and loss draws); each core gets its own small PCG
// source, as the runtime does. Broadcasts that are independent trials (the
// default Gap, flood or fanout, no crash after 0) each run from fresh node state on
// sources derived from (seed, trial), so that they can run on
// Config.Workers goroutines and be merged in order (parallel.go). The same
// Config therefore always gives the same Report, byte for byte once
// written, whatever the number of workers.
package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gossipmesh/fault"
	"gossipmesh/gossip"
)

// Topology kinds. Any other Config.Topology value is the path of an edge
// list (see LoadGraph).
const (
	// TopologyKOut gives every node Degree random outbound peers: one-way
	// links, as in the lesson's starter. A node forwards only to its own
	// out-links, so a node nobody picked is never reached.
	TopologyKOut = "kout"
	// TopologyUndirected is a random graph of mean degree Degree: every node
	// picks Degree/2 random peers and every link is used both ways, as TCP
	// links are in the real runtime. Degree 16 is PeerSim's "8 outbound
	// links made undirected".
	TopologyUndirected = "undirected"
	// TopologyRegular is a uniform-ish random Degree-regular graph
	// (configuration model with edge switches to remove loops and doubles).
	TopologyRegular = "regular"
)

// Config describes one simulation run. Start from DefaultConfig; Validate
// reports the first setting that cannot work.
type Config struct {
	// Nodes is the network size N. Default 10,000, the lesson's N. Ignored
	// when Graph is set (the graph decides).
	Nodes int
	// Topology is kout, undirected, regular, or an edge-list file path
	// (which the caller loads into Graph). Default undirected.
	Topology string
	// Degree is the peers per node: outbound peers for kout, mean degree
	// for undirected, exact degree for regular. Default 16 (8 outbound
	// links made undirected, as the runtime and the PeerSim anchor do).
	Degree int
	// Graph, when set, replaces the generated topology (an edge-list file).
	Graph *Graph
	// Gossip configures every core; all cores share one copy. Default
	// gossip.DefaultConfig() (flood).
	Gossip gossip.Config
	// Latency is the per-message link delay. Default uniform 10ms-100ms,
	// the PeerSim anchor's delay.
	Latency Latency
	// Regions, when set, adds a latency matrix between regions: node i is in
	// region i mod len(Regions.Names) and a message from region a to region
	// b takes Regions.Delay[a][b] plus a draw from Latency. Default none.
	Regions *Regions
	// Loss is the probability that a link drops a message. Default 0.
	Loss float64
	// Crash crashes a fraction of the nodes at a virtual time. Default none.
	Crash Crash
	// Delay and Jitter are added to every link's --latency draw by the
	// fault layer (faults.go): Delay plus or minus Jitter, uniform, never
	// below zero, drawn as fault.Plan.Decide draws it. Default 0: none,
	// and no draw, so that a run without them is what it always was.
	Delay, Jitter time.Duration
	// Partition cuts every link between its sides during its window of
	// virtual time. Default: none (Sides empty).
	Partition Partition
	// Pause stops a fraction of the nodes during its window: they neither
	// receive, send nor tick, and frames sent to them wait and are
	// handled when they resume. Default: none (Fraction 0).
	Pause Pause
	// Adversaries makes fractions of the nodes, drawn from Seed, run
	// adversary modes around their protocol (adversaries.go); the report
	// then gives honest reach. Rate modes (spam, spam-invalid, forge,
	// replay) need Interval and act from 0 to Broadcasts × Interval.
	// Default none.
	Adversaries Adversaries
	// Broadcasts is how many messages are published, one after another,
	// each from a random live node. Default 1.
	Broadcasts int
	// Gap is the virtual time from the moment a broadcast settles (no copy
	// in flight) to the next publish. Default 2 minutes, the core's default
	// SeenTTL: every node has then forgotten the previous message, so the
	// broadcasts are independent trials and each seen-cache holds one id,
	// as it does at a million nodes. With a router that keeps no per-node
	// state (flood, fanout) and no crash after time 0, each such trial runs from
	// fresh node state on random sources derived from (Seed, trial index),
	// on Workers goroutines. 0 runs them back to back, and the seen-caches
	// fill up as they would under a steady message stream.
	Gap time.Duration
	// Interval, when positive, publishes broadcast b at b × Interval of
	// virtual time whether or not the earlier ones have settled, so that
	// many messages are in flight at once, each with its own id and hop
	// (a steady message rate); Gap is then unused. Default 0: one
	// broadcast at a time, Gap apart.
	Interval time.Duration
	// Seed seeds everything: the topology, the network's random source and
	// each core's source (for independent trials after the first, sources
	// derived from Seed and the trial's index). Default 1.
	Seed uint64
	// BodySize is the length of each published body. It does not change
	// the results (there is no bandwidth model). Default 8.
	BodySize int
	// GraftTimeout and GraftRetry, when positive, are the Plumtree timers
	// (gossip.Config.PlumtreeGraftTimeout and PlumtreeGraftRetry) used as
	// they are. Default 0: scaled to the link model (PlumtreeTimers), since
	// the core's defaults are for real links of a millisecond or less and
	// shorter than the simulator's default delays of 10-100 ms, which makes
	// lazy links graft while the eager copy is still on its way and the
	// tree never settle.
	GraftTimeout, GraftRetry time.Duration
	// Membership, when set, runs package membership on every node
	// (membership.go): the topology is what the nodes boot with, and
	// their memberships add and remove links from then on; its Churn
	// replaces nodes during the run. Default nil: off, and the overlay is
	// the topology, fixed.
	Membership *MembershipConfig
	// Workers is how many goroutines run the broadcasts when they are
	// independent trials (the default Gap, one broadcast at a time, no
	// crash after time 0, a router without per-node state: flood or fanout; see
	// parallel.go). It never changes the output, only the wall time.
	// Default 0: GOMAXPROCS. 1 runs every broadcast on the calling
	// goroutine. A run uses at most one worker per broadcast and at most
	// MaxParallelNodes/N workers (one at a million nodes), so that the
	// copies of the node state fit in memory; other runs use one.
	Workers int
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Nodes:      10_000,
		Topology:   TopologyUndirected,
		Degree:     16,
		Gossip:     gossip.DefaultConfig(),
		Latency:    Latency{Kind: LatencyUniform, Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Broadcasts: 1,
		Gap:        2 * time.Minute,
		Seed:       1,
		BodySize:   8,
	}
}

// MaxNodes bounds Nodes: node indexes are stored in 32 bits.
const MaxNodes = 1 << 30

// MaxWorkers bounds Workers: more goroutines than this would only cost
// memory on any machine this runs on.
const MaxWorkers = 256

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	n := c.Nodes
	if c.Graph != nil {
		n = c.Graph.N()
	} else {
		switch c.Topology {
		case TopologyKOut, TopologyUndirected, TopologyRegular:
		default:
			return fmt.Errorf("sim: topology %q is not kout, undirected or regular, and no graph was loaded", c.Topology)
		}
		if c.Degree < 1 {
			return fmt.Errorf("sim: degree must be at least 1, got %d", c.Degree)
		}
		if c.Degree >= c.Nodes {
			return fmt.Errorf("sim: degree %d needs more than %d nodes", c.Degree, c.Nodes)
		}
		if c.Topology == TopologyRegular && c.Nodes*c.Degree%2 != 0 {
			return fmt.Errorf("sim: a %d-regular graph on %d nodes does not exist (nodes × degree must be even)", c.Degree, c.Nodes)
		}
	}
	if n < 2 || n > MaxNodes {
		return fmt.Errorf("sim: nodes must be in 2..%d, got %d", MaxNodes, n)
	}
	if err := c.Gossip.ValidateSettings(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := c.Latency.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if c.Regions != nil {
		if err := c.Regions.Validate(); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if !(c.Loss >= 0 && c.Loss < 1) {
		return fmt.Errorf("sim: loss must be in [0, 1), got %v", c.Loss)
	}
	if err := c.Crash.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := (&fault.Plan{Rule: fault.Rule{Delay: c.Delay, Jitter: c.Jitter}}).Validate(); err != nil {
		return fmt.Errorf("sim: --delay: %w", err)
	}
	if err := c.Partition.validate(n); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := c.Pause.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if c.Broadcasts < 1 {
		return fmt.Errorf("sim: broadcasts must be at least 1, got %d", c.Broadcasts)
	}
	if len(c.Adversaries) > 0 {
		if err := c.Adversaries.validateFor(c, n); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if c.Gap < 0 {
		return fmt.Errorf("sim: gap must not be negative, got %v", c.Gap)
	}
	if c.Interval < 0 {
		return fmt.Errorf("sim: interval must not be negative, got %v", c.Interval)
	}
	if end, ok := c.RunEndBound(); ok && c.Crash.Fraction > 0 && c.Crash.At > end {
		gap := ""
		if c.Broadcasts > 1 {
			gap = fmt.Sprintf(", %v apart", c.Gap)
		}
		return fmt.Errorf("sim: crash at %v: %w, which is by %v at the latest (%d broadcast(s) of at most %d hops of at most %v%s)",
			c.Crash.At, ErrCrashNeverHappened, end, c.Broadcasts, c.Gossip.MaxHops, c.maxDelay(), gap)
	}
	if c.GraftTimeout < 0 || c.GraftRetry < 0 {
		return fmt.Errorf("sim: graft timeout and retry must not be negative, got %v and %v", c.GraftTimeout, c.GraftRetry)
	}
	if c.Workers < 0 || c.Workers > MaxWorkers {
		return fmt.Errorf("sim: workers must be in 0..%d (0: GOMAXPROCS), got %d", MaxWorkers, c.Workers)
	}
	if c.Membership != nil {
		if err := c.Membership.validate(c, n); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if c.BodySize < 0 || c.BodySize > c.Gossip.MaxBody {
		return fmt.Errorf("sim: body size must be in 0..%d, got %d", c.Gossip.MaxBody, c.BodySize)
	}
	return nil
}

// maxDelay is the longest delay a copy can take, when the latency model
// has one (a log-normal does not: it returns -1).
func (c *Config) maxDelay() time.Duration {
	var d time.Duration
	switch c.Latency.Kind {
	case LatencyConstant:
		d = c.Latency.Min
	case LatencyUniform:
		d = c.Latency.Max
	default:
		return -1
	}
	d += c.Delay + c.Jitter
	if r := c.Regions; r != nil {
		var m time.Duration
		for _, row := range r.Delay {
			m = max(m, slices.Max(row))
		}
		d += m
	}
	return d
}

// RunEndBound is a virtual time by which a run of c has certainly ended,
// and false when the latency model has no longest delay (log-normal). A
// copy at hop h is sent when its sender got hop h−1, no copy travels past
// Gossip.MaxHops hops, and the next broadcast starts Gap after the last
// copy lands, so the run ends by Broadcasts × MaxHops × the longest delay,
// plus (Broadcasts − 1) × Gap. A crash later than that can never happen,
// and Validate refuses it before anything runs.
func (c *Config) RunEndBound() (time.Duration, bool) {
	d := c.maxDelay()
	if d < 0 {
		return 0, false
	}
	end := float64(c.Broadcasts)*float64(c.Gossip.MaxHops)*float64(d) + float64(c.Broadcasts-1)*float64(c.Gap+c.Interval)
	if c.Pause.Fraction > 0 {
		end += float64(c.Pause.To - c.Pause.From) // frames wait out the pause
	}
	if end >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(end), true
}

// LatencyKind names a latency distribution.
type LatencyKind uint8

// Latency distributions.
const (
	// LatencyConstant: every message takes Min.
	LatencyConstant LatencyKind = iota
	// LatencyUniform: uniform in [Min, Max].
	LatencyUniform
	// LatencyLogNormal: exp(N(ln Median, Sigma²)), a long right tail.
	LatencyLogNormal
)

// Latency is a per-message delay distribution, drawn independently for
// every message from the network's random source.
type Latency struct {
	Kind     LatencyKind
	Min, Max time.Duration // constant (Min) and uniform
	Median   time.Duration // log-normal: e^μ
	Sigma    float64       // log-normal: σ of the underlying normal
}

// ParseLatency reads "100ms" (constant), "50ms-200ms" (uniform) or
// "lognormal:100ms,0.5" (log-normal with median 100ms and σ 0.5).
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "lognormal:"); ok {
		med, sig, ok := strings.Cut(rest, ",")
		if !ok {
			return Latency{}, fmt.Errorf("latency %q: want lognormal:MEDIAN,SIGMA", s)
		}
		m, err := parseDuration(med)
		if err != nil {
			return Latency{}, fmt.Errorf("latency %q: median: %w", s, err)
		}
		sg, err := strconv.ParseFloat(strings.TrimSpace(sig), 64)
		if err != nil {
			return Latency{}, fmt.Errorf("latency %q: sigma: %w", s, err)
		}
		l := Latency{Kind: LatencyLogNormal, Median: m, Sigma: sg}
		return l, l.Validate()
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok && lo != "" {
		a, err := parseDuration(lo)
		if err != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", s, err)
		}
		b, err := parseDuration(hi)
		if err != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", s, err)
		}
		l := Latency{Kind: LatencyUniform, Min: a, Max: b}
		return l, l.Validate()
	}
	d, err := parseDuration(s)
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: want 100ms, 50ms-200ms or lognormal:100ms,0.5: %w", s, err)
	}
	l := Latency{Kind: LatencyConstant, Min: d}
	return l, l.Validate()
}

// parseDuration is time.ParseDuration that also takes a bare "0".
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// Validate reports a distribution that cannot be drawn from.
func (l Latency) Validate() error {
	switch l.Kind {
	case LatencyConstant:
		if l.Min < 0 {
			return fmt.Errorf("latency must not be negative, got %v", l.Min)
		}
	case LatencyUniform:
		if l.Min < 0 || l.Max < l.Min {
			return fmt.Errorf("uniform latency needs 0 <= min <= max, got %v-%v", l.Min, l.Max)
		}
	case LatencyLogNormal:
		if l.Median <= 0 || !(l.Sigma >= 0) || l.Sigma > 10 {
			return fmt.Errorf("log-normal latency needs median > 0 and sigma in [0, 10], got %v,%v", l.Median, l.Sigma)
		}
	default:
		return fmt.Errorf("unknown latency kind %d", l.Kind)
	}
	return nil
}

// horizon is a delay that few draws exceed, which sizes the event queue.
func (l Latency) horizon() int64 {
	switch l.Kind {
	case LatencyUniform:
		return int64(l.Max)
	case LatencyLogNormal:
		return int64(float64(l.Median) * math.Exp(3*l.Sigma))
	}
	return int64(l.Min)
}

// String renders l in the form ParseLatency reads.
func (l Latency) String() string {
	switch l.Kind {
	case LatencyUniform:
		return l.Min.String() + "-" + l.Max.String()
	case LatencyLogNormal:
		return "lognormal:" + l.Median.String() + "," + strconv.FormatFloat(l.Sigma, 'g', -1, 64)
	}
	return l.Min.String()
}

// Crash makes a Fraction of the nodes, chosen at random, stop at virtual
// time At: they receive and send nothing from then on. Copies they sent
// before still arrive. The zero value crashes nobody.
type Crash struct {
	Fraction float64
	At       time.Duration
}

// ParseCrash reads "FRACTION@TIME", for example "0.1@500ms"; "0.1" alone
// crashes the nodes at time 0, before the first broadcast.
func ParseCrash(s string) (Crash, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Crash{}, nil
	}
	frac, at, hasAt := strings.Cut(s, "@")
	f, err := strconv.ParseFloat(strings.TrimSpace(frac), 64)
	if err != nil {
		return Crash{}, fmt.Errorf("crash %q: want FRACTION@TIME such as 0.1@500ms: %w", s, err)
	}
	c := Crash{Fraction: f}
	if hasAt {
		if c.At, err = parseDuration(at); err != nil {
			return Crash{}, fmt.Errorf("crash %q: time: %w", s, err)
		}
	}
	return c, c.Validate()
}

// Validate reports a crash that cannot happen.
func (c Crash) Validate() error {
	if !(c.Fraction >= 0 && c.Fraction < 1) {
		return fmt.Errorf("crash fraction must be in [0, 1), got %v", c.Fraction)
	}
	if c.At < 0 {
		return fmt.Errorf("crash time must not be negative, got %v", c.At)
	}
	return nil
}

// String renders c in the form ParseCrash reads, or "" for no crash.
func (c Crash) String() string {
	if c.Fraction == 0 {
		return ""
	}
	return strconv.FormatFloat(c.Fraction, 'g', -1, 64) + "@" + c.At.String()
}

// Regions is a latency matrix between named regions: Delay[a][b] is the
// base delay of a message from region a to region b.
type Regions struct {
	Names []string
	Delay [][]time.Duration
}

// ParseRegions reads a region matrix: one line per region, its name and
// then its delay to every region in the order of the lines. Blank lines and
// lines starting with # are skipped. Example:
//
//	# region   us     eu     ap
//	us         10ms   80ms   150ms
//	eu         80ms   10ms   120ms
//	ap         150ms  120ms  10ms
func ParseRegions(text string) (*Regions, error) {
	r := &Regions{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		row := make([]time.Duration, 0, len(f)-1)
		for _, s := range f[1:] {
			d, err := parseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("regions line %d: %w", i+1, err)
			}
			row = append(row, d)
		}
		r.Names = append(r.Names, f[0])
		r.Delay = append(r.Delay, row)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate checks that the matrix is square, non-negative and not too big.
func (r *Regions) Validate() error {
	if len(r.Names) == 0 {
		return errors.New("regions: no region")
	}
	if len(r.Names) > 255 {
		return fmt.Errorf("regions: at most 255 regions, got %d", len(r.Names))
	}
	if len(r.Delay) != len(r.Names) {
		return fmt.Errorf("regions: %d names but %d rows", len(r.Names), len(r.Delay))
	}
	for i, row := range r.Delay {
		if len(row) != len(r.Names) {
			return fmt.Errorf("regions: row %q has %d delays, want %d", r.Names[i], len(row), len(r.Names))
		}
		for _, d := range row {
			if d < 0 {
				return fmt.Errorf("regions: row %q: negative delay %v", r.Names[i], d)
			}
		}
	}
	return nil
}

// theoryHops is log_k N, the lesson's hop estimate for k peers per node.
func theoryHops(n, k float64) float64 {
	if k <= 1 {
		return math.Inf(1)
	}
	return math.Log(n) / math.Log(k)
}

// TheoryHops is log_k N: the hops a message needs if every node passes it
// to k new nodes.
func TheoryHops(n, k int) float64 { return theoryHops(float64(n), float64(k)) }

// TheoryAllReached is e^(−e^(−c)) with k = ln N + c: the probability that
// gossip to k random members reaches every one of N nodes (Erdős–Rényi;
// Kermarrec, Massoulié and Ganesh 2003). It is also the probability that a
// k-out graph leaves no node without an in-link.
func TheoryAllReached(n, k int) float64 {
	c := float64(k) - math.Log(float64(n))
	return math.Exp(-math.Exp(-c))
}

// Plumtree's timers in the simulator, as multiples of the longest link
// delay D (the latency model's maximum, plus the largest region delay; a
// log-normal's median × e^(3σ)):
//
//   - the GRAFT timeout is GraftTimeoutDelays × D. An IHAVE comes from a
//     lazy neighbour that got the message first; the eager copy lags it by
//     the difference between the tree path and the lazy one, which is
//     several link delays on a tree of a dozen hops. A timeout of one or
//     two delays grafts while the eager copy is on its way: the link turns
//     eager, the next message comes twice and prunes a link, and the tree
//     keeps re-forming (RMR 2-3 instead of 0 at N = 10,000);
//   - the retry, the paper's second timeout, is about a round trip:
//     GraftRetryDelays × D.
const (
	GraftTimeoutDelays = 10
	GraftRetryDelays   = 2
)

// PlumtreeTimers returns the GRAFT timeout and retry a run of c gives its
// Plumtree cores: GraftTimeout and GraftRetry when set, otherwise the
// multiples of the longest link delay above.
func (c *Config) PlumtreeTimers() (timeout, retry time.Duration) {
	d := c.maxDelay()
	if d < 0 {
		d = time.Duration(c.Latency.horizon()) + c.Delay + c.Jitter
		if r := c.Regions; r != nil {
			var m time.Duration
			for _, row := range r.Delay {
				m = max(m, slices.Max(row))
			}
			d += m
		}
	}
	d = max(d, time.Millisecond)
	timeout, retry = GraftTimeoutDelays*d, GraftRetryDelays*d
	if c.GraftTimeout > 0 {
		timeout = c.GraftTimeout
	}
	if c.GraftRetry > 0 {
		retry = c.GraftRetry
	}
	return timeout, retry
}
