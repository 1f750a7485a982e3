package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/fault"
	"gossipmesh/gossip"
	"gossipmesh/node"
)

// frameTotals sums one message's payload and control frames over every
// node's receipt.
func frameTotals(t *testing.T, nodes []*node.Node, id string) (payload, control int, per []api.Receipt) {
	t.Helper()
	for i, n := range nodes {
		rc, ok := n.Receipt(context.Background(), id, settle)
		if !ok {
			t.Fatalf("node %d never got %s", i, id)
		}
		payload += rc.PayloadFrames
		control += rc.ControlFrames
		per = append(per, rc)
	}
	return payload, control, per
}

// steadyPlumtree makes a Plumtree mesh's tree depend on nothing but the
// order copies arrive in, however slow the machine: no GRAFT timer fires
// (a late eager copy would otherwise set one off), no frame is shed for
// waiting, and anti-entropy offers no message younger than the GRAFT
// timeout, so no repair turns a push into a duplicate that prunes a link.
// Every copy still arrives, down the eager links.
func steadyPlumtree(_ int, c *node.Config) {
	c.Gossip.Strategy = gossip.Plumtree
	c.Gossip.PlumtreeGraftTimeout = 10 * time.Minute
	c.MaxQueueDelay = settle
}

// lazyEnds counts the link ends the nodes hold lazy.
func lazyEnds(t *testing.T, nodes []*node.Node) (lazy float64) {
	for _, n := range nodes {
		lazy += metricSum(t, n, "gossipmesh_plumtree_links", "kind", "lazy")
	}
	return lazy
}

// awaitTree waits until the first message's duplicates have all been
// handled: the triangle's one link too many is lazy at both ends. Before
// that, a second message would still go down that link and cause PRUNEs
// of its own.
func awaitTree(t *testing.T, nodes []*node.Node) {
	t.Helper()
	eventually(t, "one link of the triangle lazy at both ends", func() bool { return lazyEnds(t, nodes) == 2 })
}

// TestReceiptsCountFloodFrames: under flood the publisher sends a copy to
// every peer and every other node to every peer but its sender, so a
// message costs 2 x links - (N-1) payload frames and no control frame,
// and each receipt says what its node sent.
func TestReceiptsCountFloodFrames(t *testing.T) {
	t.Parallel()
	// A square with one diagonal and a tail: 0-1, 1-2, 2-3, 3-0, 0-2, 3-4.
	dials := [][]int{{}, {0}, {1, 0}, {2, 0}, {3}}
	m := startMesh(t, dials, nil)
	m.waitLinked()
	rc, err := m.nodes[0].Publish(context.Background(), []byte("count me"))
	if err != nil {
		t.Fatal(err)
	}
	want := 2*edges(m.adj) - (len(m.nodes) - 1)
	eventually(t, fmt.Sprintf("%d payload frames in all", want), func() bool {
		p, _, _ := frameTotals(t, m.nodes, rc.ID)
		return p == want
	})
	_, control, per := frameTotals(t, m.nodes, rc.ID)
	for i, r := range per {
		sent := len(m.adj[i])
		if i != 0 {
			sent-- // not back to the sender
		}
		if r.PayloadFrames != sent {
			t.Errorf("node %d: %d payload frames, want %d (degree %d)", i, r.PayloadFrames, sent, len(m.adj[i]))
		}
	}
	if control != 0 {
		t.Errorf("flood sent %d control frames for the message, want 0", control)
	}
}

