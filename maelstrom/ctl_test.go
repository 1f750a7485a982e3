package maelstrom

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

var ctlNames = []string{"n0", "n1", "n2", "n3"}

func ctlIDs() map[string]wire.NodeID {
	ids := map[string]wire.NodeID{}
	for i, n := range ctlNames {
		ids[n] = wire.NodeID(i + 1)
	}
	return ids
}

// Every kind of control frame survives the JSON encoding with every field,
// sentinel origins of a partial digest included.
func TestCtlRoundTrip(t *testing.T) {
	id1 := wire.ComputeMsgID(1, 1, []byte("a"))
	id2 := wire.ComputeMsgID(2, 7, []byte("b"))
	for _, c := range []wire.Control{
		{Kind: wire.FrameIHave, IDs: []wire.MsgID{id1, id2}},
		{Kind: wire.FrameIHave, IDs: []wire.MsgID{id1}, HasHop: true, Hop: 0},
		{Kind: wire.FrameIHave, IDs: []wire.MsgID{id2}, HasHop: true, Hop: 9},
		{Kind: wire.FrameIWant, IDs: []wire.MsgID{id1}},
		{Kind: wire.FrameGraft},
		{Kind: wire.FrameGraft, IDs: []wire.MsgID{id2}},
		{Kind: wire.FramePrune, Reason: wire.PruneDuplicate},
		{Kind: wire.FramePull, Flags: wire.PullWantDigest},
		{Kind: wire.FramePull, Flags: wire.PullWantDigest | wire.PullPartial, Ranges: []wire.SeqRange{
			{Origin: 0}, {Origin: 1, First: 1, Last: 10}, {Origin: 1, First: 12, Last: 12}, {Origin: 4, First: 3, Last: 9}, {Origin: math.MaxUint64},
		}},
	} {
		gc := encodeCtl(ctlNames, &c)
		line, err := json.Marshal(gc)
		if err != nil {
			t.Fatal(err)
		}
		var back GossipCtl
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatal(err)
		}
		got, err := decodeCtl(ctlIDs(), back)
		if err != nil {
			t.Fatalf("%s: decode: %v", line, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: decoded %+v, want %+v", line, got, c)
		}
	}
}

// The decoder holds frames to wire's rules.
func TestCtlDecodeRefuses(t *testing.T) {
	many := make([]string, wire.MaxControlIDs+1)
	for i := range many {
		many[i] = strings.Repeat("0", 32)
	}
	for name, gc := range map[string]GossipCtl{
		"unknown kind":   {Kind: "hello"},
		"bad id":         {Kind: "ihave", IDs: []string{"xyz"}},
		"too many ids":   {Kind: "iwant", IDs: many},
		"unknown origin": {Kind: "pull", Ranges: []GossipRange{{Origin: "n9", First: 1, Last: 1}}},
		"bad sentinel":   {Kind: "pull", Ranges: []GossipRange{{Origin: "#01", First: 1, Last: 1}}},
		"descending":     {Kind: "pull", Ranges: []GossipRange{{Origin: "n2", First: 1, Last: 1}, {Origin: "n1", First: 1, Last: 1}}},
		"touching":       {Kind: "pull", Ranges: []GossipRange{{Origin: "n1", First: 1, Last: 2}, {Origin: "n1", First: 3, Last: 4}}},
		"backwards":      {Kind: "pull", Ranges: []GossipRange{{Origin: "n1", First: 5, Last: 4}}},
		"unknown flags":  {Kind: "pull", Flags: 4},
	} {
		if c, err := decodeCtl(ctlIDs(), gc); err == nil {
			t.Errorf("%s: decoded %+v", name, c)
		}
	}
}

// A node answers a PULL from a peer with what the digest lacks and, as
// asked, its own digest: one Maelstrom message carrying both.
func TestNodeAnswersPull(t *testing.T) {
	cfg := DefaultNodeConfig()
	cfg.AntiEntropy = time.Hour // keeps a store; its own timer stays out of the way
	tn := startTestNode(t, cfg)
	tn.init("n1", ctlNames...)
	tn.send("c1", "n1", &Body{Type: "broadcast", MsgID: id(2), Message: id(42)})
	if _, b := tn.next(); b.Type != "gossip" {
		t.Fatalf("broadcast gossiped %+v", b)
	}
	if _, b := tn.next(); b.Type != "broadcast_ok" {
		t.Fatalf("broadcast answered %+v", b)
	}
	// A node leaves a value it just stored to the pushes for up to a second
	// before it repairs with it.
	time.Sleep(1100 * time.Millisecond)
	tn.send("n0", "n1", &Body{Type: "gossip", Ctls: []GossipCtl{{Kind: "pull", Flags: uint8(wire.PullWantDigest)}}})
	e, b := tn.next()
	if b.Type != "gossip" || e.Dest != "n0" || len(b.Msgs) != 1 || b.Msgs[0].Value != 42 || b.Msgs[0].Hop != 1 {
		t.Fatalf("pull answered %+v to %s, want value 42 at hop 1", b, e.Dest)
	}
	want := []GossipCtl{{Kind: "pull", Ranges: []GossipRange{{Origin: "n1", First: 1, Last: 1}}}}
	if !reflect.DeepEqual(b.Ctls, want) {
		t.Errorf("pull answered with control frames %+v, want %+v", b.Ctls, want)
	}
}

// FuzzDecodeGossipCtl: whatever a peer sends as a control frame, the
// decoder either refuses it or returns a frame that wire encodes and that
// survives a second round through JSON unchanged.
func FuzzDecodeGossipCtl(f *testing.F) {
	f.Add([]byte(`{"kind":"pull","flags":3,"ranges":[{"origin":"#0","first":0,"last":0},{"origin":"n1","first":1,"last":9}]}`))
	f.Add([]byte(`{"kind":"ihave","ids":["00112233445566778899aabbccddeeff"]}`))
	f.Add([]byte(`{"kind":"prune","reason":1}`))
	f.Add([]byte(`{"kind":"graft"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var gc GossipCtl
		if json.Unmarshal(data, &gc) != nil {
			return
		}
		c, err := decodeCtl(ctlIDs(), gc)
		if err != nil {
			return
		}
		if _, err := wire.AppendControl(nil, &c); err != nil {
			t.Fatalf("decoded a frame wire refuses: %v", err)
		}
		again, err := decodeCtl(ctlIDs(), encodeCtl(ctlNames, &c))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", c, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed %+v into %+v", c, again)
		}
	})
}
