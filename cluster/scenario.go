package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
	"gossipmesh/membership"
)

// This file is `mesh chaos scenario`: the fault table's rows run on a live
// mesh through the chaos verbs above, each measuring what its row promises
// (delivery and membership) and timing it. The end-to-end tests run the
// same scenarios on small meshes and assert their checks; the README's
// figures come from the same runs on the rows' real sizes.

// scenarioNames lists the scenarios that RunScenario knows, in the order
// of the fault table.
var scenarioNames = []string{"kill", "loss", "split", "pause", "restart", "crash", "hung", "byzantine", "spam"}

// ScenarioNames returns the names RunScenario accepts, in the order of the
// fault table.
func ScenarioNames() []string { return slices.Clone(scenarioNames) }

// ScenarioConfig says how to run one scenario. Zero fields take the
// scenario's defaults, which are the fault table's row (see
// DefaultScenarioConfig); the tests shrink them.
type ScenarioConfig struct {
	// Name is one of ScenarioNames.
	Name string
	// Seed picks the nodes a scenario kills, pauses or restarts, and the
	// publishers. Default 1.
	Seed uint64
	// Rate is how many messages a second the scenario publishes while it
	// streams, each at a random node that is running (kill 100; split,
	// pause and restart 10; loss 20).
	Rate float64
	// Fraction is the share of the nodes that kill kills (0.3) and pause
	// pauses (0.1); at least one node.
	Fraction float64
	// Duration is how long the fault lasts: split 10 s, pause 5 s, restart
	// (time down) 10 s, hung (the long pause) at most 15 s; for kill, how
	// long survivors stream after the kill (5 s).
	Duration time.Duration
	// Messages is how many messages loss publishes (100).
	Messages int
	// Loss is loss's drop probability on every link (0.2).
	Loss float64
	// Limit bounds every wait for an outcome: a check not met within it
	// fails and the scenario goes on. It is a safety net, not a target.
	// Default 2 minutes.
	Limit time.Duration
	// Mode is the adversary mode byzantine gives its adversaries
	// (blackhole) and spam its spammer (spam-invalid=20000), in the
	// syntax of `mesh node --adversary`.
	Mode string
	// Log, if set, receives one line per step as the scenario runs.
	Log io.Writer
}

// DefaultScenarioConfig returns the fault table's row for scenario name.
func DefaultScenarioConfig(name string) ScenarioConfig {
	c := ScenarioConfig{Name: name, Seed: 1, Limit: 2 * time.Minute, Rate: 10}
	switch name {
	case "kill":
		c.Rate, c.Fraction, c.Duration = 100, 0.3, 5*time.Second
	case "loss":
		c.Rate, c.Messages, c.Loss = 20, 100, 0.2
	case "split", "restart":
		c.Duration = 10 * time.Second
	case "pause":
		c.Fraction, c.Duration = 0.1, 5*time.Second
	case "hung":
		c.Duration = 15 * time.Second
	case "byzantine":
		c.Fraction, c.Duration, c.Mode = 0.33, 10*time.Second, "blackhole"
	case "spam":
		c.Rate, c.Duration, c.Mode = 50, 10*time.Second, "spam-invalid=20000"
	}
	return c
}

// withDefaults fills the zero fields from DefaultScenarioConfig.
func (c ScenarioConfig) withDefaults() ScenarioConfig {
	d := DefaultScenarioConfig(c.Name)
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Fraction == 0 {
		c.Fraction = d.Fraction
	}
	if c.Duration == 0 {
		c.Duration = d.Duration
	}
	if c.Messages == 0 {
		c.Messages = d.Messages
	}
	if c.Loss == 0 {
		c.Loss = d.Loss
	}
	if c.Limit == 0 {
		c.Limit = d.Limit
	}
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	return c
}

// Validate reports the first field that cannot work.
func (c ScenarioConfig) Validate() error {
	switch {
	case !slices.Contains(scenarioNames, c.Name):
		return fmt.Errorf("scenario %q: want one of %s", c.Name, strings.Join(scenarioNames, ", "))
	case c.Rate < 0 || c.Rate > 1000:
		return fmt.Errorf("scenario %s: rate %v: want 0 (the default) to 1000 messages/s", c.Name, c.Rate)
	case c.Fraction < 0 || c.Fraction >= 1:
		return fmt.Errorf("scenario %s: fraction %v: want 0 (the default) to below 1", c.Name, c.Fraction)
	case c.Duration < 0:
		return fmt.Errorf("scenario %s: duration %v: want 0 (the default) or more", c.Name, c.Duration)
	case c.Messages < 0:
		return fmt.Errorf("scenario %s: messages %d: want 0 (the default) or more", c.Name, c.Messages)
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("scenario %s: loss %v: want 0 (the default) to below 1", c.Name, c.Loss)
	case c.Limit < 0:
		return fmt.Errorf("scenario %s: limit %v: want 0 (the default) or more", c.Name, c.Limit)
	case c.Mode != "" && c.Name != "byzantine" && c.Name != "spam":
		return fmt.Errorf("scenario %s: mode %q: only byzantine and spam take a mode", c.Name, c.Mode)
	}
	if c.Mode != "" {
		if _, err := ResolveMode(c.Mode, nil); err != nil && !strings.Contains(c.Mode, "@") {
			return fmt.Errorf("scenario %s: mode: %w", c.Name, err)
		}
	}
	return nil
}

