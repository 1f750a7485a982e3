package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"gossipmesh/wire"
)

// fuzzMaxBody keeps the fuzzer's frames small, so it explores structure
// rather than size.
const fuzzMaxBody = 4096

// FuzzReadFrame feeds arbitrary bytes to the frame reader and the payload
// decoders, as a hostile peer would. It checks that nothing panics, that
// every failure is one of the codec's own errors, and that whatever decodes
// re-encodes to exactly the bytes it came from.
func FuzzReadFrame(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzReadFrame.
	hello, _ := wire.AppendHello(nil, wire.Hello{PublicKey: [32]byte{7}, Nonce: [32]byte{8}, ListenAddr: "127.0.0.1:7001"})
	f.Add(hello)
	f.Add(append(hello, wire.AppendProof(nil, wire.Proof{Signature: [64]byte{1, 2}})...))
	f.Add(wire.AppendMessage(nil, testMessage("seed")))
	f.Add(wire.AppendMessage(nil, signedTestMessage("signed seed")))
	f.Add(append(hello, wire.AppendMessage(nil, testMessage(""))...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	for _, c := range seedControls() {
		b, err := wire.AppendControl(nil, &c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.NewReader(bytes.NewReader(data), fuzzMaxBody+wire.FrameOverhead)
		consumed := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				if err != io.EOF && !isCodecError(err) {
					t.Fatalf("ReadFrame: unexpected error %v", err)
				}
				if err == io.EOF && consumed != len(data) {
					t.Fatalf("io.EOF after %d of %d bytes", consumed, len(data))
				}
				return
			}
			raw := data[consumed : consumed+4+2+len(fr.Payload)]
			consumed += len(raw)
			switch fr.Type {
			case wire.FrameHello:
				h, err := wire.DecodeHello(fr.Payload)
				if err != nil {
					if !isCodecError(err) {
						t.Fatalf("DecodeHello: unexpected error %v", err)
					}
					continue
				}
				again, err := wire.AppendHello(nil, h)
				if err != nil || !bytes.Equal(again, raw) {
					t.Fatalf("hello %+v re-encodes to %x, %v; read from %x", h, again, err, raw)
				}
			case wire.FrameProof:
				checkProof(t, fr.Payload, raw)
			case wire.FrameMessage:
				m, err := wire.DecodeMessage(fr.Payload, fuzzMaxBody)
				if err != nil {
					if !isCodecError(err) {
						t.Fatalf("DecodeMessage: unexpected error %v", err)
					}
					continue
				}
				if again := wire.AppendMessage(nil, &m); !bytes.Equal(again, raw) {
					t.Fatalf("message re-encodes to %x; read from %x", again, raw)
				}
			default:
				if fr.Type.IsMembership() {
					checkMembership(t, fr.Type, fr.Payload, raw)
					continue
				}
				if !fr.Type.IsControl() {
					t.Fatalf("ReadFrame returned frame type %v", fr.Type)
				}
				checkControl(t, fr.Type, fr.Payload, raw)
			}
		}
	})
}

func isCodecError(err error) bool {
	for _, e := range []error{wire.ErrFrameTooLarge, wire.ErrFrameTooShort, wire.ErrUnknownVersion, wire.ErrUnknownType, wire.ErrTruncated, wire.ErrMalformed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzDecodeControl feeds an arbitrary payload of an arbitrary frame type
// to the control decoder. Nothing may panic, every failure is a codec
// error, and whatever decodes re-encodes to exactly the frame it came
// from, so the decoder accepts nothing the encoder would not write.
func FuzzDecodeControl(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzDecodeControl.
	for _, c := range seedControls() {
		b, err := wire.AppendControl(nil, &c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(c.Kind), b[6:])
	}
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		raw := append(binary.BigEndian.AppendUint32(nil, uint32(2+len(payload))), wire.Version, typ)
		checkControl(t, wire.FrameType(typ), payload, append(raw, payload...))
	})
}

// checkControl decodes a control payload and checks that it re-encodes to
// raw, the whole frame.
func checkControl(t *testing.T, typ wire.FrameType, payload, raw []byte) {
	t.Helper()
	c, err := wire.DecodeControl(typ, payload)
	if err != nil {
		if !isCodecError(err) {
			t.Fatalf("DecodeControl(%v): unexpected error %v", typ, err)
		}
		if typ.IsControl() && errors.Is(err, wire.ErrUnknownType) {
			t.Fatalf("DecodeControl(%v): a control type refused as unknown", typ)
		}
		return
	}
	if !typ.IsControl() || c.Kind != typ {
		t.Fatalf("DecodeControl(%v) decoded a %v", typ, c.Kind)
	}
	if c.EncodedSize() != len(payload) {
		t.Fatalf("%v: EncodedSize %d, payload %d bytes", typ, c.EncodedSize(), len(payload))
	}
	again, err := wire.AppendControl(nil, &c)
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("%v %+v re-encodes to %x, %v; read from %x", typ, c, again, err, raw)
	}
}

