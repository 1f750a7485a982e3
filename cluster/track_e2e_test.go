package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/cluster"
)

// TestEndToEndStateFollowsRestartsAndLogsAreCapped runs a mesh in-process
// with its state file tracked and a small log cap: the file follows a kill
// and a restart, a killed node's ports answer at once until the restart
// hands them back to the new process alone, and every node's log stays
// under the cap with one rotated file beside it.
func TestEndToEndStateFollowsRestartsAndLogsAreCapped(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	const logCap = 4096
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Peers, cfg.Seed = bin, 3, 2, 21
	cfg.LogDir = t.TempDir()
	cfg.LogMaxBytes = logCap
	cfg.StartTimeout = time.Minute
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	state := filepath.Join(t.TempDir(), "cluster.json")
	if err := c.TrackState(state, os.Getpid()); err != nil {
		t.Fatal(err)
	}

	read := func() cluster.State {
		t.Helper()
		s, err := cluster.ReadState(state)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(what string) {
		t.Helper()
		s := read()
		for i, n := range c.Nodes() {
			sn := s.Nodes[i]
			if sn.PID != n.PID || sn.PIDStart != n.PIDStart || sn.Running != n.Running || sn.Exe != n.Exe {
				t.Errorf("%s: state file has node %d as pid %d start %d running %v exe %q; cluster: pid %d start %d running %v exe %q",
					what, i, sn.PID, sn.PIDStart, sn.Running, sn.Exe, n.PID, n.PIDStart, n.Running, n.Exe)
			}
		}
	}
	check("after start")

	old := c.Nodes()[1]
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if c.Nodes()[1].PID == old.PID {
		t.Fatal("restart kept the pid")
	}
	check("after restart")
	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	check("after kill")
	if s := read(); s.Nodes[2].Exited == "" {
		t.Errorf("state file does not say how node 2 ended: %+v", s.Nodes[2])
	}

	// The killed node's ports answer at once.
	dead := c.Nodes()[2]
	_, err = c.Client(2).Health(ctx)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Errorf("health of a killed node: %v, want 503", err)
	}
	if conn, err := net.DialTimeout("tcp", dead.GossipAddr, 5*time.Second); err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, rerr := conn.Read(make([]byte, 1))
		conn.Close()
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			t.Errorf("killed node's gossip port accepted and never answered")
		}
	}
	// After a restart, the node itself answers again, and only it: every
	// one of many calls reaches the new process.
	if err := c.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	check("after second restart")
	for k := range 50 {
		h, err := c.Client(2).Health(ctx)
		if err != nil || h.ID != dead.ID {
			t.Fatalf("call %d to the restarted node: %+v, %v", k, h, err)
		}
	}

	// Push the logs past the cap: one info line per first receipt.
	m := c.Mesh()
	for k := range 60 {
		r, err := m.Propagate(ctx, k%3, fmt.Sprintf("log filler %d with some words to make the line longer", k), cluster.PropagateOptions{Wait: 30 * time.Second})
		if err != nil || !r.Complete() {
			t.Fatalf("message %d: reached %d/%d, %v", k, r.Reached, r.Nodes, err)
		}
	}
	for _, n := range c.Nodes() {
		st, err := os.Stat(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > logCap {
			t.Errorf("node %d: %s is %d bytes, over the cap of %d", n.Index, n.LogPath, st.Size(), logCap)
		}
		rot, err := os.Stat(n.LogPath + ".1")
		if err != nil {
			t.Errorf("node %d: no rotated log after pushing past the cap: %v", n.Index, err)
		} else if rot.Size() > logCap {
			t.Errorf("node %d: rotated log is %d bytes, over the cap", n.Index, rot.Size())
		}
	}

	if err := c.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file still there after Stop: %v", err)
	}
}

// TestEndToEndCrashQuotesTheLog: a node that dies at start-up has the end
// of its log, which now reaches the file through the launcher's pipe,
// quoted in Start's error.
func TestEndToEndCrashQuotesTheLog(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Seed = bin, 1, 5
	cfg.LogDir = t.TempDir()
	cfg.StartTimeout = time.Minute
	cfg.ExtraArgs = []string{"--no-such-flag"}
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start(context.Background())
	if err == nil {
		_ = c.Stop()
		t.Fatal("a node with a bad flag started")
	}
	if msg := err.Error(); !strings.Contains(msg, "--- end of ") || !strings.Contains(msg, "no-such-flag") {
		t.Fatalf("Start's error does not quote the node's log:\n%s", msg)
	}
}