// TestReceiptsCountPlumtreeFrames runs Plumtree on a triangle. The first
// message goes down every link: the publisher sends 2 copies and each
// other node 1, 4 payload frames; the duplicates make their receivers
// PRUNE the link they came on (once or twice, as the copies race), and
// each PRUNE counts toward the message whose copy caused it. That leaves
// one link lazy both ways, so the second message costs N-1 = 2 payload
// frames and one IHAVE each way over the lazy link, each naming it.
func TestReceiptsCountPlumtreeFrames(t *testing.T) {
	t.Parallel()
	// A GRAFT or a repair because a loaded machine delayed an eager copy
	// would add frames this test does not expect: steadyPlumtree keeps it
	// about counting.
	m := startMesh(t, [][]int{{}, {0}, {0, 1}}, steadyPlumtree)
	m.waitLinked()
	prunes := func() (sum int) {
		for _, n := range m.nodes {
			sum += int(metricSum(t, n, "gossipmesh_control_frames_sent_total", "kind", "prune"))
		}
		return sum
	}
	publish := func(k int) string {
		rc, err := m.nodes[0].Publish(context.Background(), fmt.Appendf(nil, "message %d", k))
		if err != nil {
			t.Fatal(err)
		}
		return rc.ID
	}
	first := publish(1)
	eventually(t, "message 1: 4 payload frames, and a control frame for each PRUNE sent", func() bool {
		p, c, _ := frameTotals(t, m.nodes, first)
		return p == 4 && c >= 1 && c == prunes()
	})
	awaitTree(t, m.nodes)
	second := publish(2)
	eventually(t, "message 2: 2 payload frames and 2 IHAVE", func() bool {
		p, c, _ := frameTotals(t, m.nodes, second)
		return p == 2 && c == 2
	})
	var ihaves float64
	for _, n := range m.nodes {
		ihaves += metricSum(t, n, "gossipmesh_control_frames_sent_total", "kind", "ihave")
	}
	if ihaves != 2 {
		t.Errorf("%v IHAVE frames sent in all, want 2", ihaves)
	}
	if p, c, _ := frameTotals(t, m.nodes, first); p != 4 || c != prunes() {
		t.Errorf("message 1 afterwards: %d payload, %d control frames; want 4 and %d", p, c, prunes())
	}
}

// TestMetricsExposeFramesStoreAndTree: a node's metrics count payload and
// control frames sent and received (every frame one node sends, another
// reads), show its message store, and Plumtree's eager and lazy links.
func TestMetricsExposeFramesStoreAndTree(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{{}, {0}, {0, 1}, {2}}, func(i int, c *node.Config) {
		steadyPlumtree(i, c) // as above: the tree is the first message's
		// No anti-entropy rounds: their PULLs never stop, and on a
		// loaded machine one is nearly always on its way, so "every
		// frame sent has been read" would seldom be seen to hold.
		c.Gossip.AntiEntropy = -1
	})
	m.waitLinked()
	const messages = 5
	for k := range messages {
		rc, err := m.nodes[k%len(m.nodes)].Publish(context.Background(), fmt.Appendf(nil, "metrics %d", k))
		if err != nil {
			t.Fatal(err)
		}
		frameTotals(t, m.nodes, rc.ID) // every node has it
		if k == 0 {
			// The tree settles on the first message; the others go down
			// it and change nothing, so the links read at the end are
			// the ones the nodes hold, not a PRUNE still in their inbox.
			awaitTree(t, m.nodes)
		}
	}
	sum := func(name string, labels ...string) (s float64) {
		for _, n := range m.nodes {
			s += metricSum(t, n, name, labels...)
		}
		return s
	}
	kinds := []string{"ihave", "iwant", "graft", "prune", "pull"}
	eventually(t, "every frame sent to be read", func() bool {
		// Received before sent: a frame that goes out between the two
		// reads makes them differ, never agree.
		received := sum("gossipmesh_payload_frames_received_total")
		if received != sum("gossipmesh_payload_frames_sent_total") {
			return false
		}
		for _, k := range kinds {
			received := sum("gossipmesh_control_frames_received_total", "kind", k)
			if received != sum("gossipmesh_control_frames_sent_total", "kind", k) {
				return false
			}
		}
		return true
	})
	if p := sum("gossipmesh_payload_frames_sent_total"); p < messages*float64(len(m.nodes)-1) {
		t.Errorf("%v payload frames sent, want at least %d", p, messages*(len(m.nodes)-1))
	}
	if f := sum("gossipmesh_messages_forwarded_total"); f != sum("gossipmesh_payload_frames_sent_total") {
		t.Errorf("messages_forwarded_total %v differs from payload_frames_sent_total %v", f, sum("gossipmesh_payload_frames_sent_total"))
	}
	if c := sum("gossipmesh_control_frames_sent_total"); c == 0 {
		t.Error("no control frames counted under Plumtree")
	}
	for i, n := range m.nodes {
		if got := metricSum(t, n, "gossipmesh_store_messages"); got != messages {
			t.Errorf("node %d: store holds %v messages, want %d", i, got, messages)
		}
		if got := metricSum(t, n, "gossipmesh_store_stored_total"); got != messages {
			t.Errorf("node %d: store_stored_total %v, want %d", i, got, messages)
		}
		if got := metricSum(t, n, "gossipmesh_store_bytes"); got <= 0 {
			t.Errorf("node %d: store_bytes %v, want the bodies' bytes", i, got)
		}
		eager := metricSum(t, n, "gossipmesh_plumtree_links", "kind", "eager")
		lazy := metricSum(t, n, "gossipmesh_plumtree_links", "kind", "lazy")
		if int(eager+lazy) != len(m.adj[i]) || eager < 1 {
			t.Errorf("node %d: %v eager and %v lazy links, want %d in all, at least one eager", i, eager, lazy, len(m.adj[i]))
		}
	}
	// The triangle 0-1-2 has one link too many for a tree: it is lazy at
	// both ends.
	if lazy := lazyEnds(t, m.nodes); lazy != 2 {
		t.Errorf("%v lazy link ends, want 2 (one link)", lazy)
	}
}

