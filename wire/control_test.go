package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"gossipmesh/wire"
)

func ids(n int) []wire.MsgID {
	out := make([]wire.MsgID, n)
	for i := range out {
		out[i] = wire.ComputeMsgID(wire.NodeID(i+1), uint64(i), nil)
	}
	return out
}

// readControl reads one frame of b with the default frame limit and
// decodes it as a control frame.
func readControl(t *testing.T, b []byte) (wire.Control, error) {
	t.Helper()
	f, err := wire.NewReader(bytes.NewReader(b), wire.DefaultMaxFrame).ReadFrame()
	if err != nil {
		return wire.Control{}, err
	}
	return wire.DecodeControl(f.Type, f.Payload)
}

func controlCases() []struct {
	name string
	c    wire.Control
} {
	max := uint64(math.MaxUint64)
	return []struct {
		name string
		c    wire.Control
	}{
		{"ihave one", wire.Control{Kind: wire.FrameIHave, IDs: ids(1)}},
		{"ihave none", wire.Control{Kind: wire.FrameIHave}},
		{"ihave at the limit", wire.Control{Kind: wire.FrameIHave, IDs: ids(wire.MaxControlIDs)}},
		{"ihave with its hop", wire.Control{Kind: wire.FrameIHave, IDs: ids(2), HasHop: true, Hop: 7}},
		{"ihave at the limit with its hop", wire.Control{Kind: wire.FrameIHave, IDs: ids(wire.MaxControlIDs), HasHop: true, Hop: math.MaxUint16}},
		{"ihave of no id with a hop", wire.Control{Kind: wire.FrameIHave, HasHop: true}},
		{"iwant", wire.Control{Kind: wire.FrameIWant, IDs: ids(3)}},
		{"graft without ids", wire.Control{Kind: wire.FrameGraft}},
		{"graft with ids", wire.Control{Kind: wire.FrameGraft, IDs: ids(2)}},
		{"prune unspecified", wire.Control{Kind: wire.FramePrune}},
		{"prune duplicate", wire.Control{Kind: wire.FramePrune, Reason: wire.PruneDuplicate}},
		{"prune unknown reason", wire.Control{Kind: wire.FramePrune, Reason: 200}},
		{"pull, empty digest", wire.Control{Kind: wire.FramePull, Flags: wire.PullWantDigest}},
		{"pull, one origin, gaps", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{
			{Origin: 7, First: 1, Last: 10}, {Origin: 7, First: 12, Last: 12}, {Origin: 7, First: 300, Last: 100_000}}}},
		{"pull, several origins, both flags", wire.Control{Kind: wire.FramePull, Flags: wire.PullWantDigest | wire.PullPartial, Ranges: []wire.SeqRange{
			{Origin: 1, First: 0, Last: 0}, {Origin: 2, First: 5, Last: 9}, {Origin: 2, First: 11, Last: 20}, {Origin: math.MaxUint64, First: 1, Last: 1}}}},
		{"pull, the whole sequence space", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 3, First: 0, Last: max}}}},
		{"pull, the last sequence number", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{
			{Origin: 3, First: 0, Last: max - 2}, {Origin: 3, First: max, Last: max}}}},
	}
}

// TestControlRoundTrip: every kind of control frame reads back as it was
// written, through the Reader, and EncodedSize is its payload.
func TestControlRoundTrip(t *testing.T) {
	var stream []byte
	for _, tc := range controlCases() {
		b, err := wire.AppendControl(nil, &tc.c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(b) > wire.MaxControlFrame {
			t.Errorf("%s: %d-byte frame, over MaxControlFrame", tc.name, len(b))
		}
		if got := len(b) - 6; got != tc.c.EncodedSize() {
			t.Errorf("%s: payload of %d bytes, EncodedSize says %d", tc.name, got, tc.c.EncodedSize())
		}
		stream = append(stream, b...)
	}
	// All in one stream: each frame ends where the next starts.
	r := wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame)
	for _, tc := range controlCases() {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Type != tc.c.Kind || !f.Type.IsControl() {
			t.Fatalf("%s: frame type %v", tc.name, f.Type)
		}
		got, err := wire.DecodeControl(f.Type, f.Payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.c) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.c)
		}
	}
}

