// Package api is a node's HTTP interface: the JSON types, the handlers that
// serve them from a Backend (the node runtime), and the typed Client that
// the CLI, the launcher, the dashboard and the tests use. Field names are a
// contract: other tools build on them.
package api

import (
	"context"
	"errors"
	"time"
)

// Backend is what the handlers need from a node. node.Node implements it;
// tests use fakes.
type Backend interface {
	// Publish gossips body as a new message and returns the publisher's own
	// receipt (hop 0, no From). It fails with an error wrapping
	// ErrBodyTooLarge when body is over the node's limit.
	Publish(ctx context.Context, body []byte) (Receipt, error)
	// Receipt returns this node's receipt of message id (32 hex digits). If
	// the node has not seen it and wait > 0, it waits up to wait (or until
	// ctx ends) for the message to arrive.
	Receipt(ctx context.Context, id string, wait time.Duration) (Receipt, bool)
	// Recent returns up to limit receipts, newest first.
	Recent(limit int) []Receipt
	// Peers returns the node's current links.
	Peers() []Peer
	// Health describes the node.
	Health() Health
	// Load publishes count messages of size bytes each at rate messages/s,
	// keeping to the schedule as closely as it can, and reports how it did.
	// Benchmarks use it so that the load comes from the node itself, not
	// from an HTTP client competing for the same cores.
	Load(ctx context.Context, req LoadRequest) (LoadResult, error)
	// MaxBody is the largest message body the node accepts.
	MaxBody() int
}

// ErrBodyTooLarge is what Backend.Publish wraps for an over-limit body; the
// handler maps it to 413.
var ErrBodyTooLarge = errors.New("message body too large")

// ErrRateLimited is what Backend.Publish wraps for a publish over the
// node's own rate budget (its peers would ignore the message); the handler
// maps it to 429.
var ErrRateLimited = errors.New("publish rate over budget")

// PublishRequest is the body of POST /messages.
type PublishRequest struct {
	Body *string `json:"body"`
}

// PublishResponse is the 201 answer to POST /messages.
type PublishResponse struct {
	ID string `json:"id"`
}

// Receipt is one node's record of one message.
type Receipt struct {
	// ID is the message id, 32 hex digits.
	ID string `json:"id"`
	// Origin is the publisher's node id.
	Origin string `json:"origin"`
	// Hop is the hop count of the first copy that reached this node: 0 at
	// the publisher, 1 at its direct peers.
	Hop int `json:"hop"`
	// From is the node id of the neighbour that delivered the first copy;
	// empty at the publisher.
	From string `json:"from,omitempty"`
	// PublishedAt is the publisher's clock at publish.
	PublishedAt time.Time `json:"published_at"`
	// ReceivedAt is this node's clock at first receipt, RFC 3339 with
	// nanoseconds.
	ReceivedAt time.Time `json:"received_at"`
	// Duplicates counts the later copies this node received.
	Duplicates int `json:"duplicates"`
	// PayloadFrames counts the copies of this message the node queued to
	// its peers: its own forwards and its answers to repair requests
	// (GRAFT, IWANT, anti-entropy pulls). A copy dropped before it was
	// queued (egress, a full send queue) is not counted. Summed over every
	// node it is the message's payload cost, N-1 for a settled tree.
	PayloadFrames int `json:"payload_frames"`
	// ControlFrames counts the control frames the node queued that name
	// this message (IHAVE, IWANT, GRAFT: a frame naming several messages
	// counts once for each) or that a copy of it caused (the PRUNE a
	// duplicate sends). PULL digests, and the GRAFT and PRUNE of
	// Plumtree's tree optimization (sent on an IHAVE), name no message and
	// count toward none; the node's metrics count them.
	ControlFrames int `json:"control_frames"`
	// Size is the body length in bytes.
	Size int `json:"size"`
	// Body is the message body; omitted from lists.
	Body string `json:"body,omitempty"`
	// BodyEvicted says the node no longer keeps the body: its receipt
	// store keeps bodies within a byte budget, oldest dropped first, while
	// the receipt itself stays.
	BodyEvicted bool `json:"body_evicted,omitempty"`
}

// Peer is one link of a node.
type Peer struct {
	// ID is the peer's node id.
	ID string `json:"id"`
	// Addr is the peer's gossip listen address, from its handshake.
	Addr string `json:"addr"`
	// Outbound is true when this node dialed the link.
	Outbound bool `json:"outbound"`
	// ConnectedAt is when the link came up.
	ConnectedAt time.Time `json:"connected_at"`
	// Dropped counts frames dropped because the peer's send queue was full.
	Dropped uint64 `json:"dropped"`
	// Score is the peer's score (package score); 0 when scoring is off.
	Score float64 `json:"score"`
}

// Health is the answer to GET /healthz.
type Health struct {
	Status     string `json:"status"`
	ID         string `json:"id"`
	GossipAddr string `json:"gossip_addr"`
	HTTPAddr   string `json:"http_addr"`
	Peers      int    `json:"peers"`
	PID        int    `json:"pid"`
}

// LoadRequest is the body of POST /load.
type LoadRequest struct {
	// Rate is messages per second, MinLoadRate to MaxLoadRate; 0 publishes
	// back to back.
	Rate float64 `json:"rate"`
	// Count is how many messages to publish, 1 to MaxLoadCount.
	Count int `json:"count"`
	// Size is the body size in bytes, 0 to the node's body limit.
	Size int `json:"size"`
}

// LoadResult is the answer to POST /load.
type LoadResult struct {
	Published int `json:"published"`
	// IDs are the published message ids, in order.
	IDs []string `json:"ids"`
	// Start and End bracket the publishing.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// AchievedRate is Published over the elapsed time.
	AchievedRate float64 `json:"achieved_rate"`
}

// Error is the JSON body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}
