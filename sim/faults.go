package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"gossipmesh/fault"
	"gossipmesh/wire"
)

// The fault layer.
//
// Every send of every node passes route (engine.go), the one place a
// node's output leaves it, and there the plan in force decides its fate
// with fault.Plan.Decide, the code the node runtime and the in-memory
// network run: a cut link drops the frame, the link's rule drops it with
// its probability (Config.Loss) and adds its delay and jitter
// (Config.Delay, Config.Jitter) to the latency draw. Decisions draw from
// the network's source (per trial for independent trials), in the order
// they always did: a run with --loss and no other fault draws exactly
// what it drew before the layer existed, and one without faults draws
// nothing more.
//
// The plan changes over virtual time (fault.Schedule): the base plan
// carries the loss and delay, a partition adds its sides during its
// window and a pause its paused nodes during its own. A paused node is
// not a link fault: the engine holds every frame that arrives for it and
// every tick it wants until the window ends, then handles them in arrival
// order, as the kernel of a SIGSTOPped process queues what arrives in its
// socket buffers.
//
// A crash (Config.Crash) stays a node fault of the engine's own (the
// crashed set): a crashed node never comes back, frames sent to it are
// counted at arrival (ToCrashed) as they always were, and a million-node
// run does not look up a cut list on every send.

// Partition cuts every link between nodes on different Sides during
// Window. A node on no side keeps all its links.
type Partition struct {
	// Sides is the spec fault.ParseSides reads: "halves", or node sets
	// joined by "/" such as "0-4999/5000-9999". Empty: no partition.
	Sides string
	fault.Window
}

// ParsePartition reads SETS@FROM-TO, for example "halves@1s-11s" or
// "0-4/5-9@1s-11s". The sets are checked against the node count by
// Config.Validate, since a topology file sets it.
func ParsePartition(s string) (Partition, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Partition{}, nil
	}
	sides, win, ok := strings.Cut(s, "@")
	if !ok {
		return Partition{}, fmt.Errorf("partition %q: want SETS@FROM-TO such as halves@1s-11s or 0-4/5-9@1s-11s", s)
	}
	w, err := fault.ParseWindow(win)
	if err != nil {
		return Partition{}, fmt.Errorf("partition %q: %w", s, err)
	}
	if strings.TrimSpace(sides) == "" {
		return Partition{}, fmt.Errorf("partition %q: no sides before @: want halves or sets such as 0-4/5-9", s)
	}
	return Partition{Sides: strings.TrimSpace(sides), Window: w}, nil
}

// String renders p as ParsePartition reads it, "" for none.
func (p Partition) String() string {
	if p.Sides == "" {
		return ""
	}
	return p.Sides + "@" + p.Window.String()
}

func (p Partition) validate(n int) error {
	if p.Sides == "" {
		return nil
	}
	if err := p.Window.Validate(); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if _, err := fault.ParseSides(p.Sides, n); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	return nil
}

// Pause stops a Fraction of the nodes, chosen with the run's seed, during
// Window.
type Pause struct {
	Fraction float64
	fault.Window
}

// ParsePause reads FRACTION@FROM-TO, for example "0.1@2s-7s".
func ParsePause(s string) (Pause, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Pause{}, nil
	}
	frac, win, ok := strings.Cut(s, "@")
	if !ok {
		return Pause{}, fmt.Errorf("pause %q: want FRACTION@FROM-TO such as 0.1@2s-7s", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(frac), 64)
	if err != nil {
		return Pause{}, fmt.Errorf("pause %q: fraction %q is not a number such as 0.1", s, frac)
	}
	w, err := fault.ParseWindow(win)
	if err != nil {
		return Pause{}, fmt.Errorf("pause %q: %w", s, err)
	}
	p := Pause{Fraction: f, Window: w}
	return p, p.Validate()
}

// Validate reports a pause that cannot be run.
func (p Pause) Validate() error {
	if p.Fraction == 0 {
		return nil
	}
	if !(p.Fraction > 0 && p.Fraction < 1) {
		return fmt.Errorf("pause fraction must be in (0, 1), got %v", p.Fraction)
	}
	if err := p.Window.Validate(); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	return nil
}

// String renders p as ParsePause reads it, "" for none.
func (p Pause) String() string {
	if p.Fraction == 0 {
		return ""
	}
	return strconv.FormatFloat(p.Fraction, 'g', -1, 64) + "@" + p.Window.String()
}

