package node_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/transport/tcp"
	"gossipmesh/wire"
)

// rawPeer is a hand-driven gossip connection: it says hello and then sends
// (or withholds) exactly the bytes a test chooses.
type rawPeer struct {
	t    *testing.T
	id   wire.NodeID
	key  *identity.Key
	conn net.Conn
	seq  uint64
}

// dialRaw connects to target, completes the handshake as the holder of
// test key k and waits until the target lists the link. readBuffer, if positive, fixes the socket's receive
// buffer (no autotuning), so that a peer that does not read stops the
// target's writes soon.
func dialRaw(t *testing.T, target *node.Node, k int, readBuffer int) *rawPeer {
	t.Helper()
	conn, err := (tcp.Transport{}).Dial(context.Background(), target.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if readBuffer > 0 {
		conn.(*net.TCPConn).SetReadBuffer(readBuffer)
	}
	handshakeAs(t, conn, k)
	id := node.KeyForTest(k).ID()
	eventually(t, "the raw peer to link", func() bool {
		for _, p := range target.Peers() {
			if p.ID == id.String() {
				return true
			}
		}
		return false
	})
	return &rawPeer{t: t, id: id, key: node.KeyForTest(k), conn: conn}
}

// nextMessage returns the frame of this peer's next own message, at hop 1,
// signed with its key.
func (r *rawPeer) nextMessage(body []byte) (wire.MsgID, []byte) {
	r.seq++
	m := &wire.Message{Origin: r.id, Seq: r.seq, Hop: 1, PublishedAt: time.Now().UnixNano(), Body: body}
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	a, err := identity.SignMessage(r.key, m)
	if err != nil {
		r.t.Fatal(err)
	}
	m.Auth = a
	return m.ID, wire.AppendMessage(nil, m)
}

// countMessages reads the target's frames from r (its hello first) until
// the connection ends, adding one to n per message frame.
func (r *rawPeer) countMessages(n *atomic.Int64, pace func()) {
	fr := wire.NewReader(bufio.NewReaderSize(r.conn, 16<<10), wire.DefaultMaxFrame)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == wire.FrameMessage {
			n.Add(1)
		}
		if pace != nil {
			pace()
		}
	}
}

// series reads one series of a labelled counter from a node's registry.
func series(t *testing.T, n *node.Node, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return value(m)
		}
	}
	return 0
}

// TestInboundByteBudget: four peers send 1 MiB bodies as fast as they can
// into a node whose inbox may hold 3 MiB. The bytes the node holds for
// frames it has not yet handled never exceed that, the readers are made to
// wait (TCP pushes back), and yet every message is delivered: the budget
// slows senders down, it does not lose their messages.
func TestInboundByteBudget(t *testing.T) {
	t.Parallel()
	const (
		budget  = 3 << 20
		senders = 4
		each    = 12
	)
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.InboxBytes = budget
		c.StallTimeout = settle // only the budget should make readers wait
	})
	body := make([]byte, wire.DefaultMaxBody)
	var ids []wire.MsgID
	var peers []*rawPeer
	var frames [][]byte
	for i := range senders {
		p := dialRaw(t, target, 100+i, 0)
		peers = append(peers, p)
		go p.countMessages(new(atomic.Int64), nil) // drain what the target forwards
		for range each {
			id, f := p.nextMessage(body)
			ids = append(ids, id)
			frames = append(frames, f)
		}
	}
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range frames[i*each : (i+1)*each] {
				if _, err := p.conn.Write(f); err != nil {
					t.Errorf("peer %d: write: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if _, ok := target.Receipt(context.Background(), id.String(), settle); !ok {
			t.Fatalf("message %d of %d never delivered", i, len(ids))
		}
	}
	if peak := counter(t, target, "gossipmesh_inbox_max_bytes"); peak > budget || peak < wire.DefaultMaxBody {
		t.Errorf("inbox held up to %v bytes, want at least one body and at most the %d-byte budget", peak, budget)
	}
	if waits := counter(t, target, "gossipmesh_inbox_waits_total"); waits == 0 {
		t.Error("no reader ever waited for inbox budget: the test did not push past the limit")
	}
	eventually(t, "the inbox budget to be handed back", func() bool {
		return counter(t, target, "gossipmesh_inbox_bytes") == 0
	})
}

