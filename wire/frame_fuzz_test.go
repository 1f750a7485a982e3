package wire_test

import (
	"bytes"
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
	hello, _ := wire.AppendHello(nil, wire.Hello{ID: 7, ListenAddr: "127.0.0.1:7001"})
	f.Add(hello)
	f.Add(wire.AppendMessage(nil, testMessage("seed")))
	f.Add(append(hello, wire.AppendMessage(nil, testMessage(""))...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
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
				t.Fatalf("ReadFrame returned frame type %v", fr.Type)
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