// ParseDelay reads D or D,JITTER, for example "20ms" or "20ms,10ms".
func ParseDelay(s string) (delay, jitter time.Duration, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, 0, nil
	}
	d, j, hasJ := strings.Cut(s, ",")
	if delay, err = time.ParseDuration(strings.TrimSpace(d)); err != nil {
		return 0, 0, fmt.Errorf("delay %q: %q is not a duration: want D or D,JITTER such as 20ms,10ms", s, d)
	}
	if hasJ {
		if jitter, err = time.ParseDuration(strings.TrimSpace(j)); err != nil {
			return 0, 0, fmt.Errorf("delay %q: jitter %q is not a duration: want D or D,JITTER such as 20ms,10ms", s, j)
		}
	}
	if err := (&fault.Plan{Rule: fault.Rule{Delay: delay, Jitter: jitter}}).Validate(); err != nil {
		return 0, 0, fmt.Errorf("delay %q: %w", s, err)
	}
	return delay, jitter, nil
}

// pauseStream is the PCG stream from which the paused nodes are drawn:
// apart from the network's and the nodes' streams, so that adding a pause
// changes no other draw.
const pauseStream = 1<<62 + 2

// faults is the layer's state in one run: the schedule, the plan in force
// now and what reports need to know about the partition.
type faults struct {
	sched *fault.Schedule
	plan  *fault.Plan // in force from the last edge crossed
	until int64       // when the plan next changes, 0: never
	// cuts says the plan may cut links, so that a drop is told apart as
	// cut or lost.
	cuts bool
	// side[i] is node i's side of the partition, -1 for none; nil without
	// a partition. nSides counts them.
	side   []int32
	nSides int
	heal   int64 // end of the partition window
	healed bool  // the heal has been crossed
	// pauseEnd is when paused nodes resume.
	pauseEnd int64
}

// newFaults builds the layer of a run, nil when it injects nothing.
func newFaults(cfg *Config, n int) (*faults, error) {
	base := &fault.Plan{Rule: fault.Rule{Drop: cfg.Loss, Delay: cfg.Delay, Jitter: cfg.Jitter}}
	if base.IsZero() && cfg.Partition.Sides == "" && cfg.Pause.Fraction == 0 {
		return nil, nil
	}
	fl := &faults{}
	var timed []fault.Timed
	if p := cfg.Partition; p.Sides != "" {
		sides, err := fault.ParseSides(p.Sides, n)
		if err != nil {
			return nil, fmt.Errorf("sim: partition: %w", err)
		}
		fl.side = make([]int32, n)
		for i := range fl.side {
			fl.side[i] = -1
		}
		plan := &fault.Plan{Sides: make(map[wire.NodeID]int, n)}
		for k, set := range sides {
			for _, i := range set {
				fl.side[i] = int32(k)
				plan.Sides[wire.NodeID(i)+1] = k
			}
		}
		fl.nSides = len(sides)
		fl.heal = int64(p.To)
		fl.cuts = true
		timed = append(timed, fault.Timed{Window: p.Window, Plan: plan})
	}
	if p := cfg.Pause; p.Fraction > 0 {
		k := max(1, min(int(p.Fraction*float64(n)+0.5), n-1))
		rng := rand.New(rand.NewPCG(cfg.Seed, pauseStream))
		plan := &fault.Plan{Paused: make(map[wire.NodeID]bool, k)}
		for _, i := range rng.Perm(n)[:k] {
			plan.Paused[wire.NodeID(i)+1] = true
		}
		fl.pauseEnd = int64(p.To)
		timed = append(timed, fault.Timed{Window: p.Window, Plan: plan})
	}
	var err error
	if fl.sched, err = fault.NewSchedule(base, timed...); err != nil {
		return nil, fmt.Errorf("sim: faults: %w", err)
	}
	fl.plan, fl.until = fl.sched.At(0)
	return fl, nil
}

// timeDependent reports whether the layer's plan changes over virtual
// time: a run whose broadcasts meet a window at different points of it
// cannot run them as independent trials, each on a clock of its own.
func (fl *faults) timeDependent() bool { return fl != nil && fl.until != 0 }

// paused reports whether node i is paused now.
func (fl *faults) paused(i uint32) bool {
	return len(fl.plan.Paused) > 0 && fl.plan.Paused[wire.NodeID(i)+1]
}

// advance moves the layer to virtual time now: it takes the plan in force
// and, at the heal, records what each open broadcast held per side.
func (s *Sim) advance(now int64) {
	fl := s.fl
	for fl.until != 0 && now >= fl.until {
		fl.plan, fl.until = fl.sched.At(fl.until)
	}
	if fl.side != nil && !fl.healed && now >= fl.heal {
		fl.healed = true
		for _, f := range s.open {
			f.atHeal = s.sideCounts(f)
		}
	}
}