// ScenarioResult is what one scenario found: its checks (the row's
// delivery and membership promises, each held or not) and its figures
// (times, which the checks never depend on).
type ScenarioResult struct {
	Scenario string `json:"scenario"`
	Nodes    int    `json:"nodes"`
	// Faulted lists the nodes the scenario killed, paused or restarted.
	Faulted []int            `json:"faulted,omitempty"`
	Checks  []ScenarioCheck  `json:"checks"`
	Figures []ScenarioFigure `json:"figures"`
}

// ScenarioCheck is one promise of the row: held or not, and what was
// counted.
type ScenarioCheck struct {
	What   string `json:"what"`
	Held   bool   `json:"held"`
	Detail string `json:"detail"`
}

// ScenarioFigure is one time the scenario measured, in milliseconds, with
// the row's target for it (empty when the row has none). Missing is set
// when the moment it times never came within the limit.
type ScenarioFigure struct {
	What    string  `json:"what"`
	Millis  float64 `json:"ms"`
	Target  string  `json:"target,omitempty"`
	Missing bool    `json:"missing,omitempty"`
}

// OK reports whether every check held.
func (r ScenarioResult) OK() bool {
	for _, c := range r.Checks {
		if !c.Held {
			return false
		}
	}
	return len(r.Checks) > 0
}

func (r *ScenarioResult) check(held bool, what, format string, args ...any) {
	r.Checks = append(r.Checks, ScenarioCheck{What: what, Held: held, Detail: fmt.Sprintf(format, args...)})
}

func (r *ScenarioResult) figure(what, target string, d time.Duration, ok bool) {
	r.Figures = append(r.Figures, ScenarioFigure{What: what, Millis: Millis(max(d, 0)), Target: target, Missing: !ok})
}

// WriteText prints the result: one line per check, one per figure.
func (r ScenarioResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "scenario %s on %d nodes", r.Scenario, r.Nodes)
	if len(r.Faulted) > 0 {
		fmt.Fprintf(w, " (faulted: %s)", joinIndices(r.Faulted))
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.Held {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, c.What, c.Detail)
	}
	for _, f := range r.Figures {
		v := strconv.FormatFloat(f.Millis, 'f', 0, 64) + " ms"
		if f.Missing {
			v = "not within the limit"
		}
		if f.Target != "" {
			v += " (target " + f.Target + ")"
		}
		fmt.Fprintf(w, "  time  %s: %s\n", f.What, v)
	}
}

func joinIndices(s []int) string {
	parts := make([]string, len(s))
	for k, i := range s {
		parts[k] = strconv.Itoa(i)
	}
	return strings.Join(parts, ",")
}

// RunScenario runs one row of the fault table on the mesh, through the
// chaos verbs, and then undoes its faults as `mesh chaos clear` does. The
// mesh must be whole when it starts: every node running with no plan
// (run `mesh chaos clear` first); it waits, within the limit, for the
// mesh to settle (every node answering, at its low degree bound with
// membership, the peer graph connected). kill, crash and hung need
// membership (mesh up --membership); the rows that repair (loss, split,
// pause, restart) need anti-entropy, which plumtree has by default and
// flood with --anti-entropy 1s; kill and restart need the launcher (mesh
// up) to restart the nodes afterwards.
//
// An error means the scenario could not run (a verb failed, a node did not
// answer); a promise the mesh did not keep is a check that did not hold.
func (ch *Chaos) RunScenario(ctx context.Context, cfg ScenarioConfig) (res ScenarioResult, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	cfg = cfg.withDefaults()
	s := &scenario{ch: ch, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5ce7a))}
	s.res.Scenario, s.res.Nodes = cfg.Name, ch.Len()
	for i := range ch.state.Nodes {
		if st := ch.procState(i); st != StateRunning {
			return res, fmt.Errorf("scenario %s: node %d is %s: the scenario needs the whole mesh (mesh chaos clear)", cfg.Name, i, st)
		}
	}
	for i, n := range ch.Status(ctx) {
		switch {
		case n.Faults == nil:
			return res, fmt.Errorf("scenario %s: node %d: reading its fault plan: %s", cfg.Name, i, n.Error)
		case !n.Faults.IsZero():
			return res, fmt.Errorf("scenario %s: node %d holds a fault plan (%s): the scenario needs none (mesh chaos clear; is another scenario running?)", cfg.Name, i, planString(*n.Faults))
		}
	}
	s.member = s.hasMembership(ctx)
	if (cfg.Name == "kill" || cfg.Name == "crash" || cfg.Name == "hung") && !s.member {
		return res, fmt.Errorf("scenario %s: the nodes run without membership (GET /membership answers 404): start the mesh with mesh up --membership", cfg.Name)
	}
	if err := s.settle(ctx); err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limit)
		defer cancel()
		if cerr := ch.Clear(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("scenario %s: undoing its faults: %w", cfg.Name, cerr))
		}
	}()
	run := map[string]func(context.Context) error{
		"kill": s.kill, "loss": s.loss, "split": s.split, "pause": s.pause,
		"restart": s.restart, "crash": s.crash, "hung": s.hung,
		"byzantine": s.byzantine, "spam": s.spam,
	}[cfg.Name]
	if err := run(ctx); err != nil {
		return s.res, fmt.Errorf("scenario %s: %w", cfg.Name, err)
	}
	return s.res, nil
}

