package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"gossipmesh/cluster"
	"gossipmesh/wire"
)

// maxPublishRead bounds what publish reads from stdin or a file: a body
// over the node's limit (wire.DefaultMaxBody unless the node was started
// with --max-body) is refused by the node, which names its limit, and
// reading a few times that much keeps a stray `mesh publish - < huge` from
// filling memory first.
const maxPublishRead = 16 * wire.DefaultMaxBody

func publishCommand() command {
	return command{name: "publish", summary: "publish a message to the running mesh and show how it spread", run: runPublish}
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("publish", "publish [flags] TEXT... | - | --file PATH", stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	node := fs.Int("node", -1, "index of the node to publish at; -1 picks one at random")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for every node to receive the message")
	file := fs.String("file", "", "read the message body from `PATH` (as - reads it from stdin)")
	if err := parseFlags(fs, args); err != nil {
		if strings.Contains(err.Error(), "not defined") {
			fmt.Fprintln(stderr, "To publish text that starts with a dash, put it after --: mesh publish -- -text")
		}
		return err
	}
	fromStdin := fs.NArg() == 1 && fs.Arg(0) == "-"
	text := strings.Join(fs.Args(), " ")
	switch {
	case *file != "" && fs.NArg() > 0:
		return usageError(stderr, "publish takes TEXT, - or --file, not both --file and %q", text)
	case *file == "" && text == "":
		return usageError(stderr, "publish needs the message: TEXT, - (stdin) or --file PATH\nRun 'mesh publish -h' for its flags.")
	case *wait <= 0:
		return usageError(stderr, "--wait must be positive, got %v", *wait)
	}
	s, err := cluster.ReadState(*state)
	if err != nil {
		return err
	}
	if *node < -1 || *node >= len(s.Nodes) {
		return usageError(stderr, "--node %d: the mesh has nodes 0 to %d", *node, len(s.Nodes)-1)
	}
	switch {
	case *file != "":
		if text, err = readBody(*file, nil); err != nil {
			return err
		}
	case fromStdin:
		if text, err = readBody("stdin", stdinFrom(ctx)); err != nil {
			return err
		}
	}
	m, err := cluster.NewMesh(s.Members(), nil)
	if err != nil {
		return fmt.Errorf("state file %s: %w", *state, err)
	}
	pub := *node
	if pub < 0 {
		pub = rand.IntN(m.Len())
	}
	// The whole command honours --wait: a node that accepts connections
	// but never answers (SIGSTOPped) costs the wait and a second, not the
	// client's longer default deadline.
	ctx, cancel := context.WithTimeout(ctx, *wait+time.Second)
	defer cancel()
	r, err := m.Propagate(ctx, pub, text, cluster.PropagateOptions{Wait: *wait})
	if err != nil {
		return err
	}
	r.Seed = s.Seed
	if *asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		printReport(stdout, r)
	}
	if p := reportProblem(r, s.Strategy, 0); p != "" {
		if s.Strategy == "fanout" {
			return fmt.Errorf("%s within %v", p, *wait)
		}
		return fmt.Errorf("%w: %s within %v", errIncomplete, p, *wait)
	}
	return nil
}

// readBody reads a message body from the file at path, or from r when r
// is not nil (path then names it). A body must be text: the API carries it
// as a JSON string, which has no room for other bytes.
func readBody(path string, r io.Reader) (string, error) {
	if r == nil {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPublishRead+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("reading %s: %w", path, err)
	case len(b) > maxPublishRead:
		return "", fmt.Errorf("%s holds more than %d bytes, far over a node's body limit (%d by default)", path, maxPublishRead, wire.DefaultMaxBody)
	case len(b) == 0:
		return "", fmt.Errorf("%s is empty: there is no message to publish", path)
	case !utf8.Valid(b):
		return "", fmt.Errorf("%s is not UTF-8 text: the node API carries message bodies as JSON strings", path)
	}
	return string(b), nil
}
