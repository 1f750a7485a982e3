// Command gsbench measures go-libp2p gossipsub the way gossipmesh's
// `mesh bench` measures gossipmesh, so that the two can be run side by side
// on one machine: N libp2p hosts in one process, TCP on 127.0.0.1, the same
// random overlay as `mesh bench` for the same --nodes, --peers and --seed,
// one topic, default GossipSub parameters. It reports the time from publish
// to the last host's delivery over sequential messages (p50/p99/max), then
// the highest sustained deliveries/s at 100% delivery, found by the same
// doubling-then-bisecting search with the same pass conditions.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const topicName = "gsbench"

// Sustained-rate conditions, the same as mesh bench's.
const (
	scheduleSlack = 0.05                   // publisher within 5% of its schedule
	maxTail       = 100 * time.Millisecond // last delivery within 100 ms of the last publish
	loadChunk     = 64                     // messages published per trip, as the node's /load
	headerLen     = 8                      // epoch (4 bytes) + index (4 bytes) at the start of each body
)

type config struct {
	nodes, peers, messages, warmup, size, maxSteps, gomaxprocs int
	gap, wait, step, settle                                    time.Duration
	startRate, maxRate, precision                              float64
	seed                                                       uint64
	sign, asJSON                                               bool
	subBuffer                                                  int
}

func (c config) validate() error {
	switch {
	case c.nodes < 2:
		return fmt.Errorf("nodes must be at least 2, got %d", c.nodes)
	case c.peers < 1 || c.peers > c.nodes-1:
		return fmt.Errorf("peers must be 1 to nodes-1 = %d, got %d", c.nodes-1, c.peers)
	case c.messages < 1:
		return fmt.Errorf("messages must be at least 1, got %d", c.messages)
	case c.warmup < 0:
		return fmt.Errorf("warmup must not be negative, got %d", c.warmup)
	case c.gap < 0:
		return fmt.Errorf("gap must not be negative, got %v", c.gap)
	case c.size < 0 || c.size > 1<<20:
		return fmt.Errorf("size must be 0 to 1048576 bytes, got %d", c.size)
	case c.step < 100*time.Millisecond:
		return fmt.Errorf("duration must be at least 100ms, got %v", c.step)
	case c.startRate <= 0 || c.maxRate < c.startRate:
		return fmt.Errorf("want 0 < start rate (%v) <= max rate (%v)", c.startRate, c.maxRate)
	case c.subBuffer < 1:
		return fmt.Errorf("sub-buffer must be at least 1, got %d", c.subBuffer)
	case c.settle < 0:
		return fmt.Errorf("settle must not be negative, got %v", c.settle)
	}
	return nil
}

func main() {
	var c config
	fs := flag.NewFlagSet("gsbench", flag.ContinueOnError)
	fs.IntVar(&c.nodes, "nodes", 10, "libp2p hosts, all in this process")
	peers := fs.Int("peers", 0, "peers each host dials, chosen at random as mesh bench does, capped at nodes-1 (default 3)")
	fs.IntVar(&c.messages, "messages", 500, "sequential messages timed from publish to the last host")
	fs.IntVar(&c.warmup, "warmup", 20, "untimed sequential messages first")
	fs.DurationVar(&c.gap, "gap", 0, "idle time between one sequential message reaching every host and the next publish")
	fs.IntVar(&c.size, "size", 64, "message body size in bytes (the first 8 carry the bench's own tag; at least 8 are sent)")
	fs.DurationVar(&c.step, "duration", 2*time.Second, "how long each rate of the throughput search runs")
	fs.Float64Var(&c.startRate, "start-rate", 10_000, "first rate of the throughput search, deliveries/s")
	fs.Float64Var(&c.maxRate, "max-rate", 500_000, "highest rate the search tries, deliveries/s")
	seed := fs.Uint64("seed", 1, "seed of the overlay and of the publishers (the same overlay as mesh bench's for the same seed)")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "time for gossipsub heartbeats to settle the mesh once every host sees its neighbours' subscriptions")
	fs.BoolVar(&c.sign, "sign", true, "sign and verify every message (gossipsub's default StrictSign); false: StrictNoSign, no author, message id = body")
	fs.IntVar(&c.subBuffer, "sub-buffer", 4096, "messages each host's subscription buffers for the bench's reader (pubsub's default is 32; a full buffer drops messages, which would measure the reader, not gossipsub)")
	fs.IntVar(&c.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of this process (0: Go's default)")
	fs.BoolVar(&c.asJSON, "json", false, "print the result as JSON")
	summary := fs.String("summarize", "", "print the table of medians of the runs that run.sh left in this directory, and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *summary != "" {
		if err := summarize(*summary, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "gsbench:", err)
			os.Exit(1)
		}
		return
	}
	c.seed = *seed
	c.peers = *peers
	if c.peers == 0 {
		c.peers = 3
	}
	// As mesh bench's topology does, a host cannot dial more than the
	// others: --peers 12 at 10 hosts is the complete graph.
	c.peers = min(c.peers, c.nodes-1)
	c.wait, c.precision, c.maxSteps = time.Second, 0.05, 14
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "gsbench:", err)
		os.Exit(2)
	}
	if c.gomaxprocs > 0 {
		runtime.GOMAXPROCS(c.gomaxprocs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gsbench:", err)
		os.Exit(1)
	}
}

