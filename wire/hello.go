package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// The handshake frames. Each side sends a hello as soon as the connection
// is up; once it has read the peer's hello it sends a proof: its signature
// over the peer's nonce and both public keys (package identity builds and
// checks it). The node id is not on the wire: it derives from the public
// key (identity.IDOf), so it cannot be claimed, only proved.
//
// Hello payload, integers big-endian:
//
//	public key  [32]byte  the sender's ed25519 public key
//	nonce       [32]byte  fresh random bytes the peer must sign
//	addr len    uint8
//	addr        [addr len]byte  the sender's gossip listen address
//	count       uint8   1 to MaxHelloProtocols
//	protocols   [count](uint16 protocol, uint16 version), strictly ascending
//
// Proof payload: the 64-byte ed25519 signature, nothing else.
const (
	// PublicKeySize is the size of an ed25519 public key in a hello.
	PublicKeySize = 32
	// NonceSize is the size of a hello's nonce: 256 random bits, so that
	// a nonce never repeats and a proof made for one connection is
	// worthless on any other.
	NonceSize = 32
	// ProofSize is the size of a proof's payload: one ed25519 signature.
	ProofSize = 64
	// helloFixed is the part of a hello payload before the address.
	helloFixed = PublicKeySize + NonceSize
	// protocolPairSize is one (protocol, version) pair in a hello.
	protocolPairSize = 4
	// MaxHelloFrame is the largest hello frame, length prefix included:
	// key, nonce, a 255-byte address and MaxHelloProtocols pairs. A node
	// reads a peer's handshake frames (the hello and the smaller proof)
	// with this limit, so a connection that has not proved who it is
	// costs at most this much.
	MaxHelloFrame = lengthSize + frameHeaderSize + helloFixed + 1 + maxAddrLen + 1 + MaxHelloProtocols*protocolPairSize
	// ProofFrameSize is the size of a proof frame, length prefix included.
	ProofFrameSize = lengthSize + frameHeaderSize + ProofSize
)

// Hello is the handshake frame each side sends first.
type Hello struct {
	// PublicKey is the sender's ed25519 public key. The sender's node id
	// is identity.IDOf(PublicKey); its proof frame shows it holds the
	// private key.
	PublicKey [PublicKeySize]byte
	// Nonce is fresh randomness for this connection, which the peer signs
	// in its proof: a proof cannot be replayed on another connection.
	Nonce [NonceSize]byte
	// ListenAddr is where the sender accepts gossip connections
	// ("127.0.0.1:7001"); the dialing side's ephemeral port says nothing.
	ListenAddr string
	// Protocols are the (protocol, version) pairs the sender speaks; the
	// receiver refuses a peer with none in common (CommonProtocols). A
	// hello carries 1 to MaxHelloProtocols distinct pairs, sorted by
	// protocol, then version. AppendHello sends nil as this build's
	// Protocols(); DecodeHello always returns at least one pair.
	Protocols []ProtocolVersion
}

// AppendHello appends h as a complete frame to dst, its protocols sorted.
func AppendHello(dst []byte, h Hello) ([]byte, error) {
	if len(h.ListenAddr) > maxAddrLen {
		return dst, fmt.Errorf("hello: listen address is %d bytes, limit %d", len(h.ListenAddr), maxAddrLen)
	}
	ps := h.Protocols
	if ps == nil {
		ps = Protocols()
	}
	if err := ValidateProtocols(ps); err != nil {
		return dst, fmt.Errorf("hello: %w", err)
	}
	ps = slices.SortedFunc(slices.Values(ps), compareProtocols)
	dst = appendFrameHeader(dst, FrameHello, helloFixed+1+len(h.ListenAddr)+1+len(ps)*protocolPairSize)
	dst = append(dst, h.PublicKey[:]...)
	dst = append(dst, h.Nonce[:]...)
	dst = append(dst, byte(len(h.ListenAddr)))
	dst = append(dst, h.ListenAddr...)
	dst = append(dst, byte(len(ps)))
	for _, pv := range ps {
		dst = binary.BigEndian.AppendUint16(dst, uint16(pv.Protocol))
		dst = binary.BigEndian.AppendUint16(dst, pv.Version)
	}
	return dst, nil
}

// DecodeHello parses a hello payload. Its protocol list must hold 1 to
// MaxHelloProtocols pairs in strictly ascending order (the one encoding
// AppendHello produces), so a hello has exactly one form on the wire. It
// does not judge the key: the handshake derives the id and checks the
// proof.
func DecodeHello(p []byte) (Hello, error) {
	if len(p) < helloFixed+1 {
		return Hello{}, fmt.Errorf("%w: hello of %d bytes, key and nonce need %d", ErrMalformed, len(p), helloFixed+1)
	}
	var h Hello
	copy(h.PublicKey[:], p)
	copy(h.Nonce[:], p[PublicKeySize:])
	p = p[helloFixed:]
	n := int(p[0])
	if len(p) < 1+n+1 {
		return Hello{}, fmt.Errorf("%w: hello with a %d-byte address and %d bytes for it and the protocol list", ErrMalformed, n, len(p)-1)
	}
	h.ListenAddr = string(p[1 : 1+n])
	p = p[1+n:]
	count := int(p[0])
	p = p[1:]
	switch {
	case count == 0:
		return Hello{}, fmt.Errorf("%w: hello lists no protocol", ErrMalformed)
	case count > MaxHelloProtocols:
		return Hello{}, fmt.Errorf("%w: hello lists %d protocols, limit %d", ErrMalformed, count, MaxHelloProtocols)
	case len(p) != count*protocolPairSize:
		return Hello{}, fmt.Errorf("%w: hello lists %d protocols in %d bytes, want %d", ErrMalformed, count, len(p), count*protocolPairSize)
	}
	h.Protocols = make([]ProtocolVersion, count)
	for i := range h.Protocols {
		pv := ProtocolVersion{
			Protocol: ProtocolID(binary.BigEndian.Uint16(p[i*protocolPairSize:])),
			Version:  binary.BigEndian.Uint16(p[i*protocolPairSize+2:]),
		}
		if i > 0 && compareProtocols(h.Protocols[i-1], pv) >= 0 {
			return Hello{}, fmt.Errorf("%w: hello protocols out of order or repeated at %v", ErrMalformed, pv)
		}
		h.Protocols[i] = pv
	}
	return h, nil
}

// Proof is the handshake frame each side sends once it has read the
// peer's hello: the signature that shows it holds the private key of the
// public key in its own hello (identity.Key.ProveHandshake builds it,
// identity.VerifyHandshake checks it).
type Proof struct {
	Signature [ProofSize]byte
}

// AppendProof appends p as a complete frame to dst.
func AppendProof(dst []byte, p Proof) []byte {
	dst = appendFrameHeader(dst, FrameProof, ProofSize)
	return append(dst, p.Signature[:]...)
}

// DecodeProof parses a proof payload: exactly ProofSize bytes.
func DecodeProof(p []byte) (Proof, error) {
	if len(p) != ProofSize {
		return Proof{}, fmt.Errorf("%w: proof of %d bytes, want %d", ErrMalformed, len(p), ProofSize)
	}
	var pr Proof
	copy(pr.Signature[:], p)
	return pr, nil
}
