package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gossipmesh/adversary"
	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// The Byzantine experiments.
const (
	// ExperimentByzantine measures honest delivery and latency against
	// the fraction and kind of adversaries, with the defences on (strict
	// signing and peer scoring) and off, at N = 1,000 and 10,000.
	ExperimentByzantine = "byzantine"
	// ExperimentTestbed reproduces the gossipsub v1.1 evaluation's
	// testbed (Vyzovitis et al., 2020): 100 honest publishers, 900 honest
	// lurkers, up to 4,000 sybils of high degree, 120 messages/s, and its
	// attack scenarios: eclipse of one target, eclipse of the publishers,
	// censorship, cold boot and covert flash.
	ExperimentTestbed = "testbed"
)

// ByzantineGossip is the router every node of the Byzantine experiments
// runs: lazy push, this mesh's gossipsub (an eager mesh plus IHAVE/IWANT
// gossip), with gossipsub's D = 6 and D_lazy = 6 and its heartbeat scaled
// to the simulator's links as the lazy router's defaults are; no
// anti-entropy, which gossipsub does not have either (it would repair
// what the attacks cut, and hide what scoring does).
func ByzantineGossip() gossip.Config {
	gc := gossip.DefaultConfig()
	gc.Strategy = gossip.Lazy
	gc.LazyD, gc.LazyDLazy, gc.LazyDOut = 6, 6, 3
	gc.AntiEntropy = -1
	return gc
}

// The byzantine experiment's setup.
const (
	// ByzantineDegree is the overlay's mean degree (8 outbound links made
	// undirected, the simulator's default).
	ByzantineDegree = 16
	// ByzantinePublishers publish in turn, ByzantineRate messages a second
	// between them, for ByzantineDuration; the run drains for
	// ByzantineDrain after the last publish.
	ByzantinePublishers = 20
	ByzantineRate       = 20
	ByzantineDuration   = time.Second
	ByzantineDrain      = 4 * time.Second
	// ByzantineForgeRate, ByzantineSpamRate and ByzantineInvalidRate are
	// each adversary's rates in messages a second at ByzantineLoadNodes
	// nodes and below: there every adversary makes at least one message
	// up within the publishing second, and more adversaries make more.
	// At N nodes above it each adversary's rate is the base rate ×
	// ByzantineLoadNodes / N (byzantineRate), so that the adversaries
	// together make as many messages a second at every size: each honest
	// node faces the same adversarial load at 1,000 and at 10,000 nodes,
	// and what grows with N is the mesh, not the attack. (A smaller mesh,
	// a test's, is not made busier than its base rates.)
	ByzantineForgeRate   = 1
	ByzantineSpamRate    = 1
	ByzantineInvalidRate = 20
	// ByzantineLoadNodes is the size at which each adversary makes up
	// messages at the base rates above.
	ByzantineLoadNodes = 1_000
)

// byzantineRate is each adversary's rate at n nodes for a base rate at
// load nodes: base × load / n, so that at every size from load up the
// adversaries together make base × (their number at load nodes) messages
// a second; base itself below load.
func byzantineRate(base float64, n, load int) float64 {
	if n <= load {
		return base
	}
	return base * float64(load) / float64(n)
}

// byzantinePhases is how many phases the adversaries' emissions are
// spread over at n nodes (Scenario.Phases): n / load, rounded, at least
// 1. At 10,000 nodes each of 3,300 forgers emits once every 10 s, a tenth
// of them in each second, so that the same 330 forgeries a second are
// made up, at the same instants, as by 330 forgers at 1 a second at 1,000.
func byzantinePhases(n, load int) int {
	return max(1, int(math.Round(float64(n)/float64(load))))
}

// ByzantineFractions are the fractions of adversaries, in percent.
var ByzantineFractions = []int{0, 10, 20, 33, 50}

// ByzantineKinds are the kinds of adversary the byzantine experiment
// runs, each a mode string before its rate or target is filled in.
var ByzantineKinds = []string{"blackhole", "tamper", "forge", "spam", "spam-invalid", "censor", "liar", "eclipse"}

