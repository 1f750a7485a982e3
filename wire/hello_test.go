package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gossipmesh/wire"
)

func pv(p wire.ProtocolID, v uint16) wire.ProtocolVersion {
	return wire.ProtocolVersion{Protocol: p, Version: v}
}

// readHello reads one frame from b with the hello limit and decodes it.
func readHello(t *testing.T, b []byte) (wire.Hello, error) {
	t.Helper()
	f, err := wire.NewReader(bytes.NewReader(b), wire.MaxHelloFrame).ReadFrame()
	if err != nil {
		return wire.Hello{}, err
	}
	if f.Type != wire.FrameHello {
		t.Fatalf("frame type %v, want hello", f.Type)
	}
	return wire.DecodeHello(f.Payload)
}

// TestHelloCarriesProtocols: the hello says which protocol versions the
// sender speaks, in one canonical order whatever order it was given.
func TestHelloCarriesProtocols(t *testing.T) {
	cases := []struct {
		name string
		in   []wire.ProtocolVersion
		want []wire.ProtocolVersion
	}{
		{"nil is this build's", nil, wire.Protocols()},
		{"one", []wire.ProtocolVersion{pv(wire.ProtoGossip, 1)}, []wire.ProtocolVersion{pv(wire.ProtoGossip, 1)}},
		{"sorted by protocol then version",
			[]wire.ProtocolVersion{pv(wire.ProtoPlumtree, 1), pv(wire.ProtoGossip, 3), pv(900, 65535), pv(wire.ProtoGossip, 2)},
			[]wire.ProtocolVersion{pv(wire.ProtoGossip, 2), pv(wire.ProtoGossip, 3), pv(wire.ProtoPlumtree, 1), pv(900, 65535)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			b, err := wire.AppendHello(nil, wire.Hello{PublicKey: [32]byte{9}, ListenAddr: "127.0.0.1:7001", Protocols: in})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("AppendHello reordered its caller's slice: %v", in)
			}
			h, err := readHello(t, b)
			if err != nil {
				t.Fatal(err)
			}
			if h.PublicKey != [32]byte{9} || h.ListenAddr != "127.0.0.1:7001" || !slices.Equal(h.Protocols, tc.want) {
				t.Errorf("got %+v, want protocols %v", h, tc.want)
			}
		})
	}
}

// TestMaxHelloFrame: the largest hello there can be is exactly
// MaxHelloFrame bytes, and a reader with that limit takes it.
func TestMaxHelloFrame(t *testing.T) {
	var ps []wire.ProtocolVersion
	for i := range wire.MaxHelloProtocols {
		ps = append(ps, pv(wire.ProtocolID(i+1), 7))
	}
	b, err := wire.AppendHello(nil, wire.Hello{ListenAddr: strings.Repeat("a", 255), Protocols: ps})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != wire.MaxHelloFrame {
		t.Fatalf("largest hello is %d bytes, MaxHelloFrame %d", len(b), wire.MaxHelloFrame)
	}
	h, err := readHello(t, b)
	if err != nil || !slices.Equal(h.Protocols, ps) {
		t.Fatalf("largest hello: %v, %v", h.Protocols, err)
	}
	if _, err := wire.AppendHello(nil, wire.Hello{Protocols: append(ps, pv(999, 1))}); err == nil {
		t.Errorf("a hello of %d protocols was encoded", len(ps)+1)
	}
}

