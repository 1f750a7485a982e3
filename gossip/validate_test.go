package gossip_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/wire"
)

// signer is a node key and the core config that signs with it.
type signer struct {
	key *identity.Key
	cfg gossip.Config
}

func newSigner(t testing.TB, seed byte) signer {
	t.Helper()
	k, err := identity.FromSeed(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg := gossip.DefaultConfig()
	cfg.Auth = identity.NewMessageAuth(k)
	return signer{key: k, cfg: cfg}
}

func (s signer) core(t testing.TB, peers ...wire.NodeID) *gossip.Core {
	t.Helper()
	c, err := gossip.New(s.cfg, s.key.ID(), rand.New(rand.NewPCG(1, uint64(s.key.ID()))))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		c.AddPeer(p)
	}
	return c
}

// publish returns a message s's node publishes at now, as its peers
// receive it (hop 1).
func (s signer) publish(t testing.TB, now int64, body string) *wire.Message {
	t.Helper()
	var out gossip.Output
	m, err := s.core(t).Publish(now, []byte(body), &out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Auth == nil {
		t.Fatal("strict signing published an unsigned message")
	}
	c := *m
	c.Hop = 1
	return &c
}

// only returns the one event of out, failing otherwise.
func only(t *testing.T, out *gossip.Output) gossip.Event {
	t.Helper()
	if len(out.Events) != 1 {
		t.Fatalf("got %d events, want 1: %+v", len(out.Events), out.Events)
	}
	return out.Events[0]
}

// forgeries are the ways a peer can lie about a message it did not sign.
func forgeries(t *testing.T, honest *wire.Message, origin, mallory signer) []struct {
	name string
	m    *wire.Message
	want error
} {
	t.Helper()
	var out []struct {
		name string
		m    *wire.Message
		want error
	}
	add := func(name string, want error, change func(m *wire.Message)) {
		m := *honest
		change(&m)
		out = append(out, struct {
			name string
			m    *wire.Message
			want error
		}{name, &m, want})
	}
	add("tampered body", gossip.ErrIDMismatch, func(m *wire.Message) { m.Body = []byte("tampered") })
	add("tampered body, id recomputed", gossip.ErrBadSignature, func(m *wire.Message) {
		m.Body = []byte("tampered")
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	})
	add("freshened publish time", gossip.ErrBadSignature, func(m *wire.Message) { m.PublishedAt++ })
	add("unsigned", gossip.ErrUnsigned, func(m *wire.Message) { m.Auth = nil })
	add("bad signature", gossip.ErrBadSignature, func(m *wire.Message) {
		a := *m.Auth
		a.Sig[0] ^= 1
		m.Auth = &a
	})
	add("origin's key, mallory's signature", gossip.ErrBadSignature, func(m *wire.Message) {
		a, err := identity.SignMessage(mallory.key, &wire.Message{ID: m.ID, Origin: mallory.key.ID(), Seq: m.Seq, PublishedAt: m.PublishedAt, Body: m.Body})
		if err != nil {
			t.Fatal(err)
		}
		a.Key = m.Auth.Key
		m.Auth = a
	})
	// Mallory publishes as the origin, signed with its own key: the key
	// does not hash to the origin.
	forged := &wire.Message{Origin: origin.key.ID(), Seq: 99, Hop: 1, PublishedAt: honest.PublishedAt, Body: []byte("forged")}
	forged.ID = wire.ComputeMsgID(forged.Origin, forged.Seq, forged.Body)
	a, err := identity.SignMessage(mallory.key, &wire.Message{ID: forged.ID, Origin: mallory.key.ID(), Seq: forged.Seq, PublishedAt: forged.PublishedAt, Body: forged.Body})
	if err != nil {
		t.Fatal(err)
	}
	forged.Auth = a
	out = append(out, struct {
		name string
		m    *wire.Message
		want error
	}{"forged origin, own key", forged, gossip.ErrBadSignature})
	return out
}

// TestStrictRejectsForgeries: under strict signing every forgery of a
// message is rejected with its own error and the sender blamed, nothing
// is forwarded, and the honest copy that comes after it is delivered, once,
// with the honest body.
func TestStrictRejectsForgeries(t *testing.T) {
	alice, bob, mallory := newSigner(t, 1), newSigner(t, 2), newSigner(t, 3)
	const now = int64(time.Second)
	honest := alice.publish(t, now, "hello")
	for _, f := range forgeries(t, honest, alice, mallory) {
		t.Run(f.name, func(t *testing.T) {
			b := bob.core(t, mallory.key.ID(), alice.key.ID(), 77)
			var out gossip.Output
			b.Receive(now, mallory.key.ID(), f.m, &out)
			e := only(t, &out)
			if e.Kind != gossip.EventRejected || !errors.Is(e.Err, f.want) || !e.PeerFault {
				t.Fatalf("got %v (%v, fault %v), want rejected with %v, the sender at fault", e.Kind, e.Err, e.PeerFault, f.want)
			}
			if len(out.Sends) != 0 {
				t.Fatalf("a forgery was forwarded: %+v", out.Sends)
			}
			out.Reset()
			b.Receive(now, alice.key.ID(), honest, &out)
			if e := out.Events[0]; e.Kind != gossip.EventDelivered || string(e.Msg.Body) != "hello" {
				t.Fatalf("honest copy after the forgery: %v %q, want delivered \"hello\"", e.Kind, e.Msg.Body)
			}
			if len(out.Sends) == 0 {
				t.Fatal("the honest copy was not forwarded")
			}
			out.Reset()
			b.Receive(now, alice.key.ID(), honest, &out)
			if e := only(t, &out); e.Kind != gossip.EventDuplicate {
				t.Fatalf("second honest copy: %v, want duplicate", e.Kind)
			}
			// A forgery of a delivered id is only a duplicate: dedup
			// comes before the crypto.
			if f.m.ID == honest.ID {
				out.Reset()
				b.Receive(now, mallory.key.ID(), f.m, &out)
				if e := only(t, &out); e.Kind != gossip.EventDuplicate {
					t.Fatalf("forgery of a delivered id: %v, want duplicate", e.Kind)
				}
			}
		})
	}
}

// TestNoneRejectsSigned: under SigningNone a node publishes unsigned, and
// rejects a signed message (the sender at fault) but takes an unsigned one.
func TestNoneRejectsSigned(t *testing.T) {
	alice := newSigner(t, 1)
	cfg := gossip.DefaultConfig()
	cfg.Signing = gossip.SigningNone
	bob, err := gossip.New(cfg, 2, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	var out gossip.Output
	own, err := bob.Publish(0, []byte("mine"), &out)
	if err != nil || own.Auth != nil {
		t.Fatalf("publish under none: %v, auth %v; want unsigned", err, own.Auth)
	}
	signed := alice.publish(t, 0, "signed")
	out.Reset()
	bob.Receive(0, alice.key.ID(), signed, &out)
	if e := only(t, &out); e.Kind != gossip.EventRejected || !errors.Is(e.Err, gossip.ErrSigned) || !e.PeerFault {
		t.Fatalf("signed message under none: %v %v fault %v, want rejected ErrSigned", e.Kind, e.Err, e.PeerFault)
	}
	unsigned := *signed
	unsigned.Auth = nil
	out.Reset()
	bob.Receive(0, alice.key.ID(), &unsigned, &out)
	if e := only(t, &out); e.Kind != gossip.EventDelivered {
		t.Fatalf("unsigned message under none: %v %v, want delivered", e.Kind, e.Err)
	}
}

// TestReplay: a signed message replayed after its window is refused as
// expired, whether the seen-cache forgot it by age or for room, and is
// never delivered twice.
func TestReplay(t *testing.T) {
	alice, bob := newSigner(t, 1), newSigner(t, 2)
	ttl := int64(bob.cfg.SeenTTL)
	t.Run("past the window, forgotten by age", func(t *testing.T) {
		m := alice.publish(t, 0, "old")
		b := bob.core(t, alice.key.ID())
		var out gossip.Output
		b.Receive(0, alice.key.ID(), m, &out)
		if e := only(t, &out); e.Kind != gossip.EventDelivered {
			t.Fatalf("first copy: %v", e.Kind)
		}
		out.Reset()
		b.Tick(ttl, &out) // forgets the id
		if b.SeenLen() != 0 {
			t.Fatalf("seen-cache holds %d ids after the window", b.SeenLen())
		}
		b.Receive(ttl, alice.key.ID(), m, &out)
		if e := only(t, &out); e.Kind != gossip.EventRefused || !errors.Is(e.Err, gossip.ErrExpired) || e.PeerFault {
			t.Fatalf("replay after the window: %v %v, want refused ErrExpired", e.Kind, e.Err)
		}
	})
	t.Run("inside the window, forgotten for room", func(t *testing.T) {
		s := bob
		s.cfg.SeenCapacity = 2
		b := s.core(t, alice.key.ID())
		var out gossip.Output
		var first *wire.Message
		for i := range 3 {
			m := alice.publish(t, int64(i), string(rune('a'+i)))
			if i == 0 {
				first = m
			}
			b.Receive(int64(i), alice.key.ID(), m, &out)
		}
		out.Reset()
		b.Receive(3, alice.key.ID(), first, &out)
		if e := only(t, &out); e.Kind != gossip.EventRefused || !errors.Is(e.Err, gossip.ErrUnderLoad) {
			t.Fatalf("replay of a forgotten id: %v %v, want refused ErrUnderLoad", e.Kind, e.Err)
		}
	})
	t.Run("publish time beyond the skew allowance", func(t *testing.T) {
		m := alice.publish(t, int64(bob.cfg.MaxFuture)+1, "future")
		b := bob.core(t, alice.key.ID())
		var out gossip.Output
		b.Receive(0, alice.key.ID(), m, &out)
		if e := only(t, &out); e.Kind != gossip.EventRefused || !errors.Is(e.Err, gossip.ErrFuture) {
			t.Fatalf("future message: %v %v, want refused ErrFuture", e.Kind, e.Err)
		}
	})
}

// TestValidators: a Reject drops the message, blames the sender and
// forwards nothing; an Ignore drops it without blame; both leave the id
// unseen, and validators run in order after the signature.
func TestValidators(t *testing.T) {
	alice, bob := newSigner(t, 1), newSigner(t, 2)
	bob.cfg.Validators = []string{"utf8", "max-body=8"}
	var calls int
	bob.cfg.CustomValidators = []gossip.Validator{gossip.ValidatorFunc(func(m *wire.Message) gossip.Verdict {
		calls++
		return gossip.Accept
	})}
	for _, tc := range []struct {
		body  string
		kind  gossip.EventKind
		err   error
		fault bool
		calls int
	}{
		{"ok", gossip.EventDelivered, nil, false, 1},
		{"bad \xff", gossip.EventRejected, gossip.ErrRejected, true, 0},
		{"too long for it", gossip.EventRefused, gossip.ErrIgnored, false, 0},
	} {
		calls = 0
		b := bob.core(t, alice.key.ID(), 9)
		m := alice.publish(t, 0, tc.body)
		var out gossip.Output
		b.Receive(0, alice.key.ID(), m, &out)
		e := out.Events[0]
		if e.Kind != tc.kind || tc.err != nil && !errors.Is(e.Err, tc.err) || e.PeerFault != tc.fault || calls != tc.calls {
			t.Errorf("%q: %v %v fault %v, custom called %d; want %v %v fault %v, called %d", tc.body, e.Kind, e.Err, e.PeerFault, calls, tc.kind, tc.err, tc.fault, tc.calls)
		}
		if tc.err != nil && (len(out.Sends) != 0 || b.SeenLen() != 0) {
			t.Errorf("%q: forwarded %d copies, %d ids seen; want none", tc.body, len(out.Sends), b.SeenLen())
		}
	}
	// A forgery never reaches the validators.
	calls = 0
	m := *alice.publish(t, 0, "ok")
	m.Auth = nil
	var out gossip.Output
	bob.core(t, alice.key.ID()).Receive(0, alice.key.ID(), &m, &out)
	if calls != 0 {
		t.Error("an unsigned message reached the validators")
	}
}

// TestConfigSigning: strict signing without an Auth, an unknown policy and
// an unknown or repeated validator are configuration errors.
func TestConfigSigning(t *testing.T) {
	for name, change := range map[string]func(c *gossip.Config){
		"strict without auth": func(c *gossip.Config) { c.Auth = nil },
		"unknown policy":      func(c *gossip.Config) { c.Signing = "maybe" },
		"unknown validator":   func(c *gossip.Config) { c.Validators = []string{"xml"} },
		"repeated validator":  func(c *gossip.Config) { c.Validators = []string{"utf8", "utf8"} },
		"max-body without N":  func(c *gossip.Config) { c.Validators = []string{"max-body"} },
	} {
		cfg := newSigner(t, 1).cfg
		change(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

// TestModelAuth: the simulator's cost model rejects what ed25519 rejects:
// a changed field, another node's key, a signature by another node.
func TestModelAuth(t *testing.T) {
	a := gossip.NewModelAuth(7)
	m := &wire.Message{Origin: 5, Seq: 1, PublishedAt: 10, Body: []byte("x")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	au, err := a.Sign(5, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Auth = au
	if err := a.Verify(m); err != nil {
		t.Fatalf("honest message: %v", err)
	}
	tampered := *m
	tampered.PublishedAt++
	byOther := *m
	byOther.Auth, _ = a.Sign(6, m)
	keyOnly := *m
	keyOnly.Auth = &wire.Auth{Key: m.Auth.Key, Sig: byOther.Auth.Sig}
	for name, mm := range map[string]*wire.Message{"tampered": &tampered, "signed by another": &byOther, "origin's key, another's signature": &keyOnly} {
		if err := a.Verify(mm); !errors.Is(err, gossip.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if err := gossip.NewModelAuth(8).Verify(m); !errors.Is(err, gossip.ErrBadSignature) {
		t.Errorf("another run's model: %v, want ErrBadSignature", err)
	}
}

// BenchmarkReceiveSigning is the cost of delivering one first copy (a 100-byte
// body) under each signing policy: strict verifies an ed25519 signature,
// none does not.
func BenchmarkReceiveSigning(b *testing.B) {
	alice := newSigner(b, 1)
	for _, pol := range []gossip.Signing{gossip.SigningStrict, gossip.SigningNone} {
		b.Run(string(pol), func(b *testing.B) {
			s := newSigner(b, 2)
			s.cfg.Signing = pol
			s.cfg.SeenCapacity = 1 << 20
			c := s.core(b, alice.key.ID(), 9, 10)
			ac := alice.core(b)
			if pol == gossip.SigningNone {
				cfg := alice.cfg
				cfg.Signing = pol
				ac, _ = gossip.New(cfg, alice.key.ID(), rand.New(rand.NewPCG(1, 1)))
			}
			body := bytes.Repeat([]byte("b"), 100)
			msgs := make([]*wire.Message, b.N)
			var out gossip.Output
			for i := range msgs {
				m, err := ac.Publish(0, body, &out)
				if err != nil {
					b.Fatal(err)
				}
				c := *m
				c.Hop = 1
				msgs[i] = &c
				out.Reset()
			}
			b.ResetTimer()
			for _, m := range msgs {
				c.Receive(0, alice.key.ID(), m, &out)
				out.Reset()
			}
		})
	}
}