// ByzantineRow is one scenario of a Byzantine experiment.
type ByzantineRow struct {
	Experiment string `json:"experiment"`
	// Kind is the adversaries' kind (byzantine) or the scenario
	// (testbed); Modes the exact mode string every sybil ran.
	Kind  string `json:"kind"`
	Modes string `json:"modes"`
	// FractionPct is the adversaries' share of all nodes, in percent.
	FractionPct float64 `json:"fraction_pct"`
	ScenarioResult
}

// ByzantineExperiment is the result of the byzantine or testbed
// experiment: one row per scenario, defences off and on.
type ByzantineExperiment struct {
	Name string
	Rows []ByzantineRow
	// Setup describes what every row shares, for the tables.
	Setup string
}

// idOf is node index i's wire id.
func idOf(i int) wire.NodeID { return wire.NodeID(i) + 1 }

// byzantineScenario builds the byzantine experiment's scenario for kind
// at pct percent adversaries among n nodes.
func byzantineScenario(n int, kind string, pct int, seed uint64, defences bool) (Scenario, error) {
	return byzantineScenarioAt(n, ByzantineLoadNodes, kind, pct, seed, defences)
}

// byzantineScenarioAt is byzantineScenario with the rates' base at load
// nodes (ByzantineLoadNodes in the experiment; tests use small ones).
func byzantineScenarioAt(n, load int, kind string, pct int, seed uint64, defences bool) (Scenario, error) {
	sybils := n * pct / 100
	honest := n - sybils
	sc := Scenario{
		Name:       kind,
		Overlay:    SybilSpec{Honest: honest, Degree: ByzantineDegree, Sybils: sybils},
		Mixed:      true,
		Gossip:     ByzantineGossip(),
		Latency:    DefaultConfig().Latency,
		Seed:       seed,
		Publishers: ByzantinePublishers,
		Rate:       ByzantineRate,
		Duration:   ByzantineDuration,
		Drain:      ByzantineDrain,
		Defences:   defences,
		Score:      score.DefaultParams(),
	}
	if sybils == 0 {
		sc.Name = "none"
		return sc, nil
	}
	var mode string
	rate := func(base float64) string {
		sc.Phases = byzantinePhases(n, load)
		return strconv.FormatFloat(byzantineRate(base, n, load), 'f', -1, 64)
	}
	switch kind {
	case "forge":
		mode = "forge=" + rate(ByzantineForgeRate)
	case "spam":
		mode = "spam=" + rate(ByzantineSpamRate)
	case "spam-invalid":
		mode = "spam-invalid=" + rate(ByzantineInvalidRate)
	case "censor":
		// The first publisher's messages are what the adversaries drop.
		mode = "censor=" + idOf(0).String()
	case "eclipse":
		// Every adversary surrounds the last honest node, which keeps
		// only its own outbound links to honest nodes.
		t := honest - 1
		mode = "eclipse=" + idOf(t).String()
		sc.Mixed = false
		sc.Overlay.SybilLinks = ByzantineDegree / 2
		sc.Overlay.Targets = []int{t}
		eclipseSlots(&sc.Overlay, defences)
	default:
		mode = kind
	}
	ms, err := adversary.Parse(mode)
	if err != nil {
		return Scenario{}, fmt.Errorf("sim: byzantine %s: %w", kind, err)
	}
	sc.Modes = ms
	return sc, nil
}

// eclipseSlots sets what an eclipse's targets keep of their honest links.
// A node's links are slots that whoever connects first takes; sybils that
// surround a target connect first. With the defences on, a node keeps a
// quota of outbound links it dialled itself (the runtime's defence
// against eclipse through inbound connections): the target keeps its
// own Degree/2 honest picks. With them off nothing reserves a slot, and
// the sybils hold them all: the target keeps no honest link. The
// simulator's overlay is static, so this is how the quota enters it.
func eclipseSlots(sp *SybilSpec, defences bool) {
	sp.TargetsOutbound = defences
	sp.TargetsCut = !defences
}