// TestMetricsLeaveOutAStoreFloodDoesNotKeep: flood keeps no message store,
// so its nodes export no store or Plumtree series.
func TestMetricsLeaveOutAStoreFloodDoesNotKeep(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{{}, {0}}, nil)
	m.waitLinked()
	mfs, err := m.nodes[0].Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "gossipmesh_store_messages", "gossipmesh_plumtree_links":
			t.Errorf("flood node exports %s", mf.GetName())
		}
	}
}

// TestFramesHeldByTheFaultPlanAreCounted: a copy the fault plan delays
// counts in its message's receipt, and in the metrics once it is queued;
// a copy the plan drops counts in neither.
func TestFramesHeldByTheFaultPlanAreCounted(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{{}, {0}, {0}}, nil) // node 0 linked to 1 and 2
	m.waitLinked()
	plan := fault.Plan{Rule: fault.Rule{Delay: 20 * time.Millisecond}}
	if err := m.nodes[0].SetFaults(plan); err != nil {
		t.Fatal(err)
	}
	rc, err := m.nodes[0].Publish(context.Background(), []byte("held"))
	if err != nil {
		t.Fatal(err)
	}
	frameTotals(t, m.nodes, rc.ID) // both copies arrive, late
	if got, _ := m.nodes[0].Receipt(context.Background(), rc.ID, 0); got.PayloadFrames != 2 {
		t.Errorf("publisher's receipt: %d payload frames, want the 2 held copies", got.PayloadFrames)
	}
	if got := metricSum(t, m.nodes[0], "gossipmesh_payload_frames_sent_total"); got != 2 {
		t.Errorf("payload_frames_sent_total %v, want 2 once released", got)
	}
	if err := m.nodes[0].SetFaults(fault.Plan{Rule: fault.Rule{Drop: 1}}); err != nil {
		t.Fatal(err)
	}
	lost, err := m.nodes[0].Publish(context.Background(), []byte("dropped"))
	if err != nil {
		t.Fatal(err)
	}
	if lost.PayloadFrames != 0 {
		t.Errorf("a message whose every copy the plan dropped counts %d payload frames, want 0", lost.PayloadFrames)
	}
	if got := metricSum(t, m.nodes[0], "gossipmesh_payload_frames_sent_total"); got != 2 {
		t.Errorf("payload_frames_sent_total %v after the dropped copies, want still 2", got)
	}
}
