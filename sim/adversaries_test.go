package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/adversary"
	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// advConfig is a run of 300 nodes publishing 30 broadcasts 10 ms apart,
// with every core defence off (no signatures, no id verification), unless
// a test turns it on, and the given adversaries.
func advConfig(t *testing.T, degree int, spec string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Nodes = 300
	cfg.Degree = degree
	cfg.Broadcasts = 30
	cfg.Interval = 10 * time.Millisecond
	cfg.Gossip.VerifyIDs = false
	cfg.Gossip.Signing = gossip.SigningNone
	var err error
	if cfg.Adversaries, err = ParseAdversaries(spec); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// strict turns the defences on: strict signing (the simulator's cost
// model), which checks ids too.
func strict(cfg Config) Config {
	cfg.Gossip.Signing = gossip.SigningStrict
	cfg.Gossip.VerifyIDs = true
	return cfg
}

func advRun(t *testing.T, cfg Config, setup func(*Sim)) (*Report, *AdversaryReport) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Adversaries == nil {
		t.Fatal("no adversary report")
	}
	return r, r.Adversaries
}

// honestLatency runs cfg and returns the p99 of the latencies, in ms, of
// every first delivery at an honest node of a broadcast an honest node
// published (the publisher's own left out), and the run's reports; a run
// without adversaries counts every node honest.
func honestLatency(t *testing.T, cfg Config, setup func(*Sim)) (float64, *Report) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	advs := s.AdversaryNodes()
	type d struct {
		b  int
		at int64
	}
	var ds []d
	s.OnDeliver(func(x Delivery) {
		if advs[x.Node] == nil && x.From >= 0 {
			ds = append(ds, d{x.Broadcast, x.At})
		}
	})
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lat []float64
	for _, x := range ds {
		b := r.PerBroadcast[x.b]
		if advs[b.Publisher] == nil {
			lat = append(lat, float64(x.at)/1e6-b.PublishedAtMS)
		}
	}
	if len(lat) == 0 {
		return math.NaN(), r
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100], r
}

func TestParseAdversaries(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0.1:blackhole,0.01:spam=100", "0.1:blackhole,0.01:spam=100"},
		{"0.2:tamper,liar", "0.2:tamper,liar"},
		{"0.05:censor=1,0.05:delay=200ms", "0.05:censor=0000000000000001,0.05:delay=200ms"},
	} {
		a, err := ParseAdversaries(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if a.String() != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, a.String(), tc.want)
		}
		if b, err := ParseAdversaries(a.String()); err != nil || b.String() != a.String() {
			t.Errorf("%q does not round-trip: %v", a.String(), err)
		}
	}
	for _, bad := range []string{"blackhole", "0:blackhole", "1.5:tamper", "x:tamper", "0.1:", "0.1:teleport", "0.6:tamper,0.6:liar"} {
		if _, err := ParseAdversaries(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	cfg := advConfig(t, 8, "0.1:spam=10")
	cfg.Interval = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("rate mode without an interval: %v", err)
	}
	cfg = advConfig(t, 8, "0.1:censor=100000")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "target") {
		t.Errorf("censor of no node: %v", err)
	}
}

