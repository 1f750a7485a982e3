package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"gossipmesh/cluster"
	"gossipmesh/node"
)

func benchCommand() command {
	return command{name: "bench", summary: "start N node processes and measure spread time and sustained throughput", run: runBench}
}

// benchJSON is `mesh bench --json`; the field names are a contract
// (issue 2). Steps is extra: every rate the search tried.
type benchJSON struct {
	Nodes     int `json:"nodes"`
	Messages  int `json:"messages"`
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	Sustained struct {
		DeliveriesPerS float64 `json:"deliveries_per_s"`
		DeliveryRatio  float64 `json:"delivery_ratio"`
	} `json:"sustained"`
	Incomplete int            `json:"incomplete"`
	Late       int            `json:"late"`
	Steps      []benchStepOut `json:"steps"`
	// Strategy is the router the nodes ran; Frames and RMR are what the
	// sequential messages cost, per message, over every node.
	Strategy string `json:"strategy"`
	Frames   struct {
		PayloadPerMsg float64 `json:"payload_per_msg"`
		ControlPerMsg float64 `json:"control_per_msg"`
	} `json:"frames"`
	RMR float64 `json:"rmr"`
}

type benchStepOut struct {
	Rate      float64 `json:"deliveries_per_s"`
	MsgRate   float64 `json:"messages_per_s"`
	Achieved  float64 `json:"achieved_messages_per_s"`
	Delivered int     `json:"delivered"`
	Expected  int     `json:"expected"`
	TailMS    float64 `json:"tail_ms"`
	// BulkTailMS, Late and QuietWaitMS are the repair-aware parts of the
	// verdict (cluster.Step): when all but the late share had landed, how
	// many landed after the 100 ms bound, and how long the bench waited
	// for a quiet mesh before the step.
	BulkTailMS  float64 `json:"bulk_tail_ms"`
	Late        int     `json:"late"`
	QuietWaitMS float64 `json:"quiet_wait_ms"`
	Busy        bool    `json:"busy,omitempty"`
	Retry       bool    `json:"retry,omitempty"`
	OK          bool    `json:"ok"`
	Why         string  `json:"why,omitempty"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "bench [flags]", stderr)
	var lf launchFlags
	// Each node logs a line per first receipt: at 50,000 deliveries/s that
	// is the bench measuring its logging. --log-level info measures it.
	lf.register(fs, localGOMAXPROCS, "warn")
	d := cluster.DefaultBenchConfig()
	messages := fs.Int("messages", d.Messages, "sequential messages timed from publish to the last node")
	gap := fs.Duration("gap", d.Gap, "idle time between one sequential message reaching every node and the next publish (0: back to back)")
	size := fs.Int("size", d.Size, "message body size in bytes")
	step := fs.Duration("duration", d.Step, "how long each rate of the throughput search runs")
	startRate := fs.Float64("start-rate", d.StartRate, "first rate of the throughput search, deliveries/s")
	maxRate := fs.Float64("max-rate", d.MaxRate, "highest rate the search tries, deliveries/s")
	retries := fs.Int("retries", d.Retries, "how many more times a failed rate runs before the search takes it as failed")
	drain := fs.Duration("drain", d.Drain, "how long after a step's last publish its deliveries may still land (repairs); all but 0.1% must land within 100 ms")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	nodeProfile := fs.String("node-cpuprofile", "", "every node writes a CPU profile of its run to `FILE` (mesh node --cpuprofile; a %p becomes the node's process id), to see where the nodes spend their time under the bench")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "bench takes no arguments, got %q", fs.Args())
	}
	cfg, err := lf.config(stderr)
	if err != nil {
		return err
	}
	if cfg.Nodes < 2 {
		return usageError(stderr, "bench needs at least 2 nodes, got %d", cfg.Nodes)
	}
	bc := cluster.DefaultBenchConfig()
	bc.Messages, bc.Gap, bc.Size, bc.Step = *messages, *gap, *size, *step
	bc.StartRate, bc.MaxRate, bc.Seed = *startRate, *maxRate, cfg.Seed
	bc.Retries, bc.Drain = *retries, *drain
	if err := bc.Validate(); err != nil {
		return usageError(stderr, "%v", err)
	}
	// The search's one publisher carries the whole load, which the
	// per-origin budget would cap at its rate × (nodes-1) deliveries/s:
	// unless told otherwise, lift the budget to the search's highest rate
	// from one origin, so that the figures measure the mesh (the buckets
	// still run, at their cost) and not the cap.
	if !flagSet(fs, "origin-rate") {
		if r := math.Ceil(bc.MaxRate / float64(cfg.Nodes-1)); r > node.DefaultOriginRate {
			cfg.ExtraArgs = append(cfg.ExtraArgs, originRateArg(r)...)
		}
	}
	if *nodeProfile != "" {
		cfg.ExtraArgs = append(cfg.ExtraArgs, "--cpuprofile", *nodeProfile)
	}
	// Every node must keep the receipts of a whole step at the highest rate
	// (and of the latency phase) for the bench to see every delivery.
	cfg.Receipts = max(bc.StepMessages(cfg.Nodes, bc.MaxRate)+1000, bc.Messages+bc.Warmup+1000)
	bc.Progress = func(line string) { fmt.Fprintln(stderr, "mesh bench:", line) }

	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	procs := "Go's default"
	if cfg.GOMAXPROCS > 0 {
		procs = fmt.Sprint(cfg.GOMAXPROCS)
	}
	header := fmt.Sprintf("mesh bench: %d nodes, %d peers each, %s, GOMAXPROCS %s per node, %d-byte bodies, seed %d",
		cfg.Nodes, cfg.Peers, cfg.Strategy, procs, bc.Size, cfg.Seed)
	fmt.Fprintln(stderr, header)
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop()
	res, err := cluster.Bench(ctx, c.Mesh(), bc)
	if err != nil {
		return err
	}
	// The figures stand even if a node was slow to stop: report that
	// after them.
	stopErr := c.Stop()
	if *asJSON {
		err = writeJSON(stdout, benchOut(res, string(cfg.Strategy)))
	} else {
		printBench(stdout, header, bc, res)
	}
	if stopErr != nil {
		fmt.Fprintf(stderr, "mesh bench: warning: %v\n", stopErr)
	}
	return err
}

func benchOut(r cluster.BenchResult, strategy string) benchJSON {
	var out benchJSON
	out.Nodes, out.Messages, out.Strategy = r.Nodes, r.Messages, strategy
	out.Frames.PayloadPerMsg = round2(r.Frames.PayloadPerMsg)
	out.Frames.ControlPerMsg = round2(r.Frames.ControlPerMsg)
	out.RMR = round4(r.RMR())
	out.LatencyMS.P50 = cluster.Millis(r.Latency.P50)
	out.LatencyMS.P99 = cluster.Millis(r.Latency.P99)
	out.LatencyMS.Max = cluster.Millis(r.Latency.Max)
	out.Sustained.DeliveriesPerS = r.Sustained.DeliveriesPerS
	out.Sustained.DeliveryRatio = r.Sustained.DeliveryRatio
	out.Incomplete, out.Late = r.Latency.Incomplete, r.Latency.Late
	out.Steps = []benchStepOut{}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, benchStepOut{
			Rate: s.Rate, MsgRate: s.MsgRate, Achieved: s.Achieved,
			Delivered: s.Delivered, Expected: s.Expected,
			TailMS: cluster.Millis(s.Tail), BulkTailMS: cluster.Millis(s.BulkTail), Late: s.Late,
			QuietWaitMS: cluster.Millis(s.QuietWait), Busy: s.Busy, Retry: s.Retry, OK: s.OK, Why: s.Why,
		})
	}
	return out
}

func printBench(w io.Writer, header string, bc cluster.BenchConfig, r cluster.BenchResult) {
	fmt.Fprintln(w, header)
	fmt.Fprintf(w, "\ntime from publish to the last node, %d sequential messages (random publisher, each after the last reached every node, gap %v)\n", r.Messages, r.Gap)
	fmt.Fprintf(w, "  p50  %9s\n  p99  %9s\n  max  %9s\n", ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max))
	if r.Latency.Incomplete > 0 {
		fmt.Fprintf(w, "  %d message(s) missed a node and are left out\n", r.Latency.Incomplete)
	}
	if r.Latency.Late > 0 {
		fmt.Fprintf(w, "  %d message(s) were still spreading when the next went out\n", r.Latency.Late)
	}
	fmt.Fprintf(w, "  frames per message: %.1f payload (RMR %.2f), %.1f control, over every node\n",
		r.Frames.PayloadPerMsg, r.RMR(), r.Frames.ControlPerMsg)
	fmt.Fprintf(w, "\nsustained throughput at 100%% delivery (%v per rate; deliveries exclude the publisher; every one within %v, all but %.1f%% within 100 ms of the last publish)\n",
		bc.Step, bc.Drain, 100*bc.LateShare)
	fmt.Fprintf(w, "  %12s  %9s  %9s  %17s  %10s  %10s  %7s  %s\n", "deliveries/s", "msgs/s", "achieved", "delivered", "bulk tail", "tail", "late", "result")
	for _, s := range r.Steps {
		verdict := "ok"
		if !s.OK {
			verdict = "fail: " + s.Why
		}
		fmt.Fprintf(w, "  %12.0f  %9.0f  %9.0f  %8d/%-8d  %10s  %10s  %7d  %s\n", s.Rate, s.MsgRate, s.Achieved, s.Delivered, s.Expected, ms(s.BulkTail), ms(s.Tail), s.Late, verdict)
	}
	if r.Sustained.DeliveriesPerS > 0 {
		fmt.Fprintf(w, "  highest sustained: %.0f deliveries/s (%.0f msgs/s to %d receivers)\n",
			r.Sustained.DeliveriesPerS, r.Sustained.DeliveriesPerS/float64(r.Nodes-1), r.Nodes-1)
	} else {
		fmt.Fprintf(w, "  no rate sustained; delivery ratio at the lowest rate %.4f\n", r.Sustained.DeliveryRatio)
	}
}

// round2 and round4 keep two and four decimals in JSON: enough for a
// mean of frames and for a ratio.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
