package sim

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Independent trials on several cores.
//
// With the default Gap (at least the seen-cache TTL), one broadcast at a
// time, no crash after time 0 and a router that keeps nothing per node
// (flood, fanout), every broadcast runs alone on a quiet network whose
// nodes have forgotten the previous one: the broadcasts are independent
// trials. The engine then
// runs each trial from fresh node state (cores re-initialised, as new), on
// random sources derived from (seed, trial index) alone, in virtual time
// of its own that starts at 0. A trial's result therefore depends on its
// index and nothing else, so trials can run on several goroutines, each
// with its own cores, queue and sources beside the one read-only graph, and
// be merged in trial order: the output is byte-identical whatever the
// number of workers, one included. Trial 0 uses the sources a single run
// has always used, so a one-broadcast run is what it was.
//
// The trials are laid end to end on the run's clock as before: trial k+1
// is published Gap after trial k settled, so published_at_ms and trace
// times are those of one long run.

// MaxParallelNodes caps the nodes summed over the workers of one run: a
// worker holds a full copy of the per-node state (core, random source,
// tick slot: about 170 bytes a node) and its own event queue, so that
// W workers cost about W runs' memory. A million-node run fits in 1 GiB;
// so does any split of a million nodes over workers, so a run of N nodes
// uses at most max(1, MaxParallelNodes/N) workers: one at a million
// nodes, two from 500,000 down.
const MaxParallelNodes = 1_000_000

// trialWindow is how many trials, per worker, may be run ahead of the
// oldest one not yet merged: it bounds the results (and recorded hook
// calls) held for merging while letting a worker that drew a long trial
// fall behind without stalling the others.
const trialWindow = 4

// independent reports whether the broadcasts of s are independent trials
// (see above): gossip cores, one broadcast at a time, Gap at least the
// seen-cache TTL, no crash after time 0 (a crash at 0 comes before every
// broadcast and is the same for all: trial 0 draws it, as a run always
// has, and the others start with the same nodes down), no egress hook (the
// caller's, which may keep state), and a router with no per-node state,
// no message store and no timers. A router with state carries it from one
// broadcast to the next (Plumtree's tree settles over them), and so does a
// store (anti-entropy pulls what it holds), so those runs keep one
// goroutine and one stream. So do runs with a fault in force during a
// window of virtual time (a partition, a pause): each broadcast meets the
// window at its own point of the run's clock, which a trial on a clock of
// its own cannot know. Loss, delay and jitter are the same at every time,
// and trials draw them from their own network sources.
func (s *Sim) independent() bool {
	cfg := &s.cfg
	if s.cores == nil || s.egress != nil || s.mem != nil || cfg.Interval != 0 || cfg.Crash.Fraction > 0 && cfg.Crash.At > 0 || cfg.Gap < cfg.Gossip.SeenTTL || s.fl.timeDependent() {
		return false
	}
	return stateless(s.shared, s.graph.Peers(0))
}

// stateless reports whether a core of sh keeps nothing past the seen-cache
// and its random source: it asks a scratch core with the given peers, as
// built and after it publishes, for router state, a message store, a timer
// of its own (a tick before the seen-cache's expiry) and control frames.
// A router or an anti-entropy timer that arms only once traffic flows is
// caught after the publish.
func stateless(sh *gossip.Shared, peers []wire.NodeID) bool {
	var (
		c   gossip.Core
		out gossip.Output
	)
	c.Init(sh, 1, rand.New(rand.NewPCG(0, 0)))
	c.SetPeers(slices.Clone(peers))
	quiet := func() bool {
		_, stores := c.StoreStats()
		return c.State() == nil && !stores && c.NextWake() == 0
	}
	if !quiet() || c.NextTick() != 0 {
		return false
	}
	if _, err := c.Publish(0, nil, &out); err != nil {
		return false
	}
	for _, snd := range out.Sends {
		if snd.Ctl != nil {
			return false
		}
	}
	return quiet() && c.NextTick() == int64(sh.Config().SeenTTL)
}

// workers returns how many goroutines run the trials of s: Config.Workers
// (GOMAXPROCS when 0), at most one per broadcast, and at most
// MaxParallelNodes/N.
func (s *Sim) workers() int {
	w := s.cfg.Workers
	if w == 0 {
		w = runtime.GOMAXPROCS(0)
	}
	return max(1, min(w, s.cfg.Broadcasts, MaxParallelNodes/s.n))
}

