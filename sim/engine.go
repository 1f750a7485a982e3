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

// Sim is one simulation run: N nodes, the links between them and a queue
// of events. The engine drives each node through the gossip.Protocol
// interface only; by default the nodes are gossip cores, and NewWith runs
// any other protocol on the same engine. It is single-use and not safe for
// concurrent use (Run may use goroutines of its own, see parallel.go).
type Sim struct {
	cfg   Config
	graph *Graph
	// shared is the validated gossip config and router every core points to.
	shared *gossip.Shared
	// One slab each for the cores and their random sources: three
	// allocations for a million nodes instead of three million. cores is
	// nil when NewWith built the nodes.
	cores []gossip.Core
	rands []rand.Rand
	pcgs  []rand.PCG
	// procs holds the nodes NewWith built; nil for gossip cores, which
	// live in cores. The engine reaches node i only through node(i) and
	// waker(i), as a gossip.Protocol: an interface slice over a million
	// cores would cost 16 MiB and a cache miss per event for nothing.
	procs  []gossip.Protocol
	n      int
	out    gossip.Output
	q      *queue
	net    *rand.Rand // the network's draws: latency, loss, publishers, crashes
	egress gossip.Egress
	// fl is the fault layer (faults.go): the plan in force and the
	// partition's sides; nil when the run injects no fault.
	fl *faults
	// mem is the membership layer (membership.go); nil when it is off.
	mem *members
	// adv is the run's adversaries (adversaries.go); nil without any.
	adv *advState

	now    int64
	seq    uint32
	frames int   // payload and control frames in flight
	ctlsIn int   // control frames in flight
	events int64 // frame arrivals
	pops   int64 // events of every kind
	// uniformMin and uniformSpan are the latency draw's bounds when it is
	// uniform without regions (span > 0), the common case done inline.
	uniformMin, uniformSpan int64
	// armed[i] is the time of node i's pending tick event, 0 for none;
	// ticking counts the nodes with one. A pending tick is work in flight
	// (a router timer may send: Plumtree's IHAVE flush or GRAFT), so a
	// broadcast settles only once no node has one.
	armed   []int64
	ticking int
	// lazy: every node is a gossip.Waker, woken by an event only at
	// NextWake and otherwise ticked just before its next input once its
	// NextTick has passed, so that idle nodes are never woken. wakers[i]
	// is then procs[i] as a Waker (NewWith), which the hot path calls
	// without a type assertion per event.
	lazy   bool
	wakers []gossip.Waker

	crashed     []bool
	crashDone   bool
	region      []uint8
	regionDelay []int64 // flattened matrix, nanoseconds
	nRegions    int

	// Messages in flight. Every copy a node sends of one message at hop h
	// is equal (a node derives each forward from the message alone), so
	// a message event carries a slot for its (broadcast, hop) and the slot
	// one copy of it. Control frames have slots of their own, counted.
	// Foreign copies (open.go) share slots per distinct message and hop
	// too, counted in fx.
	slots     []msgSlot
	freeSlots []uint32
	fx        *foreignSlots
	ctls      []ctlSlot
	freeCtls  []uint32
	flights   map[wire.MsgID]*flight
	open      []*flight // published and not yet settled, in publish order
	last      *flight   // the flight of the last message looked up
	spareBits []bitset

	published  int  // broadcasts published so far
	pendingPub bool // a publish event is queued
	results    []Broadcast
	finished   []bool
	nFinished  int
	doneEvents int64 // events when the last broadcast settled

	onDeliver  func(Delivery)
	onProgress func(done float64)
	// onDuplicate and onCrash feed traces; nil (the usual case) costs one
	// check per duplicate and nothing else.
	onDuplicate func(Delivery)
	onCrash     func(node int, at int64)

	// crashedList is the crashed nodes, in node order, once crashDone.
	crashedList []uint32

	// cause is the broadcast of the frame being stepped, to which the
	// control frames its step sends count when they carry no id of an
	// open broadcast (control.go); ctlOther counts those that have none.
	cause    *flight
	ctlOther int64

	// publisherOf and crashNodes replace the network's random draws of
	// publishers and crashed nodes when set (experiment.go's plumtree
	// experiment runs flood and Plumtree on the same choices).
	publisherOf func(b int) int
	crashNodes  []int

	// Independent trials (parallel.go). trials says that each broadcast
	// runs alone, from fresh node state, in virtual time of its own that
	// starts at 0; base is the trial's start on the run's clock, added
	// to every time the hooks see. stopAt is how many broadcasts the loop
	// publishes (cfg.Broadcasts, or one more than the trial's index).
	trials  bool
	base    int64
	stopAt  int
	ran     bool      // a trial has run: the node state must be reset
	horizon int64     // the queue's horizon, for workers' own queues
	trial   Broadcast // the result of the trial that last settled
	down    *downSet  // the nodes a crash at 0 takes down, for trials after 0
	// testTrialStart, when set (tests), is called by each worker before
	// it runs trial k.
	testTrialStart func(worker, k int)
	// workersUsed is how many goroutines ran trials (tests).
	workersUsed int

	// opened is set in an open run (open.go), where nodes may send
	// messages the simulator did not publish; until, when positive, is
	// the virtual time the run stops at (StopAt).
	opened *openRun
	until  int64
	// publishAt replaces b × Interval as broadcast b's time (open.go).
	publishAt func(b int) int64
}

