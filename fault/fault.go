// Package fault is the fault plan: what a node's links lose, how late they
// deliver, which of them are cut and which nodes are paused. It is pure
// data and decisions, like the protocol core: no goroutines, sockets, wall
// clock or global random source, so that the same plan drives the node
// runtime (real time, applied where frames leave a node), the in-memory
// test networks and the simulator (virtual time), and a seeded *rand.Rand
// handed in makes every decision reproducible.
//
// A plan is written from one point of view. On a node (the node API's
// GET/PUT /faults) the top-level fields describe every link from that
// node, and Cut lists the peers it is cut off from, both ways. A driver
// that sees the whole mesh (the simulator, a test network) uses the same
// fields for every link, Links for single directed links, and Paused for
// nodes that stop running.
package fault

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"gossipmesh/wire"
)

// MaxDelay bounds Delay plus Jitter on any link: a frame held longer than a
// minute is no longer a slow link but a lost one, and every frame held
// costs its sender memory until it goes (see the node runtime's budget).
const MaxDelay = time.Minute

// Rule is what happens to the frames of one link: each is dropped with
// probability Drop, and the rest are held Delay plus or minus Jitter
// (uniform, never below zero) before they leave, as netem does.
type Rule struct {
	Drop   float64
	Delay  time.Duration
	Jitter time.Duration
}

// IsZero reports whether r does nothing.
func (r Rule) IsZero() bool { return r == Rule{} }

// validate names the field of r that is out of range; prefix locates it.
func (r Rule) validate(prefix string) error {
	switch {
	case !(r.Drop >= 0 && r.Drop <= 1): // also catches NaN
		return fmt.Errorf("%sdrop %v: want a probability from 0 to 1", prefix, r.Drop)
	case r.Delay < 0:
		return fmt.Errorf("%sdelay %v: want 0 or more", prefix, r.Delay)
	case r.Jitter < 0:
		return fmt.Errorf("%sjitter %v: want 0 or more", prefix, r.Jitter)
	case r.Delay > MaxDelay || r.Jitter > MaxDelay-r.Delay:
		return fmt.Errorf("%sdelay %v plus jitter %v: want at most %v together", prefix, r.Delay, r.Jitter, MaxDelay)
	}
	return nil
}

// Link is one direction of a link: frames sent by From to To.
type Link struct {
	From, To wire.NodeID
}

// LinkRule overrides the plan's Rule on one directed link, or cuts it.
type LinkRule struct {
	Rule
	Cut bool
}

// Plan is a set of faults. The zero Plan (and a nil *Plan) injects none.
// A Plan is not modified once a driver holds it: to change the faults, a
// driver swaps in a new plan, so a reader never sees half a change.
type Plan struct {
	// Rule applies to every link without an entry in Links.
	Rule
	// Cut lists nodes whose links are cut both ways: nothing sent to them,
	// nothing from them arrives. On a node's own plan these are the peers
	// it is partitioned from.
	Cut map[wire.NodeID]bool
	// Links overrides Rule for single directed links.
	Links map[Link]LinkRule
	// Sides puts nodes on the sides of a partition, numbered: every link
	// between two nodes on different sides is cut, both ways. A node not
	// listed is on no side and cut from nobody by it. One entry per node,
	// where a cut list per link would need one per pair: a split of a
	// million simulated nodes costs a million entries, not 10^11.
	Sides map[wire.NodeID]int
	// Paused lists nodes that stop running (a SIGSTOP'd process). Decide
	// does not act on it: a paused node's frames are neither lost nor
	// sent but wait, which only the driver that runs the node can do
	// (the kernel does it for a real process). See IsPaused.
	Paused map[wire.NodeID]bool
}

// IsZero reports whether p injects no fault.
func (p *Plan) IsZero() bool {
	return p == nil || (p.Rule.IsZero() && len(p.Cut) == 0 && len(p.Links) == 0 && len(p.Sides) == 0 && len(p.Paused) == 0)
}

// Decide says what becomes of a frame that from sends to to at now (the
// driver's clock, nanoseconds): dropped, or sent after delay (0: at once).
// A cut link drops everything; otherwise the link's rule (its Links entry
// or the plan's Rule) draws from rng: one draw for the drop when Drop > 0,
// one for the jitter when Jitter > 0 and the frame is kept. The same plan,
// inputs and rng state give the same answer, in every driver.
//
// now is not used by the rules a Plan has today; drivers pass it anyway,
// so that timed rules can be added without changing them.
func (p *Plan) Decide(now int64, from, to wire.NodeID, rng *rand.Rand) (drop bool, delay time.Duration) {
	_ = now
	if p == nil {
		return false, 0
	}
	if p.Cut[from] || p.Cut[to] || p.splits(from, to) {
		return true, 0
	}
	r := p.Rule
	if lr, ok := p.Links[Link{from, to}]; ok {
		if lr.Cut {
			return true, 0
		}
		r = lr.Rule
	}
	if r.Drop > 0 && rng.Float64() < r.Drop {
		return true, 0
	}
	delay = r.Delay
	if r.Jitter > 0 {
		delay += time.Duration(rng.Int64N(2*int64(r.Jitter)+1)) - r.Jitter
	}
	return false, max(delay, 0)
}

