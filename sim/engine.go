package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
	"unsafe"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Delivery is one first receipt of a broadcast, handed to an observer set
// with Sim.OnDeliver (tests check invariants with it).
type Delivery struct {
	Broadcast int   // 0-based broadcast number
	Node      int   // node index
	From      int   // sender's node index, -1 for the publisher itself
	Hop       int   // hops from the publisher (0 for the publisher)
	At        int64 // virtual time, nanoseconds since the run started
}

// Sim is one simulation run: N gossip cores, the links between them and a
// queue of events. It is single-use and not safe for concurrent use.
type Sim struct {
	cfg   Config
	graph *Graph
	// shared is the validated gossip config and router every core points to.
	shared *gossip.Shared
	// One slab each for the cores and their random sources: three
	// allocations for a million nodes instead of three million.
	cores []gossip.Core
	rands []rand.Rand
	pcgs  []rand.PCG
	out   gossip.Output
	q     *queue
	net   *rand.Rand // the network's draws: latency, loss, publishers, crashes

	now      int64
	seq      uint32
	inFlight int
	events   int64
	// uniformMin and uniformSpan are the latency draw's bounds when it is
	// uniform without regions (span > 0), the common case done inline.
	uniformMin, uniformSpan int64
	reached                 bitset // nodes the current broadcast has reached

	crashed     []bool
	crashDone   bool
	region      []uint8
	regionDelay []int64 // flattened matrix, nanoseconds
	nRegions    int

	// msgs[h] is the current broadcast as received at hop h. Every copy a
	// core sends at hop h is equal to it (the core derives each forward
	// from the message alone), so an event need only carry the hop.
	msgs []*wire.Message
	cur  bstate

	onDeliver  func(Delivery)
	onProgress func(done float64)
	// onDuplicate and onCrash feed traces; nil (the usual case) costs one
	// check per duplicate and nothing else.
	onDuplicate func(Delivery)
	onCrash     func(node int, at int64)

	// crashedList is the crashed nodes, in node order, once crashDone; it
	// is read once per broadcast, and sits here, past the fields the event
	// loop reads, so as not to move them.
	crashedList []uint32
}

// bstate accumulates one broadcast's figures while it runs.
type bstate struct {
	index, publisher     int
	id                   wire.MsgID
	pubAt                int64
	reached              int
	hopSum               int64
	maxHop               int
	byHop                []int
	messages, duplicates int64
	lost, toCrashed      int64
	rejected             int64
	cov                  [4]int64 // time since publish to each coverage level, -1 until reached
	covNeed              [4]int   // nodes needed for each level
}

// coverageLevels are the coverage fractions reported, in percent.
var coverageLevels = [4]int{50, 90, 99, 100}

// New builds the topology (or takes cfg.Graph) and one core per node.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := cfg.Graph
	if g == nil {
		var err error
		if g, err = BuildGraph(&cfg); err != nil {
			return nil, err
		}
	}
	n := g.N()
	cfg.Nodes = n
	shared, err := gossip.Share(cfg.Gossip)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Sim{
		cfg:     cfg,
		graph:   g,
		shared:  shared,
		cores:   hugeSlice[gossip.Core](n, n),
		rands:   hugeSlice[rand.Rand](n, n),
		pcgs:    hugeSlice[rand.PCG](n, n),
		net:     rand.New(rand.NewPCG(cfg.Seed, netStream)),
		reached: newBitset(n),
		msgs:    make([]*wire.Message, int(cfg.Gossip.MaxHops)+2),
	}
	if cfg.Crash.Fraction > 0 {
		s.crashed = make([]bool, n)
	}
	for i := range s.cores {
		s.pcgs[i] = *rand.NewPCG(cfg.Seed, uint64(i))
		s.rands[i] = *rand.New(&s.pcgs[i])
		s.cores[i] = *gossip.NewShared(s.shared, wire.NodeID(i)+1, &s.rands[i])
		s.cores[i].SetPeers(g.Peers(i))
	}
	if l := cfg.Latency; l.Kind == LatencyUniform && l.Max > l.Min && cfg.Regions == nil {
		s.uniformMin, s.uniformSpan = int64(l.Min), int64(l.Max-l.Min)+1
	}
	horizon := cfg.Latency.horizon()
	if r := cfg.Regions; r != nil {
		s.nRegions = len(r.Names)
		s.region = make([]uint8, n)
		for i := range s.region {
			s.region[i] = uint8(i % s.nRegions)
		}
		s.regionDelay = make([]int64, s.nRegions*s.nRegions)
		for a, row := range r.Delay {
			for b, d := range row {
				s.regionDelay[a*s.nRegions+b] = int64(d)
			}
		}
		horizon += int64(slices.Max(s.regionDelay))
	}
	s.q = newQueue(horizon, horizon/bucketsPerHorizon)
	return s, nil
}

