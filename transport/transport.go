// Package transport is the seam between the node runtime and the network.
// The runtime only ever listens and dials through a Transport, so the same
// code runs over real TCP sockets (transport/tcp) and over an in-process
// network with cuttable links (transport/memnet) in tests with hundreds of
// nodes. This is hashicorp/memberlist's Transport idea at the byte-stream
// level: everything above a net.Conn stays identical.
package transport

import (
	"context"
	"net"
)

// Transport opens the byte streams that carry gossip frames.
type Transport interface {
	// Listen accepts connections on addr ("host:port"; port 0 picks one).
	// The listener's Addr is the address other nodes dial.
	Listen(addr string) (net.Listener, error)
	// Dial connects to addr, giving up when ctx ends.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}
