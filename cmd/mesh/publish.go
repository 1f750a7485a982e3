package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"gossipmesh/cluster"
)

func publishCommand() command {
	return command{name: "publish", summary: "publish a message to the running mesh and show how it spread", run: runPublish}
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("publish", "publish [flags] TEXT", stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	node := fs.Int("node", -1, "index of the node to publish at; -1 picks one at random")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for every node to receive the message")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text := strings.Join(fs.Args(), " ")
	if text == "" {
		fs.Usage()
		return usageError(stderr, "publish needs the message TEXT")
	}
	if *wait <= 0 {
		return usageError(stderr, "--wait must be positive, got %v", *wait)
	}
	s, err := cluster.ReadState(*state)
	if err != nil {
		return err
	}
	if *node < -1 || *node >= len(s.Nodes) {
		return usageError(stderr, "--node %d: the mesh has nodes 0 to %d", *node, len(s.Nodes)-1)
	}
	m, err := cluster.NewMesh(s.Members(), nil)
	if err != nil {
		return fmt.Errorf("state file %s: %w", *state, err)
	}
	pub := *node
	if pub < 0 {
		pub = rand.IntN(m.Len())
	}
	r, err := m.Propagate(ctx, pub, text, cluster.PropagateOptions{Wait: *wait})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		printReport(stdout, r)
	}
	if !r.Complete() {
		return fmt.Errorf("%w: reached %d/%d nodes within %v", errIncomplete, r.Reached, r.Nodes, *wait)
	}
	return nil
}
