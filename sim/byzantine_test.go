package sim

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// smallTestbed is the testbed at test size: 200 honest nodes (20
// publishers), 100 sybils, 2 s of publishing at 120 messages/s, and a
// 10 s calm phase for the covert flash.
var smallTestbed = TestbedSize{Honest: 200, Sybils: 100, Duration: 2 * time.Second, Calm: 10 * time.Second}

func runTestbedScenario(t *testing.T, name string, defences bool) *ScenarioResult {
	t.Helper()
	sc, err := testbedScenario(name, smallTestbed, 1, defences)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RunScenario(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if r.Partial || r.Messages != 240 {
		t.Fatalf("%s: partial %v, %d messages measured, want 240", name, r.Partial, r.Messages)
	}
	return r
}

// With the defences on, every testbed scenario delivers every honest
// message to every honest node, and no honest node accepts a forged,
// tampered or replayed copy.
func TestTestbedDefencesOnDeliverEverything(t *testing.T) {
	t.Parallel()
	for _, name := range TestbedScenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runTestbedScenario(t, name, true)
			if r.HonestDelivery != 1 || r.Reach != 1 {
				t.Errorf("%s with defences: honest delivery %v, reach %v; want 1 and 1", name, r.HonestDelivery, r.Reach)
			}
			if r.harm() != 0 || r.HonestBanned != 0 {
				t.Errorf("%s with defences: %d forged/tampered/replayed copies accepted, %d honest nodes banned; want 0", name, r.harm(), r.HonestBanned)
			}
			if name == "cold-boot" || name == "covert-flash" {
				// The liars break every promise: each is banned.
				if r.SybilsBanned != r.Sybils {
					t.Errorf("%s with defences: %d of %d liars banned", name, r.SybilsBanned, r.Sybils)
				}
			}
		})
	}
}

// With the defences off, an eclipse holds every slot of its targets and
// cuts them off: honest delivery falls.
func TestTestbedDefencesOffShowHarm(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"eclipse-target", "eclipse-publishers"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runTestbedScenario(t, name, false)
			if r.HonestDelivery == 1 {
				t.Errorf("%s without defences: every honest message reached every honest node; the eclipse did nothing", name)
			}
		})
	}
}

// A forger's messages under honest origins are accepted without
// signatures and never with them.
func TestByzantineForgeHarmOffNoneOn(t *testing.T) {
	t.Parallel()
	for _, def := range []bool{false, true} {
		sc, err := byzantineScenario(300, "forge", 10, 1, def)
		if err != nil {
			t.Fatal(err)
		}
		sc.Duration = time.Second
		r, err := RunScenario(context.Background(), sc)
		if err != nil {
			t.Fatal(err)
		}
		if r.Injected == 0 {
			t.Fatalf("defences %v: the forgers made nothing up", def)
		}
		switch {
		case !def && r.ForgedAccepted == 0:
			t.Errorf("without defences: none of %d forged messages accepted", r.Injected)
		case def && (r.ForgedAccepted != 0 || r.HonestDelivery != 1):
			t.Errorf("with defences: %d forged copies accepted, honest delivery %v; want 0 and 1", r.ForgedAccepted, r.HonestDelivery)
		}
	}
}

