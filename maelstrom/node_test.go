package maelstrom

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// testNode runs RunNode in-process over pipes and returns a way to send
// it lines and to read its answers.
type testNode struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *LineReader
	done chan error
}

func startTestNode(t *testing.T, cfg NodeConfig) *testNode {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	tn := &testNode{t: t, in: inW, out: NewLineReader(outR), done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		err := RunNode(context.Background(), cfg, inR, outW, log)
		outW.Close()
		tn.done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		go io.Copy(io.Discard, outR)
		if err := <-tn.done; err != nil {
			t.Errorf("RunNode: %v", err)
		}
	})
	return tn
}

func (tn *testNode) send(src, dest string, b *Body) {
	tn.t.Helper()
	line, err := Encode(src, dest, b)
	if err != nil {
		tn.t.Fatal(err)
	}
	if _, err := tn.in.Write(line); err != nil {
		tn.t.Fatal(err)
	}
}

func (tn *testNode) sendRaw(s string) {
	tn.t.Helper()
	if _, err := io.WriteString(tn.in, s+"\n"); err != nil {
		tn.t.Fatal(err)
	}
}

// next reads the node's next message.
func (tn *testNode) next() (Envelope, Body) {
	tn.t.Helper()
	type res struct {
		e   Envelope
		err error
	}
	ch := make(chan res, 1)
	go func() { e, err := tn.out.Next(); ch <- res{e, err} }()
	var r res
	select {
	case r = <-ch:
	case <-time.After(30 * time.Second):
		tn.t.Fatal("no message from the node within 30 s")
	}
	if r.err != nil {
		tn.t.Fatalf("reading the node: %v", r.err)
	}
	b, err := DecodeBody(r.e.Body)
	if err != nil {
		tn.t.Fatal(err)
	}
	return r.e, b
}

func id(v int64) *int64 { return &v }

func (tn *testNode) init(self string, nodes ...string) {
	tn.t.Helper()
	tn.send("c1", self, &Body{Type: "init", MsgID: id(1), NodeID: self, NodeIDs: nodes})
	if e, b := tn.next(); b.Type != "init_ok" || *b.InReplyTo != 1 || e.Src != self || e.Dest != "c1" {
		tn.t.Fatalf("init answered %+v %+v", e, b)
	}
}

func TestNodeBroadcastReadAndNoRegossip(t *testing.T) {
	tn := startTestNode(t, quietConfig())
	tn.init("n1", "n0", "n1", "n2", "n3")
	tn.send("c1", "n1", &Body{Type: "topology", MsgID: id(2), Topology: map[string][]string{"n1": {"n3"}}})
	if _, b := tn.next(); b.Type != "topology_ok" {
		t.Fatalf("topology answered %+v", b)
	}
	tn.send("c1", "n1", &Body{Type: "read", MsgID: id(3)})
	if e, b := tn.next(); b.Type != "read_ok" || b.Messages == nil || len(*b.Messages) != 0 {
		t.Fatalf("first read answered %+v %s", b, e.Body)
	}
	// n1 in the tree of 4 with branching 24 (a star on n0) has n0 alone.
	tn.send("c1", "n1", &Body{Type: "broadcast", MsgID: id(4), Message: id(42)})
	e, b := tn.next()
	if b.Type != "gossip" || e.Dest != "n0" || len(b.Msgs) != 1 || b.Msgs[0].Value != 42 || b.Msgs[0].Hop != 1 || b.Msgs[0].Origin != "n1" {
		t.Fatalf("broadcast gossiped %+v to %s", b, e.Dest)
	}
	gm := b.Msgs[0]
	if _, b := tn.next(); b.Type != "broadcast_ok" || *b.InReplyTo != 4 {
		t.Fatalf("broadcast answered %+v", b)
	}
	// The same value again: acknowledged, not gossiped.
	tn.send("c1", "n1", &Body{Type: "broadcast", MsgID: id(5), Message: id(42)})
	if _, b := tn.next(); b.Type != "broadcast_ok" || *b.InReplyTo != 5 {
		t.Fatalf("repeated broadcast answered %+v (want broadcast_ok, no gossip)", b)
	}
	// Our own message back from n0 is a duplicate: no answer, no gossip.
	back := gm
	back.Hop = 2
	tn.send("n0", "n1", &Body{Type: "gossip", Msgs: []GossipMsg{back}})
	// A message of n2's, relayed by n0 (the star's hub): stored.
	tn.send("n0", "n1", &Body{Type: "gossip", Msgs: []GossipMsg{forge(t, "n2", 1, 7, "n0", "n1", "n2", "n3")}})
	tn.send("c1", "n1", &Body{Type: "read", MsgID: id(6)})
	_, b = tn.next()
	if b.Type != "read_ok" || !slices.Equal(*b.Messages, []int64{7, 42}) {
		t.Fatalf("read answered %+v, want [7 42]", b)
	}
}