// counters is the raw tracer shared by every host: frames are counted in
// the timed sequential window only, drops always.
type counters struct {
	on                      atomic.Bool
	payload, control, dups  atomic.Int64
	rpcDrops, undeliverable atomic.Int64
}

func (t *counters) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	if !t.on.Load() {
		return
	}
	t.payload.Add(int64(len(rpc.GetPublish())))
	if ctl := rpc.GetControl(); ctl != nil {
		t.control.Add(int64(len(ctl.GetIhave()) + len(ctl.GetIwant()) + len(ctl.GetGraft()) + len(ctl.GetPrune()) + len(ctl.GetIdontwant())))
	}
}
func (t *counters) DuplicateMessage(*pubsub.Message) {
	if t.on.Load() {
		t.dups.Add(1)
	}
}
func (t *counters) DropRPC(*pubsub.RPC, peer.ID)                         { t.rpcDrops.Add(1) }
func (t *counters) UndeliverableMessage(*pubsub.Message)                 { t.undeliverable.Add(1) }
func (t *counters) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *counters) Join(string)                                          {}
func (t *counters) Leave(string)                                         {}
func (t *counters) Graft(peer.ID, string)                                {}
func (t *counters) Prune(peer.ID, string)                                {}
func (t *counters) ValidateMessage(*pubsub.Message)                      {}
func (t *counters) DeliverMessage(*pubsub.Message)                       {}
func (t *counters) RejectMessage(*pubsub.Message, string)                {}
func (t *counters) ThrottlePeer(peer.ID)                                 {}
func (t *counters) RecvRPC(*pubsub.RPC)                                  {}
func (t *counters) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *counters) OnClosedOutboundStream(peer.ID)                       {}

// rec is one host's receipts for the current epoch: times[k] is when
// message k of the epoch reached this host's subscription, in ns since the
// run's base time (0: not yet).
type rec struct {
	mu      sync.Mutex
	epoch   uint32
	times   []int64
	got     int
	notify  chan<- int // sequential phase: gets k on each receipt
	watch   int        // throughput phase: index whose receipt closes watchCh
	watchCh chan struct{}
}

// node is one libp2p host with its gossipsub instance and subscription.
type node struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	rec   rec
}

type bench struct {
	cfg   config
	base  time.Time
	nodes []*node
	g     graph
	tr    *counters
	log   func(string)
}

func (b *bench) now() int64 { return int64(time.Since(b.base)) + 1 }

// read records every message that reaches n's subscription.
func (b *bench) read(ctx context.Context, n *node) {
	for {
		m, err := n.sub.Next(ctx)
		if err != nil {
			return
		}
		t := b.now()
		if len(m.Data) < headerLen {
			continue
		}
		epoch := binary.BigEndian.Uint32(m.Data[0:4])
		k := int(binary.BigEndian.Uint32(m.Data[4:8]))
		r := &n.rec
		r.mu.Lock()
		var notify chan<- int
		if epoch == r.epoch && k < len(r.times) && r.times[k] == 0 {
			r.times[k] = t
			r.got++
			notify = r.notify
			if k == r.watch && r.watchCh != nil {
				close(r.watchCh)
				r.watchCh = nil
			}
		}
		r.mu.Unlock()
		if notify != nil {
			select {
			case notify <- k:
			case <-ctx.Done():
				return
			}
		}
	}
}

