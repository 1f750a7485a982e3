// Package deploy holds no code: only the Prometheus and Grafana files for
// running a mesh under monitoring, and these tests, which check them
// against a real node.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// promtool returns promtool's path, or skips the test when it is missing;
// under CI=true a missing promtool fails instead (.ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but promtool is not on PATH: .ci/run must install it (apt-get install -y prometheus)")
		}
		t.Skip("promtool not on PATH; install it with `apt-get install -y prometheus` (Debian) to run this check")
	}
	return p
}

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(promtool(t), "check", "config", "prometheus.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config prometheus.yml: %v\n%s", err, out)
	}
}

// grafanaExprs returns every PromQL expression of the Grafana dashboard.
func grafanaExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "gossipmesh.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/gossipmesh.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %+v needs a title and a query", p)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	// The dashboard must cover what the issue asks for.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"gossipmesh_messages_delivered_total", "gossipmesh_messages_duplicate_total",
		"gossipmesh_delivery_hops_bucket", "gossipmesh_delivery_latency_seconds_bucket", "gossipmesh_peers"} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
	return exprs
}

// TestMetricsOfARealNode starts a small real mesh, gossips a few messages,
// then checks each node's /metrics with `promtool check metrics` and that
// every metric the Grafana dashboard queries exists.
func TestMetricsOfARealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real node processes")
	}
	exprs := grafanaExprs(t)
	bin := filepath.Join(t.TempDir(), "mesh")
	if out, err := exec.Command("go", "build", "-o", bin, "gossipmesh/cmd/mesh").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Peers, cfg.LogLevel = bin, 3, 1, "warn"
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for k := range 5 {
		if _, err := c.Mesh().Propagate(ctx, k%3, "metrics", cluster.PropagateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	families := map[string]bool{}
	for i, n := range c.Nodes() {
		resp, err := http.Get(n.HTTPURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("node %d: GET /metrics: %d %v", i, resp.StatusCode, err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
				families[strings.Fields(name)[0]] = true
			}
		}
		if path, err := exec.LookPath("promtool"); err == nil {
			cmd := exec.Command(path, "check", "metrics")
			cmd.Stdin = bytes.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("node %d: promtool check metrics: %v\n%s", i, err, out)
			}
		} else if i == 0 {
			promtool(t) // skips (or fails under CI) after the checks that need no promtool
		}
	}
	names := regexp.MustCompile(`gossipmesh_[a-z_]+`)
	for _, e := range exprs {
		for _, m := range names.FindAllString(e, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suf); ok && families[b] {
					base = b
				}
			}
			if !families[base] {
				t.Errorf("the Grafana dashboard queries %s, which no node exports (exported: %v)", m, slices.Sorted(maps.Keys(families)))
			}
		}
	}
}
