package main

import (
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gossipmesh/netns"
)

// --netns reaches the cluster config on every command that launches a
// mesh, and a mesh too large for one namespace subnet is a usage error.
func TestNetnsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--netns"}, true}, {[]string{"--netns=false"}, false}} {
		fs := newFlagSet("up", "up", io.Discard)
		var l launchFlags
		l.register(fs, 1, "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := l.config(io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.Netns != tc.want {
			t.Errorf("%v: cluster config Netns %v, want %v", tc.args, cfg.Netns, tc.want)
		}
	}
	fs := newFlagSet("up", "up", io.Discard)
	var l launchFlags
	l.register(fs, 1, "")
	if err := parseFlags(fs, []string{"--netns", "--nodes", "241"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.config(io.Discard); err == nil {
		t.Error("--netns --nodes 241 accepted: a namespace subnet holds 240 nodes")
	}
}

// `mesh up --netns` runs each node in its own namespace, prints how to cut
// the halves apart for real, and `mesh down` leaves no namespace behind.
func TestUpNetnsEndToEnd(t *testing.T) {
	skipShort(t)
	t.Parallel()
	if err := netns.Usable(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the network namespace test: %v", err)
		}
		t.Skipf("skipping: cannot make network namespaces here (%v); run as root with iproute2 installed", err)
	}
	ip, err := netns.FindIP()
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "cluster.json")
	s, out := startUp(t, state, "--netns", "--nodes", "4", "--peers", "3", "--dashboard", "off")
	bench := netip.MustParsePrefix("198.18.0.0/15")
	for _, m := range s.Members() {
		ap, err := netip.ParseAddrPort(m.GossipAddr)
		if err != nil || !bench.Contains(ap.Addr()) {
			t.Errorf("node %d gossips on %s, want an address in %v", m.Index, m.GossipAddr, bench)
		}
	}
	// The note up prints once the mesh is up names the hub and the trunk.
	var cut []string
	re := regexp.MustCompile(`(\S+) -n (gmesh-\d+-hub) link set (t1) down`)
	deadline := time.Now().Add(time.Minute)
	for cut == nil {
		if cut = re.FindStringSubmatch(out.String()); cut == nil {
			if time.Now().After(deadline) {
				t.Fatalf("mesh up printed no command to cut the halves:\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	hub := cut[2]
	if code, stdout, stderr := runMesh(t, "", "publish", "--state", state, "--wait", "30s", "whole"); code != 0 {
		t.Fatalf("publish on the whole mesh: exit %d\n%s%s", code, stdout, stderr)
	}
	if b, err := exec.Command(ip, "-n", hub, "link", "set", "t1", "down").CombinedOutput(); err != nil {
		t.Fatalf("the printed cut: %v %s", err, b)
	}
	code, stdout, _ := runMesh(t, "", "publish", "--state", state, "--node", "0", "--wait", "3s", "split")
	if code == 0 || !strings.Contains(stdout, "reached      2/4") {
		t.Errorf("publish on node 0 with nodes 2-3 cut off: exit %d, want 1 and 2/4 reached\n%s", code, stdout)
	}
	if b, err := exec.Command(ip, "-n", hub, "link", "set", "t1", "up").CombinedOutput(); err != nil {
		t.Fatalf("the printed heal: %v %s", err, b)
	}
	if code, stdout, stderr := runMesh(t, "", "down", "--state", state); code != 0 {
		t.Fatalf("mesh down: exit %d\n%s%s", code, stdout, stderr)
	}
	prefix := strings.TrimSuffix(hub, "hub")
	deadline = time.Now().Add(time.Minute)
	for {
		b, err := exec.Command(ip, "netns", "list").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), prefix) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespaces %s* left a minute after mesh down:\n%s", prefix, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
