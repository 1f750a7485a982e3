package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gossipmesh/adversary"
	"gossipmesh/api"
	"gossipmesh/node"
	"gossipmesh/transport/memnet"
)

// line3 is 0 – 1 – 2: node 1 is the only way between the ends.
var line3 = [][]int{nil, {0}, {1}}

// mustModes parses s or fails the test.
func mustModes(t *testing.T, s string) adversary.Modes {
	t.Helper()
	ms, err := adversary.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestAdversaryBlackholeThenHonest: node 1 of a line, started with
// Config.Adversary blackhole, receives node 0's message and forwards
// nothing; SetAdversary("") turns it honest at run time, and the next
// message crosses. Links are FIFO and node 1 held the first message
// before the second was published, so the first's absence at node 2 when
// the second arrives shows it was never forwarded.
func TestAdversaryBlackholeThenHonest(t *testing.T) {
	t.Parallel()
	m := startMesh(t, line3, func(i int, c *node.Config) {
		if i == 1 {
			c.Adversary = mustModes(t, "blackhole")
		}
	})
	m.waitLinked()
	ctx := context.Background()
	a, err := m.nodes[1].Adversary(ctx)
	if err != nil || a.Mode != "blackhole" {
		t.Fatalf("node 1 runs %+v, %v: want blackhole", a, err)
	}
	first, err := m.nodes[0].Publish(ctx, []byte("into the hole"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.nodes[1].Receipt(ctx, first.ID, settle); !ok {
		t.Fatal("the blackhole never received the message")
	}
	eventually(t, "the blackhole to count what it dropped", func() bool {
		a, _ := m.nodes[1].Adversary(ctx)
		return a.Stats.Dropped > 0
	})
	a, err = m.nodes[1].SetAdversary(ctx, "")
	if err != nil || !a.Honest() || a.Stats.Dropped == 0 {
		t.Fatalf("turning node 1 honest: %+v, %v: want honest, its counts kept", a, err)
	}
	second, err := m.nodes[0].Publish(ctx, []byte("across"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.nodes[2].Receipt(ctx, second.ID, settle); !ok {
		t.Fatal("node 1, honest again, did not forward the second message")
	}
	if _, ok := m.nodes[2].Receipt(ctx, first.ID, 0); ok {
		t.Fatal("node 2 has the first message: the blackhole forwarded it")
	}
}

// TestAdversarySetAtRunTime: an honest node turned blackhole by
// SetAdversary stops forwarding from the next message on.
func TestAdversarySetAtRunTime(t *testing.T) {
	t.Parallel()
	m := startMesh(t, line3, nil)
	m.waitLinked()
	ctx := context.Background()
	before, _ := m.nodes[0].Publish(ctx, []byte("while honest"))
	if _, ok := m.nodes[2].Receipt(ctx, before.ID, settle); !ok {
		t.Fatal("an honest line did not carry the message")
	}
	if a, err := m.nodes[1].SetAdversary(ctx, "blackhole"); err != nil || a.Mode != "blackhole" {
		t.Fatalf("SetAdversary(blackhole): %+v, %v", a, err)
	}
	into, _ := m.nodes[0].Publish(ctx, []byte("into the hole"))
	if _, ok := m.nodes[1].Receipt(ctx, into.ID, settle); !ok {
		t.Fatal("node 1 never received the message")
	}
	// Node 1 turns honest and node 0 publishes again: FIFO links order
	// the checks.
	if _, err := m.nodes[1].SetAdversary(ctx, ""); err != nil {
		t.Fatal(err)
	}
	after, _ := m.nodes[0].Publish(ctx, []byte("honest again"))
	if _, ok := m.nodes[2].Receipt(ctx, after.ID, settle); !ok {
		t.Fatal("node 1, honest again, did not forward")
	}
	if _, ok := m.nodes[2].Receipt(ctx, into.ID, 0); ok {
		t.Fatal("node 2 has the message node 1 got while a blackhole")
	}
}

// TestAdversaryBadModeRefused: a mode that does not parse is refused
// with api.ErrBadMode and the parser's reason, and changes nothing.
func TestAdversaryBadModeRefused(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil}, func(_ int, c *node.Config) { c.Adversary = mustModes(t, "tamper") })
	ctx := context.Background()
	for _, bad := range []string{"wormhole", "spam=fast", "censor", "delay=-1s", "blackhole,blackhole"} {
		_, err := m.nodes[0].SetAdversary(ctx, bad)
		if !errors.Is(err, api.ErrBadMode) || !strings.Contains(err.Error(), "adversary:") {
			t.Errorf("SetAdversary(%q): %v, want ErrBadMode with the parser's reason", bad, err)
		}
	}
	if a, _ := m.nodes[0].Adversary(ctx); a.Mode != "tamper" {
		t.Errorf("after refused modes the node runs %q, want tamper", a.Mode)
	}
}

// TestAdversarySpamStartsWhenIdle: spam put in force at run time on an
// idle pair starts at once (the rate modes start at the node's next
// input, so the node ticks them when the mode changes) and its messages
// reach the peer; the metrics show the mode and the count.
func TestAdversarySpamStartsWhenIdle(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, nil)
	m.waitLinked()
	ctx := context.Background()
	if _, err := m.nodes[1].SetAdversary(ctx, "spam=200"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "spam to reach the peer", func() bool { return len(m.nodes[0].Recent(10)) >= 5 })
	a, _ := m.nodes[1].Adversary(ctx)
	if a.Stats.Spammed < 5 {
		t.Errorf("the spammer counts %d spammed, want at least 5", a.Stats.Spammed)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(m.nodes[1].Registry(), promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gossipmesh_adversary{mode="spam=200"} 1`, `gossipmesh_adversary_actions_total{kind="spammed"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// BenchmarkAdversarySpamRate runs a spam=20000 node beside one honest
// peer on memnet for b.N × 100 ms and reports the rate the spammer's loop
// achieved (spammed/s, as the adversary counts it): whether the loop ticks
// at NextTick often enough for the rate asked. It reports, and asserts
// nothing about speed.
func BenchmarkAdversarySpamRate(b *testing.B) {
	nw := memnet.New()
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []*node.Node
	for i := range 2 {
		cfg := node.DefaultConfig()
		cfg.Key, cfg.Seed = node.KeyForTest(i+1), uint64(i+1)
		cfg.Transport, cfg.Listen = nw.Host(host(i)), addr(i)
		if i == 1 {
			cfg.Candidates, cfg.Peers = []string{addr(0)}, 1
			cfg.Adversary, _ = adversary.Parse("spam=20000")
		}
		n, err := node.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		go n.Run(ctx)
	}
	defer func() {
		cancel()
		for _, n := range nodes {
			<-n.Done()
		}
	}()
	for len(nodes[0].Peers()) == 0 {
		time.Sleep(time.Millisecond)
	}
	a0, _ := nodes[1].Adversary(ctx)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(100 * time.Millisecond)
	}
	el := time.Since(start).Seconds()
	a1, _ := nodes[1].Adversary(ctx)
	b.ReportMetric(float64(a1.Stats.Spammed-a0.Stats.Spammed)/el, "spammed/s")
}

// TestAdversaryEclipseKeepsDialing: a target whose one inbound slot an
// honest node holds refuses an eclipse sybil over and over, and the sybil
// keeps dialing at BackoffMin: with BackoffMax at ten minutes, an honest
// dialer refused this often would be waiting most of an hour. When the
// slot frees, the sybil takes it.
func TestAdversaryEclipseKeepsDialing(t *testing.T) {
	t.Parallel()
	nw := memnet.New()
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []*node.Node
	t.Cleanup(func() {
		cancel()
		for _, n := range nodes {
			<-n.Done()
		}
	})
	start := func(i int, tweak func(c *node.Config)) (*node.Node, context.CancelFunc) {
		cfg := node.DefaultConfig()
		cfg.Key, cfg.Seed = node.KeyForTest(i+1), uint64(i+1)
		cfg.Transport, cfg.Listen = nw.Host(host(i)), addr(i)
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 10*time.Minute
		tweak(&cfg)
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nctx, stop := context.WithCancel(ctx)
		nodes = append(nodes, n)
		go n.Run(nctx)
		return n, stop
	}
	target, _ := start(0, func(c *node.Config) { c.MaxPeers, c.Peers = 1, 0 }) // one inbound slot
	_, stopHonest := start(1, func(c *node.Config) { c.Candidates, c.Peers = []string{addr(0)}, 1 })
	eventually(t, "the honest node to take the target's slot", func() bool { return len(target.Peers()) == 1 })
	sybil, _ := start(2, func(c *node.Config) {
		c.Candidates, c.Peers = []string{addr(0)}, 1
		c.Adversary = mustModes(t, "eclipse="+target.ID().String())
	})
	eventually(t, "the target to refuse the sybil 40 times", func() bool {
		return labelled(t, target, "gossipmesh_rejected_total", "reason", "peer_cap") >= 40
	})
	stopHonest()
	eventually(t, "the sybil to take the freed slot", func() bool {
		ps := target.Peers()
		return len(ps) == 1 && ps[0].ID == sybil.ID().String()
	})
}