// TestUnfinishedLargeFramesDoNotStallSmallOnes: peers that start 1 MiB
// frames and never finish them hold what they can of the inbox's pool for
// large frames, but the small frames of an honest peer keep their own pool
// and get through.
func TestUnfinishedLargeFramesDoNotStallSmallOnes(t *testing.T) {
	t.Parallel()
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.InboxBytes = 4 << 20  // 3 MiB for large frames, 1 MiB for small ones
		c.StallTimeout = settle // only the budget decides here
	})
	healthy := startTCPNode(t, node.KeyForTest(2), []string{target.Addr()}, nil)
	eventually(t, "the healthy peer to link at both ends", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })
	for i := range 6 { // twice what the large pool holds
		p := dialRaw(t, target, 100+i, 0)
		go p.countMessages(new(atomic.Int64), nil)
		_, f := p.nextMessage(make([]byte, wire.DefaultMaxBody))
		if _, err := p.conn.Write(f[:len(f)-1]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the unfinished frames to take the large pool", func() bool {
		// One fits the newcomers' share of the large pool; the others wait.
		return counter(t, target, "gossipmesh_inbox_bytes") >= wire.DefaultMaxBody && counter(t, target, "gossipmesh_inbox_waits_total") >= 5
	})
	for i := range 50 {
		rc, err := healthy.Publish(context.Background(), []byte("small"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := target.Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("small message %d stuck behind unfinished large frames", i)
		}
	}
}

// TestNewcomersCannotTakeTheInbox: connections that say hello and start
// 1 MiB frames they never finish get at most the newcomers' half of the
// pool for large frames; a working link's 1 MiB messages still get in.
func TestNewcomersCannotTakeTheInbox(t *testing.T) {
	t.Parallel()
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.InboxBytes = 4 << 20 // 3 MiB for large frames, 1.5 MiB of it for newcomers
		c.StallTimeout = settle
	})
	healthy := startTCPNode(t, node.KeyForTest(2), []string{target.Addr()}, nil)
	eventually(t, "the healthy peer to link at both ends", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })
	rc, err := healthy.Publish(context.Background(), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := target.Receipt(context.Background(), rc.ID, settle); !ok {
		t.Fatal("the first message never arrived")
	}
	for i := range 6 {
		p := dialRaw(t, target, 100+i, 0)
		go p.countMessages(new(atomic.Int64), nil)
		_, f := p.nextMessage(make([]byte, wire.DefaultMaxBody))
		if _, err := p.conn.Write(f[:len(f)-1]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the newcomers to fill their share and queue", func() bool {
		return counter(t, target, "gossipmesh_inbox_bytes") >= wire.DefaultMaxBody && counter(t, target, "gossipmesh_inbox_waits_total") >= 5
	})
	for i := range 5 {
		rc, err := healthy.Publish(context.Background(), make([]byte, wire.DefaultMaxBody))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := target.Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("large message %d from a working link stuck behind the newcomers", i)
		}
	}
}

// TestStallDeadlineIsAbsolute: a peer that starts a 1 MiB frame and then
// sends one byte every 100 ms never stops making progress, but the frame
// must be complete within the stall timeout of its start. The node drops
// it as stalled; a deadline re-armed by every byte would keep it forever.
func TestStallDeadlineIsAbsolute(t *testing.T) {
	t.Parallel()
	logs := &logSink{}
	target := startTCPNode(t, node.KeyForTest(1), nil, logs) // StallTimeout 500 ms
	p := dialRaw(t, target, 77, 0)
	local := p.conn.LocalAddr().String()
	_, f := p.nextMessage(make([]byte, wire.DefaultMaxBody))
	if _, err := p.conn.Write(f[:64<<10]); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, p.conn) // the node's hello, then EOF or a reset
		close(closed)
	}()
	// Trickle for up to 30 s, 60 stall timeouts: plenty of time for a node
	// that enforces the deadline, and a bounded test for one that does
	// not. The trickle never pauses, so only an absolute deadline ends it.
	trickle := time.NewTicker(100 * time.Millisecond)
	defer trickle.Stop()
	sent := 64 << 10
	dropped := false
