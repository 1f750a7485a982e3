package wire

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ProtocolID names a protocol a node can speak over a link: the base
// message exchange, or one of the repair protocols layered on it. The hello
// lists (protocol, version) pairs so that two builds that cannot talk find
// out at the handshake, not from a frame they cannot parse mid-stream.
type ProtocolID uint16

// The protocols of this build. Ids are never reused: a protocol that
// changes incompatibly gets a new version, not a new id.
const (
	// ProtoGossip is the base exchange: message frames, deduplicated by
	// id, forwarded by the flood and fanout routers.
	ProtoGossip ProtocolID = 1
	// ProtoLazy is lazy push: IHAVE announces ids, IWANT asks for them
	// (gossipsub's gossip), GRAFT and PRUNE keep the eager links symmetric
	// (gossipsub's mesh).
	ProtoLazy ProtocolID = 2
	// ProtoPlumtree is Plumtree's tree repair: IHAVE on lazy links, GRAFT
	// and PRUNE to move links between eager and lazy.
	ProtoPlumtree ProtocolID = 3
	// ProtoAntiEntropy is anti-entropy pull: PULL carries a digest of what
	// the sender has; the receiver answers with the messages it lacks.
	ProtoAntiEntropy ProtocolID = 4
)

// String names the protocol as logs and errors print it.
func (p ProtocolID) String() string {
	switch p {
	case ProtoGossip:
		return "gossip"
	case ProtoLazy:
		return "lazy"
	case ProtoPlumtree:
		return "plumtree"
	case ProtoAntiEntropy:
		return "anti-entropy"
	}
	return "protocol-" + strconv.Itoa(int(p))
}

// ProtocolVersion is one (protocol, version) pair a node speaks. A node may
// list several versions of one protocol while it migrates between them.
type ProtocolVersion struct {
	Protocol ProtocolID
	Version  uint16
}

// String renders the pair as "name/version", for example "plumtree/1".
func (pv ProtocolVersion) String() string {
	return pv.Protocol.String() + "/" + strconv.Itoa(int(pv.Version))
}

// MaxHelloProtocols bounds the (protocol, version) pairs in a hello, so that
// a hello has a small fixed upper size (MaxHelloFrame).
const MaxHelloProtocols = 32

// ErrNoCommonProtocol is the handshake's refusal of a peer that speaks none
// of the (protocol, version) pairs this node speaks. It is not a decoding
// error: the peer's hello was well-formed.
var ErrNoCommonProtocol = errors.New("no common protocol version")

// Protocols returns the (protocol, version) pairs this build speaks, in the
// canonical order a hello carries them. It returns a new slice on every
// call, so callers may keep or change it.
func Protocols() []ProtocolVersion {
	return []ProtocolVersion{
		{ProtoGossip, 1},
		{ProtoLazy, 1},
		{ProtoPlumtree, 1},
		{ProtoAntiEntropy, 1},
	}
}

// ValidateProtocols reports why ps cannot go in a hello: it is empty, has
// more than MaxHelloProtocols pairs, or lists a pair twice. Order does not
// matter; AppendHello sorts.
func ValidateProtocols(ps []ProtocolVersion) error {
	if len(ps) == 0 {
		return errors.New("protocols: none listed; a node must speak at least one")
	}
	if len(ps) > MaxHelloProtocols {
		return fmt.Errorf("protocols: %d listed, limit %d", len(ps), MaxHelloProtocols)
	}
	sorted := slices.SortedFunc(slices.Values(ps), compareProtocols)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("protocols: %v listed twice", sorted[i])
		}
	}
	return nil
}

// CommonProtocols returns the pairs that both ours and theirs list, in
// canonical order, or an error wrapping ErrNoCommonProtocol that names both
// lists if there are none. A nil ours means this build's Protocols().
func CommonProtocols(ours, theirs []ProtocolVersion) ([]ProtocolVersion, error) {
	if ours == nil {
		ours = Protocols()
	}
	var common []ProtocolVersion
	for _, pv := range ours {
		if slices.Contains(theirs, pv) && !slices.Contains(common, pv) {
			common = append(common, pv)
		}
	}
	if len(common) == 0 {
		return nil, fmt.Errorf("%w: this node speaks %s, the peer speaks %s",
			ErrNoCommonProtocol, protocolList(ours), protocolList(theirs))
	}
	slices.SortFunc(common, compareProtocols)
	return common, nil
}

func compareProtocols(a, b ProtocolVersion) int {
	if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	return cmp.Compare(a.Version, b.Version)
}

func protocolList(ps []ProtocolVersion) string {
	if len(ps) == 0 {
		return "nothing"
	}
	s := make([]string, len(ps))
	for i, pv := range ps {
		s[i] = pv.String()
	}
	return strings.Join(s, " ")
}
