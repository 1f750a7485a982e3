package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"gossipmesh/cluster"
)

// demoDeadline is the lesson's promise: every node within a second.
const demoDeadline = time.Second

func demoCommand() command {
	return command{name: "demo", summary: "launch a 10-node mesh, gossip a message, show how it spread, stop", run: runDemo}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	var lf launchFlags
	lf.register(fs, localGOMAXPROCS, "")
	messages := fs.Int("messages", 1, "messages to publish, one after another, each at a random node")
	asJSON := fs.Bool("json", false, "print the report as JSON (with --messages > 1, one object per line)")
	var dash dashboardFlag // dashboard.go
	dash.registerDemo(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	c, err := cluster.New(cfg)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) {
		if !*asJSON {
			fmt.Fprintf(stdout, format, args...)
		}
	}
	say("mesh demo: %d nodes, %d peers each, %s, seed %d\n", cfg.Nodes, cfg.Peers, cfg.Strategy, cfg.Seed)
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
	for k := range *messages {
		pub := rng.IntN(cfg.Nodes)
		body := fmt.Sprintf("hello from mesh demo, message %d", k+1)
		r, err := m.Propagate(ctx, pub, body, cluster.PropagateOptions{})
		if err != nil {
			return err
		}
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
		if !r.Complete() || r.TimeToLast > demoDeadline {
			failed = append(failed, fmt.Sprintf("message %d reached %d/%d nodes, the last after %v", k+1, r.Reached, r.Nodes, r.TimeToLast.Round(time.Microsecond)))
		}
	}
	if err := demoDashboard(ctx, c, dash, *asJSON, stdout, stderr); err != nil {
		return err
	}
	stopErr := c.Stop()
	say("\nstopped %d processes\n", cfg.Nodes)
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintf(stderr, "mesh demo: %s\n", f)
		}
		return fmt.Errorf("%w (within %v)", errIncomplete, demoDeadline)
	}
	if stopErr != nil {
		return stopErr
	}
	return nil
}
