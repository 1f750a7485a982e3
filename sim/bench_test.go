package sim

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// anchorConfig is the PeerSim anchor's setup: k=8 outbound links made
// undirected (mean degree 16), flood, uniform 10–100 ms per message.
func anchorConfig(nodes, broadcasts int) Config {
	cfg := DefaultConfig()
	cfg.Nodes = nodes
	cfg.Topology = TopologyUndirected
	cfg.Degree = 16
	cfg.Latency = Latency{Kind: LatencyUniform, Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	cfg.Broadcasts = broadcasts
	return cfg
}

// benchRun times whole runs (topology, cores and broadcasts) and reports
// the cost per delivered message: per copy that reached a core.
func benchRun(b *testing.B, cfg Config) {
	b.ReportAllocs()
	var events int64
	for i := 0; i < b.N; i++ {
		cfg.Seed = uint64(i + 1)
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r, err := s.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/msg")
	b.ReportMetric(float64(events)/float64(b.N), "msgs/op")
}

// BenchmarkMillionNodes is the first workload: 1,000,000 nodes,
// one broadcast. Skipped with -short.
func BenchmarkMillionNodes(b *testing.B) {
	if testing.Short() {
		b.Skip("1M nodes")
	}
	benchRun(b, anchorConfig(1_000_000, 1))
}

// BenchmarkThousandBroadcasts is the second: 10,000 nodes × 1,000
// broadcasts.
func BenchmarkThousandBroadcasts(b *testing.B) {
	benchRun(b, anchorConfig(10_000, 1_000))
}

// BenchmarkSmall is a quick one for profiling the hot loop.
func BenchmarkSmall(b *testing.B) {
	benchRun(b, anchorConfig(10_000, 10))
}

// BenchmarkQueue is the event queue alone: one pop and one push per op
// with 150,000 events in flight, 10–100 ms ahead (the 10,000-node load).
func BenchmarkQueue(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	q := newQueue(100e6, 100e6/bucketsPerHorizon)
	var now int64
	var seq uint32
	for i := 0; i < 150_000; i++ {
		seq++
		q.push(event{at: now + 10e6 + rng.Int64N(90e6), seq: seq})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := q.pop()
		now = e.at
		seq++
		q.push(event{at: now + 10e6 + rng.Int64N(90e6), seq: seq})
	}
}

// BenchmarkThousandBroadcastsOneWorker is BenchmarkThousandBroadcasts on
// one goroutine: the cost per message of the engine itself, beside the
// wall time that every core gives.
func BenchmarkThousandBroadcastsOneWorker(b *testing.B) {
	cfg := anchorConfig(10_000, 1_000)
	cfg.Workers = 1
	benchRun(b, cfg)
}

// BenchmarkResetTrial is what an independent trial costs before its first
// event at 10,000 nodes: every core, source and tick slot made new.
func BenchmarkResetTrial(b *testing.B) {
	s, err := New(anchorConfig(10_000, 2))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.resetTrial(1 + i%1000)
	}
}
