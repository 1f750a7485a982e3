// Package wire holds gossipmesh's message and frame types and the versioned,
// length-prefixed binary codec that carries them between nodes.
//
// Everything a peer sends is untrusted: the decoder checks every length
// against a limit before it allocates, and reports each kind of malformed
// input with its own error so that the runtime can log why it hung up.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// NodeID names a node. It is a random 64-bit number in the real runtime and
// the node's index in the simulator. Zero means "no node" (for example the
// sender of a message the node published itself).
type NodeID uint64

// String renders the id as 16 hex digits, the form used in logs and the API.
func (n NodeID) String() string {
	var b [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// ParseNodeID parses the 16-hex-digit form produced by String.
func ParseNodeID(s string) (NodeID, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return 0, fmt.Errorf("node id %q: want 16 hex digits", s)
	}
	return NodeID(v), nil
}

// MsgIDSize is the length of a message id in bytes.
const MsgIDSize = 16

// MsgID identifies a message: the first 16 bytes of the SHA-256 of its
// origin, sequence number and body. A fixed-size array keeps the seen-cache
// compact and comparable without allocation.
type MsgID [MsgIDSize]byte

// String renders the id as 32 hex digits.
func (id MsgID) String() string { return hex.EncodeToString(id[:]) }

// ParseMsgID parses the 32-hex-digit form produced by String.
func ParseMsgID(s string) (MsgID, error) {
	var id MsgID
	if len(s) != 2*MsgIDSize {
		return id, fmt.Errorf("message id %q: want %d hex digits", s, 2*MsgIDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("message id %q: %w", s, err)
	}
	return id, nil
}

// ComputeMsgID derives the id of the message that origin publishes as its
// seq-th message with this body. Hop count and timestamps stay out of it:
// they change in flight, the id must not.
func ComputeMsgID(origin NodeID, seq uint64, body []byte) MsgID {
	h := sha256.New()
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[0:8], uint64(origin))
	binary.BigEndian.PutUint64(hdr[8:16], seq)
	h.Write(hdr[:])
	h.Write(body)
	var sum [sha256.Size]byte
	var id MsgID
	copy(id[:], h.Sum(sum[:0]))
	return id
}

// Message is one gossiped message. Everything but Hop is fixed by the
// publisher; Hop is per-hop metadata, like an IP TTL: the publisher holds the
// message at hop 0 and each forward adds one, so the publisher's direct
// peers receive it at hop 1.
//
// A Message is immutable once built: the core shares one value between all
// the sends of a forward, so drivers must not modify what they are handed.
type Message struct {
	ID     MsgID
	Origin NodeID
	Seq    uint64
	Hop    uint16
	// PublishedAt is the publisher's clock at publish, in nanoseconds: Unix
	// time in the real runtime, virtual time in the simulator. Receivers use
	// it to log latency since publish and, since it is signed, to refuse
	// replays older than the acceptance window.
	PublishedAt int64
	Body        []byte
	// Auth is the origin's signature over everything but Hop (SignedBytes),
	// nil for an unsigned message. A pointer to one immutable block, shared
	// by every copy and hop of the message, so that a forward copies 8
	// bytes, not 96: it matters to a simulator of a million nodes.
	Auth *Auth
}

// Sizes of the parts of an Auth on the wire.
const (
	// AuthKeySize is the size of the origin's public key (ed25519).
	AuthKeySize = 32
	// AuthSigSize is the size of the signature (ed25519).
	AuthSigSize = 64
	// AuthSize is what a signed message carries beyond an unsigned one.
	AuthSize = AuthKeySize + AuthSigSize
)

// Auth is a message's proof of origin: the origin's public key, which must
// hash to Message.Origin (identity.IDOf), and its signature over the
// message's SignedBytes. Carrying the key makes verification need no key
// directory. Immutable once built, and shared between copies.
type Auth struct {
	Key [AuthKeySize]byte
	Sig [AuthSigSize]byte
}

// SignDomain starts the bytes a message signature covers, so that a
// message signature never passes for a signature made for anything else
// (a handshake proof, a later version of this layout).
const SignDomain = "gossipmesh/msg/v1"

// signedHeaderSize is the fixed part of SignedBytes after the domain: id,
// origin, seq, published-at and the body length.
const signedHeaderSize = MsgIDSize + 8 + 8 + 8 + 4

// SignedSize is the length of m's SignedBytes.
func (m *Message) SignedSize() int { return len(SignDomain) + signedHeaderSize + len(m.Body) }

// AppendSigned appends the bytes the origin signs to dst: SignDomain, then
// id, origin, seq, published-at (big-endian), the body length (uint32) and
// the body. Hop stays out: every forwarder rewrites it.
func (m *Message) AppendSigned(dst []byte) []byte {
	return append(m.AppendSignedHeader(dst), m.Body...)
}

// SignedHeaderSize is the length of AppendSignedHeader's output.
const SignedHeaderSize = len(SignDomain) + signedHeaderSize

// AppendSignedHeader appends the signed bytes up to the body (everything
// AppendSigned appends but the body itself), for a signer that hashes the
// body separately instead of copying it.
func (m *Message) AppendSignedHeader(dst []byte) []byte {
	dst = append(dst, SignDomain...)
	dst = append(dst, m.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Origin))
	dst = binary.BigEndian.AppendUint64(dst, m.Seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.PublishedAt))
	return binary.BigEndian.AppendUint32(dst, uint32(len(m.Body)))
}

// messageHeaderSize is the encoded size of an unsigned Message without its
// body: id, origin, seq, hop, published-at, flags and the body length.
const messageHeaderSize = MsgIDSize + 8 + 8 + 2 + 8 + 1 + 4

// Message flags, the byte after published-at.
const (
	// flagSigned: the public key and signature (AuthSize bytes) follow
	// the flags byte.
	flagSigned = 1 << 0
	// knownFlags are the flags this build decodes; any other bit set is
	// malformed, so that a later layout is refused rather than misread.
	knownFlags = flagSigned
)

// EncodedSize is the number of payload bytes m takes in a frame.
func (m *Message) EncodedSize() int {
	n := messageHeaderSize + len(m.Body)
	if m.Auth != nil {
		n += AuthSize
	}
	return n
}
