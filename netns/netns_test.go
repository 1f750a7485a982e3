package netns_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gossipmesh/netns"
)

// newNet makes a Net for a test, or skips where namespaces cannot be made
// (not root, no ip, a container without the capability). Under CI=true it
// fails instead: CI must run these tests.
func newNet(t *testing.T, cfg netns.Config) *netns.Net {
	t.Helper()
	ctx := context.Background()
	if err := netns.Usable(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the namespace tests: %v", err)
		}
		t.Skipf("skipping: cannot make network namespaces here: %v", err)
	}
	n, err := netns.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// reach says whether a TCP connection from node from (-1: the root
// namespace) to l gets through and carries a byte.
func reach(t *testing.T, n *netns.Net, from int, l net.Listener) bool {
	t.Helper()
	var c net.Conn
	var err error
	if from < 0 {
		c, err = net.DialTimeout("tcp4", l.Addr().String(), time.Second)
	} else {
		c, err = n.Dial(from, l.Addr().String(), time.Second)
	}
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return err == nil && b[0] == 'x'
}

// serve accepts on l and writes one byte on every connection.
func serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("x"))
		c.Close()
	}
}

func TestNetSegmentsSplitAndHeal(t *testing.T) {
	cfg := netns.DefaultConfig()
	cfg.Nodes = 4
	n := newNet(t, cfg)
	if got := []int{n.Segment(0), n.Segment(1), n.Segment(2), n.Segment(3)}; got[0] != 0 || got[1] != 0 || got[2] != 1 || got[3] != 1 {
		t.Fatalf("segments of nodes 0-3: %v, want halves 0,0,1,1", got)
	}
	lns := make([]net.Listener, cfg.Nodes)
	for i := range lns {
		l, err := n.Listen(i, net.JoinHostPort(n.Addr(i).String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serve(l)
		lns[i] = l
	}
	ctx := context.Background()
	check := func(phase string, split bool) {
		t.Helper()
		for i := range lns {
			if !reach(t, n, -1, lns[i]) {
				t.Errorf("%s: the root namespace does not reach node %d", phase, i)
			}
			for j := range lns {
				want := !split || n.Segment(i) == n.Segment(j)
				if got := reach(t, n, i, lns[j]); got != want {
					t.Errorf("%s: node %d reaches node %d: %v, want %v", phase, i, j, got, want)
				}
			}
		}
	}
	check("whole", false)
	if err := n.SetSegment(ctx, 1, false); err != nil {
		t.Fatal(err)
	}
	check("split", true)
	if err := n.SetSegment(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	check("healed", false)
	if err := n.SetNode(ctx, 0, false); err != nil {
		t.Fatal(err)
	}
	if reach(t, n, -1, lns[0]) || reach(t, n, 1, lns[0]) {
		t.Error("node 0 reachable with its link down")
	}
	if !reach(t, n, 1, lns[2]) {
		t.Error("node 1 lost node 2 when node 0's link went down")
	}
}

// TestNetCloseRemovesEverything checks that Close leaves no namespace and
// no root link of the Net, and that a second Net in parallel gets other
// names and another subnet.
func TestNetCloseRemovesEverything(t *testing.T) {
	cfg := netns.DefaultConfig()
	cfg.Nodes = 3
	a := newNet(t, cfg)
	b := newNet(t, cfg)
	if a.Subnet() == b.Subnet() || a.Hub() == b.Hub() {
		t.Fatalf("two Nets share %v / %s", a.Subnet(), a.Hub())
	}
	hub := a.Hub()
	prefix := strings.TrimSuffix(hub, "hub")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	out, err := exec.Command(a.IP(), "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, prefix) {
			t.Errorf("namespace %q left after Close", line)
		}
	}
	if !strings.Contains(string(out), b.Hub()) {
		t.Errorf("Close of one Net removed the other's hub %s: %s", b.Hub(), out)
	}
	for s := range a.Segments() {
		if _, err := net.InterfaceByName(a.RootLink(s)); err == nil {
			t.Errorf("root link %s left after Close", a.RootLink(s))
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if p, err := netip.ParsePrefix(ad.String()); err == nil && a.Subnet().Contains(p.Addr()) {
			t.Errorf("address %v of the closed Net still in the root namespace", ad)
		}
	}
	routes, err := exec.Command(a.IP(), "-4", "route", "show").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(routes), a.Subnet().Addr().String()[:len(a.Subnet().Addr().String())-1]) {
		t.Errorf("routes into the closed Net's %v left:\n%s", a.Subnet(), routes)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		mod  func(*netns.Config)
		want string
	}{
		{func(c *netns.Config) { c.Nodes = 0 }, "nodes"},
		{func(c *netns.Config) { c.Nodes = netns.MaxNodes + 1 }, "nodes"},
		{func(c *netns.Config) { c.Segments = 0 }, "segments"},
		{func(c *netns.Config) { c.Nodes, c.Segments = 2, 3 }, "segments"},
		{func(c *netns.Config) { c.CommandTimeout = 0 }, "timeout"},
	} {
		cfg := netns.DefaultConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", cfg, err, c.want)
		}
	}
	if err := netns.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