// Graph returns the topology the run uses.
func (s *Sim) Graph() *Graph { return s.graph }

// OnDeliver sets a function called for every first receipt, publisher
// included, in virtual-time order.
func (s *Sim) OnDeliver(f func(Delivery)) { s.onDeliver = f }

// OnDuplicate sets a function called for every copy that reaches a node
// that already has the message (Hop is the copy's, From its sender), in
// virtual-time order. It exists for traces: a run has about degree−1
// duplicates per node, so the hook costs what it does.
func (s *Sim) OnDuplicate(f func(Delivery)) { s.onDuplicate = f }

// OnCrash sets a function called once per crashed node, in node order, at
// the configured crash time (which is never later than the event that
// triggers the crash, so calls stay in virtual-time order with the other
// hooks).
func (s *Sim) OnCrash(f func(node int, at int64)) { s.onCrash = f }

// OnProgress sets a function called now and then with the fraction of the
// run done (broadcasts done plus the current one's coverage).
func (s *Sim) OnProgress(f func(done float64)) { s.onProgress = f }

// checkEvery is how many events pass between looks at the context and
// progress reports.
const checkEvery = 1 << 14

// prefetchAhead is how many events ahead the engine touches a core's
// memory, so that its cache misses overlap with the work on the events
// before it instead of stalling one after another.
const (
	prefetchAhead = 12
	ringAhead     = 6
)

// ErrCrashNeverHappened reports a run whose Config.Crash time came after
// the run's last event: the crash never happened, so the report would
// describe a crash-free run under a crash label. Config.Validate refuses
// such a crash up front when the latency model bounds the run's length;
// otherwise Run returns this error (wrapped) at the end.
var ErrCrashNeverHappened = errors.New("the crash would come after the end of the run")

// Run publishes cfg.Broadcasts messages one after another and returns the
// report. When ctx is cancelled it stops at once and returns the report of
// the broadcasts that had finished, marked partial, and no error: a
// stopped run is a result, not a failure. The broadcast that was cut off
// is left out (its figures would mix a spread with its interruption), and
// so are its events.
func (s *Sim) Run(ctx context.Context) (*Report, error) {
	var bs []Broadcast
	partial := false
	body := make([]byte, s.cfg.BodySize)
	events := int64(0) // events of the finished broadcasts
	for b := 0; b < s.cfg.Broadcasts; b++ {
		if b > 0 {
			s.now += int64(s.cfg.Gap)
		}
		var idx [8]byte
		binary.LittleEndian.PutUint64(idx[:], uint64(b))
		copy(body, idx[:])
		if err := s.publish(b, body); err != nil {
			return nil, err
		}
		if s.drain(ctx) {
			partial = true
			break
		}
		bs = append(bs, s.finish())
		events = s.events
		if s.onProgress != nil {
			s.onProgress(float64(b+1) / float64(s.cfg.Broadcasts))
		}
	}
	if !partial && s.cfg.Crash.Fraction > 0 && !s.crashDone {
		return nil, fmt.Errorf("sim: crash at %v: %w, which came at %v of virtual time; crash earlier, or publish more broadcasts",
			s.cfg.Crash.At, ErrCrashNeverHappened, time.Duration(s.now))
	}
	r := newReport(&s.cfg, s.graph, bs)
	r.Partial = partial
	r.Events = events
	return r, nil
}

// publish starts broadcast b at the current virtual time from a random
// live node.
func (s *Sim) publish(b int, body []byte) error {
	s.maybeCrash(s.now)
	n := len(s.cores)
	p := s.net.IntN(n)
	for tries := 0; s.crashed != nil && s.crashed[p]; tries++ {
		if tries > 64 {
			for p = (p + 1) % n; s.crashed[p]; p = (p + 1) % n {
			}
			break
		}
		p = s.net.IntN(n)
	}
	s.reached.clear()
	clear(s.msgs)
	c := &s.cur
	*c = bstate{index: b, publisher: p, pubAt: s.now, byHop: c.byHop[:0], cov: [4]int64{-1, -1, -1, -1}}
	for i, lvl := range coverageLevels {
		c.covNeed[i] = (n*lvl + 99) / 100
	}
	m, err := s.cores[p].Publish(s.now, body, &s.out)
	if err != nil {
		return fmt.Errorf("sim: publish: %w", err)
	}
	c.id = m.ID
	s.handle(p)
	return nil
}

