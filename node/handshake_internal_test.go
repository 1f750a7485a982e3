package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// pipeNode is a node that is not run, for driving its handshake over
// net.Pipe.
func pipeNode(t testing.TB, k int) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Key = KeyForTest(k)
	cfg.Transport = memnet.New().Host("h")
	cfg.Listen = "h:7000"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.ln.Close() })
	return n
}

// memPipe returns the two ends of one in-memory connection. Unlike
// net.Pipe's, memnet's connections buffer, as sockets do, so both ends can
// send their hello before either reads.
func memPipe(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	nw := memnet.New()
	ln, err := nw.Host("p").Listen("p:1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := nw.Host("q").Dial(context.Background(), "p:1")
	if err != nil {
		t.Fatal(err)
	}
	return a, <-accepted
}

// TestHandshakeWantsTheDialedID: a node that dials an address for a given
// id (a peer exchange entry) refuses a peer there that proves another id,
// as peer_id_mismatch; the same peer passes when any id will do, and both
// ends then agree on each other's id.
func TestHandshakeWantsTheDialedID(t *testing.T) {
	n := pipeNode(t, 1)
	other := KeyForTest(2)
	for _, want := range []wire.NodeID{KeyForTest(3).ID(), other.ID(), 0} {
		a, b := memPipe(t)
		type result struct {
			hs  Handshaken
			err error
		}
		peerSide := make(chan result, 1)
		go func() {
			b.SetDeadline(time.Now().Add(5 * time.Second))
			hs, err := Handshake(b, other, "h2:7000")
			b.Close()
			peerSide <- result{hs, err}
		}()
		p, err := n.handshake(a, true, want)
		a.Close()
		r := <-peerSide
		if want == KeyForTest(3).ID() {
			if !errors.Is(err, errPeerIDMismatch) || reasonOf(err) != "peer_id_mismatch" {
				t.Errorf("dialed for %v, the peer proves %v: %v", want, other.ID(), err)
			}
			continue
		}
		if err != nil || r.err != nil {
			t.Fatalf("want %v: node side %v, peer side %v", want, err, r.err)
		}
		if p.id != other.ID() || r.hs.ID != n.id || p.addr != "h2:7000" {
			t.Errorf("want %v: the node sees %v at %s, the peer sees %v", want, p.id, p.addr, r.hs.ID)
		}
	}
}

// BenchmarkHandshake is one full handshake, both sides, over an
// in-memory connection (memnet's connect included): two nonces, two signatures and two verifications, four
// frames. It is what each new connection costs in CPU before it carries
// anything.
func BenchmarkHandshake(b *testing.B) {
	n := pipeNode(b, 1)
	other := KeyForTest(2)
	b.ReportAllocs()
	for b.Loop() {
		x, y := memPipe(b)
		done := make(chan error, 1)
		go func() {
			_, err := Handshake(y, other, "h2:7000")
			done <- err
		}()
		if _, err := n.handshake(x, false, 0); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		x.Close()
		y.Close()
	}
}
