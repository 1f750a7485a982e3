package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"gossipmesh/node"
	"gossipmesh/transport/tcp"
	"gossipmesh/wire"
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
	rng := rand.New(rand.NewPCG(1, 1))
	ctx, cancel := context.WithCancel(context.Background())
	var ns []*node.Node
	dials := randomConnected(nodes, 2, rng)
	lns := make([]net.Listener, nodes)
	for i := range lns {
		ln, err := (tcp.Transport{}).Listen("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns[i] = ln
	}
	for i := range nodes {
		cfg := node.DefaultConfig()
		cfg.ID = wire.NodeID(i + 1)
		cfg.Seed = uint64(i + 1)
		cfg.Listener = lns[i]
		cfg.Peers = len(dials[i])
		for _, j := range dials[i] {
			cfg.Candidates = append(cfg.Candidates, lns[j].Addr().String())
		}
		cfg.Logger = slog.New(slog.DiscardHandler)
		n, err := node.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ns = append(ns, n)
		go n.Run(ctx)
	}
	defer func() {
		cancel()
		for _, n := range ns {
			<-n.Done()
		}
	}()
	adj := adjacency(dials)
	deadline := time.Now().Add(settle)
	for i := 0; i < nodes; i++ {
		for len(ns[i].Peers()) != len(adj[i]) {
			if time.Now().After(deadline) {
				b.Fatalf("node %d never linked", i)
			}
			time.Sleep(time.Millisecond)
		}
	}

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