// FuzzDecodeHello feeds an arbitrary payload to the hello decoder: no
// panic, only codec errors, and what decodes re-encodes to the same bytes.
func FuzzDecodeHello(f *testing.F) {
	// More seeds live in testdata/fuzz/FuzzDecodeHello.
	for _, h := range []wire.Hello{
		{PublicKey: [32]byte{7}, Nonce: [32]byte{1, 2, 3}, ListenAddr: "127.0.0.1:7001"},
		{PublicKey: [32]byte{31: 1}, Protocols: []wire.ProtocolVersion{{Protocol: wire.ProtoGossip, Version: 2}}},
	} {
		b, err := wire.AppendHello(nil, h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[6:])
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := wire.DecodeHello(payload)
		if err != nil {
			if !isCodecError(err) {
				t.Fatalf("DecodeHello: unexpected error %v", err)
			}
			return
		}
		if len(h.Protocols) == 0 || len(h.Protocols) > wire.MaxHelloProtocols {
			t.Fatalf("DecodeHello returned %d protocols", len(h.Protocols))
		}
		again, err := wire.AppendHello(nil, h)
		if err != nil || !bytes.Equal(again[6:], payload) {
			t.Fatalf("hello %+v re-encodes to %x, %v; read from %x", h, again, err, payload)
		}
		if len(again) > wire.MaxHelloFrame {
			t.Fatalf("a %d-byte hello, over MaxHelloFrame", len(again))
		}
	})
}

// FuzzDecodeProof feeds an arbitrary payload to the proof decoder: no
// panic, only codec errors, exactly ProofSize bytes accepted, and what
// decodes re-encodes to the same bytes.
func FuzzDecodeProof(f *testing.F) {
	f.Add(make([]byte, wire.ProofSize))
	f.Add(make([]byte, wire.ProofSize-1))
	f.Add(make([]byte, wire.ProofSize+1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		raw := append(binary.BigEndian.AppendUint32(nil, uint32(2+len(payload))), wire.Version, byte(wire.FrameProof))
		checkProof(t, payload, append(raw, payload...))
	})
}

// checkProof decodes a proof payload and checks that it re-encodes to raw,
// the whole frame.
func checkProof(t *testing.T, payload, raw []byte) {
	t.Helper()
	p, err := wire.DecodeProof(payload)
	if err != nil {
		if !isCodecError(err) {
			t.Fatalf("DecodeProof: unexpected error %v", err)
		}
		if len(payload) == wire.ProofSize {
			t.Fatalf("DecodeProof refused %d bytes: %v", len(payload), err)
		}
		return
	}
	if len(payload) != wire.ProofSize {
		t.Fatalf("DecodeProof took %d bytes", len(payload))
	}
	if again := wire.AppendProof(nil, p); !bytes.Equal(again, raw) || len(again) != wire.ProofFrameSize {
		t.Fatalf("proof re-encodes to %x; read from %x", again, raw)
	}
}

// seedControls are one valid control frame of each kind.
func seedControls() []wire.Control {
	id := wire.ComputeMsgID(1, 1, []byte("seed"))
	return []wire.Control{
		{Kind: wire.FrameIHave, IDs: []wire.MsgID{id, wire.ComputeMsgID(1, 2, nil)}},
		{Kind: wire.FrameIHave, IDs: []wire.MsgID{id}, HasHop: true, Hop: 3},
		{Kind: wire.FrameIWant, IDs: []wire.MsgID{id}},
		{Kind: wire.FrameGraft},
		{Kind: wire.FrameGraft, IDs: []wire.MsgID{id}},
		{Kind: wire.FramePrune, Reason: wire.PruneDuplicate},
		{Kind: wire.FramePull, Flags: wire.PullWantDigest, Ranges: []wire.SeqRange{
			{Origin: 3, First: 1, Last: 40}, {Origin: 3, First: 42, Last: 300}, {Origin: 9, First: 1, Last: 1}}},
	}
}
