package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/transport/tcp"
	"gossipmesh/wire"
)

// forgery is one way a raw client tries to pass the handshake without
// holding the key its hello names.
type forgery struct {
	name string
	// key is the public key the client's hello names.
	key [wire.PublicKeySize]byte
	// proof builds the proof frame the client sends, from the node's hello.
	proof func(nodeHello wire.Hello) []byte
}

// forge runs one forged handshake against addr: it sends a hello naming
// f.key, reads the node's hello, sends f.proof and reports whether the
// node hung up (EOF or reset, not our own deadline). It returns the local
// address, which the node's warning names.
func forge(t *testing.T, addr string, f forgery) (local string, hungUp bool) {
	t.Helper()
	conn, err := (tcp.Transport{}).Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(settle))
	nonce, err := identity.NewNonce(nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := wire.AppendHello(nil, wire.Hello{PublicKey: f.key, Nonce: nonce, ListenAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(hello); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	fr, err := wire.NewReader(conn, wire.MaxHelloFrame).ReadFrame()
	if err != nil || fr.Type != wire.FrameHello {
		t.Fatalf("%s: the node's hello: %v, %v", f.name, fr.Type, err)
	}
	nh, err := wire.DecodeHello(fr.Payload)
	if err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	if _, err := conn.Write(f.proof(nh)); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	conn.SetDeadline(time.Now().Add(hangUpWait))
	_, err = io.Copy(io.Discard, conn) // the node's proof, then its hang-up
	var ne net.Error
	return conn.LocalAddr().String(), !(errors.As(err, &ne) && ne.Timeout())
}

// TestHandshakeRefusesForgeries: raw TCP clients try, one at a time, every
// way to pass the handshake without the private key of the public key
// their hello names: no proof, a malformed one, a bad signature, a proof
// over another nonce, a proof replayed from another connection, the
// node's own proof reflected back, a proof made out to another node, and a
// claim of a live peer's key with the attacker's own signature. Each is
// hung up on, counted as bad_proof, logged with the reason, and never
// listed as a peer; the honest peer's link stays up and carries messages
// throughout.
func TestHandshakeRefusesForgeries(t *testing.T) {
	t.Parallel()
	logs := &logSink{}
	target := startTCPNode(t, node.KeyForTest(1), nil, logs)
	honestKey := node.KeyForTest(2)
	honest := startTCPNode(t, honestKey, []string{target.Addr()}, nil)
	eventually(t, "the honest link", func() bool { return len(target.Peers()) == 1 })

	attacker, stolen := node.KeyForTest(66), node.KeyForTest(67)
	third := node.KeyForTest(68)
	proofFrame := func(p wire.Proof) []byte { return wire.AppendProof(nil, p) }

	// A proof the holder of stolen made on an earlier connection, which
	// the attacker recorded: good for that connection's nonce only.
	conn, err := (tcp.Transport{}).Dial(context.Background(), target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(settle))
	earlier, err := node.Handshake(conn, stolen, "127.0.0.1:1")
	if err != nil {
		t.Fatalf("the earlier, honest connection: %v", err)
	}
	recorded := stolen.ProveHandshake(earlier.Hello.Nonce, earlier.Hello.PublicKey)
	// The target registers the link after this end's handshake is over:
	// wait for it to come before waiting for it to go, or the forgeries
	// below could meet it still counted against their host.
	holds := func() bool {
		for _, p := range target.Peers() {
			if p.ID == stolen.ID().String() {
				return true
			}
		}
		return false
	}
	eventually(t, "the earlier connection to link", holds)
	conn.Close()
	eventually(t, "the earlier connection to go", func() bool { return !holds() && len(target.Peers()) == 1 })

	var otherNonce [wire.NonceSize]byte
	otherNonce[0] = 1
	forgeries := []forgery{
		{"no proof: a message frame instead", attacker.PublicArray(), func(wire.Hello) []byte {
			return wire.AppendMessage(nil, &wire.Message{Origin: attacker.ID(), Seq: 1, Hop: 1})
		}},
		{"a malformed proof: 10 signature bytes", attacker.PublicArray(), func(wire.Hello) []byte {
			b := proofFrame(wire.Proof{})[:4+2+10]
			b[3] = 2 + 10
			return b
		}},
		{"a bad signature", attacker.PublicArray(), func(nh wire.Hello) []byte {
			p := attacker.ProveHandshake(nh.Nonce, nh.PublicKey)
			p.Signature[0] ^= 0x80
			return proofFrame(p)
		}},
		{"a proof over another nonce", attacker.PublicArray(), func(nh wire.Hello) []byte {
			return proofFrame(attacker.ProveHandshake(otherNonce, nh.PublicKey))
		}},
		{"a proof replayed from another connection", stolen.PublicArray(), func(wire.Hello) []byte {
			return proofFrame(recorded)
		}},
		{"a proof made out to another node", attacker.PublicArray(), func(nh wire.Hello) []byte {
			return proofFrame(attacker.ProveHandshake(nh.Nonce, third.PublicArray()))
		}},
		{"the live peer's key, the attacker's signature", honestKey.PublicArray(), func(nh wire.Hello) []byte {
			return proofFrame(attacker.ProveHandshake(nh.Nonce, nh.PublicKey))
		}},
		{"a key whose id is the target's own, the attacker's signature", node.KeyForTest(1).PublicArray(), func(nh wire.Hello) []byte {
			return proofFrame(attacker.ProveHandshake(nh.Nonce, nh.PublicKey))
		}},
	}
	// The node's own proof, reflected: the target proves itself to the
	// client's nonce; the client sends that back as its own.
	reflect := forgery{name: "the node's own proof reflected back", key: attacker.PublicArray()}

	counted := 0.0
	for _, f := range append(forgeries, reflect) {
		var local string
		var hungUp bool
		if f.proof == nil {
			local, hungUp = reflectProof(t, target.Addr(), f.key)
		} else {
			local, hungUp = forge(t, target.Addr(), f)
		}
		if !hungUp {
			t.Errorf("%s: the node did not hang up", f.name)
			continue
		}
		if strings.HasPrefix(f.name, "a key whose id is the target's own") {
			// Refused as a connection to itself, before any proof.
			continue
		}
		counted++
		eventually(t, f.name+": counted as bad_proof", func() bool {
			return labelled(t, target, "gossipmesh_rejected_total", "reason", "bad_proof") == counted
		})
		// The refusal is counted before its log line is written: wait
		// for the line too.
		eventually(t, f.name+": a warning that names the bad proof", func() bool {
			rec := logs.find(func(r map[string]any) bool { return r["level"] == "WARN" && r["peer"] == local })
			msg, _ := rec["err"].(string)
			return strings.Contains(msg, "handshake proof does not verify")
		})
		for _, p := range target.Peers() {
			if p.ID != honest.ID().String() {
				t.Errorf("%s: the node lists a peer %s", f.name, p.ID)
			}
		}
		flows(t, f.name, target, honest)
	}
	if ps := target.Peers(); len(ps) != 1 || ps[0].ID != honest.ID().String() {
		t.Errorf("links after the forgeries: %+v, want just the honest peer", ps)
	}
}

// reflectProof sends a hello naming key, reads the node's hello and its
// proof (made out to key, over the client's nonce), and sends that proof
// back as the client's own.
func reflectProof(t *testing.T, addr string, key [wire.PublicKeySize]byte) (local string, hungUp bool) {
	t.Helper()
	conn, err := (tcp.Transport{}).Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(settle))
	hello, _ := wire.AppendHello(nil, wire.Hello{PublicKey: key, Nonce: [wire.NonceSize]byte{7}, ListenAddr: "127.0.0.1:1"})
	if _, err := conn.Write(hello); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(conn, wire.MaxHelloFrame)
	if f, err := r.ReadFrame(); err != nil || f.Type != wire.FrameHello {
		t.Fatalf("the node's hello: %v, %v", f.Type, err)
	}
	f, err := r.ReadFrame()
	if err != nil || f.Type != wire.FrameProof {
		t.Fatalf("the node's proof: %v, %v", f.Type, err)
	}
	if _, err := conn.Write(append(append([]byte(nil), 0, 0, 0, byte(2+len(f.Payload)), wire.Version, byte(wire.FrameProof)), f.Payload...)); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(hangUpWait))
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	return conn.LocalAddr().String(), !(errors.As(err, &ne) && ne.Timeout())
}

