package node

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"gossipmesh/identity"
)

// KeyForTest is the key of test node i: the same i gives the same key (and
// id) in every test and run, as a fixed id did before ids derived from
// keys. Different i give different keys. Tests of this package and of
// node_test use it.
func KeyForTest(i int) *identity.Key {
	h := sha256.New()
	h.Write([]byte("gossipmesh/node-test-key"))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	k, err := identity.FromSeed(h.Sum(nil))
	if err != nil {
		panic(fmt.Sprintf("test key %d: %v", i, err)) // 1 in 2^64
	}
	return k
}