// TestAdversariesDeterministic: the same seed picks the same liars and
// gives the same report, byte for byte.
func TestAdversariesDeterministic(t *testing.T) {
	t.Parallel()
	cfg := advConfig(t, 8, "0.1:tamper,0.05:spam=50,0.05:forge=20")
	enc := func() []byte {
		r, _ := advRun(t, cfg, nil)
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(r); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if a, b := enc(), enc(); !bytes.Equal(a, b) {
		t.Error("two runs of one seed differ")
	}
}

func TestSimBlackhole(t *testing.T) {
	t.Parallel()
	_, off := advRun(t, advConfig(t, 3, "0.3:blackhole"), nil)
	if off.HonestAllReached == 1 || off.Did.Dropped == 0 {
		t.Errorf("off (degree 3): blackholes cut nobody off: %+v", off)
	}
	_, on := advRun(t, advConfig(t, 16, "0.3:blackhole"), nil)
	if on.HonestAllReached != 1 {
		t.Errorf("on (degree 16): honest reach %v", on.HonestReliability)
	}
}

func TestSimTamper(t *testing.T) {
	t.Parallel()
	_, off := advRun(t, advConfig(t, 8, "0.2:tamper"), nil)
	if off.TamperedAccepted == 0 || off.Did.Tampered == 0 {
		t.Errorf("off: no tampered body accepted: %+v", off)
	}
	cfg := advConfig(t, 8, "0.2:tamper")
	cfg.Gossip.VerifyIDs = true // ids checked, unsigned
	_, on := advRun(t, cfg, nil)
	_, signed := advRun(t, strict(cfg), nil)
	if signed.TamperedAccepted != 0 || signed.AdversaryAccepted != 0 || signed.Rejected == 0 || signed.HonestAllReached != 1 {
		t.Errorf("on (strict signing): %+v", signed)
	}
	if on.TamperedAccepted != 0 || on.HonestAllReached != 1 || on.Rejected == 0 {
		t.Errorf("on: %+v", on)
	}
}

func TestSimForge(t *testing.T) {
	t.Parallel()
	_, off := advRun(t, advConfig(t, 8, "0.05:forge=50"), nil)
	if off.ForgedAccepted == 0 || off.Did.Forged == 0 {
		t.Errorf("off: no forgery accepted: %+v", off)
	}
	if off.HonestAllReached != 1 {
		t.Errorf("forgers stopped honest messages: %+v", off)
	}
	_, on := advRun(t, strict(advConfig(t, 8, "0.05:forge=50")), nil)
	if on.ForgedAccepted != 0 || on.Did.Forged == 0 || on.Rejected == 0 || on.HonestAllReached != 1 {
		t.Errorf("on (strict signing): %+v", on)
	}
}

func TestSimReplay(t *testing.T) {
	t.Parallel()
	// Three seconds of broadcasts against a one-second window: replays of
	// messages past it come in the last two.
	cfg := advConfig(t, 8, "0.05:replay=100")
	cfg.Broadcasts = 300
	cfg.Gossip.SeenTTL = time.Second
	cfg.Gossip.MaxFuture = 0
	_, off := advRun(t, cfg, nil)
	if off.ReplayedAccepted == 0 || off.Did.Replayed == 0 {
		t.Errorf("off: no replay accepted: %+v", off)
	}
	_, on := advRun(t, strict(cfg), nil)
	if on.ReplayedAccepted != 0 || on.Did.Replayed == 0 || on.HonestAllReached != 1 {
		t.Errorf("on (strict signing): %+v", on)
	}
}

func TestSimSpam(t *testing.T) {
	t.Parallel()
	r, off := advRun(t, advConfig(t, 8, "0.01:spam=200"), nil)
	if off.Did.Spammed == 0 || off.AdversaryAccepted < int64(off.Did.Spammed) {
		t.Errorf("off: honest nodes did not deliver the spam: %+v", off)
	}
	if off.HonestAllReached != 1 {
		t.Errorf("spam stopped honest messages: %+v", off)
	}
	_ = r
}

func TestSimSpamInvalid(t *testing.T) {
	t.Parallel()
	_, off := advRun(t, advConfig(t, 8, "0.01:spam-invalid=200"), nil)
	if off.AdversaryAccepted == 0 {
		t.Errorf("off: no invalid message accepted: %+v", off)
	}
	cfg := advConfig(t, 8, "0.01:spam-invalid=200")
	cfg.Gossip.VerifyIDs = true // ids checked, unsigned
	_, on := advRun(t, cfg, nil)
	_, signed := advRun(t, strict(cfg), nil)
	if signed.TamperedAccepted != 0 || signed.AdversaryAccepted != 0 || signed.Rejected == 0 || signed.HonestAllReached != 1 {
		t.Errorf("on (strict signing): %+v", signed)
	}
	if on.AdversaryAccepted != 0 || on.Rejected == 0 || on.HonestAllReached != 1 {
		t.Errorf("on: %+v", on)
	}
}

func TestSimDelay(t *testing.T) {
	t.Parallel()
	sparse := advConfig(t, 3, "0.3:delay=500ms")
	sparse.Adversaries = nil
	base, _ := honestLatency(t, sparse, nil)
	slow, r := honestLatency(t, advConfig(t, 3, "0.3:delay=500ms"), nil)
	if r.Adversaries.Did.Delayed == 0 || !(slow > base+250) {
		t.Errorf("off (degree 3): honest p99 %v ms with delayers, %v ms without", slow, base)
	}
	dense := advConfig(t, 16, "0.3:delay=500ms")
	dense.Adversaries = nil
	base, _ = honestLatency(t, dense, nil)
	slow, _ = honestLatency(t, advConfig(t, 16, "0.3:delay=500ms"), nil)
	if !(slow < base+100) {
		t.Errorf("on (degree 16): honest p99 %v ms with delayers, %v ms without", slow, base)
	}
}

func TestSimCensor(t *testing.T) {
	t.Parallel()
	fromOne := func(s *Sim) { s.SetPublishers(func(int) int { return 0 }) }
	_, off := advRun(t, advConfig(t, 3, "0.3:censor=1"), fromOne)
	if off.HonestAllReached == 1 || off.Did.Censored == 0 {
		t.Errorf("off (degree 3): censors stopped nothing: %+v", off)
	}
	_, on := advRun(t, advConfig(t, 16, "0.3:censor=1"), fromOne)
	if on.HonestAllReached != 1 {
		t.Errorf("on (degree 16): %+v", on)
	}
}

func TestSimEclipse(t *testing.T) {
	t.Parallel()
	fromOne := func(s *Sim) { s.SetPublishers(func(b int) int { return b % 2 * 7 }) } // the target and node 7
	cfg := advConfig(t, 8, "0.1:eclipse=1")
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	advs := s.AdversaryNodes()
	for _, p := range s.Graph().Peers(0) {
		if advs[int(p-1)] == nil {
			t.Fatalf("the target's peer %v is not an eclipse node", p)
		}
	}
	_, off := advRun(t, cfg, fromOne)
	if off.HonestAllReached != 0 {
		t.Errorf("eclipsed: %v of honest broadcasts reached every honest node, want none: %+v", off.HonestAllReached, off)
	}
	// Too few sybils to surround the target: some of its links are honest.
	_, on := advRun(t, advConfig(t, 8, "0.01:eclipse=1"), fromOne)
	if on.HonestAllReached != 1 {
		t.Errorf("target with honest links: %+v", on)
	}
}

func TestSimLiar(t *testing.T) {
	t.Parallel()
	lazy := func(spec string) Config {
		cfg := advConfig(t, 8, spec)
		cfg.Gossip.Strategy = gossip.Lazy
		cfg.Gossip.LazyD = 1
		cfg.Gossip.AntiEntropy = -1
		return cfg
	}
	honest := lazy("0.25:liar")
	honest.Adversaries = nil
	base, _ := honestLatency(t, honest, nil)
	lying, r := honestLatency(t, lazy("0.25:liar"), nil)
	t.Logf("honest p99 %v ms with liars, %v ms without", lying, base)
	if r.Adversaries.Did.Lies == 0 || !(lying > base+float64(gossip.DefaultConfig().LazyIWantTimeout/time.Millisecond)) {
		t.Errorf("liars did not delay repair by a broken promise: honest p99 %v ms with them, %v ms without", lying, base)
	}
}

// guardedRun runs cfg with every honest node behind a scoring guard of
// the default parameters (bans outlasting the run) and the adversaries
// around bare cores, and returns the guards by node index.
func guardedRun(t *testing.T, cfg Config) (*Report, map[int]*score.Guard, *Graph, []adversary.Modes) {
	t.Helper()
	g, err := BuildGraph(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Graph = g
	if cfg.Gossip.Signing == gossip.SigningStrict && cfg.Gossip.Auth == nil {
		cfg.Gossip.Auth = gossip.NewModelAuth(cfg.Seed)
	}
	assign := cfg.Adversaries.Assign(g, cfg.Seed)
	sh, err := gossip.Share(cfg.Gossip)
	if err != nil {
		t.Fatal(err)
	}
	params := score.DefaultParams()
	params.BanDuration, params.RetainScore = 24*time.Hour, 24*time.Hour
	guards := map[int]*score.Guard{}
	s, err := NewWith(cfg, func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol {
		c := gossip.NewShared(sh, wire.NodeID(i)+1, rng)
		if assign[i] != nil {
			c.SetPeers(peers)
			return c
		}
		gd, err := score.NewGuard(c, params)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range peers {
			gd.PeerUp(0, q, &gossip.Output{})
		}
		guards[i] = gd
		return gd
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r, guards, g, assign
}

// shutOut returns the honest peers of adversary a that neither banned it
// nor score it below 0 at the end (every one, without guards).
func shutOut(guards map[int]*score.Guard, assign []adversary.Modes, g *Graph, a int, now int64) (kept []int) {
	for _, p := range g.Peers(a) {
		if assign[p-1] != nil {
			continue
		}
		gd := guards[int(p-1)]
		if gd == nil {
			kept = append(kept, int(p-1))
			continue
		}
		banned := false
		for _, b := range gd.Bans(now) {
			banned = banned || b.Peer == wire.NodeID(a)+1
		}
		if !banned && gd.Score(wire.NodeID(a)+1, now) >= 0 {
			kept = append(kept, int(p-1))
		}
	}
	return kept
}

func TestSimLiarGuarded(t *testing.T) {
	t.Parallel()
	cfg := advConfig(t, 8, "0.05:liar")
	cfg.Gossip.VerifyIDs = true
	cfg.Gossip.Strategy = gossip.Lazy
	cfg.Broadcasts = 200
	cfg.Interval = 50 * time.Millisecond
	r, guards, g, assign := guardedRun(t, cfg)
	if a := r.Adversaries; a.HonestAllReached != 1 {
		t.Errorf("guarded lazy push with liars: %+v", a)
	}
	end := int64(cfg.Broadcasts) * int64(cfg.Interval)
	for i := range g.N() {
		if assign[i] == nil {
			continue
		}
		// A peer that never asked the liar for anything has no broken
		// promise to hold against it: most must.
		if kept := shutOut(guards, assign, g, i, end); 2*len(kept) > len(g.Peers(i)) {
			t.Errorf("liar %d: honest peers %v of %v neither banned it nor score it below 0", i, kept, g.Peers(i))
		}
	}
}

// TestSimSignedLiarsGuarded: with strict signing and the scoring guard,
// forgers, invalid spammers and tamperers get nothing accepted, every
// honest broadcast reaches every honest node, and most of each liar's
// honest peers ban it or score it below 0.
func TestSimSignedLiarsGuarded(t *testing.T) {
	t.Parallel()
	cfg := strict(advConfig(t, 8, "0.05:forge=50,0.05:spam-invalid=200,0.1:tamper"))
	cfg.Broadcasts = 200
	r, guards, g, assign := guardedRun(t, cfg)
	a := r.Adversaries
	t.Logf("%d broadcasts, %d arrivals: %+v", len(r.PerBroadcast), r.Events, *a)
	if a.HonestAllReached != 1 || a.ForgedAccepted != 0 || a.AdversaryAccepted != 0 || a.TamperedAccepted != 0 {
		t.Errorf("guarded, signed: %+v", a)
	}
	end := int64(cfg.Broadcasts) * int64(cfg.Interval)
	for i := range g.N() {
		if assign[i] == nil {
			continue
		}
		if kept := shutOut(guards, assign, g, i, end); 2*len(kept) > len(g.Peers(i)) {
			t.Errorf("%s node %d: honest peers %v of %v neither banned it nor score it below 0", assign[i], i, kept, g.Peers(i))
		}
	}
}
