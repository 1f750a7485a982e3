package node

import (
	"os"
	"runtime/debug"
	"testing"
	"time"

	"gossipmesh/transport/memnet"
	"gossipmesh/wire"
)

func TestByteBudgetWaitsAndCancels(t *testing.T) {
	var totals budgetTotals
	b := newByteBudget(10, 10, &totals)
	if waited, err := b.acquire(6, false, nil, nil); waited || err != nil {
		t.Fatalf("first acquire: waited %v, %v", waited, err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.acquire(6, false, nil, nil) // does not fit until the first is released
		got <- err
	}()
	// A later, smaller request queues behind it rather than overtaking.
	cancel := make(chan struct{})
	cancelled := make(chan error, 1)
	for totals.waits.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		_, err := b.acquire(1, false, cancel, nil)
		cancelled <- err
	}()
	for totals.waits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(cancel)
	if err := <-cancelled; err != errBudgetCancelled {
		t.Fatalf("cancelled acquire: %v", err)
	}
	select {
	case err := <-got:
		t.Fatalf("acquire of 6 with 4 free returned %v", err)
	default:
	}
	b.release(6, false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if totals.inUse.Load() != 6 || totals.peak.Load() != 6 {
		t.Errorf("in use %d, peak %d; want 6 and 6", totals.inUse.Load(), totals.peak.Load())
	}
	b.release(6, false)
	if totals.inUse.Load() != 0 || len(b.waiters) != 0 {
		t.Errorf("after release: %d in use, %d waiters", totals.inUse.Load(), len(b.waiters))
	}
}

// TestByteBudgetNewcomersShare: links that have not delivered a message
// share half the budget; a working link goes past a newcomer held back by
// that share, and the newcomer is served once the share frees up.
func TestByteBudgetNewcomersShare(t *testing.T) {
	var totals budgetTotals
	b := newByteBudget(10, 2, &totals)
	if waited, err := b.acquire(5, true, nil, nil); waited || err != nil {
		t.Fatalf("newcomer within its share: waited %v, %v", waited, err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.acquire(1, true, nil, nil) // over the newcomers' share
		got <- err
	}()
	for totals.waits.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	if waited, err := b.acquire(4, false, nil, nil); waited || err != nil {
		t.Fatalf("a working link behind a held-back newcomer: waited %v, %v", waited, err)
	}
	select {
	case <-got:
		t.Fatal("a newcomer got more than the newcomers' share")
	default:
	}
	b.release(5, true)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	b.release(4, false)
	b.release(1, true)
	if totals.inUse.Load() != 0 || b.usedNewcomers != 0 {
		t.Errorf("after release: %d in use, %d by newcomers", totals.inUse.Load(), b.usedNewcomers)
	}
}

// TestStaleInboxEntriesDropped: a frame that waited in the inbox longer
// than MaxQueueDelay never reaches the core; it is counted, and its budget
// is handed back like any other's.
func TestStaleInboxEntriesDropped(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Key = KeyForTest(1)
	cfg.Transport = memnet.New().Host("h")
	cfg.Listen = "h:1"
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.ln.Close()
	from := &peer{id: 2, done: make(chan struct{})}
	msg := func(seq uint64) wire.Message {
		m := wire.Message{Origin: KeyForTest(2).ID(), Seq: seq, Hop: 1, PublishedAt: time.Now().UnixNano(), Body: []byte("x")}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		signForTest(t, 2, &m)
		return m
	}
	now := time.Now().UnixNano()
	old, fresh := msg(1), msg(2)
	for _, size := range []int64{100, 200} {
		if _, err := n.mem.inbox.acquire(size, false, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	n.receiveBatch(inbound{from: from, msg: old, at: now - 2*cfg.MaxQueueDelay.Nanoseconds(), size: 100})
	n.receiveBatch(inbound{from: from, msg: fresh, at: now, size: 200})
	if _, ok := n.receipts.get(old.ID); ok {
		t.Error("a stale inbox entry was delivered")
	}
	if _, ok := n.receipts.get(fresh.ID); !ok {
		t.Error("a fresh inbox entry was not delivered")
	}
	if got := n.mem.inbox.totals.inUse.Load(); got != 0 {
		t.Errorf("%d inbox bytes still held after both were handled", got)
	}
	mfs, _ := n.m.reg.Gather()
	var stale float64
	for _, mf := range mfs {
		if mf.GetName() == "gossipmesh_dropped_total" {
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) == 2 && m.GetLabel()[0].GetValue() == "inbox" && m.GetLabel()[1].GetValue() == "stale" {
					stale = m.GetCounter().GetValue()
				}
			}
		}
	}
	if stale != 1 {
		t.Errorf("dropped_total{queue=inbox,reason=stale} = %v, want 1", stale)
	}
}

func TestSetProcessMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if !SetProcessMemoryLimit(256 << 20) {
			t.Error("no GOMEMLIMIT, but the limit was not set")
		}
		if got := debug.SetMemoryLimit(-1); got != 224<<20 {
			t.Errorf("memory limit %d, want 7/8 of the 256 MiB budget", got)
		}
	}
	debug.SetMemoryLimit(prev)
	t.Setenv("GOMEMLIMIT", "1GiB")
	if SetProcessMemoryLimit(100 << 20) {
		t.Error("GOMEMLIMIT is set, yet the budget overrode it")
	}
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("memory limit changed to %d although GOMEMLIMIT is set", got)
	}
}
