package sim

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"gossipmesh/adversary"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// AdversaryGroup is a fraction of the nodes that run the same adversary
// modes (package adversary), around the same protocol as the honest nodes.
type AdversaryGroup struct {
	Fraction float64
	Modes    adversary.Modes
}

// Adversaries are the groups of liars in a run, each drawn from the nodes
// the earlier groups left honest.
type Adversaries []AdversaryGroup

// ParseAdversaries reads FRACTION:MODE[,MODE…][,FRACTION:MODE…], as
// `mesh sim --adversaries` takes it: "0.1:blackhole,0.01:spam=100" makes
// 10% of the nodes blackholes and 1% spammers; "0.2:tamper,liar" makes 20%
// both. A part without a colon adds a mode to the group before it. ""
// is none.
func ParseAdversaries(s string) (Adversaries, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var groups Adversaries
	var modes []string
	flush := func() error {
		if len(groups) == 0 {
			return nil
		}
		ms, err := adversary.Parse(strings.Join(modes, ","))
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("group %d has no mode", len(groups))
		}
		groups[len(groups)-1].Modes = ms
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		frac, mode, ok := strings.Cut(part, ":")
		if !ok {
			if len(groups) == 0 {
				return nil, fmt.Errorf("%q: want FRACTION:MODE first (0.1:blackhole)", part)
			}
			modes = append(modes, part)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(frac, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return nil, fmt.Errorf("%q: fraction %q: want a number in (0, 1]", part, frac)
		}
		groups = append(groups, AdversaryGroup{Fraction: f})
		modes = []string{mode}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return groups, groups.validate()
}

// String renders a as ParseAdversaries reads it, "" for none.
func (a Adversaries) String() string {
	parts := make([]string, len(a))
	for i, g := range a {
		parts[i] = strconv.FormatFloat(g.Fraction, 'g', -1, 64) + ":" + g.Modes.String()
	}
	return strings.Join(parts, ",")
}

func (a Adversaries) validate() error {
	total := 0.0
	for i, g := range a {
		if !(g.Fraction > 0 && g.Fraction <= 1) {
			return fmt.Errorf("adversaries: group %d: fraction %v not in (0, 1]", i, g.Fraction)
		}
		if len(g.Modes) == 0 {
			return fmt.Errorf("adversaries: group %d has no mode", i)
		}
		if err := g.Modes.Validate(); err != nil {
			return fmt.Errorf("adversaries: group %d: %w", i, err)
		}
		total += g.Fraction
	}
	if total > 1+1e-9 {
		return fmt.Errorf("adversaries: the fractions add up to %v, more than every node", total)
	}
	return nil
}

// rated reports whether any group has a rate mode (spam, spam-invalid,
// forge, replay), which acts on a clock rather than on what arrives.
func (a Adversaries) rated() bool {
	for _, g := range a {
		for _, k := range []adversary.Kind{adversary.Spam, adversary.SpamInvalid, adversary.Forge, adversary.Replay} {
			if g.Modes.Has(k) {
				return true
			}
		}
	}
	return false
}

// validateFor checks a against the rest of the run: targets are nodes of
// it, and rate modes have a window to act in.
func (a Adversaries) validateFor(c *Config, n int) error {
	if err := a.validate(); err != nil {
		return err
	}
	for i, g := range a {
		for _, m := range g.Modes {
			if (m.Kind == adversary.Censor || m.Kind == adversary.Eclipse) && (m.Target < 1 || uint64(m.Target) > uint64(n)) {
				return fmt.Errorf("adversaries: group %d: %s target %d is not a node (the simulator's node i has id i+1, 1..%d)", i, m.Kind, uint64(m.Target), n)
			}
		}
	}
	if a.rated() && c.Interval <= 0 {
		return fmt.Errorf("adversaries: %s: rate modes act while the broadcasts are published, from 0 to broadcasts × interval: set an interval", a)
	}
	return nil
}

// Assign draws which nodes run which modes, from the seed: node i gets
// Assign(...)[i], nil for an honest node. Each group takes
// round(Fraction × N) nodes (at least one) among those still honest; an
// eclipse group takes the target's neighbours first, so that enough of
// them surround it, then nodes at random. The target of an eclipse or a
// censor is never one of its own group.
func (a Adversaries) Assign(g *Graph, seed uint64) []adversary.Modes {
	n := g.N()
	out := make([]adversary.Modes, n)
	rng := rand.New(rand.NewPCG(seed, 0xad7e5a41))
	order := rng.Perm(n)
	for _, grp := range a {
		want := max(1, int(math.Round(grp.Fraction*float64(n))))
		var target = -1
		for _, m := range grp.Modes {
			if m.Kind == adversary.Eclipse || m.Kind == adversary.Censor {
				target = int(m.Target) - 1
			}
		}
		var pick []int
		if m, ok := grp.Modes.Get(adversary.Eclipse); ok {
			for _, p := range g.Peers(int(m.Target) - 1) {
				if len(pick) < want && out[p-1] == nil {
					pick = append(pick, int(p-1))
				}
			}
		}
		for _, i := range order {
			if len(pick) >= want {
				break
			}
			if out[i] == nil && i != target && !slices.Contains(pick, i) {
				pick = append(pick, i)
			}
		}
		for _, i := range pick {
			out[i] = grp.Modes
		}
	}
	return out
}

// AdversaryReport is what the liars did to a run and what the honest
// nodes made of it.
type AdversaryReport struct {
	// Spec is the --adversaries flag as ParseAdversaries reads it.
	Spec string `json:"spec"`
	// Nodes counts the adversaries, and ByMode by their mode string.
	Nodes  int            `json:"nodes"`
	ByMode map[string]int `json:"by_mode"`
	// HonestNodes is N − Nodes.
	HonestNodes int `json:"honest_nodes"`
	// HonestBroadcasts counts the broadcasts an honest node published;
	// the figures below are over those only.
	HonestBroadcasts int `json:"honest_broadcasts"`
	// HonestReliability is the mean fraction of the live honest nodes that
	// delivered each honest broadcast with its published content; 1 with
	// no honest broadcast.
	HonestReliability float64 `json:"honest_reliability"`
	// HonestAllReached is the fraction of honest broadcasts that every
	// live honest node delivered.
	HonestAllReached float64 `json:"honest_all_reached"`
	// TamperedAccepted counts deliveries at honest nodes of an honest
	// broadcast's id with another body or origin.
	TamperedAccepted int64 `json:"tampered_accepted"`
	// ForgedAccepted counts deliveries at honest nodes of messages that
	// claim an honest origin which never published them.
	ForgedAccepted int64 `json:"forged_accepted"`
	// ReplayedAccepted counts deliveries at honest nodes of an honest
	// broadcast's content after it settled, or with its publish time
	// changed: replays (and copies a delayer held back past the settle).
	ReplayedAccepted int64 `json:"replayed_accepted"`
	// AdversaryAccepted counts deliveries at honest nodes of messages an
	// adversary made up under its own origin (spam, spam-invalid).
	AdversaryAccepted int64 `json:"adversary_accepted"`
	// Rejected counts copies honest nodes rejected (EventRejected).
	Rejected int64 `json:"rejected"`
	// Did adds up what the adversaries did (adversary.Stats).
	Did adversary.Stats `json:"did"`

	reachSum float64
	allSum   int
}

// advState is a run's adversaries: who they are and what they caused.
type advState struct {
	spec   Adversaries
	evil   bitset
	nodes  []*adversary.Node
	index  []uint32
	honest int
	// published holds the id of every broadcast an honest node
	// published, so that a copy arriving after its settle is known.
	published map[wire.MsgID]bool
	rep       AdversaryReport
}

// withAdversaries wraps what build makes (gossip cores of shared when build
// is nil) with the adversaries cfg.Adversaries assigns.
func (s *Sim) withAdversaries(build func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol) func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol {
	cfg := &s.cfg
	assign := cfg.Adversaries.Assign(s.graph, cfg.Seed)
	a := &advState{spec: cfg.Adversaries, evil: newBitset(s.n), published: map[wire.MsgID]bool{}}
	a.rep = AdversaryReport{Spec: cfg.Adversaries.String(), ByMode: map[string]int{}, HonestReliability: 1}
	var stop int64
	if cfg.Adversaries.rated() {
		stop = int64(cfg.Broadcasts) * int64(cfg.Interval)
	}
	s.adv = a
	s.openForeign() // copies of no open broadcast, or altering one
	var cores []gossip.Core
	if build == nil {
		cores = make([]gossip.Core, s.n)
	}
	a.honest = s.n
	for _, ms := range assign {
		if ms != nil {
			a.honest--
		}
	}
	return func(i int, peers []wire.NodeID, rng *rand.Rand) gossip.Protocol {
		var p gossip.Protocol
		if build != nil {
			p = build(i, peers, rng)
		} else {
			c := &cores[i]
			c.Init(s.shared, wire.NodeID(i)+1, rng)
			c.SetPeers(peers)
			p = c
		}
		ms := assign[i]
		if ms == nil {
			return p
		}
		n := adversary.Wrap(p, ms, rand.New(rand.NewPCG(cfg.Seed^0xad7e5a41, uint64(i))))
		n.SetStop(stop)
		a.evil.set(uint32(i))
		a.nodes = append(a.nodes, n)
		a.index = append(a.index, uint32(i))
		a.rep.ByMode[ms.String()]++
		return n
	}
}

// sameContent reports whether m carries what orig does: everything but
// the hop count.
func sameContent(m, orig *wire.Message) bool {
	return m == orig || m.Origin == orig.Origin && m.Seq == orig.Seq && m.PublishedAt == orig.PublishedAt && bytes.Equal(m.Body, orig.Body)
}

// advEvent records, for an honest node i, an event the engine's own
// accounting does not cover: it returns true when the event is not a
// delivery of an open broadcast's published content (so the caller must
// not count it as one).
func (s *Sim) advEvent(i int, ev *gossip.Event, f *flight) (skip bool) {
	a := s.adv
	if a.evil.has(uint32(i)) {
		return f == nil || !sameContent(ev.Msg, f.orig)
	}
	r := &a.rep
	switch ev.Kind {
	case gossip.EventRejected:
		r.Rejected++
		return false
	case gossip.EventDelivered:
	default:
		return false
	}
	m := ev.Msg
	switch {
	case f != nil && sameContent(m, f.orig):
		return false
	case f != nil && m.Origin == f.orig.Origin && m.Seq == f.orig.Seq && bytes.Equal(m.Body, f.orig.Body):
		r.ReplayedAccepted++ // its time rewritten
	case f != nil:
		r.TamperedAccepted++
	case a.published[m.ID]:
		r.ReplayedAccepted++
	case m.Origin >= 1 && uint64(m.Origin) <= uint64(s.n) && !a.evil.has(uint32(m.Origin-1)):
		r.ForgedAccepted++
	default:
		r.AdversaryAccepted++
	}
	return true
}

// advPublished notes a broadcast as an honest one, or not.
func (s *Sim) advPublished(f *flight) {
	if !s.adv.evil.has(uint32(f.publisher)) {
		s.adv.published[f.id] = true
	}
}

// advFinish adds a settled broadcast's honest reach to the report.
func (s *Sim) advFinish(f *flight) {
	a := s.adv
	if a.evil.has(uint32(f.publisher)) {
		return
	}
	reached, live := 0, a.honest
	for _, i := range s.crashedList {
		if !a.evil.has(i) {
			live--
		}
	}
	for w, word := range f.got {
		for word != 0 {
			b := uint32(w*64) + uint32(bits.TrailingZeros64(word))
			word &= word - 1
			if !a.evil.has(b) && (s.crashed == nil || !s.crashed[b]) {
				reached++
			}
		}
	}
	a.rep.HonestBroadcasts++
	if live > 0 {
		a.rep.reachSum += float64(reached) / float64(live)
	}
	if reached >= live {
		a.rep.allSum++
	}
}

// advReport is the run's AdversaryReport.
func (s *Sim) advReport() *AdversaryReport {
	a := s.adv
	r := a.rep
	r.ByMode = maps.Clone(r.ByMode)
	r.Nodes = len(a.nodes)
	r.HonestNodes = a.honest
	if r.HonestBroadcasts > 0 {
		r.HonestReliability = round(r.reachSum/float64(r.HonestBroadcasts), 6)
		r.HonestAllReached = round(float64(r.allSum)/float64(r.HonestBroadcasts), 6)
	}
	for _, n := range a.nodes {
		d := n.Stats()
		r.Did.Dropped += d.Dropped
		r.Did.Tampered += d.Tampered
		r.Did.Forged += d.Forged
		r.Did.Replayed += d.Replayed
		r.Did.Spammed += d.Spammed
		r.Did.Delayed += d.Delayed
		r.Did.Censored += d.Censored
		r.Did.Lies += d.Lies
	}
	return &r
}

// AdversaryNodes returns the run's adversaries by node index (nil without
// any), so that a test or experiment can read their Stats.
func (s *Sim) AdversaryNodes() map[int]*adversary.Node {
	if s.adv == nil {
		return nil
	}
	m := make(map[int]*adversary.Node, len(s.adv.nodes))
	for k, n := range s.adv.nodes {
		m[int(s.adv.index[k])] = n
	}
	return m
}

// writeAdversaries writes the adversary lines of the text report.
func (r *AdversaryReport) writeText(bw *errWriter) {
	modes := make([]string, 0, len(r.ByMode))
	for m, k := range r.ByMode {
		modes = append(modes, fmt.Sprintf("%d %s", k, m))
	}
	slices.Sort(modes)
	bw.printf("adversaries: %d (%s); %d honest nodes\n", r.Nodes, strings.Join(modes, ", "), r.HonestNodes)
	bw.printf("honest reach: %.4f of live honest nodes per honest broadcast (%d of them), %.1f%% reached every one\n",
		r.HonestReliability, r.HonestBroadcasts, 100*r.HonestAllReached)
	bw.printf("accepted by honest nodes: %d tampered, %d forged, %d replayed, %d made up by adversaries; %d rejected\n",
		r.TamperedAccepted, r.ForgedAccepted, r.ReplayedAccepted, r.AdversaryAccepted, r.Rejected)
	d := r.Did
	bw.printf("adversaries did: %d dropped, %d tampered, %d forged, %d replayed, %d spammed, %d delayed, %d censored, %d lies\n",
		d.Dropped, d.Tampered, d.Forged, d.Replayed, d.Spammed, d.Delayed, d.Censored, d.Lies)
}
