package node

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"gossipmesh/identity"
	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// TestBatchTakesLowestHopFirst feeds the loop one batch in which a relayed
// copy of a message (hop 2) was queued before the direct one (hop 1). The
// node's first receipt is the lowest-hop copy among those that had arrived
// when it took them: the direct one.
func TestBatchTakesLowestHopFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key = KeyForTest(1)
	cfg.Transport = memnet.New().Host("h")
	cfg.Listen = "h:7000"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopUnrun(n)

	msg := wire.Message{Origin: KeyForTest(9).ID(), Seq: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("to every neighbour")}
	msg.ID = wire.ComputeMsgID(msg.Origin, msg.Seq, msg.Body)
	signForTest(t, 9, &msg)
	relayed, direct := msg, msg
	relayed.Hop, direct.Hop = 2, 1
	other := msg // another message, relayed, behind both
	other.Seq, other.Hop = 2, 3
	other.ID = wire.ComputeMsgID(other.Origin, other.Seq, other.Body)
	signForTest(t, 9, &other)

	n.inbox <- inbound{from: &peer{id: 9}, msg: direct, at: time.Now().UnixNano()}
	n.inbox <- inbound{from: &peer{id: 4}, msg: other, at: time.Now().UnixNano()}
	n.receiveBatch(inbound{from: &peer{id: 3}, msg: relayed, at: time.Now().UnixNano()})

	rc, ok := n.Receipt(context.Background(), msg.ID.String(), 0)
	if !ok {
		t.Fatal("the message was not delivered")
	}
	if rc.Hop != 1 || rc.From != wire.NodeID(9).String() {
		t.Errorf("first receipt at hop %d from %s, want hop 1 from the publisher %s", rc.Hop, rc.From, wire.NodeID(9))
	}
	if rc.Duplicates != 1 {
		t.Errorf("%d duplicates, want the relayed copy counted as one", rc.Duplicates)
	}
	if _, ok := n.Receipt(context.Background(), other.ID.String(), 0); !ok {
		t.Error("the other message of the batch was not delivered")
	}
}

// TestBatchLetsLateCopiesIn: the batch holds only a relayed first copy
// (hop 2) of a message; the direct copy (hop 1) is already in a socket's
// buffer, but its reader has not been woken, because the Go scheduler
// polls the network only when it has nothing else to run. The loop must
// let it in before it takes the batch, and deliver the direct copy.
func TestBatchLetsLateCopiesIn(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	cfg := DefaultConfig()
	cfg.Key = KeyForTest(1)
	cfg.Transport = memnet.New().Host("h")
	cfg.Listen = "h:7000"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stopUnrun(n)

	msg := wire.Message{Origin: KeyForTest(9).ID(), Seq: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("late direct copy")}
	msg.ID = wire.ComputeMsgID(msg.Origin, msg.Seq, msg.Body)
	signForTest(t, 9, &msg)
	relayed, direct := msg, msg
	relayed.Hop, direct.Hop = 2, 1

	// A reader stand-in parked on a pipe, as a connection's reader parks
	// on its socket.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	parked := make(chan struct{})
	go func() {
		close(parked)
		var b [1]byte
		if _, err := r.Read(b[:]); err == nil {
			n.inbox <- inbound{from: &peer{id: 9}, msg: direct, at: time.Now().UnixNano()}
		}
	}()
	<-parked
	runtime.Gosched() // with one processor: the reader runs and parks in Read
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	n.receiveBatch(inbound{from: &peer{id: 3}, msg: relayed, at: time.Now().UnixNano()})

	rc, ok := n.Receipt(context.Background(), msg.ID.String(), 0)
	if !ok {
		t.Fatal("the message was not delivered")
	}
	if rc.Hop != 1 {
		t.Errorf("first receipt at hop %d from %s, want the direct copy at hop 1", rc.Hop, rc.From)
	}
}

// stopUnrun releases what a Node that was never Run may hold: its listener
// and the loop's helper goroutines.
func stopUnrun(n *Node) {
	n.ln.Close()
	close(n.stop)
	n.wg.Wait()
}

// TestBatchSortAllocatesNothing: the loop sorts every batch, so the sort
// must not allocate.
func TestBatchSortAllocatesNothing(t *testing.T) {
	batch := make([]inbound, maxBatch)
	for i := range batch {
		batch[i].msg.Hop = uint16(maxBatch - i%7)
	}
	allocs := testing.AllocsPerRun(10, func() {
		for i := range batch {
			batch[i].msg.Hop = uint16((i * 31) % 11)
		}
		slices.SortStableFunc(batch, byHop)
	})
	if allocs != 0 {
		t.Errorf("sorting a batch allocates %v times", allocs)
	}
	if !slices.IsSortedFunc(batch, byHop) {
		t.Error("batch not sorted by hop")
	}
}

// TestNearestFollowsTheShortestPathSeen: the per-origin hop estimate that
// decides whether a relayed first copy is worth waiting on takes the
// lowest hop seen, and moves up one hop after maxMisses waits in a row
// that brought nothing shorter.
func TestNearestFollowsTheShortestPathSeen(t *testing.T) {
	var n Node
	n.learnNearest(9, 3, true)
	n.learnNearest(9, 2, false)
	if got := n.nearest[9].hop; got != 2 {
		t.Fatalf("estimate %d after hops 3 and 2, want 2", got)
	}
	n.learnNearest(9, 4, false) // late, without a wait: keep the estimate
	for range maxMisses - 1 {
		n.learnNearest(9, 4, true)
	}
	if got := n.nearest[9].hop; got != 2 {
		t.Fatalf("estimate %d after %d fruitless waits, want 2 still", got, maxMisses-1)
	}
	n.learnNearest(9, 4, true)
	if got := n.nearest[9].hop; got != 3 {
		t.Fatalf("estimate %d after %d fruitless waits at hop 4, want 3", got, maxMisses)
	}
	n.learnNearest(9, 2, false)
	if got := n.nearest[9]; got.hop != 2 || got.misses != 0 {
		t.Fatalf("estimate %+v after a first receipt at hop 2, want hop 2 and no misses", got)
	}
	for o := range wire.NodeID(maxNearest + 10) {
		n.learnNearest(o+100, 1, false)
	}
	if len(n.nearest) > maxNearest {
		t.Fatalf("%d origins remembered, want at most %d", len(n.nearest), maxNearest)
	}
}

// signForTest signs m as its origin, test key k's node.
func signForTest(t *testing.T, k int, m *wire.Message) {
	t.Helper()
	a, err := identity.SignMessage(KeyForTest(k), m)
	if err != nil {
		t.Fatal(err)
	}
	m.Auth = a
}
