package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/identity"
	"gossipmesh/wire"
)

// rawPeer is a TCP client that completed the authenticated handshake with
// a node under a key of its own, and speaks frames by hand.
type rawPeer struct {
	conn net.Conn
	key  *identity.Key
	mu   sync.Mutex
	seen []wire.Message // messages the node sent it
}

// dialRawPeer connects to addr and runs the handshake: its hello, the
// node's, its proof over the node's nonce, the node's proof.
func dialRawPeer(t *testing.T, addr string, key *identity.Key) *rawPeer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	nonce, err := identity.NewNonce(nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := wire.AppendHello(nil, wire.Hello{PublicKey: key.PublicArray(), Nonce: nonce, ListenAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(hello); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	hr := wire.NewReader(br, wire.MaxHelloFrame)
	f, err := hr.ReadFrame()
	if err != nil || f.Type != wire.FrameHello {
		t.Fatalf("the node's hello: %v, %v", f.Type, err)
	}
	theirs, err := wire.DecodeHello(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(wire.AppendProof(nil, key.ProveHandshake(theirs.Nonce, theirs.PublicKey))); err != nil {
		t.Fatal(err)
	}
	if f, err = hr.ReadFrame(); err != nil || f.Type != wire.FrameProof {
		t.Fatalf("the node's proof: %v, %v", f.Type, err)
	}
	conn.SetDeadline(time.Time{})
	p := &rawPeer{conn: conn, key: key}
	go p.read(wire.NewReader(br, wire.DefaultMaxFrame))
	return p
}

// read keeps the messages the node sends, until the connection ends.
func (p *rawPeer) read(r *wire.Reader) {
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return
		}
		if f.Type != wire.FrameMessage {
			continue
		}
		m, err := wire.DecodeMessage(f.Payload, wire.DefaultMaxBody)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.seen = append(p.seen, m)
		p.mu.Unlock()
	}
}

// received returns the first message the node sent it whose body is body.
func (p *rawPeer) received(body string) *wire.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.seen {
		if string(p.seen[i].Body) == body {
			m := p.seen[i]
			return &m
		}
	}
	return nil
}