trickling:
	for range 300 {
		select {
		case <-closed:
			dropped = true
			break trickling
		case <-trickle.C:
		}
		if _, err := p.conn.Write(f[sent : sent+1]); err != nil {
			dropped = true // the node hung up
			break
		}
		sent++
	}
	if !dropped {
		t.Fatalf("the node kept a connection that trickled %d bytes of a frame, one every 100 ms, for %d stall timeouts", sent-64<<10, (sent-64<<10)/5)
	}
	<-closed
	eventually(t, "a stall warning for the trickling peer", func() bool {
		return logs.find(func(r map[string]any) bool {
			msg, _ := r["err"].(string)
			return r["level"] == "WARN" && r["peer"] == local && strings.Contains(msg, "stalled")
		}) != nil
	})
}

// TestSendQueueBytesBounded: a peer that never reads, and 200 KiB frames
// forwarded to it. Its queue holds at most its byte budget (1 MiB here,
// where 8,192 frames would be 1.6 GB); the rest are dropped and counted,
// and the node keeps taking messages from the healthy peer.
func TestSendQueueBytesBounded(t *testing.T) {
	t.Parallel()
	const peerBudget = 1 << 20
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.Gossip.MaxBody = 256 << 10
		c.PeerSendQueueBytes = peerBudget
		c.StallTimeout = settle // the stuck peer stays linked
	})
	healthy := startTCPNode(t, node.KeyForTest(2), []string{target.Addr()}, nil, func(c *node.Config) { c.Gossip.MaxBody = 256 << 10 })
	eventually(t, "the healthy peer to link at both ends", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })
	dialRaw(t, target, 99, 4<<10) // never reads

	const msgs = 200
	body := make([]byte, 200<<10)
	for i := range msgs {
		rc, err := healthy.Publish(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := target.Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("message %d never reached the target", i)
		}
	}
	full := series(t, target, "gossipmesh_dropped_total", map[string]string{"queue": "send", "reason": "full"})
	if full == 0 || counter(t, target, "gossipmesh_messages_dropped_total") < full {
		t.Errorf("dropped for a full queue: %v (messages_dropped_total %v); want some, all counted",
			full, counter(t, target, "gossipmesh_messages_dropped_total"))
	}
	// 40 MB forwarded, at most 1 MiB queued and some MiB in the socket:
	// most copies must have been dropped.
	if full < msgs/2 {
		t.Errorf("only %v of %d copies dropped for a peer that never reads", full, msgs)
	}
	if peak := counter(t, target, "gossipmesh_send_queue_max_bytes"); peak > peerBudget {
		t.Errorf("send queues held up to %v bytes, budget %d", peak, peerBudget)
	}
}

// TestStaleSendQueueEntriesDropped: frames that wait longer than
// MaxQueueDelay in a send queue are dropped when their turn comes, and
// counted; the peer gets only the others. Every copy is accounted for:
// received or dropped as stale.
func TestStaleSendQueueEntriesDropped(t *testing.T) {
	t.Parallel()
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.MaxQueueDelay = 200 * time.Millisecond
		c.StallTimeout = settle
	})
	healthy := startTCPNode(t, node.KeyForTest(2), []string{target.Addr()}, nil)
	eventually(t, "the healthy peer to link at both ends", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })
	// Not too small a buffer: a receive window below one segment makes
	// Linux send in persist probes only, seconds apart.
	slow := dialRaw(t, target, 99, 256<<10) // does not read until told

	const msgs = 60 // 12 MB: far more than the socket buffers hold
	body := make([]byte, 200<<10)
	for i := range msgs {
		rc, err := healthy.Publish(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := target.Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("message %d never reached the target", i)
		}
	}
	// Let what is queued grow older than the limit: this sleep makes the
	// condition, nothing here measures speed.
	time.Sleep(3 * 200 * time.Millisecond)
	var got atomic.Int64
	go slow.countMessages(&got, nil)
	stale := func() float64 {
		return series(t, target, "gossipmesh_dropped_total", map[string]string{"queue": "send", "reason": "stale"})
	}
	eventually(t, "every copy to be received or dropped", func() bool { return float64(got.Load())+stale() == msgs })
	if stale() == 0 {
		t.Fatalf("the slow peer got all %d messages, although most waited three times the max queue delay", got.Load())
	}
	if q := counter(t, target, "gossipmesh_send_queue_bytes"); q != 0 {
		t.Errorf("%v bytes still counted in the send queues once they emptied", q)
	}
	if full := series(t, target, "gossipmesh_dropped_total", map[string]string{"queue": "send", "reason": "full"}); full != 0 {
		t.Errorf("%v copies dropped for a full queue; the queue had room", full)
	}
}

