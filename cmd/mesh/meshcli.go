package main

// Helpers shared by the commands that launch or drive a local mesh: demo,
// up, down, publish, status and bench.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/gossip"
	"gossipmesh/node"
)

// localGOMAXPROCS is the default GOMAXPROCS of each node process that
// demo, up and bench launch. Ten or fifty processes share a few cores, and
// one P per node keeps each process's scheduler from waking a second thread
// per message: on the 2-core machine this was built on, `mesh bench` gave a
// p50 of 1.9 ms with 1 against 3.0 ms with Go's default, at the same
// throughput. `--gomaxprocs 0` restores Go's default.
const localGOMAXPROCS = 1

// launchFlags are the flags of every command that launches a mesh.
type launchFlags struct {
	nodes, peers, fanout int
	strategy             string
	antiEntropy          time.Duration
	signing, validate    string
	seed                 uint64
	gomaxprocs           int
	calmSysmon           bool
	membership           bool
	netns                bool
	scoring              bool
	originRate           float64
	logFormat, logLevel  string
	startTimeout         time.Duration
	// fs is the FlagSet the flags were registered on: config asks it
	// whether --peers was set.
	fs *flag.FlagSet
}

// register adds the launch flags to fs, with defaults from
// cluster.DefaultConfig; gomaxprocs and logLevel ("": the node's own
// default) differ per command.
func (l *launchFlags) register(fs *flag.FlagSet, gomaxprocs int, logLevel string) {
	d := cluster.DefaultConfig()
	l.fs = fs
	fs.IntVar(&l.nodes, "nodes", d.Nodes, fmt.Sprintf("number of node processes, 1 to %d", cluster.MaxNodes))
	// The default depends on --nodes, so config fills it in; the flag's
	// own default stays 0, which the help would not print.
	fs.IntVar(&l.peers, "peers", 0, fmt.Sprintf("peers each node dials, chosen at random (links are undirected); at most nodes-1 (default min(%d, nodes-1))", d.Peers))
	fs.IntVar(&l.fanout, "fanout", d.Fanout, "k for --strategy fanout: random peers per message, capped by the node's degree")
	fs.StringVar(&l.strategy, "strategy", string(d.Strategy), fmt.Sprintf("gossip router: one of %v", gossip.Strategies()))
	fs.Var(antiEntropyValue{&l.antiEntropy}, "anti-entropy", gossip.AntiEntropyUsage)
	fs.StringVar(&l.signing, "signing", string(d.Signing), signingUsage)
	fs.StringVar(&l.validate, "validate", "", validateUsage())
	fs.Uint64Var(&l.seed, "seed", 0, "seed for the topology, node ids and publishers; the same seed gives the same mesh (0: random, printed)")
	fs.IntVar(&l.gomaxprocs, "gomaxprocs", gomaxprocs, "GOMAXPROCS of each node process (0: Go's default, one per core)")
	fs.BoolVar(&l.netns, "netns", d.Netns, "run each node in a Linux network namespace of its own, on its own address in 198.18.0.0/15, joined by veth pairs and bridges in two halves (needs root and iproute2; see the README)")
	fs.BoolVar(&l.calmSysmon, "calm-sysmon", d.CalmSysmon, "keep the Go runtime's monitor thread in each node at its 10ms idle pace instead of polling every 20µs after each wakeup (GODEBUG=schedtrace; see the README)")
	fs.BoolVar(&l.membership, "membership", false, "run every node with --membership: failure detection, active/passive views, peer exchange, replacing lost peers")
	fs.BoolVar(&l.scoring, "scoring", true, "score every node's peers and ban the ones that misbehave (see mesh node --scoring); --scoring=false turns it off on every node")
	fs.Float64Var(&l.originRate, "origin-rate", node.DefaultOriginRate, "every node's --origin-rate: "+originRateUsage)
	fs.StringVar(&l.logFormat, "log-format", d.LogFormat, "node log format: text or json")
	levelUsage := "node log level: debug, info, warn or error"
	if logLevel == "" {
		levelUsage += " (default: the node's, info)"
	}
	fs.StringVar(&l.logLevel, "log-level", logLevel, levelUsage)
	fs.DurationVar(&l.startTimeout, "start-timeout", d.StartTimeout, "how long to wait for every node to be healthy and linked")
}

