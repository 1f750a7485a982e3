package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gossipmesh/wire"
)

func testMessage(body string) *wire.Message {
	m := &wire.Message{Origin: 0x0102030405060708, Seq: 42, Hop: 3, PublishedAt: 1_700_000_000_123_456_789, Body: []byte(body)}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	return m
}

func TestRoundTrip(t *testing.T) {
	hello := wire.Hello{PublicKey: [32]byte{1, 2, 3}, Nonce: [32]byte{31: 9}, ListenAddr: "127.0.0.1:7001"}
	var stream []byte
	stream, err := wire.AppendHello(stream, hello)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*wire.Message{testMessage("hello, mesh"), testMessage(""), testMessage(strings.Repeat("x", 1000))}
	for _, m := range msgs {
		stream = wire.AppendMessage(stream, m)
	}
	r := wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame)

	f, err := r.ReadFrame()
	if err != nil || f.Type != wire.FrameHello {
		t.Fatalf("first frame: %v, %v; want a hello", f.Type, err)
	}
	got, err := wire.DecodeHello(f.Payload)
	if err != nil || got.PublicKey != hello.PublicKey || got.Nonce != hello.Nonce || got.ListenAddr != hello.ListenAddr || !slices.Equal(got.Protocols, wire.Protocols()) {
		t.Fatalf("hello: got %+v, %v; want %+v speaking %v", got, err, hello, wire.Protocols())
	}
	for i, want := range msgs {
		f, err := r.ReadFrame()
		if err != nil || f.Type != wire.FrameMessage {
			t.Fatalf("frame %d: %v, %v; want a message", i, f.Type, err)
		}
		m, err := wire.DecodeMessage(f.Payload, wire.DefaultMaxBody)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.ID != want.ID || m.Origin != want.Origin || m.Seq != want.Seq || m.Hop != want.Hop || m.PublishedAt != want.PublishedAt || !bytes.Equal(m.Body, want.Body) {
			t.Errorf("message %d: got %+v, want %+v", i, m, *want)
		}
		if got := wire.ComputeMsgID(m.Origin, m.Seq, m.Body); got != m.ID {
			t.Errorf("message %d: id does not match content after the round trip", i)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

// TestDecodedBodyOutlivesBuffer: the reader reuses its buffer, so a decoded
// body must be a copy.
func TestDecodedBodyOutlivesBuffer(t *testing.T) {
	stream := wire.AppendMessage(nil, testMessage("first"))
	stream = wire.AppendMessage(stream, testMessage("other"))
	r := wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame)
	f, _ := r.ReadFrame()
	m, err := wire.DecodeMessage(f.Payload, wire.DefaultMaxBody)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "first" {
		t.Errorf("body changed under the message: %q", m.Body)
	}
}

func rawFrame(length uint32, rest ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, length), rest...)
}

func TestReadFrameErrors(t *testing.T) {
	const limit = 1024
	okMsg := wire.AppendMessage(nil, testMessage("body"))
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"previous version", rawFrame(2, 1, byte(wire.FrameHello)), wire.ErrUnknownVersion},
		{"next version", rawFrame(2, wire.Version+1, byte(wire.FrameHello)), wire.ErrUnknownVersion},
		{"version zero", rawFrame(3, 0, byte(wire.FrameMessage), 0), wire.ErrUnknownVersion},
		{"unknown type", rawFrame(2, wire.Version, 99), wire.ErrUnknownType},
		{"type zero", rawFrame(2, wire.Version, 0), wire.ErrUnknownType},
		{"type after the control types", rawFrame(2, wire.Version, byte(wire.FrameProof)+1), wire.ErrUnknownType},
		{"over the limit by one", rawFrame(limit - 4 + 1), wire.ErrFrameTooLarge},
		{"four GiB length prefix", rawFrame(0xFFFFFFFF), wire.ErrFrameTooLarge},
		{"length shorter than the header", rawFrame(1, wire.Version), wire.ErrFrameTooShort},
		{"zero length", rawFrame(0), wire.ErrFrameTooShort},
		{"truncated length prefix", []byte{0, 0}, wire.ErrTruncated},
		{"truncated header", rawFrame(2, wire.Version), wire.ErrTruncated},
		{"truncated payload", okMsg[:len(okMsg)-1], wire.ErrTruncated},
		{"length only", rawFrame(100), wire.ErrTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := wire.NewReader(bytes.NewReader(tc.input), limit)
			_, err := r.ReadFrame()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestExactLimit: a frame of exactly the limit is fine; the default limit
// carries the default maximum body, signed.
func TestExactLimit(t *testing.T) {
	m := testMessage(strings.Repeat("b", wire.DefaultMaxBody))
	m.Auth = &wire.Auth{}
	stream := wire.AppendMessage(nil, m)
	if len(stream) != wire.DefaultMaxFrame {
		t.Fatalf("a max-body message is a %d-byte frame, want DefaultMaxFrame = %d", len(stream), wire.DefaultMaxFrame)
	}
	r := wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.DecodeMessage(f.Payload, wire.DefaultMaxBody); err != nil {
		t.Fatal(err)
	}
	r = wire.NewReader(bytes.NewReader(stream), wire.DefaultMaxFrame-1)
	if _, err := r.ReadFrame(); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("one byte under the limit: %v, want ErrFrameTooLarge", err)
	}
}

