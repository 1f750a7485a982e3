package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// SignMessage signs m as its origin with k: the auth block carries k's
// public key and its ed25519 signature over m.AppendSigned (wire.SignDomain,
// id, origin, seq, published-at and body; never the hop count). It fails
// when m claims an origin other than k's id, since no receiver would take
// the signature.
func SignMessage(k *Key, m *wire.Message) (*wire.Auth, error) {
	if m.Origin != k.id {
		return nil, fmt.Errorf("identity: sign message: origin %v is not this key's id %v", m.Origin, k.id)
	}
	a := &wire.Auth{}
	copy(a.Key[:], k.Public())
	copy(a.Sig[:], ed25519.Sign(k.priv, m.AppendSigned(make([]byte, 0, m.SignedSize()))))
	return a, nil
}

// VerifyMessage checks m's auth block with no key directory: the key must
// hash to m.Origin (IDOf) and the signature must verify over m's signed
// bytes. Its errors wrap gossip.ErrBadSignature; an unsigned message is
// gossip.ErrUnsigned.
func VerifyMessage(m *wire.Message) error {
	a := m.Auth
	if a == nil {
		return gossip.ErrUnsigned
	}
	if id := IDOf(a.Key[:]); id != m.Origin {
		return fmt.Errorf("%w: key is node %v's, message claims origin %v", gossip.ErrBadSignature, id, m.Origin)
	}
	if !ed25519.Verify(a.Key[:], m.AppendSigned(make([]byte, 0, m.SignedSize())), a.Sig[:]) {
		return fmt.Errorf("%w: ed25519 signature does not verify", gossip.ErrBadSignature)
	}
	return nil
}

// MessageAuth is the gossip core's Auth for a node that holds key: it signs
// the node's publishes with it and verifies what the node receives with
// VerifyMessage. It keeps no state beyond the key, so it is safe for
// concurrent use.
type MessageAuth struct {
	key *Key
}

// NewMessageAuth returns the Auth of the node whose key is k.
func NewMessageAuth(k *Key) *MessageAuth { return &MessageAuth{key: k} }

// Sign implements gossip.Auth; signer must be the key's id.
func (a *MessageAuth) Sign(signer wire.NodeID, m *wire.Message) (*wire.Auth, error) {
	if signer != a.key.id {
		return nil, fmt.Errorf("identity: node %v cannot sign as %v", a.key.id, signer)
	}
	return SignMessage(a.key, m)
}

// Verify implements gossip.Auth.
func (a *MessageAuth) Verify(m *wire.Message) error { return VerifyMessage(m) }

var _ gossip.Auth = (*MessageAuth)(nil)

// DerivedAuth is a gossip.Auth with real ed25519 keys for a driver that runs
// many nodes in one process whose ids are not key hashes (the simulator,
// whose node i+1 is its index): node id's key derives from the seed and
// id, and a key belongs to an origin when it is the one derived for it,
// where the runtime checks IDOf. Signing derives the signer's key (about
// 20 µs) and verifying derives the origin's public key and checks the
// ed25519 signature (about 70 µs together): the real cost, for comparing
// with gossip.ModelAuth. It holds no state but the seed, so it is safe for
// concurrent use by the simulator's workers.
type DerivedAuth struct {
	seed [32]byte
}

// NewDerivedAuth returns the DerivedAuth of a run seeded with seed.
func NewDerivedAuth(seed uint64) *DerivedAuth {
	var b [8]byte
	for i := range b {
		b[i] = byte(seed >> (56 - 8*i))
	}
	return &DerivedAuth{seed: sha256.Sum256(append([]byte("gossipmesh/derived-auth/v1"), b[:]...))}
}

// keyOf derives node id's key.
func (a *DerivedAuth) keyOf(id wire.NodeID) ed25519.PrivateKey {
	var b [40]byte
	copy(b[:], a.seed[:])
	for i := range 8 {
		b[32+i] = byte(uint64(id) >> (56 - 8*i))
	}
	s := sha256.Sum256(b[:])
	return ed25519.NewKeyFromSeed(s[:])
}

// Sign implements gossip.Auth: signer's derived key signs m.
func (a *DerivedAuth) Sign(signer wire.NodeID, m *wire.Message) (*wire.Auth, error) {
	priv := a.keyOf(signer)
	au := &wire.Auth{}
	copy(au.Key[:], priv.Public().(ed25519.PublicKey))
	copy(au.Sig[:], ed25519.Sign(priv, m.AppendSigned(make([]byte, 0, m.SignedSize()))))
	return au, nil
}

// Verify implements gossip.Auth.
func (a *DerivedAuth) Verify(m *wire.Message) error {
	pub := a.keyOf(m.Origin).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, m.Auth.Key[:]) {
		return fmt.Errorf("%w: key is not origin %v's", gossip.ErrBadSignature, m.Origin)
	}
	if !ed25519.Verify(pub, m.AppendSigned(make([]byte, 0, m.SignedSize())), m.Auth.Sig[:]) {
		return fmt.Errorf("%w: ed25519 signature does not verify", gossip.ErrBadSignature)
	}
	return nil
}

var _ gossip.Auth = (*DerivedAuth)(nil)
