package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/sim"
	"gossipmesh/web"
)

// runSim is `mesh sim`: flags → sim.Config, then a run, a sweep or a
// named experiment, reported as a table, JSON or CSV.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := sim.DefaultConfig()
	fs := newFlagSet("sim", "sim [flags]", stderr)
	nodes := fs.Int("nodes", def.Nodes, "number of nodes N (a FILE topology sets its own)")
	topology := fs.String("topology", def.Topology, "kout (one-way random out-links), undirected, regular, or an edge-list FILE\n(mesh status --json output, or one \"a b\" pair of 0-based indexes per line)")
	degree := fs.Int("degree", def.Degree, "peers per node: outbound for kout, mean degree for undirected, exact for regular")
	strategy := fs.String("strategy", string(def.Gossip.Strategy), fmt.Sprintf("router, as for mesh node: one of %v", gossip.Strategies()))
	fanout := fs.Int("fanout", def.Gossip.Fanout, "random peers per message for the fanout strategy")
	antiEntropy := def.Gossip.AntiEntropy
	fs.Var(antiEntropyValue{&antiEntropy}, "anti-entropy", gossip.AntiEntropyUsage)
	signing := fs.String("signing", string(def.Gossip.Signing), signingUsage)
	authModel := fs.String("auth", "model", "how strict signing is carried out: model (a keyed hash per node, about 1 µs a check: the default, which keeps a million nodes in seconds) or ed25519 (real keys derived per node, about 70 µs a check)")
	validate := fs.String("validate", "", validateUsage())
	latency := fs.String("latency", def.Latency.String(), "per-message link delay: 100ms (constant), 50ms-200ms (uniform) or lognormal:100ms,0.5 (median, sigma)")
	regions := fs.String("regions", "", "region latency matrix FILE: one line per region, its name then its delay to each region;\nnode i is in region i mod R and a message takes matrix delay + a --latency draw (default 0 with --regions)")
	loss := fs.Float64("loss", 0, "probability that a link drops a message, in [0, 1)")
	crash := fs.String("crash", "", "crash a random FRACTION of nodes at virtual TIME: FRACTION@TIME, e.g. 0.1@500ms (0.1 alone: at 0)")
	partition := fs.String("partition", "", "cut every link between the SETS during virtual [FROM, TO): SETS@FROM-TO, SETS being halves\nor node sets joined by /, e.g. halves@1s-11s or 0-4999/5000-9999@1s-11s")
	delay := fs.String("delay", "", "add D (plus or minus JITTER, uniform) to every link's --latency draw: D or D,JITTER, e.g. 20ms,10ms")
	pause := fs.String("pause", "", "pause a FRACTION of nodes (seeded) during virtual [FROM, TO): FRACTION@FROM-TO, e.g. 0.1@2s-7s;\nframes sent to them wait and are handled when they resume")
	adversaries := fs.String("adversaries", "", "make FRACTION of the nodes (seeded) run adversary MODEs around their core: FRACTION:MODE[,MODE…][,FRACTION:MODE…],\ne.g. 0.1:blackhole,0.01:spam=100 (modes as for mesh node --adversary; rate modes need --interval);\nthe report adds honest reach and what the honest nodes accepted")
	broadcasts := fs.Int("broadcasts", def.Broadcasts, "messages to publish, one after another, each from a random live node")
	gap := fs.Duration("gap", def.Gap, "virtual time between a broadcast settling and the next publish\n(default: the seen-cache TTL, so broadcasts are independent; 0 = back to back)")
	interval := fs.Duration("interval", 0, "publish a broadcast every INTERVAL of virtual time, whether or not the earlier ones\nhave settled, so that many are in flight at once (replaces --gap; default 0: one at a time)")
	graphs := fs.Int("graphs", 1, "run on this many independent topologies (seeds seed, seed+1, …) and pool the broadcasts")
	seed := fs.Uint64("seed", def.Seed, "seed for the topology, the network and every core")
	workers := fs.Int("workers", def.Workers, fmt.Sprintf("goroutines that run independent broadcasts (the default --gap, flood or fanout, no --crash after 0,\nno --partition or --pause); the output is the same for any value (0 = GOMAXPROCS, here %d; 1 = one goroutine)", runtime.GOMAXPROCS(0)))
	asJSON := fs.Bool("json", false, "print one JSON object per run (per row for --experiment)")
	asCSV := fs.Bool("csv", false, "print CSV, one row per broadcast")
	sweep := fs.String("sweep", "", "run once per value: fanout=1..12, degree=4..16/2, nodes=1000,10000,100000, loss=0..0.5/0.1")
	svg := fs.String("svg", "", "where --sweep or --experiment plumtree or churn writes its SVG chart\n(default sim-sweep-PARAM.svg or sim-experiment-NAME.svg; \"-\" for none);\nfor --experiment byzantine or testbed, the charts' PREFIX (default sim-experiment-NAME)")
	trace := fs.String("trace", "", fmt.Sprintf("write the run as a dashboard trace to `FILE` for mesh replay (at most %d nodes, one graph)", web.MaxTraceNodes))
	chart := fs.String("chart", "", "write the run's coverage curve and hop histogram to `PREFIX`-coverage.svg and PREFIX-hops.svg")
	graftTimeout := fs.Duration("graft-timeout", 0, fmt.Sprintf("plumtree: wait this long after an IHAVE before GRAFT (default 0: %d × the longest link delay)", sim.GraftTimeoutDelays))
	graftRetry := fs.Duration("graft-retry", 0, fmt.Sprintf("plumtree: wait this long before grafting the next announcer (default 0: %d × the longest link delay)", sim.GraftRetryDelays))
	optThreshold := fs.Int("optimize-threshold", def.Gossip.PlumtreeOptimizeThreshold, "plumtree: move to a lazy path shorter than the eager one by this many hops (the paper's tree optimization; 0 = off)")
	md := sim.DefaultMembershipConfig()
	member := fs.Bool("membership", false, "run the membership on every node (as mesh node --membership): the topology is what nodes boot with;\ndials, drops and evictions change the links from then on, and a --crash closes the crashed nodes' links")
	activeLow := fs.Int("active-low", md.Config.ActiveLow, "with --membership or --experiment churn: dial from the passive view below this many links")
	activeHigh := fs.Int("active-high", md.Config.ActiveHigh, "with --membership or --experiment churn: drop links above this many")
	silentCrash := fs.Bool("silent-crash", false, "with --membership: a crashed node leaves its links open, so only its peers' failure detectors notice")
	churnRate := fs.Float64("churn-rate", sim.DefaultChurnRate, "--experiment churn: fraction of the nodes replaced (crashed, and as many fresh ones joined) every second")
	churnDuration := fs.Duration("churn-duration", sim.DefaultChurnDuration, "--experiment churn: how long the churn and the broadcasts go on")
	experiment := fs.String("experiment", "", fmt.Sprintf("run a named experiment and print Markdown tables: one of %v", sim.Experiments()))
	sybils := fs.Int("sybils", sim.TestbedSybils, "--experiment testbed: sybils beside the honest nodes (--nodes sets those, default 1000;\nsybils default to 4 per honest node)")
	kinds := fs.String("kinds", "", fmt.Sprintf("--experiment byzantine: only these kinds of adversary, comma-separated (default all: %s)", strings.Join(sim.ByzantineKinds, ",")))
	publishFor := fs.Duration("publish-for", sim.TestbedDuration, "--experiment testbed: virtual time of measured publishing at 120 messages/s")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole command to `FILE` (go tool pprof), to find where a run spends its time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "mesh sim: "+format+"\n", a...)
		fs.Usage()
		return errUsage
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	if *asJSON && *asCSV {
		return bad("--json and --csv are exclusive")
	}
	if *sweep != "" && *experiment != "" {
		return bad("--sweep and --experiment are exclusive")
	}
	if *graphs < 1 {
		return bad("--graphs must be at least 1, got %d", *graphs)
	}

	if (*trace != "" || *chart != "") && (*sweep != "" || *experiment != "") {
		return bad("--trace and --chart describe a single run, not --sweep or --experiment")
	}
	if (set["churn-rate"] || set["churn-duration"]) && *experiment != sim.ExperimentChurn {
		return bad("--churn-rate and --churn-duration are --experiment churn's")
	}
	if (set["silent-crash"] || set["active-low"] || set["active-high"]) && !*member && *experiment != sim.ExperimentChurn {
		return bad("--silent-crash, --active-low and --active-high need --membership")
	}
	if *trace != "" && *member {
		return bad("--trace records a fixed set of links; with --membership they change during the run")
	}
	if *trace != "" && *graphs != 1 {
		return bad("--trace records one topology: drop --graphs %d", *graphs)
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}

	progress := newProgress(stderr)
	defer progress.done()

	if *experiment != "" {
		if *asCSV {
			return bad("--experiment prints Markdown or --json, not CSV")
		}
		ec := sim.ExperimentConfig{Seed: *seed, Progress: progress.update, Workers: *workers,
			Testbed: sim.TestbedSize{Duration: *publishFor}}
		if set["sybils"] {
			ec.Testbed.Sybils = *sybils
		}
		if (set["sybils"] || set["publish-for"]) && *experiment != sim.ExperimentTestbed {
			return bad("--sybils and --publish-for are for --experiment testbed")
		}
		if set["kinds"] {
			if *experiment != sim.ExperimentByzantine {
				return bad("--kinds is for --experiment byzantine")
			}
			ec.Kinds = strings.Split(*kinds, ",")
		}
		if set["nodes"] {
			ec.Nodes = *nodes
		}
		if set["graphs"] {
			ec.Graphs = *graphs
		}
		if set["broadcasts"] {
			ec.Broadcasts = *broadcasts
		}
		if *experiment == sim.ExperimentChurn {
			ec.ChurnRate, ec.ChurnDuration, ec.Workers = *churnRate, *churnDuration, *workers
			ec.ActiveLow, ec.ActiveHigh = *activeLow, *activeHigh
			if *churnRate <= 0 || *churnRate > sim.MaxChurnRate {
				return bad("--churn-rate %v: want a fraction in (0, %v]", *churnRate, sim.MaxChurnRate)
			}
			if *churnDuration < time.Second {
				return bad("--churn-duration %v: want at least one step of 1s", *churnDuration)
			}
		}
		if !slicesContains(sim.Experiments(), *experiment) {
			return bad("--experiment: unknown experiment %q (want one of %v)", *experiment, sim.Experiments())
		}
		e, err := sim.RunExperiment(ctx, *experiment, ec)
		if err != nil {
			return err
		}
		progress.done()
		if *asJSON {
			err = e.WriteJSON(stdout)
		} else {
			err = e.WriteMarkdown(stdout)
		}
		if err == nil && e.Byzantine != nil && *svg != "-" {
			prefix := strings.TrimSuffix(*svg, ".svg")
			if prefix == "" {
				prefix = "sim-experiment-" + e.Name
			}
			for _, nc := range e.Byzantine.Charts() {
				if err = writeChart(prefix+nc.Suffix, nc.Chart); err != nil {
					break
				}
				fmt.Fprintf(stderr, "mesh sim: wrote %s\n", prefix+nc.Suffix)
			}
		}
		var ch *sim.Chart
		switch {
		case e.Plumtree != nil:
			ch = e.Plumtree.Chart()
		case e.Churn != nil:
			ch = e.Churn.Chart()
		}
		if err == nil && ch != nil {
			path := *svg
			if path == "" {
				path = "sim-experiment-" + *experiment + ".svg"
			}
			if path != "-" {
				if err = writeChart(path, ch); err == nil {
					fmt.Fprintf(stderr, "mesh sim: wrote %s\n", path)
				}
			}
		}
		interrupted(stderr, e.Partial)
		return err
	}

	cfg := def
	cfg.Nodes = *nodes
	cfg.Topology = *topology
	cfg.Degree = *degree
	cfg.Broadcasts = *broadcasts
	cfg.Gap = *gap
	cfg.Interval = *interval
	cfg.Seed = *seed
	cfg.Workers = *workers
	var err error
	cfg.Loss = *loss
	if cfg.Adversaries, err = sim.ParseAdversaries(*adversaries); err != nil {
		return bad("--adversaries: %v", err)
	}
	if len(cfg.Adversaries) > 0 && (*graphs != 1 || *sweep != "") {
		return bad("--adversaries runs on one graph: drop --graphs and --sweep")
	}
	cfg.GraftTimeout, cfg.GraftRetry = *graftTimeout, *graftRetry
	if cfg.Gossip.Strategy, err = gossip.ParseStrategy(*strategy); err != nil {
		return bad("--strategy: %v", err)
	}
	cfg.Gossip.Fanout = *fanout
	cfg.Gossip.AntiEntropy = antiEntropy
	cfg.Gossip.PlumtreeOptimizeThreshold = *optThreshold
	if cfg.Gossip.Signing, err = gossip.ParseSigning(*signing); err != nil {
		return bad("--signing: %v", err)
	}
	switch *authModel {
	case "model":
	case "ed25519":
		cfg.Gossip.Auth = identity.NewDerivedAuth(cfg.Seed)
	default:
		return bad("--auth: want model or ed25519, got %q", *authModel)
	}
	if cfg.Gossip.Validators, err = gossip.ParseValidators(*validate); err != nil {
		return bad("--validate: %v", err)
	}
	if *member {
		cfg.Membership = sim.DefaultMembershipConfig()
		cfg.Membership.Config.ActiveLow, cfg.Membership.Config.ActiveHigh = *activeLow, *activeHigh
		cfg.Membership.SilentCrash = *silentCrash
	}
	if cfg.Latency, err = sim.ParseLatency(*latency); err != nil {
		return bad("--latency: %v", err)
	}
	if cfg.Crash, err = sim.ParseCrash(*crash); err != nil {
		return bad("--crash: %v", err)
	}
	if cfg.Partition, err = sim.ParsePartition(*partition); err != nil {
		return bad("--partition: %v", err)
	}
	if cfg.Delay, cfg.Jitter, err = sim.ParseDelay(*delay); err != nil {
		return bad("--delay: %v", err)
	}
	if cfg.Pause, err = sim.ParsePause(*pause); err != nil {
		return bad("--pause: %v", err)
	}
	if *regions != "" {
		data, err := os.ReadFile(*regions)
		if err != nil {
			return bad("--regions: %v", err)
		}
		if cfg.Regions, err = sim.ParseRegions(string(data)); err != nil {
			return bad("--regions %s: %v", *regions, err)
		}
		if !set["latency"] {
			cfg.Latency = sim.Latency{Kind: sim.LatencyConstant}
		}
	}
	switch cfg.Topology {
	case sim.TopologyKOut, sim.TopologyUndirected, sim.TopologyRegular:
	default:
		f, err := os.Open(cfg.Topology)
		if err != nil {
			return bad("--topology: %q is not kout, undirected or regular, and not a readable file: %v", cfg.Topology, err)
		}
		cfg.Graph, err = sim.LoadGraph(f)
		f.Close()
		if err != nil {
			return bad("--topology %s: %v", cfg.Topology, err)
		}
		if set["nodes"] && *nodes != cfg.Graph.N() {
			return bad("--nodes %d, but %s has %d nodes", *nodes, cfg.Topology, cfg.Graph.N())
		}
		cfg.Nodes = cfg.Graph.N()
		cfg.Topology = filepath.Base(cfg.Topology)
	}

	if *sweep != "" {
		sw, err := sim.ParseSweep(*sweep)
		if err != nil {
			return bad("--sweep: %v", err)
		}
		if cfg.Graph != nil && sw.Param != sim.SweepFanout && sw.Param != sim.SweepLoss {
			return bad("--sweep %s needs a generated topology, not a file", sw.Param)
		}
		for _, v := range sw.Values {
			c := sw.Apply(cfg, v)
			if err := c.Validate(); err != nil {
				return bad("--sweep %s=%s: %v", sw.Param, sw.Label(v), err)
			}
		}
		rs, err := sim.RunSweep(ctx, cfg, sw, *graphs, progress.update)
		if err != nil {
			return crashError(stderr, err)
		}
		progress.done()
		switch {
		case *asJSON:
			for _, r := range rs {
				if err := r.WriteJSON(stdout); err != nil {
					return err
				}
			}
		case *asCSV:
			err = writeCSV(stdout, rs)
		default:
			err = sim.WriteSweepText(stdout, sw, rs)
		}
		if err != nil {
			return err
		}
		path := *svg
		if path == "" {
			path = "sim-sweep-" + sw.Param + ".svg"
		}
		if path != "-" {
			if err := writeChart(path, sim.SweepChart(sw, rs)); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "mesh sim: wrote %s\n", path)
		}
		interrupted(stderr, ctx.Err() != nil || len(rs) > 0 && rs[len(rs)-1].Partial)
		return nil
	}

	if err := cfg.Validate(); err != nil {
		return bad("%v", strings.TrimPrefix(err.Error(), "sim: "))
	}
	var obs sim.Observer
	var tracer *sim.Tracer
	if *trace != "" {
		if cfg.Nodes > web.MaxTraceNodes {
			return bad("--trace: %d nodes is over the trace limit of %d nodes (the dashboard draws every node); use --chart for larger runs", cfg.Nodes, web.MaxTraceNodes)
		}
		if b := sim.TraceEventBound(cfg.Nodes, cfg.Broadcasts); b > web.MaxTraceEvents {
			return bad("--trace: %d nodes × %d broadcasts may need %d events, over the trace limit of %d events; use fewer --broadcasts", cfg.Nodes, cfg.Broadcasts, b, web.MaxTraceEvents)
		}
		if cfg.Graph == nil {
			// Built here, from the seed the run would use, so that the
			// trace's links are the run's.
			if cfg.Graph, err = sim.BuildGraph(&cfg); err != nil {
				return err
			}
		}
		tracer = sim.NewTracer(web.MaxTraceEvents)
		obs = tracer.Observer()
	}
	var charts *sim.RunCharts
	if *chart != "" {
		charts = sim.NewRunCharts()
		obs = obs.Also(charts.Observer())
	}
	r, err := sim.RunObserved(ctx, cfg, *graphs, progress.update, obs)
	if err != nil {
		return crashError(stderr, err)
	}
	progress.done()
	if tracer != nil {
		if err := writeTrace(*trace, cfg.Graph, r, tracer); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "mesh sim: wrote %s (%d events)\n", *trace, len(tracer.Events()))
		if n := tracer.DroppedDuplicates(); n > 0 {
			fmt.Fprintf(stderr, "mesh sim: the trace leaves out all %d duplicates: with them it would pass the limit of %d events\n", n, web.MaxTraceEvents)
		}
	}
	if charts != nil {
		prefix := strings.TrimSuffix(*chart, ".svg")
		cov, hops := charts.Charts(r)
		for _, c := range []struct {
			path string
			ch   *sim.Chart
		}{{prefix + "-coverage.svg", cov}, {prefix + "-hops.svg", hops}} {
			if err := writeChart(c.path, c.ch); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "mesh sim: wrote %s\n", c.path)
		}
	}
	switch {
	case *asJSON:
		err = r.WriteJSON(stdout)
	case *asCSV:
		err = writeCSV(stdout, []*sim.Report{r})
	default:
		err = r.WriteText(stdout)
	}
	interrupted(stderr, r.Partial)
	return err
}

