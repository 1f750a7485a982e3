package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gossipmesh/adversary"
	"gossipmesh/api"
	"gossipmesh/wire"
)

// AdversarySpec is one entry of `mesh up --adversaries`: Count nodes run
// with `mesh node --adversary Mode`.
type AdversarySpec struct {
	Count int
	// Mode is in the syntax of adversary.Parse, except that a target
	// (censor=, eclipse=) may also be @K, node K of this mesh, since the
	// ids are not known before the launch.
	Mode string
}

// String renders s as ParseAdversaries reads it.
func (s AdversarySpec) String() string { return strconv.Itoa(s.Count) + ":" + s.Mode }

// countPrefix is what starts an entry of --adversaries: "10:".
var countPrefix = regexp.MustCompile(`^\s*(\d+):`)

// ParseAdversaries reads `mesh up --adversaries`: N:MODE entries separated
// by commas, such as "10:blackhole,2:spam=20000". A mode may itself be a
// list ("2:spam=500,delay=100ms"): a comma-separated part that does not
// start with a count belongs to the entry before it. "" is none.
func ParseAdversaries(s string) ([]AdversarySpec, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []AdversarySpec
	for _, part := range strings.Split(s, ",") {
		if m := countPrefix.FindStringSubmatch(part); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("adversaries: %q: want a count of at least 1 before the colon", part)
			}
			out = append(out, AdversarySpec{Count: n, Mode: strings.TrimSpace(part[len(m[0]):])})
			continue
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("adversaries: %q: want N:MODE, such as 10:blackhole or 2:spam=20000", part)
		}
		out[len(out)-1].Mode += "," + strings.TrimSpace(part)
	}
	for _, sp := range out {
		if strings.TrimSpace(sp.Mode) == "" {
			return nil, fmt.Errorf("adversaries: %q: no mode after the count", sp.String())
		}
	}
	return out, nil
}

// FormatAdversaries renders specs as ParseAdversaries reads them.
func FormatAdversaries(specs []AdversarySpec) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// nodeRef is a target given as @K, node K of the mesh.
var nodeRef = regexp.MustCompile(`=@(\d+)\b`)