// TestDecodedControlOutlivesBuffer: ids and ranges are copied out of the
// Reader's buffer.
func TestDecodedControlOutlivesBuffer(t *testing.T) {
	first, _ := wire.AppendControl(nil, &wire.Control{Kind: wire.FrameIHave, IDs: ids(2)})
	pull := wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 5, First: 1, Last: 9}}}
	second, _ := wire.AppendControl(nil, &pull)
	other, _ := wire.AppendControl(nil, &wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 6, First: 2, Last: 3}}})
	r := wire.NewReader(bytes.NewReader(append(append(append(first, second...), other...), first...)), wire.DefaultMaxFrame)
	var got []wire.Control
	for range 4 {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		c, err := wire.DecodeControl(f.Type, f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if !reflect.DeepEqual(got[0].IDs, ids(2)) || !reflect.DeepEqual(got[1], pull) {
		t.Errorf("decoded controls changed under later reads: %+v", got[:2])
	}
}

// TestControlWorstCaseFitsTheFrame: the largest control frame of each kind
// the limits allow, with the longest varints, fits MaxControlFrame.
func TestControlWorstCaseFitsTheFrame(t *testing.T) {
	var ranges []wire.SeqRange
	for o := range wire.MaxDigestOrigins {
		origin := wire.NodeID(o + 1)
		per := 1
		if o < wire.MaxDigestRanges-wire.MaxDigestOrigins {
			per = 2
		}
		// Ten-byte skips and spans where they fit: a first range from
		// 2^63 with a long span, a second at the very top.
		ranges = append(ranges, wire.SeqRange{Origin: origin, First: 1 << 63, Last: 1<<63 + 1<<62})
		if per == 2 {
			ranges = append(ranges, wire.SeqRange{Origin: origin, First: math.MaxUint64, Last: math.MaxUint64})
		}
	}
	if len(ranges) != wire.MaxDigestRanges {
		t.Fatalf("built %d ranges, want %d", len(ranges), wire.MaxDigestRanges)
	}
	worst := []wire.Control{
		{Kind: wire.FrameIHave, IDs: ids(wire.MaxControlIDs)},
		{Kind: wire.FrameGraft, IDs: ids(wire.MaxControlIDs)},
		{Kind: wire.FramePull, Flags: wire.PullWantDigest | wire.PullPartial, Ranges: ranges},
	}
	for _, c := range worst {
		b, err := wire.AppendControl(nil, &c)
		if err != nil {
			t.Fatalf("%v: %v", c.Kind, err)
		}
		if len(b) > wire.MaxControlFrame {
			t.Errorf("%v: largest frame is %d bytes, MaxControlFrame %d", c.Kind, len(b), wire.MaxControlFrame)
		}
		got, err := wire.NewReader(bytes.NewReader(b), wire.MaxControlFrame).ReadFrame()
		if err != nil {
			t.Fatalf("%v: %v", c.Kind, err)
		}
		if back, err := wire.DecodeControl(got.Type, got.Payload); err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("%v: largest frame does not read back: %v", c.Kind, err)
		}
	}
}

func TestAppendControlRefuses(t *testing.T) {
	cases := []struct {
		name string
		c    wire.Control
	}{
		{"not a control type", wire.Control{Kind: wire.FrameMessage}},
		{"hello", wire.Control{Kind: wire.FrameHello}},
		{"ihave over the limit", wire.Control{Kind: wire.FrameIHave, IDs: ids(wire.MaxControlIDs + 1)}},
		{"iwant over the limit", wire.Control{Kind: wire.FrameIWant, IDs: ids(wire.MaxControlIDs + 1)}},
		{"pull with an unknown flag", wire.Control{Kind: wire.FramePull, Flags: 4}},
		{"pull range ending before it starts", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 1, First: 5, Last: 4}}}},
		{"pull origins descending", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 2, First: 1, Last: 1}, {Origin: 1, First: 1, Last: 1}}}},
		{"pull ranges overlapping", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 1, First: 1, Last: 5}, {Origin: 1, First: 5, Last: 9}}}},
		{"pull ranges touching", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 1, First: 1, Last: 5}, {Origin: 1, First: 6, Last: 9}}}},
		{"pull ranges out of order", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 1, First: 10, Last: 12}, {Origin: 1, First: 1, Last: 2}}}},
		{"pull range after the top", wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{{Origin: 1, First: 0, Last: math.MaxUint64}, {Origin: 1, First: 0, Last: 0}}}},
		{"pull over the range limit", wire.Control{Kind: wire.FramePull, Ranges: spread(1, wire.MaxDigestRanges+1)}},
		{"pull over the origin limit", wire.Control{Kind: wire.FramePull, Ranges: spread(wire.MaxDigestOrigins+1, 1)}},
	}
	for _, tc := range cases {
		if b, err := wire.AppendControl(nil, &tc.c); err == nil {
			t.Errorf("%s: encoded as %x", tc.name, b[:min(len(b), 16)])
		}
	}
	// At the limits, it encodes.
	for _, c := range []wire.Control{
		{Kind: wire.FramePull, Ranges: spread(1, wire.MaxDigestRanges)},
		{Kind: wire.FramePull, Ranges: spread(wire.MaxDigestOrigins, 2)},
	} {
		if _, err := wire.AppendControl(nil, &c); err != nil {
			t.Errorf("%d ranges over %d origins: %v", len(c.Ranges), c.Origins(), err)
		}
	}
}