func TestAppendHelloRefuses(t *testing.T) {
	cases := map[string][]wire.ProtocolVersion{
		"empty, not nil": {},
		"a pair twice":   {pv(wire.ProtoGossip, 1), pv(wire.ProtoLazy, 1), pv(wire.ProtoGossip, 1)},
	}
	for name, ps := range cases {
		if _, err := wire.AppendHello(nil, wire.Hello{Protocols: ps}); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// keyAndNonce is the fixed start of a hand-built hello payload.
var keyAndNonce = make([]byte, wire.PublicKeySize+wire.NonceSize)

// helloPayload builds a hello payload by hand: a zero key and nonce,
// address "a", then the given count and pair bytes.
func helloPayload(count byte, pairs ...uint16) []byte {
	p := append([]byte(nil), keyAndNonce...)
	p = append(p, 1, 'a', count)
	for _, v := range pairs {
		p = binary.BigEndian.AppendUint16(p, v)
	}
	return p
}

func TestDecodeHelloProtocolErrors(t *testing.T) {
	cases := []struct {
		name string
		p    []byte
	}{
		{"no protocol list", helloPayload(0)[:wire.PublicKeySize+wire.NonceSize+2]},
		{"key only", keyAndNonce[:wire.PublicKeySize]},
		{"key and nonce, no address", keyAndNonce},
		{"count zero", helloPayload(0)},
		{"count over the limit", helloPayload(wire.MaxHelloProtocols+1, make([]uint16, 2*(wire.MaxHelloProtocols+1))...)},
		{"count beyond the bytes", helloPayload(3, 1, 1, 2, 1)},
		{"half a pair", helloPayload(1, 1, 1)[:len(keyAndNonce)+5]},
		{"trailing bytes", append(helloPayload(1, 1, 1), 0)},
		{"out of order", helloPayload(2, 2, 1, 1, 1)},
		{"versions out of order", helloPayload(2, 1, 2, 1, 1)},
		{"repeated", helloPayload(2, 1, 1, 1, 1)},
		{"address beyond the bytes", append(slices.Clone(keyAndNonce), 200, 'a')},
	}
	for _, tc := range cases {
		if _, err := wire.DecodeHello(tc.p); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		}
	}
	if h, err := wire.DecodeHello(helloPayload(2, 1, 1, 1, 2)); err != nil || !slices.Equal(h.Protocols, []wire.ProtocolVersion{pv(1, 1), pv(1, 2)}) {
		t.Errorf("two versions of one protocol: %v, %v", h.Protocols, err)
	}
}

// TestOlderHellosAreRefused: a peer of an earlier frame version is told
// apart at its first frame, before its hello is parsed, with an error that
// names both versions.
func TestOlderHellosAreRefused(t *testing.T) {
	// The version-1 hello: id 7, no protocol list.
	v1 := []byte{0, 0, 0, 0x19, 1, 1, 0, 0, 0, 0, 0, 0, 0, 7, 14}
	v1 = append(v1, "127.0.0.1:7001"...)
	// The version-2 hello: id 7, the address, one protocol (gossip/1).
	v2 := []byte{0, 0, 0, 0x1e, 2, 1, 0, 0, 0, 0, 0, 0, 0, 7, 14}
	v2 = append(v2, "127.0.0.1:7001"...)
	v2 = append(v2, 1, 0, 1, 0, 1)
	for v, b := range map[int][]byte{1: v1, 2: v2} {
		_, err := readHello(t, b)
		if !errors.Is(err, wire.ErrUnknownVersion) || !strings.Contains(err.Error(), fmt.Sprintf("%d (this node speaks 3)", v)) {
			t.Errorf("version-%d hello: %v", v, err)
		}
	}
}

// TestProofRoundTrip: a proof frame carries its 64-byte signature and
// nothing else, and the decoder takes exactly that many bytes.
func TestProofRoundTrip(t *testing.T) {
	var p wire.Proof
	for i := range p.Signature {
		p.Signature[i] = byte(i)
	}
	b := wire.AppendProof(nil, p)
	if len(b) != wire.ProofFrameSize || wire.ProofFrameSize > wire.MaxHelloFrame {
		t.Fatalf("proof frame of %d bytes (ProofFrameSize %d, hello limit %d)", len(b), wire.ProofFrameSize, wire.MaxHelloFrame)
	}
	f, err := wire.NewReader(bytes.NewReader(b), wire.MaxHelloFrame).ReadFrame()
	if err != nil || f.Type != wire.FrameProof {
		t.Fatalf("read: %v, %v", f.Type, err)
	}
	got, err := wire.DecodeProof(f.Payload)
	if err != nil || got != p {
		t.Fatalf("decoded %x, %v", got.Signature, err)
	}
	for _, n := range []int{0, wire.ProofSize - 1, wire.ProofSize + 1} {
		if _, err := wire.DecodeProof(make([]byte, n)); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("a %d-byte proof: %v, want ErrMalformed", n, err)
		}
	}
}

func TestCommonProtocols(t *testing.T) {
	ours := []wire.ProtocolVersion{pv(wire.ProtoGossip, 1), pv(wire.ProtoGossip, 2), pv(wire.ProtoPlumtree, 1)}
	cases := []struct {
		name   string
		ours   []wire.ProtocolVersion
		theirs []wire.ProtocolVersion
		want   []wire.ProtocolVersion
	}{
		{"same", ours, ours, ours},
		{"subset", ours, []wire.ProtocolVersion{pv(wire.ProtoPlumtree, 1), pv(wire.ProtoGossip, 2), pv(wire.ProtoLazy, 1)},
			[]wire.ProtocolVersion{pv(wire.ProtoGossip, 2), pv(wire.ProtoPlumtree, 1)}},
		{"nil ours is this build's", nil, []wire.ProtocolVersion{pv(wire.ProtoAntiEntropy, 1), pv(wire.ProtoGossip, 9)},
			[]wire.ProtocolVersion{pv(wire.ProtoAntiEntropy, 1)}},
	}
	for _, tc := range cases {
		got, err := wire.CommonProtocols(tc.ours, tc.theirs)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	_, err := wire.CommonProtocols(ours, []wire.ProtocolVersion{pv(wire.ProtoGossip, 3), pv(77, 1)})
	if !errors.Is(err, wire.ErrNoCommonProtocol) {
		t.Fatalf("disjoint: %v, want ErrNoCommonProtocol", err)
	}
	const want = "no common protocol version: this node speaks gossip/1 gossip/2 plumtree/1, the peer speaks gossip/3 protocol-77/1"
	if err.Error() != want {
		t.Errorf("disjoint: %q\nwant %q", err, want)
	}
	if _, err := wire.CommonProtocols(ours, nil); !errors.Is(err, wire.ErrNoCommonProtocol) || !strings.HasSuffix(err.Error(), "the peer speaks nothing") {
		t.Errorf("peer speaking nothing: %v", err)
	}
}

func TestValidateProtocols(t *testing.T) {
	if err := wire.ValidateProtocols(wire.Protocols()); err != nil {
		t.Errorf("this build's protocols: %v", err)
	}
	if err := wire.ValidateProtocols(nil); err == nil {
		t.Error("an empty list passed")
	}
	if err := wire.ValidateProtocols([]wire.ProtocolVersion{pv(1, 1), pv(2, 1), pv(1, 1)}); err == nil {
		t.Error("a repeated pair passed")
	}
}
