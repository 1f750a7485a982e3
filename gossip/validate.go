package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gossipmesh/wire"
)

// Signing is the message-signing policy, after gossipsub's StrictSign and
// StrictNoSign: every node of a mesh must run the same one, since each
// rejects what the other sends.
type Signing string

// The signing policies.
const (
	// SigningStrict signs every publish with Config.Auth and rejects a
	// message that is unsigned or whose signature does not verify.
	SigningStrict Signing = "strict"
	// SigningNone publishes unsigned messages and rejects signed ones, so
	// that a mesh that needs no proof of origin (a trusted cluster, a
	// benchmark of the cost of signing) pays nothing for it, and a peer
	// cannot make it carry 96 bytes a message it never checks.
	SigningNone Signing = "none"
)

// SigningPolicies lists the valid policies, for flags and errors.
func SigningPolicies() []Signing { return []Signing{SigningStrict, SigningNone} }

// ParseSigning turns a flag value into a Signing.
func ParseSigning(s string) (Signing, error) {
	for _, v := range SigningPolicies() {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown signing policy %q (want one of %v)", s, SigningPolicies())
}

// Auth signs this node's publishes and verifies the signatures of what it
// receives: the seam through which the pure core uses a key it must not
// hold itself. The driver sets one per node in Config.Auth: the node
// runtime an ed25519 signer over the node's key (identity.MessageAuth),
// the simulator a cost model (ModelAuth). An Auth is called only from
// the goroutine that drives the core.
type Auth interface {
	// Sign returns the auth block for m, which node signer publishes
	// (m.Origin == signer): the signer's public key and its signature
	// over m.AppendSigned. An Auth that holds no key for signer fails.
	Sign(signer wire.NodeID, m *wire.Message) (*wire.Auth, error)
	// Verify checks m.Auth (not nil): that its key belongs to m.Origin
	// and that its signature covers m's signed bytes. Its error wraps
	// ErrBadSignature.
	Verify(m *wire.Message) error
}

// Errors of the validation pipeline (the Err of an EventRejected or
// EventRefused), one per reason, so that drivers count them with
// errors.Is.
var (
	// ErrUnsigned: an unsigned message under SigningStrict.
	ErrUnsigned = errors.New("message is unsigned")
	// ErrSigned: a signed message under SigningNone.
	ErrSigned = errors.New("message is signed, and this mesh does not sign")
	// ErrBadSignature: the key does not belong to the origin, or the
	// signature does not verify.
	ErrBadSignature = errors.New("message signature is invalid")
	// ErrRejected: an application validator rejected the message.
	ErrRejected = errors.New("message rejected by a validator")
	// ErrIgnored: an application validator ignored the message.
	ErrIgnored = errors.New("message ignored by a validator")
)

// Verdict is an application validator's answer, as in gossipsub.
type Verdict uint8

// Verdicts.
const (
	// Accept lets the message through to the next validator, and then to
	// delivery.
	Accept Verdict = iota
	// Reject drops the message and blames the sender (EventRejected with
	// PeerFault): an honest peer runs the same validators and would not
	// have forwarded it.
	Reject
	// Ignore drops the message without blame (EventRefused, ErrIgnored):
	// for what is unwanted here rather than invalid.
	Ignore
)

// Validator is an application check that a message must pass before it is
// delivered or forwarded. Like a router it is pure: it sees only the
// message, and it must give the same verdict for the same message on
// every node, since a Reject blames the sender. Validators run in the core,
// so they run in every driver.
type Validator interface {
	Validate(m *wire.Message) Verdict
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(m *wire.Message) Verdict

// Validate calls f.
func (f ValidatorFunc) Validate(m *wire.Message) Verdict { return f(m) }

// namedValidator is a validator and the spec it was built from, for errors.
type namedValidator struct {
	name string
	v    Validator
}

// validatorKind is one built-in validator of the registry.
type validatorKind struct {
	name, help string
	// arg: the validator takes "=N".
	arg   bool
	build func(n int) Validator
}

// validatorKinds are the built-in validators by name: the registry that
// Config.Validators and the --validate flag name. A function, so that the
// table is no package state anyone could change.
func validatorKinds() []validatorKind {
	return []validatorKind{
		{"utf8", "reject a body that is not valid UTF-8", false, func(int) Validator {
			return ValidatorFunc(func(m *wire.Message) Verdict {
				if utf8.Valid(m.Body) {
					return Accept
				}
				return Reject
			})
		}},
		{"json", "reject a body that is not one valid JSON value", false, func(int) Validator {
			return ValidatorFunc(func(m *wire.Message) Verdict {
				if json.Valid(m.Body) {
					return Accept
				}
				return Reject
			})
		}},
		{"max-body", "max-body=N: ignore a body over N bytes (a local limit below MaxBody, no blame)", true, func(n int) Validator {
			return ValidatorFunc(func(m *wire.Message) Verdict {
				if len(m.Body) <= n {
					return Accept
				}
				return Ignore
			})
		}},
		{"nonempty", "reject an empty body", false, func(int) Validator {
			return ValidatorFunc(func(m *wire.Message) Verdict {
				if len(m.Body) > 0 {
					return Accept
				}
				return Reject
			})
		}},
	}
}

// ValidatorNames describes the built-in validators, one "name: what" a
// line, for flag help.
func ValidatorNames() []string {
	var s []string
	for _, k := range validatorKinds() {
		s = append(s, k.name+": "+k.help)
	}
	return s
}

// ParseValidator builds the built-in validator that spec names: "utf8",
// "json", "nonempty" or "max-body=N".
func ParseValidator(spec string) (Validator, error) {
	name, arg, hasArg := strings.Cut(spec, "=")
	for _, k := range validatorKinds() {
		if k.name != name {
			continue
		}
		if !k.arg {
			if hasArg {
				return nil, fmt.Errorf("validator %q takes no argument", name)
			}
			return k.build(0), nil
		}
		n, err := strconv.Atoi(arg)
		if !hasArg || err != nil || n < 0 {
			return nil, fmt.Errorf("validator %q: want %s=N, N a byte count", spec, name)
		}
		return k.build(n), nil
	}
	var names []string
	for _, k := range validatorKinds() {
		names = append(names, k.name)
	}
	return nil, fmt.Errorf("unknown validator %q (want one of %v)", spec, names)
}

// ParseValidators splits a comma-separated list of validator specs (the
// --validate flag) and checks each.
func ParseValidators(list string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	specs := strings.Split(list, ",")
	for _, s := range specs {
		if _, err := ParseValidator(s); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// buildValidators turns Config.Validators into the validators, and the
// extra ones a driver added in Config.CustomValidators after them.
func buildValidators(cfg Config) ([]namedValidator, error) {
	var vs []namedValidator
	for _, s := range cfg.Validators {
		v, err := ParseValidator(s)
		if err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
		vs = append(vs, namedValidator{s, v})
	}
	for i, v := range cfg.CustomValidators {
		if v == nil {
			return nil, fmt.Errorf("gossip: custom validator %d is nil", i)
		}
		vs = append(vs, namedValidator{fmt.Sprintf("custom-%d", i), v})
	}
	return vs, nil
}

// validate runs the checks that come after dedup and the acceptance
// window, cheapest first: the id, the signature, then the application
// validators. It returns the event a failed check reports (EventRejected
// or EventRefused), whether the sender is to blame, and why; a nil error
// lets the message through.
//
// Under SigningStrict every honest node runs the same checks before it
// forwards, so whatever fails them is the sender's fault, whoever made it.
// Under SigningNone a forwarder with VerifyIDs off relays a wrong id
// unchecked, so a mismatch is not held against it; a signed message is,
// since no honest node of that mesh forwards one.
func (c *Core) validate(m *wire.Message) (EventKind, bool, error) {
	sh := c.sh
	if (sh.strict || sh.cfg.VerifyIDs) && wire.ComputeMsgID(m.Origin, m.Seq, m.Body) != m.ID {
		return EventRejected, sh.strict, ErrIDMismatch
	}
	switch {
	case sh.strict && m.Auth == nil:
		return EventRejected, true, ErrUnsigned
	case sh.strict:
		if err := sh.cfg.Auth.Verify(m); err != nil {
			if !errors.Is(err, ErrBadSignature) {
				err = fmt.Errorf("%w: %w", ErrBadSignature, err)
			}
			return EventRejected, true, err
		}
	case m.Auth != nil:
		return EventRejected, true, ErrSigned
	}
	for _, v := range sh.validators {
		switch v.v.Validate(m) {
		case Reject:
			return EventRejected, true, fmt.Errorf("%w: %s", ErrRejected, v.name)
		case Ignore:
			return EventRefused, false, fmt.Errorf("%w: %s", ErrIgnored, v.name)
		}
	}
	return 0, false, nil
}

// sign sets m.Auth under SigningStrict.
func (c *Core) sign(m *wire.Message) error {
	if !c.sh.strict {
		return nil
	}
	a, err := c.sh.cfg.Auth.Sign(c.id, m)
	if err != nil {
		return fmt.Errorf("publish: sign: %w", err)
	}
	m.Auth = a
	return nil
}

// ModelAuth is the simulator's cost model of signatures: a keyed hash per
// node instead of ed25519. Node i's "public key" is SHA-256(secret, "key",
// i) and its "signature" of a message is SHA-256(key, signed bytes) in the
// first half of the 64 signature bytes, zeros after. Verify recomputes
// both from the origin, so it rejects, as ed25519 does, a tampered field,
// a signature made with another node's key, and a key that is not the
// origin's.
//
// It is not a signature: whoever holds the ModelAuth can sign as any node,
// and the secret is the run's. It models the shape (96 bytes a message,
// one check per first copy, none per duplicate) and the outcomes, with the
// simulator's own code trusted to sign only as the node it runs. Its cost
// is two SHA-256 passes per check, about 1 µs for a small body, where
// ed25519 verification takes about 50 µs (README, Signed messages).
type ModelAuth struct {
	secret [32]byte
}

// NewModelAuth returns a cost model keyed by seed: the same seed gives the
// same keys and signatures, so runs stay reproducible.
func NewModelAuth(seed uint64) *ModelAuth {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	return &ModelAuth{secret: sha256.Sum256(append([]byte("gossipmesh/model-auth/v1"), b[:]...))}
}

// KeyOf is node id's public key under the model.
func (a *ModelAuth) KeyOf(id wire.NodeID) [wire.AuthKeySize]byte {
	var b [32 + 3 + 8]byte
	copy(b[:], a.secret[:])
	copy(b[32:], "key")
	binary.BigEndian.PutUint64(b[35:], uint64(id))
	return sha256.Sum256(b[:])
}

// sig is the model's signature of m by the holder of key.
func (a *ModelAuth) sig(key *[wire.AuthKeySize]byte, m *wire.Message) [wire.AuthSigSize]byte {
	h := sha256.New()
	h.Write(key[:])
	var hdr [wire.SignedHeaderSize]byte
	h.Write(m.AppendSignedHeader(hdr[:0]))
	h.Write(m.Body)
	var s [wire.AuthSigSize]byte
	h.Sum(s[:0])
	return s
}

// Sign implements Auth: signer's key and the model's signature of m.
func (a *ModelAuth) Sign(signer wire.NodeID, m *wire.Message) (*wire.Auth, error) {
	au := &wire.Auth{Key: a.KeyOf(signer)}
	au.Sig = a.sig(&au.Key, m)
	return au, nil
}

// Verify implements Auth.
func (a *ModelAuth) Verify(m *wire.Message) error {
	if m.Auth.Key != a.KeyOf(m.Origin) {
		return fmt.Errorf("%w: key is not origin %v's", ErrBadSignature, m.Origin)
	}
	if s := a.sig(&m.Auth.Key, m); s != m.Auth.Sig {
		return fmt.Errorf("%w: does not verify", ErrBadSignature)
	}
	return nil
}

// checkValidatorNames reports a duplicate or unknown validator spec.
func checkValidatorNames(specs []string) error {
	for i, s := range specs {
		if _, err := ParseValidator(s); err != nil {
			return fmt.Errorf("gossip: %w", err)
		}
		if slices.Contains(specs[:i], s) {
			return fmt.Errorf("gossip: validator %q listed twice", s)
		}
	}
	return nil
}