// spread returns per ranges for each of origins origins: seqs 1, 3, 5, ...
func spread(origins, per int) []wire.SeqRange {
	var out []wire.SeqRange
	for o := range origins {
		for k := range per {
			s := uint64(2*k + 1)
			out = append(out, wire.SeqRange{Origin: wire.NodeID(o + 1), First: s, Last: s})
		}
	}
	return out
}

// idsPayload is an IHAVE/IWANT/GRAFT payload by hand: a count and n ids.
func idsPayload(count uint16, n int) []byte {
	return append(binary.BigEndian.AppendUint16(nil, count), make([]byte, n*wire.MsgIDSize)...)
}

// origin marks a digest part as an 8-byte origin id rather than a uvarint.
type origin uint64

// digest builds a PULL payload by hand: the flags, then each part as a
// uvarint (int, uint64), an origin id (origin) or raw bytes ([]byte).
func digest(flags byte, parts ...any) []byte {
	p := []byte{flags}
	for _, x := range parts {
		switch v := x.(type) {
		case origin:
			p = binary.BigEndian.AppendUint64(p, uint64(v))
		case int:
			p = binary.AppendUvarint(p, uint64(v))
		case uint64:
			p = binary.AppendUvarint(p, v)
		case []byte:
			p = append(p, v...)
		}
	}
	return p
}

