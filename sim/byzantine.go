package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"gossipmesh/adversary"
	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// Scenario is one run with honest nodes and sybils: honest nodes run the
// gossip core (inside a scoring guard, with strict signing, when Defences
// is set), sybils run an adversary.Node around a core. Honest nodes
// 0..Publishers−1 publish in turn: CalmRate messages a second for Calm,
// then Rate a second for Duration; the run goes on for Drain after the
// last publish, and what has not arrived by then has not arrived. Only
// the messages published after Calm are measured. Start from a scenario
// of the byzantine or testbed experiment and change what you need.
type Scenario struct {
	// Name labels the scenario in tables.
	Name string
	// Overlay is the topology: honest nodes, sybils and their links.
	Overlay SybilSpec
	// Mixed, when set, replaces Overlay's links by one random undirected
	// graph of mean degree Overlay.Degree over every node, honest or not,
	// so that the adversaries sit at random places with ordinary degrees
	// (Overlay.SybilLinks and Targets are then unused).
	Mixed bool
	// Gossip configures every core, honest and sybil alike (a sybil's
	// core is what it wraps: it behaves like an honest node until its
	// modes say otherwise). Its signing policy and Auth are set from
	// Defences.
	Gossip gossip.Config
	// Latency is every link's delay.
	Latency Latency
	// Seed seeds the overlay, the network and every node.
	Seed uint64
	// Publishers, Rate and Duration are the measured publishing: honest
	// nodes 0..Publishers−1 publish in turn, one message every 1/Rate
	// seconds, for Duration (so Rate × Duration messages).
	Publishers int
	Rate       float64
	Duration   time.Duration
	// Calm, when positive, comes first: CalmRate messages a second for
	// Calm, during which the sybils behave (their modes are off), then
	// they all attack at once (covert flash). Calm messages are not
	// measured.
	Calm     time.Duration
	CalmRate float64
	// Drain is how long the run goes on after the last publish.
	Drain time.Duration
	// Modes is what every sybil does (after Calm). Empty: sybils are
	// plain cores, honest in all but name, which is the baseline.
	Modes adversary.Modes
	// Phases spreads the sybils' rate modes (forge, spam, spam-invalid,
	// replay) over that many evenly spaced phases of their period: sybil
	// j (from 0, in node order) emits first ((j mod Phases) + 1)/Phases
	// of a period after it starts (adversary.Node.SetPhase). 0 or 1 (the
	// default): all in step, one period after the start. Many sybils at a
	// rate below the default's then share one steady load instead of
	// emitting all at once, deterministically (no random source).
	Phases int
	// Defences turns on strict signing (the simulator's signature model,
	// gossip.ModelAuth) and wraps every honest core in a score.Guard with
	// Score, and keeps Gossip.LazyDOut (eager slots on dialed links). Off:
	// signing none, no guard, LazyDOut 0.
	Defences bool
	Score    score.Params
}

// Messages is how many messages the measured schedule publishes.
func (sc *Scenario) Messages() int { return int(math.Round(sc.Rate * sc.Duration.Seconds())) }

// calmMessages is how many the calm phase publishes.
func (sc *Scenario) calmMessages() int {
	if sc.Calm <= 0 {
		return 0
	}
	return int(math.Round(sc.CalmRate * sc.Calm.Seconds()))
}

// publishTime is the virtual time of message b (calm ones first).
func (sc *Scenario) publishTime(b int) int64 {
	if k := sc.calmMessages(); b < k {
		return int64(float64(b) / sc.CalmRate * 1e9)
	} else if k > 0 {
		b -= k
		return int64(sc.Calm) + int64(float64(b)/sc.Rate*1e9)
	}
	return int64(float64(b) / sc.Rate * 1e9)
}

