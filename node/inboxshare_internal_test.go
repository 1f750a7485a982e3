package node

import (
	"bufio"
	"net"
	"testing"
	"time"

	"gossipmesh/wire"
)

// rawLink runs n's reader on a link from id whose far end the test
// writes, as a handshaken peer would; the node's loop is not running, so
// what the reader queues stays in n.inbox for the test to look at.
func rawLink(t *testing.T, n *Node, id wire.NodeID) (*peer, net.Conn) {
	t.Helper()
	local, remote := memPipe(t)
	fc := &frameConn{Conn: local, stall: n.cfg.StallTimeout}
	br := bufio.NewReaderSize(fc, readBufferSize)
	p := &peer{id: id, conn: local, fc: fc, buffered: br, reader: wire.NewReader(br, n.cfg.MaxFrame()),
		q: newSendQueue(), share: make(chan struct{}, peerInboxShare(n.cfg.InboxSize)), backlog: newBacklog(n.backlogCap()),
		done: make(chan struct{})}
	go func() { p.close(n.readLoop(p)) }()
	t.Cleanup(func() { p.close(errShutdown); remote.Close() })
	return p, remote
}

// writeMessages writes k message frames of origin (unsigned: the reader
// does not verify) to c, from seq first on.
func writeMessages(t *testing.T, c net.Conn, origin wire.NodeID, first uint64, k int, publishedAt int64) {
	t.Helper()
	var b []byte
	for i := range k {
		m := wire.Message{Origin: origin, Seq: first + uint64(i), Hop: 2, PublishedAt: publishedAt, Body: []byte("x")}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		b = wire.AppendMessage(b, &m)
	}
	go func() { _, _ = c.Write(b) }() // blocks while the reader pushes back
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInboxShareBoundsOneFloodingLink: a link that sends far more than
// the loop handles holds at most its share of the inbox, so a frame from
// another link that arrives after the flood is queued behind one share
// of it, not behind all of it; once the loop hands frames back, the
// flooding link's reader goes on.
func TestInboxShareBoundsOneFloodingLink(t *testing.T) {
	t.Parallel()
	n := pipeNode(t, 1)
	share := peerInboxShare(n.cfg.InboxSize)
	if share != 256 {
		t.Fatalf("share of a %d-frame inbox is %d, want 256", n.cfg.InboxSize, share)
	}
	flood, fc := rawLink(t, n, 100)
	_, hc := rawLink(t, n, 200)
	// Relayed messages (origin 300): no origin budget applies to them at
	// the reader, only the share.
	writeMessages(t, fc, 300, 1, 4*share, time.Now().UnixNano())
	poll(t, "the flooding link's reader to hold its whole share and wait", func() bool {
		return len(flood.share) == share && len(n.inbox) >= share
	})
	writeMessages(t, hc, 400, 1, 1, time.Now().UnixNano())
	poll(t, "the other link's frame in the inbox", func() bool { return len(n.inbox) > share })

	var batch []inbound
	fromFlood, honestAt := 0, -1
	for len(n.inbox) > 0 {
		in := <-n.inbox
		if in.from == flood {
			fromFlood++
		} else {
			honestAt = len(batch)
		}
		batch = append(batch, in)
	}
	if fromFlood != share || honestAt < 0 || honestAt > share {
		t.Fatalf("inbox held %d of the flood's frames (share %d) and the other link's at %d", fromFlood, share, honestAt)
	}
	// The loop hands the batch back: the flood's reader queues its next share.
	n.releaseInbound(batch)
	poll(t, "the flood's next share", func() bool { return len(n.inbox) == share })
}

// TestReaderFindsSpammerPastItsShare: while the loop handles nothing, a
// link that sends its own messages at 20,000 a second fills its share,
// and its reader still reads on, past the direct burst, and counts the
// messages over budget for the loop to charge: the share slows what
// reaches the loop, not what the reader learns.
func TestReaderFindsSpammerPastItsShare(t *testing.T) {
	t.Parallel()
	n := pipeNode(t, 1)
	share := peerInboxShare(n.cfg.InboxSize)
	spam, c := rawLink(t, n, 100)
	t0 := time.Now().UnixNano()
	var b []byte
	for i := range 3000 {
		m := wire.Message{Origin: 100, Seq: uint64(i + 1), Hop: 1, PublishedAt: t0 + int64(i)*int64(time.Second)/20000, Body: []byte("x")}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		b = wire.AppendMessage(b, &m)
	}
	go func() { _, _ = c.Write(b) }()
	poll(t, "the reader to count the spammer over budget", func() bool { return spam.overBudget.Load() > 0 })
	if got := len(n.inbox); got > share {
		t.Errorf("the inbox holds %d of the spammer's frames, want at most its share of %d", got, share)
	}
	select {
	case <-n.own.signal:
	default:
		t.Error("the loop was not signalled to charge the spammer")
	}
}

// TestBacklogHoldsAtMostItsLimit pushes a link's backlog past its limit:
// the push over it waits (here it is refused, its link being closed)
// instead of growing the queue, and a pop makes room for one more.
func TestBacklogHoldsAtMostItsLimit(t *testing.T) {
	b := newBacklog(3)
	closed := make(chan struct{})
	close(closed)
	for i := range 3 {
		if err := b.push(inbound{}, closed, nil); err != nil {
			t.Fatalf("push %d of 3: %v", i, err)
		}
	}
	if err := b.push(inbound{}, closed, nil); err == nil {
		t.Fatalf("a fourth push into a backlog of 3 went in; %d queued", len(b.q)-b.head)
	}
	if _, ok := b.pop(nil, nil); !ok {
		t.Fatal("pop found nothing in a full backlog")
	}
	if err := b.push(inbound{}, closed, nil); err != nil {
		t.Fatalf("push after a pop: %v", err)
	}
	if n := len(b.q) - b.head; n != 3 {
		t.Errorf("%d frames queued, want the limit 3", n)
	}
}
