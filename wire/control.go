package wire

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Control frames: the small frames the repair protocols exchange beside
// message frames. Every one fits in MaxControlFrame bytes, whatever its
// kind, so it fits any frame limit of at least that and the Reader's reused
// buffer.
//
// Payload layouts (integers big-endian, uvarint as encoding/binary's,
// always in its shortest form):
//
//	IHAVE, IWANT, GRAFT  count uint16, then count message ids of 16 bytes;
//	                     an IHAVE may end with hop uint16 (HasHop: the
//	                     payload's length says whether it does)
//	PRUNE                reason uint8
//	PULL                 flags uint8, origins uvarint, then per origin:
//	                     origin uint64, ranges uvarint (at least 1), then
//	                     per range: skip uvarint, span uvarint
//
// A PULL range covers sequence numbers first..first+span. For an origin's
// first range, skip is first itself; for each later one it is the count of
// sequence numbers left out since the previous range's last, at least 1
// (two ranges that touch are one range). Origins are in strictly ascending
// order. So every digest has exactly one encoding.
const (
	// MaxControlFrame bounds every control frame, length prefix included:
	// 64 KiB.
	MaxControlFrame = 64 << 10
	// MaxControlIDs bounds the message ids in one IHAVE, IWANT or GRAFT:
	// 4,000 ids, 64,000 bytes. gossipsub caps an IHAVE at 5,000 ids; 4,000
	// keeps the frame within MaxControlFrame. A sender with more ids sends
	// more frames.
	MaxControlIDs = 4000
	// MaxDigestOrigins bounds the origins in one PULL digest.
	MaxDigestOrigins = 1024
	// MaxDigestRanges bounds the sequence ranges in one PULL digest, over
	// all its origins. With MaxDigestOrigins, even a digest of ten-byte
	// varints stays within MaxControlFrame (about 51 KiB).
	MaxDigestRanges = 2048

	// idsHeaderSize is the count in front of an id list.
	idsHeaderSize = 2
	// minOriginSize is the smallest encoding of one digest origin: the id,
	// a range count and one range of one-byte varints.
	minOriginSize = 8 + 1 + 2
)

// PruneReason says why a peer made a link lazy. Receivers may count or log
// it; the effect of a PRUNE is the same whatever the reason.
type PruneReason uint8

// Prune reasons. A PRUNE may carry any byte: a reason this build does not
// know prints as a number.
const (
	// PruneUnspecified gives no reason.
	PruneUnspecified PruneReason = 0
	// PruneDuplicate: a message arrived on this eager link after another
	// link had delivered it (Plumtree's rule).
	PruneDuplicate PruneReason = 1
	// PruneOptimize: a lazy path turned out shorter than this eager one by
	// the optimization threshold, and the tree was re-formed.
	PruneOptimize PruneReason = 2
)

// String names the reason as logs print it.
func (r PruneReason) String() string {
	switch r {
	case PruneUnspecified:
		return "unspecified"
	case PruneDuplicate:
		return "duplicate"
	case PruneOptimize:
		return "optimize"
	}
	return fmt.Sprintf("prune-reason-%d", uint8(r))
}

// PullFlags qualify a PULL digest.
type PullFlags uint8

// PULL flags. A PULL with any other bit set is malformed.
const (
	// PullWantDigest asks the receiver to send its own digest back (as a
	// PULL without this flag) besides the messages the sender lacks: a
	// push-pull exchange that ends after one round trip.
	PullWantDigest PullFlags = 1 << 0
	// PullPartial says the digest lists only some of the origins the
	// sender has (it hit MaxDigestOrigins or MaxDigestRanges): it speaks
	// only for the origins from its first listed to its last (an unlisted
	// one between them: the sender has none of its messages); an origin
	// outside says nothing. Without it, an unlisted origin means the
	// sender has none of its messages.
	PullPartial PullFlags = 1 << 1

	pullKnownFlags = PullWantDigest | PullPartial
)

// SeqRange is the sequence numbers First..Last (inclusive) of one origin's
// messages.
type SeqRange struct {
	Origin      NodeID
	First, Last uint64
}