// drain processes events until no copy of the current broadcast is in
// flight, or ctx is cancelled (it then reports true).
func (s *Sim) drain(ctx context.Context) (stopped bool) {
	n := float64(len(s.cores))
	for s.inFlight > 0 {
		if s.events&(checkEvery-1) == 0 {
			if ctx.Err() != nil {
				return true
			}
			if s.onProgress != nil {
				s.onProgress((float64(s.cur.index) + float64(s.cur.reached)/n) / float64(s.cfg.Broadcasts))
			}
		}
		var e event
		if q := s.q; q.pos < len(q.cur) && q.side.len() == 0 {
			e = q.cur[q.pos]
			q.pos++
		} else {
			e = q.pop()
		}
		if j, ok := s.q.peek(prefetchAhead); ok {
			if s.reached.has(j) {
				prefetch(unsafe.Pointer(&s.cores[j]))
			} else {
				prefetch2(unsafe.Pointer(&s.cores[j]), unsafe.Pointer(&s.graph.Off[j]))
			}
		}
		if j, ok := s.q.peek(ringAhead); ok && !s.reached.has(j) {
			// The core is in cache by now (its seen-cache entry is inline
			// while it holds one id): load the peers that a first receipt
			// will read while the events before it are handled.
			g := s.graph
			prefetch(unsafe.Pointer(&g.Adj[min(g.Off[j], len(g.Adj)-1)]))
		}
		if !s.crashDone {
			s.maybeCrash(e.at)
		}
		s.now = e.at
		s.inFlight--
		s.events++
		if s.crashed != nil && s.crashed[e.to] {
			s.cur.toCrashed++
			continue
		}
		c := &s.cores[e.to]
		// Ticks are delivered lazily, just before the node's next input:
		// Tick has no outputs, so the core cannot tell a late tick from
		// one on time, and idle nodes are never woken.
		if t := c.NextTick(); t != 0 && t <= e.at {
			c.Tick(e.at, &s.out)
		}
		c.Receive(e.at, wire.NodeID(e.from)+1, s.msgs[e.hop], &s.out)
		// Fifteen receipts in sixteen are duplicates: count them here.
		if len(s.out.Sends) == 0 && len(s.out.Events) == 1 && s.out.Events[0].Kind == gossip.EventDuplicate {
			s.cur.duplicates++
			if s.onDuplicate != nil {
				s.onDuplicate(Delivery{Broadcast: s.cur.index, Node: int(e.to), From: int(e.from), Hop: int(e.hop), At: e.at})
			}
			s.out.Events = s.out.Events[:0]
			continue
		}
		s.handle(int(e.to))
	}
	return false
}

// handle acts on what core i put in the shared Output: it records events
// and turns sends into arrival events, then empties the Output.
func (s *Sim) handle(i int) {
	c := &s.cur
	for k := range s.out.Events {
		ev := &s.out.Events[k]
		switch ev.Kind {
		case gossip.EventDelivered, gossip.EventPublished:
			s.delivered(i, ev)
		case gossip.EventDuplicate:
			c.duplicates++
			if s.onDuplicate != nil {
				s.onDuplicate(Delivery{Broadcast: c.index, Node: i, From: int(ev.From) - 1, Hop: int(ev.Msg.Hop), At: s.now})
			}
		case gossip.EventRejected:
			c.rejected++
		}
	}
	if len(s.out.Sends) > 0 {
		m := s.out.Sends[0].Msg
		if m.ID != c.id {
			panic("sim: a core sent a message of another broadcast")
		}
		if s.msgs[m.Hop] == nil {
			s.msgs[m.Hop] = m
		}
		from := uint32(i)
		c.messages += int64(len(s.out.Sends))
		q := s.q
		for k := range s.out.Sends {
			to := uint32(s.out.Sends[k].To - 1)
			if s.cfg.Loss > 0 && s.net.Float64() < s.cfg.Loss {
				c.lost++
				continue
			}
			s.seq++
			var d int64
			if s.uniformSpan > 0 {
				d = s.uniformMin + s.net.Int64N(s.uniformSpan)
			} else {
				d = s.latency(from, to)
			}
			e := event{at: s.now + d, seq: s.seq, to: to, from: from, hop: m.Hop}
			// The common case, a bucket of the ring, written out here
			// because the compiler will not inline it.
			if b := e.at>>q.shift - q.base; b > 0 && b < int64(len(q.ring)) {
				bk := &q.ring[(e.at>>q.shift)&q.mask]
				if bk.tail == nil || bk.n == chunkSize {
					q.newTail(bk)
				}
				bk.tail.ev[bk.n] = e
				bk.n++
				q.inRing++
			} else {
				q.push(e)
			}
			s.inFlight++
		}
	}
	// What Output.Reset does, minus clearing the pointers: the next step
	// overwrites them, and the clearing cost more than anything else here.
	s.out.Sends, s.out.Events = s.out.Sends[:0], s.out.Events[:0]
}

