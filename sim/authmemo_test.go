package sim

import (
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// countingAuth counts the Verify calls that reach the model.
type countingAuth struct {
	gossip.Auth
	verifies int
}

func (c *countingAuth) Verify(m *wire.Message) error {
	c.verifies++
	return c.Auth.Verify(m)
}

// TestVerifyMemoVerdicts: the memo answers every copy as the model does.
// After the honest message fills its slot, each altered copy (same id,
// so the same slot) is still checked by the model and rejected, and the
// honest one still passes; only repeats of checked content skip the
// model.
func TestVerifyMemoVerdicts(t *testing.T) {
	model := gossip.NewModelAuth(3)
	inner := &countingAuth{Auth: model}
	memo := newVerifyMemo(inner)
	body := []byte("honest body")
	honest := &wire.Message{Origin: 5, Seq: 1, PublishedAt: 100, Body: body, Hop: 1}
	honest.ID = wire.ComputeMsgID(honest.Origin, honest.Seq, honest.Body)
	var err error
	if honest.Auth, err = memo.Sign(honest.Origin, honest); err != nil {
		t.Fatal(err)
	}

	alter := map[string]func(m *wire.Message){
		"body":         func(m *wire.Message) { m.Body = []byte("honest bodY") },
		"longer body":  func(m *wire.Message) { m.Body = []byte("honest body!") },
		"empty body":   func(m *wire.Message) { m.Body = nil },
		"seq":          func(m *wire.Message) { m.Seq = 2 },
		"published at": func(m *wire.Message) { m.PublishedAt = 101 },
		"origin":       func(m *wire.Message) { m.Origin = 6 },
		"id":           func(m *wire.Message) { m.ID[len(m.ID)-1] ^= 1 },
		"signature": func(m *wire.Message) {
			a := *m.Auth
			a.Sig[0] ^= 1
			m.Auth = &a
		},
		"key": func(m *wire.Message) {
			a := *m.Auth
			a.Key[0] ^= 1
			m.Auth = &a
		},
		"another signer": func(m *wire.Message) {
			a, err := model.Sign(6, m) // a liar signing what origin 5 published
			if err != nil {
				t.Fatal(err)
			}
			m.Auth = a
		},
	}
	for name, f := range alter {
		if err := memo.Verify(honest); err != nil {
			t.Fatalf("%s: honest copy rejected: %v", name, err)
		}
		m := *honest
		m.Body = append([]byte(nil), honest.Body...)
		f(&m)
		want := model.Verify(&m)
		if want == nil {
			t.Fatalf("%s: the model accepts the altered copy; the case tests nothing", name)
		}
		if got := memo.Verify(&m); got == nil || got.Error() != want.Error() {
			t.Errorf("%s: memo says %v, model %v", name, got, want)
		}
		if got := memo.Verify(&m); got == nil {
			t.Errorf("%s: altered copy accepted on its second check", name)
		}
	}

	// Repeats of checked content, at any hop and from any copy of the
	// struct, are answered without the model; a body changed in place
	// after its check is not a repeat.
	if err := memo.Verify(honest); err != nil {
		t.Fatalf("honest copy rejected: %v", err)
	}
	m := *honest
	m.Hop = 7
	m.Body = append([]byte(nil), body...)
	before := inner.verifies
	for range 100 {
		if err := memo.Verify(&m); err != nil {
			t.Fatalf("honest copy at hop 7 rejected: %v", err)
		}
	}
	if n := inner.verifies - before; n != 0 {
		t.Errorf("100 checks of checked content reached the model %d times, want 0", n)
	}
	m.Body[0] = 'H'
	if err := memo.Verify(&m); err == nil {
		t.Error("a body changed in place after its check was accepted")
	}
}