// hangUpWait is how long a forger waits for the node to hang up once it
// has sent its proof. The node's whole handshake must end within its
// handshake timeout (500 ms in these tests), so this is generous even
// under the race detector on a loaded machine; a node that accepted the
// forgery never hangs up.
const hangUpWait = 15 * time.Second

// TestConfigIDMustBeTheKeys: a node's id derives from its key; a config
// that names another id is refused, and one that names the key's is
// taken.
func TestConfigIDMustBeTheKeys(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Key = node.KeyForTest(1)
	cfg.ID = node.KeyForTest(2).ID()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "derives from its key") {
		t.Errorf("an id not the key's: %v", err)
	}
	cfg.Key = nil
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "without a key") {
		t.Errorf("an id without a key: %v", err)
	}
	cfg.Key = node.KeyForTest(2)
	if err := cfg.Validate(); err != nil {
		t.Errorf("the key's own id: %v", err)
	}
}

// TestDataDirKeepsTheIdentity: a node without a key makes one in its data
// directory (0700, key 0600) and a node started again on that directory
// has the same id; a config naming another id is refused by New.
func TestDataDirKeepsTheIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	start := func(id wire.NodeID) (*node.Node, error) {
		cfg := node.DefaultConfig()
		cfg.DataDir = dir
		cfg.ID = id
		cfg.Listen = "127.0.0.1:0"
		n, err := node.New(cfg)
		if err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			go n.Run(ctx)
			cancel()
			<-n.Done()
		}
		return n, err
	}
	first, err := start(0)
	if err != nil {
		t.Fatal(err)
	}
	if !first.KeyCreated() || first.KeyPath() != dir+"/"+node.KeyFileName {
		t.Fatalf("first start: key at %q, created %v", first.KeyPath(), first.KeyCreated())
	}
	for path, want := range map[string]string{dir: "drwx------", first.KeyPath(): "-rw-------"} {
		if st, err := os.Stat(path); err != nil || st.Mode().String() != want {
			t.Errorf("%s: %v, %v; want mode %s", path, st, err, want)
		}
	}
	again, err := start(first.ID())
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != first.ID() || again.KeyCreated() {
		t.Errorf("restart: id %v (created %v), want %v loaded", again.ID(), again.KeyCreated(), first.ID())
	}
	if _, err := start(node.KeyForTest(3).ID()); err == nil || !strings.Contains(err.Error(), "derives from its key") {
		t.Errorf("another id over the data directory's key: %v", err)
	}
}