// ResolveMode turns mode, in the syntax of adversary.Parse with @K for
// node K's id, into the node's modes, given the mesh's ids. It is how
// `mesh up --adversaries` and `mesh chaos adversary` read a mode.
func ResolveMode(mode string, ids []wire.NodeID) (adversary.Modes, error) {
	var bad error
	resolved := nodeRef.ReplaceAllStringFunc(mode, func(ref string) string {
		k, err := strconv.Atoi(ref[2:])
		if err != nil || k >= len(ids) {
			bad = fmt.Errorf("adversary mode %q: %s: the mesh has nodes 0 to %d", mode, ref[1:], len(ids)-1)
			return ref
		}
		return "=" + ids[k].String()
	})
	if bad != nil {
		return nil, bad
	}
	ms, err := adversary.Parse(resolved)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// placeAdversaries gives each node its adversary modes ("" for honest):
// the nodes of each spec, in order, are drawn at random from those not yet
// taken, with a random source seeded by the mesh's seed alone, so that the
// same seed and --adversaries place the same nodes. A node that an eclipse
// or censor mode targets stays honest: an attack on it needs it honest.
func placeAdversaries(specs []AdversarySpec, ids []wire.NodeID, seed uint64) ([]string, error) {
	out := make([]string, len(ids))
	modes := make([]adversary.Modes, len(specs))
	targets := map[wire.NodeID]bool{}
	total := 0
	for i, sp := range specs {
		ms, err := ResolveMode(sp.Mode, ids)
		if err != nil {
			return nil, fmt.Errorf("adversaries: %q: %w", sp.String(), err)
		}
		if len(ms) == 0 {
			return nil, fmt.Errorf("adversaries: %q: no mode (for honest nodes, leave them out)", sp.String())
		}
		modes[i] = ms
		for _, m := range ms {
			if m.Target != 0 {
				targets[m.Target] = true
			}
		}
		total += sp.Count
	}
	var pool []int
	for i, id := range ids {
		if !targets[id] {
			pool = append(pool, i)
		}
	}
	if total > len(pool) {
		return nil, fmt.Errorf("adversaries: %d asked for, but the mesh has %d nodes that are not a target", total, len(pool))
	}
	rng := rand.New(rand.NewPCG(seed, 0xad7e5a41))
	rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	k := 0
	for i, sp := range specs {
		for range sp.Count {
			out[pool[k]] = modes[i].String()
			k++
		}
	}
	return out, nil
}

// advOf is node i's launch mode, "" for honest (also for a Cluster built
// without New, as some tests do).
func (c *Cluster) advOf(i int) string {
	if i < len(c.adv) {
		return c.adv[i]
	}
	return ""
}

// Adversaries returns the modes each node was launched with ("" for
// honest), in index order.
func (c *Cluster) Adversaries() []string { return append([]string(nil), c.adv...) }

// eclipseTarget returns the index of the node that node i's eclipse mode
// aims at, if any, for the launcher to add to i's candidates: a sybil
// must know where its target listens.
func (c *Cluster) eclipseTarget(i int) (int, bool) {
	if c.advOf(i) == "" {
		return 0, false
	}
	ms, err := adversary.Parse(c.advOf(i))
	if err != nil {
		return 0, false
	}
	m, ok := ms.Get(adversary.Eclipse)
	if !ok {
		return 0, false
	}
	for j, id := range c.topo.IDs {
		if id == m.Target {
			return j, true
		}
	}
	return 0, false
}

// Adversaries asks every node for its adversary state at once: the mode
// it runs and what it did. errs[i] says why node i did not answer.
func (m *Mesh) Adversaries(ctx context.Context) (states []api.Adversary, errs []error) {
	states, errs = make([]api.Adversary, m.Len()), make([]error, m.Len())
	var wg sync.WaitGroup
	for i := range m.clients {
		wg.Go(func() { states[i], errs[i] = m.clients[i].Adversary(ctx) })
	}
	wg.Wait()
	return states, errs
}

// ids returns the mesh's node ids, in index order.
func (ch *Chaos) ids() []wire.NodeID {
	out := make([]wire.NodeID, ch.Len())
	for i := range out {
		out[i] = ch.id(i)
	}
	return out
}

// Adversary puts mode in force on every running node of set (through PUT
// /adversary; "" or "none" turns them honest) and returns once each node
// reports it (GET /adversary). mode is in the syntax of `mesh node
// --adversary`, with @K for node K's id as a target. A node that is not
// running is skipped with a note; a paused node fails the verb, since it
// cannot answer.
func (ch *Chaos) Adversary(ctx context.Context, set []int, mode string) error {
	ms, err := ResolveMode(mode, ch.ids())
	if err != nil {
		return err
	}
	want := ms.String()
	var todo []int
	for _, i := range set {
		switch ch.procState(i) {
		case StateExited:
			ch.notef("node %d is not running: its adversary mode is not set (a restarted node starts with the mode it was launched with)", i)
		case StatePaused:
			return fmt.Errorf("node %d is paused, so it cannot take a new mode: resume it first (mesh chaos resume %d)", i, i)
		default:
			todo = append(todo, i)
		}
	}
	for _, i := range todo {
		c := ch.mesh.Client(i)
		if err := ch.call(ctx, func(ctx context.Context) error { _, err := c.SetAdversary(ctx, want); return err }); err != nil {
			return fmt.Errorf("node %d: setting its adversary mode: %w", i, err)
		}
		var got api.Adversary
		if err := ch.call(ctx, func(ctx context.Context) (err error) { got, err = c.Adversary(ctx); return err }); err != nil {
			return fmt.Errorf("node %d: reading back its adversary mode: %w", i, err)
		}
		if got.Mode != want {
			return fmt.Errorf("node %d: runs %q after the change, want %q", i, got.Mode, want)
		}
	}
	return nil
}
