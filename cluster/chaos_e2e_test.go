package cluster_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

func TestControlPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		".mesh/cluster.json": ".mesh/cluster.sock",
		"/tmp/x/state":       "/tmp/x/state.sock",
		"a.b/c.json":         "a.b/c.sock",
	} {
		if got := cluster.ControlPath(in); got != want {
			t.Errorf("ControlPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// restartOver asks the control socket at path to restart node i.
func restartOver(t *testing.T, path string, i int) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://launcher/nodes/"+strconv.Itoa(i)+"/restart", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestChaosOnACluster drives the chaos verbs on a launched cluster: a
// split and a loss are read back from every node, heal keeps the loss, a
// paused node is seen stopped and refuses a new plan until resumed, and
// the control socket restarts a node while another is down (which a
// whole-mesh readiness wait would refuse).
func TestChaosOnACluster(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	c := startCluster(t, bin, 4, 11)
	dir := t.TempDir()
	state := filepath.Join(dir, "cluster.json")
	if err := c.TrackState(state, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	stop, err := c.ServeControl(cluster.ControlPath(state))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	if st, err := os.Stat(cluster.ControlPath(state)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v; want 0600", err, st.Mode())
	}
	ch, err := cluster.OpenChaos(state)
	if err != nil {
		t.Fatal(err)
	}
	var notes bytes.Buffer
	ch.Notes = &notes
	ctx := context.Background()

	if err := ch.Split(ctx, []int{0, 1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Loss(ctx, 0.25, []int{0}); err != nil {
		t.Fatal(err)
	}
	for i, n := range ch.Status(ctx) {
		want := []int{2, 3}
		if i >= 2 {
			want = []int{0, 1}
		}
		drop := 0.0
		if i == 0 {
			drop = 0.25
		}
		if n.State != cluster.StateRunning || n.Faults == nil || n.Faults.Drop != drop || !slices.Equal(n.Cut, want) {
			t.Fatalf("node %d: %+v; want running, drop %v, cut %v", i, n, drop, want)
		}
	}
	if err := ch.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range ch.Status(ctx) {
		if len(n.Cut) != 0 || (i == 0) != (n.Faults.Drop == 0.25) {
			t.Fatalf("after heal node %d: %+v; want no cut, node 0's loss kept", i, n)
		}
	}

	if err := ch.Pause(ctx, []int{2}); err != nil {
		t.Fatal(err)
	}
	if st := ch.Status(ctx)[2].State; st != cluster.StatePaused {
		t.Fatalf("paused node 2 is %s", st)
	}
	if err := ch.Loss(ctx, 0.5, []int{2}); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Errorf("a plan for a paused node: got %v, want an error that says to resume it", err)
	}
	if err := ch.Resume(ctx, []int{2}); err != nil {
		t.Fatal(err)
	}
	if st := ch.Status(ctx)[2].State; st != cluster.StateRunning {
		t.Fatalf("resumed node 2 is %s", st)
	}

	if err := ch.Kill(ctx, []int{3}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes.String(), "launcher") {
		// This test's process is the launcher but not `mesh up`, so the
		// kill is not waited for in the state file, and Kill says so.
		t.Errorf("notes %q do not say why the state file was not waited for", notes.String())
	}
	deadline := time.Now().Add(time.Minute)
	for c.Nodes()[3].Running {
		if time.Now().After(deadline) {
			t.Fatal("node 3 still running a minute after the kill")
		}
		time.Sleep(10 * time.Millisecond)
	}
	old := c.Nodes()[1].PID
	if code, body := restartOver(t, cluster.ControlPath(state), 1); code != http.StatusOK {
		t.Fatalf("restart of node 1 with node 3 down: %d %s", code, body)
	}
	n1 := c.Nodes()[1]
	if !n1.Running || n1.PID == old {
		t.Fatalf("node 1 after restart: running %v, pid %d (was %d)", n1.Running, n1.PID, old)
	}
	if h, err := c.Client(1).Health(ctx); err != nil || h.ID != n1.ID {
		t.Fatalf("restarted node 1 answers %+v, %v", h, err)
	}
	if code, _ := restartOver(t, cluster.ControlPath(state), 9); code != http.StatusNotFound {
		t.Errorf("restart of a node that does not exist: %d, want 404", code)
	}
}
