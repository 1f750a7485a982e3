package main

// End-to-end tests of demo, up and publish: real node processes on
// 127.0.0.1 (the test binary, acting as mesh; see TestMain), on ports
// bound at run time. They assert outcomes, never speed; the only waits are
// generous bounds on a mesh coming up.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/cluster"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts real processes")
	}
}

// lockedBuffer is a bytes.Buffer that a child process's output copier and
// the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// demoReport is the part of a `--json` report these tests read.
type demoReport struct {
	Nodes     int    `json:"nodes"`
	Reached   int    `json:"reached"`
	Seed      uint64 `json:"seed"`
	ID        string `json:"id"`
	Distances []int  `json:"distances"`
}

// runMesh runs mesh in-process and returns its exit code and output.
func runMesh(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = runWithStdin(args, strings.NewReader(stdin), &out, &errs)
	return code, out.String(), errs.String()
}

// --peers defaults to what the mesh can hold, so --nodes 2 and 3 work
// without it, and the JSON report names the seed, drawn or given.
func TestDemoSmallMeshesAndTheSeed(t *testing.T) {
	skipShort(t)
	t.Parallel()
	for _, tc := range []struct {
		args []string
		seed uint64 // 0: any but 0
	}{
		{[]string{"--nodes", "2"}, 0},
		{[]string{"--nodes", "3", "--seed", "42"}, 42},
	} {
		args := append([]string{"demo", "--json", "--start-timeout", "1m"}, tc.args...)
		code, stdout, stderr := runMesh(t, "", args...)
		if code != 0 {
			t.Errorf("mesh %v: exit %d\n%s", args, code, stderr)
			continue
		}
		var r demoReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Errorf("mesh %v: %v\n%s", args, err, stdout)
			continue
		}
		if r.Reached != r.Nodes || r.Seed == 0 || (tc.seed != 0 && r.Seed != tc.seed) || len(r.Distances) != r.Nodes {
			t.Errorf("mesh %v: %+v; want every node reached, seed %d (0: any), a distance per node", args, r, tc.seed)
		}
	}
}

// Several messages end with a summary, in the table and as a last JSON
// line.
func TestDemoMessagesEndWithASummary(t *testing.T) {
	skipShort(t)
	t.Parallel()
	code, stdout, stderr := runMesh(t, "", "demo", "--nodes", "4", "--peers", "2", "--messages", "3", "--json", "--start-timeout", "1m")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 reports and a summary:\n%s", len(lines), stdout)
	}
	var last struct {
		Summary *struct {
			Messages      int      `json:"messages"`
			Complete      int      `json:"complete"`
			Receipts      int      `json:"receipts"`
			HopIsDistance *float64 `json:"hop_equals_distance"`
			AtHop1        *float64 `json:"neighbours_at_hop_1"`
			TimeToLast    struct {
				P50 float64 `json:"p50"`
				P99 float64 `json:"p99"`
			} `json:"time_to_last_ms"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil || last.Summary == nil {
		t.Fatalf("last line %q: %v", lines[3], err)
	}
	s := last.Summary
	if s.Messages != 3 || s.Complete != 3 || s.Receipts != 9 || s.HopIsDistance == nil || s.AtHop1 == nil || s.TimeToLast.P50 <= 0 || s.TimeToLast.P99 < s.TimeToLast.P50 {
		t.Errorf("summary %s", lines[3])
	}

	code, stdout, stderr = runMesh(t, "", "demo", "--nodes", "3", "--messages", "2", "--start-timeout", "1m")
	if code != 0 || !strings.Contains(stdout, "summary over 2 messages") || !strings.Contains(stdout, "hop = distance") {
		t.Errorf("exit %d, no summary in the table:\n%s\n%s", code, stdout, stderr)
	}
}

// --logs keeps the nodes' logs where asked, so --log-format shows; without
// it the logs of a failed demo are kept, and the demo says where.
func TestDemoKeepsLogs(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "logs")
	code, _, stderr := runMesh(t, "", "demo", "--nodes", "2", "--logs", dir, "--log-format", "json", "--start-timeout", "1m")
	if code != 0 || !strings.Contains(stderr, dir) {
		t.Fatalf("exit %d, stderr %q does not name %s", code, stderr, dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "node-0.log"))
	if err != nil || !bytes.HasPrefix(b, []byte(`{"time":`)) {
		t.Errorf("node-0.log: %v, %q; want JSON lines", err, b)
	}

	// A mesh that cannot come up in 1 ns fails, and its logs stay.
	code, _, stderr = runMesh(t, "", "demo", "--nodes", "2", "--start-timeout", "1ns")
	m := regexp.MustCompile(`node logs kept in (\S+)`).FindStringSubmatch(stderr)
	if code != 1 || m == nil {
		t.Fatalf("failed demo: exit %d, stderr %q names no log directory", code, stderr)
	}
	t.Cleanup(func() { os.RemoveAll(m[1]) })
	if _, err := os.Stat(filepath.Join(m[1], "node-1.log")); err != nil {
		t.Errorf("failed demo's logs: %v", err)
	}
}

// The dashboard's address is bound before any node starts: when it is
// taken, demo fails before launching anything.
func TestDemoBindsTheDashboardFirst(t *testing.T) {
	skipShort(t)
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, stdout, stderr := runMesh(t, "", "demo", "--nodes", "2", "--peers", "1", "--dashboard="+ln.Addr().String())
	if code != 1 || stdout != "" || !strings.Contains(stderr, "dashboard") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 on the dashboard and nothing launched", code, stdout, stderr)
	}
}

// startUp runs `mesh up` as a child process and returns once its state
// file is written; the test's end stops it with SIGTERM.
func startUp(t *testing.T, state string, args ...string) (cluster.State, *lockedBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := new(lockedBuffer)
	up := exec.Command(exe, append([]string{"up", "--state", state, "--start-timeout", "1m"}, args...)...)
	up.Stdout, up.Stderr = out, out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once up is reaped, waitErr set
	var waitErr error
	go func() { waitErr = up.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = up.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := cluster.ReadState(state)
		if err == nil {
			return s, out
		}
		select {
		case <-exited:
			t.Fatalf("mesh up exited before writing the state file: %v\n%s", waitErr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file after 90 s: %v\n%s", err, out.String())
		}
	}
}

// publish parses flags after the text, takes the body from stdin (-) or a
// file (--file, up to the 1 MiB limit), text that starts with a dash after
// --, and names the mesh's seed in its JSON report. up serves the
// dashboard on the listener it bound before the nodes.
func TestUpPublishBodies(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "cluster.json")
	s, upOut := startUp(t, state, "--nodes", "3", "--seed", "5", "--dashboard", "127.0.0.1:0")
	// up prints the dashboard's address just after writing the state file.
	served := regexp.MustCompile(`dashboard http://127\.0\.0\.1:\d+/`)
	for deadline := time.Now().Add(30 * time.Second); !served.MatchString(upOut.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("mesh up serves no dashboard:\n%s", upOut.String())
			break
		}
	}
	big := strings.Repeat("x", 1<<20)
	bigFile := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(bigFile, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		body  string
	}{
		{"", []string{"hi", "--json"}, "hi"},
		{"", []string{"hello", "--node", "1", "world", "--json"}, "hello world"},
		{"", []string{"--json", "--", "--dashed", "text"}, "--dashed text"},
		{"from stdin\n", []string{"-", "--json"}, "from stdin\n"},
		{"", []string{"--json", "--file", bigFile}, big},
	} {
		args := append([]string{"publish", "--state", state}, tc.args...)
		code, stdout, stderr := runMesh(t, tc.stdin, args...)
		if code != 0 {
			t.Errorf("mesh %.80q: exit %d\n%s", args, code, stderr)
			continue
		}
		var r demoReport
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Errorf("mesh %.80q: stdout is not a JSON report: %v\n%.300s", args, err, stdout)
			continue
		}
		if r.Seed != 5 || r.Reached != 3 {
			t.Errorf("mesh %.80q: seed %d, reached %d; want 5, 3", args, r.Seed, r.Reached)
		}
		rc, err := api.NewClient(s.Nodes[2].HTTPURL, nil).Receipt(context.Background(), r.ID, 0)
		if err != nil || rc.Body != tc.body {
			t.Errorf("mesh %.80q: node 2 holds body %.40q (%d bytes), %v; want %.40q (%d bytes)", args, rc.Body, len(rc.Body), err, tc.body, len(tc.body))
		}
	}
	if strings.Contains(upOut.String(), "exited") {
		t.Errorf("a node exited under mesh up:\n%s", upOut.String())
	}
}

