package identity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gossipmesh/identity"
)

func TestIDIsDerivedFromThePublicKey(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, err := identity.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := identity.FromSeed(seed)
	if a.ID() == 0 || a.ID() != b.ID() || a.ID() != identity.IDOf(a.Public()) {
		t.Fatalf("ids %v %v %v: want one non-zero id per key", a.ID(), b.ID(), identity.IDOf(a.Public()))
	}
	c, _ := identity.FromSeed(bytes.Repeat([]byte{8}, 32))
	if c.ID() == a.ID() {
		t.Fatal("two keys, one id")
	}
	if identity.IDOf([]byte("short")) != 0 {
		t.Fatal("a malformed key has an id")
	}
}

func TestSignVerify(t *testing.T) {
	k, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := k.Sign([]byte("hello"))
	if !identity.Verify(k.Public(), []byte("hello"), sig) {
		t.Fatal("own signature refused")
	}
	if identity.Verify(k.Public(), []byte("hellO"), sig) {
		t.Fatal("signature passes for another message")
	}
	if identity.Verify(k.Public(), []byte("hello"), sig[:10]) {
		t.Fatal("short signature passes")
	}
}

func TestLoadOrCreateKeepsTheIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	k, created, err := identity.LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created %v, err %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, created, err := identity.LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created %v, err %v", created, err)
	}
	if again.ID() != k.ID() {
		t.Fatalf("restart changed the id: %v, then %v", k.ID(), again.ID())
	}
}

func TestLoadRefusesWhatIsNotAKey(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("not a pem file"),
		"badder":  []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"huge":    bytes.Repeat([]byte("x"), 1<<20),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := identity.Load(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
		if _, _, err := identity.LoadOrCreate(path); err == nil {
			t.Errorf("%s: LoadOrCreate replaced a bad key file instead of refusing it", name)
		}
	}
}
