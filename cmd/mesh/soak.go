package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/web"
)

func soakCommand() command {
	return command{name: "soak", summary: "run a mesh under heavy honest and hostile load and check its invariants", run: runSoak}
}

// soakJSON is `mesh soak --json`.
type soakJSON struct {
	Nodes          int            `json:"nodes"`
	DurationS      float64        `json:"duration_s"`
	Seed           uint64         `json:"seed"`
	OK             bool           `json:"ok"`
	Failures       []string       `json:"failures"`
	RSSBudgetBytes int64          `json:"rss_budget_bytes"`
	Settled        bool           `json:"settled"`
	PerNode        []soakNodeJSON `json:"per_node"`
	Load           struct {
		Small      int    `json:"small"`
		Tracked    int    `json:"tracked"`
		Large      int    `json:"large"`
		Errors     int    `json:"errors"`
		Skipped    int    `json:"skipped"`
		FirstError string `json:"first_error,omitempty"`
	} `json:"load"`
	Honest    soakHonestJSON `json:"honest"`
	Storm     *soakStormJSON `json:"storm"`
	Hostile   map[string]any `json:"hostile"`
	Victim    int            `json:"victim"`
	CrossSite soakCrossJSON  `json:"cross_site"`
}

type soakNodeJSON struct {
	Index           int    `json:"index"`
	PIDs            []int  `json:"pids"`
	PeakRSSBytes    int64  `json:"peak_rss_bytes"`
	FDs             int    `json:"fds"`
	PeakFDs         int    `json:"peak_fds"`
	Goroutines      int    `json:"goroutines"`
	PeakGoroutines  int    `json:"peak_goroutines"`
	LogBytes        int64  `json:"log_bytes"`
	Published       int    `json:"published"`
	Delivered       int    `json:"delivered"`
	MetricPublished int    `json:"metric_published"`
	MetricDelivered int    `json:"metric_delivered"`
	Expected        int    `json:"expected"`
	Missing         int    `json:"missing"`
	Twice           int    `json:"delivered_twice"`
	MaxPerMessage   int    `json:"max_deliveries_per_message"`
	Stray           int    `json:"stray"`
	Exact           bool   `json:"exact"`
	Inexact         string `json:"inexact,omitempty"`
}

type soakHonestJSON struct {
	Messages  int      `json:"messages"`
	Pairs     int      `json:"pairs"`
	Delivered int      `json:"delivered"`
	Ratio     float64  `json:"ratio"`
	Missing   []string `json:"missing"`
}

type soakStormJSON struct {
	Publisher    int            `json:"publisher"`
	Messages     int            `json:"messages"`
	ElapsedMS    float64        `json:"elapsed_ms"`
	Honest       soakHonestJSON `json:"honest"`
	InTime       int            `json:"in_time"`
	WithinMS     float64        `json:"within_ms"`
	MaxLatencyMS float64        `json:"max_latency_ms"`
	Error        string         `json:"error,omitempty"`
}

type soakCrossJSON struct {
	Sent    int             `json:"sent"`
	Changed int             `json:"changed"`
	ByRoute []soakRouteJSON `json:"by_route"`
}

