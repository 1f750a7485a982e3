package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
		return fmt.Errorf("%w; nothing was signalled", err)
	}
	// Prove every recorded process before signalling anything: a PID alone
	// may now belong to anyone. Identify wants the recorded start time, the
	// executable and the subcommand to match the live process.
	var refused []string
	launcher := s.IdentifyLauncher()
	proven := 0
	if launcher == nil {
		proven++
	} else if !errors.Is(launcher, cluster.ErrNotRunning) {
		refused = append(refused, "launcher "+launcher.Error())
	}
	for i, n := range s.Nodes {
		err := s.IdentifyNode(i)
		if err == nil {
			proven++
		} else if !errors.Is(err, cluster.ErrNotRunning) {
			refused = append(refused, fmt.Sprintf("node %d %v", n.Index, err))
		}
	}
	if proven == 0 && len(refused) > 0 {
		return fmt.Errorf("state file %s proves no running process to be the mesh's, so nothing was signalled:\n  %s\nif the mesh is gone, remove %s", *state, strings.Join(refused, "\n  "), *state)
	}
	for _, r := range refused {
		fmt.Fprintf(stderr, "mesh down: not signalled: %s\n", r)
	}
	if proven == 0 {
		if err := os.Remove(*state); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the state file: %w", err)
		}
		fmt.Fprintf(stdout, "no process of the mesh was running (launcher pid %d); removed %s\n", s.LauncherPID, *state)
		return nil
	}

	// The launcher stops its nodes in order and removes the state file.
	if launcher == nil {
		err := cluster.SignalProven(s.LauncherPID, s.LauncherStart, s.LauncherExe, "up", syscall.SIGTERM)
		if err != nil && !errors.Is(err, cluster.ErrNotRunning) {
			return fmt.Errorf("signalling launcher pid %d: %w", s.LauncherPID, err)
		}
		if !waitGone(ctx, s.LauncherPID, s.LauncherStart, *timeout) {
			fmt.Fprintf(stderr, "mesh down: launcher pid %d still running after %v; stopping its nodes directly\n", s.LauncherPID, *timeout)
		}
		// The launcher rewrote the file as its nodes changed: read it again
		// for the PIDs that run now, if it is still there.
		if s2, err := cluster.ReadState(*state); err == nil && s2.LauncherPID == s.LauncherPID {
			s = s2
		}
	}
	// Fallback: a launcher that died without stopping its nodes, or that
	// ignored SIGTERM. Every signal goes to a recorded process proven to be
	// that node, never to a recycled PID.
	var alive []cluster.StateNode
	for _, n := range s.Nodes {
		if cluster.SignalProven(n.PID, n.PIDStart, n.Exe, "node", syscall.SIGTERM) == nil {
			alive = append(alive, n)
		}
	}
	var killed []int
	deadline := time.Now().Add(*timeout)
	for _, n := range alive {
		if !waitGone(ctx, n.PID, n.PIDStart, time.Until(deadline)) {
			if cluster.SignalProven(n.PID, n.PIDStart, n.Exe, "node", syscall.SIGKILL) == nil {
				killed = append(killed, n.PID)
			}
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
// most timeout. start is never 0 here: only proven processes are waited
// for.
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