// scenario is one run of RunScenario.
type scenario struct {
	ch     *Chaos
	cfg    ScenarioConfig
	rng    *rand.Rand
	res    ScenarioResult
	member bool
}

func (s *scenario) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

func (s *scenario) all() []int { return s.ch.all() }

// pick returns k distinct random nodes, sorted.
func (s *scenario) pick(k int) []int {
	out := s.rng.Perm(s.ch.Len())[:k]
	slices.Sort(out)
	return out
}

// share is fraction of the mesh's nodes, at least one and leaving one.
func (s *scenario) share(fraction float64) int {
	return min(max(int(fraction*float64(s.ch.Len())+0.5), 1), s.ch.Len()-1)
}

func without(all, drop []int) []int {
	return slices.DeleteFunc(slices.Clone(all), func(i int) bool { return slices.Contains(drop, i) })
}

func (s *scenario) hasMembership(ctx context.Context) bool {
	var err error
	_ = s.ch.call(ctx, func(ctx context.Context) error {
		_, err = s.ch.mesh.Client(0).Membership(ctx)
		return nil
	})
	return err == nil
}

// settle waits, within the limit, until every node answers and, with
// membership, holds its low degree bound, and the peer graph is connected.
func (s *scenario) settle(ctx context.Context) error {
	var why string
	ok := s.poll(ctx, 50*time.Millisecond, func() bool {
		o := s.ch.mesh.Observe(ctx)
		for i, err := range o.Errs {
			if err != nil {
				why = fmt.Sprintf("node %d not answering: %v", i, err)
				return false
			}
			if s.member && len(o.Peers[i]) < min(membership.DefaultConfig().ActiveLow, s.ch.Len()-1) {
				why = fmt.Sprintf("node %d holds %d links", i, len(o.Peers[i]))
				return false
			}
		}
		if !o.Graph.Connected() {
			why = "the peer graph is not connected"
			return false
		}
		return true
	})
	if !ok {
		return fmt.Errorf("scenario %s: the mesh did not settle before the scenario: %s", s.cfg.Name, why)
	}
	return nil
}

// poll runs cond every interval until it holds (true) or the limit passes
// (false).
func (s *scenario) poll(ctx context.Context, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(s.cfg.Limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
	return true
}

// scenarioPub is one message a scenario published.
type scenarioPub struct {
	id   string
	from int
	at   time.Time // when the publish was asked
	tag  int       // the phase it was asked in (the scenario's own numbering)
}

// streamer publishes at a steady rate from goroutines of its own until
// stopped, each message at a node that pick names; tag names the phase
// each publish was asked in.
type streamer struct {
	mu     sync.Mutex
	once   sync.Once
	pubs   []scenarioPub
	failed []scenarioFailure
	stop   chan struct{}
	done   chan struct{}
}

// stream starts publishing at rate messages/s. pick and tag are called
// from the streaming goroutine only.
func (s *scenario) stream(ctx context.Context, rate float64, pick func() int, tag func() int) *streamer {
	st := &streamer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		sem := make(chan struct{}, 32)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-st.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			from, phase, at := pick(), tag(), time.Now()
			select {
			case sem <- struct{}{}:
			case <-st.stop:
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				// A failed publish fails the row, so a Chaos given a
				// longer Timeout (for a loaded machine) gives publishes
				// that long too.
				pctx, cancel := context.WithTimeout(ctx, max(10*time.Second, s.ch.Timeout))
				defer cancel()
				r, err := s.ch.mesh.Client(from).Publish(pctx, fmt.Sprintf("scenario %s: message %d from node %d", s.cfg.Name, k, from))
				st.mu.Lock()
				defer st.mu.Unlock()
				if err != nil {
					st.failed = append(st.failed, scenarioFailure{tag: phase, err: fmt.Sprintf("node %d: %v", from, err)})
					return
				}
				st.pubs = append(st.pubs, scenarioPub{id: r.ID, from: from, at: at, tag: phase})
			})
		}
	}()
	return st
}

// scenarioFailure is a publish that failed, in the phase it was asked in.
type scenarioFailure struct {
	tag int
	err string
}

// end stops the stream, waits for publishes in flight, and returns what
// was published and the publishes that failed. A second call returns
// nothing new.
func (st *streamer) end() ([]scenarioPub, []scenarioFailure) {
	st.once.Do(func() { close(st.stop) })
	<-st.done
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.pubs), slices.Clone(st.failed)
}

// holdings maps node → message id → when the node first received it.
type holdings map[int]map[string]time.Time