// TestPublishBackpressure: a full-speed load into a slow peer. The node's
// own messages wait for its queues to drain instead of overflowing them:
// none is dropped, and the slow peer gets every one.
func TestPublishBackpressure(t *testing.T) {
	t.Parallel()
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.SendQueue = 16
		c.StallTimeout = settle  // slow is not stalled
		c.MaxQueueDelay = settle // nor passed over, however loaded the machine
	})
	slow := dialRaw(t, target, 99, 256<<10)
	var got atomic.Int64
	go slow.countMessages(&got, func() { time.Sleep(100 * time.Microsecond) })

	const msgs = 2000
	res, err := target.Load(context.Background(), api.LoadRequest{Count: msgs, Size: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != msgs {
		t.Fatalf("published %d of %d", res.Published, msgs)
	}
	eventually(t, "the slow peer to get every message", func() bool { return got.Load() >= msgs })
	if d := counter(t, target, "gossipmesh_messages_dropped_total"); d != 0 {
		t.Errorf("the publisher dropped %v copies of its own messages", d)
	}
	if got.Load() != msgs {
		t.Errorf("the slow peer got %d messages, want %d", got.Load(), msgs)
	}
	if p := counter(t, target, "gossipmesh_publish_pauses_total"); p == 0 {
		t.Error("publishing never paused: the test did not push past the queue")
	}
}

// TestPublishBackpressureLargeBodies: a load of 1 MiB bodies into a slow
// peer keeps the publisher's queues within their budget, without drops.
func TestPublishBackpressureLargeBodies(t *testing.T) {
	t.Parallel()
	const peerBudget = 4 << 20
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, func(c *node.Config) {
		c.PeerSendQueueBytes = peerBudget
		c.StallTimeout = settle
		c.MaxQueueDelay = settle
	})
	slow := dialRaw(t, target, 99, 256<<10)
	var got atomic.Int64
	go slow.countMessages(&got, func() { time.Sleep(time.Millisecond) })
	const msgs = 64
	res, err := target.Load(context.Background(), api.LoadRequest{Count: msgs, Size: wire.DefaultMaxBody})
	if err != nil || res.Published != msgs {
		t.Fatalf("load: %v, published %d", err, res.Published)
	}
	eventually(t, "the slow peer to get every message", func() bool { return got.Load() >= msgs })
	if peak := counter(t, target, "gossipmesh_send_queue_max_bytes"); peak > peerBudget {
		t.Errorf("send queues held up to %v bytes, budget %d", peak, peerBudget)
	}
	if d := counter(t, target, "gossipmesh_messages_dropped_total"); d != 0 {
		t.Errorf("the publisher dropped %v copies of its own messages", d)
	}
}