// config turns the flags into a cluster.Config, checking them: a bad value
// comes back wrapped in errUsage after a message on stderr.
func (l *launchFlags) config(stderr io.Writer) (cluster.Config, error) {
	cfg := cluster.DefaultConfig()
	cfg.Nodes, cfg.Peers, cfg.Fanout = l.nodes, l.peers, l.fanout
	if !flagSet(l.fs, "peers") {
		// The default fits any mesh: 3 peers, or every other node in a
		// smaller one. A value the user gave is checked as given.
		cfg.Peers = min(cluster.DefaultConfig().Peers, max(l.nodes-1, 0))
	}
	cfg.Strategy = gossip.Strategy(l.strategy)
	cfg.AntiEntropy = l.antiEntropy
	cfg.Signing = gossip.Signing(l.signing)
	vs, err := gossip.ParseValidators(l.validate)
	if err != nil {
		return cfg, usageError(stderr, "--validate: "+err.Error())
	}
	cfg.Validators = vs
	cfg.Seed = l.seed
	if cfg.Seed == 0 {
		cfg.Seed = randomSeed()
	}
	cfg.GOMAXPROCS, cfg.CalmSysmon = l.gomaxprocs, l.calmSysmon
	cfg.Netns = l.netns
	cfg.LogFormat, cfg.LogLevel = l.logFormat, l.logLevel
	cfg.StartTimeout = l.startTimeout
	cfg.Membership = l.membership
	if !l.scoring {
		cfg.ExtraArgs = append(cfg.ExtraArgs, "--scoring=false")
	}
	if l.originRate < 0 || math.IsNaN(l.originRate) {
		return cfg, usageError(stderr, "--origin-rate must be 0 (off) or a positive rate, got %v", l.originRate)
	}
	if l.originRate != node.DefaultOriginRate {
		cfg.ExtraArgs = append(cfg.ExtraArgs, originRateArg(l.originRate)...)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError(stderr, strings.TrimPrefix(err.Error(), "cluster: "))
	}
	return cfg, nil
}

// originRateUsage is the help of every --origin-rate flag.
const originRateUsage = "per-origin rate budget, new messages/s: each node delivers and forwards at most this many of any one origin a second after a 2 s burst, ignores the rest, bans a peer that publishes past it, and refuses its own publishes past it (POST /messages answers 429, POST /load waits); strict signing only; 0 turns it off"

// originRateArg is the node flag that sets the per-origin budget to rate.
func originRateArg(rate float64) []string {
	return []string{"--origin-rate", strconv.FormatFloat(rate, 'g', -1, 64)}
}

// signingUsage is the help of every --signing flag.
const signingUsage = "message signing: strict (sign every publish with the node's key, reject unsigned or badly signed messages) or none (publish unsigned, reject signed messages); every node of a mesh must agree"

// validateUsage is the help of every --validate flag.
func validateUsage() string {
	return "application validators every message must pass before delivery, comma-separated `NAME[,NAME]` (reject blames the sender, ignore does not): " + strings.Join(gossip.ValidatorNames(), "; ")
}

// antiEntropyValue is an --anti-entropy flag, in gossip.ParseAntiEntropy's
// syntax, stored as gossip.Config.AntiEntropy: 0 the strategy's default,
// negative off, positive the period.
type antiEntropyValue struct{ d *time.Duration }

func (v antiEntropyValue) String() string {
	if v.d == nil {
		return gossip.FormatAntiEntropy(0)
	}
	return gossip.FormatAntiEntropy(*v.d)
}

func (v antiEntropyValue) Set(s string) error {
	d, err := gossip.ParseAntiEntropy(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	if fs != nil {
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	}
	return set
}

// checkListenAddr checks that addr is HOST:PORT with a port from 0 to
// 65535, so that a typo is a usage error before anything starts rather
// than a failed bind after the nodes are up.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, got %q", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("want a port from 0 to 65535 in %q", addr)
	}
	return nil
}

// bareValue makes --dashboard an optional-value flag (see parseFlags):
// alone, it means the default address.
func (d *dashboardFlag) bareValue() string { return defaultDashboard }

// listenDashboard checks --dashboard and binds it, before the mesh starts:
// the launcher binds node ports at run time (the HTTP port at gossip port
// + 1000), and one of them could otherwise take the dashboard's port. A
// bad address is a usage error; nil, nil means the dashboard is off.
func listenDashboard(d dashboardFlag, stderr io.Writer) (net.Listener, error) {
	if d.addr == "" {
		return nil, nil
	}
	if err := checkListenAddr(d.addr); err != nil {
		return nil, usageError(stderr, "--dashboard: %v", err)
	}
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w (choose another address with --dashboard HOST:PORT, or --dashboard off)", err)
	}
	return ln, nil
}

// randomSeed picks a seed for a run without --seed. The output prints it,
// so any run can be repeated.
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	// Keep seeds short enough to retype.
	return binary.LittleEndian.Uint64(b[:])%1_000_000 + 1
}

