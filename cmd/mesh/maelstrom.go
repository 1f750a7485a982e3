package main

// `mesh maelstrom`: a node for Jepsen's Maelstrom workbench (the Gossip
// Glomers broadcast challenge), and `mesh maelstrom-test`: the workbench
// of our own that drives N such nodes the way Maelstrom's broadcast
// workload does. The logic lives in package maelstrom.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/maelstrom"
)

func maelstromCommand() command {
	return command{name: "maelstrom", summary: "be a Maelstrom node on stdin/stdout (Gossip Glomers broadcast)", run: runMaelstrom}
}

func maelstromTestCommand() command {
	return command{name: "maelstrom-test", summary: "run N mesh maelstrom nodes under a built-in Maelstrom-style broadcast workload", run: runMaelstromTest}
}

// nodeFlags are the flags of a Maelstrom node, which maelstrom-test passes
// through to the nodes it starts.
type nodeFlags struct {
	strategy, overlay string
	fanout, branching int
	batch             time.Duration
	antiEntropy       time.Duration
	maxValues         int
	seed              uint64
}

func (f *nodeFlags) register(fs *flag.FlagSet) {
	d := maelstrom.DefaultNodeConfig()
	fs.StringVar(&f.strategy, "strategy", string(d.Strategy), fmt.Sprintf("gossip router: one of %v", gossip.Strategies()))
	fs.IntVar(&f.fanout, "fanout", d.Fanout, "k for --strategy fanout: random peers per message")
	f.antiEntropy = d.AntiEntropy
	fs.Var(antiEntropyValue{&f.antiEntropy}, "anti-entropy", "anti-entropy period: every `PERIOD` (give or take half) a node swaps a digest with one random peer and pulls what it lacks, which repairs what a partition cut off; off (or 0) turns it off; default (the word) is the strategy's default")
	fs.StringVar(&f.overlay, "overlay", string(d.Overlay), "peers: tree (built from init's node_ids, ignoring the suggested topology) or suggested (topology's neighbours)")
	fs.IntVar(&f.branching, "branching", d.Branching, "children per node of the tree overlay (24: a star up to 25 nodes)")
	fs.DurationVar(&f.batch, "batch", d.Batch, "send gossip per destination as one message every DURATION (0: each at once)")
	fs.IntVar(&f.maxValues, "max-values", d.MaxValues, "most values a node holds; a broadcast past it is refused")
	fs.Uint64Var(&f.seed, "seed", d.Seed, "seed of the core's randomness (fanout picks), mixed with the node's index")
}

func (f *nodeFlags) config() maelstrom.NodeConfig {
	c := maelstrom.DefaultNodeConfig()
	c.Strategy, c.Fanout = gossip.Strategy(f.strategy), f.fanout
	c.Overlay, c.Branching = maelstrom.Overlay(f.overlay), f.branching
	c.Batch, c.MaxValues, c.Seed = f.batch, f.maxValues, f.seed
	c.AntiEntropy = f.antiEntropy
	return c
}

// args renders the flags that were set on fs, to pass to each node.
func (f *nodeFlags) args(fs *flag.FlagSet) []string {
	var out []string
	for _, name := range []string{"strategy", "fanout", "anti-entropy", "overlay", "branching", "batch", "max-values", "seed"} {
		if flagSet(fs, name) {
			out = append(out, "--"+name+"="+fs.Lookup(name).Value.String())
		}
	}
	return out
}

func runMaelstrom(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("maelstrom", "maelstrom [flags]", stderr)
	var nf nodeFlags
	nf.register(fs)
	logLevel := fs.String("log-level", "info", "log level on stderr: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "maelstrom takes no arguments, got %q", fs.Args())
	}
	cfg := nf.config()
	if err := cfg.Validate(); err != nil {
		return usageError(stderr, "%s", strings.TrimPrefix(err.Error(), "maelstrom: "))
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return usageError(stderr, "%v", err)
	}
	return maelstrom.RunNode(ctx, cfg, stdinFrom(ctx), stdout, log)
}

func runMaelstromTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := maelstrom.DefaultHarnessConfig()
	fs := newFlagSet("maelstrom-test", "maelstrom-test [flags]", stderr)
	var nf nodeFlags
	nf.register(fs)
	nodes := fs.Int("nodes", 25, fmt.Sprintf("number of node processes, 1 to %d", maelstrom.MaxHarnessNodes))
	latency := fs.Duration("latency", d.Latency, "one-way delay of every message, node to node and client to node")
	rate := fs.Float64("rate", d.Rate, "client operations per second over all nodes, half broadcasts, half reads")
	runTime := fs.Duration("time", d.Time, "how long the workload runs")
	partitions := fs.Bool("partitions", false, "split the nodes into two random groups every --partition-every, healed as long; healed before the final reads")
	every := fs.Duration("partition-every", d.PartitionEvery, "how long each partition and each healed spell lasts")
	settle := fs.Duration("settle", d.Settle, "wait after the workload and the heal, before the final reads")
	opTimeout := fs.Duration("op-timeout", d.OpTimeout, "how long a client waits for an answer")
	wseed := fs.Uint64("workload-seed", d.Seed, "seed of the workload: nodes, operations, partitions")
	bin := fs.String("bin", "", "mesh binary each node runs as `BIN maelstrom` (default: this executable)")
	nodeLog := fs.String("node-log", "", "append every node's stderr, prefixed with its name, to `FILE` (default: discarded)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "maelstrom-test takes no arguments, got %q", fs.Args())
	}
	if err := nf.config().Validate(); err != nil {
		return usageError(stderr, "%s", strings.TrimPrefix(err.Error(), "maelstrom: "))
	}
	cfg := d
	cfg.Nodes, cfg.Latency, cfg.Rate, cfg.Time = *nodes, *latency, *rate, *runTime
	cfg.Partitions, cfg.PartitionEvery, cfg.Settle, cfg.OpTimeout, cfg.Seed = *partitions, *every, *settle, *opTimeout, *wseed
	cfg.NodeArgs = nf.args(fs)
	cfg.Binary = *bin
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this executable (give --bin): %w", err)
		}
		cfg.Binary = exe
	}
	if err := cfg.Validate(); err != nil {
		return usageError(stderr, "%s", strings.TrimPrefix(err.Error(), "maelstrom: "))
	}
	if *nodeLog != "" {
		f, err := os.OpenFile(*nodeLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--node-log: %w", err)
		}
		defer f.Close()
		cfg.Stderr = f
	}
	r, err := maelstrom.RunHarness(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		printMaelstromReport(stdout, r)
	}
	if r.FinalReadsMissing > 0 {
		return fmt.Errorf("%d final reads got no answer: the lost count is incomplete", r.FinalReadsMissing)
	}
	if r.Unexpected > 0 {
		return fmt.Errorf("%d values read that nobody broadcast", r.Unexpected)
	}
	if r.LostCount > 0 {
		return fmt.Errorf("%d acknowledged values lost", r.LostCount)
	}
	return nil
}

func printMaelstromReport(w io.Writer, r maelstrom.Report) {
	fmt.Fprintf(w, "maelstrom-test: %d nodes, %.0f ms latency, %g ops/s for %gs, node flags %q\n", r.Nodes, r.LatencyMS, r.Rate, r.TimeS, r.NodeArgs)
	fmt.Fprintf(w, "  ops             %d (%d broadcasts, %d reads; %d failed or unanswered)\n", r.Ops, r.Broadcasts, r.Reads, r.Failed)
	fmt.Fprintf(w, "  server msgs     %d (%d dropped by %d partitions)\n", r.ServerMsgs, r.Dropped, r.Partitions)
	fmt.Fprintf(w, "  msgs-per-op     %.2f\n", r.MsgsPerOp)
	fmt.Fprintf(w, "  stable latency  median %.0f ms, p95 %.0f ms, max %.0f ms\n", r.StableMedianMS, r.StableP95MS, r.StableMaxMS)
	fmt.Fprintf(w, "  lost            %d of %d acknowledged\n", r.LostCount, r.Acked)
	if r.Unexpected > 0 {
		fmt.Fprintf(w, "  unexpected      %d values read that nobody broadcast\n", r.Unexpected)
	}
}
