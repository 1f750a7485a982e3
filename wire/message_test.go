package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"gossipmesh/wire"
)

func signedTestMessage(body string) *wire.Message {
	m := testMessage(body)
	a := &wire.Auth{}
	for i := range a.Key {
		a.Key[i] = byte(i + 1)
	}
	for i := range a.Sig {
		a.Sig[i] = byte(0xff - i)
	}
	m.Auth = a
	return m
}

// TestSignedRoundTrip: a signed message keeps its key and signature through
// the codec, an unsigned one decodes with no auth block, and a signed frame
// is exactly AuthSize bytes longer than the same message unsigned.
func TestSignedRoundTrip(t *testing.T) {
	signed, unsigned := signedTestMessage("payload"), testMessage("payload")
	sb, ub := wire.AppendMessage(nil, signed), wire.AppendMessage(nil, unsigned)
	if len(sb)-len(ub) != wire.AuthSize {
		t.Fatalf("signed frame is %d bytes, unsigned %d: want a difference of %d", len(sb), len(ub), wire.AuthSize)
	}
	for _, tc := range []struct {
		m *wire.Message
		b []byte
	}{{signed, sb}, {unsigned, ub}} {
		if len(tc.b)-6 != tc.m.EncodedSize() {
			t.Errorf("payload of %d bytes, EncodedSize says %d", len(tc.b)-6, tc.m.EncodedSize())
		}
		f, err := wire.NewReader(bytes.NewReader(tc.b), wire.DefaultMaxFrame).ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.DecodeMessage(f.Payload, wire.DefaultMaxBody)
		if err != nil {
			t.Fatal(err)
		}
		if (got.Auth == nil) != (tc.m.Auth == nil) || got.Auth != nil && *got.Auth != *tc.m.Auth {
			t.Errorf("auth block: got %+v, want %+v", got.Auth, tc.m.Auth)
		}
		if got.ID != tc.m.ID || got.Origin != tc.m.Origin || got.Seq != tc.m.Seq || got.Hop != tc.m.Hop ||
			got.PublishedAt != tc.m.PublishedAt || !bytes.Equal(got.Body, tc.m.Body) {
			t.Errorf("decoded %+v, want %+v", got, tc.m)
		}
	}
}

// TestSignedDecodeErrors: an unknown flag bit, and a signed message cut
// inside its auth block, are malformed.
func TestSignedDecodeErrors(t *testing.T) {
	good := wire.AppendMessage(nil, signedTestMessage("abc"))[6:]
	const flagsAt = wire.MsgIDSize + 8 + 8 + 2 + 8
	badFlag := bytes.Clone(good)
	badFlag[flagsAt] |= 0x80
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"unknown flag", badFlag},
		{"auth block cut short", good[:flagsAt+1+wire.AuthSize-1]},
		{"no body length after the auth block", good[:flagsAt+1+wire.AuthSize]},
	} {
		if _, err := wire.DecodeMessage(tc.p, 100); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		}
	}
}

// TestSignedBytes: the signed bytes start with the domain, leave the hop
// out, and change with every other field.
func TestSignedBytes(t *testing.T) {
	m := testMessage("body")
	base := m.AppendSigned(nil)
	if !bytes.HasPrefix(base, []byte(wire.SignDomain)) || len(base) != m.SignedSize() {
		t.Fatalf("signed bytes %x: want the domain first and %d bytes", base, m.SignedSize())
	}
	hop := *m
	hop.Hop++
	if !bytes.Equal(hop.AppendSigned(nil), base) {
		t.Error("the hop count changed the signed bytes")
	}
	for name, change := range map[string]func(*wire.Message){
		"id":           func(m *wire.Message) { m.ID[0] ^= 1 },
		"origin":       func(m *wire.Message) { m.Origin++ },
		"seq":          func(m *wire.Message) { m.Seq++ },
		"published at": func(m *wire.Message) { m.PublishedAt++ },
		"body":         func(m *wire.Message) { m.Body = []byte("bodz") },
	} {
		c := *m
		change(&c)
		if bytes.Equal(c.AppendSigned(nil), base) {
			t.Errorf("changing the %s left the signed bytes alone", name)
		}
	}
}