// trialStream returns the random stream (PCG seed2) of trial k for stream
// base: base itself for trial 0, so that a run's first broadcast draws
// what it always did. Node streams are below 2^30 and trials below 2^30,
// so no two (trial, stream) pairs meet, nor the topology's stream.
func trialStream(base uint64, k int) uint64 { return base + uint64(k)<<32 }

// resetTrial makes s's node state what a fresh Sim's is, with the random
// sources of trial k: every core new, every tick slot empty, the queue
// empty and the clock at 0.
func (s *Sim) resetTrial(k int) {
	g := s.graph
	for i := range s.n {
		s.pcgs[i].Seed(s.cfg.Seed, trialStream(uint64(i), k))
		c := &s.cores[i]
		c.Init(s.shared, wire.NodeID(i)+1, &s.rands[i])
		c.SetPeers(g.Peers(i))
	}
	s.net = newNetRand(s.cfg.Seed, k)
	clear(s.armed)
	s.q.reset()
	s.now, s.seq = 0, 0
	if s.crashed != nil {
		// Trial 0 draws the crash at its first event, from its network
		// source, as every run has; the others start with those nodes down.
		if k == 0 {
			clear(s.crashed)
			s.crashedList, s.crashDone = nil, false
		} else {
			copy(s.crashed, s.down.crashed)
			s.crashedList, s.crashDone = s.down.list, true
		}
	}
}

// downSet is the nodes a crash at time 0 takes down, as trial 0 draws
// them: what every later trial starts with.
type downSet struct {
	crashed []bool
	list    []uint32
}

// crashAtZero draws the crash at time 0 from trial 0's network source,
// exactly as trial 0 itself does at its first event.
func (s *Sim) crashAtZero() *downSet {
	d := &Sim{cfg: s.cfg, n: s.n, crashed: make([]bool, s.n), net: newNetRand(s.cfg.Seed, 0)}
	d.maybeCrash(0)
	return &downSet{crashed: d.crashed, list: d.crashedList}
}

// runTrial runs broadcast k alone, from fresh state, and returns its
// figures, the frame arrivals it took and the local virtual time at which
// it settled; stopped when ctx was cancelled first.
func (s *Sim) runTrial(ctx context.Context, k int) (b Broadcast, events, end int64, stopped bool) {
	if s.ran || k != 0 {
		s.resetTrial(k)
	}
	s.ran = true
	s.published, s.stopAt = k, k+1
	ev0 := s.events
	s.pushPublish(k, 0)
	if s.loop(ctx) {
		return Broadcast{}, 0, 0, true
	}
	return s.trial, s.events - ev0, s.now, false
}

// runTrials is Run for independent trials: on one goroutine, or on
// several when workers says so, with the same output either way.
func (s *Sim) runTrials(ctx context.Context) (*Report, error) {
	s.trials = true
	if s.crashed != nil {
		s.down = s.crashAtZero()
	}
	var (
		bs      []Broadcast
		events  int64
		partial bool
	)
	if w := s.workers(); w > 1 {
		bs, events, partial = s.runParallel(ctx, w)
	} else {
		s.workersUsed = 1
		var start int64
		for k := 0; k < s.cfg.Broadcasts; k++ {
			if ctx.Err() != nil {
				partial = true
				break
			}
			s.base = start
			b, ev, end, stopped := s.runTrial(ctx, k)
			if stopped {
				partial = true
				break
			}
			b.PublishedAtMS = ms(start)
			bs = append(bs, b)
			events += ev
			start += end + int64(s.cfg.Gap)
		}
	}
	r := newReport(&s.cfg, s.graph, bs)
	r.Partial = partial
	r.Events = events
	return r, nil
}

// trialOut is what a worker hands back for one trial.
type trialOut struct {
	k       int
	b       Broadcast
	events  int64
	end     int64
	calls   []hookCall // the trial's hook calls, in order, times local
	stopped bool
}

// hookCall is one recorded OnDeliver, OnDuplicate or OnCrash call.
type hookCall struct {
	d    Delivery // OnCrash: Node and At only
	kind hookKind
}

type hookKind uint8

const (
	hookDeliver hookKind = iota
	hookDuplicate
	hookCrash
)