// forge builds the GossipMsg that origin's core publishes as its seq-th
// message with value v, in the cluster nodes, as it arrives one hop away.
func forge(t *testing.T, origin string, seq uint64, v int64, nodes ...string) GossipMsg {
	t.Helper()
	a, err := newCoreAdapter(DefaultNodeConfig(), origin, nodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n != origin {
			a.addPeer(n)
		}
	}
	var sends []outSend
	for range seq {
		// At the wall clock: a copy is accepted only inside its publish
		// time's window.
		sends, err = a.publish(time.Now().UnixNano(), v, sends[:0])
		if err != nil {
			t.Fatal(err)
		}
	}
	return sends[0].Msg
}

func TestNodeAnswersErrors(t *testing.T) {
	tn := startTestNode(t, quietConfig())
	tn.send("c1", "n0", &Body{Type: "read", MsgID: id(0)})
	if e, b := tn.next(); b.Type != "error" || b.Code != CodeTemporarilyUnavailable || *b.InReplyTo != 0 || e.Src != "n0" {
		t.Fatalf("read before init answered %+v from %q", b, e.Src)
	}
	tn.init("n0", "n0", "n1")
	tn.sendRaw("not json")
	tn.send("c1", "n0", &Body{Type: "frobnicate", MsgID: id(2)})
	if _, b := tn.next(); b.Type != "error" || b.Code != CodeNotSupported {
		t.Fatalf("unknown type answered %+v", b)
	}
	tn.send("c1", "n0", &Body{Type: "broadcast", MsgID: id(3)})
	if _, b := tn.next(); b.Type != "error" || b.Code != CodeMalformedRequest {
		t.Fatalf("broadcast without message answered %+v", b)
	}
	// Gossip with a forged id is rejected: nothing stored.
	gm := forge(t, "n1", 1, 5, "n0", "n1")
	gm.Value = 6
	tn.send("n1", "n0", &Body{Type: "gossip", Msgs: []GossipMsg{gm}})
	tn.send("c1", "n0", &Body{Type: "read", MsgID: id(4)})
	if _, b := tn.next(); b.Type != "read_ok" || len(*b.Messages) != 0 {
		t.Fatalf("read after forged gossip answered %+v, want none", b)
	}
}

func TestNodeValueBound(t *testing.T) {
	cfg := quietConfig()
	cfg.MaxValues = 1
	tn := startTestNode(t, cfg)
	tn.init("n0", "n0")
	tn.send("c1", "n0", &Body{Type: "broadcast", MsgID: id(2), Message: id(1)})
	if _, b := tn.next(); b.Type != "broadcast_ok" {
		t.Fatalf("first broadcast answered %+v", b)
	}
	tn.send("c1", "n0", &Body{Type: "broadcast", MsgID: id(3), Message: id(2)})
	if _, b := tn.next(); b.Type != "error" || b.Code != CodeAbort {
		t.Fatalf("broadcast past the bound answered %+v, want error %d", b, CodeAbort)
	}
}

// With --batch, the gossip of many broadcasts leaves as one message per
// destination.
func TestNodeBatchesPerDestination(t *testing.T) {
	cfg := quietConfig()
	cfg.Batch = time.Hour // flushed at EOF
	tn := startTestNode(t, cfg)
	tn.init("n0", "n0", "n1", "n2")
	for v := range int64(5) {
		tn.send("c1", "n0", &Body{Type: "broadcast", MsgID: id(10 + v), Message: id(v)})
		if _, b := tn.next(); b.Type != "broadcast_ok" {
			t.Fatalf("broadcast answered %+v (want the ack before any batched gossip)", b)
		}
	}
	tn.in.Close()
	got := map[string][]int64{}
	for range 2 {
		e, b := tn.next()
		if b.Type != "gossip" {
			t.Fatalf("got %+v, want a batch", b)
		}
		for _, m := range b.Msgs {
			got[e.Dest] = append(got[e.Dest], m.Value)
		}
	}
	for _, d := range []string{"n1", "n2"} {
		if !slices.Equal(got[d], []int64{0, 1, 2, 3, 4}) {
			t.Errorf("batch to %s carried %v, want [0 1 2 3 4]", d, got[d])
		}
	}
}

func TestTreeNeighbors(t *testing.T) {
	for _, tc := range []struct{ n, b int }{{1, 24}, {5, 24}, {25, 24}, {100, 24}, {25, 4}, {7, 1}} {
		nodes := make([]string, tc.n)
		for i := range nodes {
			nodes[i] = "n" + string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		}
		adj := map[string][]string{}
		edges := 0
		for _, n := range nodes {
			nb, err := TreeNeighbors(nodes, n, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			adj[n] = nb
			edges += len(nb)
		}
		if edges != 2*(tc.n-1) {
			t.Errorf("n=%d b=%d: %d link ends, want %d (a tree)", tc.n, tc.b, edges, 2*(tc.n-1))
		}
		for a, nb := range adj {
			for _, b := range nb {
				if !slices.Contains(adj[b], a) {
					t.Errorf("n=%d b=%d: %s lists %s but not back", tc.n, tc.b, a, b)
				}
			}
		}
		seen := map[string]bool{nodes[0]: true}
		queue := []string{nodes[0]}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for _, y := range adj[x] {
				if !seen[y] {
					seen[y] = true
					queue = append(queue, y)
				}
			}
		}
		if len(seen) != tc.n {
			t.Errorf("n=%d b=%d: %d of %d nodes reachable", tc.n, tc.b, len(seen), tc.n)
		}
	}
	if nb, _ := TreeNeighbors([]string{"a", "b", "c"}, "a", 24); !slices.Equal(nb, []string{"b", "c"}) {
		t.Errorf("star hub's neighbours %v", nb)
	}
}

func TestStableLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	b1 := &op{value: 1, invoked: at(0), ok: true}
	b2 := &op{value: 2, invoked: at(100), ok: true}
	lostB := &op{value: 3, invoked: at(0), ok: true}
	failed := &op{value: 4, invoked: at(0)}
	reads := []*op{
		{read: true, invoked: at(-50), ok: true, values: nil},        // before b1: ignored
		{read: true, invoked: at(50), ok: true, values: []int64{}},   // lacks 1
		{read: true, invoked: at(150), ok: true, values: []int64{2}}, // lacks 1: last absent, 150 ms
		{read: true, invoked: at(200), ok: false, values: nil},       // failed: ignored
		{read: true, invoked: at(300), ok: true, values: []int64{1, 2}},
	}
	got := StableLatencies([]*op{b1, b2, lostB, failed}, reads, map[int64]bool{3: true})
	want := []time.Duration{0, 150 * time.Millisecond} // b2 never absent after its broadcast
	if !slices.Equal(got, want) {
		t.Errorf("StableLatencies = %v, want %v", got, want)
	}
	if q := quantile(got, 0.5); q != 0 {
		t.Errorf("median %v, want 0", q)
	}
	if q := quantile(got, 1); q != 150*time.Millisecond {
		t.Errorf("max %v", q)
	}
}

func TestLineReader(t *testing.T) {
	in := strings.NewReader("\n{\"src\":\"a\",\"dest\":\"b\",\"body\":{\"type\":\"x\"}}\nnope\n" + `{"src":"c"}` + "\n")
	lr := NewLineReader(in)
	if e, err := lr.Next(); err != nil || e.Src != "a" || e.Dest != "b" {
		t.Fatalf("first: %+v %v", e, err)
	}
	if _, err := lr.Next(); !isBadLine(err) {
		t.Fatalf("bad line: %v", err)
	}
	if e, err := lr.Next(); err != nil || e.Src != "c" {
		t.Fatalf("after a bad line: %+v %v", e, err)
	}
	if _, err := lr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	long := NewLineReader(strings.NewReader(strings.Repeat("x", MaxLine+1) + "\n"))
	if _, err := long.Next(); err == nil || isBadLine(err) {
		t.Fatalf("over-long line: %v, want ErrLineTooLong", err)
	}
	// An empty read encodes as [], never null.
	empty := []int64{}
	line, _ := Encode("n0", "c1", &Body{Type: "read_ok", Messages: &empty})
	var m map[string]map[string]any
	json.Unmarshal(line, &m)
	if v, ok := m["body"]["messages"].([]any); !ok || len(v) != 0 {
		t.Errorf("empty read encoded as %s", line)
	}
}

// The report counts a value lost when an acknowledged broadcast is missing
// from any final read, ignores unacknowledged ones, and flags invented
// values.
func TestReportLostAndUnexpected(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := &harness{cfg: DefaultHarnessConfig(), ops: map[int64]*op{
		1: {value: 1, invoked: t0, ok: true, done: true},
		2: {value: 2, invoked: t0, ok: true, done: true},
		3: {value: 3, invoked: t0, done: true}, // unacknowledged
	}}
	h.serverN = 12
	fa := &op{read: true, invoked: t0.Add(time.Second), ok: true, values: []int64{1, 2, 3}}
	fb := &op{read: true, invoked: t0.Add(time.Second), ok: true, values: []int64{1, 99}}
	h.ops[4], h.ops[5] = fa, fb
	r := h.report([]*op{fa, fb, nil}, 0)
	if !slices.Equal(r.Lost, []int64{2}) || r.LostCount != 1 {
		t.Errorf("lost %v, want [2]", r.Lost)
	}
	if r.Unexpected != 1 || r.FinalReadsMissing != 1 || r.Acked != 2 || r.Failed != 1 {
		t.Errorf("unexpected %d, final reads missing %d, acked %d, failed %d; want 1, 1, 2, 1", r.Unexpected, r.FinalReadsMissing, r.Acked, r.Failed)
	}
	if r.Ops != 5 || r.MsgsPerOp != 12.0/5 {
		t.Errorf("ops %d, msgs-per-op %v; want 5, 2.4", r.Ops, r.MsgsPerOp)
	}
}

// quietConfig is the default node without anti-entropy, for tests that
// read a node's output message by message: a PULL from its timer would
// come between them on a slow machine.
func quietConfig() NodeConfig {
	c := DefaultNodeConfig()
	c.AntiEntropy = -1
	return c
}
