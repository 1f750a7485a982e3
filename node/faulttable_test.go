package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"gossipmesh/fault"
	"gossipmesh/node"
	"gossipmesh/transport"
)

// The rows of the README's fault table that have no in-memory test of
// their own elsewhere, at 120 nodes over memnet: 20% loss on every link,
// a pause of 10% of the nodes, and a restart after time down. (The kill
// and crash rows are TestMembershipSurvivesKillingThirtyPercent, the split
// row TestFaultPlanSplitHealAntiEntropy and TestFaultSplitHalvesInMemory,
// the hung row TestMembershipEvictsASilentPeer/nodes=120.) They assert
// delivery, never speed: the times are `mesh chaos scenario`'s.

const tableNodes = 120

// publishAll publishes count messages at nodes drawn from pick and returns
// their ids.
func publishAll(t *testing.T, m *testMesh, count int, pick func() int) []string {
	t.Helper()
	ids := make([]string, 0, count)
	for k := range count {
		i := pick()
		rc, err := m.nodes[i].Publish(context.Background(), []byte(fmt.Sprintf("%s %d at node %d", t.Name(), k, i)))
		if err != nil {
			t.Fatalf("publish %d at node %d: %v", k, i, err)
		}
		ids = append(ids, rc.ID)
	}
	return ids
}

// holdsAll waits until every node in idx holds every message of ids, and
// fails naming the first (node, message) pair still missing at settle.
func holdsAll(t *testing.T, what string, nodes []*node.Node, idx []int, ids []string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for _, i := range idx {
		for _, id := range ids {
			if _, ok := nodes[i].Receipt(context.Background(), id, time.Until(deadline)); !ok {
				t.Fatalf("%s: node %d never got message %s\n%s", what, i, id, lossReport(t, nodes[i]))
			}
		}
	}
}

// TestFaultTableLossInMemory: 20% of the frames on every link are
// dropped, on every node, from the start; 100 messages published at
// random nodes reach every node, the lost copies repaired by anti-entropy.
func TestFaultTableLossInMemory(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(20, 20))
	m := startMesh(t, randomConnected(tableNodes, 2, rng), func(i int, c *node.Config) {
		withAntiEntropy(c)
		c.Faults = fault.Plan{Rule: fault.Rule{Drop: 0.2}}
	})
	m.waitLinked()
	ids := publishAll(t, m, 100, func() int { return rng.IntN(tableNodes) })
	all := make([]int, tableNodes)
	for i := range all {
		all[i] = i
	}
	holdsAll(t, "20% loss on every link", m.nodes, all, ids)
	var lost float64
	for _, n := range m.nodes {
		lost += labelled(t, n, "gossipmesh_fault_dropped_total", "reason", "loss")
	}
	if lost == 0 {
		t.Fatal("the loss plan dropped no frame: the test proved nothing")
	}
	t.Logf("%v frames dropped by the plan; every node holds all %d messages", lost, len(ids))
}

// pauseGate stands in for SIGSTOP on memnet: while it is closed, every
// read, write, accept, dial and close on a node's connections waits, so
// the node's sockets stay open and silent, and what its peers send piles
// up in the connections' buffers, as in a stopped process.
type pauseGate struct {
	mu     sync.Mutex
	paused bool
	open   chan struct{} // closed while not paused
}

func newPauseGate() *pauseGate {
	g := &pauseGate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *pauseGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		g.paused, g.open = true, make(chan struct{})
	}
}

func (g *pauseGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.open)
	}
}

func (g *pauseGate) wait() {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	<-ch
}

// pausableTransport is a transport whose connections and listener pass
// through a pauseGate.
type pausableTransport struct {
	inner transport.Transport
	gate  *pauseGate
}

func (g pausableTransport) Listen(addr string) (net.Listener, error) {
	l, err := g.inner.Listen(addr)
	if err != nil {
		return nil, err
	}
	return pausableListener{l, g.gate}, nil
}

func (g pausableTransport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	g.gate.wait()
	c, err := g.inner.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return pausableConn{c, g.gate}, nil
}

type pausableListener struct {
	net.Listener
	gate *pauseGate
}

func (l pausableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.gate.wait()
	return pausableConn{c, l.gate}, nil
}

type pausableConn struct {
	net.Conn
	gate *pauseGate
}

