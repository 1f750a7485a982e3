// Package identity holds a node's ed25519 key pair and derives the node id
// from its public key, so that an id is no longer a claim: a peer that says
// it is node X must hold the private key whose public key hashes to X.
//
// The id is the first 8 bytes of SHA-256("gossipmesh/node-id/v1" ||
// public key), read big-endian (0 is not an id: a key that hashed to it is
// refused). Choosing a key for a given id therefore means grinding keys
// until 64 bits of a hash match: about 2^63 key generations, far beyond an
// attacker. Choosing one of k ids costs 2^64/k; choosing an id that merely
// shares a b-bit prefix with a target costs about 2^b, which matters only
// to protocols that place nodes by id (this mesh does not: its peers come
// from the topology and peer exchange, not from id distance).
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"gossipmesh/wire"
)

// PublicKeySize is the size of a public key on the wire.
const PublicKeySize = ed25519.PublicKeySize

// SignatureSize is the size of a signature on the wire.
const SignatureSize = ed25519.SignatureSize

// idDomain separates the node-id hash from every other use of SHA-256 over
// a public key.
const idDomain = "gossipmesh/node-id/v1"

// ErrZeroID is the refusal of a key whose id would be 0, which means "no
// node" everywhere in the mesh. It happens for one key in 2^64.
var ErrZeroID = errors.New("identity: key hashes to node id 0")

// IDOf derives the node id of a public key (see the package comment). It
// returns 0 for a key of the wrong size or one that hashes to 0; neither
// is the id of any node.
func IDOf(pub []byte) wire.NodeID {
	if len(pub) != PublicKeySize {
		return 0
	}
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(pub)
	var sum [sha256.Size]byte
	return wire.NodeID(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]))
}

// Key is a node's ed25519 key pair. Its zero value is not a key: build one
// with Generate, FromSeed or Load.
type Key struct {
	priv ed25519.PrivateKey
	id   wire.NodeID
}

// Generate returns a fresh key from r (crypto/rand.Reader when nil),
// retrying in the 1-in-2^64 case that the key's id would be 0.
func Generate(r io.Reader) (*Key, error) {
	if r == nil {
		r = rand.Reader
	}
	for {
		_, priv, err := ed25519.GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("identity: generate key: %w", err)
		}
		if k, err := fromPrivate(priv); err == nil {
			return k, nil
		}
	}
}

// FromSeed returns the key whose 32-byte ed25519 seed is seed: the same
// seed gives the same key and id, so that tests and launchers that seed
// their runs get reproducible identities.
func FromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return fromPrivate(ed25519.NewKeyFromSeed(seed))
}

func fromPrivate(priv ed25519.PrivateKey) (*Key, error) {
	id := IDOf(priv.Public().(ed25519.PublicKey))
	if id == 0 {
		return nil, ErrZeroID
	}
	return &Key{priv: priv, id: id}, nil
}

// ID is the node id this key proves.
func (k *Key) ID() wire.NodeID { return k.id }

// Public returns the public key. The slice is the key's: do not modify.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Sign signs msg. Callers put a domain string at the front of msg so that
// a signature made for one purpose (a handshake, a message) never passes
// for another.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Verify reports whether sig is pub's signature of msg.
func Verify(pub, msg, sig []byte) bool {
	return len(pub) == PublicKeySize && len(sig) == SignatureSize && ed25519.Verify(pub, msg, sig)
}

// pemType is the PEM block type of a key file: PKCS #8, as openssl writes
// it, so that `openssl pkey -in FILE -noout -text` reads it.
const pemType = "PRIVATE KEY"

// Save writes k to path as a PKCS #8 PEM file readable by its owner only
// (0600), through a temporary file and a rename so that a crash never
// leaves half a key.
func (k *Key) Save(path string) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return fmt.Errorf("identity: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("identity: save key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: save key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: save key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("identity: save key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("identity: save key: %w", err)
	}
	return nil
}

// maxKeyFile bounds what Load reads: a key file is a few hundred bytes.
const maxKeyFile = 16 << 10

// Load reads a key Save wrote (or any PKCS #8 PEM ed25519 key).
func Load(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: load key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("identity: load key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("identity: load key %s: larger than %d bytes, not a key file", path, maxKeyFile)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("identity: load key %s: no %q PEM block", path, pemType)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: load key %s: %w", path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: load key %s: a %T key, want ed25519", path, parsed)
	}
	k, err := fromPrivate(priv)
	if err != nil {
		return nil, fmt.Errorf("identity: load key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreate loads the key at path, or, if there is no file there,
// generates one and saves it, so that a node restarted with the same path
// keeps its identity. created says which happened.
func LoadOrCreate(path string) (k *Key, created bool, err error) {
	k, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if k, err = Generate(nil); err != nil {
		return nil, false, err
	}
	if err := k.Save(path); err != nil {
		return nil, false, err
	}
	return k, true, nil
}
