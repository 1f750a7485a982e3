package identity_test

import (
	"bytes"
	"testing"

	"gossipmesh/identity"
	"gossipmesh/wire"
)

func seededKey(t *testing.T, b byte) *identity.Key {
	t.Helper()
	k, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestHandshakeProofIsBoundToNonceAndKeys: a proof verifies only for the
// nonce it answered, from the key that made it, to the peer it was made
// for. Replayed on another connection (another nonce), reflected back to
// its sender, shown to a third node, or claimed for another key, it fails.
func TestHandshakeProofIsBoundToNonceAndKeys(t *testing.T) {
	a, b, c := seededKey(t, 1), seededKey(t, 2), seededKey(t, 3)
	nonceB, err := identity.NewNonce(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherNonce, _ := identity.NewNonce(nil)
	if nonceB == otherNonce {
		t.Fatal("two nonces alike")
	}
	// a answers b's nonce: b verifies it.
	proof := a.ProveHandshake(nonceB, b.PublicArray())
	if !identity.VerifyHandshake(a.PublicArray(), nonceB, b.Public(), proof) {
		t.Fatal("an honest proof does not verify")
	}
	cases := []struct {
		name   string
		signer [wire.PublicKeySize]byte // the key the verifier was told
		nonce  [wire.NonceSize]byte
		to     []byte // the verifier's own key
		proof  wire.Proof
	}{
		{"replayed on a connection with another nonce", a.PublicArray(), otherNonce, b.Public(), proof},
		{"shown to a third node", a.PublicArray(), nonceB, c.Public(), proof},
		{"reflected back as b's own proof", b.PublicArray(), nonceB, a.Public(), proof},
		{"claimed for another key", c.PublicArray(), nonceB, b.Public(), proof},
		{"signed by another key", a.PublicArray(), nonceB, b.Public(), c.ProveHandshake(nonceB, b.PublicArray())},
		{"one bit flipped", a.PublicArray(), nonceB, b.Public(), func() wire.Proof { p := proof; p.Signature[5] ^= 1; return p }()},
		{"zero signature", a.PublicArray(), nonceB, b.Public(), wire.Proof{}},
	}
	for _, tc := range cases {
		if identity.VerifyHandshake(tc.signer, tc.nonce, tc.to, tc.proof) {
			t.Errorf("%s: verified", tc.name)
		}
	}
}