// arm starts a new epoch of count messages at every host.
func (b *bench) arm(epoch uint32, count int, notify chan<- int, watch int) []chan struct{} {
	chans := make([]chan struct{}, len(b.nodes))
	for i, n := range b.nodes {
		r := &n.rec
		r.mu.Lock()
		r.epoch, r.times, r.got, r.notify, r.watch = epoch, make([]int64, count), 0, notify, watch
		chans[i] = make(chan struct{})
		r.watchCh = chans[i]
		r.mu.Unlock()
	}
	return chans
}

// snapshot copies every host's receipts of the current epoch.
func (b *bench) snapshot() [][]int64 {
	out := make([][]int64, len(b.nodes))
	for i, n := range b.nodes {
		n.rec.mu.Lock()
		out[i] = slices.Clone(n.rec.times)
		n.rec.mu.Unlock()
	}
	return out
}

func body(size int, epoch uint32, k int) []byte {
	d := make([]byte, max(size, headerLen))
	binary.BigEndian.PutUint32(d[0:4], epoch)
	binary.BigEndian.PutUint32(d[4:8], uint32(k))
	for i := headerLen; i < len(d); i++ {
		d[i] = "gossipsub  load "[i%16]
	}
	return d
}

func newNode(ctx context.Context, tr *counters, sign bool, subBuffer int) (*node, error) {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), // TCP only: no QUIC, WebSocket, WebTransport or WebRTC
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	opts := []pubsub.Option{pubsub.WithRawTracer(tr)}
	if !sign {
		// Without an author there is no from+seqno to name a message by,
		// so the id is the body, which the bench makes unique (epoch and
		// index in its first 8 bytes), as content-addressed deployments do.
		opts = append(opts, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor(),
			pubsub.WithMessageIdFn(func(m *pb.Message) string { return string(m.GetData()) }))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("gossipsub: %w", err)
	}
	topic, err := ps.Join(topicName)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("join: %w", err)
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(subBuffer))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return &node{h: h, ps: ps, topic: topic, sub: sub}, nil
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	// libp2p and pubsub log through slog; keep warnings (queue-full
	// drops are counted by the tracer instead) off the terminal.
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := &bench{cfg: c, base: time.Now(), tr: &counters{}, log: func(s string) { fmt.Fprintln(stderr, "gsbench:", s) }}
	t := newTopology(c.nodes, c.peers, c.seed)
	b.g = t.graph()
	degs := make([]int, c.nodes)
	for i := range degs {
		degs[i] = len(b.g[i])
	}
	header := fmt.Sprintf("gsbench: %d libp2p hosts in one process, go-libp2p-pubsub gossipsub (default params, sign %v, subscription buffer %d), %d peers each (%d links, degree %d-%d, avg %.1f, diameter %d), GOMAXPROCS %d, %d-byte bodies, seed %d",
		c.nodes, c.sign, c.subBuffer, c.peers, b.g.links(), slices.Min(degs), slices.Max(degs), 2*float64(b.g.links())/float64(c.nodes), b.g.diameter(), runtime.GOMAXPROCS(0), max(c.size, headerLen), c.seed)
	fmt.Fprintln(stderr, header)

	defer func() {
		for _, n := range b.nodes {
			n.sub.Cancel()
			n.h.Close()
		}
	}()
	for range c.nodes {
		n, err := newNode(ctx, b.tr, c.sign, c.subBuffer)
		if err != nil {
			return err
		}
		b.nodes = append(b.nodes, n)
		go b.read(ctx, n)
	}
	for i, js := range t.chosen {
		for _, j := range js {
			dst := b.nodes[j].h
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			err := b.nodes[i].h.Connect(cctx, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()})
			ccancel()
			if err != nil {
				return fmt.Errorf("connect host %d to %d: %w", i, j, err)
			}
		}
	}
	// Ready once every host sees each neighbour subscribed to the topic.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < len(b.nodes); {
		if len(b.nodes[i].ps.ListPeers(topicName)) >= degs[i] {
			i++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("host %d sees %d of its %d neighbours on the topic after 30 s", i, len(b.nodes[i].ps.ListPeers(topicName)), degs[i])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sleep(ctx, c.settle); err != nil {
		return err
	}

	rng := rand.New(rand.NewPCG(c.seed, 0x62656e6368)) // "bench", as mesh bench
	res := result{Strategy: "gossipsub", Nodes: c.nodes, Peers: c.peers, Links: b.g.links(), Messages: c.messages, Sign: c.sign, SubBuffer: c.subBuffer, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	b.log(fmt.Sprintf("latency: %d sequential messages after %d warm-up, each once the last has reached every host (gap %v)", c.messages, c.warmup, c.gap))
	if err := b.latency(ctx, rng, &res); err != nil {
		return err
	}
	if err := b.throughput(ctx, rng, &res); err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(stdout, header, c, res)
	return nil
}

type result struct {
	Strategy  string `json:"strategy"`
	Nodes     int    `json:"nodes"`
	Peers     int    `json:"peers"`
	Links     int    `json:"links"`
	Messages  int    `json:"messages"`
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	Sustained struct {
		DeliveriesPerS float64 `json:"deliveries_per_s"`
		DeliveryRatio  float64 `json:"delivery_ratio"`
	} `json:"sustained"`
	Incomplete int `json:"incomplete"`
	Late       int `json:"late"`
	// Frames over the timed sequential messages: payload = messages sent
	// in RPCs, control = IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT entries sent.
	Frames struct {
		PayloadPerMsg float64 `json:"payload_per_msg"`
		ControlPerMsg float64 `json:"control_per_msg"`
	} `json:"frames"`
	RMR        float64 `json:"rmr"`
	DupsPerMsg float64 `json:"duplicates_per_msg"`
	Sign       bool    `json:"sign"`
	SubBuffer  int     `json:"sub_buffer"`
	// CPUMsPerMsg is this process's user+system CPU time over the timed
	// sequential messages, per message: every host's work for it.
	CPUMsPerMsg float64 `json:"cpu_ms_per_msg"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Steps       []step  `json:"steps"`
}

type step struct {
	Rate          float64 `json:"deliveries_per_s"`
	MsgRate       float64 `json:"messages_per_s"`
	Achieved      float64 `json:"achieved_messages_per_s"`
	Delivered     int     `json:"delivered"`
	Expected      int     `json:"expected"`
	TailMS        float64 `json:"tail_ms"`
	OK            bool    `json:"ok"`
	Why           string  `json:"why,omitempty"`
	RPCDrops      int64   `json:"rpc_drops"`
	Undeliverable int64   `json:"undeliverable"`
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// latency publishes the sequential messages from random hosts, each once
// every host has received the previous one (or after 1 s), and times each
// from just before Publish to the last host's receipt.
func (b *bench) latency(ctx context.Context, rng *rand.Rand, res *result) error {
	c := b.cfg
	total := c.warmup + c.messages
	var cpu0 float64
	notify := make(chan int, 4096)
	b.arm(1, total, notify, -1)
	sent := make([]int64, total)
	counts := make(map[int]int)
	for k := range total {
		if k == c.warmup {
			b.tr.on.Store(true)
			cpu0 = cpuSeconds()
		}
		pub := rng.IntN(len(b.nodes))
		data := body(c.size, 1, k)
		sent[k] = b.now()
		if err := b.nodes[pub].topic.Publish(ctx, data); err != nil {
			return fmt.Errorf("publishing at host %d: %w", pub, err)
		}
		timeout := time.NewTimer(c.wait)
	wait:
		for counts[k] < len(b.nodes) {
			select {
			case got := <-notify:
				counts[got]++
			case <-timeout.C:
				if k >= c.warmup {
					res.Late++
				}
				break wait
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		timeout.Stop()
		delete(counts, k)
		if err := sleep(ctx, c.gap); err != nil {
			return err
		}
	}
	b.tr.on.Store(false)
	res.CPUMsPerMsg = math.Round((cpuSeconds()-cpu0)/float64(c.messages)*1e6) / 1e3
	got := b.snapshot()
	b.arm(0, 0, nil, -1)
	var lats []time.Duration
	for k := c.warmup; k < total; k++ {
		var last int64
		ok := true
		for _, h := range got {
			if h[k] == 0 {
				ok = false
				break
			}
			last = max(last, h[k])
		}
		if !ok {
			res.Incomplete++
			continue
		}
		lats = append(lats, time.Duration(last-sent[k]))
	}
	if len(lats) == 0 {
		return errors.New("no message reached every host")
	}
	slices.Sort(lats)
	res.LatencyMS.P50 = millis(percentile(lats, 0.50))
	res.LatencyMS.P99 = millis(percentile(lats, 0.99))
	res.LatencyMS.Max = millis(lats[len(lats)-1])
	m := float64(c.messages)
	res.Frames.PayloadPerMsg = math.Round(float64(b.tr.payload.Load())/m*100) / 100
	res.Frames.ControlPerMsg = math.Round(float64(b.tr.control.Load())/m*100) / 100
	res.RMR = math.Round((float64(b.tr.payload.Load())/m/float64(len(b.nodes)-1)-1)*1000) / 1000
	res.DupsPerMsg = math.Round(float64(b.tr.dups.Load())/m*100) / 100
	return nil
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// throughput is mesh bench's search: double from the start rate until a
// rate fails, then bisect to within 5%.
func (b *bench) throughput(ctx context.Context, rng *rand.Rand, res *result) error {
	c := b.cfg
	publisher := rng.IntN(len(b.nodes))
	b.log(fmt.Sprintf("throughput: host %d publishes for %v per rate", publisher, c.step))
	pass, fail := 0.0, math.Inf(1)
	rate := c.startRate
	epoch := uint32(2)
	for len(res.Steps) < c.maxSteps {
		st, err := b.step(ctx, publisher, rate, epoch)
		if err != nil {
			return err
		}
		epoch++
		res.Steps = append(res.Steps, st)
		verdict := "ok"
		if !st.OK {
			verdict = "FAIL: " + st.Why
		}
		b.log(fmt.Sprintf("  %9.0f deliveries/s  delivered %d/%d  tail %.3f ms  dropped rpcs %d, undeliverable %d  %s", st.Rate, st.Delivered, st.Expected, st.TailMS, st.RPCDrops, st.Undeliverable, verdict))
		if st.OK {
			pass = rate
			res.Sustained.DeliveriesPerS, res.Sustained.DeliveryRatio = rate, 1
		} else {
			fail = rate
			if pass == 0 {
				res.Sustained.DeliveryRatio = float64(st.Delivered) / float64(st.Expected)
			}
		}
		switch {
		case math.IsInf(fail, 1):
			if rate >= c.maxRate {
				return nil
			}
			rate = min(2*rate, c.maxRate)
		case pass == 0:
			if rate < 100 {
				return nil
			}
			rate /= 2
		default:
			if (fail-pass)/pass <= c.precision {
				return nil
			}
			rate = (pass + fail) / 2
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// step runs one rate: the publisher publishes count messages, message i
// at start + i/rate (overdue ones together, in chunks of 64, as the
// gossipmesh node's POST /load does), then every host's receipts are
// checked against mesh bench's three conditions.
func (b *bench) step(ctx context.Context, publisher int, rate float64, epoch uint32) (step, error) {
	c := b.cfg
	n := len(b.nodes)
	st := step{Rate: rate, MsgRate: rate / float64(n-1)}
	count := max(int(math.Ceil(rate/float64(n-1)*c.step.Seconds())), 10)
	st.Expected = count * (n - 1)
	drops0, undel0 := b.tr.rpcDrops.Load(), b.tr.undeliverable.Load()
	watch := b.arm(epoch, count, nil, count-1)
	bodies := make([][]byte, count)
	for k := range bodies {
		bodies[k] = body(c.size, epoch, k)
	}
	topic := b.nodes[publisher].topic
	published := 0
	start := time.Now()
	for published < count {
		due := dueBy(time.Since(start), st.MsgRate, count)
		if due <= published {
			if d := time.Until(start.Add(offset(published, st.MsgRate))); d > 0 {
				if err := sleep(ctx, d); err != nil {
					return st, err
				}
				continue
			}
			due = published + 1
		}
		for k := published; k < min(due, published+loadChunk); k++ {
			if err := topic.Publish(ctx, bodies[k]); err != nil {
				return st, fmt.Errorf("publish at host %d: %w", publisher, err)
			}
		}
		published = min(due, published+loadChunk)
	}
	end := time.Now()
	st.Achieved = float64(published) / end.Sub(start).Seconds()
	// Wait for the last message at every host, or 2 s.
	timeout := time.NewTimer(2 * time.Second)
wait:
	for i, ch := range watch {
		if i == publisher {
			continue
		}
		select {
		case <-ch:
		case <-timeout.C:
			break wait
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	timeout.Stop()
	got := b.snapshot()
	st.RPCDrops, st.Undeliverable = b.tr.rpcDrops.Load()-drops0, b.tr.undeliverable.Load()-undel0
	lastPublish := int64(end.Sub(b.base))
	if t := got[publisher][count-1]; t != 0 {
		lastPublish = t
	}
	var lastDelivery int64
	for i, h := range got {
		if i == publisher {
			continue
		}
		for _, t := range h {
			if t != 0 {
				st.Delivered++
				lastDelivery = max(lastDelivery, t)
			}
		}
	}
	tail := time.Duration(lastDelivery - lastPublish)
	st.TailMS = millis(tail)
	var why []string
	if published < count || st.Achieved < (1-scheduleSlack)*st.MsgRate {
		why = append(why, fmt.Sprintf("publisher managed %.0f of %.0f msgs/s", st.Achieved, st.MsgRate))
	}
	if st.Delivered < st.Expected {
		why = append(why, fmt.Sprintf("%d deliveries missing", st.Expected-st.Delivered))
	}
	if tail > maxTail {
		why = append(why, fmt.Sprintf("last delivery %v after the last publish", tail.Round(time.Millisecond)))
	}
	st.OK = len(why) == 0
	st.Why = strings.Join(why, "; ")
	return st, nil
}

// dueBy is how many of count messages at rate per second are due after
// elapsed: message i is due at i/rate, so message 0 at once.
func dueBy(elapsed time.Duration, rate float64, count int) int {
	f := elapsed.Seconds()*rate + 1
	if !(f < float64(count)) {
		return count
	}
	return int(f)
}

// offset is when message i is due after the start.
func offset(i int, rate float64) time.Duration {
	ns := float64(i) / rate * float64(time.Second)
	if !(ns < float64(math.MaxInt64)) {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func printResult(w io.Writer, header string, c config, r result) {
	fmt.Fprintln(w, header)
	fmt.Fprintf(w, "\ntime from publish to the last host, %d sequential messages (random publisher, each after the last reached every host, gap %v)\n", r.Messages, c.gap)
	fmt.Fprintf(w, "  p50  %9.3f ms\n  p99  %9.3f ms\n  max  %9.3f ms\n", r.LatencyMS.P50, r.LatencyMS.P99, r.LatencyMS.Max)
	fmt.Fprintf(w, "  frames per message: %.2f payload, %.2f control (RMR %.3f), %.2f duplicates received\n", r.Frames.PayloadPerMsg, r.Frames.ControlPerMsg, r.RMR, r.DupsPerMsg)
	fmt.Fprintf(w, "  CPU per message, all hosts: %.3f ms\n", r.CPUMsPerMsg)
	if r.Incomplete > 0 {
		fmt.Fprintf(w, "  %d message(s) missed a host and are left out\n", r.Incomplete)
	}
	if r.Late > 0 {
		fmt.Fprintf(w, "  %d message(s) were still spreading when the next went out\n", r.Late)
	}
	fmt.Fprintf(w, "\nsustained throughput at 100%% delivery (%v per rate; deliveries exclude the publisher)\n", c.step)
	fmt.Fprintf(w, "  %12s  %9s  %9s  %17s  %10s  %s\n", "deliveries/s", "msgs/s", "achieved", "delivered", "tail ms", "result")
	for _, s := range r.Steps {
		verdict := "ok"
		if !s.OK {
			verdict = "fail: " + s.Why
		}
		fmt.Fprintf(w, "  %12.0f  %9.0f  %9.0f  %8d/%-8d  %10.3f  %s\n", s.Rate, s.MsgRate, s.Achieved, s.Delivered, s.Expected, s.TailMS, verdict)
	}
	if r.Sustained.DeliveriesPerS > 0 {
		fmt.Fprintf(w, "  highest sustained: %.0f deliveries/s (%.0f msgs/s to %d receivers)\n",
			r.Sustained.DeliveriesPerS, r.Sustained.DeliveriesPerS/float64(r.Nodes-1), r.Nodes-1)
	} else {
		fmt.Fprintf(w, "  no rate sustained; delivery ratio at the lowest rate %.4f\n", r.Sustained.DeliveryRatio)
	}
}

// cpuSeconds is this process's user plus system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