// Validate reports a scenario that cannot run.
func (sc *Scenario) Validate() error {
	if sc.Mixed {
		// One random graph: only the counts and the degree matter.
		o := SybilSpec{Honest: sc.Overlay.Honest, Degree: sc.Overlay.Degree}
		if err := o.Validate(); err != nil {
			return err
		}
		if sc.Overlay.Sybils < 0 || uint64(sc.Overlay.Honest)+uint64(sc.Overlay.Sybils) > MaxNodes {
			return fmt.Errorf("sim: scenario %s: %d sybils", sc.Name, sc.Overlay.Sybils)
		}
	} else if err := sc.Overlay.Validate(); err != nil {
		return err
	}
	switch {
	case sc.Publishers < 1 || sc.Publishers > sc.Overlay.Honest:
		return fmt.Errorf("sim: scenario %s: publishers must be in 1..%d honest nodes, got %d", sc.Name, sc.Overlay.Honest, sc.Publishers)
	case !(sc.Rate > 0) || sc.Rate > 1e6:
		return fmt.Errorf("sim: scenario %s: rate must be in (0, 1e6] messages/s, got %v", sc.Name, sc.Rate)
	case sc.Messages() < 1:
		return fmt.Errorf("sim: scenario %s: %v at %v/s publishes nothing", sc.Name, sc.Duration, sc.Rate)
	case sc.Calm < 0 || sc.Calm > 0 && !(sc.CalmRate > 0 && sc.CalmRate <= 1e6):
		return fmt.Errorf("sim: scenario %s: a calm phase needs a duration ≥ 0 and a rate in (0, 1e6], got %v at %v/s", sc.Name, sc.Calm, sc.CalmRate)
	case sc.Drain < 0:
		return fmt.Errorf("sim: scenario %s: drain must not be negative, got %v", sc.Name, sc.Drain)
	case sc.Phases < 0 || sc.Phases > max(1, sc.Overlay.Sybils):
		return fmt.Errorf("sim: scenario %s: phases must be in 0..%d (one per sybil at most), got %d", sc.Name, max(1, sc.Overlay.Sybils), sc.Phases)
	case sc.Mixed && sc.Overlay.Degree >= sc.Overlay.Honest+sc.Overlay.Sybils:
		return fmt.Errorf("sim: scenario %s: degree %d needs more nodes", sc.Name, sc.Overlay.Degree)
	}
	if err := sc.Modes.Validate(); err != nil {
		return fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
	}
	if sc.Defences {
		if err := sc.Score.Validate(); err != nil {
			return fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
		}
	}
	return nil
}

// setPhase gives the j-th sybil its phase (Phases).
func (sc *Scenario) setPhase(a *adversary.Node, j int) {
	if sc.Phases > 1 {
		a.SetPhase(float64(j%sc.Phases+1) / float64(sc.Phases))
	}
}

// flash is a sybil that behaves until at, then switches its adversary on
// with modes: the covert flash attack. It asks for a tick at the switch,
// so that a rate mode (spam) starts on time even on an idle node.
type flash struct {
	*adversary.Node
	at    int64
	modes adversary.Modes
}

func (f *flash) arm(now int64) {
	if f.modes != nil && now >= f.at {
		f.Node.SetModes(f.modes)
		f.modes = nil
	}
}

func (f *flash) Step(now int64, from wire.NodeID, fr gossip.Frame, out *gossip.Output) {
	f.arm(now)
	f.Node.Step(now, from, fr, out)
}

func (f *flash) Tick(now int64, out *gossip.Output) {
	f.arm(now)
	f.Node.Tick(now, out)
}

func (f *flash) Publish(now int64, body []byte, out *gossip.Output) (*wire.Message, error) {
	f.arm(now)
	return f.Node.Publish(now, body, out)
}

func (f *flash) NextTick() int64 { return f.next(f.Node.NextTick()) }
func (f *flash) NextWake() int64 { return f.next(f.Node.NextWake()) }

func (f *flash) next(t int64) int64 {
	if f.modes != nil && (t == 0 || f.at < t) {
		return f.at
	}
	return t
}