func TestDecodeControlErrors(t *testing.T) {
	max := uint64(math.MaxUint64)
	cases := []struct {
		name string
		t    wire.FrameType
		p    []byte
		want error
	}{
		{"ihave without a count", wire.FrameIHave, []byte{0}, wire.ErrMalformed},
		{"ihave count beyond the bytes", wire.FrameIHave, idsPayload(3, 2), wire.ErrMalformed},
		{"ihave with trailing bytes", wire.FrameIHave, append(idsPayload(1, 1), 0), wire.ErrMalformed},
		{"ihave half an id", wire.FrameIHave, idsPayload(1, 1)[:10], wire.ErrMalformed},
		{"iwant over the id limit", wire.FrameIWant, idsPayload(wire.MaxControlIDs+1, 0), wire.ErrFrameTooLarge},
		{"graft count 65535", wire.FrameGraft, idsPayload(65535, 1), wire.ErrFrameTooLarge},
		{"prune empty", wire.FramePrune, nil, wire.ErrMalformed},
		{"prune of two bytes", wire.FramePrune, []byte{1, 2}, wire.ErrMalformed},
		{"pull empty", wire.FramePull, nil, wire.ErrMalformed},
		{"pull without an origin count", wire.FramePull, []byte{0}, wire.ErrMalformed},
		{"pull unknown flag", wire.FramePull, digest(0x80, 0), wire.ErrMalformed},
		{"pull origin count beyond the bytes", wire.FramePull, digest(0, 2, origin(1), 1, 0, 0), wire.ErrMalformed},
		{"pull over the origin limit", wire.FramePull, digest(0, wire.MaxDigestOrigins+1), wire.ErrFrameTooLarge},
		{"pull origin count of 2^63", wire.FramePull, digest(0, uint64(1)<<63), wire.ErrFrameTooLarge},
		{"pull origin with no ranges", wire.FramePull, digest(0, 1, origin(1), 0, []byte{0, 0}), wire.ErrMalformed},
		{"pull range count beyond the bytes", wire.FramePull, digest(0, 1, origin(1), 5, 0, 0), wire.ErrMalformed},
		{"pull over the range limit", wire.FramePull, digest(0, 1, origin(1), wire.MaxDigestRanges+1, make([]byte, 2*wire.MaxDigestRanges+2)), wire.ErrFrameTooLarge},
		{"pull origins repeated", wire.FramePull, digest(0, 2, origin(1), 1, 0, 0, origin(1), 1, 5, 0), wire.ErrMalformed},
		{"pull origins descending", wire.FramePull, digest(0, 2, origin(2), 1, 0, 0, origin(1), 1, 0, 0), wire.ErrMalformed},
		{"pull touching ranges", wire.FramePull, digest(0, 1, origin(1), 2, 1, 4, 0, 3), wire.ErrMalformed},
		{"pull span past the top", wire.FramePull, digest(0, 1, origin(1), 1, 2, max), wire.ErrMalformed},
		{"pull skip past the top", wire.FramePull, digest(0, 1, origin(1), 2, 0, max-5, 5, 0), wire.ErrMalformed},
		{"pull range after the top", wire.FramePull, digest(0, 1, origin(1), 2, 0, max, 1, 0), wire.ErrMalformed},
		{"pull cut inside a varint", wire.FramePull, digest(0, 1, origin(1), 1, 0, []byte{0x80}), wire.ErrMalformed},
		{"pull cut inside an origin", wire.FramePull, digest(0, 1, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})[:8], wire.ErrMalformed},
		{"pull varint overflows", wire.FramePull, digest(0, 1, origin(1), 1, 0, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), wire.ErrMalformed},
		{"pull varint not shortest", wire.FramePull, digest(0, 1, origin(1), 1, []byte{0x81, 0x00}, 0), wire.ErrMalformed},
		{"pull count not shortest", wire.FramePull, digest(0, []byte{0x81, 0x00}, origin(1), 1, 0, 0), wire.ErrMalformed},
		{"pull trailing bytes", wire.FramePull, digest(0, 1, origin(1), 1, 0, 0, 0), wire.ErrMalformed},
		{"a message is not a control", wire.FrameMessage, idsPayload(0, 0), wire.ErrUnknownType},
		{"a hello is not a control", wire.FrameHello, idsPayload(0, 0), wire.ErrUnknownType},
		{"unknown type", wire.FramePull + 1, idsPayload(0, 0), wire.ErrUnknownType},
	}
	for _, tc := range cases {
		_, err := wire.DecodeControl(tc.t, tc.p)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// The hand-built encodings the error cases vary are valid ones.
	for _, p := range [][]byte{digest(0, 2, origin(1), 1, 0, 0, origin(2), 2, 1, 4, 1, 3), idsPayload(2, 2), digest(0, 0)} {
		typ := wire.FramePull
		if len(p) == 2+2*wire.MsgIDSize {
			typ = wire.FrameIWant
		}
		if _, err := wire.DecodeControl(typ, p); err != nil {
			t.Errorf("valid payload %x: %v", p, err)
		}
	}
}

// TestDecodeControlAllocatesOnlyWhatArrived: a count is a peer's word. A
// frame that claims the largest counts but holds a few bytes allocates
// next to nothing; a valid one allocates once, exactly its ids or ranges.
func TestDecodeControlAllocatesOnlyWhatArrived(t *testing.T) {
	liars := []struct {
		t wire.FrameType
		p []byte
	}{
		{wire.FrameIHave, idsPayload(wire.MaxControlIDs, 1)},
		{wire.FramePull, digest(0, wire.MaxDigestOrigins, origin(1), 1, 0, 0)},
		{wire.FramePull, digest(0, 1, origin(1), wire.MaxDigestRanges, 0, 0)},
	}
	for _, l := range liars {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			if _, err := wire.DecodeControl(l.t, l.p); err == nil {
				t.Fatalf("%v %x decoded", l.t, l.p)
			}
		}
		runtime.ReadMemStats(&after)
		// Error values and their text only: far below one claimed
		// list (64,000 bytes of ids, 48 KiB of ranges).
		if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 2048 {
			t.Errorf("%v claiming a large count allocated %d bytes per decode", l.t, per)
		}
	}
	pull := wire.Control{Kind: wire.FramePull, Ranges: spread(3, 4)}
	b, _ := wire.AppendControl(nil, &pull)
	if n := testing.AllocsPerRun(100, func() { wire.DecodeControl(wire.FramePull, b[6:]) }); n != 1 {
		t.Errorf("decoding a 12-range pull took %v allocations, want 1", n)
	}
	ihave, _ := wire.AppendControl(nil, &wire.Control{Kind: wire.FrameIHave, IDs: ids(10)})
	if n := testing.AllocsPerRun(100, func() { wire.DecodeControl(wire.FrameIHave, ihave[6:]) }); n != 1 {
		t.Errorf("decoding a 10-id ihave took %v allocations, want 1", n)
	}
}