// runParallel runs the trials on w workers (s itself and w−1 copies of its
// node state) and merges them in trial order: results, hook calls (with
// times moved onto the run's clock) and progress. It returns the merged
// broadcasts, their frame arrivals, and whether the run was cut short.
// A trial is left out, with every one after it, when it was cut off, or
// when ctx is cancelled while its hook calls are replayed (a hook may
// cancel the run, as in a single-goroutine run, where the trial under way
// is then cut off).
func (s *Sim) runParallel(ctx context.Context, w int) (bs []Broadcast, events int64, partial bool) {
	nb := s.cfg.Broadcasts
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := trialWindow * w
	tokens := make(chan struct{}, window)
	for range window {
		tokens <- struct{}{}
	}
	results := make(chan trialOut, window)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	deliver, duplicate, crash, progress := s.onDeliver, s.onDuplicate, s.onCrash, s.onProgress
	// Every worker's state is built before any of them runs: worker 0 is
	// s itself, whose fields the copies read.
	sims := []*Sim{s}
	for len(sims) < w {
		sims = append(sims, s.worker())
	}
	for i, ws := range sims {
		ws.trials = true
		var rec []hookCall
		if deliver != nil {
			ws.onDeliver = func(d Delivery) { rec = append(rec, hookCall{d: d}) }
		}
		if duplicate != nil {
			ws.onDuplicate = func(d Delivery) { rec = append(rec, hookCall{d: d, kind: hookDuplicate}) }
		}
		if crash != nil {
			ws.onCrash = func(node int, at int64) {
				rec = append(rec, hookCall{d: Delivery{Node: node, At: at}, kind: hookCrash})
			}
		}
		ws.onProgress = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-tokens:
				case <-wctx.Done():
					return
				}
				k := int(next.Add(1) - 1)
				if k >= nb {
					return
				}
				if s.testTrialStart != nil {
					s.testTrialStart(i, k)
				}
				b, ev, end, stopped := ws.runTrial(wctx, k)
				results <- trialOut{k: k, b: b, events: ev, end: end, calls: rec, stopped: stopped}
				rec = nil
				if stopped {
					return
				}
			}
		}()
	}
	s.workersUsed = w
	go func() {
		wg.Wait()
		close(results)
	}()

	pending := make(map[int]trialOut, window)
	var start int64
	for out := range results {
		pending[out.k] = out
		for !partial {
			o, ok := pending[len(bs)]
			if !ok {
				break
			}
			delete(pending, o.k)
			if o.stopped {
				partial = true
				break
			}
			for _, c := range o.calls {
				c.d.At += start
				switch c.kind {
				case hookDeliver:
					deliver(c.d)
				case hookDuplicate:
					duplicate(c.d)
				case hookCrash:
					crash(c.d.Node, c.d.At)
				}
			}
			if ctx.Err() != nil {
				partial = true
				break
			}
			o.b.PublishedAtMS = ms(start)
			bs = append(bs, o.b)
			events += o.events
			start += o.end + int64(s.cfg.Gap)
			tokens <- struct{}{}
			if progress != nil {
				progress(float64(len(bs)) / float64(nb))
			}
		}
		if partial {
			cancel()
		}
	}
	if len(bs) < nb {
		partial = true // every worker stopped before the last trial (ctx)
	}
	return bs, events, partial
}

// worker returns a Sim with node state of its own (cores, sources, queue)
// beside s's read-only config, graph, router and latency tables.
func (s *Sim) worker() *Sim {
	w := &Sim{
		cfg:         s.cfg,
		graph:       s.graph,
		shared:      s.workerShared(),
		n:           s.n,
		stopAt:      s.stopAt,
		down:        s.down,
		uniformMin:  s.uniformMin,
		uniformSpan: s.uniformSpan,
		region:      s.region,
		regionDelay: s.regionDelay,
		nRegions:    s.nRegions,
		horizon:     s.horizon,
		fl:          s.fl, // read only: independent trials have no windows
	}
	if s.crashed != nil {
		w.crashed = make([]bool, s.n)
	}
	w.initNodes(nil)
	return w
}

// reset empties q and puts its clock back to 0, keeping its chunks for
// reuse, so that a new trial sees a fresh queue.
func (q *queue) reset() {
	if q.inRing > 0 {
		for i := range q.ring {
			bk := &q.ring[i]
			for c := bk.head; c != nil; {
				next := c.next
				c.next = q.free
				q.free = c
				c = next
			}
			*bk = bucket{}
		}
		q.inRing = 0
	}
	q.cur, q.pos = q.cur[:0], 0
	q.side.ev, q.far.ev = q.side.ev[:0], q.far.ev[:0]
	q.base = 0
}

// newNetRand returns the network's random source for trial k (latency and
// loss draws, the publisher): for trial 0, the one a run has always used.
func newNetRand(seed uint64, k int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, trialStream(netStream, k)))
}