// delivered records a first receipt (or the publisher's own copy).
func (s *Sim) delivered(i int, ev *gossip.Event) {
	c := &s.cur
	hop := int(ev.Msg.Hop)
	s.reached.set(uint32(i))
	c.reached++
	c.hopSum += int64(hop)
	if hop > c.maxHop {
		c.maxHop = hop
	}
	for len(c.byHop) <= hop {
		c.byHop = append(c.byHop, 0)
	}
	c.byHop[hop]++
	for k := range c.cov {
		if c.reached == c.covNeed[k] {
			c.cov[k] = s.now - c.pubAt
		}
	}
	if s.onDeliver != nil {
		from := int(ev.From) - 1
		s.onDeliver(Delivery{Broadcast: c.index, Node: i, From: from, Hop: hop, At: s.now})
	}
}

// latency draws the delay of one message from node a to node b.
func (s *Sim) latency(a, b uint32) int64 {
	l := &s.cfg.Latency
	var d int64
	switch l.Kind {
	case LatencyConstant:
		d = int64(l.Min)
	case LatencyUniform:
		d = int64(l.Min)
		if l.Max > l.Min {
			d += s.net.Int64N(int64(l.Max-l.Min) + 1)
		}
	case LatencyLogNormal:
		d = int64(float64(l.Median) * math.Exp(l.Sigma*s.net.NormFloat64()))
	}
	if s.region != nil {
		d += s.regionDelay[int(s.region[a])*s.nRegions+int(s.region[b])]
	}
	return d
}

// maybeCrash crashes the configured fraction of nodes once virtual time
// reaches the crash time.
func (s *Sim) maybeCrash(now int64) {
	if s.crashDone || now < int64(s.cfg.Crash.At) {
		return
	}
	s.crashDone = true
	n := len(s.cores)
	k := min(int(math.Round(s.cfg.Crash.Fraction*float64(n))), n-1)
	for k > 0 {
		i := s.net.IntN(n)
		if !s.crashed[i] {
			s.crashed[i] = true
			k--
		}
	}
	for i, down := range s.crashed {
		if down {
			s.crashedList = append(s.crashedList, uint32(i))
			if s.onCrash != nil {
				s.onCrash(i, int64(s.cfg.Crash.At))
			}
		}
	}
}

// finish turns the current broadcast's state into its Broadcast figures.
func (s *Sim) finish() Broadcast {
	c := &s.cur
	n := len(s.cores)
	// A node that had the message and then crashed counts as reached over
	// all nodes, and not at all over the live ones.
	reachedLive := c.reached
	for _, i := range s.crashedList {
		if s.reached.has(i) {
			reachedLive--
		}
	}
	live := n - len(s.crashedList)
	b := Broadcast{
		Index:           c.index,
		Publisher:       c.publisher,
		PublishedAtMS:   ms(c.pubAt),
		Reached:         c.reached,
		Reliability:     float64(c.reached) / float64(n),
		Live:            live,
		ReachedLive:     reachedLive,
		ReliabilityLive: float64(reachedLive) / float64(live),
		LastDeliveryHop: c.maxHop,
		Messages:        c.messages,
		Duplicates:      c.duplicates,
		Lost:            c.lost,
		ToCrashed:       c.toCrashed,
		Rejected:        c.rejected,
		ReachedByHop:    append([]int(nil), c.byHop...),
	}
	if c.reached > 1 {
		b.MeanHop = float64(c.hopSum) / float64(c.reached-1)
		b.RMR = float64(c.messages-int64(c.reached-1)) / float64(c.reached-1)
	}
	for k, t := range c.cov {
		b.TimeToCoverageMS[k] = math.NaN()
		if t >= 0 {
			b.TimeToCoverageMS[k] = ms(t)
		}
	}
	return b
}

// ms converts virtual nanoseconds to milliseconds, rounded to the
// microsecond so that reports stay short.
func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

// bucketsPerHorizon sets the calendar queue's bucket width: about 16
// buckets span the longest usual delay, so a push touches one of a few
// dozen bucket tails (all in L1) and a bucket holds thousands of events,
// which one counting pass sorts cheaply. Measured against 64, 256 and 1024
// buckets, this was as fast or faster.
const bucketsPerHorizon = 16

// bitset is a set of node indexes, one bit each: 125 KiB for a million
// nodes, small enough to stay in cache.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i uint32) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i uint32)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) clear()            { clear(b) }
