package node

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

// TestBatchTakesLowestHopFirst feeds the loop one batch in which a relayed
// copy of a message (hop 2) was queued before the direct one (hop 1). The
// node's first receipt is the lowest-hop copy among those that had arrived
// when it took them: the direct one.
func TestBatchTakesLowestHopFirst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ID = 1
	cfg.Transport = memnet.New().Host("h")
	cfg.Listen = "h:7000"
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.ln.Close()

	msg := wire.Message{Origin: 9, Seq: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("to every neighbour")}
	msg.ID = wire.ComputeMsgID(msg.Origin, msg.Seq, msg.Body)
	relayed, direct := msg, msg
	relayed.Hop, direct.Hop = 2, 1
	other := msg // another message, relayed, behind both
	other.Seq, other.Hop = 2, 3
	other.ID = wire.ComputeMsgID(other.Origin, other.Seq, other.Body)

	n.inbox <- inbound{from: &peer{id: 9}, msg: direct}
	n.inbox <- inbound{from: &peer{id: 4}, msg: other}
	n.receiveBatch(inbound{from: &peer{id: 3}, msg: relayed})

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