// flight is one broadcast in the air: its figures, the nodes it reached
// and its slots by hop.
type flight struct {
	bstate
	got      bitset        // the nodes it reached
	hops     []uint32      // slot+1 of the copy at each hop, 0 for none yet
	inFlight int64         // copies of it in flight
	controls int64         // control frames counted toward it (control.go)
	lastAt   int64         // time of its last first receipt
	atHeal   []int         // nodes per side that held it at the partition's heal
	orig     *wire.Message // the message as published, for adversaries.go
}

type msgSlot struct {
	f *flight
	m *wire.Message
}

type ctlSlot struct {
	c    *wire.Control
	refs int32
}

// An event's ref says what it is in its top two bits and indexes a slot,
// a node or a broadcast in the rest.
const (
	refMsg     uint32 = 0 << 30
	refCtl     uint32 = 1 << 30
	refTick    uint32 = 2 << 30
	refPublish uint32 = 3 << 30
	refKind    uint32 = 3 << 30
	refIndex   uint32 = 1<<30 - 1
)

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
	lost, toCrashed, cut int64
	rejected             int64
	cov                  [4]int64 // time since publish to each coverage level, -1 until reached
	covNeed              [4]int   // nodes needed for each level
}

// coverageLevels are the coverage fractions reported, in percent.
var coverageLevels = [4]int{50, 90, 99, 100}

// New builds the topology (or takes cfg.Graph) and one gossip core per
// node.
func New(cfg Config) (*Sim, error) {
	return newSim(cfg, nil)
}

// NewWith is New with nodes that build returns instead of gossip cores:
// node i, with wire id i+1, its peers (a window of the shared adjacency;
// do not modify) and its own seeded source. It is how a protocol other
// than the gossip core runs on the same engine. cfg.Gossip still bounds
// hops (MaxHops) and bodies.
func NewWith(cfg Config, build func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol) (*Sim, error) {
	if build == nil {
		return nil, errors.New("sim: NewWith needs a build function")
	}
	return newSim(cfg, build)
}

func newSim(cfg Config, build func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if uint64(cfg.Broadcasts) > uint64(refIndex) {
		return nil, fmt.Errorf("sim: at most %d broadcasts, got %d", refIndex, cfg.Broadcasts)
	}
	g := cfg.Graph
	if g == nil {
		var err error
		if g, err = BuildGraph(&cfg); err != nil {
			return nil, err
		}
	}
	var initial int
	if cfg.Membership != nil {
		// Room for the churn's fresh nodes, which wait until they join.
		initial = g.N()
		g = withJoiners(g, cfg.Membership.Churn.Joiners(initial))
	}
	n := g.N()
	cfg.Nodes = n
	cfg.Gossip.PlumtreeGraftTimeout, cfg.Gossip.PlumtreeGraftRetry = cfg.PlumtreeTimers()
	if cfg.Gossip.Signing == gossip.SigningStrict && cfg.Gossip.Auth == nil {
		// Strict signing by the cost model unless the caller brought real
		// keys (identity.NewDerivedAuth): README, Signed messages. Each
		// signed content is hashed once, not once per node (authmemo.go).
		cfg.Gossip.Auth = newVerifyMemo(gossip.NewModelAuth(cfg.Seed))
	}
	shared, err := gossip.Share(cfg.Gossip)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Sim{
		cfg:    cfg,
		graph:  g,
		shared: shared,
		n:      n,
		stopAt: cfg.Broadcasts,
	}
	if cfg.Crash.Fraction > 0 || cfg.Membership != nil {
		s.crashed = make([]bool, n)
	}
	if cfg.Membership != nil {
		s.mem = newMembers(&s.cfg, g, initial)
		for i := initial; i < n; i++ {
			s.crashed[i] = true // down until it joins
		}
		s.crashDone = cfg.Membership.Churn.On() // the churn crashes nodes, not Crash
	}
	if l := cfg.Latency; l.Kind == LatencyUniform && l.Max > l.Min && cfg.Regions == nil {
		s.uniformMin, s.uniformSpan = int64(l.Min), int64(l.Max-l.Min)+1
	}
	s.horizon = cfg.Latency.horizon() + int64(cfg.Delay+cfg.Jitter)
	if s.fl, err = newFaults(&cfg, n); err != nil {
		return nil, err
	}
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
		s.horizon += int64(slices.Max(s.regionDelay))
	}
	if len(cfg.Adversaries) > 0 {
		build = s.withAdversaries(build)
	}
	s.initNodes(build)
	return s, nil
}

