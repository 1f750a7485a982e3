package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"gossipmesh/cluster"
)

func upCommand() command {
	return command{name: "up", summary: "launch a mesh of node processes and keep it running", run: runUp}
}

// upOptions are up's flags. Options that add to a running mesh (such as a
// dashboard) belong here and in serveUp.
type upOptions struct {
	launch    launchFlags
	state     string
	logs      string
	dashboard dashboardFlag // dashboard.go
	// adversaries is --adversaries, N:MODE entries (cluster.ParseAdversaries).
	adversaries string
}

func (o *upOptions) register(fs *flag.FlagSet) {
	o.launch.register(fs, localGOMAXPROCS, "")
	fs.StringVar(&o.state, "state", cluster.DefaultStatePath, "state file recording the running mesh, read by publish, status and down")
	fs.StringVar(&o.logs, "logs", "", "directory for the nodes' logs, node-<index>.log (default: beside the state file, named after it: .mesh/cluster.logs for .mesh/cluster.json)")
	o.dashboard.registerUp(fs)
	fs.StringVar(&o.adversaries, "adversaries", "", "run some nodes as adversaries: N:MODE entries, comma-separated, such as 10:blackhole,2:spam=20000 (modes as for mesh node --adversary; a target may be @K, node K); the nodes are placed at random by --seed")
}

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", "up [flags]", stderr)
	var o upOptions
	o.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "up takes no arguments, got %q", fs.Args())
	}
	cfg, err := o.launch.config(stderr)
	if err != nil {
		return err
	}
	if cfg.Adversaries, err = cluster.ParseAdversaries(o.adversaries); err != nil {
		return usageError(stderr, "--adversaries: %v", strings.TrimPrefix(err.Error(), "adversaries: "))
	}
	if o.dashboard.addr != "" {
		if err := checkListenAddr(o.dashboard.addr); err != nil {
			return usageError(stderr, "--dashboard: %v", err)
		}
	}
	lock, err := cluster.LockState(o.state) // held until up returns
	if err != nil {
		return err
	}
	defer lock.Close()
	if s, err := cluster.ReadState(o.state); err == nil && s.LauncherAlive() {
		return fmt.Errorf("a mesh is already running (launcher pid %d, state %s): stop it with `mesh down --state %s`", s.LauncherPID, o.state, o.state)
	}
	// The dashboard's port is bound before the nodes' ports, so that no
	// node takes it.
	dashLn, err := listenDashboard(o.dashboard, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mesh up: no dashboard: %v\n", err)
	}
	defer func() {
		if dashLn != nil {
			dashLn.Close()
		}
	}()
	cfg.LogDir = o.logs
	if cfg.LogDir == "" {
		cfg.LogDir = cluster.DefaultLogDir(o.state)
	}
	var stopping atomic.Bool
	cfg.OnExit = func(index, pid int, err error) {
		if stopping.Load() {
			return
		}
		if err == nil {
			err = errors.New("exit status 0")
		}
		fmt.Fprintf(stderr, "mesh up: node %d (pid %d) exited: %v\n", index, pid, err)
	}

	c, err := cluster.New(cfg)
	if err != nil {
		if len(cfg.Adversaries) > 0 && strings.Contains(err.Error(), "adversar") {
			return usageError(stderr, "--adversaries: %v", strings.TrimPrefix(err.Error(), "cluster: "))
		}
		return err
	}
	fmt.Fprintf(stdout, "mesh up: %d nodes, %d peers each, %s, seed %d\n", cfg.Nodes, cfg.Peers, cfg.Strategy, cfg.Seed)
	if note := c.Topology().Note(); note != "" {
		fmt.Fprintln(stdout, note)
	}
	began := time.Now()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopping.Store(true)
		_ = c.Stop()
	}()
	if err := c.TrackState(o.state, os.Getpid()); err != nil {
		return err
	}
	defer removeStateIfOurs(o.state, os.Getpid())
	// The control socket serves `mesh chaos restart`; without it (a state
	// path too long for a Unix socket, say) the mesh runs all the same.
	if stopControl, err := c.ServeControl(cluster.ControlPath(o.state)); err != nil {
		fmt.Fprintf(stderr, "mesh up: %v (mesh chaos restart will not work)\n", err)
	} else {
		defer stopControl()
	}
	fmt.Fprintf(stdout, "%d processes up and linked in %v\n\n", cfg.Nodes, time.Since(began).Round(time.Millisecond))
	obs := c.Mesh().Observe(ctx)
	printNodeTable(stdout, c.Mesh().Members(), obs)
	printAdversaries(stdout, c.Adversaries())
	if note := c.NetnsNote(); note != "" {
		fmt.Fprintf(stdout, "\n%s", note)
	}
	fmt.Fprintf(stdout, "\nstate %s · logs %s\n", o.state, c.LogDir())
	fmt.Fprintln(stdout, "Ctrl-C, SIGTERM or `mesh down` stops every node.")

	if err := serveUp(ctx, c, dashLn, stdout); err != nil {
		return err
	}
	stopping.Store(true)
	fmt.Fprintf(stdout, "stopping %d nodes\n", cfg.Nodes)
	if err := c.Stop(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}

// serveUp keeps the mesh running until ctx ends (Ctrl-C, SIGTERM, `mesh
// down`). Whatever serves a running mesh (the dashboard on dashLn, if not
// nil) starts here.
func serveUp(ctx context.Context, c *cluster.Cluster, dashLn net.Listener, stdout io.Writer) error {
	return upDashboard(ctx, c, dashLn, stdout)
}

// removeStateIfOurs deletes the state file unless another launcher has
// since replaced it.
func removeStateIfOurs(path string, pid int) {
	if s, err := cluster.ReadState(path); err == nil && s.LauncherPID == pid {
		_ = os.Remove(path)
	}
}

// printAdversaries prints which nodes run which adversary modes, one
// line, or nothing when every node is honest.
func printAdversaries(w io.Writer, modes []string) {
	var parts []string
	for i, m := range modes {
		if m != "" {
			parts = append(parts, fmt.Sprintf("%d (%s)", i, m))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "\nadversaries: %d nodes: %s\n", len(parts), strings.Join(parts, ", "))
	}
}

// printNodeTable prints index, id, PID, addresses and observed peers.
func printNodeTable(w io.Writer, members []cluster.Member, obs cluster.Observation) {
	fmt.Fprintf(w, "  %4s  %-16s  %7s  %-21s  %-28s  %s\n", "node", "id", "pid", "gossip", "http", "peers")
	for i, m := range members {
		peers := joinInts(obs.Peers[i])
		if obs.Errs[i] != nil {
			peers = "not answering: " + obs.Errs[i].Error()
		}
		fmt.Fprintf(w, "  %4d  %-16s  %7d  %-21s  %-28s  %s\n", m.Index, m.ID, m.PID, m.GossipAddr, m.HTTPURL, peers)
	}
}
