package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"gossipmesh/cluster"
)

func downCommand() command {
	return command{name: "down", summary: "stop the mesh that `mesh up` is running", run: runDown}
}

func runDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("down", "down [flags]", stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the launcher, then for each node, before SIGKILL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "down takes no arguments, got %q", fs.Args())
	}
	if *timeout <= 0 {
		return usageError(stderr, "--timeout must be positive, got %v", *timeout)
	}
	s, err := cluster.ReadState(*state)
	if err != nil {
		return err
	}
	// The launcher stops its nodes in order and removes the state file.
	if s.LauncherAlive() {
		if err := syscall.Kill(s.LauncherPID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signalling launcher pid %d: %w", s.LauncherPID, err)
		}
		if !waitGone(ctx, s.LauncherPID, s.LauncherStart, *timeout) {
			fmt.Fprintf(stderr, "mesh down: launcher pid %d still running after %v; stopping its nodes directly\n", s.LauncherPID, *timeout)
		}
	}
	// Fallback: a launcher that died without stopping its nodes, or that
	// ignored SIGTERM. Every signal goes to a recorded PID whose start time
	// still matches, never to a recycled one.
	var alive []cluster.StateNode
	for _, n := range s.Nodes {
		if cluster.Alive(n.PID, n.PIDStart) {
			_ = syscall.Kill(n.PID, syscall.SIGTERM)
			alive = append(alive, n)
		}
	}
	var killed []int
	deadline := time.Now().Add(*timeout)
	for _, n := range alive {
		if !waitGone(ctx, n.PID, n.PIDStart, time.Until(deadline)) {
			_ = syscall.Kill(n.PID, syscall.SIGKILL)
			killed = append(killed, n.PID)
		}
	}
	if err := os.Remove(*state); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the state file: %w", err)
	}
	fmt.Fprintf(stdout, "stopped the mesh of %d nodes (launcher pid %d)\n", len(s.Nodes), s.LauncherPID)
	if len(killed) > 0 {
		fmt.Fprintf(stderr, "mesh down: nodes %v ignored SIGTERM and were killed\n", killed)
	}
	return nil
}

// waitGone polls until process (pid, start) is no longer running, for at
// most timeout.
func waitGone(ctx context.Context, pid int, start uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for cluster.Alive(pid, start) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