// writeTrace writes tr, recorded on graph g, in the dashboard's trace
// format. The source line describes the run rather than quoting the
// command line, so that the same run written to another path gives the
// same bytes.
func writeTrace(path string, g *sim.Graph, r *sim.Report, tr *sim.Tracer) error {
	if err := tr.Err(); err != nil {
		return err
	}
	src := fmt.Sprintf("mesh sim: %s, %d broadcast(s)", r.Describe(), r.Broadcasts)
	if n := tr.DroppedDuplicates(); n > 0 {
		src += fmt.Sprintf("; %d duplicates left out (event limit %d)", n, web.MaxTraceEvents)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	tw, err := web.NewTraceWriter(f, web.TraceHeader{Source: src, Nodes: g.N(), Links: g.Links()})
	if err != nil {
		return fmt.Errorf("trace %s: %w", path, err)
	}
	for _, e := range tr.Events() {
		if r.Partial && e.Kind != sim.TraceDown && int(e.Broadcast) >= r.Broadcasts {
			continue // the broadcast that was cut off, as in the report
		}
		ev := web.TraceEvent{AtMS: e.AtMS(), Kind: e.Kind.String(), Node: int(e.Node), From: int(e.From), Hop: int(e.Hop)}
		if e.Kind != sim.TraceDown {
			ev.Msg = "m" + strconv.Itoa(int(e.Broadcast)+1)
		}
		if err := tw.Write(ev); err != nil {
			return fmt.Errorf("trace %s: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("trace %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trace %s: %w", path, err)
	}
	return nil
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// crashError turns a run that ended before its --crash time into a flag
// error (exit 2): the run cannot be what the user asked for. Other errors
// pass through.
func crashError(stderr io.Writer, err error) error {
	if errors.Is(err, sim.ErrCrashNeverHappened) {
		fmt.Fprintf(stderr, "mesh sim: --crash: %v\n", strings.TrimPrefix(err.Error(), "sim: "))
		return errUsage
	}
	return err
}

// interrupted tells the user that what was printed is a partial report.
func interrupted(stderr io.Writer, partial bool) {
	if partial {
		fmt.Fprintln(stderr, "mesh sim: interrupted: the report above is partial")
	}
}

func writeCSV(w io.Writer, rs []*sim.Report) error {
	for i, r := range rs {
		var b strings.Builder
		if err := r.WriteCSV(&b); err != nil {
			return err
		}
		s := b.String()
		if i > 0 {
			_, s, _ = strings.Cut(s, "\n") // one header only
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
	return nil
}

func writeChart(path string, ch *sim.Chart) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := ch.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return nil
}

// progress draws a bar on stderr when stderr is a terminal, at most ten
// times a second; when stderr is piped or a file it draws nothing, so
// that logs and golden outputs stay clean.
type progress struct {
	w     io.Writer
	on    bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(stderr io.Writer) *progress {
	p := &progress{w: stderr, start: time.Now()}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) update(frac float64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	frac = min(max(frac, 0), 1)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac,
		now.Sub(p.start).Round(100*time.Millisecond))
	p.drawn = true
}

// done erases the bar.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 60))
		p.drawn = false
	}
}

// startCPUProfile starts the CPU profile of --cpuprofile into path and
// returns what stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
