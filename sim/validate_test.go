package sim

import (
	"testing"

	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/wire"
)

// TestSigningAndValidatorsRunInTheSimulator: the simulator drives the
// core's validation pipeline as every driver does. Strict signing (the
// cost model and real derived ed25519 keys) and no signing reach every
// node alike; a validator that rejects the simulator's binary bodies
// (json) stops each broadcast at its publisher; one that ignores them
// (max-body=4, under the 8-byte bodies) does too, without blame.
func TestSigningAndValidatorsRunInTheSimulator(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(c *gossip.Config)
		reliable bool
	}{
		{"strict, model", func(c *gossip.Config) {}, true},
		{"strict, ed25519", func(c *gossip.Config) { c.Auth = identity.NewDerivedAuth(1) }, true},
		{"none", func(c *gossip.Config) { c.Signing = gossip.SigningNone }, true},
		{"json validator", func(c *gossip.Config) { c.Validators = []string{"json"} }, false},
		{"max-body=4 validator", func(c *gossip.Config) { c.Validators = []string{"max-body=4"} }, false},
	} {
		cfg := small(TopologyUndirected, 8)
		cfg.Nodes = 100
		tc.change(&cfg.Gossip)
		r := run(t, cfg)
		switch {
		case tc.reliable && r.Reliability != 1:
			t.Errorf("%s: reliability %v, want 1", tc.name, r.Reliability)
		case !tc.reliable && r.Reliability != 1.0/float64(cfg.Nodes):
			t.Errorf("%s: reliability %v, want only the publisher (%v)", tc.name, r.Reliability, 1.0/float64(cfg.Nodes))
		}
	}
}

// TestSimulatedForgeryRejected: a core of the simulator's configuration
// (the cost model, shared by every node) rejects a copy whose body a
// forwarder changed, and one that node 2 signed as node 1.
func TestSimulatedForgeryRejected(t *testing.T) {
	cfg := small(TopologyUndirected, 8)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth := s.shared.Config().Auth
	m := &wire.Message{Origin: 1, Seq: 1, Hop: 1, Body: []byte("body")}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	if m.Auth, err = auth.Sign(1, m); err != nil {
		t.Fatal(err)
	}
	tampered := *m
	tampered.Body = []byte("bodz")
	tampered.ID = wire.ComputeMsgID(tampered.Origin, tampered.Seq, tampered.Body)
	forged := *m
	forged.Auth, _ = auth.Sign(2, m)
	for name, f := range map[string]*wire.Message{"tampered": &tampered, "signed by node 2 as node 1": &forged} {
		c := gossip.NewShared(s.shared, 3, &s.rands[2])
		var out gossip.Output
		c.Receive(0, 2, f, &out)
		if len(out.Events) != 1 || out.Events[0].Kind != gossip.EventRejected {
			t.Errorf("%s: %+v, want one rejection", name, out.Events)
		}
		out.Reset()
		c.Receive(0, 4, m, &out)
		if out.Events[0].Kind != gossip.EventDelivered {
			t.Errorf("%s: the honest copy after it: %v, want delivered", name, out.Events[0].Kind)
		}
	}
}
