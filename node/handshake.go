package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"gossipmesh/identity"
	"gossipmesh/wire"
)

// Handshake refusals beyond errBadHello (see runHandshake).
var (
	// errBadProof: the peer's proof frame is missing, malformed, or does
	// not verify with the public key of its hello over this connection's
	// nonce. A peer that names a key it does not hold ends here.
	errBadProof = errors.New("handshake proof does not verify")
	// errPeerIDMismatch: the node dialed an address for a given id (a peer
	// exchange entry) and the peer there proved another.
	errPeerIDMismatch = errors.New("the peer's key gives another node id than the one dialed")
)

// runHandshake is one side of the authenticated handshake, the same for
// the node and for raw clients:
//
//  1. send a hello with key's public key and a fresh nonce;
//  2. read the peer's hello, derive its id from its key, and let check
//     refuse it (self, wrong id, no common protocol) before signing;
//  3. send the proof: key's signature over the peer's nonce and both keys;
//  4. read the peer's proof and verify it over this side's nonce.
//
// Both sides send their hello at once, so the handshake takes two round
// trips' worth of waiting at most, and neither side waits for the other
// to go first. read must return one frame at a time, read with the hello
// limit (wire.MaxHelloFrame).
func runHandshake(w io.Writer, read func() (wire.Frame, error), key *identity.Key, own wire.Hello, rnd io.Reader, check func(wire.NodeID, wire.Hello) error) (wire.NodeID, wire.Hello, error) {
	own.PublicKey = key.PublicArray()
	nonce, err := identity.NewNonce(rnd)
	if err != nil {
		return 0, wire.Hello{}, err
	}
	own.Nonce = nonce
	b, err := wire.AppendHello(nil, own)
	if err != nil {
		return 0, wire.Hello{}, err
	}
	if _, err := w.Write(b); err != nil {
		return 0, wire.Hello{}, fmt.Errorf("send hello: %w", err)
	}
	f, err := read()
	if err != nil {
		return 0, wire.Hello{}, err
	}
	if f.Type != wire.FrameHello {
		return 0, wire.Hello{}, fmt.Errorf("%w: first frame is a %v", errBadHello, f.Type)
	}
	h, err := wire.DecodeHello(f.Payload)
	if err != nil {
		return 0, wire.Hello{}, fmt.Errorf("%w: %w", errBadHello, err)
	}
	id := identity.IDOf(h.PublicKey[:])
	if id == 0 {
		return 0, h, fmt.Errorf("%w: its key hashes to node id 0", errBadHello)
	}
	if check != nil {
		if err := check(id, h); err != nil {
			return id, h, err
		}
	}
	if _, err := w.Write(wire.AppendProof(nil, key.ProveHandshake(h.Nonce, h.PublicKey))); err != nil {
		return id, h, fmt.Errorf("send proof: %w", err)
	}
	if f, err = read(); err != nil {
		return id, h, err
	}
	if f.Type != wire.FrameProof {
		return id, h, fmt.Errorf("%w: peer %v sent a %v frame, want its proof", errBadProof, id, f.Type)
	}
	proof, err := wire.DecodeProof(f.Payload)
	if err != nil {
		return id, h, fmt.Errorf("%w: peer %v: %w", errBadProof, id, err)
	}
	if !identity.VerifyHandshake(h.PublicKey, own.Nonce, key.Public(), proof) {
		return id, h, fmt.Errorf("%w: peer %v (%s) does not hold the key its hello names", errBadProof, id, h.ListenAddr)
	}
	return id, h, nil
}

// Handshaken is what a raw client learnt from a handshake (see Handshake).
type Handshaken struct {
	// ID is the peer's node id, derived from the key it proved it holds.
	ID wire.NodeID
	// Hello is the peer's hello.
	Hello wire.Hello
	// Reader reads the connection on from the end of the peer's proof: it
	// may already hold frames the peer sent after it.
	Reader *bufio.Reader
}

// Handshake runs one side of the authenticated handshake on conn, as the
// holder of key announcing listenAddr and this build's protocols. It is
// for clients that speak the wire protocol without running a node (the
// soak's hostile connections, tests of what a node refuses); a node runs
// the same steps for every connection. It sets no deadline: the caller
// bounds conn. The error says why the peer's side failed to verify.
func Handshake(conn io.ReadWriter, key *identity.Key, listenAddr string) (Handshaken, error) {
	br := bufio.NewReaderSize(conn, readBufferSize)
	fr := wire.NewReader(br, wire.MaxHelloFrame)
	id, h, err := runHandshake(conn, fr.ReadFrame, key, wire.Hello{ListenAddr: listenAddr}, nil, nil)
	if err != nil {
		return Handshaken{}, fmt.Errorf("handshake: %w", err)
	}
	return Handshaken{ID: id, Hello: h, Reader: br}, nil
}