// IsCut reports whether the link from → to is cut: what a node checks for
// frames that arrive, so that a cut holds both ways at the node that has
// it in its plan.
func (p *Plan) IsCut(from, to wire.NodeID) bool {
	if p == nil {
		return false
	}
	return p.Cut[from] || p.Cut[to] || p.splits(from, to) || p.Links[Link{from, to}].Cut
}

// splits reports whether a and b are on different sides of the plan's
// partition.
func (p *Plan) splits(a, b wire.NodeID) bool {
	if len(p.Sides) == 0 {
		return false
	}
	sa, oka := p.Sides[a]
	sb, okb := p.Sides[b]
	return oka && okb && sa != sb
}

// IsPaused reports whether node id is paused in p.
func (p *Plan) IsPaused(id wire.NodeID) bool { return p != nil && p.Paused[id] }

// Validate reports the first value of p that is out of range, naming its
// field as the JSON form spells it.
func (p *Plan) Validate() error {
	if p == nil {
		return nil
	}
	if err := p.Rule.validate(""); err != nil {
		return err
	}
	for _, id := range sortedIDs(p.Cut) {
		if id == 0 {
			return errors.New("cut: node id 0000000000000000 is no node")
		}
	}
	for _, l := range p.sortedLinks() {
		prefix := fmt.Sprintf("links[%s→%s]: ", l.From, l.To)
		if l.From == 0 || l.To == 0 || l.From == l.To {
			return fmt.Errorf("%sfrom and to: want two different non-zero node ids", prefix)
		}
		if err := p.Links[l].validate(prefix); err != nil {
			return err
		}
	}
	for _, id := range sortedIDs(p.Paused) {
		if id == 0 {
			return errors.New("paused: node id 0000000000000000 is no node")
		}
	}
	if _, ok := p.Sides[0]; ok {
		return errors.New("sides: node id 0000000000000000 is no node")
	}
	return nil
}

// ValidateFor is Validate for a plan that node self applies to its own
// links (the node API): it has only a Rule and a cut list, and self is not
// in the cut list. Links and Paused describe other nodes' links and
// processes, which a node cannot act on: a real node is paused by SIGSTOP
// (`mesh chaos pause`), not by its plan.
func (p *Plan) ValidateFor(self wire.NodeID) error {
	if err := p.Validate(); err != nil {
		return err
	}
	switch {
	case p == nil:
		return nil
	case p.Cut[self]:
		return fmt.Errorf("cut: %s is this node's own id", self)
	case len(p.Links) > 0:
		return errors.New("links: a node's plan covers its own links only; use drop, delay, jitter and cut")
	case len(p.Paused) > 0:
		return errors.New("paused: a node is paused by stopping its process (mesh chaos pause), not by its plan")
	case len(p.Sides) > 0:
		return errors.New("sides: a node's plan cuts its own links: list the peers across the split in cut")
	}
	return nil
}

// Clone returns a deep copy of p, to change without touching p.
func (p *Plan) Clone() *Plan {
	if p == nil {
		return &Plan{}
	}
	q := &Plan{Rule: p.Rule}
	if p.Cut != nil {
		q.Cut = make(map[wire.NodeID]bool, len(p.Cut))
		for id, v := range p.Cut {
			if v {
				q.Cut[id] = true
			}
		}
	}
	if p.Links != nil {
		q.Links = make(map[Link]LinkRule, len(p.Links))
		for l, r := range p.Links {
			q.Links[l] = r
		}
	}
	if p.Sides != nil {
		q.Sides = make(map[wire.NodeID]int, len(p.Sides))
		for id, side := range p.Sides {
			q.Sides[id] = side
		}
	}
	if p.Paused != nil {
		q.Paused = make(map[wire.NodeID]bool, len(p.Paused))
		for id, v := range p.Paused {
			if v {
				q.Paused[id] = true
			}
		}
	}
	return q
}

// CutIDs returns the cut list, sorted.
func (p *Plan) CutIDs() []wire.NodeID {
	if p == nil {
		return nil
	}
	return sortedIDs(p.Cut)
}