// The testbed's setup: gossipsub v1.1's evaluation.
const (
	TestbedPublishers = 100
	TestbedLurkers    = 900
	TestbedSybils     = 4000
	TestbedRate       = 120
	// TestbedDegree is an honest node's degree among honest nodes;
	// TestbedSybilLinks how many honest nodes each sybil links to (so an
	// honest node has about 4,000 × 20 / 1,000 = 80 sybil links beside
	// its 16 honest ones: the sybils hold most of its slots).
	TestbedDegree     = 16
	TestbedSybilLinks = 20
	// TestbedTargetLinks is how many publishers each sybil links to in
	// the eclipse of the publishers (800 sybils around each).
	TestbedTargetLinks = 20
	// TestbedDuration is how long the measured publishing lasts, and
	// TestbedDrain how long the run goes on after it: one second (120
	// messages, 120,000 honest deliveries) fits this machine at 5,000
	// nodes; --publish-for measures longer.
	TestbedDuration = time.Second
	TestbedDrain    = 5 * time.Second
	// TestbedCalm is how long the sybils behave in the covert flash
	// attack, as in the paper; TestbedCalmRate the publishing rate
	// meanwhile, which is not the paper's 120 a second but 2, to fit the
	// machine (the heartbeats of 5,000 nodes for two minutes cost more
	// than the messages). What the calm phase buys a sybil is score
	// credit: P1, time connected, is the same at any rate (+2 after two
	// minutes); P2, first deliveries, is lower (about +6 at 2 messages/s
	// for a sybil in an eager set, up to its cap of +20 at the full
	// rate), which a liar's broken promises (P7) outweigh within a few
	// dozen promises either way.
	TestbedCalm     = 2 * time.Minute
	TestbedCalmRate = 2
)

// TestbedScenarios are the testbed's scenarios, in table order.
var TestbedScenarios = []string{"baseline", "eclipse-target", "eclipse-publishers", "censorship", "cold-boot", "covert-flash"}

// TestbedSize scales the testbed: Honest nodes (a tenth of them
// publishers), Sybils (default 4 per honest node, the paper's ratio), and
// the measured publishing Duration. The zero value is the paper's size.
type TestbedSize struct {
	Honest, Sybils int
	Duration       time.Duration
	// Calm, when positive, replaces TestbedCalm (tests).
	Calm time.Duration
}

// testbedScenario builds one testbed scenario.
func testbedScenario(name string, size TestbedSize, seed uint64, defences bool) (Scenario, error) {
	h, s := size.Honest, size.Sybils
	if h == 0 {
		h = TestbedPublishers + TestbedLurkers
	}
	if s == 0 {
		s = TestbedSybils * h / (TestbedPublishers + TestbedLurkers) // the paper's 4 per honest node
	}
	d := size.Duration
	if d == 0 {
		d = TestbedDuration
	}
	sc := Scenario{
		Name:       name,
		Overlay:    SybilSpec{Honest: h, Degree: TestbedDegree, Sybils: s, SybilLinks: TestbedSybilLinks},
		Gossip:     ByzantineGossip(),
		Latency:    DefaultConfig().Latency,
		Seed:       seed,
		Publishers: max(1, h/10),
		Rate:       TestbedRate,
		Duration:   d,
		Drain:      TestbedDrain,
		Defences:   defences,
		Score:      score.DefaultParams(),
	}
	var mode string
	switch name {
	case "baseline":
		// Sybils in place, behaving: what the overlay alone costs.
	case "eclipse-target":
		// Every sybil surrounds one lurker, which keeps only its
		// outbound links to honest nodes.
		t := h - 1
		sc.Overlay.SybilLinks = 0
		sc.Overlay.Targets = []int{t}
		eclipseSlots(&sc.Overlay, defences)
		mode = "eclipse=" + idOf(t).String()
	case "eclipse-publishers":
		// Sybils surround the publishers, blackholing what they get.
		sc.Overlay.SybilLinks = 0
		sc.Overlay.Targets = make([]int, sc.Publishers)
		for i := range sc.Overlay.Targets {
			sc.Overlay.Targets[i] = i
		}
		sc.Overlay.TargetLinks = TestbedTargetLinks
		eclipseSlots(&sc.Overlay, defences)
		mode = "blackhole"
	case "censorship":
		// Sybils everywhere drop every message of one publisher.
		mode = "censor=" + idOf(0).String()
	case "cold-boot":
		// Sybils hold most slots from t = 0, before any score exists,
		// announce what they never serve and forward nothing.
		mode = "liar"
	case "covert-flash":
		// Sybils behave for the calm phase, then all lie at once.
		mode = "liar"
		sc.Calm, sc.CalmRate = TestbedCalm, TestbedCalmRate
		if size.Calm > 0 {
			sc.Calm = size.Calm
		}
	default:
		return Scenario{}, fmt.Errorf("sim: unknown testbed scenario %q (want one of %v)", name, TestbedScenarios)
	}
	if mode != "" {
		ms, err := adversary.Parse(mode)
		if err != nil {
			return Scenario{}, fmt.Errorf("sim: testbed %s: %w", name, err)
		}
		sc.Modes = ms
	}
	return sc, nil
}

