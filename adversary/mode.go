// Package adversary makes a node lie. A Node wraps an honest protocol (a
// gossip.Core, or a scoring guard around one) at the gossip.Protocol seam
// and misbehaves as its Modes say: it drops, alters, delays, forges,
// replays or floods what crosses the seam, so that every driver (the node
// runtime, the in-memory test networks, the simulator) runs the same
// liars, and the defences (signatures, validation, peer scoring) can be
// shown to stop them, or shown to be needed when they are off.
//
// Like the gossip core, the package is pure: no goroutines, sockets, files,
// wall clock or global random source. Time is an input and randomness
// comes from the *rand.Rand handed to Wrap, so a run is reproducible from
// its seed.
package adversary

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gossipmesh/wire"
)

// Kind is one way of misbehaving.
type Kind uint8

// The kinds, in the order Modes.String lists them.
const (
	// Blackhole receives everything and forwards nothing: no payload, no
	// control frame, no repair answer. Only its own publishes leave it.
	Blackhole Kind = iota + 1
	// Tamper forwards every message it did not publish with an altered
	// body, keeping the id (and signature), so that only an id or
	// signature check catches it.
	Tamper
	// Forge publishes, at Rate a second, messages that claim another
	// node's identity (an origin it has seen, else a peer), with a valid
	// id over the forged fields and, in a mesh that signs, its own key
	// and a signature that verifies for nobody.
	Forge
	// Replay keeps the messages it saw and re-sends them at Rate a second
	// to every peer, oldest first around a ring: in turn verbatim and with
	// the publish time rewritten to now, so that a copy past the seen
	// window is fresh again unless a signature covers its time.
	Replay
	// Spam publishes valid messages of its own at Rate a second.
	Spam
	// SpamInvalid sends, at Rate a second, messages under its own origin
	// that no honest node may accept: a wrong id, or (in a mesh that
	// signs) a bad signature.
	SpamInvalid
	// Delay holds every send for Delay before it leaves.
	Delay
	// Censor drops every message from origin Target: it neither forwards
	// nor announces nor serves it.
	Censor
	// Liar announces IHAVE for every message it receives and for ids it
	// never had, serves none of them, and ignores IWANT and GRAFT: every
	// promise it makes is broken.
	Liar
	// Eclipse behaves as a blackhole towards Target: it sends Target
	// nothing and forwards nothing Target published. Many eclipse nodes
	// around one target cut it off (the drivers place them).
	Eclipse

	kindEnd
)

var kindNames = [kindEnd]string{
	Blackhole:   "blackhole",
	Tamper:      "tamper",
	Forge:       "forge",
	Replay:      "replay",
	Spam:        "spam",
	SpamInvalid: "spam-invalid",
	Delay:       "delay",
	Censor:      "censor",
	Liar:        "liar",
	Eclipse:     "eclipse",
}

// String returns the kind's name as Parse spells it.
func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Kinds returns every kind, in canonical order.
func Kinds() []Kind {
	ks := make([]Kind, 0, kindEnd-1)
	for k := Blackhole; k < kindEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// Default rates, for a rate mode given without one ("spam"): high enough
// to matter, low enough that a test mesh of a few dozen cores still runs in
// a moment.
const (
	// DefaultSpamRate is spam's and spam-invalid's rate: 1,000 a second.
	DefaultSpamRate = 1000
	// DefaultForgeRate is forge's and replay's rate: 10 a second.
	DefaultForgeRate = 10
	// MinRate and MaxRate bound every rate: 0.001 to 1,000,000 a second.
	// A rate may be a decimal ("spam=0.1": one every 10 s), so that many
	// adversaries can share a small load between them; below MinRate a
	// node would make one message in more than a quarter of an hour,
	// which no run here lasts. A tick emits at most one second's worth, so
	// MaxRate also bounds one tick's output.
	MinRate = 0.001
	MaxRate = 1_000_000
	// MaxDelay bounds delay: one minute, which already outlives most
	// repair timers; the held sends are bounded too (MaxHeld).
	MaxDelay = time.Minute
)

// Mode is one kind with its parameter.
type Mode struct {
	Kind Kind
	// Rate is how many a second, for Spam, SpamInvalid, Forge and Replay:
	// MinRate to MaxRate, a decimal allowed (0.1 is one every 10 s).
	Rate float64
	// Target is the node that Censor and Eclipse aim at.
	Target wire.NodeID
	// Delay is how long Delay holds each send.
	Delay time.Duration
}

// rated reports whether k takes a rate.
func (k Kind) rated() bool { return k == Spam || k == SpamInvalid || k == Forge || k == Replay }

// targeted reports whether k takes a target node id.
func (k Kind) targeted() bool { return k == Censor || k == Eclipse }

// String renders m as Parse reads it: "blackhole", "spam=20000",
// "forge=0.1", "delay=200ms", "censor=00000000000000ab". A rate is
// written in plain decimals, with the fewest digits that read back to the
// same rate, so that Parse(m.String()) gives m again.
func (m Mode) String() string {
	switch {
	case m.Kind.rated():
		return m.Kind.String() + "=" + strconv.FormatFloat(m.Rate, 'f', -1, 64)
	case m.Kind.targeted():
		return m.Kind.String() + "=" + m.Target.String()
	case m.Kind == Delay:
		return m.Kind.String() + "=" + m.Delay.String()
	}
	return m.Kind.String()
}

// Validate reports what makes m unusable.
func (m Mode) Validate() error {
	switch {
	case m.Kind == 0 || m.Kind >= kindEnd:
		return fmt.Errorf("adversary: unknown mode kind %d", uint8(m.Kind))
	case m.Kind.rated() && !(m.Rate >= MinRate && m.Rate <= MaxRate): // also catches NaN
		return fmt.Errorf("adversary: %s: rate must be %v to %d a second, got %v", m.Kind, MinRate, MaxRate, m.Rate)
	case m.Kind.targeted() && m.Target == 0:
		return fmt.Errorf("adversary: %s needs a target node id", m.Kind)
	case m.Kind == Delay && !(m.Delay > 0 && m.Delay <= MaxDelay):
		return fmt.Errorf("adversary: delay must be in (0, %v], got %v", MaxDelay, m.Delay)
	}
	return nil
}

// Modes is a set of modes, at most one of each kind; empty is an honest
// node.
type Modes []Mode

// Has reports whether ms includes kind k.
func (ms Modes) Has(k Kind) bool {
	_, ok := ms.Get(k)
	return ok
}

// Get returns the mode of kind k in ms, if any.
func (ms Modes) Get(k Kind) (Mode, bool) {
	for _, m := range ms {
		if m.Kind == k {
			return m, true
		}
	}
	return Mode{}, false
}

// String is the canonical form Parse reads back: the modes in kind order,
// comma-separated; "" for an honest node. It is what `mesh status --json`
// shows as a node's "adversary".
func (ms Modes) String() string {
	var b strings.Builder
	for k := Blackhole; k < kindEnd; k++ {
		if m, ok := ms.Get(k); ok {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.String())
		}
	}
	return b.String()
}