// Control is one control frame: IHAVE, IWANT, GRAFT, PRUNE or PULL, as Kind
// says. It is one flat value rather than a type per kind so that a protocol
// core can hand it to a driver, and a simulator hold millions of them in
// its event queue, without an interface, a box or a pointer beyond its two
// slices (56 bytes on 64-bit). Fields that Kind does not use are zero.
//
// Like a Message, a Control is immutable once handed to a driver: the same
// slices may be shared by several sends.
type Control struct {
	// Kind is the frame type, one for which IsControl holds.
	Kind FrameType
	// Reason is why a PRUNE was sent.
	Reason PruneReason
	// Flags qualify a PULL.
	Flags PullFlags
	// HasHop says that an IHAVE carries Hop: the largest hop at which the
	// sender holds any of IDs, so that a receiver that got one of them
	// along a path longer by some threshold can move to the shorter one
	// (Plumtree's tree optimization; the paper's IHAVE carries the round).
	// One hop per frame, not per id, keeps a Control at 56 bytes; the
	// largest makes a receiver's comparison err on the side of keeping
	// its tree. An IHAVE without it (HasHop false) is the older layout.
	HasHop bool
	Hop    uint16
	// IDs are the message ids of an IHAVE (held), an IWANT (wanted) or a
	// GRAFT (wanted, possibly none). At most MaxControlIDs.
	IDs []MsgID
	// Ranges are a PULL's digest: the sequence numbers the sender already
	// has (delivered, whether or not it still stores them), per origin.
	// Sorted by origin, then First; ranges of one origin neither overlap
	// nor touch. At most MaxDigestOrigins origins and MaxDigestRanges
	// ranges.
	Ranges []SeqRange
}

// Has reports whether c's digest covers seq of origin: whether the PULL's
// sender already has that message. It is a binary search over Ranges.
func (c *Control) Has(origin NodeID, seq uint64) bool {
	i := sort.Search(len(c.Ranges), func(i int) bool {
		r := c.Ranges[i]
		return r.Origin > origin || (r.Origin == origin && r.Last >= seq)
	})
	return i < len(c.Ranges) && c.Ranges[i].Origin == origin && c.Ranges[i].First <= seq
}

// Origins returns how many distinct origins c's digest lists.
func (c *Control) Origins() int {
	n := 0
	for i, r := range c.Ranges {
		if i == 0 || r.Origin != c.Ranges[i-1].Origin {
			n++
		}
	}
	return n
}

// EncodedSize is the number of payload bytes c takes in a frame, for a
// valid c (one AppendControl accepts).
func (c *Control) EncodedSize() int {
	switch c.Kind {
	case FrameIHave, FrameIWant, FrameGraft:
		n := idsHeaderSize + len(c.IDs)*MsgIDSize
		if c.Kind == FrameIHave && c.HasHop {
			n += 2
		}
		return n
	case FramePrune:
		return 1
	case FramePull:
		n := 1 + uvarintLen(uint64(c.Origins()))
		for i := 0; i < len(c.Ranges); {
			j := i + 1
			for j < len(c.Ranges) && c.Ranges[j].Origin == c.Ranges[i].Origin {
				j++
			}
			n += 8 + uvarintLen(uint64(j-i))
			var last uint64
			for k := i; k < j; k++ {
				r := c.Ranges[k]
				skip := r.First
				if k > i {
					skip = r.First - last - 1
				}
				n += uvarintLen(skip) + uvarintLen(r.Last-r.First)
				last = r.Last
			}
			i = j
		}
		return n
	}
	return 0
}

// validate reports why c cannot be encoded.
func (c *Control) validate() error {
	switch c.Kind {
	case FrameIHave, FrameIWant, FrameGraft:
		if len(c.IDs) > MaxControlIDs {
			return fmt.Errorf("%v: %d ids, limit %d", c.Kind, len(c.IDs), MaxControlIDs)
		}
	case FramePrune:
	case FramePull:
		if c.Flags&^pullKnownFlags != 0 {
			return fmt.Errorf("pull: unknown flags %#x", uint8(c.Flags))
		}
		if len(c.Ranges) > MaxDigestRanges {
			return fmt.Errorf("pull: %d ranges, limit %d", len(c.Ranges), MaxDigestRanges)
		}
		if o := c.Origins(); o > MaxDigestOrigins {
			return fmt.Errorf("pull: %d origins, limit %d", o, MaxDigestOrigins)
		}
		for i, r := range c.Ranges {
			if r.Last < r.First {
				return fmt.Errorf("pull: range %d of origin %v ends (%d) before it starts (%d)", i, r.Origin, r.Last, r.First)
			}
			if i == 0 {
				continue
			}
			prev := c.Ranges[i-1]
			switch {
			case r.Origin < prev.Origin:
				return fmt.Errorf("pull: range %d: origin %v after %v, want ascending", i, r.Origin, prev.Origin)
			case r.Origin == prev.Origin && (prev.Last == ^uint64(0) || r.First <= prev.Last+1):
				return fmt.Errorf("pull: ranges %d and %d of origin %v overlap or touch (..%d, %d..)", i-1, i, r.Origin, prev.Last, r.First)
			}
		}
	default:
		return fmt.Errorf("control: %v is not a control frame type", c.Kind)
	}
	return nil
}