// ScenarioResult is what a scenario measured at the honest nodes.
type ScenarioResult struct {
	Scenario string `json:"scenario"`
	Defences bool   `json:"defences"`
	Honest   int    `json:"honest"`
	Sybils   int    `json:"sybils"`
	Seed     uint64 `json:"seed"`
	// Messages is how many honest messages were published.
	Messages int `json:"messages"`
	// HonestDelivery is the fraction of them that reached every honest
	// node (with the body its publisher sent) by the end of the run.
	HonestDelivery float64 `json:"honest_delivery"`
	// Reach is the fraction of (message, honest node other than its
	// publisher) pairs delivered.
	Reach float64 `json:"reach"`
	// P50MS, P99MS and MaxMS are latencies from publish to first receipt
	// over every honest delivery (publishers' own left out), in
	// milliseconds, to the millisecond.
	P50MS Millis `json:"p50_ms"`
	P99MS Millis `json:"p99_ms"`
	MaxMS Millis `json:"max_ms"`
	// Harm done at honest nodes: deliveries of a copy of an honest
	// message with another body, origin, sequence or publish time
	// (tampered), of a message claiming an honest origin that it never
	// published (forged), and second deliveries of one message
	// (replayed). Sybil messages delivered (their own publishes, spam
	// included) are counted apart: they are valid, and not harm.
	TamperedAccepted int64 `json:"tampered_accepted"`
	ForgedAccepted   int64 `json:"forged_accepted"`
	ReplayedAccepted int64 `json:"replayed_accepted"`
	SybilDelivered   int64 `json:"sybil_delivered"`
	// Injected is how many messages the sybils made up or altered
	// (adversary.Stats: tampered, forged, replayed and spammed), the
	// count the accepted ones are out of.
	Injected int64 `json:"injected"`
	// Rejected counts messages honest nodes rejected (EventRejected).
	Rejected int64 `json:"rejected"`
	// SybilsBanned is how many sybils at least one honest node banned;
	// HonestBanned how many honest nodes another honest node banned
	// (false positives). Both 0 without defences.
	SybilsBanned int `json:"sybils_banned"`
	HonestBanned int `json:"honest_banned"`
	// Partial marks a run stopped early.
	Partial bool `json:"partial,omitempty"`
}

// Millis is a latency in milliseconds, NaN when there was nothing to
// measure (no honest delivery), which JSON writes as null.
type Millis float64

