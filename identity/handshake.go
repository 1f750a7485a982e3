package identity

import (
	"crypto/rand"
	"fmt"
	"io"

	"gossipmesh/wire"
)

// handshakeDomain separates handshake proofs from every other signature a
// node key makes (signed messages use their own domain), so that no
// signature made for one purpose passes for another.
const handshakeDomain = "gossipmesh/handshake/v1"

// handshakeMessage is what a handshake proof signs: the domain, the nonce
// the verifier sent in its hello, then the signer's and the verifier's
// public keys. The nonce makes the proof good for one connection only;
// the signer's key first and the verifier's second make it good for one
// direction to one peer only: it cannot be reflected back to the node
// that sent the nonce, nor shown to a third node.
func handshakeMessage(nonce []byte, signer, verifier []byte) []byte {
	msg := make([]byte, 0, len(handshakeDomain)+wire.NonceSize+2*PublicKeySize)
	msg = append(msg, handshakeDomain...)
	msg = append(msg, nonce...)
	msg = append(msg, signer...)
	return append(msg, verifier...)
}

// ProveHandshake is k's proof, for the peer whose hello carried
// peerNonce and peerPub, that it holds k: the peer checks it with
// VerifyHandshake before the link goes up.
func (k *Key) ProveHandshake(peerNonce [wire.NonceSize]byte, peerPub [wire.PublicKeySize]byte) wire.Proof {
	var p wire.Proof
	copy(p.Signature[:], k.Sign(handshakeMessage(peerNonce[:], k.Public(), peerPub[:])))
	return p
}

// VerifyHandshake reports whether proof shows that the holder of peerPub
// answered ownNonce, the nonce this side sent, on a connection to the
// holder of ownPub.
func VerifyHandshake(peerPub [wire.PublicKeySize]byte, ownNonce [wire.NonceSize]byte, ownPub []byte, proof wire.Proof) bool {
	return Verify(peerPub[:], handshakeMessage(ownNonce[:], peerPub[:], ownPub), proof.Signature[:])
}

// NewNonce draws a hello nonce from r (crypto/rand.Reader when nil).
func NewNonce(r io.Reader) ([wire.NonceSize]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	var n [wire.NonceSize]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return n, fmt.Errorf("identity: nonce: %w", err)
	}
	return n, nil
}

// PublicArray returns k's public key as the fixed-size array a hello
// carries.
func (k *Key) PublicArray() [wire.PublicKeySize]byte {
	var a [wire.PublicKeySize]byte
	copy(a[:], k.Public())
	return a
}