// byzantineCell is one scenario to run and where its row goes; heavy
// marks one whose honest nodes keep state for many made-up messages
// (heavyPairs), which runCells runs one at a time.
type byzantineCell struct {
	sc    Scenario
	kind  string
	heavy bool
}

// heavyPairs is the number of (honest node, made-up message it accepts)
// pairs above which a scenario is heavy: each pair costs an honest core
// about 1.4 KB (its lazy router's IHAVE cache and per-peer marks, its
// store, its seen cache), so 4 million is about 5.6 GB. At N = 10,000,
// 33% forgers without the defences, or spammers in either setting, make
// 8.8 million (about 12 GB); two of them at once do not fit a 23 GB
// machine, one beside the light scenarios does. Every scenario at
// N = 1,000 (at most 1 million pairs) is light.
const heavyPairs = 4_000_000

// madeUpPairs estimates the (honest node, made-up message) pairs a
// scenario's honest nodes accept and keep: the valid messages its
// adversaries make up (spam, and forge without signatures) over the run,
// each accepted by every honest node. Invalid spam, tampered copies and
// forgeries under strict signing are rejected at the first honest hop and
// kept by none.
func madeUpPairs(sc *Scenario) int64 {
	var rate float64
	for _, m := range sc.Modes {
		if m.Kind == adversary.Spam || m.Kind == adversary.Forge && !sc.Defences {
			rate += m.Rate
		}
	}
	span := time.Duration(sc.publishTime(sc.calmMessages()+sc.Messages()-1)) + sc.Drain
	return int64(float64(sc.Overlay.Sybils) * rate * span.Seconds() * float64(sc.Overlay.Honest))
}

// nextCell picks the cell a free worker runs next, in order: the first
// not taken, but a heavy one only while no other heavy one runs, so that
// the light cells go on beside it. It returns -1 when every cell is
// taken, and -2 when only heavy ones are left while one runs (the worker
// waits for it).
func nextCell(cells []byzantineCell, taken []bool, heavyRunning bool) int {
	left := false
	for k := range cells {
		if taken[k] {
			continue
		}
		left = true
		if cells[k].heavy && heavyRunning {
			continue
		}
		return k
	}
	if left {
		return -2
	}
	return -1
}