// usageError reports a bad flag or argument and returns errUsage (exit 2).
func usageError(stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "mesh: "+format+"\n", args...)
	return errUsage
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine prints v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// ms renders a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// joinInts renders 3,5,8.
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// printReport prints a propagation report as an aligned table in arrival
// order, each node's neighbours beside it, then a summary with a hop
// histogram.
func printReport(w io.Writer, r cluster.Report) {
	peers := make([]string, r.Nodes)
	width := len("peers")
	for i := range peers {
		if i < r.Graph.Len() {
			peers[i] = joinInts(r.Graph.Neighbours(i))
		}
		width = max(width, len(peers[i]))
	}
	row := func(node, hop, dist, from, time, peers, note string) {
		line := fmt.Sprintf("  %4s  %3s  %4s  %4s  %9s  %-*s  %s", node, hop, dist, from, time, width, peers, note)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "message %s posted to node %d\n\n", r.ID, r.Publisher)
	row("node", "hop", "dist", "from", "time", "peers", "")
	longer := 0
	for _, rc := range r.ByArrival() {
		from, dist, note := "-", "?", ""
		if rc.From >= 0 {
			from = fmt.Sprint(rc.From)
		}
		if rc.Distance >= 0 {
			dist = fmt.Sprint(rc.Distance)
		}
		switch {
		case rc.Index == r.Publisher:
			note = "publisher"
		case rc.Distance >= 0 && rc.Hop > rc.Distance:
			note = "longer path"
			longer++
		}
		row(fmt.Sprint(rc.Index), fmt.Sprint(rc.Hop), dist, from, ms(rc.Latency), peers[rc.Index], note)
	}
	for _, i := range r.Missing {
		dist := "?"
		if i < len(r.Distances) && r.Distances[i] >= 0 {
			dist = fmt.Sprint(r.Distances[i])
		}
		row(fmt.Sprint(i), "-", dist, "-", "-", peers[i], "NOT REACHED")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "reached      %d/%d nodes\n", r.Reached, r.Nodes)
	fmt.Fprintf(w, "last node    %s after the POST\n", ms(r.TimeToLast))
	fmt.Fprintf(w, "duplicates   %d (copies that reached a node already holding the message)\n", r.Duplicates)
	fmt.Fprintf(w, "frames       %d payload (RMR %.2f: a tree needs %d), %d control, sent over every node\n",
		r.PayloadFrames, r.RMR(), max(r.Nodes-1, 0), r.ControlFrames)
	fmt.Fprintln(w, "hops")
	for _, h := range r.Hops.Keys() {
		n := r.Hops[h]
		fmt.Fprintf(w, "  %3d  %-*s %d\n", h, min(r.Nodes, 40), strings.Repeat("█", min(n, 40)), n)
	}
	if longer > 0 {
		fmt.Fprintf(w, "%d node(s) got their first copy along a longer path than the shortest (hop > dist): normal on a busy machine.\n", longer)
	}
}

// reportProblem says what is wrong with a report, or "" if nothing is:
// a node missed the message, or (if deadline > 0) the last node got it
// after deadline. Under fanout a miss is the router's doing: each node
// sends to k random peers, and that choice can leave a node out, which
// flood on a connected mesh cannot.
func reportProblem(r cluster.Report, strategy string, deadline time.Duration) string {
	switch {
	case !r.Complete() && strategy == "fanout":
		return fmt.Sprintf("fanout missed node(s) %s (reached %d/%d): its random choice of peers can leave nodes out", joinInts(r.Missing), r.Reached, r.Nodes)
	case !r.Complete():
		return fmt.Sprintf("node(s) %s did not get it (reached %d/%d)", joinInts(r.Missing), r.Reached, r.Nodes)
	case deadline > 0 && r.TimeToLast > deadline:
		return fmt.Sprintf("the last node got it after %v, later than %v", r.TimeToLast.Round(time.Microsecond), deadline)
	}
	return ""
}

// printSummary prints the summary that ends a run of several messages.
func printSummary(w io.Writer, s cluster.Summary) {
	pct := func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }
	fmt.Fprintf(w, "summary over %d messages\n", s.Messages)
	fmt.Fprintf(w, "  reached every node   %d/%d messages\n", s.Complete, s.Messages)
	if s.Complete > 0 {
		fmt.Fprintf(w, "  time to last node    p50 %s, p99 %s (complete messages)\n", ms(s.TimeToLastP50), ms(s.TimeToLastP99))
	}
	fmt.Fprintf(w, "  mean hop             %.2f (mean distance %.2f, over %d receipts)\n", s.MeanHop, s.MeanDistance, s.Receipts)
	fmt.Fprintf(w, "  hop = distance       %s of receipts\n", pct(s.HopIsDistance))
	fmt.Fprintf(w, "  neighbours at hop 1  %s of the publisher's %d direct neighbours\n", pct(s.NeighboursAtHop1), s.Neighbours)
	fmt.Fprintf(w, "  frames per message   %.1f payload (mean RMR %.2f), %.1f control\n", s.PayloadFrames, s.RMR, s.ControlFrames)
}

// errIncomplete marks a report that missed a node.
var errIncomplete = errors.New("message did not reach every node")