// soakRouteJSON is one (route, kind) of cross-site request.
type soakRouteJSON struct {
	Route   string `json:"route"`
	Kind    string `json:"kind"`
	Sent    int    `json:"sent"`
	Refused int    `json:"refused"`
	Changed int    `json:"changed"`
	Other   int    `json:"other"`
	Example string `json:"example"`
}

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("soak", "soak [flags]", stderr)
	var lf launchFlags
	// The per-message counts come from each node's "delivered" log lines:
	// info is the least the soak can work with.
	lf.register(fs, localGOMAXPROCS, "info")
	d := cluster.DefaultSoakConfig()
	duration := fs.Duration("duration", d.Duration, "how long the mixed load runs (after the storm, if any)")
	rate := fs.Float64("rate", d.Rate, "small honest messages per second over the mesh, each POSTed to a random node (0: none)")
	size := fs.Int("size", d.Size, "body size of the small and the storm's messages, bytes")
	tracked := fs.Float64("tracked", d.Tracked, "tracked honest messages per second, each checked at every node with GET /messages/{id}?wait=")
	largeRate := fs.Float64("large-rate", d.LargeRate, "large honest messages per second, tracked too (0: none)")
	largeSize := fs.Int("large-size", d.LargeSize, "body size of the large messages, bytes")
	slowConns := fs.Int("slow-conns", d.SlowConns, "gossip connections that say hello, send most of a 1 MiB frame, then a byte every 5s")
	attempts := fs.Int("attempts", d.Attempts, "gossip connection attempts in all, slow ones included; the rest never say hello")
	tricklers := fs.Int("tricklers", d.Tricklers, "HTTP connections that trickle a POST /messages body a byte a second")
	subscribers := fs.Int("subscribers", d.Subscribers, "GET /events subscribers that never read")
	spread := fs.Bool("spread", false, "spread the slow connections, tricklers and subscribers over every node (default: all at one node, drawn from the seed)")
	crossEvery := fs.Duration("cross-site-every", d.CrossSiteEvery, "period of the cross-site request rounds (0: none)")
	dashboard := fs.Bool("dashboard", true, "serve the dashboard on a free 127.0.0.1 port and send it cross-site requests too")
	budget := sizeFlag{bytes: d.RSSBudget}
	fs.Var(&budget, "rss-budget", "peak RSS (VmHWM) allowed to any node: bytes, or with KiB, MiB or GiB")
	storm := fs.Int("storm", 0, "first publish this many messages at full speed at one node (POST /load, rate 0), then check exactly-once and that honest messages still arrive within 1s")
	stormHonest := fs.Int("storm-honest", d.StormHonest, "honest messages published right after the storm")
	honestWait := fs.Duration("honest-wait", d.HonestWait, "how long a tracked message may take to reach a node")
	settle := fs.Duration("settle", d.Settle, "after the load, how long to wait at most for the delivery counters to stop moving")
	logs := fs.String("logs", "", "keep the nodes' logs in `DIR` (default: a temporary directory, removed unless the soak fails)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "soak takes no arguments, got %q", fs.Args())
	}
	cfg, err := lf.config(stderr)
	if err != nil {
		return err
	}
	switch cfg.LogLevel {
	case "info", "debug":
	default:
		return usageError(stderr, "soak needs --log-level info or debug, got %q: it counts deliveries in the nodes' logs", cfg.LogLevel)
	}
	if cfg.Nodes < 2 {
		return usageError(stderr, "soak needs at least 2 nodes, got %d", cfg.Nodes)
	}
	sc := cluster.DefaultSoakConfig()
	sc.Duration, sc.Seed = *duration, cfg.Seed
	sc.Rate, sc.Size, sc.Tracked = *rate, *size, *tracked
	sc.LargeRate, sc.LargeSize = *largeRate, *largeSize
	sc.SlowConns, sc.Attempts, sc.Tricklers, sc.Subscribers = *slowConns, *attempts, *tricklers, *subscribers
	sc.CrossSiteEvery, sc.RSSBudget, sc.Spread = *crossEvery, budget.bytes, *spread
	sc.Storm, sc.StormHonest = *storm, *stormHonest
	// A storm is one node publishing at full speed by design, which the
	// per-origin budget would stretch over minutes: unless told
	// otherwise, a soak with a storm turns the budget off on its nodes.
	if sc.Storm > 0 && !flagSet(fs, "origin-rate") {
		cfg.ExtraArgs = append(cfg.ExtraArgs, originRateArg(0)...)
	}
	sc.HonestWait, sc.Settle = *honestWait, *settle
	if *dashboard {
		sc.DashboardURL = "http://127.0.0.1:1" // checked now, replaced once bound
	}
	if err := sc.Validate(); err != nil {
		return usageError(stderr, "%s", strings.TrimPrefix(err.Error(), "soak: "))
	}
	sc.Progress = func(line string) { fmt.Fprintln(stderr, "mesh soak:", line) }

	logDir, keep := *logs, *logs != ""
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "gossipmesh-soak-"); err != nil {
			return fmt.Errorf("log directory: %w", err)
		}
	}
	cfg.LogDir = logDir
	// Each node's log must keep a receipt line for every message, or
	// exactly-once cannot be proven; the cap still bounds a storm of
	// re-deliveries.
	cfg.LogMaxBytes = max(cfg.LogMaxBytes, int64(cluster.SoakLogLine)*int64(sc.Messages()))
	failed := true
	defer func() {
		if keep {
			return
		}
		if failed {
			fmt.Fprintf(stderr, "mesh soak: the nodes' logs are kept in %s\n", logDir)
			return
		}
		os.RemoveAll(logDir)
	}()

	// Bind the dashboard before the nodes, so no node takes its port.
	var dashLn net.Listener
	if *dashboard {
		if dashLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		defer dashLn.Close()
		sc.DashboardURL = "http://" + dashLn.Addr().String()
	}
	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("mesh soak: %d nodes, %d peers each, %s, %v of mixed load, seed %d", cfg.Nodes, cfg.Peers, cfg.Strategy, sc.Duration, cfg.Seed)
	if sc.Storm > 0 {
		header += fmt.Sprintf(", after a storm of %d messages", sc.Storm)
	}
	fmt.Fprintln(stderr, header)
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop()
	if dashLn != nil {
		s, err := web.New(web.ClusterMesh(c), web.Options{})
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		dctx, stopDash := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- s.Serve(dctx, dashLn) }()
		defer func() { stopDash(); <-served }()
	}
	res, err := cluster.Soak(ctx, c, sc)
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(stdout, soakOut(res, sc))
	} else {
		printSoak(stdout, header, sc, res, logDir, keep)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		if !*asJSON {
			return fmt.Errorf("%d invariant(s) failed (listed above)", len(res.Failures))
		}
		return fmt.Errorf("%d invariant(s) failed:\n  - %s", len(res.Failures), strings.Join(res.Failures, "\n  - "))
	}
	failed = false
	return nil
}