func (c pausableConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.gate.wait() // what arrived while paused is handled on resume
	return n, err
}

func (c pausableConn) Write(p []byte) (int, error) {
	c.gate.wait()
	return c.Conn.Write(p)
}

func (c pausableConn) Close() error {
	c.gate.wait()
	return c.Conn.Close()
}

// TestFaultTablePauseInMemory: 10% of the nodes are paused (their
// connections open and silent) while the others publish; the others hold
// every message among themselves during the pause, and the paused nodes
// hold every message once they resume. The paused set is drawn so that
// the others stay connected without it, as the real row's membership
// keeps them.
func TestFaultTablePauseInMemory(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(10, 10))
	dials := randomConnected(tableNodes, 2, rng)
	adj := adjacency(dials)
	var paused map[int]bool
	for {
		paused = map[int]bool{}
		for _, i := range rng.Perm(tableNodes)[:tableNodes/10] {
			paused[i] = true
		}
		if othersConnected(adj, paused) {
			break
		}
	}
	gates := make([]*pauseGate, tableNodes)
	m := startMesh(t, dials, func(i int, c *node.Config) {
		withAntiEntropy(c)
		gates[i] = newPauseGate()
		c.Transport = pausableTransport{c.Transport, gates[i]}
	})
	m.waitLinked()
	// Resume before the mesh's own cleanup stops the nodes (cleanups run
	// last first), so that a failing test does not hang in a paused Close.
	t.Cleanup(func() {
		for _, g := range gates {
			g.resume()
		}
	})

	var others, stopped []int
	for i := range tableNodes {
		if paused[i] {
			stopped = append(stopped, i)
			gates[i].pause()
		} else {
			others = append(others, i)
		}
	}
	pausedAt := time.Now()
	ids := publishAll(t, m, 50, func() int { return others[rng.IntN(len(others))] })
	holdsAll(t, "during the pause, among the others", m.nodes, others, ids)
	// Stay paused for 2 s in all, long enough for the others' timers
	// (anti-entropy rounds, stall checks) to act on the silence.
	time.Sleep(time.Until(pausedAt.Add(2 * time.Second)))
	for _, i := range stopped {
		for _, id := range ids {
			if _, ok := m.nodes[i].Receipt(context.Background(), id, 0); ok {
				t.Fatalf("paused node %d holds message %s published after it was paused: the pause let it run", i, id)
			}
		}
	}
	for _, i := range stopped {
		gates[i].resume()
	}
	holdsAll(t, "after the resume", m.nodes, stopped, ids)
}

// othersConnected reports whether the nodes of adj outside skip form one
// connected graph.
func othersConnected(adj [][]int, skip map[int]bool) bool {
	rest := make([][]int, len(adj)) // adj without the skipped nodes' links
	start := -1
	for i, js := range adj {
		if skip[i] {
			continue
		}
		if start < 0 {
			start = i
		}
		for _, j := range js {
			if !skip[j] {
				rest[i] = append(rest[i], j)
			}
		}
	}
	for i, d := range bfs(rest, start) {
		if d < 0 && !skip[i] {
			return false
		}
	}
	return true
}

// TestFaultTableRestartInMemory: one node of 121 is stopped, the others
// publish while it is down, and the same node (same key, same address)
// started again holds every message it missed, through anti-entropy.
func TestFaultTableRestartInMemory(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 11))
	m := startMesh(t, randomConnected(tableNodes, 2, rng), func(i int, c *node.Config) { withAntiEntropy(c) })
	m.waitLinked()
	peers := rng.Perm(tableNodes)[:3]
	start := func() (*node.Node, context.CancelFunc) {
		cfg := memnetConfig(m.nw, tableNodes, peers)
		withAntiEntropy(&cfg)
		n, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go n.Run(ctx)
		eventually(t, "the restarting node to link", func() bool { return len(n.Peers()) > 0 })
		return n, func() { cancel(); <-n.Done() }
	}

	n, stop := start()
	before := publishAll(t, m, 10, func() int { return rng.IntN(tableNodes) })
	holdsAll(t, "before the stop", []*node.Node{n}, []int{0}, before)
	stop()
	down := publishAll(t, m, 50, func() int { return rng.IntN(tableNodes) })
	n, stop = start()
	defer stop()
	holdsAll(t, "after the restart", []*node.Node{n}, []int{0}, down)
}
