package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"gossipmesh/api"

	"gossipmesh/cluster"
)

func statusCommand() command {
	return command{name: "status", summary: "show each node's peers and whether the mesh is connected", run: runStatus}
}

// statusNode is one node of `mesh status --json`; the field names are a
// contract (issue 2).
type statusNode struct {
	cluster.Member
	Peers []int `json:"peers"`
	// Error says why the node did not answer; absent when it did. For a
	// node whose process has exited it starts with "exited".
	Error string `json:"error,omitempty"`
	// Exited is true when the node's process has exited (the launcher
	// records it in the state file, and answers for the node with 503).
	Exited bool `json:"exited,omitempty"`
	// Adversary is the adversary mode the node runs, such as "blackhole"
	// or "spam=20000", or null for an honest node: what the node's GET
	// /adversary says, or, when it does not answer, the mode the state
	// file records it was launched with.
	Adversary *string `json:"adversary"`
}

// errNotConnected makes status exit 1 when the mesh is not connected, so
// that scripts can wait on it.
var errNotConnected = errors.New("mesh not connected")

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "status [flags]", stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	asJSON := fs.Bool("json", false, `print {"connected": ..., "nodes": [...]} as JSON`)
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the nodes to answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "status takes no arguments, got %q", fs.Args())
	}
	if *timeout <= 0 {
		return usageError(stderr, "--timeout must be positive, got %v", *timeout)
	}
	s, err := cluster.ReadState(*state)
	if err != nil {
		return err
	}
	m, err := cluster.NewMesh(s.Members(), nil)
	if err != nil {
		return fmt.Errorf("state file %s: %w", *state, err)
	}
	octx, cancel := context.WithTimeout(ctx, *timeout)
	obs := m.Observe(octx)
	advs, advErrs := m.Adversaries(octx)
	cancel()
	// What each node runs now, or what it was launched with.
	modes := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		modes[i] = n.Adversary
		if advErrs[i] == nil {
			modes[i] = advs[i].Mode
		}
	}
	// A node that the launcher recorded as exited, or that the launcher
	// answers for, is "exited", whatever error reaching it gave.
	exited := make([]bool, len(s.Nodes))
	for i, n := range s.Nodes {
		var se *api.StatusError
		switch {
		case !n.Running && n.Exited != "":
			exited[i] = true
			obs.Errs[i] = fmt.Errorf("exited (%s)", n.Exited)
		case errors.As(obs.Errs[i], &se) && se.Status == http.StatusServiceUnavailable && strings.HasSuffix(se.Message, " exited"):
			exited[i] = true
			obs.Errs[i] = errors.New("exited")
		}
	}
	launcherErr := s.IdentifyLauncher()
	if *asJSON {
		out := struct {
			Connected bool         `json:"connected"`
			Nodes     []statusNode `json:"nodes"`
		}{Connected: obs.Connected()}
		for i, mb := range m.Members() {
			n := statusNode{Member: mb, Peers: obs.Peers[i]}
			if n.Peers == nil {
				n.Peers = []int{}
			}
			if obs.Errs[i] != nil {
				n.Error = obs.Errs[i].Error()
			}
			n.Exited = exited[i]
			if modes[i] != "" {
				n.Adversary = &modes[i]
			}
			out.Nodes = append(out.Nodes, n)
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else {
		printNodeTable(stdout, m.Members(), obs)
		printAdversaries(stdout, modes)
		answering := 0
		for _, e := range obs.Errs {
			if e == nil {
				answering++
			}
		}
		verdict := "connected"
		if !obs.Connected() {
			verdict = "NOT connected"
		}
		fmt.Fprintf(stdout, "\n%s: %d/%d nodes answer, %d links; launcher pid %d, seed %d, %s\n",
			verdict, answering, m.Len(), len(obs.Graph.Links()), s.LauncherPID, s.Seed, s.Strategy)
	}
	if launcherErr != nil {
		fmt.Fprintf(stderr, "mesh status: the launcher recorded in %s is not running (%v): the state file is stale\n", *state, launcherErr)
	}
	if !obs.Connected() {
		return errNotConnected
	}
	return nil
}