// TestPublishPassesOverAStuckPeer: a peer that never reads holds the
// node's own publishes back for one max queue delay, no longer. Then it is
// passed over: it loses copies (counted), and the publishes go on to the
// peer that reads, which ends up with every one. On a loaded machine the
// peer that reads can itself lag past the short max queue delay used here
// and lose pushed copies too (counted, by design); anti-entropy repairs
// those, so the test asserts what a user gets: nothing lost for it.
func TestPublishPassesOverAStuckPeer(t *testing.T) {
	t.Parallel()
	target := startTCPNode(t, node.KeyForTest(1), nil, nil, withAntiEntropy, func(c *node.Config) {
		c.StallTimeout = settle // only the pass-over can free the publishes
		c.MaxQueueDelay = 200 * time.Millisecond
		c.PeerSendQueueBytes = 2*wire.DefaultMaxFrame + 256 // two max-size frames, signed
	})
	healthy := startTCPNode(t, node.KeyForTest(2), []string{target.Addr()}, nil, withAntiEntropy)
	eventually(t, "the healthy peer to link at both ends", func() bool { return len(target.Peers()) == 1 && len(healthy.Peers()) == 1 })
	dialRaw(t, target, 99, 4<<10) // never reads

	const msgs = 200
	res, err := target.Load(context.Background(), api.LoadRequest{Count: msgs, Size: 64 << 10})
	if err != nil || res.Published != msgs {
		t.Fatalf("load: %v, published %d of %d", err, res.Published, msgs)
	}
	for i, id := range res.IDs {
		if _, ok := healthy.Receipt(context.Background(), id, settle); !ok {
			t.Fatalf("message %d never reached the peer that reads; target:%s; healthy:%s", i, lossReport(t, target), lossReport(t, healthy))
		}
	}
	if d := counter(t, target, "gossipmesh_messages_dropped_total"); d == 0 {
		t.Error("no copy dropped for the peer that never reads")
	}
	if p := counter(t, target, "gossipmesh_publish_passed_over_total"); p == 0 {
		t.Error("the stuck peer was never passed over")
	}
}

// TestPausedPublishEnds: a publish held back by a peer that never reads
// ends when its client gives up, and when the node stops; it is never left
// hanging.
func TestPausedPublishEnds(t *testing.T) {
	t.Parallel()
	cfg := node.DefaultConfig()
	cfg.Key = node.KeyForTest(1)
	cfg.Listen = "127.0.0.1:0"
	cfg.StallTimeout = settle
	cfg.MaxQueueDelay = settle // the pause lasts until the test ends it
	cfg.PeerSendQueueBytes = 4 << 20
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go n.Run(ctx)
	defer func() { cancel(); <-n.Done() }()
	dialRaw(t, n, 99, 4<<10)
	load := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := n.Load(ctx, api.LoadRequest{Count: 64, Size: wire.DefaultMaxBody})
			done <- err
		}()
		return done
	}
	wait := func(what string, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: the load reported success", what)
			}
		case <-time.After(settle):
			t.Fatalf("%s: a paused publish hung", what)
		}
	}

	clientCtx, clientGone := context.WithCancel(context.Background())
	done := load(clientCtx)
	eventually(t, "publishing to pause", func() bool { return counter(t, n, "gossipmesh_publish_pauses_total") > 0 })
	clientGone()
	wait("client gone", done)

	pauses := counter(t, n, "gossipmesh_publish_pauses_total")
	done = load(context.Background())
	eventually(t, "publishing to pause again", func() bool { return counter(t, n, "gossipmesh_publish_pauses_total") > pauses })
	cancel()
	wait("node stopped", done)
}

// TestBudgetValidation: the budget and its shares are checked up front.
func TestBudgetValidation(t *testing.T) {
	t.Parallel()
	if err := node.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		tweak func(*node.Config)
		want  string
	}{
		{"zero budget", func(c *node.Config) { c.MemoryBudget = 0 }, "memory budget must be positive"},
		{"budget too small for 1 MiB frames", func(c *node.Config) { c.MemoryBudget = 16 << 20 }, "cannot hold two"},
		{"inbox below one frame", func(c *node.Config) { c.InboxBytes = 1 << 20 }, "cannot hold one"},
		{"shares above the budget", func(c *node.Config) { c.ReceiptBytes = 200 << 20 }, "3/4 of the memory budget"},
		{"negative share", func(c *node.Config) { c.SendQueueBytes = -1 }, "must not be negative"},
		{"total below one peer", func(c *node.Config) { c.SendQueueBytes = 4 << 20 }, "less than one peer"},
		{"no queue delay", func(c *node.Config) { c.MaxQueueDelay = 0 }, "max queue delay"},
	} {
		c := node.DefaultConfig()
		tc.tweak(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	// A smaller budget with a smaller body limit is fine.
	c := node.DefaultConfig()
	c.MemoryBudget = 32 << 20
	c.Gossip.MaxBody = 64 << 10
	if err := c.Validate(); err != nil {
		t.Errorf("32 MiB budget with 64 KiB bodies: %v", err)
	}
}
