package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/wire"
)

// TestEndToEndImpersonation starts a mesh of real processes and, from raw
// TCP clients, keeps claiming the id of every peer of one node: each client
// completes the handshake with a peer's id (half of them with that peer's
// own listen address too), is hung up on, and claims again, for the whole
// test. The node must keep its real links: its /peers lists the real
// addresses, and messages it publishes, and messages published elsewhere,
// reach every node.
func TestEndToEndImpersonation(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	const seed = 7
	c := startCluster(t, bin, 8, seed)
	ctx := context.Background()

	// The target is the node with the most links.
	g := c.Topology().Graph()
	nodes := c.Nodes()
	neighbours := make([][]int, len(nodes))
	for _, l := range g.Links() {
		neighbours[l[0]] = append(neighbours[l[0]], l[1])
		neighbours[l[1]] = append(neighbours[l[1]], l[0])
	}
	target := 0
	for i := range neighbours {
		if len(neighbours[i]) > len(neighbours[target]) {
			target = i
		}
	}
	t.Logf("seed %d: claiming the ids of node %d's %d peers %v", seed, target, len(neighbours[target]), neighbours[target])

	// handshakes counts the claims that got as far as the node's hello.
	var handshakes atomic.Int64
	claiming, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for k, j := range neighbours[target] {
		claim := wire.Hello{ID: c.Topology().IDs[j], ListenAddr: "127.0.0.1:1"}
		if k%2 == 1 {
			claim.ListenAddr = nodes[j].GossipAddr
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if claimOnce(claiming, nodes[target].GossipAddr, claim) {
					handshakes.Add(1)
				}
				select {
				case <-claiming.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	checkPeers := func(when string) {
		t.Helper()
		peers, err := c.Client(target).Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := make(map[string]string)
		for _, p := range peers {
			byID[p.ID] = p.Addr
		}
		for _, j := range neighbours[target] {
			id := c.Topology().IDs[j].String()
			if byID[id] != nodes[j].GossipAddr {
				t.Errorf("%s: node %d's link to node %d (%s) is at %q, want %q", when, target, j, id, byID[id], nodes[j].GossipAddr)
			}
		}
		if len(peers) != len(neighbours[target]) {
			t.Errorf("%s: node %d has %d links, want %d: %+v", when, target, len(peers), len(neighbours[target]), peers)
		}
	}
	// Let every impostor make a few claims before checking.
	deadline := time.Now().Add(time.Minute)
	for handshakes.Load() < int64(3*len(neighbours[target])) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d claims reached the handshake in a minute", handshakes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	m := c.Mesh()
	for round := range 5 {
		checkPeers(fmt.Sprintf("round %d", round))
		// The target publishes, then a peer of it, then a node that is
		// not its peer (if any): every node must get each message.
		publishers := []int{target, neighbours[target][round%len(neighbours[target])]}
		for i := range nodes {
			if i != target && !slices.Contains(neighbours[target], i) {
				publishers = append(publishers, i)
				break
			}
		}
		for _, pub := range publishers {
			r, err := m.Propagate(ctx, pub, fmt.Sprintf("round %d from node %d", round, pub), cluster.PropagateOptions{Wait: 30 * time.Second})
			if err != nil {
				t.Fatalf("round %d, node %d publishing: %v", round, pub, err)
			}
			if !r.Complete() {
				t.Errorf("round %d: node %d's message reached %d/%d, missing %v", round, pub, r.Reached, r.Nodes, r.Missing)
			}
		}
	}
	checkPeers("at the end")
	t.Logf("%d claims reached the handshake; none took a link", handshakes.Load())
}

// claimOnce connects to addr, sends claim as its hello, and reads until the
// node hangs up or ctx ends. It reports whether the node's own hello
// arrived, i.e. the claim reached the handshake.
func claimOnce(ctx context.Context, addr string, claim wire.Hello) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	unhook := context.AfterFunc(ctx, func() { conn.Close() })
	defer unhook()
	hello, err := wire.AppendHello(nil, claim)
	if err != nil {
		return false
	}
	if _, err := conn.Write(hello); err != nil {
		return false
	}
	br := bufio.NewReader(conn)
	f, err := wire.NewReader(br, 1<<10).ReadFrame()
	got := err == nil && f.Type == wire.FrameHello
	io.Copy(io.Discard, br)
	return got
}