// sizeFlag is a byte count given as 268435456, 256MiB, 512KiB or 1GiB.
type sizeFlag struct{ bytes int64 }

func (s *sizeFlag) String() string {
	if s == nil {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s.bytes >= u.mult && s.bytes%u.mult == 0 {
			return strconv.FormatInt(s.bytes/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(s.bytes, 10)
}

func (s *sizeFlag) Set(v string) error {
	num, unit := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, unit = n, u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || f*float64(unit) > 1<<50 {
		return errors.New("want a positive size such as 256MiB, 512KiB, 1GiB or a byte count")
	}
	s.bytes = int64(f * float64(unit))
	return nil
}

func soakOut(r cluster.SoakResult, sc cluster.SoakConfig) soakJSON {
	out := soakJSON{
		Nodes: r.Nodes, DurationS: r.Duration.Seconds(), Seed: r.Seed, OK: r.OK(),
		Failures: r.Failures, RSSBudgetBytes: sc.RSSBudget, Settled: r.Settled,
		Honest: honestOut(r.Honest),
	}
	if out.Failures == nil {
		out.Failures = []string{}
	}
	for _, n := range r.PerNode {
		out.PerNode = append(out.PerNode, soakNodeJSON{
			Index: n.Index, PIDs: n.PIDs, PeakRSSBytes: n.PeakRSS,
			FDs: n.FDs, PeakFDs: n.PeakFDs, Goroutines: n.Goroutines, PeakGoroutines: n.PeakGoroutines,
			LogBytes: n.LogBytes, Published: n.Published, Delivered: n.Delivered,
			MetricPublished: n.MetricPublished, MetricDelivered: n.MetricDelivered,
			Expected: n.Expected, Missing: n.Missing, Twice: n.Twice, MaxPerMessage: n.MaxPerMessage,
			Stray: n.Stray, Exact: n.Exact, Inexact: n.Inexact,
		})
	}
	l := r.Load
	out.Load.Small, out.Load.Tracked, out.Load.Large = l.Small, l.Tracked, l.Large
	out.Load.Errors, out.Load.Skipped, out.Load.FirstError = l.Errors, l.Skipped, l.FirstError
	if st := r.Storm; st != nil {
		out.Storm = &soakStormJSON{
			Publisher: st.Publisher, Messages: st.Messages, ElapsedMS: cluster.Millis(st.Elapsed),
			Honest: honestOut(st.Honest), InTime: st.InTime, WithinMS: cluster.Millis(sc.StormWithin),
			MaxLatencyMS: cluster.Millis(st.MaxLatency), Error: st.ErrPublishing,
		}
	}
	conn := func(c cluster.ConnCount) map[string]int {
		return map[string]int{"tried": c.Tried, "refused": c.Refused, "closed_by_node": c.Closed, "open_at_end": c.Open}
	}
	h := r.Hostile
	out.Victim = r.Victim
	out.Hostile = map[string]any{
		"slow_frames": conn(h.SlowConns), "silent": conn(h.SilentConns),
		"trickled_bodies": conn(h.Tricklers), "idle_subscribers": conn(h.Subscribers),
	}
	out.CrossSite.Changed, out.CrossSite.Sent = r.CrossSiteChanged()
	out.CrossSite.ByRoute = []soakRouteJSON{}
	for _, c := range r.CrossSite {
		out.CrossSite.ByRoute = append(out.CrossSite.ByRoute, soakRouteJSON{
			Route: c.Route, Kind: c.Kind, Sent: c.Sent, Refused: c.Refused, Changed: c.Changed, Other: c.Other, Example: c.Example,
		})
	}
	return out
}

func honestOut(h cluster.SoakHonest) soakHonestJSON {
	out := soakHonestJSON{Messages: h.Messages, Pairs: h.Pairs, Delivered: h.Delivered, Ratio: h.Ratio(), Missing: h.Missing}
	if out.Missing == nil {
		out.Missing = []string{}
	}
	return out
}

// mib renders bytes in MiB with one decimal, or KiB below 1 MiB.
func mib(b int64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func printSoak(w io.Writer, header string, sc cluster.SoakConfig, r cluster.SoakResult, logDir string, keep bool) {
	fmt.Fprintln(w, header)
	l := r.Load
	fmt.Fprintf(w, "\nhonest load   %d small (%d B), %d tracked, %d large (%d B) messages published; %d publish errors, %d skipped\n",
		l.Small, sc.Size, l.Tracked, l.Large, sc.LargeSize, l.Errors, l.Skipped)
	h := r.Hostile
	conn := func(name string, c cluster.ConnCount) {
		fmt.Fprintf(w, "  %-26s %5d tried  %5d refused  %5d closed by the node  %5d open at the end\n", name, c.Tried, c.Refused, c.Closed, c.Open)
	}
	if r.Victim >= 0 {
		fmt.Fprintf(w, "hostile connections (slow frames, trickled bodies and subscribers all at node %d)\n", r.Victim)
	} else {
		fmt.Fprintln(w, "hostile connections (spread over every node)")
	}
	conn("slow 1 MiB frames", h.SlowConns)
	conn("silent (no hello)", h.SilentConns)
	conn("trickled HTTP bodies", h.Tricklers)
	conn("idle /events subscribers", h.Subscribers)
	if st := r.Storm; st != nil {
		fmt.Fprintf(w, "storm         %d messages at node %d in %v; then %d honest messages: %d/%d (message, node) pairs within %v, %d at all, slowest %s\n",
			st.Messages, st.Publisher, st.Elapsed.Round(time.Millisecond), st.Honest.Messages, st.InTime, st.Honest.Pairs, sc.StormWithin, st.Honest.Delivered, ms(st.MaxLatency))
	}

	fmt.Fprintf(w, "\n  %4s  %10s  %11s  %11s  %10s  %9s  %9s  %8s  %7s  %5s  %5s\n",
		"node", "peak RSS", "fds (peak)", "gor. (peak)", "log", "published", "delivered", "expected", "missing", "twice", "exact")
	for _, n := range r.PerNode {
		exact := "yes"
		if !n.Exact {
			exact = "no"
		}
		fmt.Fprintf(w, "  %4d  %10s  %11s  %11s  %10s  %9d  %9d  %8d  %7d  %5d  %5s\n",
			n.Index, mib(n.PeakRSS), fmt.Sprintf("%d (%d)", n.FDs, n.PeakFDs), fmt.Sprintf("%d (%d)", n.Goroutines, n.PeakGoroutines),
			mib(n.LogBytes), n.Published, n.Delivered, n.Expected, n.Missing, n.Twice, exact)
	}

	fmt.Fprintln(w)
	hon := r.Honest
	fmt.Fprintf(w, "honest delivery    %d/%d (message, node) pairs of %d tracked messages within %v (%.2f%%)\n", hon.Delivered, hon.Pairs, hon.Messages, sc.HonestWait, 100*hon.Ratio())
	pairs, twice, maxPer, peak, peakAt := 0, 0, 0, int64(0), 0
	for _, n := range r.PerNode {
		pairs += n.Delivered
		twice += n.Twice
		maxPer = max(maxPer, n.MaxPerMessage)
		if n.PeakRSS > peak {
			peak, peakAt = n.PeakRSS, n.Index
		}
	}
	fmt.Fprintf(w, "deliveries         %d delivered lines; %d message(s) delivered more than once at some node (most deliveries of one message at one node: %d)\n", pairs, twice, maxPer)
	changed, sent := r.CrossSiteChanged()
	fmt.Fprintf(w, "cross-site         %d of %d requests changed state\n", changed, sent)
	// One row per route; --json has every kind apart.
	type row struct {
		route                         string
		sent, refused, changed, other int
		through                       []string
	}
	var rows []*row
	for _, c := range r.CrossSite {
		if len(rows) == 0 || rows[len(rows)-1].route != c.Route {
			rows = append(rows, &row{route: c.Route})
		}
		rw := rows[len(rows)-1]
		rw.sent, rw.refused, rw.changed, rw.other = rw.sent+c.Sent, rw.refused+c.Refused, rw.changed+c.Changed, rw.other+c.Other
		if c.Changed > 0 {
			rw.through = append(rw.through, c.Kind)
		}
	}
	for _, rw := range rows {
		line := fmt.Sprintf("  %-38s %4d sent  %4d refused  %4d changed state  %3d other", rw.route, rw.sent, rw.refused, rw.changed, rw.other)
		if len(rw.through) > 0 {
			line += "  (got through: " + strings.Join(rw.through, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "peak RSS           %s at node %d (budget %s)\n", mib(peak), peakAt, mib(sc.RSSBudget))
	if !r.Settled {
		fmt.Fprintf(w, "settled            no: deliveries were still being counted %v after the load stopped\n", sc.Settle)
	}
	if keep {
		fmt.Fprintf(w, "logs               %s\n", logDir)
	}
	if r.OK() {
		fmt.Fprintln(w, "\nPASS: every message exactly once at every node, every tracked message everywhere, RSS within budget, no cross-site request changed state")
		return
	}
	fmt.Fprintf(w, "\nFAIL: %d invariant(s) failed:\n", len(r.Failures))
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}