// sideCounts counts the nodes of each side that hold f.
func (s *Sim) sideCounts(f *flight) []int {
	fl := s.fl
	out := make([]int, fl.nSides)
	for i, k := range fl.side {
		if k >= 0 && f.got.has(uint32(i)) {
			out[k]++
		}
	}
	return out
}

// cutOnArrival reports whether the plan in force cuts the link a frame
// arrives on, from → to: a frame sent before a cut and arriving after it
// is lost, as one on the wire when a cable is pulled, and as the node
// runtime drops what arrives from a peer its plan cuts (fault.Plan.IsCut).
func (fl *faults) cutOnArrival(from, to uint32) bool {
	return fl.cuts && fl.plan.IsCut(wire.NodeID(from)+1, wire.NodeID(to)+1)
}

// decide passes a send of node from to node to through the plan in force:
// drop, and the delay to add to the latency draw; cut says a drop came
// from a cut link rather than the link's loss.
func (s *Sim) decide(from, to uint32) (drop, cut bool, delay int64) {
	p := s.fl.plan
	drop, d := p.Decide(s.now, wire.NodeID(from)+1, wire.NodeID(to)+1, s.net)
	if drop && s.fl.cuts {
		cut = p.IsCut(wire.NodeID(from)+1, wire.NodeID(to)+1)
	}
	return drop, cut, int64(d)
}

// hold holds event e, which arrives for a paused node, until the node
// resumes: it is queued again at the pause's end, after what is queued
// for then already, so that held frames are handled in arrival order.
func (s *Sim) hold(e *event) {
	e.at = s.fl.pauseEnd
	s.seq++
	e.seq = s.seq
	s.q.push(*e)
}

// SideReach is what one side of a partition held of a broadcast.
type SideReach struct {
	// Nodes is the side's size.
	Nodes int `json:"nodes"`
	// Reached counts its nodes that held the broadcast when the partition
	// healed, or when the broadcast settled if that came first.
	Reached int `json:"reached"`
	// Reliability is Reached / Nodes.
	Reliability float64 `json:"reliability"`
}

// PartitionReach is what a partition did to a broadcast published while
// it was in force (one published before it may have spread before the
// cut and is left out).
type PartitionReach struct {
	// Sides is per side, in the order the partition lists them.
	Sides []SideReach `json:"sides"`
	// PublisherSide is the side of the broadcast's publisher, -1 for a
	// publisher on no side.
	PublisherSide int `json:"publisher_side"`
	// HealToFullMS is the virtual time from the heal until every live
	// node held the broadcast (0 if they all did before it), null when
	// some never did (nothing repaired the split).
	HealToFullMS *float64 `json:"heal_to_full_ms"`
}

// partitionReach is f's PartitionReach, nil when the run has no partition
// or f was not published during it.
func (s *Sim) partitionReach(f *flight, reachedLive, live int) *PartitionReach {
	fl := s.fl
	if fl == nil || fl.side == nil || !s.cfg.Partition.Contains(f.pubAt+s.base) {
		return nil
	}
	counts := f.atHeal
	if counts == nil {
		counts = s.sideCounts(f)
	}
	sizes := make([]int, fl.nSides)
	for _, k := range fl.side {
		if k >= 0 {
			sizes[k]++
		}
	}
	pr := &PartitionReach{PublisherSide: int(fl.side[f.publisher])}
	for k, c := range counts {
		pr.Sides = append(pr.Sides, SideReach{Nodes: sizes[k], Reached: c, Reliability: round(float64(c)/float64(sizes[k]), 6)})
	}
	if reachedLive == live {
		t := ms(max(0, f.lastAt+s.base-fl.heal))
		pr.HealToFullMS = &t
	}
	return pr
}

// ownSide is the reliability at the heal on the publisher's side, NaN
// without a partition or a publisher on no side.
func (pr *PartitionReach) ownSide() float64 {
	if pr == nil || pr.PublisherSide < 0 {
		return math.NaN()
	}
	return pr.Sides[pr.PublisherSide].Reliability
}

// otherSides is the reliability at the heal over the sides other than the
// publisher's, NaN without a partition or a publisher on no side.
func (pr *PartitionReach) otherSides() float64 {
	if pr == nil || pr.PublisherSide < 0 {
		return math.NaN()
	}
	nodes, reached := 0, 0
	for k, sd := range pr.Sides {
		if k != pr.PublisherSide {
			nodes += sd.Nodes
			reached += sd.Reached
		}
	}
	return float64(reached) / float64(nodes)
}

// healToFull is HealToFullMS, NaN when absent.
func (pr *PartitionReach) healToFull() float64 {
	if pr == nil || pr.HealToFullMS == nil {
		return math.NaN()
	}
	return *pr.HealToFullMS
}
