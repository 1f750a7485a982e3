package cluster_test

// End-to-end tests of the launcher's hardening: down signals only processes
// it can prove are the mesh's, one `mesh up` per state file, logs per state
// file and capped, a state file that follows exits and restarts, and dead
// nodes that answer at once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/cluster"
)

// startSleep starts `sleep 60`, a process that is not the mesh's, and
// kills it by PID when the test ends.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// TestEndToEndDownRefusesUnprovenProcesses writes state files whose PIDs
// are held by a `sleep` of the test's own, with start times that are zero,
// missing or wrong, or with the right start time but the wrong executable
// or command: down must refuse with a clear error and the sleep must live.
func TestEndToEndDownRefusesUnprovenProcesses(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	binExe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	type ids struct {
		start uint64
		exe   string
	}
	cases := []struct {
		name string
		// mk returns the state file's content for the sleep's pid, real
		// start time and real executable.
		mk   func(pid int, real ids) string
		want string // in down's error
	}{
		{"zero start times", func(pid int, real ids) string {
			return stateJSON(cluster.StateVersion, pid, ids{0, binExe})
		}, "no start time recorded"},
		{"older format without start times", func(pid int, real ids) string {
			return fmt.Sprintf(`{"version": 1, "launcher_pid": %d, "nodes": [{"index": 0, "id": "00000000000000aa", "pid": %d, "http_url": "http://127.0.0.1:1"}]}`, pid, pid)
		}, "nothing was signalled"},
		{"wrong start time", func(pid int, real ids) string {
			return stateJSON(cluster.StateVersion, pid, ids{real.start + 1, real.exe})
		}, "now held by another process"},
		{"right start time, wrong executable", func(pid int, real ids) string {
			return stateJSON(cluster.StateVersion, pid, ids{real.start, binExe})
		}, "runs " + real0(t)},
		{"right start time and executable, wrong command", func(pid int, real ids) string {
			return stateJSON(cluster.StateVersion, pid, real)
		}, "not `mesh"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sl := startSleep(t)
			pid := sl.Process.Pid
			start, _, err := cluster.ProcStart(pid)
			if err != nil {
				t.Fatal(err)
			}
			exe, err := procExe(pid)
			if err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(t.TempDir(), "cluster.json")
			if err := os.WriteFile(state, []byte(tc.mk(pid, ids{start, exe})), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "down", "--state", state, "--timeout", "1s").CombinedOutput()
			if err == nil {
				t.Errorf("down succeeded on a state file that proves nothing:\n%s", out)
			} else if !strings.Contains(string(out), tc.want) {
				t.Errorf("down's error does not say %q:\n%s", tc.want, out)
			}
			if !cluster.Alive(pid, start) {
				t.Fatalf("down signalled pid %d, a sleep that is not the mesh's", pid)
			}
			if _, err := os.Stat(state); err != nil {
				t.Errorf("down removed a state file it could not prove: %v", err)
			}
		})
	}
}

// real0 is the executable of `sleep`, as /proc shows it.
func real0(t *testing.T) string {
	sl := startSleep(t)
	exe, err := procExe(sl.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// procExe reads /proc/PID/exe.
func procExe(pid int) (string, error) { return os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)) }