// initNodes builds s's per-node and per-run state: the nodes (gossip
// cores, or what build returns), their random sources, the network's
// source and the event queue. The read-only part (config, graph, shared
// router, latency tables) is set already, so that a worker (parallel.go)
// gets state of its own beside the same graph.
func (s *Sim) initNodes(build func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol) {
	n, g, cfg := s.n, s.graph, &s.cfg
	s.rands = hugeSlice[rand.Rand](n, n)
	s.pcgs = hugeSlice[rand.PCG](n, n)
	s.armed = make([]int64, n)
	s.net = newNetRand(cfg.Seed, 0)
	s.flights = map[wire.MsgID]*flight{}
	if build == nil {
		s.cores = hugeSlice[gossip.Core](n, n)
	} else {
		s.procs = make([]gossip.Protocol, n)
	}
	for i := range n {
		s.pcgs[i] = *rand.NewPCG(cfg.Seed, uint64(i))
		s.rands[i] = *rand.New(&s.pcgs[i])
		peers := g.Peers(i)
		if s.mem != nil {
			peers = s.mem.peers(g, i) // the membership changes them
		}
		if build != nil {
			s.procs[i] = build(i, peers, &s.rands[i])
			continue
		}
		c := &s.cores[i]
		c.Init(s.shared, wire.NodeID(i)+1, &s.rands[i])
		c.SetPeers(peers)
	}
	s.lazy = true // gossip cores are Wakers
	if build != nil {
		s.wakers = make([]gossip.Waker, n)
		for i, p := range s.procs {
			w, ok := p.(gossip.Waker)
			if !ok {
				s.lazy, s.wakers = false, nil
				break
			}
			s.wakers[i] = w
		}
	}
	s.q = newQueue(s.horizon, s.horizon/bucketsPerHorizon)
}

