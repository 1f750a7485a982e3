package identity

import (
	"crypto/ed25519"
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