// The same scenario and seed give the same result, and the experiment's
// rows do not depend on how many workers ran them.
func TestByzantineDeterministic(t *testing.T) {
	t.Parallel()
	var cells []byzantineCell
	for _, kind := range []string{"blackhole", "tamper", "liar"} {
		sc, err := byzantineScenario(200, kind, 20, 3, true)
		if err != nil {
			t.Fatal(err)
		}
		sc.Duration = time.Second
		cells = append(cells, byzantineCell{sc: sc, kind: kind})
	}
	one, p1, err := runCells(context.Background(), ExperimentByzantine, cells, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	two, p2, err := runCells(context.Background(), ExperimentByzantine, cells, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p1 || p2 || len(one) != 3 {
		t.Fatalf("partial %v %v, %d rows", p1, p2, len(one))
	}
	if !reflect.DeepEqual(one, two) {
		t.Errorf("rows differ with 1 and 3 workers:\n%+v\n%+v", one, two)
	}
	cells[0].sc.Seed = 4
	other, _, err := runCells(context.Background(), ExperimentByzantine, cells[:1], 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(other[0].ScenarioResult, one[0].ScenarioResult) {
		t.Errorf("seeds 3 and 4 gave the same result: %+v", other[0].ScenarioResult)
	}
}

// SybilGraph gives sybils the links asked for and no link among
// themselves, and leaves eclipse targets the honest links their slots
// allow.
func TestSybilGraph(t *testing.T) {
	t.Parallel()
	const h, s = 300, 50
	honestPeers := func(g *Graph, i int) (honest, sybil int) {
		for _, p := range g.Peers(i) {
			if int(p)-1 < h {
				honest++
			} else {
				sybil++
			}
		}
		return honest, sybil
	}
	for _, tc := range []struct {
		name           string
		outbound, cut  bool
		wantTargetHon  func(int) bool
		targetLinksPer int
	}{
		{"no quota", false, false, func(n int) bool { return n >= 8 }, 0},
		{"outbound quota", true, false, func(n int) bool { return n == 8 }, 0},
		{"cut", false, true, func(n int) bool { return n == 0 }, 0},
		{"two of three targets each", true, false, func(n int) bool { return n == 8 }, 2},
	} {
		targets := []int{0, 1, 2}
		g, err := SybilGraph(SybilSpec{Honest: h, Degree: 16, Sybils: s, SybilLinks: 10, Targets: targets,
			TargetLinks: tc.targetLinksPer, TargetsOutbound: tc.outbound, TargetsCut: tc.cut}, rand.New(rand.NewPCG(7, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if g.N() != h+s {
			t.Fatalf("%s: %d nodes, want %d", tc.name, g.N(), h+s)
		}
		per := len(targets)
		if tc.targetLinksPer > 0 {
			per = tc.targetLinksPer
		}
		for i := h; i < h+s; i++ {
			hon, syb := honestPeers(g, i)
			if syb != 0 || hon < 10 || hon > 10+per {
				t.Errorf("%s: sybil %d has %d honest and %d sybil peers, want 10..%d and 0", tc.name, i, hon, syb, 10+per)
			}
			got := 0
			for _, p := range g.Peers(i) {
				if slices.Contains(targets, int(p)-1) {
					got++
				}
			}
			if got < per {
				t.Errorf("%s: sybil %d links to %d targets, want at least %d", tc.name, i, got, per)
			}
		}
		for _, tg := range targets {
			hon, _ := honestPeers(g, tg)
			if !tc.wantTargetHon(hon) {
				t.Errorf("%s: target %d has %d honest peers", tc.name, tg, hon)
			}
		}
	}
	if _, err := SybilGraph(SybilSpec{Honest: 10, Degree: 4, Sybils: 5}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("sybils with no link to any honest node: no error")
	}
}

// denseTestbed is the testbed at the paper's density but test size: 100
// honest nodes (10 publishers) and 400 sybils, 4 per honest node, so that
// an honest node has about 80 sybil links beside its 16 honest ones, as
// in the full testbed; half a second of publishing.
var denseTestbed = TestbedSize{Honest: 100, Sybils: 400, Duration: 500 * time.Millisecond}

// With the defences on, the scenarios whose harm comes with the sybils'
// density meet the testbed's target at test size: every honest message
// reaches every honest node, p99 within a second, no honest node banned.
// Without eager slots on the links a node dialed (D_out), the sybils'
// links hold most eager slots and the eclipsed publishers' messages leave
// by lottery; without promises charged at once, the liars of a cold boot
// hold each message up for seconds.
func TestTestbedDenseMeetsTarget(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"eclipse-publishers", "censorship", "cold-boot"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := testbedScenario(name, denseTestbed, 1, true)
			if err != nil {
				t.Fatal(err)
			}
			// Two seconds of drain, not five: a message later than that
			// would miss the target anyway, and the test stays small.
			sc.Drain = 2 * time.Second
			r, err := RunScenario(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: delivery %v, p50 %v ms, p99 %v ms, %d sybils banned", name, r.HonestDelivery, r.P50MS, r.P99MS, r.SybilsBanned)
			if r.Partial || r.Messages != 60 {
				t.Fatalf("partial %v, %d messages, want 60", r.Partial, r.Messages)
			}
			if r.HonestDelivery != 1 || r.P99MS > 1000 || r.HonestBanned != 0 {
				t.Errorf("%s with defences at 4 sybils per honest node: delivery %v, p99 %v ms, %d honest banned; want 1, at most 1000 ms, 0", name, r.HonestDelivery, r.P99MS, r.HonestBanned)
			}
		})
	}
}

// The adversaries together make up as many messages at every size: at
// twice the base size, each of twice as many adversaries runs at half the
// rate (a decimal one for forge and spam), spread over two phases, and
// the total made up is the base size's, which is the rule's count: the
// base size's adversaries times their emissions in the run.
func TestByzantineLoadIndependentOfN(t *testing.T) {
	t.Parallel()
	const load, pct = 100, 33
	for _, tc := range []struct {
		kind string
		base float64
	}{
		{"forge", ByzantineForgeRate},
		{"spam", ByzantineSpamRate},
		{"spam-invalid", ByzantineInvalidRate},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			injected := map[int]int64{}
			for _, n := range []int{load, 2 * load} {
				sc, err := byzantineScenarioAt(n, load, tc.kind, pct, 5, true)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := sc.Modes.Get(sc.Modes[0].Kind)
				if want := tc.base * load / float64(n); m.Rate != want {
					t.Fatalf("N = %d: each adversary's rate %v, want %v", n, m.Rate, want)
				}
				if want := n / load; sc.Phases != want {
					t.Fatalf("N = %d: %d phases, want %d", n, sc.Phases, want)
				}
				r, err := RunScenario(context.Background(), sc)
				if err != nil {
					t.Fatal(err)
				}
				injected[n] = r.Injected
			}
			// At the base size the adversaries all emit at k/base s, for
			// k = 1, 2, … up to the run's end (publishing, then the
			// drain; the schedules start at 0).
			sc, _ := byzantineScenarioAt(load, load, tc.kind, pct, 5, true)
			end := sc.publishTime(sc.Messages()-1) + int64(sc.Drain)
			per := int64(float64(end) * tc.base / 1e9)
			if want := int64(load*pct/100) * per; injected[load] != want {
				t.Errorf("N = %d: %d made up, want %d adversaries × %d", load, injected[load], load*pct/100, per)
			}
			if injected[2*load] != injected[load] {
				t.Errorf("N = %d made up %d, N = %d made up %d: the adversaries' load depends on N", 2*load, injected[2*load], load, injected[load])
			}
		})
	}
}

// Heavy cells (honest nodes keeping millions of made-up messages) run one
// at a time, the light ones beside them; at N = 10,000 the scenarios whose
// made-up messages honest nodes accept (forge without the defences, spam)
// are heavy and the rest are not, and at N = 1,000 none is.
func TestByzantineHeavyCellsOneAtATime(t *testing.T) {
	t.Parallel()
	cells := []byzantineCell{{heavy: true}, {heavy: true}, {}, {heavy: true}, {}}
	taken := make([]bool, len(cells))
	take := func(heavyRunning bool, want int) {
		t.Helper()
		k := nextCell(cells, taken, heavyRunning)
		if k != want {
			t.Fatalf("next cell %d (a heavy one running: %v), want %d", k, heavyRunning, want)
		}
		if k >= 0 {
			taken[k] = true
		}
	}
	take(false, 0) // the first, heavy
	take(true, 2)  // the light ones beside it
	take(true, 4)
	take(true, -2) // only heavy ones left: wait
	take(false, 1) // the first one done: the next heavy
	take(true, -2)
	take(false, 3)
	take(false, -1)

	for _, tc := range []struct {
		n     int
		kind  string
		def   bool
		heavy bool
	}{
		{10_000, "forge", false, true},
		{10_000, "forge", true, false},
		{10_000, "spam", false, true},
		{10_000, "spam", true, true},
		{10_000, "spam-invalid", false, false},
		{10_000, "tamper", false, false},
		{1_000, "forge", false, false},
		{1_000, "spam", true, false},
	} {
		sc, err := byzantineScenario(tc.n, tc.kind, 33, 1, tc.def)
		if err != nil {
			t.Fatal(err)
		}
		if got := madeUpPairs(&sc) > heavyPairs; got != tc.heavy {
			t.Errorf("N = %d, %s, defences %v: heavy %v (%d pairs), want %v", tc.n, tc.kind, tc.def, got, madeUpPairs(&sc), tc.heavy)
		}
	}
	for _, pct := range ByzantineFractions {
		for _, kind := range ByzantineKinds {
			for _, def := range []bool{false, true} {
				sc, err := byzantineScenario(1_000, kind, pct, 1, def)
				if err != nil {
					t.Fatal(err)
				}
				if p := madeUpPairs(&sc); p > heavyPairs {
					t.Errorf("N = 1,000, %d%% %s, defences %v: heavy (%d pairs)", pct, kind, def, p)
				}
			}
		}
	}
}
