package cluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// TestEndToEndImpersonation starts a mesh of real processes and, from raw
// TCP clients, keeps claiming the id of every peer of one node, for the
// whole test. A node's id derives from its key, so a claim names the
// peer's public key, and there are two kinds of claimant. A forger signs
// with a key of its own: its proof fails, and the node refuses it as
// bad_proof. A holder of the peer's key (read from the launcher's key
// file: a stolen key, or a second process of the same node) completes the
// handshake, half of them with the peer's own listen address too, and is
// held in standby, then closed. Either way the node must keep its real
// links: its /peers lists the real addresses, and messages it publishes,
// and messages published elsewhere, reach every node.
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

	// handshakes counts the key holders' claims that completed the
	// handshake; forged counts the forgers' claims that the node hung up
	// on after its hello.
	var handshakes, forged atomic.Int64
	claiming, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	forger, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, j := range neighbours[target] {
		stolen, err := identity.Load(c.KeyPath(j))
		if err != nil || stolen.ID() != c.Topology().IDs[j] {
			t.Fatalf("node %d's key file: %v, id %v", j, err, stolen)
		}
		claimAddr := "127.0.0.1:1"
		if k%2 == 1 {
			claimAddr = nodes[j].GossipAddr
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if n%2 == 0 {
					if claimOnce(claiming, nodes[target].GossipAddr, stolen, claimAddr) {
						handshakes.Add(1)
					}
				} else if forgeOnce(claiming, nodes[target].GossipAddr, stolen.PublicArray(), forger, claimAddr) {
					forged.Add(1)
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
	for handshakes.Load() < int64(3*len(neighbours[target])) || forged.Load() < int64(3*len(neighbours[target])) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d claims completed the handshake and %d forgeries were refused in a minute", handshakes.Load(), forged.Load())
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
	// The forgers are still at it: take their count first, since every
	// forgery it holds was counted by the node before it hung up, and
	// more may finish while /metrics is read.
	refused := forged.Load()
	if got := metricValue(t, nodes[target].HTTPURL, `gossipmesh_rejected_total{reason="bad_proof"}`); got < float64(refused) {
		t.Errorf("rejected_total{reason=\"bad_proof\"} = %v, want at least the %d forgeries refused", got, refused)
	}
	t.Logf("%d claims with the key completed the handshake, %d forged claims were refused; none took a link", handshakes.Load(), forged.Load())
}

// metricValue reads one sample from a node's /metrics.
func metricValue(t *testing.T, httpURL, series string) float64 {
	t.Helper()
	resp, err := http.Get(httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// claimOnce connects to addr and completes the handshake as the holder of
// key, announcing claimAddr, then reads until the node hangs up or ctx
// ends. It reports whether the handshake completed.
func claimOnce(ctx context.Context, addr string, key *identity.Key, claimAddr string) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	unhook := context.AfterFunc(ctx, func() { conn.Close() })
	defer unhook()
	hs, err := node.Handshake(conn, key, claimAddr)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, hs.Reader)
	return true
}

// forgeOnce connects to addr with a hello that names pub, a key it does
// not hold, and answers the node's nonce with forger's signature. It
// reports whether the node's hello arrived and the node then hung up.
func forgeOnce(ctx context.Context, addr string, pub [wire.PublicKeySize]byte, forger *identity.Key, claimAddr string) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	unhook := context.AfterFunc(ctx, func() { conn.Close() })
	defer unhook()
	nonce, err := identity.NewNonce(nil)
	if err != nil {
		return false
	}
	hello, err := wire.AppendHello(nil, wire.Hello{PublicKey: pub, Nonce: nonce, ListenAddr: claimAddr})
	if err != nil {
		return false
	}
	if _, err := conn.Write(hello); err != nil {
		return false
	}
	br := bufio.NewReader(conn)
	f, err := wire.NewReader(br, wire.MaxHelloFrame).ReadFrame()
	if err != nil || f.Type != wire.FrameHello {
		return false
	}
	nh, err := wire.DecodeHello(f.Payload)
	if err != nil {
		return false
	}
	if _, err := conn.Write(wire.AppendProof(nil, forger.ProveHandshake(nh.Nonce, nh.PublicKey))); err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, br)
	return err == nil || !errors.Is(err, net.ErrClosed) // EOF or reset: the node hung up
}
