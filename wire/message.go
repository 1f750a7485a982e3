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
	// it to log latency since publish.
	PublishedAt int64
	Body        []byte
}

// messageHeaderSize is the encoded size of a Message without its body:
// id, origin, seq, hop, published-at and the body length.
const messageHeaderSize = MsgIDSize + 8 + 8 + 2 + 8 + 4

// EncodedSize is the number of payload bytes m takes in a frame.
func (m *Message) EncodedSize() int { return messageHeaderSize + len(m.Body) }
