package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gossipmesh/cluster"
)

func promConfigCommand() command {
	return command{name: "prometheus-config", summary: "write a Prometheus scrape config for the mesh that `mesh up` runs", run: runPromConfig}
}

// promTarget is one node to scrape.
type promTarget struct {
	addr  string // host:port of the node's HTTP API
	index int
	id    string
}

// promTargets reads the scrape targets from a state file's nodes.
func promTargets(s cluster.State) ([]promTarget, error) {
	out := make([]promTarget, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		u, err := url.Parse(n.HTTPURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("node %d: http_url %q is not a URL", n.Index, n.HTTPURL)
		}
		out = append(out, promTarget{addr: u.Host, index: n.Index, id: n.ID})
	}
	return out, nil
}

// promConfigYAML renders a complete prometheus.yml that scrapes every node,
// each labelled with its index and id so that Grafana can tell them apart
// across restarts (a restarted node keeps both).
func promConfigYAML(ts []promTarget, interval time.Duration, source string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Prometheus scrape config for a gossipmesh mesh, written by `mesh prometheus-config`\n")
	fmt.Fprintf(&b, "# from %s. Regenerate it whenever `mesh up` starts a new mesh: the ports change.\n", source)
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", promDuration(interval), promDuration(interval))
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: gossipmesh\n    metrics_path: /metrics\n    static_configs:\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "      - targets: [%s]\n        labels: {node: %s, node_id: %s}\n",
			strconv.Quote(t.addr), strconv.Quote(strconv.Itoa(t.index)), strconv.Quote(t.id))
	}
	return b.Bytes()
}

// promFileSD renders the targets for Prometheus's file_sd_configs, which
// Prometheus re-reads on change: point a long-running Prometheus at the
// file and rewrite it after each `mesh up`.
func promFileSD(ts []promTarget) ([]byte, error) {
	type group struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	gs := make([]group, 0, len(ts))
	for _, t := range ts {
		gs = append(gs, group{Targets: []string{t.addr}, Labels: map[string]string{"node": strconv.Itoa(t.index), "node_id": t.id}})
	}
	b, err := json.MarshalIndent(gs, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("file_sd targets: %w", err)
	}
	return append(b, '\n'), nil
}

// promDuration writes d in Prometheus's duration syntax (no "m0s" tails).
func promDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

func runPromConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("prometheus-config", "prometheus-config [flags]", stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	out := fs.String("out", "", "write to `FILE` (atomically) instead of stdout")
	format := fs.String("format", "yaml", "yaml: a complete prometheus.yml; file_sd: a targets file for file_sd_configs")
	interval := fs.Duration("interval", 5*time.Second, "scrape and evaluation interval (yaml)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "prometheus-config takes no arguments, got %q", fs.Args())
	}
	if *interval < time.Millisecond || *interval%time.Millisecond != 0 {
		return usageError(stderr, "--interval must be a whole number of milliseconds, at least 1ms, got %v", *interval)
	}
	if *format != "yaml" && *format != "file_sd" {
		return usageError(stderr, "--format must be yaml or file_sd, got %q", *format)
	}
	s, err := cluster.ReadState(*state)
	if err != nil {
		return err
	}
	ts, err := promTargets(s)
	if err != nil {
		return fmt.Errorf("%s: %w", *state, err)
	}
	var b []byte
	switch *format {
	case "yaml":
		b = promConfigYAML(ts, *interval, *state)
	default: // file_sd
		if b, err = promFileSD(ts); err != nil {
			return err
		}
	}
	if *out == "" {
		_, err := stdout.Write(b)
		return err
	}
	return writeFileAtomic(*out, b)
}

// writeFileAtomic replaces path with b so that a Prometheus watching the
// file never reads half of it.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}