// MarshalJSON writes m, or null for NaN.
func (m Millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(m), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (m *Millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Millis(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*m = Millis(v)
	return err
}

// latencyBuckets is the latency histogram's range: 1 ms buckets up to
// five minutes, the longest a run drains, and one for anything later.
const latencyBuckets = 300_000

// honestObserver classifies every event at honest nodes.
type honestObserver struct {
	honest int
	// Honest messages in publish order: their canonical copy and time.
	ids   map[wire.MsgID]int
	canon []*wire.Message
	pubAt []int64
	pub   []int    // publisher of each
	got   []bitset // the honest nodes each reached
	reach []int32  // how many, publisher included
	hist  []int64  // latency histogram, 1 ms buckets
	skip  int      // the first skip messages (calm) are not measured
	res   *ScenarioResult
}

func (o *honestObserver) event(node int, at int64, ev *gossip.Event) {
	if node >= o.honest || ev.Msg == nil {
		return
	}
	m := ev.Msg
	switch ev.Kind {
	case gossip.EventPublished:
		o.ids[m.ID] = len(o.canon)
		o.canon = append(o.canon, m)
		o.pubAt = append(o.pubAt, at)
		o.pub = append(o.pub, node)
		b := newBitset(o.honest)
		b.set(uint32(node))
		o.got = append(o.got, b)
		o.reach = append(o.reach, 1)
	case gossip.EventDelivered:
		b, ok := o.ids[m.ID]
		switch {
		case !ok && int(m.Origin) >= 1 && int(m.Origin) <= o.honest:
			o.res.ForgedAccepted++
		case !ok:
			o.res.SybilDelivered++
		case !sameMessage(o.canon[b], m):
			o.res.TamperedAccepted++
		case o.got[b].has(uint32(node)):
			o.res.ReplayedAccepted++
		default:
			o.got[b].set(uint32(node))
			o.reach[b]++
			if b >= o.skip {
				o.hist[min((at-o.pubAt[b])/int64(time.Millisecond), latencyBuckets)]++
			}
		}
	case gossip.EventRejected:
		o.res.Rejected++
	}
}

// sameMessage reports whether b is a faithful copy of a: everything the
// origin signs is the same.
func sameMessage(a, b *wire.Message) bool {
	return a == b || a.ID == b.ID && a.Origin == b.Origin && a.Seq == b.Seq && a.PublishedAt == b.PublishedAt && bytes.Equal(a.Body, b.Body)
}

// quantileMS is the q quantile of the histogram, in ms, NaN when empty.
func quantileMS(hist []int64, q float64) float64 {
	var total int64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return math.NaN()
	}
	need := int64(math.Ceil(q * float64(total)))
	var run int64
	for i, c := range hist {
		if run += c; run >= max(need, 1) {
			return float64(i)
		}
	}
	return float64(len(hist) - 1)
}

// RunScenario runs sc and measures it. When ctx is cancelled it returns
// what it measured so far, marked partial.
func RunScenario(ctx context.Context, sc Scenario) (*ScenarioResult, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	topo := rand.New(rand.NewPCG(sc.Seed, topoStream))
	var g *Graph
	if sc.Mixed {
		g = Undirected(sc.Overlay.Honest+sc.Overlay.Sybils, sc.Overlay.Degree, topo)
	} else {
		var err error
		if g, err = SybilGraph(sc.Overlay, topo); err != nil {
			return nil, err
		}
	}
	gc := sc.Gossip
	gc.Signing, gc.Auth = gossip.SigningNone, nil
	if !sc.Defences {
		gc.LazyDOut = 0 // no dialed eager slots either: gossipsub v1.0's mesh
	}
	if sc.Defences {
		// The model, each signed content hashed once (authmemo.go): the
		// scenario runs on one goroutine.
		gc.Signing, gc.Auth = gossip.SigningStrict, newVerifyMemo(gossip.NewModelAuth(sc.Seed))
	}
	sh, err := gossip.Share(gc)
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
	}
	h := sc.Overlay.Honest
	cfg := DefaultConfig()
	cfg.Graph = g
	cfg.Gossip = gc
	cfg.Latency = sc.Latency
	cfg.Seed = sc.Seed
	calm := sc.calmMessages()
	cfg.Broadcasts = calm + sc.Messages()
	cfg.Interval = max(time.Duration(float64(time.Second)/sc.Rate), 1)
	guards := make([]*score.Guard, h)
	advs := make([]*adversary.Node, 0, sc.Overlay.Sybils)
	var buildErr error
	s, err := NewWith(cfg, func(i int, _ []wire.NodeID, rng *rand.Rand) gossip.Protocol {
		c := gossip.NewShared(sh, wire.NodeID(i)+1, rng)
		switch {
		case i < h && sc.Defences:
			gd, err := score.NewGuard(c, sc.Score)
			if err != nil {
				buildErr = err
				return c
			}
			guards[i] = gd
			return gd
		case i >= h && len(sc.Modes) > 0:
			if calm > 0 {
				a := adversary.Wrap(c, nil, rng)
				sc.setPhase(a, len(advs))
				advs = append(advs, a)
				return &flash{Node: a, at: int64(sc.Calm), modes: sc.Modes}
			}
			a := adversary.Wrap(c, sc.Modes, rng)
			sc.setPhase(a, len(advs))
			advs = append(advs, a)
			return a
		}
		return c
	})
	if err == nil {
		err = buildErr
	}
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
	}
	res := &ScenarioResult{Scenario: sc.Name, Defences: sc.Defences, Honest: h, Sybils: sc.Overlay.Sybils, Seed: sc.Seed}
	obs := &honestObserver{honest: h, ids: map[wire.MsgID]int{}, hist: make([]int64, latencyBuckets+1), res: res}
	s.SetPublishers(func(b int) int { return b % sc.Publishers })
	s.SetPublishTimes(sc.publishTime)
	obs.skip = calm
	s.Open(obs.event)
	end := sc.publishTime(cfg.Broadcasts-1) + int64(sc.Drain)
	s.StopAt(end)
	s.LinksUp()
	r, err := s.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %s: %w", sc.Name, err)
	}
	res.Partial = r.Partial
	res.Messages = max(0, len(obs.canon)-calm)
	var all, pairs int64
	for _, n := range obs.reach[min(calm, len(obs.reach)):] {
		if int(n) == h {
			all++
		}
		pairs += int64(n) - 1
	}
	if res.Messages > 0 {
		res.HonestDelivery = float64(all) / float64(res.Messages)
		res.Reach = float64(pairs) / (float64(res.Messages) * float64(h-1))
	}
	res.P50MS, res.P99MS, res.MaxMS = Millis(quantileMS(obs.hist, 0.5)), Millis(quantileMS(obs.hist, 0.99)), Millis(quantileMS(obs.hist, 1))
	for _, a := range advs {
		st := a.Stats()
		res.Injected += int64(st.Tampered + st.Forged + st.Replayed + st.Spammed)
	}
	bannedBy := map[wire.NodeID]bool{}
	for _, gd := range guards {
		if gd == nil {
			continue
		}
		for _, b := range gd.Bans(end) {
			bannedBy[b.Peer] = true
		}
	}
	for p := range bannedBy {
		if int(p) <= h {
			res.HonestBanned++
		} else {
			res.SybilsBanned++
		}
	}
	return res, nil
}
