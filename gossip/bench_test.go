package gossip

import (
	"math/rand/v2"
	"testing"

	"gossipmesh/wire"
)

// BenchmarkReceive measures the core's receive path for a node of degree
// 16 under flood: one first delivery (verify, mark seen, route, 15 sends)
// followed by 15 duplicates, the mix every node of a flooded mesh sees.
func BenchmarkReceive(b *testing.B) {
	c, _ := New(unsignedConfig(), 1, rand.New(rand.NewPCG(1, 1)))
	for p := wire.NodeID(2); p <= 17; p++ {
		c.AddPeer(p)
	}
	msgs := make([]wire.Message, b.N/16+1)
	for i := range msgs {
		body := []byte{byte(i), byte(i >> 8), 1, 2, 3, 4, 5, 6}
		msgs[i] = wire.Message{Origin: 99, Seq: uint64(i), Hop: 1, Body: body, ID: wire.ComputeMsgID(99, uint64(i), body)}
	}
	var out Output
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &msgs[i/16]
		out.Reset()
		c.Receive(int64(i), wire.NodeID(2+i%16), m, &out)
	}
}