func sortedIDs(m map[wire.NodeID]bool) []wire.NodeID {
	out := make([]wire.NodeID, 0, len(m))
	for id, v := range m {
		if v {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (p *Plan) sortedLinks() []Link {
	out := make([]Link, 0, len(p.Links))
	for l := range p.Links {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int {
		if a.From != b.From {
			return cmp.Compare(a.From, b.From)
		}
		return cmp.Compare(a.To, b.To)
	})
	return out
}

// planJSON is the JSON form: node ids as the API spells them (16 hex
// digits), durations as Go durations ("10ms"). Every field may be left out.
type planJSON struct {
	Drop   float64    `json:"drop"`
	Delay  string     `json:"delay"`
	Jitter string     `json:"jitter"`
	Cut    []string   `json:"cut"`
	Links  []linkJSON `json:"links,omitempty"`
	Sides  [][]string `json:"sides,omitempty"`
	Paused []string   `json:"paused,omitempty"`
}

type linkJSON struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Drop   float64 `json:"drop,omitempty"`
	Delay  string  `json:"delay,omitempty"`
	Jitter string  `json:"jitter,omitempty"`
	Cut    bool    `json:"cut,omitempty"`
}

// MarshalJSON writes p as {"drop":0.2,"delay":"10ms","jitter":"5ms",
// "cut":["<node id>",...]}, with "links", "sides" (a list of node id lists,
// side 0 first; the side numbers are not kept, only which nodes share a
// side) and "paused" when set. The cut list is always present (empty when
// nothing is cut), so that a reader never has to tell null from [].
func (p Plan) MarshalJSON() ([]byte, error) {
	j := planJSON{Drop: p.Drop, Delay: p.Delay.String(), Jitter: p.Jitter.String(), Cut: []string{}}
	for _, id := range sortedIDs(p.Cut) {
		j.Cut = append(j.Cut, id.String())
	}
	for _, l := range p.sortedLinks() {
		r := p.Links[l]
		lj := linkJSON{From: l.From.String(), To: l.To.String(), Drop: r.Drop, Cut: r.Cut}
		if r.Delay != 0 {
			lj.Delay = r.Delay.String()
		}
		if r.Jitter != 0 {
			lj.Jitter = r.Jitter.String()
		}
		j.Links = append(j.Links, lj)
	}
	j.Sides = sidesJSON(p.Sides)
	for _, id := range sortedIDs(p.Paused) {
		j.Paused = append(j.Paused, id.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes, refusing unknown
// fields. Its errors name the field; values are range-checked by
// Validate, not here.
func (p *Plan) UnmarshalJSON(b []byte) error {
	var j planJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt field must not pass as no fault
	if err := dec.Decode(&j); err != nil {
		return err
	}
	q := Plan{Rule: Rule{Drop: j.Drop}}
	var err error
	if q.Delay, err = parseDuration("delay", j.Delay); err != nil {
		return err
	}
	if q.Jitter, err = parseDuration("jitter", j.Jitter); err != nil {
		return err
	}
	if q.Cut, err = parseIDs("cut", j.Cut); err != nil {
		return err
	}
	if q.Paused, err = parseIDs("paused", j.Paused); err != nil {
		return err
	}
	for k, list := range j.Sides {
		for i, str := range list {
			id, err := wire.ParseNodeID(str)
			if err != nil {
				return fmt.Errorf("sides[%d][%d]: %w", k, i, err)
			}
			if q.Sides == nil {
				q.Sides = make(map[wire.NodeID]int)
			}
			if _, dup := q.Sides[id]; dup {
				return fmt.Errorf("sides[%d][%d]: node %s is on two sides", k, i, id)
			}
			q.Sides[id] = k
		}
	}
	for i, lj := range j.Links {
		field := fmt.Sprintf("links[%d]", i)
		from, err := wire.ParseNodeID(lj.From)
		if err != nil {
			return fmt.Errorf("%s.from: %w", field, err)
		}
		to, err := wire.ParseNodeID(lj.To)
		if err != nil {
			return fmt.Errorf("%s.to: %w", field, err)
		}
		r := LinkRule{Rule: Rule{Drop: lj.Drop}, Cut: lj.Cut}
		if r.Delay, err = parseDuration(field+".delay", lj.Delay); err != nil {
			return err
		}
		if r.Jitter, err = parseDuration(field+".jitter", lj.Jitter); err != nil {
			return err
		}
		if q.Links == nil {
			q.Links = make(map[Link]LinkRule)
		}
		l := Link{from, to}
		if _, dup := q.Links[l]; dup {
			return fmt.Errorf("%s: link %s→%s listed twice", field, from, to)
		}
		q.Links[l] = r
	}
	*p = q
	return nil
}

// sidesJSON lists the nodes of each side, sides in ascending number and
// ids sorted within each.
func sidesJSON(sides map[wire.NodeID]int) [][]string {
	if len(sides) == 0 {
		return nil
	}
	byNum := make(map[int][]wire.NodeID)
	var nums []int
	for id, k := range sides {
		if _, ok := byNum[k]; !ok {
			nums = append(nums, k)
		}
		byNum[k] = append(byNum[k], id)
	}
	slices.Sort(nums)
	out := make([][]string, 0, len(nums))
	for _, k := range nums {
		ids := byNum[k]
		slices.Sort(ids)
		list := make([]string, len(ids))
		for i, id := range ids {
			list[i] = id.String()
		}
		out = append(out, list)
	}
	return out
}

// parseDuration reads a Go duration; empty is 0.
func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a Go duration such as \"10ms\"", field, s)
	}
	return d, nil
}

// parseIDs reads a list of node ids into a set; nil for an empty list.
func parseIDs(field string, list []string) (map[wire.NodeID]bool, error) {
	if len(list) == 0 {
		return nil, nil
	}
	set := make(map[wire.NodeID]bool, len(list))
	for i, s := range list {
		id, err := wire.ParseNodeID(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		set[id] = true
	}
	return set, nil
}