// TestHugePrefixAllocatesNothing: a peer's word is not a reason to
// allocate. A 4 GiB length prefix is refused before any buffer is made.
func TestHugePrefixAllocatesNothing(t *testing.T) {
	input := rawFrame(0xFFFFFFF0, wire.Version, byte(wire.FrameMessage))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := wire.NewReader(bytes.NewReader(input), wire.DefaultMaxFrame)
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	// The reader's own 64 KiB read buffer, and change.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("reading a 4 GiB prefix allocated %d bytes", grew)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := wire.AppendMessage(nil, testMessage("abc"))[6:]
	longBody := wire.AppendMessage(nil, testMessage("0123456789"))[6:]
	cases := []struct {
		name string
		err  error
	}{
		{"hello too short", func() error { _, err := wire.DecodeHello([]byte{1, 2}); return err }()},
		{"hello address length beyond the payload", func() error {
			_, err := wire.DecodeHello(append(make([]byte, 8), 5, 'a'))
			return err
		}()},
		{"hello with trailing bytes", func() error {
			_, err := wire.DecodeHello(append(make([]byte, 8), 1, 'a', 1, 0, 1, 0, 1, 'b'))
			return err
		}()},
		{"message header cut short", func() error { _, err := wire.DecodeMessage(good[:20], 100); return err }()},
		{"message body length disagrees", func() error { _, err := wire.DecodeMessage(good[:len(good)-1], 100); return err }()},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, wire.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, tc.err)
		}
	}
	if _, err := wire.DecodeMessage(longBody, 5); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("body over maxBody: got %v, want ErrFrameTooLarge", err)
	}
	if _, err := wire.AppendHello(nil, wire.Hello{ListenAddr: strings.Repeat("a", 256)}); err == nil {
		t.Error("a 256-byte listen address was accepted")
	}
}

func TestIDs(t *testing.T) {
	id := wire.NodeID(0x00ab00cd00ef0012)
	if s := id.String(); s != "00ab00cd00ef0012" {
		t.Errorf("NodeID.String: %q", s)
	}
	if got, err := wire.ParseNodeID(id.String()); err != nil || got != id {
		t.Errorf("ParseNodeID: %v, %v", got, err)
	}
	for _, bad := range []string{"", "abc", "00ab00cd00ef00120", "zzab00cd00ef0012"} {
		if _, err := wire.ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q) succeeded", bad)
		}
	}
	m := testMessage("x")
	if got, err := wire.ParseMsgID(m.ID.String()); err != nil || got != m.ID {
		t.Errorf("ParseMsgID: %v, %v", got, err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 32)} {
		if _, err := wire.ParseMsgID(bad); err == nil {
			t.Errorf("ParseMsgID(%q) succeeded", bad)
		}
	}
	if wire.ComputeMsgID(1, 1, []byte("a")) == wire.ComputeMsgID(1, 2, []byte("a")) {
		t.Error("ids of different sequence numbers collide")
	}
	if wire.ComputeMsgID(1, 1, []byte("a")) == wire.ComputeMsgID(2, 1, []byte("a")) {
		t.Error("ids of different origins collide")
	}
}