// A seed whose draw is disconnected is redrawn by the launcher, and demo
// says so (on stderr under --json) rather than leaving the user to wonder
// why the topology differs from the seed's first draw.
func TestDemoSaysWhenTheTopologyWasRedrawn(t *testing.T) {
	skipShort(t)
	t.Parallel()
	seed := uint64(1)
	for cluster.NewTopology(4, 1, seed).Note() == "" {
		seed++
	}
	code, stdout, stderr := runMesh(t, "", "demo", "--nodes", "4", "--peers", "1", "--seed", fmt.Sprint(seed), "--json", "--start-timeout", "1m")
	var r demoReport
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil || r.Reached != 4 {
		t.Fatalf("seed %d: exit %d\n%s\n%s", seed, code, stdout, stderr)
	}
	if !strings.Contains(stderr, "redrawn") {
		t.Errorf("seed %d: stderr %q does not say the topology was redrawn", seed, stderr)
	}
}

// A fanout run that misses nodes puts it down to fanout, and the rows of
// the nodes it missed keep their distance. With k = 1 on 4 nodes, about
// half of all messages miss a node (and each miss waits out the 5 s
// receipt wait); the seeds are tried in turn until a run has a miss.
func TestDemoFanoutMissesAreFanouts(t *testing.T) {
	skipShort(t)
	t.Parallel()
	notReached := regexp.MustCompile(`(?m)^\s+\d+\s+-\s+\d+\s+-\s+-\s+\S+\s+NOT REACHED$`)
	for seed := 1; seed <= 10; seed++ {
		code, stdout, stderr := runMesh(t, "", "demo", "--nodes", "4", "--strategy", "fanout", "--fanout", "1",
			"--messages", "2", "--seed", fmt.Sprint(seed), "--start-timeout", "1m")
		if code == 0 {
			continue // every message reached every node: try another seed
		}
		if code != 1 || !strings.Contains(stderr, "fanout missed node(s)") || !strings.Contains(stderr, "mesh demo: fanout missed nodes in") ||
			strings.Contains(stderr, "within 1s") {
			t.Errorf("seed %d: exit %d, stderr %q; want fanout named as the cause", seed, code, stderr)
		}
		if !notReached.MatchString(stdout) {
			t.Errorf("seed %d: no NOT REACHED row with a distance:\n%s", seed, stdout)
		}
		return
	}
	t.Fatal("no seed from 1 to 10 missed a node with fanout 1")
}