// Validate reports the first unusable mode, or a kind given twice.
func (ms Modes) Validate() error {
	var seen [kindEnd]bool
	for _, m := range ms {
		if err := m.Validate(); err != nil {
			return err
		}
		if seen[m.Kind] {
			return fmt.Errorf("adversary: mode %s given twice", m.Kind)
		}
		seen[m.Kind] = true
	}
	return nil
}

// Parse reads a comma-separated list of modes: "blackhole",
// "tamper,liar", "spam=20000", "spam-invalid=500", "forge=5",
// "spam=0.1" (a rate may be a decimal, MinRate to MaxRate a second),
// "replay=50", "delay=200ms", "censor=00000000000000ab" (a node id of up to
// 16 hex digits), "eclipse=TARGETID". A rate mode given without a rate gets
// its default (DefaultSpamRate, DefaultForgeRate). "" and "none" are an
// honest node (nil Modes). Errors name the part that is wrong.
func Parse(s string) (Modes, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var ms Modes
	for _, part := range strings.Split(s, ",") {
		m, err := parseMode(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if err := ms.Validate(); err != nil {
		return nil, err
	}
	return ms, nil
}

func parseMode(part string) (Mode, error) {
	name, val, hasVal := strings.Cut(part, "=")
	var k Kind
	for c := Blackhole; c < kindEnd; c++ {
		if kindNames[c] == name {
			k = c
		}
	}
	if k == 0 {
		return Mode{}, fmt.Errorf("adversary: unknown mode %q in %q (want one of %s)", name, part, kindList())
	}
	m := Mode{Kind: k}
	switch {
	case k.rated():
		m.Rate = DefaultSpamRate
		if k == Forge || k == Replay {
			m.Rate = DefaultForgeRate
		}
		if hasVal {
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || math.IsNaN(r) {
				return Mode{}, fmt.Errorf("adversary: %q: rate %q is not a number of messages a second", part, val)
			}
			m.Rate = r
		}
	case k.targeted():
		if !hasVal || val == "" {
			return Mode{}, fmt.Errorf("adversary: %q: %s needs a target node id (%s=ID, up to 16 hex digits)", part, k, k)
		}
		if len(val) > 16 {
			return Mode{}, fmt.Errorf("adversary: %q: target %q: want a node id of up to 16 hex digits", part, val)
		}
		id, err := strconv.ParseUint(val, 16, 64)
		if err != nil {
			return Mode{}, fmt.Errorf("adversary: %q: target %q: want a node id of up to 16 hex digits", part, val)
		}
		m.Target = wire.NodeID(id)
	case k == Delay:
		if !hasVal {
			return Mode{}, fmt.Errorf("adversary: %q: delay needs a duration (delay=200ms)", part)
		}
		d, err := time.ParseDuration(val)
		if err != nil {
			return Mode{}, fmt.Errorf("adversary: %q: %w", part, err)
		}
		m.Delay = d
	default:
		if hasVal {
			return Mode{}, fmt.Errorf("adversary: %q: %s takes no value", part, k)
		}
	}
	if err := m.Validate(); err != nil {
		return Mode{}, fmt.Errorf("%w (in %q)", err, part)
	}
	return m, nil
}

func kindList() string {
	names := make([]string, 0, kindEnd-1)
	for k := Blackhole; k < kindEnd; k++ {
		names = append(names, kindNames[k])
	}
	return strings.Join(names, ", ")
}