// AppendControl appends c as a complete frame to dst. It refuses a Control
// that breaks the limits or the ordering rules above, so whatever it
// encodes, DecodeControl accepts; it ignores the fields Kind does not use.
func AppendControl(dst []byte, c *Control) ([]byte, error) {
	if err := c.validate(); err != nil {
		return dst, err
	}
	dst = appendFrameHeader(dst, c.Kind, c.EncodedSize())
	switch c.Kind {
	case FrameIHave, FrameIWant, FrameGraft:
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(c.IDs)))
		for i := range c.IDs {
			dst = append(dst, c.IDs[i][:]...)
		}
		if c.Kind == FrameIHave && c.HasHop {
			dst = binary.BigEndian.AppendUint16(dst, c.Hop)
		}
	case FramePrune:
		dst = append(dst, byte(c.Reason))
	case FramePull:
		dst = append(dst, byte(c.Flags))
		dst = binary.AppendUvarint(dst, uint64(c.Origins()))
		for i := 0; i < len(c.Ranges); {
			j := i + 1
			for j < len(c.Ranges) && c.Ranges[j].Origin == c.Ranges[i].Origin {
				j++
			}
			dst = binary.BigEndian.AppendUint64(dst, uint64(c.Ranges[i].Origin))
			dst = binary.AppendUvarint(dst, uint64(j-i))
			for k := i; k < j; k++ {
				r := c.Ranges[k]
				skip := r.First
				if k > i {
					skip = r.First - c.Ranges[k-1].Last - 1
				}
				dst = binary.AppendUvarint(dst, skip)
				dst = binary.AppendUvarint(dst, r.Last-r.First)
			}
			i = j
		}
	}
	return dst, nil
}

// DecodeControl parses the payload of a control frame of type t. Every
// count is checked against its limit and against the bytes that remain
// before anything is allocated, and what is allocated is copied out of p,
// so the Control outlives the Reader's buffer.
func DecodeControl(t FrameType, p []byte) (Control, error) {
	c := Control{Kind: t}
	switch t {
	case FrameIHave, FrameIWant, FrameGraft:
		if len(p) < idsHeaderSize {
			return Control{}, fmt.Errorf("%w: %v of %d bytes", ErrMalformed, t, len(p))
		}
		n := int(binary.BigEndian.Uint16(p))
		p = p[idsHeaderSize:]
		if n > MaxControlIDs {
			return Control{}, fmt.Errorf("%w: %v of %d ids, limit %d", ErrFrameTooLarge, t, n, MaxControlIDs)
		}
		if t == FrameIHave && len(p) == n*MsgIDSize+2 {
			c.HasHop, c.Hop = true, binary.BigEndian.Uint16(p[n*MsgIDSize:])
			p = p[:n*MsgIDSize]
		}
		if len(p) != n*MsgIDSize {
			return Control{}, fmt.Errorf("%w: %v of %d ids in %d bytes, want %d", ErrMalformed, t, n, len(p), n*MsgIDSize)
		}
		if n > 0 {
			c.IDs = make([]MsgID, n)
			for i := range c.IDs {
				copy(c.IDs[i][:], p[i*MsgIDSize:])
			}
		}
	case FramePrune:
		if len(p) != 1 {
			return Control{}, fmt.Errorf("%w: prune of %d bytes, want 1", ErrMalformed, len(p))
		}
		c.Reason = PruneReason(p[0])
	case FramePull:
		if len(p) < 1 {
			return Control{}, fmt.Errorf("%w: empty pull", ErrMalformed)
		}
		c.Flags = PullFlags(p[0])
		if c.Flags&^pullKnownFlags != 0 {
			return Control{}, fmt.Errorf("%w: pull with unknown flags %#x", ErrMalformed, p[0])
		}
		// Check everything and count the ranges first, then allocate
		// exactly what the frame holds.
		n, err := decodeDigest(p[1:], nil)
		if err != nil {
			return Control{}, err
		}
		if n > 0 {
			c.Ranges = make([]SeqRange, n)
			if _, err := decodeDigest(p[1:], c.Ranges); err != nil {
				return Control{}, err
			}
		}
	default:
		return Control{}, fmt.Errorf("%w: %v is not a control frame", ErrUnknownType, t)
	}
	return c, nil
}