// stateJSON is a state file of one launcher and one node, both at pid.
func stateJSON(version, pid int, id struct {
	start uint64
	exe   string
}) string {
	m := map[string]any{
		"version": version, "launcher_pid": pid, "launcher_start": id.start, "launcher_exe": id.exe,
		"nodes": []map[string]any{{
			"index": 0, "id": "00000000000000aa", "pid": pid, "pid_start": id.start, "exe": id.exe,
			"running": true, "http_url": "http://127.0.0.1:1", "gossip_addr": "127.0.0.1:1",
		}},
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestEndToEndOneUpPerStateFile starts two `mesh up` at the same moment on
// one state file: exactly one runs, the other refuses at once. A third on
// another state file in the same directory runs beside it, with logs of
// its own.
func TestEndToEndOneUpPerStateFile(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "a.json")
	type run struct {
		cmd    *exec.Cmd
		out    *lockedOutput
		exited chan error
	}
	launch := func(state string) *run {
		r := &run{out: new(lockedOutput), exited: make(chan error, 1)}
		r.cmd = exec.Command(bin, "up", "--state", state, "--nodes", "2", "--peers", "1", "--seed", "3", "--start-timeout", "1m", "--dashboard", "off")
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.exited <- r.cmd.Wait() }()
		t.Cleanup(func() { _ = r.cmd.Process.Kill() })
		return r
	}
	runs := []*run{launch(state), launch(state)}

	// One of them must refuse; wait for that (bounded, not timed).
	var loser, winner *run
	select {
	case err := <-runs[0].exited:
		loser, winner = runs[0], runs[1]
		runs[0].exited <- err
	case err := <-runs[1].exited:
		loser, winner = runs[1], runs[0]
		runs[1].exited <- err
	case <-time.After(90 * time.Second):
		t.Fatalf("both `mesh up` on one state file still run after 90 s:\n%s\n---\n%s", runs[0].out, runs[1].out)
	}
	if err := <-loser.exited; err == nil || !strings.Contains(loser.out.String(), "another `mesh up` is running") {
		t.Fatalf("the refused launcher: exit %v, output:\n%s", err, loser.out)
	}
	s := waitState(t, state, winner.exited)
	if s.LauncherPID != winner.cmd.Process.Pid {
		t.Fatalf("state file names launcher %d, want the one still running, %d", s.LauncherPID, winner.cmd.Process.Pid)
	}

	// Another state file in the same directory: its own mesh and logs.
	other := launch(filepath.Join(dir, "b.json"))
	s2 := waitState(t, filepath.Join(dir, "b.json"), other.exited)
	if s.LogDir == "" || s.LogDir == s2.LogDir {
		t.Fatalf("two state files in one directory share the log directory %q", s.LogDir)
	}
	for _, st := range []cluster.State{s, s2} {
		for _, n := range st.Nodes {
			if filepath.Dir(n.Log) != st.LogDir {
				t.Errorf("node %d logs to %s, outside %s", n.Index, n.Log, st.LogDir)
			}
			if _, err := os.Stat(n.Log); err != nil {
				t.Error(err)
			}
		}
	}
	for _, st := range []string{state, filepath.Join(dir, "b.json")} {
		if out, err := exec.Command(bin, "down", "--state", st).CombinedOutput(); err != nil {
			t.Errorf("down --state %s: %v\n%s", st, err, out)
		}
	}
	for _, r := range []*run{winner, other} {
		select {
		case <-r.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("mesh up still running 30 s after down:\n%s", r.out)
		}
	}
}

// lockedOutput is a launcher's output, written by exec's copying goroutine
// and read by the test.
type lockedOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *lockedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *lockedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitState waits until the state file at path exists, or the launcher
// exits.
func waitState(t *testing.T, path string, exited chan error) cluster.State {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := cluster.ReadState(path)
		if err == nil {
			return s
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("mesh up on %s exited before writing its state: %v", path, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file %s after 90 s: %v", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEndDeadNode kills a node of a `mesh up` mesh behind the
// launcher's back: the state file records the exit, the node's ports
// answer at once (gossip: closed; HTTP: 503), status says "exited", and
// publish to it fails promptly instead of hanging.
func TestEndToEndDeadNode(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	state := filepath.Join(t.TempDir(), "cluster.json")
	_, s, _, out := startUp(t, bin, state, "--nodes", "4", "--peers", "2", "--seed", "4")
	dead := s.Nodes[1]
	if err := syscall.Kill(dead.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Read as JSON, so that the test also runs against older launchers.
		var s2 struct {
			Nodes []struct {
				Running bool   `json:"running"`
				Exited  string `json:"exited"`
			} `json:"nodes"`
		}
		b, err := os.ReadFile(state)
		if err == nil {
			err = json.Unmarshal(b, &s2)
		}
		if err == nil && len(s2.Nodes) == 4 && !s2.Nodes[1].Running && s2.Nodes[1].Exited != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file does not show node 1 exited 30 s after it was killed: %v\n%s\n%s", err, b, out)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Gossip: the connection is accepted and closed; a read ends with
	// EOF or a reset, not a timeout.
	conn, err := net.DialTimeout("tcp", dead.GossipAddr, 5*time.Second)
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, rerr := conn.Read(make([]byte, 1))
		conn.Close()
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			t.Errorf("dead node's gossip port accepted and never answered: %v", rerr)
		}
	}
	// HTTP: 503 with the JSON error.
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(dead.HTTPURL + "/healthz")
	if err != nil {
		t.Fatalf("dead node's HTTP port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e api.Error
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error != "node 1 exited" {
		t.Errorf("dead node's HTTP answer: %d %s", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, bin, "status", "--json", "--state", state).Output()
	if err == nil {
		t.Error("status exits 0 with a node dead")
	}
	var st struct {
		Nodes []struct {
			Error  string `json:"error"`
			Exited bool   `json:"exited"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Nodes) != 4 {
		t.Fatalf("status --json: %v\n%s", err, b)
	}
	if !st.Nodes[1].Exited || !strings.HasPrefix(st.Nodes[1].Error, "exited") {
		t.Errorf("status for the dead node: %+v", st.Nodes[1])
	}
	if st.Nodes[0].Exited || st.Nodes[0].Error != "" {
		t.Errorf("status for a live node: %+v", st.Nodes[0])
	}

	pb, err := exec.CommandContext(ctx, bin, "publish", "--state", state, "--node", "1", "--wait", "2s", "to the dead").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("publish to a dead node hung:\n%s", pb)
	}
	if err == nil || !strings.Contains(string(pb), "node 1 exited") {
		t.Errorf("publish to a dead node: %v\n%s", err, pb)
	}
}
