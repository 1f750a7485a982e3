package sim

import (
	"bytes"
	"encoding/binary"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// memoSlots is the size of a verifyMemo's table: more than the messages a
// run has in flight at once in the experiments (20 publishers' messages,
// an adversary's forgeries), a power of two for the index mask, and small
// (about 50 KiB) beside a run's cores.
const memoSlots = 256

// verifyMemo is the Auth of a run signed by the cost model
// (gossip.ModelAuth): it signs through the model and answers Verify from a
// table of the answers it gave before, computing the model's two hashes
// only for signed content it has not checked yet. Every node of the run
// still checks every first copy it receives, and gets the answer the
// model would give: a verdict is a pure function of what Verify reads
// (the id, origin, sequence, publish time and body that the signature
// covers, and the key and signature), and a slot answers only a message
// equal to the one it holds in all of those, body included, byte for
// byte. A forged or tampered copy differs from the honest one in one of
// them, so it is checked by the model and rejected as before. What it
// saves is the work: at a million nodes a broadcast is checked a million
// times, once per node, with the same signed content each time.
//
// A verifyMemo is not safe for concurrent use: each goroutine that runs
// cores (each worker, each scenario) has its own, in a gossip.Shared of
// its own (Sim.workerShared). It is used with the model only: with real
// keys (--auth ed25519) the point of the run is to pay for each check.
type verifyMemo struct {
	auth  gossip.Auth
	slots [memoSlots]memoSlot
}

// memoSlot is one verdict and what it was given: the message's signed
// fields, its auth block and a copy of its body.
type memoSlot struct {
	set    bool
	id     wire.MsgID
	origin wire.NodeID
	seq    uint64
	pubAt  int64
	auth   wire.Auth
	body   []byte
	err    error
}

// newVerifyMemo returns a verifyMemo over auth with an empty table.
func newVerifyMemo(auth gossip.Auth) *verifyMemo { return &verifyMemo{auth: auth} }

// Sign implements gossip.Auth: the model's signature, unchanged.
func (v *verifyMemo) Sign(signer wire.NodeID, m *wire.Message) (*wire.Auth, error) {
	return v.auth.Sign(signer, m)
}

// Verify implements gossip.Auth: the model's verdict on m, from the table
// when m's signed content and auth block were checked before.
func (v *verifyMemo) Verify(m *wire.Message) error {
	e := &v.slots[binary.LittleEndian.Uint32(m.ID[:4])&(memoSlots-1)]
	if e.set && e.id == m.ID && e.origin == m.Origin && e.seq == m.Seq && e.pubAt == m.PublishedAt &&
		e.auth == *m.Auth && bytes.Equal(e.body, m.Body) {
		return e.err
	}
	err := v.auth.Verify(m)
	*e = memoSlot{set: true, id: m.ID, origin: m.Origin, seq: m.Seq, pubAt: m.PublishedAt,
		auth: *m.Auth, body: append(e.body[:0], m.Body...), err: err}
	return err
}

var _ gossip.Auth = (*verifyMemo)(nil)
