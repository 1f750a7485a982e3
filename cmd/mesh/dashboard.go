package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"gossipmesh/cluster"
	"gossipmesh/web"
)

// defaultDashboard is where `mesh up` serves the dashboard unless told
// otherwise: loopback only, because its buttons kill processes.
const defaultDashboard = "127.0.0.1:8080"

// dashboardFlag is --dashboard: an address to serve the dashboard on, or
// "off". For demo it is also a boolean flag, so that a bare --dashboard
// means the default address (and --dashboard=ADDR another one).
type dashboardFlag struct {
	addr    string // "" is off
	boolish bool
}

func (d *dashboardFlag) String() string {
	if d == nil || d.addr == "" {
		return "off"
	}
	return d.addr
}

func (d *dashboardFlag) Set(s string) error {
	switch s {
	case "off", "false", "":
		d.addr = ""
		return nil
	case "true", "on":
		d.addr = defaultDashboard
		return nil
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		return fmt.Errorf("want HOST:PORT (such as %s) or off, got %q", defaultDashboard, s)
	}
	d.addr = s
	return nil
}

// IsBoolFlag lets demo's --dashboard stand alone.
func (d *dashboardFlag) IsBoolFlag() bool { return d.boolish }

// registerUp adds up's --dashboard, on by default.
func (d *dashboardFlag) registerUp(fs *flag.FlagSet) {
	d.addr = defaultDashboard
	fs.Var(d, "dashboard", "serve the live dashboard on `ADDR` (HOST:PORT), or off")
}

// registerDemo adds demo's --dashboard, off by default: with it, demo keeps
// the mesh running after its report until Ctrl-C.
func (d *dashboardFlag) registerDemo(fs *flag.FlagSet) {
	d.boolish = true
	fs.Var(d, "dashboard", "after the report, keep the mesh running and serve the live dashboard on "+defaultDashboard+" (or --dashboard=ADDR) until Ctrl-C")
}

// upDashboard serves the dashboard of up's mesh on ln until ctx ends; nil
// (off, or an address that could not be bound) serves nothing. A busy
// address does not stop the mesh: the mesh is what `mesh up` is for, and
// 8080 is a popular port.
func upDashboard(ctx context.Context, c *cluster.Cluster, ln net.Listener, stdout io.Writer) error {
	if ln != nil {
		return serveDashboard(ctx, c, ln, stdout)
	}
	<-ctx.Done()
	return nil
}

// demoDashboard, when --dashboard was given (ln is not nil), serves the
// dashboard of the demo's mesh until ctx ends (Ctrl-C). With --json the
// address goes to stderr, so stdout stays JSON.
func demoDashboard(ctx context.Context, c *cluster.Cluster, ln net.Listener, asJSON bool, stdout, stderr io.Writer) error {
	if ln == nil {
		return nil
	}
	if asJSON {
		return serveDashboard(ctx, c, ln, stderr)
	}
	fmt.Fprintln(stdout)
	return serveDashboard(ctx, c, ln, stdout)
}

func serveDashboard(ctx context.Context, c *cluster.Cluster, ln net.Listener, stdout io.Writer) error {
	s, err := web.New(web.ClusterMesh(c), web.Options{})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "dashboard http://%s/ (Ctrl-C stops the mesh)\n", ln.Addr())
	if err := s.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func replayCommand() command {
	return command{name: "replay", summary: "serve the dashboard replaying a trace written by `mesh sim --trace`", run: runReplay}
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", "replay [flags] TRACE.json", stderr)
	addr := fs.String("addr", defaultDashboard, "serve the replay on `HOST:PORT`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "replay takes one trace file, got %d arguments", fs.NArg())
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	tr, err := web.ReadTrace(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	s, err := web.New(nil, web.Options{Trace: tr})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("replay: %w (choose another address with --addr HOST:PORT)", err)
	}
	fmt.Fprintf(stdout, "replaying %s: %d nodes, %d events\ndashboard http://%s/replay (Ctrl-C stops)\n", fs.Arg(0), tr.Nodes, len(tr.Events), ln.Addr())
	return s.Serve(ctx, ln)
}