// workerShared returns the gossip.Shared for a worker's cores: s's own,
// unless its Auth is a verifyMemo, which is not safe for concurrent use;
// then a copy with a memo of the worker's own over the same model, so the
// verdicts are the same.
func (s *Sim) workerShared() *gossip.Shared {
	gc := s.shared.Config()
	memo, ok := gc.Auth.(*verifyMemo)
	if !ok {
		return s.shared
	}
	gc.Auth = newVerifyMemo(memo.auth)
	sh, err := gossip.Share(gc)
	if err != nil {
		panic(fmt.Sprintf("sim: a worker's copy of a valid config: %v", err)) // validated by New
	}
	return sh
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
// run done (broadcasts settled plus the newest one's coverage).
func (s *Sim) OnProgress(f func(done float64)) { s.onProgress = f }

// SetPublishers makes f choose the publisher of each broadcast (its node
// index, which must be live) instead of the network's random draw, so
// that runs of different strategies publish from the same nodes. Default
// nil: a random live node.
func (s *Sim) SetPublishers(f func(broadcast int) int) { s.publisherOf = f }

// SetCrashNodes makes the crash take exactly nodes (indexes) instead of a
// random Config.Crash.Fraction of them, at Config.Crash.At, so that runs
// of different strategies lose the same nodes. The run must have a crash
// configured (Fraction > 0).
func (s *Sim) SetCrashNodes(nodes []int) error {
	if s.crashed == nil {
		return errors.New("sim: crash nodes set on a run without a crash")
	}
	for _, i := range nodes {
		if i < 0 || i >= s.n {
			return fmt.Errorf("sim: crash node %d out of range 0..%d", i, s.n-1)
		}
	}
	s.crashNodes = slices.Clone(nodes)
	return nil
}

// SetEgress sets the hook every send of every node passes before it
// becomes an event: the one place a node's output leaves it, as in the
// runtime and the test networks (from is the sender's wire id, node index
// plus one). A send it refuses is dropped before the loss draw, counted
// nowhere but by the hook. Default nil: everything passes.
func (s *Sim) SetEgress(e gossip.Egress) { s.egress = e }

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

// Run publishes cfg.Broadcasts messages and returns the report: one after
// another, each Gap after the previous one settled (no frame in flight),
// or each Interval after the previous publish when Interval is set, many
// then in flight at once. Ticks are events: a node's NextTick schedules
// one, and what Tick sends is routed like any other output. When ctx is
// cancelled it stops at once and returns the report of the broadcasts that
// had settled, marked partial, and no error: a stopped run is a result,
// not a failure. Broadcasts cut off are left out (their figures would mix
// a spread with its interruption).
//
// When the broadcasts are independent trials (see independent), each runs
// from fresh node state on random sources of its own, on up to
// Config.Workers goroutines, and the report is the same for any number of
// them; otherwise one goroutine runs them all on one network source.
func (s *Sim) Run(ctx context.Context) (*Report, error) {
	if s.independent() {
		return s.runTrials(ctx)
	}
	s.results = make([]Broadcast, s.cfg.Broadcasts)
	s.finished = make([]bool, s.cfg.Broadcasts)
	s.pushPublish(0, 0)
	if s.mem != nil {
		s.memStart()
	}
	partial := s.loop(ctx)
	if s.mem != nil && !partial {
		s.mem.final = true
		s.settle()
	}
	if !partial && s.cfg.Crash.Fraction > 0 && !s.crashDone {
		return nil, fmt.Errorf("sim: crash at %v: %w, which came at %v of virtual time; crash earlier, or publish more broadcasts",
			s.cfg.Crash.At, ErrCrashNeverHappened, time.Duration(s.now))
	}
	bs := make([]Broadcast, 0, s.nFinished)
	for b, ok := range s.finished {
		if ok {
			bs = append(bs, s.results[b])
		}
	}
	r := newReport(&s.cfg, s.graph, bs)
	r.Partial = partial
	r.Events = s.doneEvents
	r.ControlUnattributed = s.ctlOther
	r.Membership = s.membershipReport()
	if s.adv != nil {
		r.Adversaries = s.advReport()
	}
	return r, nil
}

// pushPublish queues the publish of broadcast b at virtual time at.
func (s *Sim) pushPublish(b int, at int64) {
	s.seq++
	s.q.push(event{at: at, seq: s.seq, ref: refPublish | uint32(b)})
	s.pendingPub = true
}

// loop processes events until every broadcast is published and no frame
// is in flight, or ctx is cancelled (it then reports true). Ticks still
// queued then are never run.
func (s *Sim) loop(ctx context.Context) (stopped bool) {
	nf := float64(s.n)
	for s.frames > 0 || s.pendingPub || s.ticking > 0 || s.mem != nil && s.now < s.mem.until {
		if s.pops&(checkEvery-1) == 0 {
			if ctx.Err() != nil {
				return true
			}
			if s.onProgress != nil && s.mem != nil && s.mem.until > 0 {
				// Broadcasts settle at the end: the run's time tells.
				s.onProgress(min(float64(s.now)/float64(s.mem.until), 1))
			} else if s.onProgress != nil {
				done := float64(s.nFinished)
				if k := len(s.open); k > 0 {
					done += float64(s.open[k-1].reached) / nf
				}
				s.onProgress(done / float64(s.cfg.Broadcasts))
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
			if s.cores == nil {
				prefetch(unsafe.Pointer(&s.procs[j]))
			} else if s.last != nil && s.last.got.has(j) {
				prefetch(unsafe.Pointer(&s.cores[j]))
			} else {
				prefetch2(unsafe.Pointer(&s.cores[j]), unsafe.Pointer(&s.graph.Off[j]))
			}
		}
		if j, ok := s.q.peek(ringAhead); ok && s.last != nil && !s.last.got.has(j) {
			// The core is in cache by now (its seen-cache entry is inline
			// while it holds one id): load the peers that a first receipt
			// will read while the events before it are handled.
			g := s.graph
			prefetch(unsafe.Pointer(&g.Adj[min(g.Off[j], len(g.Adj)-1)]))
		}
		if s.until > 0 && e.at > s.until {
			return false
		}
		if !s.crashDone {
			s.maybeCrash(e.at)
		}
		s.now = e.at
		s.pops++
		if fl := s.fl; fl != nil && fl.until != 0 && e.at >= fl.until {
			s.advance(e.at)
		}
		switch e.ref & refKind {
		case refMsg:
			s.events++
			s.stepMsg(&e)
		case refCtl:
			s.events++
			s.stepCtl(&e)
		case refTick:
			if e.ref&refIndex != 0 {
				s.memEvent(&e)
				break
			}
			i := e.to
			if s.armed[i] != e.at {
				continue // superseded by an earlier tick
			}
			if s.fl != nil && s.fl.paused(i) {
				// A paused node's timers fire when it resumes.
				s.armed[i] = s.fl.pauseEnd
				s.hold(&e)
				continue
			}
			s.armed[i] = 0
			s.ticking--
			if s.crashed == nil || !s.crashed[i] {
				s.node(i).Tick(e.at, &s.out)
				s.handle(int(i))
			}
			if s.ticking == 0 && s.frames == 0 {
				s.settle()
			}
		case refPublish:
			s.pendingPub = false
			if err := s.publish(int(e.ref & refIndex)); err != nil {
				panic(err) // publish of a body within the validated size cannot fail
			}
		}
		if s.frames == 0 && s.ticking == 0 && !s.pendingPub && s.published < s.stopAt && s.cfg.Interval == 0 {
			s.pushPublish(s.published, s.now+int64(s.cfg.Gap))
		}
	}
	return false
}

// stepMsg delivers a copy of a message.
func (s *Sim) stepMsg(e *event) {
	if s.fl != nil && s.fl.paused(e.to) {
		s.hold(e)
		return
	}
	sl := &s.slots[e.ref&refIndex]
	f := sl.f
	s.frames--
	f.inFlight--
	// A foreign copy counts toward the sentinel flight, which no report
	// shows; the control frames its step sends count toward a broadcast
	// only by the ids they carry, else as unattributed (control.go).
	stray := s.fx != nil && f == s.fx.f
	if s.crashed != nil && s.crashed[e.to] {
		f.toCrashed++
	} else if s.fl != nil && s.fl.cutOnArrival(e.from, e.to) {
		f.cut++
	} else {
		if s.mem != nil {
			s.memHeard(e.to, e.from, e.at)
		}
		s.cause = f
		if stray {
			s.cause = nil
		}
		if s.lazy {
			w := s.waker(e.to)
			if t := w.NextTick(); t != 0 && t <= e.at {
				w.Tick(e.at, &s.out)
			}
			w.Step(e.at, wire.NodeID(e.from)+1, gossip.Frame{Msg: sl.m}, &s.out)
		} else {
			s.procs[e.to].Step(e.at, wire.NodeID(e.from)+1, gossip.Frame{Msg: sl.m}, &s.out)
		}
		// Fifteen receipts in sixteen are duplicates: count them here.
		if len(s.out.Sends) == 0 && len(s.out.Events) == 1 && s.out.Events[0].Kind == gossip.EventDuplicate && len(s.out.Disconnects) == 0 {
			f.duplicates++
			if s.onDuplicate != nil && !stray {
				s.onDuplicate(Delivery{Broadcast: f.index, Node: int(e.to), From: int(e.from), Hop: int(sl.m.Hop), At: s.base + e.at})
			}
			s.out.Events = s.out.Events[:0]
			s.arm(e.to)
		} else {
			s.handle(int(e.to))
		}
		s.cause = nil
	}
	if stray {
		s.foreignArrived(e.ref & refIndex)
	}
	if f.inFlight == 0 {
		s.settle()
	}
}

// stepCtl delivers a control frame.
func (s *Sim) stepCtl(e *event) {
	if s.fl != nil && s.fl.paused(e.to) {
		s.hold(e)
		return
	}
	idx := e.ref & refIndex
	cs := &s.ctls[idx]
	c := cs.c
	if cs.refs--; cs.refs == 0 {
		*cs = ctlSlot{}
		s.freeCtls = append(s.freeCtls, idx)
	}
	s.frames--
	s.ctlsIn--
	if (s.crashed == nil || !s.crashed[e.to]) && (s.fl == nil || !s.fl.cutOnArrival(e.from, e.to)) {
		if s.mem != nil {
			s.memHeard(e.to, e.from, e.at)
		}
		p := s.node(e.to)
		s.lazyTick(p, e.at)
		p.Step(e.at, wire.NodeID(e.from)+1, gossip.Frame{Ctl: c}, &s.out)
		s.cause = s.ctlFlight(c)
		s.handle(int(e.to))
		s.cause = nil
	}
	if s.ctlsIn == 0 {
		s.settle()
	}
}

// node returns node i as the engine drives it.
func (s *Sim) node(i uint32) gossip.Protocol {
	if s.cores != nil {
		return &s.cores[i]
	}
	return s.procs[i]
}

// waker returns node i as a gossip.Waker, in lazy mode.
func (s *Sim) waker(i uint32) gossip.Waker {
	if s.cores != nil {
		return &s.cores[i]
	}
	return s.wakers[i]
}

// lazyTick ticks p just before an input at now when its housekeeping is
// due (lazy mode): the protocol cannot tell a late tick of that kind from
// one on time, and its output goes with the step's.
func (s *Sim) lazyTick(p gossip.Protocol, now int64) {
	if s.lazy {
		if t := p.NextTick(); t != 0 && t <= now {
			p.Tick(now, &s.out)
		}
	}
}

// arm schedules node i's next tick event when it wants one earlier than
// the one pending: at NextWake in lazy mode, else at NextTick.
func (s *Sim) arm(i uint32) {
	var t int64
	if s.lazy {
		t = s.waker(i).NextWake()
	} else {
		t = s.procs[i].NextTick()
	}
	if t != 0 && (s.armed[i] == 0 || t < s.armed[i]) {
		t = max(t, s.now)
		if s.armed[i] == 0 {
			s.ticking++
		}
		s.armed[i] = t
		s.seq++
		s.q.push(event{at: t, seq: s.seq, to: i, ref: refTick})
	}
}

// publish starts broadcast b at the current virtual time from a random
// live node.
func (s *Sim) publish(b int) error {
	s.maybeCrash(s.now)
	n := s.n
	var p int
	if s.publisherOf != nil {
		p = s.publisherOf(b)
		if p < 0 || p >= n || s.isDown(p) {
			return fmt.Errorf("sim: broadcast %d: publisher %d is not a live node", b, p)
		}
	} else {
		p = s.net.IntN(n)
		for tries := 0; s.isDown(p); tries++ {
			if tries > 64 {
				for p = (p + 1) % n; s.isDown(p); p = (p + 1) % n {
				}
				break
			}
			p = s.net.IntN(n)
		}
	}
	f := &flight{}
	if k := len(s.spareBits); k > 0 {
		f.got, s.spareBits = s.spareBits[k-1], s.spareBits[:k-1]
		f.got.clear()
	} else {
		f.got = newBitset(n)
	}
	f.bstate = bstate{index: b, publisher: p, pubAt: s.now, cov: [4]int64{-1, -1, -1, -1}}
	for i, lvl := range coverageLevels {
		f.covNeed[i] = (n*lvl + 99) / 100
	}
	// A body of its own: copies of earlier broadcasts may still be in
	// flight, sharing theirs.
	body := make([]byte, s.cfg.BodySize)
	var idx [8]byte
	binary.LittleEndian.PutUint64(idx[:], uint64(b))
	copy(body, idx[:])
	s.published++
	if s.cfg.Interval > 0 && s.published < s.cfg.Broadcasts {
		s.pushPublish(s.published, s.publishTime(s.published))
	}
	m, err := s.node(uint32(p)).Publish(s.now, body, &s.out)
	if err != nil {
		return fmt.Errorf("sim: publish: %w", err)
	}
	f.id, f.orig = m.ID, m
	s.flights[m.ID] = f
	if s.opened != nil {
		s.opened.canon[m.ID] = m
	}
	if s.adv != nil {
		s.advPublished(f)
	}
	s.open = append(s.open, f)
	s.last = f
	s.handle(p)
	if f.inFlight == 0 {
		s.settle() // nothing sent: it has settled already
	}
	return nil
}

// isDown reports whether node p cannot publish now: crashed, or paused.
func (s *Sim) isDown(p int) bool {
	return s.crashed != nil && s.crashed[p] || s.fl != nil && s.fl.paused(uint32(p))
}

// flightOf returns the broadcast of message id, nil for one the simulator
// did not publish or that has settled.
func (s *Sim) flightOf(id wire.MsgID) *flight {
	if s.last != nil && s.last.id == id {
		return s.last
	}
	f := s.flights[id]
	if f != nil {
		s.last = f
	}
	return f
}

// settle finishes every open broadcast that has no copy in flight, once
// no control frame is in flight either (a control frame may yet bring a
// copy of any of them).
func (s *Sim) settle() {
	if s.ctlsIn > 0 || s.ticking > 0 {
		return
	}
	if s.mem != nil && !s.mem.final {
		// A link that comes up later may yet carry a copy of any message
		// (anti-entropy repairs a node that joins): broadcasts settle
		// when the run ends.
		return
	}
	k := 0
	for _, f := range s.open {
		if f.inFlight > 0 {
			s.open[k] = f
			k++
			continue
		}
		if s.trials {
			s.trial = s.finish(f)
		} else {
			s.results[f.index] = s.finish(f)
			s.finished[f.index] = true
		}
		s.nFinished++
		s.doneEvents = s.events
		for _, sl := range f.hops {
			if sl != 0 {
				s.slots[sl-1] = msgSlot{}
				s.freeSlots = append(s.freeSlots, sl-1)
			}
		}
		delete(s.flights, f.id)
		if s.last == f {
			s.last = nil
		}
		s.spareBits = append(s.spareBits, f.got)
		if s.onProgress != nil {
			s.onProgress(float64(s.nFinished) / float64(s.cfg.Broadcasts))
		}
	}
	clear(s.open[k:])
	s.open = s.open[:k]
}

// msgRef returns the slot of m's (broadcast, hop) and its broadcast.
func (s *Sim) msgRef(m *wire.Message) (uint32, *flight) {
	f := s.flightOf(m.ID)
	if s.fx != nil && (f == nil || !sameContent(m, f.orig)) {
		return s.foreignRef(m), s.fx.f
	}
	if f == nil {
		panic(fmt.Sprintf("sim: a node sent message %v, which the simulator did not publish or which had settled", m.ID))
	}
	h := int(m.Hop)
	for len(f.hops) <= h {
		f.hops = append(f.hops, 0)
	}
	if sl := f.hops[h]; sl != 0 {
		return sl - 1, f
	}
	var idx uint32
	if k := len(s.freeSlots); k > 0 {
		idx, s.freeSlots = s.freeSlots[k-1], s.freeSlots[:k-1]
		s.slots[idx] = msgSlot{f: f, m: m}
	} else {
		idx = uint32(len(s.slots))
		if idx > refIndex {
			panic("sim: too many messages in flight")
		}
		s.slots = append(s.slots, msgSlot{f: f, m: m})
	}
	f.hops[h] = idx + 1
	return idx, f
}

// ctlRef returns a slot holding c, counted once more.
func (s *Sim) ctlRef(c *wire.Control) uint32 {
	var idx uint32
	if k := len(s.freeCtls); k > 0 {
		idx, s.freeCtls = s.freeCtls[k-1], s.freeCtls[:k-1]
	} else {
		idx = uint32(len(s.ctls))
		if idx > refIndex {
			panic("sim: too many control frames in flight")
		}
		s.ctls = append(s.ctls, ctlSlot{})
	}
	s.ctls[idx] = ctlSlot{c: c}
	return idx
}

// handle acts on what node i put in the shared Output: it records events,
// passes every send through the egress and turns it into an arrival event
// (the one place a node's output leaves it), schedules the node's next
// tick, then empties the Output.
func (s *Sim) handle(i int) {
	for k := range s.out.Events {
		ev := &s.out.Events[k]
		if o := s.opened; o != nil {
			if o.onEvent != nil {
				o.onEvent(i, s.base+s.now, ev)
			}
			if ev.Msg != nil && ev.Kind == gossip.EventDelivered && !o.faithful(ev.Msg) {
				continue // a forgery or a tampered copy: no receipt of a broadcast
			}
		}
		switch ev.Kind {
		case gossip.EventDelivered, gossip.EventPublished:
			f := s.flightOf(ev.Msg.ID)
			if s.adv != nil && s.advEvent(i, ev, f) {
				continue
			}
			if f != nil {
				s.delivered(f, i, ev)
			}
		case gossip.EventDuplicate:
			if f := s.flightOf(ev.Msg.ID); f != nil {
				f.duplicates++
				if s.onDuplicate != nil {
					s.onDuplicate(Delivery{Broadcast: f.index, Node: i, From: int(ev.From) - 1, Hop: int(ev.Msg.Hop), At: s.base + s.now})
				}
			}
		case gossip.EventRejected:
			if s.adv != nil {
				s.advEvent(i, ev, nil)
			}
			if f := s.flightOf(ev.Msg.ID); f != nil {
				f.rejected++
			}
		}
	}
	if len(s.out.Sends) > 0 {
		s.route(uint32(i))
	}
	s.arm(uint32(i))
	cuts := s.out.Disconnects
	// What Output.Reset does, minus clearing the pointers: the next step
	// overwrites them, and the clearing cost more than anything else here.
	s.out.Sends, s.out.Events, s.out.Disconnects = s.out.Sends[:0], s.out.Events[:0], nil
	if len(cuts) > 0 {
		s.disconnect(uint32(i), cuts)
	}
}

// disconnect acts on node i's Disconnects (a defence banned peers): the
// link goes down at both ends, as a runtime closes the connection, and
// what each end sends on PeerDown goes out. The simulator never links two
// nodes again, so the ban needs no more.
func (s *Sim) disconnect(i uint32, cuts []gossip.Disconnect) {
	for _, d := range cuts {
		j := uint32(d.Peer - 1)
		if int(j) >= s.n || j == i {
			continue
		}
		s.node(j).PeerDown(s.now, wire.NodeID(i)+1, &s.out)
		s.handle(int(j))
		s.node(i).PeerDown(s.now, d.Peer, &s.out)
		s.handle(int(i))
	}
}

// route turns node from's sends into arrival events.
func (s *Sim) route(from uint32) {
	q := s.q
	var (
		lastMsg *wire.Message
		msgRef  uint32
		f       *flight
		lastCtl *wire.Control
		ctlIdx  uint32
	)
	for k := range s.out.Sends {
		snd := &s.out.Sends[k]
		if s.egress != nil && !s.egress(s.now, wire.NodeID(from)+1, snd) {
			continue
		}
		var (
			ref   uint32
			extra int64 // the fault layer's delay
		)
		to := uint32(snd.To - 1)
		if c := snd.Ctl; c != nil {
			s.countControl(c)
			if s.fl != nil {
				var drop bool
				if drop, _, extra = s.decide(from, to); drop {
					continue
				}
			}
			if c != lastCtl {
				lastCtl, ctlIdx = c, s.ctlRef(c)
			}
			s.ctls[ctlIdx].refs++
			s.ctlsIn++
			ref = refCtl | ctlIdx
		} else {
			if snd.Msg != lastMsg {
				if f != nil && s.fx != nil && f == s.fx.f {
					s.foreignIdle(msgRef)
				}
				lastMsg = snd.Msg
				msgRef, f = s.msgRef(snd.Msg)
			}
			f.messages++
			if s.fl != nil {
				var drop, cut bool
				if drop, cut, extra = s.decide(from, to); drop {
					if cut {
						f.cut++
					} else {
						f.lost++
					}
					continue
				}
			}
			f.inFlight++
			if s.fx != nil && f == s.fx.f {
				s.fx.refs[msgRef]++
			}
			ref = refMsg | msgRef
		}
		s.seq++
		d := extra
		if s.uniformSpan > 0 {
			d += s.uniformMin + s.net.Int64N(s.uniformSpan)
		} else {
			d += s.latency(from, to)
		}
		e := event{at: s.now + d, seq: s.seq, to: to, from: from, ref: ref}
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
		s.frames++
	}
	if f != nil && s.fx != nil && f == s.fx.f {
		s.foreignIdle(msgRef)
	}
}

// delivered records a first receipt (or the publisher's own copy) of f.
func (s *Sim) delivered(f *flight, i int, ev *gossip.Event) {
	c := &f.bstate
	hop := int(ev.Msg.Hop)
	f.got.set(uint32(i))
	c.reached++
	c.hopSum += int64(hop)
	if hop > c.maxHop {
		c.maxHop = hop
	}
	for len(c.byHop) <= hop {
		c.byHop = append(c.byHop, 0)
	}
	c.byHop[hop]++
	f.lastAt = s.now
	for k := range c.cov {
		if c.reached == c.covNeed[k] {
			c.cov[k] = s.now - c.pubAt
		}
	}
	if s.onDeliver != nil {
		from := int(ev.From) - 1
		s.onDeliver(Delivery{Broadcast: c.index, Node: i, From: from, Hop: hop, At: s.base + s.now})
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
	n := s.n
	k := min(int(math.Round(s.cfg.Crash.Fraction*float64(n))), n-1)
	if s.crashNodes != nil {
		k = 0
		for _, i := range s.crashNodes {
			s.crashed[i] = true
		}
	}
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
	if s.mem != nil {
		s.now = max(s.now, now) // the links close at the crash
		for _, i := range s.crashedList {
			s.memCrash(i)
		}
	}
}

// finish turns a settled broadcast's state into its Broadcast figures.
func (s *Sim) finish(f *flight) Broadcast {
	if s.adv != nil {
		s.advFinish(f)
	}
	c := &f.bstate
	n := s.n
	// A node that had the message and then crashed counts as reached over
	// all nodes, and not at all over the live ones.
	reachedLive := c.reached
	for _, i := range s.crashedList {
		if f.got.has(i) {
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
		Cut:             c.cut,
		ToCrashed:       c.toCrashed,
		Rejected:        c.rejected,
		ControlMessages: f.controls,
		ReachedByHop:    append([]int(nil), c.byHop...),
		Partition:       s.partitionReach(f, reachedLive, live),
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