// runCells runs the scenarios on up to workers goroutines (0:
// GOMAXPROCS) and returns their rows in order: each scenario is
// deterministic on its own, so the rows are the same for any number of
// workers. Heavy cells run one at a time (nextCell), the others beside
// them. On cancellation the rows done so far come back, the rest left
// out, and partial is true.
func runCells(ctx context.Context, name string, cells []byzantineCell, workers int, progress func(float64)) (rows []ByzantineRow, partial bool, err error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([]*ByzantineRow, len(cells))
	errs := make([]error, len(cells))
	var (
		mu           sync.Mutex
		taken        = make([]bool, len(cells))
		heavyRunning bool
		done         int
		wg           sync.WaitGroup
	)
	freed := sync.NewCond(&mu)
	for range min(workers, len(cells)) {
		wg.Go(func() {
			for {
				mu.Lock()
				k := nextCell(cells, taken, heavyRunning)
				for k == -2 && ctx.Err() == nil {
					freed.Wait()
					k = nextCell(cells, taken, heavyRunning)
				}
				if k < 0 || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				taken[k] = true
				if cells[k].heavy {
					heavyRunning = true
				}
				mu.Unlock()
				c := &cells[k]
				r, err := RunScenario(ctx, c.sc)
				if c.heavy {
					mu.Lock()
					heavyRunning = false
					freed.Broadcast()
					mu.Unlock()
				}
				if err != nil {
					errs[k] = err
					return
				}
				tot := c.sc.Overlay.Honest + c.sc.Overlay.Sybils
				out[k] = &ByzantineRow{Experiment: name, Kind: c.kind, Modes: c.sc.Modes.String(),
					FractionPct: round(100*float64(c.sc.Overlay.Sybils)/float64(tot), 1), ScenarioResult: *r}
				mu.Lock()
				done++
				if progress != nil {
					progress(float64(done) / float64(len(cells)))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for k, r := range out {
		if errs[k] != nil {
			return nil, false, errs[k]
		}
		if r == nil || r.Partial {
			partial = true
			if r == nil {
				continue
			}
		}
		rows = append(rows, *r)
	}
	return rows, partial || ctx.Err() != nil, nil
}

// ByzantineSizes are the network sizes of the byzantine experiment when
// ExperimentConfig.Nodes is not set.
var ByzantineSizes = []int{1_000, 10_000}

// ByzantineLargeFractions are the fractions run at sizes above
// ByzantineFullSize: every kind at a third, beside none, since each run at
// 10,000 nodes costs ten at 1,000.
var ByzantineLargeFractions = []int{0, 33}

// ByzantineFullSize is the largest size at which every fraction runs.
const ByzantineFullSize = 1_000

// fractionsAt returns the fractions run at n nodes.
func fractionsAt(n int) []int {
	if n > ByzantineFullSize {
		return ByzantineLargeFractions
	}
	return ByzantineFractions
}

func runByzantineExperiment(ctx context.Context, ec ExperimentConfig, sizes []int) (*Experiment, error) {
	all := ByzantineKinds
	if len(ec.Kinds) > 0 {
		for _, k := range ec.Kinds {
			if !slices.Contains(ByzantineKinds, k) {
				return nil, fmt.Errorf("sim: byzantine: unknown kind %q (want some of %v)", k, ByzantineKinds)
			}
		}
		all = ec.Kinds
	}
	var cells []byzantineCell
	for _, n := range sizes {
		for _, pct := range fractionsAt(n) {
			kinds := all
			if pct == 0 {
				kinds = []string{"none"}
			}
			for _, kind := range kinds {
				for _, def := range []bool{false, true} {
					sc, err := byzantineScenario(n, kind, pct, ec.Seed, def)
					if err != nil {
						return nil, err
					}
					cells = append(cells, byzantineCell{sc: sc, kind: sc.Name, heavy: madeUpPairs(&sc) > heavyPairs})
				}
			}
		}
	}
	rows, partial, err := runCells(ctx, ExperimentByzantine, cells, ec.Workers, ec.Progress)
	if err != nil {
		return nil, err
	}
	be := &ByzantineExperiment{Name: ExperimentByzantine, Rows: rows,
		Setup: fmt.Sprintf("Overlay: one random undirected graph of mean degree %d, the adversaries at random places (eclipse: every adversary links to one target and to %d random honest nodes; the target keeps its own %d outbound honest links with the defences on, the outbound quota, and none with them off). Router: lazy push, D = 6, D_lazy = 6 (or a quarter of the lazy candidates, if more), heartbeat %v, no anti-entropy. Links %s. %d honest publishers, %d messages/s in all, for %v; the run drains %v more. %s; censor drops the first publisher's messages. Defences on: strict signing (the simulator's signature model), peer scoring at score.DefaultParams and 3 of the 6 eager slots kept on links a node dialed (D_out); off: signing none, no scoring, no D_out. Seed %d.",
			ByzantineDegree, ByzantineDegree/2, ByzantineDegree/2, ByzantineGossip().LazyHeartbeat, DefaultConfig().Latency, ByzantinePublishers, ByzantineRate, ByzantineDuration, ByzantineDrain,
			byzantineRates(sizes), ec.Seed)}
	return &Experiment{Name: ExperimentByzantine, Config: ec, Byzantine: be, Partial: partial}, nil
}

// byzantineRates describes the adversaries' rates at each size, for the
// experiment's Setup.
func byzantineRates(sizes []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Each adversary's rates are the base rates × %d / N (at N ≥ %d; the base rates below), so that the adversaries together make up as many messages a second at every size and each honest node faces the same adversarial load (the number of adversaries grows with N, their rates fall with it): ", ByzantineLoadNodes, ByzantineLoadNodes)
	for i, n := range sizes {
		if i > 0 {
			b.WriteString("; ")
		}
		r := func(base float64) string {
			return strconv.FormatFloat(byzantineRate(base, n, ByzantineLoadNodes), 'f', -1, 64)
		}
		fmt.Fprintf(&b, "at N = %d forge %s/s, spam %s/s, spam-invalid %s/s", n, r(ByzantineForgeRate), r(ByzantineSpamRate), r(ByzantineInvalidRate))
		if p := byzantinePhases(n, ByzantineLoadNodes); p > 1 {
			fmt.Fprintf(&b, ", spread over %d phases (adversary j emits first (j mod %d + 1)/%d of a period in), so that as many emit at each instant as at N = %d", p, p, p, ByzantineLoadNodes)
		}
	}
	return b.String()
}

func runTestbedExperiment(ctx context.Context, ec ExperimentConfig, size TestbedSize) (*Experiment, error) {
	var cells []byzantineCell
	for _, name := range TestbedScenarios {
		for _, def := range []bool{false, true} {
			sc, err := testbedScenario(name, size, ec.Seed, def)
			if err != nil {
				return nil, err
			}
			cells = append(cells, byzantineCell{sc: sc, kind: name})
		}
	}
	rows, partial, err := runCells(ctx, ExperimentTestbed, cells, ec.Workers, ec.Progress)
	if err != nil {
		return nil, err
	}
	sc := cells[0].sc
	calm := TestbedCalm
	if size.Calm > 0 {
		calm = size.Calm
	}
	be := &ByzantineExperiment{Name: ExperimentTestbed, Rows: rows,
		Setup: fmt.Sprintf("%d honest nodes (%d publishers, the rest lurkers) and %d sybils. Honest nodes form a random graph of mean degree %d among themselves; each sybil links to %d random honest nodes (eclipse of one target: every sybil links to the target alone; of the publishers: each sybil to %d publishers; with the defences on, targets keep their own %d outbound honest links, the outbound quota, and none with them off). Router: lazy push, D = 6, D_lazy = 6 (or a quarter of the lazy candidates, if more), heartbeat %v, no anti-entropy. Links %s. %d messages/s from the publishers in turn for %v, measured; the run drains %v more. Covert flash: the sybils behave for %v while the publishers send %d messages/s, then all turn liar at once. Defences on: strict signing (the simulator's signature model), peer scoring at score.DefaultParams and 3 of the 6 eager slots kept on links a node dialed (D_out); off: signing none, no scoring, no D_out. Seed %d.",
			sc.Overlay.Honest, sc.Publishers, sc.Overlay.Sybils, TestbedDegree, TestbedSybilLinks, TestbedTargetLinks, TestbedDegree/2,
			ByzantineGossip().LazyHeartbeat, DefaultConfig().Latency, TestbedRate, sc.Duration, TestbedDrain, calm, TestbedCalmRate, ec.Seed)}
	return &Experiment{Name: ExperimentTestbed, Config: ec, Byzantine: be, Partial: partial}, nil
}

// pair returns the rows of one kind and fraction (and size), defences off
// then on; either may be nil.
func (b *ByzantineExperiment) pair(kind string, pct float64, nodes int) (off, on *ByzantineRow) {
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.Kind == kind && r.FractionPct == pct && r.Honest+r.Sybils == nodes {
			if r.Defences {
				on = r
			} else {
				off = r
			}
		}
	}
	return off, on
}

// sizes returns the network sizes of the rows, in order.
func (b *ByzantineExperiment) sizes() []int {
	var out []int
	for _, r := range b.Rows {
		n := r.Honest + r.Sybils
		if len(out) == 0 || out[len(out)-1] != n {
			if !containsInt(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// harm is the tampered, forged and replayed copies honest nodes accepted.
func (r *ScenarioResult) harm() int64 {
	return r.TamperedAccepted + r.ForgedAccepted + r.ReplayedAccepted
}

// writeMarkdown writes the experiment's tables.
func (b *ByzantineExperiment) writeMarkdown(ew *errWriter) {
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	pct := func(v float64) string { return f(100*v, 2) + "%" }
	cell := func(r *ByzantineRow) string {
		if r == nil {
			return "– | – | – | –"
		}
		p := ""
		if r.Partial {
			p = " (partial)"
		}
		return fmt.Sprintf("%s%s | %s | %s | %d / %d", pct(r.HonestDelivery), p, f(float64(r.P50MS), 0), f(float64(r.P99MS), 0), r.harm(), r.Injected)
	}
	bans := func(r *ByzantineRow) string {
		if r == nil {
			return "–"
		}
		return fmt.Sprintf("%d / %d", r.SybilsBanned, r.HonestBanned)
	}
	ew.printf("%s\n\n", b.Setup)
	ew.printf("Delivery is the share of honest messages that reached every honest node; p50 and p99 are ms from publish to first receipt over every honest delivery; harm counts tampered, forged and replayed copies accepted by honest nodes, over the messages the adversaries made up or altered; bans counts the adversaries banned by at least one honest node, and the honest nodes banned by another (false positives).\n\n")
	if b.Name == ExperimentTestbed {
		ew.printf("| scenario | off: delivery | p50 | p99 | harm | on: delivery | p50 | p99 | harm | bans (adversaries / honest) |\n")
		ew.printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, name := range TestbedScenarios {
			var off, on *ByzantineRow
			for i := range b.Rows {
				if r := &b.Rows[i]; r.Kind == name {
					if r.Defences {
						on = r
					} else {
						off = r
					}
				}
			}
			if off == nil && on == nil {
				continue
			}
			ew.printf("| %s | %s | %s | %s |\n", name, cell(off), cell(on), bans(on))
		}
		return
	}
	for _, n := range b.sizes() {
		ew.printf("N = %d:\n\n", n)
		ew.printf("| adversaries | kind | off: delivery | p50 | p99 | harm | on: delivery | p50 | p99 | harm | bans (adversaries / honest) |\n")
		ew.printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range fractionsAt(n) {
			kinds := ByzantineKinds
			if p == 0 {
				kinds = []string{"none"}
			}
			for _, kind := range kinds {
				fp := round(100*float64(n*p/100)/float64(n), 1)
				off, on := b.pair(kind, fp, n)
				if off == nil && on == nil {
					continue
				}
				ew.printf("| %s%% | %s | %s | %s | %s |\n", f(fp, 0), kind, cell(off), cell(on), bans(on))
			}
		}
		ew.printf("\n")
	}
}

// writeJSON writes one line per row.
func (b *ByzantineExperiment) writeJSON(w io.Writer) error {
	for _, r := range b.Rows {
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("sim: experiment: %w", err)
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// NamedChart is a chart and the file name it is written under, after a
// prefix.
type NamedChart struct {
	Suffix string
	Chart  *Chart
}

// Charts draws the experiment: for byzantine, honest delivery and p99
// latency against the fraction of adversaries, one line per kind, solid
// with the defences on and dashed with them off, for each size; for the
// testbed, each scenario's p99 latency and delivery as bars, off and on.
func (b *ByzantineExperiment) Charts() []NamedChart {
	if b.Name == ExperimentTestbed {
		return b.testbedCharts()
	}
	var out []NamedChart
	for _, n := range b.sizes() {
		del := &Chart{Title: fmt.Sprintf("Honest delivery against adversaries, N = %d", n),
			Subtitle: "solid: defences on (strict signing, scoring); dashed: off",
			XLabel:   "adversaries, % of nodes", YLabel: "% of honest messages reaching every honest node", YMax: 100}
		lat := &Chart{Title: fmt.Sprintf("p99 latency against adversaries, N = %d", n),
			Subtitle: "solid: defences on (strict signing, scoring); dashed: off",
			XLabel:   "adversaries, % of nodes", YLabel: "p99 publish to first receipt, ms"}
		for _, kind := range ByzantineKinds {
			for _, def := range []bool{true, false} {
				name := kind + ", on"
				if !def {
					name = kind + ", off"
				}
				ds, ls := Series{Name: name, Dashed: !def}, Series{Name: name, Dashed: !def}
				for _, p := range fractionsAt(n) {
					k := kind
					if p == 0 {
						k = "none"
					}
					fp := round(100*float64(n*p/100)/float64(n), 1)
					off, on := b.pair(k, fp, n)
					r := on
					if !def {
						r = off
					}
					if r == nil {
						continue
					}
					ds.X, ds.Y = append(ds.X, fp), append(ds.Y, 100*r.HonestDelivery)
					if !math.IsNaN(float64(r.P99MS)) {
						ls.X, ls.Y = append(ls.X, fp), append(ls.Y, float64(r.P99MS))
					}
				}
				if len(ds.X) > 0 {
					del.Series = append(del.Series, ds)
				}
				if len(ls.X) > 0 {
					lat.Series = append(lat.Series, ls)
				}
			}
		}
		out = append(out, NamedChart{fmt.Sprintf("-delivery-n%d.svg", n), del}, NamedChart{fmt.Sprintf("-p99-n%d.svg", n), lat})
	}
	return out
}

func (b *ByzantineExperiment) testbedCharts() []NamedChart {
	var names []string
	for _, name := range TestbedScenarios {
		for _, r := range b.Rows {
			if r.Kind == name {
				names = append(names, name)
				break
			}
		}
	}
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = fmt.Sprintf("%d–%d %s", 3*i+1, 3*i+2, n)
	}
	sub := "left bar of each pair: defences off; right: on. " + strings.Join(labels, ", ")
	lat := &Chart{Title: "gossipsub v1.1 testbed: p99 latency", Subtitle: sub, XLabel: "scenario", YLabel: "p99 publish to first receipt, ms"}
	del := &Chart{Title: "gossipsub v1.1 testbed: honest delivery", Subtitle: sub, XLabel: "scenario", YLabel: "% of honest messages reaching every honest node", YMax: 100}
	for _, def := range []bool{false, true} {
		name, dx := "defences off", 1.0
		if def {
			name, dx = "defences on", 2.0
		}
		ls, ds := Series{Name: name, Bars: true}, Series{Name: name, Bars: true}
		for i, n := range names {
			for _, r := range b.Rows {
				if r.Kind == n && r.Defences == def {
					x := float64(3*i) + dx
					ds.X, ds.Y = append(ds.X, x), append(ds.Y, 100*r.HonestDelivery)
					if !math.IsNaN(float64(r.P99MS)) {
						ls.X, ls.Y = append(ls.X, x), append(ls.Y, float64(r.P99MS))
					}
				}
			}
		}
		lat.Series = append(lat.Series, ls)
		del.Series = append(del.Series, ds)
	}
	return []NamedChart{{"-p99.svg", lat}, {"-delivery.svg", del}}
}
