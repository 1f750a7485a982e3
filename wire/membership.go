package wire

import (
	"encoding/binary"
	"fmt"
)

// Membership frames: heartbeats and peer exchange. They take frame types
// from 16 up, leaving room below for more control frames.
const (
	// FramePing asks the peer to answer with a FramePong: the failure
	// detector's heartbeat on a link that has been idle for a probe
	// interval. Empty payload.
	FramePing FrameType = 16
	// FramePong answers a FramePing. Empty payload.
	FramePong FrameType = 17
	// FramePeerExchange carries a sample of the sender's membership views
	// (up to MaxPeerExchange (node id, gossip address) pairs) and whether
	// the sender needs the link it is sent on (PeerExchange.Need).
	FramePeerExchange FrameType = 18
)

// MaxPeerExchange bounds the entries of one peer exchange, so that a
// frame of it is at most 2 + 32*(8+1+255) bytes of payload.
const MaxPeerExchange = 32

// PeerExchange is the payload of a FramePeerExchange: flags byte, entry
// count byte, then per entry a big-endian uint64 id, an address length
// byte (1..255) and the address.
type PeerExchange struct {
	// Need (flag bit 0) says the sender is at or below its low degree
	// bound with this link: a full receiver keeps it and drops another
	// (HyParView's high-priority neighbour request), where it would drop
	// a link the sender does not need.
	Need    bool
	Entries []PeerEntry
}

// pxNeed is the flag bit of PeerExchange.Need; no other bit is defined.
const pxNeed = 1

// IsMembership reports whether frames of type t are membership frames
// (DecodeHeartbeat, DecodePeerExchange).
func (t FrameType) IsMembership() bool { return t >= FramePing && t <= FramePeerExchange }

// PeerEntry is one (node id, gossip listen address) pair of a peer
// exchange. The id is only a claim until identities are authenticated.
type PeerEntry struct {
	ID   NodeID
	Addr string
}

// AppendHeartbeat appends an empty frame of type t (FramePing or
// FramePong) to dst.
func AppendHeartbeat(dst []byte, t FrameType) []byte { return appendFrameHeader(dst, t, 0) }

// DecodeHeartbeat checks the payload of a FramePing or FramePong: it must
// be empty.
func DecodeHeartbeat(t FrameType, p []byte) error {
	if t != FramePing && t != FramePong {
		return fmt.Errorf("%w: %v is not a heartbeat", ErrUnknownType, t)
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %v with a %d-byte payload", ErrMalformed, t, len(p))
	}
	return nil
}

// AppendPeerExchange appends a FramePeerExchange carrying entries to dst.
// It refuses more than MaxPeerExchange entries, a zero id, and an empty or
// over-long address, so whatever it encodes DecodePeerExchange accepts.
func AppendPeerExchange(dst []byte, px PeerExchange) ([]byte, error) {
	entries := px.Entries
	if len(entries) > MaxPeerExchange {
		return dst, fmt.Errorf("wire: peer exchange of %d entries: at most %d", len(entries), MaxPeerExchange)
	}
	size := 2
	for _, e := range entries {
		if e.ID == 0 || len(e.Addr) == 0 || len(e.Addr) > maxAddrLen {
			return dst, fmt.Errorf("wire: peer exchange entry %v %q: want a non-zero id and an address of 1..%d bytes", e.ID, e.Addr, maxAddrLen)
		}
		size += 8 + 1 + len(e.Addr)
	}
	dst = appendFrameHeader(dst, FramePeerExchange, size)
	var flags byte
	if px.Need {
		flags |= pxNeed
	}
	dst = append(dst, flags, byte(len(entries)))
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ID))
		dst = append(dst, byte(len(e.Addr)))
		dst = append(dst, e.Addr...)
	}
	return dst, nil
}

// DecodePeerExchange parses the payload of a FramePeerExchange. The count
// is checked against MaxPeerExchange before anything is allocated, and the
// addresses are copied out of p.
func DecodePeerExchange(p []byte) (PeerExchange, error) {
	if len(p) < 2 {
		return PeerExchange{}, fmt.Errorf("%w: peer exchange without flags and count", ErrTruncated)
	}
	if p[0]&^pxNeed != 0 {
		return PeerExchange{}, fmt.Errorf("%w: peer exchange flags %#x", ErrMalformed, p[0])
	}
	need := p[0]&pxNeed != 0
	n := int(p[1])
	if n > MaxPeerExchange {
		return PeerExchange{}, fmt.Errorf("%w: peer exchange of %d entries, at most %d", ErrMalformed, n, MaxPeerExchange)
	}
	p = p[2:]
	out := make([]PeerEntry, 0, n)
	for i := 0; i < n; i++ {
		if len(p) < 9 {
			return PeerExchange{}, fmt.Errorf("%w: peer exchange entry %d", ErrTruncated, i)
		}
		id := NodeID(binary.BigEndian.Uint64(p))
		l := int(p[8])
		p = p[9:]
		if id == 0 || l == 0 {
			return PeerExchange{}, fmt.Errorf("%w: peer exchange entry %d: zero id or empty address", ErrMalformed, i)
		}
		if len(p) < l {
			return PeerExchange{}, fmt.Errorf("%w: peer exchange entry %d address", ErrTruncated, i)
		}
		out = append(out, PeerEntry{ID: id, Addr: string(p[:l])})
		p = p[l:]
	}
	if len(p) != 0 {
		return PeerExchange{}, fmt.Errorf("%w: %d bytes after the peer exchange entries", ErrMalformed, len(p))
	}
	return PeerExchange{Need: need, Entries: out}, nil
}