// decodeDigest parses a PULL digest (after the flags) and returns how many
// ranges it holds, filling out if it is not nil (it must then have room for
// all of them).
func decodeDigest(p []byte, out []SeqRange) (int, error) {
	d := digestReader{p: p}
	origins, err := d.uvarint("origin count")
	if err != nil {
		return 0, err
	}
	if origins > MaxDigestOrigins {
		return 0, fmt.Errorf("%w: pull digest of %d origins, limit %d", ErrFrameTooLarge, origins, MaxDigestOrigins)
	}
	if origins*minOriginSize > uint64(len(d.p)) {
		return 0, fmt.Errorf("%w: pull digest of %d origins in %d bytes", ErrMalformed, origins, len(d.p))
	}
	total := 0
	var prevOrigin NodeID
	for o := range origins {
		if len(d.p) < 8 {
			return 0, fmt.Errorf("%w: pull digest cut short at origin %d", ErrMalformed, o)
		}
		origin := NodeID(binary.BigEndian.Uint64(d.p))
		d.p = d.p[8:]
		if o > 0 && origin <= prevOrigin {
			return 0, fmt.Errorf("%w: pull digest origin %v after %v, want ascending", ErrMalformed, origin, prevOrigin)
		}
		prevOrigin = origin
		ranges, err := d.uvarint("range count")
		if err != nil {
			return 0, err
		}
		switch {
		case ranges == 0:
			return 0, fmt.Errorf("%w: pull digest origin %v with no ranges", ErrMalformed, origin)
		case ranges > uint64(MaxDigestRanges-total):
			return 0, fmt.Errorf("%w: pull digest of more than %d ranges", ErrFrameTooLarge, MaxDigestRanges)
		case ranges*2 > uint64(len(d.p)):
			return 0, fmt.Errorf("%w: pull digest origin %v of %d ranges in %d bytes", ErrMalformed, origin, ranges, len(d.p))
		}
		var last uint64
		for k := range ranges {
			skip, err := d.uvarint("range skip")
			if err != nil {
				return 0, err
			}
			span, err := d.uvarint("range span")
			if err != nil {
				return 0, err
			}
			first := skip
			if k > 0 {
				if skip == 0 {
					return 0, fmt.Errorf("%w: pull digest origin %v has touching ranges", ErrMalformed, origin)
				}
				// first = last + 1 + skip, refused if it wraps.
				if last == ^uint64(0) || skip > ^uint64(0)-(last+1) {
					return 0, fmt.Errorf("%w: pull digest origin %v range past the largest sequence number", ErrMalformed, origin)
				}
				first = last + 1 + skip
			}
			if span > ^uint64(0)-first {
				return 0, fmt.Errorf("%w: pull digest origin %v range past the largest sequence number", ErrMalformed, origin)
			}
			last = first + span
			if out != nil {
				out[total] = SeqRange{Origin: origin, First: first, Last: last}
			}
			total++
		}
	}
	if len(d.p) != 0 {
		return 0, fmt.Errorf("%w: %d bytes after the pull digest", ErrMalformed, len(d.p))
	}
	return total, nil
}

// digestReader reads canonical uvarints off a digest.
type digestReader struct{ p []byte }

func (d *digestReader) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.p)
	switch {
	case n == 0:
		return 0, fmt.Errorf("%w: pull digest cut short in a %s", ErrMalformed, what)
	case n < 0:
		return 0, fmt.Errorf("%w: pull digest %s overflows 64 bits", ErrMalformed, what)
	case n != uvarintLen(v):
		return 0, fmt.Errorf("%w: pull digest %s not in its shortest form", ErrMalformed, what)
	}
	d.p = d.p[n:]
	return v, nil
}

// uvarintLen is the length of v's shortest uvarint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