func TestControlHas(t *testing.T) {
	c := wire.Control{Kind: wire.FramePull, Ranges: []wire.SeqRange{
		{Origin: 1, First: 1, Last: 3}, {Origin: 1, First: 7, Last: 7}, {Origin: 4, First: 0, Last: math.MaxUint64}}}
	cases := []struct {
		origin wire.NodeID
		seq    uint64
		want   bool
	}{
		{1, 0, false}, {1, 1, true}, {1, 3, true}, {1, 4, false}, {1, 6, false}, {1, 7, true}, {1, 8, false},
		{2, 1, false}, {0, 1, false}, {4, 0, true}, {4, math.MaxUint64, true}, {5, 1, false},
	}
	for _, tc := range cases {
		if got := c.Has(tc.origin, tc.seq); got != tc.want {
			t.Errorf("Has(%d, %d) = %v, want %v", tc.origin, tc.seq, got, tc.want)
		}
	}
	if n := c.Origins(); n != 2 {
		t.Errorf("Origins() = %d, want 2", n)
	}
	var empty wire.Control
	if empty.Has(1, 1) || empty.Origins() != 0 {
		t.Error("an empty digest has something")
	}
}

// TestControlIsSmall: a simulator holds control frames by the million in
// its event queue; the value stays at three bytes and two slice headers.
func TestControlIsSmall(t *testing.T) {
	if size := unsafe.Sizeof(wire.Control{}); size > 56 {
		t.Errorf("wire.Control is %d bytes, want at most 56", size)
	}
}

// TestControlRoundTripProperty: random valid controls of every kind encode,
// decode to the same value, and re-encode to the same bytes.
func TestControlRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		c := randomControl(rng)
		b, err := wire.AppendControl(nil, &c)
		if err != nil {
			t.Fatalf("case %d (%+v): %v", i, c, err)
		}
		got, err := readControl(t, b)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("case %d: got %+v, want %+v", i, got, c)
		}
		again, _ := wire.AppendControl(nil, &got)
		if !bytes.Equal(again, b) {
			t.Fatalf("case %d: re-encodes differently", i)
		}
		for _, r := range c.Ranges {
			if !got.Has(r.Origin, r.First) || !got.Has(r.Origin, r.Last) || (r.First > 0 && got.Has(r.Origin, r.First-1)) {
				t.Fatalf("case %d: Has disagrees with range %+v", i, r)
			}
		}
	}
}

func randomControl(rng *rand.Rand) wire.Control {
	kinds := []wire.FrameType{wire.FrameIHave, wire.FrameIWant, wire.FrameGraft, wire.FramePrune, wire.FramePull}
	c := wire.Control{Kind: kinds[rng.IntN(len(kinds))]}
	switch c.Kind {
	case wire.FramePrune:
		c.Reason = wire.PruneReason(rng.IntN(256))
	case wire.FramePull:
		c.Flags = wire.PullFlags(rng.IntN(4))
		var o wire.NodeID
		for range rng.IntN(20) {
			// At most 20 steps of less than 2^59: no wrap.
			o += wire.NodeID(1 + rng.Uint64N(1<<uint(rng.IntN(59))))
			seq := rng.Uint64N(1 << uint(rng.IntN(40)))
			for range 1 + rng.IntN(6) {
				span := rng.Uint64N(1 << uint(rng.IntN(20)))
				c.Ranges = append(c.Ranges, wire.SeqRange{Origin: o, First: seq, Last: seq + span})
				seq += span + 2 + rng.Uint64N(1<<uint(rng.IntN(20)))
			}
		}
	default:
		if n := rng.IntN(50); n > 0 {
			c.IDs = make([]wire.MsgID, n)
			for i := range c.IDs {
				for j := range c.IDs[i] {
					c.IDs[i][j] = byte(rng.Uint32())
				}
			}
		}
		if c.Kind == wire.FrameIHave && rng.IntN(2) == 0 {
			c.HasHop, c.Hop = true, uint16(rng.Uint32())
		}
	}
	return c
}
