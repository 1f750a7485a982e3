package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"

	"gossipmesh/node"
	"gossipmesh/transport/tcp"
)

// BenchmarkMeshTCP measures sustained delivery throughput of a small mesh
// over loopback TCP, all nodes in this process: node 0 publishes b.N
// messages while keeping at most a window of them in flight, and every
// other node must deliver every one. It reports deliveries/s (message,
// receiving node pairs) and any frames dropped on full send queues.
//
//	go test -run '^$' -bench MeshTCP -benchtime 20000x ./node/
func BenchmarkMeshTCP(b *testing.B) {
	for _, nodes := range []int{5, 10} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) { benchMesh(b, nodes) })
	}
}

func benchMesh(b *testing.B, nodes int) {
	const (
		window = 1024 // messages in flight
		check  = 64   // check every node's progress once per this many
	)
	ns, ctx := startTCPMesh(b, nodes)
	body := make([]byte, 64)
	ids := make([]string, 0, b.N)
	waitAll := func(id string) {
		for i := 1; i < nodes; i++ {
			if _, ok := ns[i].Receipt(ctx, id, settle); !ok {
				b.Fatalf("node %d never got %s", i, id)
			}
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if i >= window && i%check == 0 {
			waitAll(ids[i-window])
		}
		rc, err := ns[0].Publish(ctx, body)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	for _, id := range ids[max(0, len(ids)-window):] {
		waitAll(id)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var dropped uint64
	for _, n := range ns {
		for _, p := range n.Peers() {
			dropped += p.Dropped
		}
	}
	b.ReportMetric(float64(b.N*(nodes-1))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(dropped), "dropped")
}

// startTCPMesh starts nodes on loopback TCP on a random connected topology
// (each dials one earlier node and two random ones) and waits until every
// node is linked. The mesh stops when the benchmark ends.
func startTCPMesh(b *testing.B, nodes int) ([]*node.Node, context.Context) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	ctx, cancel := context.WithCancel(context.Background())
	dials := randomConnected(nodes, 2, rng)
	lns := make([]net.Listener, nodes)
	for i := range lns {
		ln, err := (tcp.Transport{}).Listen("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns[i] = ln
	}
	var ns []*node.Node
	for i := range nodes {
		cfg := node.DefaultConfig()
		cfg.Key = node.KeyForTest(i + 1)
		cfg.Seed = uint64(i + 1)
		cfg.Listener = lns[i]
		cfg.Peers = len(dials[i])
		for _, j := range dials[i] {
			cfg.Candidates = append(cfg.Candidates, lns[j].Addr().String())
		}
		cfg.Logger = slog.New(slog.DiscardHandler)
		// One publisher at full speed is what these benchmarks measure:
		// the per-origin budget would cap it (and refuse its publishes).
		cfg.Gossip.OriginRate = 0
		n, err := node.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ns = append(ns, n)
		go n.Run(ctx)
	}
	b.Cleanup(func() {
		cancel()
		for _, n := range ns {
			<-n.Done()
		}
	})
	adj := adjacency(dials)
	deadline := time.Now().Add(settle)
	for i := range nodes {
		for len(ns[i].Peers()) != len(adj[i]) {
			if time.Now().After(deadline) {
				b.Fatalf("node %d never linked", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return ns, ctx
}

// BenchmarkMeshLatency publishes one message at a time on an idle mesh
// over loopback TCP, from a rotating publisher, and reports the time from
// publish to the last node's first receipt (both on this process's clock):
// p50 and p99 in microseconds.
//
//	go test -run '^$' -bench MeshLatency -benchtime 300x ./node/
func BenchmarkMeshLatency(b *testing.B) {
	ns, ctx := startTCPMesh(b, 10)
	body := make([]byte, 64)
	lats := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc, err := ns[i%len(ns)].Publish(ctx, body)
		if err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for j, n := range ns {
			r, ok := n.Receipt(ctx, rc.ID, settle)
			if !ok {
				b.Fatalf("node %d never got %s", j, rc.ID)
			}
			if r.ReceivedAt.After(last) {
				last = r.ReceivedAt
			}
		}
		lats = append(lats, last.Sub(rc.PublishedAt))
		// Let the mesh go idle, as between the bench's sequential messages.
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
}
