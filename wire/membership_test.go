package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"gossipmesh/wire"
)

// checkMembership decodes a membership payload and checks that it
// re-encodes to raw, the whole frame: the decoder accepts nothing the
// encoder would not write.
func checkMembership(t *testing.T, typ wire.FrameType, payload, raw []byte) {
	t.Helper()
	switch typ {
	case wire.FramePing, wire.FramePong:
		if err := wire.DecodeHeartbeat(typ, payload); err != nil {
			if !isCodecError(err) {
				t.Fatalf("DecodeHeartbeat: unexpected error %v", err)
			}
			return
		}
		if again := wire.AppendHeartbeat(nil, typ); !bytes.Equal(again, raw) {
			t.Fatalf("%v re-encodes to %x; read from %x", typ, again, raw)
		}
	case wire.FramePeerExchange:
		px, err := wire.DecodePeerExchange(payload)
		if err != nil {
			if !isCodecError(err) {
				t.Fatalf("DecodePeerExchange: unexpected error %v", err)
			}
			return
		}
		again, err := wire.AppendPeerExchange(nil, px)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("peer exchange %+v re-encodes to %x, %v; read from %x", px, again, err, raw)
		}
	default:
		if err := wire.DecodeHeartbeat(typ, payload); err == nil {
			t.Fatalf("DecodeHeartbeat accepted a %v", typ)
		}
	}
}

// FuzzDecodeMembership feeds arbitrary payloads to the membership
// decoders: nothing may panic, every failure is a codec error, and what
// decodes re-encodes to the frame it came from.
func FuzzDecodeMembership(f *testing.F) {
	px, err := wire.AppendPeerExchange(nil, wire.PeerExchange{Need: true, Entries: []wire.PeerEntry{{ID: 1, Addr: "127.0.0.1:7001"}, {ID: 0xfeed, Addr: "[::1]:9"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(wire.FramePeerExchange), px[6:])
	f.Add(byte(wire.FramePing), []byte{})
	f.Add(byte(wire.FramePong), []byte{1})
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		raw := append(binary.BigEndian.AppendUint32(nil, uint32(2+len(payload))), wire.Version, typ)
		checkMembership(t, wire.FrameType(typ), payload, append(raw, payload...))
	})
}

func TestPeerExchangeRoundTrip(t *testing.T) {
	in := []wire.PeerEntry{{ID: 7, Addr: "127.0.0.1:7001"}, {ID: 9, Addr: strings.Repeat("a", 255)}}
	b, err := wire.AppendPeerExchange(nil, wire.PeerExchange{Need: true, Entries: in})
	if err != nil {
		t.Fatal(err)
	}
	f, err := wire.NewReader(bytes.NewReader(b), 1<<16).ReadFrame()
	if err != nil || f.Type != wire.FramePeerExchange {
		t.Fatalf("ReadFrame: %v %v", f.Type, err)
	}
	px, err := wire.DecodePeerExchange(f.Payload)
	if out := px.Entries; err != nil || !px.Need || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("decoded %+v, %v; want %+v", px, err, in)
	}
}

func TestPeerExchangeLimits(t *testing.T) {
	many := make([]wire.PeerEntry, wire.MaxPeerExchange+1)
	for i := range many {
		many[i] = wire.PeerEntry{ID: wire.NodeID(i + 1), Addr: "127.0.0.1:1"}
	}
	if _, err := wire.AppendPeerExchange(nil, wire.PeerExchange{Entries: many}); err == nil {
		t.Error("encoded more than MaxPeerExchange entries")
	}
	if _, err := wire.AppendPeerExchange(nil, wire.PeerExchange{Entries: []wire.PeerEntry{{ID: 0, Addr: "x:1"}}}); err == nil {
		t.Error("encoded a zero id")
	}
	cases := map[string]struct {
		p    []byte
		want error
	}{
		"empty":        {nil, wire.ErrTruncated},
		"no count":     {[]byte{0}, wire.ErrTruncated},
		"bad flags":    {[]byte{2, 0}, wire.ErrMalformed},
		"count over":   {[]byte{0, wire.MaxPeerExchange + 1}, wire.ErrMalformed},
		"truncated id": {[]byte{0, 1, 0, 0, 0}, wire.ErrTruncated},
		"zero id":      {append([]byte{0, 1}, append(make([]byte, 8), 1, 'x')...), wire.ErrMalformed},
		"short addr":   {append([]byte{0, 1}, append(binary.BigEndian.AppendUint64(nil, 5), 4, 'x')...), wire.ErrTruncated},
		"trailing":     {[]byte{0, 0, 1}, wire.ErrMalformed},
	}
	for name, c := range cases {
		if _, err := wire.DecodePeerExchange(c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
	if err := wire.DecodeHeartbeat(wire.FramePing, []byte{1}); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("ping with payload: %v", err)
	}
}