func (p *rawPeer) send(t *testing.T, ms ...*wire.Message) {
	t.Helper()
	var b []byte
	for _, m := range ms {
		b = wire.AppendMessage(b, m)
	}
	if _, err := p.conn.Write(b); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

// TestEndToEndForgeries: a raw TCP client completes the handshake with
// node 0 of real node processes under its own key and sends every kind of
// forgery of a message node 1 published (a tampered body under its id, under
// a wrong id and under a recomputed one,
// node 1 as origin under the client's key, a bad signature, unsigned, a
// freshened publish time, a replay, and a replay past the window of a
// message node 1 really signed long ago). No node delivers a forgery; node
// 0 counts them by reason, blames the client (its peer score goes below
// zero, or it is banned) and keeps serving: an honest message published
// after them reaches every node.
func TestEndToEndForgeries(t *testing.T) {
	t.Parallel()
	bin := buildMesh(t)
	c := startCluster(t, bin, 4, 11)
	ctx := context.Background()
	nodes := c.Nodes()
	key, err := identity.FromSeed(bytes.Repeat([]byte{0xee}, 32))
	if err != nil {
		t.Fatal(err)
	}
	p := dialRawPeer(t, nodes[0].GossipAddr, key)
	waitLinkedTo(t, c.Client(0), key.ID().String())
	pub, err := c.Client(1).Publish(ctx, "honest")
	if err != nil {
		t.Fatal(err)
	}
	var honest *wire.Message
	deadline := time.Now().Add(time.Minute)
	for honest = p.received("honest"); honest == nil; honest = p.received("honest") {
		if time.Now().After(deadline) {
			t.Fatal("node 0 never forwarded node 1's message to the client")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if honest.Auth == nil || honest.ID.String() != pub.ID {
		t.Fatalf("node 0 forwarded %+v, want node 1's signed message %s", honest, pub.ID)
	}
	forgeries := forgeAll(t, honest, key)
	// A replay past the window: a message node 1 really signed (the
	// launcher holds its key), three minutes ago, which no node has seen.
	old := &wire.Message{Origin: honest.Origin, Seq: 1, Hop: 1, PublishedAt: time.Now().Add(-3 * time.Minute).UnixNano(), Body: []byte("signed long ago")}
	old.ID = wire.ComputeMsgID(old.Origin, old.Seq, old.Body)
	if old.Auth, err = identity.SignMessage(c.Topology().Keys[1], old); err != nil {
		t.Fatal(err)
	}
	// Refused without blame, so first: the peer score graylists the
	// client after four blamed messages, and drops the rest unread.
	forgeries = append([]*wire.Message{old}, forgeries...)
	p.send(t, forgeries...)
	// Node 0 has handled them all once it counts every reason.
	series := []string{
		`gossipmesh_rejected_total{reason="invalid_signature"}`,
		`gossipmesh_rejected_total{reason="id_mismatch"}`,
		`gossipmesh_rejected_total{reason="unsigned"}`,
		`gossipmesh_refused_total{reason="replay"}`,
	}
	metricsURL := strings.TrimSuffix(nodes[0].HTTPURL, "/") + "/metrics"
	deadline = time.Now().Add(time.Minute)
	for {
		metrics, missing := scrape(t, metricsURL), ""
		for _, s := range series {
			if !strings.Contains(metrics, s) {
				missing = s
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 0's /metrics never showed %s", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The mesh keeps serving: an honest message from node 2 reaches every
	// node.
	after, err := c.Client(2).Publish(ctx, "after the forgeries")
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if _, err := c.Client(i).Receipt(ctx, after.ID, time.Minute); err != nil {
			t.Fatalf("node %d never got node 2's message after the forgeries: %v", i, err)
		}
	}
	forged := make(map[string]bool)
	for _, f := range forgeries {
		if f.ID != honest.ID {
			forged[f.ID.String()] = true
		}
	}
	for i := range nodes {
		recent, err := c.Client(i).Recent(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recent {
			if forged[r.ID] {
				t.Errorf("node %d delivered forgery %s", i, r.ID)
			}
		}
		r, err := c.Client(i).Receipt(ctx, pub.ID, 0)
		if err != nil || r.Body != "honest" || r.Origin != nodes[1].ID {
			t.Errorf("node %d: node 1's message is %+v (%v), want body \"honest\" from %s", i, r, err, nodes[1].ID)
		}
	}
	// The sender of the forgeries is blamed: its score goes below zero
	// (GET /peers shows a copy of the scores up to a second old), or it is
	// banned and gone from the links.
	deadline = time.Now().Add(time.Minute)
	for blamed := false; !blamed; {
		peers, err := c.Client(0).Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		blamed = true
		for _, pr := range peers {
			if pr.ID == key.ID().String() && pr.Score >= 0 {
				blamed = false
			}
		}
		if !blamed && time.Now().After(deadline) {
			t.Fatal("the forger's score at node 0 never went below 0")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d forgeries injected into real processes, 0 delivered by any of %d nodes", len(forgeries), len(nodes))
}

// forgeAll builds the forgeries of h that a peer holding only key can make.
func forgeAll(t *testing.T, h *wire.Message, key *identity.Key) []*wire.Message {
	t.Helper()
	clone := func() *wire.Message { c := *h; c.Hop = 1; return &c }
	tampered := clone()
	tampered.Body = []byte("tampered")
	reID := clone()
	reID.Body = []byte("tampered, id recomputed")
	reID.ID = wire.ComputeMsgID(reID.Origin, reID.Seq, reID.Body)
	forged := &wire.Message{Origin: h.Origin, Seq: h.Seq + 1, Hop: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("forged origin")}
	forged.ID = wire.ComputeMsgID(forged.Origin, forged.Seq, forged.Body)
	asClient := *forged
	asClient.Origin = key.ID()
	a, err := identity.SignMessage(key, &asClient)
	if err != nil {
		t.Fatal(err)
	}
	forged.Auth = a
	badSig := clone()
	bs := *h.Auth
	bs.Sig[9] ^= 0x10
	badSig.Auth = &bs
	badSig.Seq, badSig.Body = h.Seq+2, []byte("bad signature")
	badSig.ID = wire.ComputeMsgID(badSig.Origin, badSig.Seq, badSig.Body)
	unsigned := &wire.Message{Origin: h.Origin, Seq: h.Seq + 3, Hop: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("unsigned")}
	unsigned.ID = wire.ComputeMsgID(unsigned.Origin, unsigned.Seq, unsigned.Body)
	// A tampered body under an id no node has seen, not its own.
	wrongID := clone()
	wrongID.Body = []byte("tampered, id kept wrong")
	wrongID.ID[0] ^= 0xff
	fresh := clone()
	fresh.PublishedAt = time.Now().UnixNano()
	fresh.Seq, fresh.Body = h.Seq+4, []byte("freshened")
	fresh.ID = wire.ComputeMsgID(fresh.Origin, fresh.Seq, fresh.Body)
	// One of each reason first (the score graylists the sender after four
	// blamed messages), then the rest.
	return []*wire.Message{wrongID, badSig, unsigned, tampered, reID, forged, fresh, clone()}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	cl := http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return fmt.Sprint(string(b))
}

// waitLinkedTo waits until the node behind cl lists peer id among its links.
func waitLinkedTo(t *testing.T, cl *api.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		peers, err := cl.Peers(context.Background())
		if err == nil {
			for _, p := range peers {
				if p.ID == id {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node never listed peer %s: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
