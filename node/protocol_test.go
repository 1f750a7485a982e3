package node_test

import (
	"strings"
	"testing"

	"gossipmesh/node"
	"gossipmesh/wire"
)

// TestDisjointProtocolVersionsRefusedAtHandshake: two nodes that share no
// protocol version refuse each other at the handshake, each logging which
// versions either side speaks and counting the refusal under its own
// reason, and no link comes up. A third node that speaks both versions
// links to each of them.
func TestDisjointProtocolVersionsRefusedAtHandshake(t *testing.T) {
	speaks := func(ps ...wire.ProtocolVersion) func(*node.Config) {
		return func(c *node.Config) { c.Protocols = ps }
	}
	v1 := wire.ProtocolVersion{Protocol: wire.ProtoGossip, Version: 1}
	v2 := wire.ProtocolVersion{Protocol: wire.ProtoGossip, Version: 2}
	aLogs, bLogs := &logSink{}, &logSink{}
	a := startTCPNode(t, node.KeyForTest(1), nil, aLogs, speaks(v1))
	b := startTCPNode(t, node.KeyForTest(2), []string{a.Addr()}, bLogs, func(c *node.Config) { c.Peers = 1 }, speaks(v2))

	refused := func(n *node.Node, logs *logSink, want string) func() bool {
		return func() bool {
			return labelled(t, n, "gossipmesh_rejected_total", "reason", "no_common_protocol") >= 1 &&
				logs.find(func(rec map[string]any) bool {
					err, _ := rec["err"].(string)
					return rec["msg"] == "dropping connection" && strings.Contains(err, want)
				}) != nil
		}
	}
	eventually(t, "the listener to refuse the dialer, saying why", refused(a, aLogs,
		"peer "+b.ID().String()+" ("+b.Addr()+"): no common protocol version: this node speaks gossip/1, the peer speaks gossip/2"))
	eventually(t, "the dialer to refuse the listener, saying why", refused(b, bLogs,
		"peer "+a.ID().String()+" ("+a.Addr()+"): no common protocol version: this node speaks gossip/2, the peer speaks gossip/1"))
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Fatalf("a link came up: %v, %v", a.Peers(), b.Peers())
	}

	// A node that speaks both links to both: the refusal was about
	// versions, not the nodes.
	c := startTCPNode(t, node.KeyForTest(3), []string{a.Addr(), b.Addr()}, nil, func(c *node.Config) { c.Peers = 2 }, speaks(v2, v1))
	eventually(t, "the bilingual node to link to both", func() bool { return len(c.Peers()) == 2 })
	flows(t, "across gossip/1", a, c)
	flows(t, "across gossip/2", b, c)
}

func TestConfigRefusesBadProtocols(t *testing.T) {
	for name, ps := range map[string][]wire.ProtocolVersion{
		"empty": {},
		"twice": {{Protocol: wire.ProtoGossip, Version: 1}, {Protocol: wire.ProtoGossip, Version: 1}},
	} {
		cfg := node.DefaultConfig()
		cfg.Protocols = ps
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "protocols") {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}
