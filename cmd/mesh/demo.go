package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"gossipmesh/cluster"
)

// demoDeadline is the lesson's promise: every node within a second.
const demoDeadline = time.Second

func demoCommand() command {
	return command{name: "demo", summary: "launch a 10-node mesh, gossip a message, show how it spread, stop", run: runDemo}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	var lf launchFlags
	lf.register(fs, localGOMAXPROCS, "")
	messages := fs.Int("messages", 1, "messages to publish, one after another, each at a random node; more than one ends with a summary")
	asJSON := fs.Bool("json", false, "print the report as JSON (with --messages > 1, one object per line, then a {\"summary\": ...} line)")
	logs := fs.String("logs", "", "write the nodes' logs to `DIR`/node-<index>.log and keep them (default: a temporary directory, kept only if the demo fails)")
	var dash dashboardFlag // dashboard.go
	dash.registerDemo(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Every flag is checked before anything starts.
	if fs.NArg() > 0 {
		return usageError(stderr, "demo takes no arguments, got %q", fs.Args())
	}
	if *messages < 1 {
		return usageError(stderr, "--messages must be at least 1, got %d", *messages)
	}
	cfg, err := lf.config(stderr)
	if err != nil {
		return err
	}
	if dash.addr != "" {
		if err := checkListenAddr(dash.addr); err != nil {
			return usageError(stderr, "--dashboard: %v", err)
		}
	}
	say := func(format string, args ...any) {
		if !*asJSON {
			fmt.Fprintf(stdout, format, args...)
		}
	}

	// The dashboard's port is bound before the nodes' ports, so that no
	// node takes it.
	dashLn, err := listenDashboard(dash, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if dashLn != nil {
			dashLn.Close()
		}
	}()
	logDir, err := demoLogDir(*logs)
	if err != nil {
		return err
	}
	defer func() {
		switch {
		case *logs != "":
			fmt.Fprintf(stderr, "mesh demo: node logs in %s\n", logDir)
		case err != nil:
			fmt.Fprintf(stderr, "mesh demo: node logs kept in %s\n", logDir)
		default:
			os.RemoveAll(logDir)
		}
	}()
	cfg.LogDir = logDir
	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	say("mesh demo: %d nodes, %d peers each, %s, seed %d\n", cfg.Nodes, cfg.Peers, cfg.Strategy, cfg.Seed)
	if note := c.Topology().Note(); note != "" {
		// A seed whose draw was disconnected was redrawn: say so, on
		// stderr under --json.
		if *asJSON {
			fmt.Fprintln(stderr, "mesh demo:", note)
		} else {
			fmt.Fprintln(stdout, note)
		}
	}
	began := time.Now()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop()
	say("%d processes up and linked in %v (%d links, connected)\n\n", cfg.Nodes, time.Since(began).Round(time.Millisecond), len(c.Topology().Links()))

	// The publishers come from the seed too, so a seed replays the run.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x64656d6f)) // "demo"
	m := c.Mesh()
	var failed []string
	var reports []cluster.Report
	missedByFanout := 0
	for k := range *messages {
		pub := rng.IntN(cfg.Nodes)
		body := fmt.Sprintf("hello from mesh demo, message %d", k+1)
		r, err := m.Propagate(ctx, pub, body, cluster.PropagateOptions{})
		if err != nil {
			return err
		}
		r.Seed = cfg.Seed
		reports = append(reports, r)
		if *asJSON {
			// One report: indented JSON. Several: one object per line.
			write := writeJSON
			if *messages > 1 {
				write = writeJSONLine
			}
			if err := write(stdout, r); err != nil {
				return err
			}
		} else {
			if k > 0 {
				fmt.Fprintln(stdout)
			}
			printReport(stdout, r)
		}
		if p := reportProblem(r, string(cfg.Strategy), demoDeadline); p != "" {
			failed = append(failed, fmt.Sprintf("message %d: %s", k+1, p))
			if !r.Complete() && cfg.Strategy == "fanout" {
				missedByFanout++
			}
		}
	}
	if *messages > 1 {
		sum := cluster.Summarize(reports)
		if *asJSON {
			if err := writeJSONLine(stdout, map[string]cluster.Summary{"summary": sum}); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(stdout)
			printSummary(stdout, sum)
		}
	}
	if err := demoDashboard(ctx, c, dashLn, *asJSON, stdout, stderr); err != nil {
		return err
	}
	dashLn = nil // served and closed
	stopErr := c.Stop()
	say("\nstopped %d processes\n", cfg.Nodes)
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintf(stderr, "mesh demo: %s\n", f)
		}
		if missedByFanout == len(failed) {
			return fmt.Errorf("fanout missed nodes in %d of %d messages (its random choice of peers can leave nodes out; flood on a connected mesh cannot)", len(failed), *messages)
		}
		return fmt.Errorf("%d of %d messages did not reach every node within %v", len(failed), *messages, demoDeadline)
	}
	if stopErr != nil {
		return stopErr
	}
	return nil
}

// demoLogDir returns the directory for the nodes' logs: dir if set
// (created if need be), else a new temporary directory.
func demoLogDir(dir string) (string, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "gossipmesh-demo-logs-")
		if err != nil {
			return "", fmt.Errorf("log directory: %w", err)
		}
		return tmp, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--logs: %w", err)
	}
	return dir, nil
}
