// Package maelstrom runs gossipmesh's protocol core under Maelstrom, Jepsen's
// workbench for distributed systems, and holds a workbench of its own that
// drives the same node processes the way Maelstrom's broadcast workload does.
//
// A node speaks Maelstrom's node protocol: one JSON message per line on
// stdin and stdout, logs on stderr only. Server-to-server gossip travels as
// Maelstrom messages of type "gossip", so Maelstrom (or the Harness here)
// routes, delays, partitions and counts it like any other message.
package maelstrom

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxLine is the longest line a node or the harness reads, in bytes. A
// batched gossip message is the longest line there is: MaxBatch entries of
// about 150 bytes each, far under this bound.
const MaxLine = 4 << 20

// Envelope is one Maelstrom message: who sent it, to whom, and a body whose
// shape depends on its type. Body stays raw so that a router (the harness)
// can pass it on without decoding it.
type Envelope struct {
	Src  string          `json:"src"`
	Dest string          `json:"dest"`
	Body json.RawMessage `json:"body"`
}

// Body holds every field of the message types gossipmesh speaks or
// answers. Maelstrom bodies are flat JSON objects keyed by "type"; one
// struct with omitempty fields decodes them all without a second pass.
type Body struct {
	Type string `json:"type"`
	// MsgID and InReplyTo are pointers because 0 is a valid id.
	MsgID     *int64 `json:"msg_id,omitempty"`
	InReplyTo *int64 `json:"in_reply_to,omitempty"`

	// init
	NodeID  string   `json:"node_id,omitempty"`
	NodeIDs []string `json:"node_ids,omitempty"`
	// topology: the neighbours Maelstrom suggests for each node.
	Topology map[string][]string `json:"topology,omitempty"`
	// broadcast
	Message *int64 `json:"message,omitempty"`
	// read_ok: every value the node holds. Not omitempty: an empty read is
	// "messages": [], not a missing field.
	Messages *[]int64 `json:"messages,omitempty"`
	// error
	Code int    `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
	// gossip: the core's messages, one or a batch.
	Msgs []GossipMsg `json:"msgs,omitempty"`
	// gossip: the core's control frames (IHAVE, IWANT, GRAFT, PRUNE,
	// PULL), handled after Msgs.
	Ctls []GossipCtl `json:"ctls,omitempty"`
}

// GossipMsg is one protocol-core message as it crosses Maelstrom's network:
// the fields of wire.Message, with the origin named as Maelstrom names
// nodes and the body as the broadcast value it carries.
type GossipMsg struct {
	ID     string `json:"id"`
	Origin string `json:"origin"`
	Seq    uint64 `json:"seq"`
	Hop    uint16 `json:"hop"`
	// At is the publisher's wall clock at publish, Unix nanoseconds.
	At    int64 `json:"at"`
	Value int64 `json:"value"`
}

// GossipCtl is one protocol-core control frame (wire.Control) as it
// crosses Maelstrom's network: every field of wire.Control, with node ids
// as Maelstrom names and message ids in hex. Fields the kind does not use
// are left out. docs/maelstrom.md documents the encoding.
type GossipCtl struct {
	// Kind is the frame type: "ihave", "iwant", "graft", "prune" or "pull".
	Kind string `json:"kind"`
	// Reason is a PRUNE's reason byte (wire.PruneReason).
	Reason uint8 `json:"reason,omitempty"`
	// Flags are a PULL's flags (wire.PullFlags): 1 asks for the
	// receiver's digest back, 2 marks a partial digest.
	Flags uint8 `json:"flags,omitempty"`
	// Hop is an IHAVE's hop (wire.Control.HasHop and Hop): the largest hop
	// at which the sender holds any of IDs, for Plumtree's tree
	// optimization. Absent from an IHAVE without one.
	Hop *uint16 `json:"hop,omitempty"`
	// IDs are the message ids of an IHAVE, IWANT or GRAFT, 32 hex digits
	// each, at most wire.MaxControlIDs.
	IDs []string `json:"ids,omitempty"`
	// Ranges are a PULL's digest, in wire's order and limits.
	Ranges []GossipRange `json:"ranges,omitempty"`
}

// GossipRange is one range of a PULL digest: sequence numbers First..Last
// of the messages of Origin. Origin is a Maelstrom node name, or "#N" for
// a node id N that names no node (the sentinels of a partial digest).
type GossipRange struct {
	Origin string `json:"origin"`
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
}

// Maelstrom's error codes that a node here answers with.
const (
	// CodeTemporarilyUnavailable: a request before init.
	CodeTemporarilyUnavailable = 11
	// CodeNotSupported: a message type the node does not know.
	CodeNotSupported = 10
	// CodeMalformedRequest: a body that does not parse or lacks a field.
	CodeMalformedRequest = 12
	// CodeAbort: a broadcast refused because the value store is full.
	CodeAbort = 14
)

// errBadLine marks a line that is not a JSON message; the stream goes on.
var errBadLine = errors.New("maelstrom: bad message line")

// ErrLineTooLong is returned by a LineReader for a line over MaxLine.
var ErrLineTooLong = errors.New("maelstrom: line exceeds the limit")

// LineReader reads one JSON message per line, never buffering more than
// MaxLine bytes on a peer's word.
type LineReader struct{ s *bufio.Scanner }

// NewLineReader reads lines from r.
func NewLineReader(r io.Reader) *LineReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &LineReader{s: s}
}

// Next returns the next non-empty line decoded as an Envelope, io.EOF at
// the end of input, or an error for a line that is not a message. A
// malformed line does not end the stream: the caller may log it and go on.
func (lr *LineReader) Next() (Envelope, error) {
	for lr.s.Scan() {
		line := lr.s.Bytes()
		if len(line) == 0 {
			continue
		}
		var e Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			return Envelope{}, fmt.Errorf("%w: %w", errBadLine, err)
		}
		return e, nil
	}
	if err := lr.s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Envelope{}, fmt.Errorf("%w (%d bytes)", ErrLineTooLong, MaxLine)
		}
		return Envelope{}, fmt.Errorf("maelstrom: reading messages: %w", err)
	}
	return Envelope{}, io.EOF
}

// Encode renders a message from src to dest with body as one line,
// newline included.
func Encode(src, dest string, body *Body) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("maelstrom: encoding %s body: %w", body.Type, err)
	}
	line, err := json.Marshal(Envelope{Src: src, Dest: dest, Body: b})
	if err != nil {
		return nil, fmt.Errorf("maelstrom: encoding envelope: %w", err)
	}
	return append(line, '\n'), nil
}

// DecodeBody parses an envelope's body.
func DecodeBody(raw json.RawMessage) (Body, error) {
	var b Body
	if err := json.Unmarshal(raw, &b); err != nil {
		return Body{}, fmt.Errorf("maelstrom: bad body: %w", err)
	}
	if b.Type == "" {
		return Body{}, errors.New("maelstrom: body has no type")
	}
	return b, nil
}
