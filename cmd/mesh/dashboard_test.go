package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/web"
)

func TestDashboardFlag(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"off", "", true},
		{"true", defaultDashboard, true},
		{"false", "", true},
		{"127.0.0.1:9090", "127.0.0.1:9090", true},
		{":9090", ":9090", true},
		{"[::1]:0", "[::1]:0", true},
		{"9090", "", false},
		{"localhost", "", false},
		{"127.0.0.1:", "", false},
	} {
		d := dashboardFlag{addr: "unchanged"}
		err := d.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && d.addr != tc.want) {
			t.Errorf("Set(%q): addr %q, err %v; want %q, ok %v", tc.in, d.addr, err, tc.want, tc.ok)
		}
	}
}

func TestDashboardCommandsRejectBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "--dashboard", "8080"}, "HOST:PORT"},
		{[]string{"demo", "--dashboard=nowhere"}, "HOST:PORT"},
		{[]string{"replay"}, "one trace file"},
		{[]string{"replay", "a.json", "b.json"}, "one trace file"},
		{[]string{"prometheus-config", "extra"}, "no arguments"},
		{[]string{"prometheus-config", "--format", "toml"}, "yaml or file_sd"},
		{[]string{"prometheus-config", "--interval", "0s"}, "interval"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
	}
	// A trace that is not one is refused with the reason.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":7}`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"replay", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "version 7") {
		t.Errorf("replay of a bad trace: exit %d, stderr %q", code, stderr.String())
	}
}

func testState(t *testing.T) string {
	t.Helper()
	s := cluster.State{Version: cluster.StateVersion, Nodes: []cluster.StateNode{
		{Member: cluster.Member{Index: 0, ID: "00000000000000aa", HTTPURL: "http://127.0.0.1:8001"}},
		{Member: cluster.Member{Index: 1, ID: "00000000000000bb", HTTPURL: "http://127.0.0.1:8002"}},
	}}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := cluster.WriteState(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPrometheusConfigYAML(t *testing.T) {
	state := testState(t)
	out := filepath.Join(t.TempDir(), "prometheus.yml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"prometheus-config", "--state", state, "--interval", "15s", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"scrape_interval: 15s",
		"job_name: gossipmesh",
		`- targets: ["127.0.0.1:8001"]`,
		`labels: {node: "1", node_id: "00000000000000bb"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q:\n%s", want, b)
		}
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		if res, err := exec.Command(path, "check", "config", out).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, res)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("CI=true but promtool is not on PATH")
	} else {
		t.Log("promtool not on PATH: generated config not checked by promtool")
	}
}

func TestPrometheusConfigFileSD(t *testing.T) {
	state := testState(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"prometheus-config", "--state", state, "--format", "file_sd"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var groups []struct {
		Targets []string
		Labels  map[string]string
	}
	if err := json.Unmarshal(stdout.Bytes(), &groups); err != nil {
		t.Fatalf("file_sd output is not JSON: %v\n%s", err, stdout.Bytes())
	}
	if len(groups) != 2 || groups[1].Targets[0] != "127.0.0.1:8002" || groups[1].Labels["node"] != "1" || groups[1].Labels["node_id"] != "00000000000000bb" {
		t.Errorf("groups = %+v", groups)
	}
	if promDuration(1500*time.Millisecond) != "1500ms" || promDuration(2*time.Minute) != "2m" {
		t.Error("promDuration")
	}
}

// TestReplayServes runs `mesh replay` on a trace written by web.TraceWriter
// and reads the trace back from the dashboard.
func TestReplayServes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := web.NewTraceWriter(f, web.TraceHeader{Nodes: 2, Links: [][2]int{{0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	tw.Write(web.TraceEvent{AtMS: 0, Kind: web.TracePublished, Node: 0, From: -1, Msg: "m"})
	tw.Write(web.TraceEvent{AtMS: 1, Kind: web.TraceDelivered, Node: 1, From: 0, Hop: 1, Msg: "m"})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runReplay(ctx, []string{"--addr", "127.0.0.1:0", path}, pw, io.Discard)
		pw.Close()
	}()
	var url string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "dashboard "); ok {
			url = strings.Fields(u)[0]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatal("replay printed no dashboard URL")
	}
	resp, err := http.Get(strings.TrimSuffix(url, "/replay") + "/api/trace")
	if err != nil {
		t.Fatal(err)
	}
	var tr web.Trace
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || tr.Nodes != 2 || len(tr.Events) != 2 {
		t.Errorf("GET /api/trace: %+v, %v", tr, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("replay: %v", err)
	}
}