// collectHeld finds which messages of msgs each node of nodes holds, and
// when it received them: first from its newest receipts (GET /messages,
// enough to cover msgs when nothing else arrived meanwhile), then one by
// one (GET /messages/{id}) for those not among them, since a node that
// catches up through anti-entropy receives older messages after the
// newest. At most lookups messages per node are asked one by one per call,
// so that a node that truly lacks many costs a bounded poll.
func (s *scenario) collectHeld(ctx context.Context, nodes []int, msgs []scenarioPub, lookups int, prev holdings) holdings {
	out := make(holdings, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range nodes {
		wg.Go(func() {
			c := s.ch.mesh.Client(i)
			var list []api.Receipt
			err := s.ch.call(ctx, func(ctx context.Context) (err error) {
				list, err = c.Recent(ctx, min(len(msgs)+256, api.MaxRecent))
				return err
			})
			m := make(map[string]time.Time, len(list))
			for id, at := range prev[i] {
				m[id] = at
			}
			if err == nil {
				for _, rc := range list {
					m[rc.ID] = rc.ReceivedAt
				}
			}
			asked := 0
			for _, p := range msgs {
				if _, ok := m[p.id]; ok || asked >= lookups {
					continue
				}
				asked++
				var rc api.Receipt
				if s.ch.call(ctx, func(ctx context.Context) (err error) { rc, err = c.Receipt(ctx, p.id, 0); return err }) == nil {
					m[p.id] = rc.ReceivedAt
				}
			}
			mu.Lock()
			out[i] = m
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// missing counts the (message, node) pairs of msgs × nodes that h lacks,
// and says which nodes lack how many.
func (h holdings) missing(nodes []int, msgs []scenarioPub) (n int, detail string) {
	var per []string
	for _, i := range nodes {
		k := 0
		for _, p := range msgs {
			if _, ok := h[i][p.id]; !ok {
				if n == 0 {
					detail = fmt.Sprintf("(node %d lacks %s from node %d", i, p.id, p.from)
				}
				n++
				k++
			}
		}
		if k > 0 {
			per = append(per, fmt.Sprintf("node %d: %d", i, k))
		}
	}
	if n > 0 {
		detail += "; " + strings.Join(per, ", ") + ")"
	}
	return n, detail
}

// awaitHeld polls until every node of nodes holds every message of msgs,
// within the limit, and returns the last holdings read and how many pairs
// they lack.
func (s *scenario) awaitHeld(ctx context.Context, nodes []int, msgs []scenarioPub) (holdings, int, string) {
	var h holdings
	var lack int
	var ex string
	s.poll(ctx, 200*time.Millisecond, func() bool {
		// What a poll found stays found: a node that catches up may
		// lack more than one poll looks up one by one.
		h = s.collectHeld(ctx, nodes, msgs, 200, h)
		lack, ex = h.missing(nodes, msgs)
		return lack == 0
	})
	return h, lack, ex
}

// spread returns, per message, how long after its publish the last node
// of nodes received it (messages some node lacks are left out), sorted.
func (h holdings) spread(nodes []int, msgs []scenarioPub) []time.Duration {
	var out []time.Duration
	for _, p := range msgs {
		var last time.Time
		all := true
		for _, i := range nodes {
			at, ok := h[i][p.id]
			if !ok {
				all = false
				break
			}
			if at.After(last) {
				last = at
			}
		}
		if all {
			out = append(out, last.Sub(p.at))
		}
	}
	slices.Sort(out)
	return out
}

// lastAt is the latest receipt time in h of msgs at nodes.
func (h holdings) lastAt(nodes []int, msgs []scenarioPub) time.Time {
	var last time.Time
	for _, i := range nodes {
		for _, p := range msgs {
			if at, ok := h[i][p.id]; ok && at.After(last) {
				last = at
			}
		}
	}
	return last
}

// holdsAny counts the pairs of msgs × nodes that h holds.
func (h holdings) holdsAny(nodes []int, msgs []scenarioPub) (n int, example string) {
	for _, i := range nodes {
		for _, p := range msgs {
			if _, ok := h[i][p.id]; ok {
				if n == 0 {
					example = fmt.Sprintf("node %d holds %s from node %d", i, p.id, p.from)
				}
				n++
			}
		}
	}
	return n, example
}

func (s *scenario) spreadFigures(what string, d []time.Duration, target string) {
	if len(d) == 0 {
		s.res.figure(what+", p50", target, 0, false)
		return
	}
	s.res.figure(what+", p50", target, percentile(d, 0.5), true)
	s.res.figure(what+", p99", "", percentile(d, 0.99), true)
	s.res.figure(what+", max", "", d[len(d)-1], true)
}

// views reads GET /membership of every node of nodes at once; a node that
// does not answer is left out.
func (s *scenario) views(ctx context.Context, nodes []int) map[int]api.Membership {
	out := make(map[int]api.Membership, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range nodes {
		wg.Go(func() {
			var v api.Membership
			err := s.ch.call(ctx, func(ctx context.Context) (err error) { v, err = s.ch.mesh.Client(i).Membership(ctx); return err })
			if err == nil {
				mu.Lock()
				out[i] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// peersOf lists the nodes of among whose active view (in vs) holds node k,
// with their degree.
func (s *scenario) peersOf(vs map[int]api.Membership, k int) map[int]int {
	id := s.ch.state.Nodes[k].ID
	out := map[int]int{}
	for i, v := range vs {
		if i == k {
			continue
		}
		for _, p := range v.Active {
			if p.ID == id {
				out[i] = len(v.Active)
			}
		}
	}
	return out
}

// activeState is the state v's active view gives node k: "alive",
// "suspect", or "" when k is not in it.
func (s *scenario) activeState(v api.Membership, k int) string {
	id := s.ch.state.Nodes[k].ID
	for _, p := range v.Active {
		if p.ID == id {
			return p.State
		}
	}
	return ""
}

// degreeBounds gives each node its low bound and its high bound: the
// membership defaults, with the high bound raised to the node's degree in
// the launch topology where that is above it, as mesh up raises
// --active-high (Config.Membership).
func (s *scenario) degreeBounds() (low int, high map[int]int) {
	d := membership.DefaultConfig()
	deg := make(map[int]int, s.ch.Len())
	for i, n := range s.ch.state.Nodes {
		for _, j := range n.Chosen {
			deg[i]++
			deg[j]++
		}
	}
	high = make(map[int]int, s.ch.Len())
	for i := range s.ch.state.Nodes {
		high[i] = max(d.ActiveHigh, deg[i])
	}
	return min(d.ActiveLow, s.ch.Len()-1), high
}

// healthy reports whether the nodes of alive are each within their degree
// bounds, linked to nodes of alive only, and connected among themselves.
func (s *scenario) healthy(vs map[int]api.Membership, alive []int, low int, high map[int]int) (bool, string) {
	pos := map[int]int{}
	for k, i := range alive {
		pos[i] = k
	}
	var links [][2]int
	for _, i := range alive {
		v, ok := vs[i]
		if !ok {
			return false, fmt.Sprintf("node %d did not answer", i)
		}
		if len(v.Active) < min(low, len(alive)-1) || len(v.Active) > high[i] {
			return false, fmt.Sprintf("node %d holds %d links, outside %d..%d", i, len(v.Active), low, high[i])
		}
		for _, p := range v.Active {
			j, ok := s.ch.mesh.IndexOf(p.ID)
			if _, live := pos[j]; !ok || !live {
				return false, fmt.Sprintf("node %d still links to node %d, which is down", i, j)
			}
			links = append(links, [2]int{pos[i], pos[j]})
		}
	}
	if !NewGraph(len(alive), links).Connected() {
		return false, "the graph is not connected"
	}
	return true, ""
}

// kill: the mesh streams; Fraction of it is SIGKILLed at once; the
// survivors stream on for Duration. Every survivor must hold every message
// that survivors published after the kill, and be back within its degree
// bounds, linked to survivors only, with the survivors connected.
func (s *scenario) kill(ctx context.Context) error {
	low, high := s.degreeBounds()
	dead := s.pick(s.share(s.cfg.Fraction))
	survivors := without(s.all(), dead)
	s.res.Faulted = dead
	var killed atomic.Bool
	st := s.stream(ctx, s.cfg.Rate, func() int {
		if killed.Load() {
			return survivors[s.rng.IntN(len(survivors))]
		}
		return s.rng.IntN(s.ch.Len())
	}, func() int {
		if killed.Load() {
			return 1
		}
		return 0
	})
	if err := sleep(ctx, min(2*time.Second, s.cfg.Duration)); err != nil {
		st.end()
		return err
	}
	s.logf("killing %d of %d nodes: %s", len(dead), s.ch.Len(), joinIndices(dead))
	// Times run from the moment the verb is asked: it signals first and
	// then waits for the change to be seen, as long as that takes.
	at := time.Now()
	if err := s.ch.Kill(ctx, dead); err != nil {
		st.end()
		return err
	}
	killed.Store(true)
	// The survivors stream for Duration after the kill, however long the
	// membership takes.
	streamed := make(chan struct{})
	var pubs []scenarioPub
	var failed []scenarioFailure
	go func() {
		defer close(streamed)
		_ = sleep(ctx, s.cfg.Duration-time.Since(at))
		pubs, failed = st.end()
	}()
	var why string
	back := s.poll(ctx, 20*time.Millisecond, func() bool {
		var ok bool
		ok, why = s.healthy(s.views(ctx, survivors), survivors, low, high)
		return ok
	})
	healed := time.Since(at)
	s.logf("survivors within bounds and connected: %v after the kill", healed)
	<-streamed
	after := slices.DeleteFunc(pubs, func(p scenarioPub) bool { return p.tag == 0 })
	// A publish at a node being killed fails as it should; one at a
	// survivor after the kill is a message lost.
	late := slices.DeleteFunc(failed, func(f scenarioFailure) bool { return f.tag == 0 })
	h, lack, ex := s.awaitHeld(ctx, survivors, after)
	s.res.check(lack == 0 && len(after) > 0 && len(late) == 0, "every survivor holds every message survivors published after the kill",
		"%d messages × %d survivors, %d pairs missing %s; %d publishes at survivors failed %s (and %d at nodes as they were killed)", len(after), len(survivors), lack, ex, len(late), firstOf(late), len(failed)-len(late))
	s.res.check(back, "every survivor within its degree bounds, linked to survivors only, the survivors connected", "%s", orDone(why, back))
	s.res.figure("survivors within degree bounds and connected, after the kill", "≤ 5 s", healed, back)
	s.spreadFigures("post-kill messages, publish to every survivor", h.spread(survivors, after), "")
	return nil
}

func firstOf(s []scenarioFailure) string {
	if len(s) == 0 {
		return ""
	}
	return "(" + s[0].err + ")"
}

func orDone(why string, ok bool) string {
	if ok {
		return "yes"
	}
	return "not within the limit: " + why
}

// loss: every link drops Loss of its frames; Messages are published at
// Rate. Every node must hold every message.
func (s *scenario) loss(ctx context.Context) error {
	s.logf("loss %v on every link", s.cfg.Loss)
	if err := s.ch.Loss(ctx, s.cfg.Loss, s.all()); err != nil {
		return err
	}
	var sent atomic.Int64
	done := make(chan struct{})
	st := s.stream(ctx, s.cfg.Rate, func() int {
		if sent.Add(1) == int64(s.cfg.Messages) {
			close(done)
		}
		return s.rng.IntN(s.ch.Len())
	}, func() int { return 0 })
	select {
	case <-done:
	case <-ctx.Done():
	}
	pubs, failed := st.end()
	if len(pubs) > s.cfg.Messages {
		pubs = pubs[:s.cfg.Messages]
	}
	h, lack, ex := s.awaitHeld(ctx, s.all(), pubs)
	s.res.check(lack == 0 && len(pubs) == s.cfg.Messages, "every node holds every message",
		"%d of %d messages published × %d nodes, %d pairs missing %s; %d publishes failed %s", len(pubs), s.cfg.Messages, s.ch.Len(), lack, ex, len(failed), firstOf(failed))
	s.spreadFigures("publish to every node", h.spread(s.all(), pubs), "")
	return nil
}

// split: the mesh is cut in halves (the first half of the indices and the
// rest) for Duration while both sides publish. Before the heal, every node
// must hold every message of its own side and none of the other's; after
// it, every node must hold every message.
func (s *scenario) split(ctx context.Context) error {
	n := s.ch.Len()
	a, b := s.all()[:n/2], s.all()[n/2:]
	s.logf("split %s | %s", joinIndices(a), joinIndices(b))
	if err := s.ch.Split(ctx, a, b); err != nil {
		return err
	}
	side := 0
	st := s.stream(ctx, s.cfg.Rate, func() int {
		side = 1 - side
		if side == 0 {
			return a[s.rng.IntN(len(a))]
		}
		return b[s.rng.IntN(len(b))]
	}, func() int { return side })
	if err := sleep(ctx, s.cfg.Duration); err != nil {
		st.end()
		return err
	}
	pubs, failed := st.end()
	// pick ran before tag for each publish, so tag is the side of the
	// publisher; check it from the publisher anyway.
	var fromA, fromB []scenarioPub
	for _, p := range pubs {
		if slices.Contains(a, p.from) {
			fromA = append(fromA, p)
		} else {
			fromB = append(fromB, p)
		}
	}
	// Still split: each side must hold its own side's messages and none
	// of the other's.
	_, lackA, exA := s.awaitHeld(ctx, a, fromA)
	_, lackB, exB := s.awaitHeld(ctx, b, fromB)
	// Every message of the other side asked one by one: a copy that
	// crossed may have arrived before the side's own.
	leakA, lexA := s.collectHeld(ctx, a, fromB, len(fromB), nil).holdsAny(a, fromB)
	leakB, lexB := s.collectHeld(ctx, b, fromA, len(fromA), nil).holdsAny(b, fromA)
	s.res.check(lackA == 0 && lackB == 0 && len(fromA) > 0 && len(fromB) > 0, "during the split each side holds all of its own side's messages",
		"%d messages on side %s, %d on side %s; %d and %d pairs missing %s%s; %d publishes failed %s", len(fromA), joinIndices(a), len(fromB), joinIndices(b), lackA, lackB, exA, exB, len(failed), firstOf(failed))
	s.res.check(leakA == 0 && leakB == 0, "during the split no node holds a message of the other side",
		"%d and %d pairs crossed %s%s", leakA, leakB, lexA, lexB)
	s.logf("heal")
	healed := time.Now()
	if err := s.ch.Heal(ctx); err != nil {
		return err
	}
	h, lack, ex := s.awaitHeld(ctx, s.all(), pubs)
	s.res.check(lack == 0, "after the heal every node holds every message", "%d pairs missing %s", lack, ex)
	cross := append(slices.Clone(fromB), fromA...)
	last := h.lastAt(a, fromB)
	if lb := h.lastAt(b, fromA); lb.After(last) {
		last = lb
	}
	s.res.figure("every node holds every message, after the heal", "≤ 5 s", last.Sub(healed), lack == 0 && len(cross) > 0)
	return nil
}

// pause: Fraction of the mesh is SIGSTOPped for Duration while the others
// publish. Before the paused nodes resume, every other node must hold
// every message (the pause lasts until they do, within the limit); after,
// the paused nodes must catch up.
func (s *scenario) pause(ctx context.Context) error {
	paused := s.pick(s.share(s.cfg.Fraction))
	others := without(s.all(), paused)
	s.res.Faulted = paused
	s.logf("pausing %s", joinIndices(paused))
	if err := s.ch.Pause(ctx, paused); err != nil {
		return err
	}
	start := time.Now()
	st := s.stream(ctx, s.cfg.Rate, func() int { return others[s.rng.IntN(len(others))] }, func() int { return 0 })
	if err := sleep(ctx, s.cfg.Duration); err != nil {
		st.end()
		return err
	}
	pubs, failed := st.end()
	h, lack, ex := s.awaitHeld(ctx, others, pubs)
	s.res.check(lack == 0 && len(pubs) > 0, "the others hold every message among themselves while the paused nodes are stopped",
		"%d messages × %d nodes, %d pairs missing %s; %d publishes failed %s", len(pubs), len(others), lack, ex, len(failed), firstOf(failed))
	s.spreadFigures("during the pause, publish to every other node", h.spread(others, pubs), "")
	s.logf("resuming after %v", time.Since(start))
	resumed := time.Now()
	if err := s.ch.Resume(ctx, paused); err != nil {
		return err
	}
	hp, plack, pex := s.awaitHeld(ctx, paused, pubs)
	s.res.check(plack == 0, "the paused nodes hold every message after they resume", "%d messages × %d nodes, %d pairs missing %s", len(pubs), len(paused), plack, pex)
	s.res.figure("paused nodes hold everything, after the resume", "≤ 5 s", hp.lastAt(paused, pubs).Sub(resumed), plack == 0)
	return nil
}

// restart: one node is SIGKILLed, the others publish for Duration, and the
// launcher starts it again. It must then hold every message published
// while it was down.
func (s *scenario) restart(ctx context.Context) error {
	down := s.pick(1)
	k := down[0]
	others := without(s.all(), down)
	s.res.Faulted = down
	s.logf("killing node %d", k)
	if err := s.ch.Kill(ctx, down); err != nil {
		return err
	}
	st := s.stream(ctx, s.cfg.Rate, func() int { return others[s.rng.IntN(len(others))] }, func() int { return 0 })
	if err := sleep(ctx, s.cfg.Duration); err != nil {
		st.end()
		return err
	}
	pubs, failed := st.end()
	s.logf("restarting node %d", k)
	asked := time.Now()
	if err := s.ch.Restart(ctx, down); err != nil {
		return err
	}
	h, lack, ex := s.awaitHeld(ctx, down, pubs)
	s.res.check(lack == 0 && len(pubs) > 0, "the restarted node holds every message published while it was down",
		"%d messages, %d missing %s; %d publishes failed %s", len(pubs), lack, ex, len(failed), firstOf(failed))
	s.res.figure("the restarted node holds everything, after the restart was asked", "≤ 5 s", h.lastAt(down, pubs).Sub(asked), lack == 0)
	return nil
}

// crash: one node is SIGKILLed. Every peer that held it in its active view
// must drop it and be back within its degree bounds; the time until each
// is back at the degree it had is the replacement figure.
func (s *scenario) crash(ctx context.Context) error {
	vs := s.views(ctx, s.all())
	low, _ := s.degreeBounds()
	k := s.pick(1)[0]
	s.res.Faulted = []int{k}
	peers := s.peersOf(vs, k)
	ps := mapKeys(peers)
	if len(ps) == 0 {
		return fmt.Errorf("node %d has no peers to watch", k)
	}
	s.logf("killing node %d, watched by %s", k, joinIndices(ps))
	at := time.Now()
	if err := s.ch.Kill(ctx, []int{k}); err != nil {
		return err
	}
	var detected, replaced time.Duration
	var gotDetected, gotReplaced, inBounds bool
	var why string
	var short []string // peers below the degree they had, at the last poll
	s.poll(ctx, 20*time.Millisecond, func() bool {
		vs := s.views(ctx, ps)
		now := time.Since(at)
		gone, back, bounded := true, true, true
		short = short[:0]
		for _, i := range ps {
			v, ok := vs[i]
			if !ok {
				gone, back, bounded = false, false, false
				why = fmt.Sprintf("node %d did not answer", i)
				break
			}
			if s.activeState(v, k) != "" {
				gone = false
				why = fmt.Sprintf("node %d still holds node %d", i, k)
			}
			// Replaced: back at the degree it had, or within its bounds
			// with its replacement dial over (a full node may refuse
			// it, as HyParView's do, and the node keeps what it has).
			if len(v.Active) < peers[i] && (len(v.Active) < low || len(v.Dialing) > 0) {
				back = false
			}
			if len(v.Active) < peers[i] {
				short = append(short, fmt.Sprintf("node %d holds %d of %d links, with %d passive entries and %d dials", i, len(v.Active), peers[i], len(v.Passive), len(v.Dialing)))
			}
			if len(v.Active) < low {
				bounded = false
			}
		}
		if gone && !gotDetected {
			gotDetected, detected = true, now
		}
		if gone && back && !gotReplaced {
			gotReplaced, replaced = true, now
		}
		if gone && bounded {
			inBounds = true
		}
		return gotReplaced
	})
	s.res.check(gotDetected, "every peer of the crashed node drops it from its active view", "%d peers: %s", len(ps), orDone(why, gotDetected))
	backDetail := "all back at the degree they had"
	if len(short) > 0 {
		backDetail = "below the degree they had, their replacement dials refused or failed: " + strings.Join(short, "; ")
	}
	s.res.check(gotDetected && inBounds, "every peer of the crashed node is back within its degree bounds", "%s; %s", orDone(why, inBounds), backDetail)
	s.res.figure("crashed node gone from every peer's active view", "≤ 2 s", detected, gotDetected)
	s.res.figure("every peer replaced the crashed node (back at its degree, or its replacement dial over)", "≤ 2 s", replaced, gotReplaced)
	return nil
}

func mapKeys(m map[int]int) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hung: a node is SIGSTOPped for one second, which must evict nobody;
// then for up to Duration, which must get it suspected and then evicted by
// every peer; it rejoins once resumed.
func (s *scenario) hung(ctx context.Context) error {
	k := s.pick(1)[0]
	s.res.Faulted = []int{k}
	peers := mapKeys(s.peersOf(s.views(ctx, s.all()), k))
	if len(peers) == 0 {
		return fmt.Errorf("node %d has no peers to watch", k)
	}
	before, err := s.evictions(ctx)
	if err != nil {
		return err
	}
	s.logf("pausing node %d for 1 s, watched by %s", k, joinIndices(peers))
	if err := s.ch.Pause(ctx, []int{k}); err != nil {
		return err
	}
	// Watch through the pause and well past the eviction it could have
	// started: probe timeout plus suspicion, at their defaults, twice.
	dropped := -1
	watch := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) && dropped < 0 {
			vs := s.views(ctx, peers)
			for _, i := range peers {
				if v, ok := vs[i]; ok && s.activeState(v, k) == "" {
					dropped = i
				}
			}
			_ = sleep(ctx, 50*time.Millisecond)
		}
	}
	watch(time.Second)
	if err := s.ch.Resume(ctx, []int{k}); err != nil {
		return err
	}
	watch(9 * time.Second)
	after, err := s.evictions(ctx)
	if err != nil {
		return err
	}
	s.res.check(dropped < 0 && after == before, "a one-second pause evicts nobody",
		"peers %s kept node %d throughout: %v; evictions in the mesh %d before, %d after", joinIndices(peers), k, dropped < 0, before, after)

	// Let the brief pause's suspicion clear, then hang it for good.
	if err := s.settle(ctx); err != nil {
		return err
	}
	peers = mapKeys(s.peersOf(s.views(ctx, s.all()), k))
	s.logf("pausing node %d, watched by %s", k, joinIndices(peers))
	at := time.Now()
	if err := s.ch.Pause(ctx, []int{k}); err != nil {
		return err
	}
	var suspected, evicted time.Duration
	var gotSuspected, gotEvicted bool
	var why string
	end := at.Add(max(s.cfg.Duration, time.Second))
	for time.Now().Before(end) && !gotEvicted && ctx.Err() == nil {
		vs := s.views(ctx, peers)
		now := time.Since(at)
		susp, gone := true, true
		for _, i := range peers {
			v, ok := vs[i]
			if !ok {
				susp, gone = false, false
				why = fmt.Sprintf("node %d did not answer", i)
				break
			}
			switch s.activeState(v, k) {
			case "alive":
				susp, gone = false, false
				why = fmt.Sprintf("node %d holds node %d alive", i, k)
			case "suspect":
				gone = false
				why = fmt.Sprintf("node %d holds node %d suspect", i, k)
			}
		}
		if susp && !gotSuspected {
			gotSuspected, suspected = true, now
		}
		if gone {
			gotEvicted, evicted = true, now
		}
		_ = sleep(ctx, 20*time.Millisecond)
	}
	if err := s.ch.Resume(ctx, []int{k}); err != nil {
		return err
	}
	s.res.check(gotSuspected, "every peer of the hung node suspects it", "%d peers: %s", len(peers), orDone(why, gotSuspected))
	s.res.check(gotEvicted, "every peer of the hung node evicts it", "%d peers: %s", len(peers), orDone(why, gotEvicted))
	s.res.figure("hung node suspected by every peer, after the pause", "≤ 3 s", suspected, gotSuspected)
	s.res.figure("hung node evicted by every peer, after the pause", "≤ 10 s", evicted, gotEvicted)
	if err := s.settle(ctx); err != nil {
		return err
	}
	s.res.check(true, "the resumed node rejoins", "every node at its low degree bound and the mesh connected again")
	return nil
}

// evictions sums gossipmesh_membership_events_total{kind="evict"} over
// every node's /metrics.
func (s *scenario) evictions(ctx context.Context) (int, error) {
	total := 0
	hc := &http.Client{Timeout: 5 * time.Second}
	for i, n := range s.ch.state.Nodes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, fmt.Errorf("node %d: GET /metrics: %w", i, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("node %d: GET /metrics: %w", i, err)
		}
		const name = `gossipmesh_membership_events_total{kind="evict"} `
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, fmt.Errorf("node %d: %q: %w", i, line, err)
				}
				total += int(f)
			}
		}
	}
	return total, nil
}

// ScenarioMedian is one figure over several runs of a scenario: its
// median over the runs that reached it, every run's value in run order,
// and how many runs never reached it within the limit.
type ScenarioMedian struct {
	What    string    `json:"what"`
	Target  string    `json:"target,omitempty"`
	Median  float64   `json:"median_ms"`
	Runs    []float64 `json:"runs_ms"`
	Missing int       `json:"missing,omitempty"`
}

// MedianFigures gives each figure of the runs its median, in the order of
// the first run's figures, so that a figure quoted from several runs of a
// loaded machine is the middle one rather than the luckiest.
func MedianFigures(runs []ScenarioResult) []ScenarioMedian {
	var out []ScenarioMedian
	at := map[string]int{}
	for _, r := range runs {
		for _, f := range r.Figures {
			k, ok := at[f.What]
			if !ok {
				k = len(out)
				at[f.What] = k
				out = append(out, ScenarioMedian{What: f.What, Target: f.Target})
			}
			if f.Missing {
				out[k].Missing++
				continue
			}
			out[k].Runs = append(out[k].Runs, f.Millis)
		}
	}
	for k := range out {
		if v := slices.Sorted(slices.Values(out[k].Runs)); len(v) > 0 {
			out[k].Median = v[(len(v)-1)/2]
			if len(v)%2 == 0 {
				out[k].Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
		}
	}
	return out
}
