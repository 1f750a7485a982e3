package cluster_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/netns"
)

// requireNetns skips a test where network namespaces cannot be made (not
// root, no iproute2, a container without the capability), and fails it
// under CI=true, where .ci/run installs what is missing: CI must run it.
func requireNetns(t *testing.T) {
	t.Helper()
	if err := netns.Usable(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the network namespace test: %v", err)
		}
		t.Skipf("skipping: cannot make network namespaces here (%v); run as root with iproute2 installed", err)
	}
}

// held returns the ids of the messages node i holds.
func held(ctx context.Context, t *testing.T, c *cluster.Cluster, i int) map[string]bool {
	t.Helper()
	rs, err := c.Client(i).Recent(ctx, 10_000)
	if err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	return ids
}

// waitHeld waits until node i holds every id in want, for at most wait,
// and returns what it holds then.
func waitHeld(ctx context.Context, t *testing.T, c *cluster.Cluster, i int, want map[string]bool, wait time.Duration) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := held(ctx, t, c, i)
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndToEndNetnsPartition runs ten real `mesh node` processes, each in
// a network namespace of its own, joined by veth pairs to two bridges (the
// halves 0-4 and 5-9) whose trunks meet at a core bridge. Every node gets
// every message over the real network stacks; taking half 5-9's trunk
// down splits the mesh for real, and each half then holds exactly its
// own messages; bringing the trunk up heals it, and every node ends up
// with every message. Whatever happens, the namespaces and links go.
func TestEndToEndNetnsPartition(t *testing.T) {
	t.Parallel()
	requireNetns(t)
	bin := buildMesh(t)
	const nodes = 10
	const splitFor = 10 * time.Second
	cfg := cluster.DefaultConfig()
	cfg.Binary, cfg.Nodes, cfg.Seed = bin, nodes, halvesConnectedSeed(t, nodes, cfg.Peers)
	cfg.Netns = true
	// Anti-entropy repairs whatever the split kept from a half.
	cfg.AntiEntropy = time.Second
	cfg.LogDir = t.TempDir()
	cfg.StartTimeout = time.Minute // a loaded CI machine is slow, not broken
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	ctx := context.Background()
	startErr := c.Start(ctx)
	n := c.Netns()
	var prefix string
	var links []string
	if n != nil {
		prefix = strings.TrimSuffix(n.Hub(), "hub")
		for s := range n.Segments() {
			links = append(links, n.RootLink(s))
		}
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if prefix == "" {
			return
		}
		// Nothing of this run may be left: no namespace, no root link.
		ip, _ := netns.FindIP()
		out, err := exec.Command(ip, "netns", "list").CombinedOutput()
		if err != nil {
			t.Errorf("ip netns list: %v %s", err, out)
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			if strings.HasPrefix(line, prefix) {
				t.Errorf("namespace %q left after Stop", line)
			}
		}
		out, err = exec.Command(ip, "-o", "link").CombinedOutput()
		if err != nil {
			t.Errorf("ip link: %v %s", err, out)
		}
		for _, l := range links {
			if strings.Contains(string(out), " "+l+":") || strings.Contains(string(out), " "+l+"@") {
				t.Errorf("root link %s left after Stop", l)
			}
		}
	})
	if startErr != nil {
		t.Fatal(startErr)
	}
	t.Logf("10 namespaces and nodes up in %v, subnet %v, hub %s", time.Since(began).Round(time.Millisecond), n.Subnet(), n.Hub())

	// Each node runs in its namespace, on its own address.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for i, ni := range c.Nodes() {
		if want := n.Addr(i).String() + ":"; !strings.HasPrefix(ni.GossipAddr, want) || !strings.Contains(ni.HTTPURL, want) {
			t.Errorf("node %d listens on %s and %s, want %s", i, ni.GossipAddr, ni.HTTPURL, want)
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ni.PID)); err != nil || ns == self {
			t.Errorf("node %d (pid %d) in network namespace %q (%v), the test's own is %q", i, ni.PID, ns, err, self)
		}
	}

	// Whole: every node gets every message.
	m := c.Mesh()
	all := map[string]bool{}
	for k := range 10 {
		r, err := m.Propagate(ctx, k%nodes, fmt.Sprintf("netns whole %d", k), cluster.PropagateOptions{Wait: 30 * time.Second})
		if err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		if !r.Complete() {
			t.Fatalf("message %d from node %d: reached %d/%d, missing %v", k, k%nodes, r.Reached, r.Nodes, r.Missing)
		}
		all[r.ID] = true
	}

	// Split: half 5-9's trunk goes down; both halves publish.
	side := func(i int) int { return n.Segment(i) }
	if side(4) != 0 || side(5) != 1 {
		t.Fatalf("halves: node 4 in %d, node 5 in %d", side(4), side(5))
	}
	if err := n.SetSegment(ctx, 1, false); err != nil {
		t.Fatal(err)
	}
	splitAt := time.Now()
	own := [2]map[string]bool{maps.Clone(all), maps.Clone(all)}
	var published []string
	for k := range 10 {
		pub := (k * 3) % nodes // 0 3 6 9 2 5 8 1 4 7: both halves
		res, err := c.Client(pub).Publish(ctx, fmt.Sprintf("netns split %d from %d", k, pub))
		if err != nil {
			t.Fatalf("publish on node %d during the split: %v", pub, err)
		}
		own[side(pub)][res.ID] = true
		published = append(published, res.ID)
	}
	for i := range nodes {
		waitHeld(ctx, t, c, i, own[side(i)], time.Minute)
	}
	// The split lasts 10 s, as in the figures: long enough for TCP to back
	// off its retransmissions across the cut, and for anything that could
	// leak across it to have done so. Then each half holds exactly its own.
	time.Sleep(time.Until(splitAt.Add(splitFor)))
	for i := range nodes {
		got := held(ctx, t, c, i)
		if !maps.Equal(got, own[side(i)]) {
			t.Errorf("split: node %d (half %d) holds %d messages, want exactly its half's %d: extra or missing %v",
				i, side(i), len(got), len(own[side(i)]), symDiff(got, own[side(i)]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("split for %v; links each node reports: %v", time.Since(splitAt).Round(time.Millisecond), linkCounts(ctx, c))

	// Heal: the trunk comes back; every node ends up with every message.
	if err := n.SetSegment(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	healAt := time.Now()
	for _, id := range published {
		all[id] = true
	}
	var last time.Duration
	for i := range nodes {
		got := waitHeld(ctx, t, c, i, all, 2*time.Minute)
		if !maps.Equal(got, all) {
			t.Errorf("healed: node %d holds %d messages, want all %d: extra or missing %v", i, len(got), len(all), symDiff(got, all))
		}
		last = time.Since(healAt)
	}
	t.Logf("every node held all %d messages %v after the heal; links each node reports: %v; messages repaired by anti-entropy: %d",
		len(all), last.Round(time.Millisecond), linkCounts(ctx, c), repairsReceived(t, c))

	// And the healed mesh carries new messages to every node.
	r, err := m.Propagate(ctx, 7, "netns healed", cluster.PropagateOptions{Wait: time.Minute})
	if err != nil || !r.Complete() {
		t.Fatalf("after the heal: reached %d/%d (missing %v), err %v", r.Reached, r.Nodes, r.Missing, err)
	}
	t.Logf("split/heal test body took %v", time.Since(began).Round(time.Millisecond))
}

// halvesConnectedSeed returns the first seed whose topology joins each
// half (0-4 and 5-9 of 10) by its own links. Nodes learn no peers beyond
// those the launcher chose, so a half whose own links do not join it
// could not hold all of its own messages during a split, whatever the
// network did.
func halvesConnectedSeed(t *testing.T, nodes, peers int) uint64 {
	t.Helper()
	for seed := uint64(1); seed < 1000; seed++ {
		topo := cluster.NewTopology(nodes, peers, seed)
		ok := true
		for _, half := range [][2]int{{0, nodes / 2}, {nodes / 2, nodes}} {
			var links [][2]int
			for _, l := range topo.Links() {
				if l[0] >= half[0] && l[0] < half[1] && l[1] >= half[0] && l[1] < half[1] {
					links = append(links, [2]int{l[0] - half[0], l[1] - half[0]})
				}
			}
			ok = ok && cluster.NewGraph(half[1]-half[0], links).Connected()
		}
		if ok {
			return seed
		}
	}
	t.Fatal("no seed below 1000 joins both halves")
	return 0
}

// linkCounts lists how many links each node reports (-1: no answer).
func linkCounts(ctx context.Context, c *cluster.Cluster) []int {
	var out []int
	for i := range c.Nodes() {
		ps, err := c.Client(i).Peers(ctx)
		if err != nil {
			out = append(out, -1)
			continue
		}
		out = append(out, len(ps))
	}
	return out
}

// repairsReceived sums the messages that anti-entropy delivered over
// every node, from /metrics (-1 where it cannot be read).
func repairsReceived(t *testing.T, c *cluster.Cluster) int {
	t.Helper()
	sum := 0
	for _, ni := range c.Nodes() {
		resp, err := http.Get(ni.HTTPURL + "/metrics")
		if err != nil {
			return -1
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return -1
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, `antientropy_repairs_total{direction="received"}`) {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += int(v)
			}
		}
	}
	return sum
}

// symDiff lists the ids in exactly one of a and b.
func symDiff(a, b map[string]bool) []string {
	var d []string
	for id := range a {
		if !b[id] {
			d = append(d, "+"+id[:8])
		}
	}
	for id := range b {
		if !a[id] {
			d = append(d, "-"+id[:8])
		}
	}
	slices.Sort(d)
	return d
}
