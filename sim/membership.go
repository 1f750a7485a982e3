package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/membership"
	"gossipmesh/wire"
)

// Membership in the simulator.
//
// With Config.Membership set, every node runs package membership's code,
// the same that `mesh node --membership` runs, and the overlay is no longer
// the fixed topology: the topology is only what the nodes booted with.
// The engine carries out what each node's membership asks for, in virtual
// time:
//
//   - a dial reaches its target one link delay later; the link is then up
//     at both ends at once (membership Up, gossip PeerUp), or, when the
//     target is down, the dial fails there (membership DialFailed). A dial
//     across a cut link gets no answer and times out in the membership;
//     one to a paused node waits for it to resume, as a connection waits
//     in a stopped process's listen backlog;
//   - an eviction or a surplus drop closes the link at both ends at once
//     (membership Down, gossip PeerDown);
//   - PING, PONG and peer-exchange frames travel with the link delay and
//     through the fault layer (loss, delay, cuts) like every frame; those
//     to a paused node wait until it resumes, and so do its membership ticks,
//     so that its failure detector sees the stall as its own (Lifeguard);
//   - every frame a node receives on a link (payload, control or
//     membership) counts as heard from that peer: it stamps the link,
//     and the membership reads the stamps at its next tick, as in the
//     runtime;
//   - a crash closes the crashed node's links at its peers at once (its
//     kernel closes its sockets), unless MembershipConfig.SilentCrash says
//     that it vanishes without a word, when only its peers' failure
//     detectors notice.
//
// Nodes then need peer lists that grow and shrink: each core gets a window
// of a private copy of the boot adjacency (a full slice expression, so an
// append past it reallocates), one allocation for the whole run.
//
// Membership is off by default and costs a run without it one nil check
// per frame: its events ride on the engine's tick events, with the low
// bits of ref (which a tick does not use) saying which membership event
// they are.

// MembershipConfig configures membership in a simulator run. Start from
// DefaultMembershipConfig.
type MembershipConfig struct {
	// Config tunes every node's membership.Membership. Default
	// membership.DefaultConfig(). AllowAddr is the simulator's own
	// (addresses are node ids).
	Config membership.Config
	// SilentCrash makes a crashed node vanish without closing its links:
	// its peers keep them until their failure detectors evict it (a host
	// that loses power). Default false: a crash closes them at once, as
	// the kernel of a killed process does.
	SilentCrash bool
	// Churn replaces nodes while the run goes on. Default none.
	Churn Churn
	// Until keeps the run going until this virtual time even when no
	// gossip is in flight, so that the membership's ticks and the churn
	// go on. Default 0: the run ends when the gossip does (and at the end
	// of the churn, when there is one).
	Until time.Duration
}

// DefaultMembershipConfig returns membership on with the membership
// package's defaults, no churn and no silent crashes.
func DefaultMembershipConfig() *MembershipConfig {
	return &MembershipConfig{Config: membership.DefaultConfig()}
}

// Churn replaces nodes during a run: at every step (Every, 2×Every, … up
// to Duration) Rate × Config.Nodes random live nodes crash and as many
// fresh nodes (new ids, empty state) join, each through one random live
// node it knows (its seed, in its passive view).
type Churn struct {
	// Rate is the fraction of Config.Nodes replaced per step. Default 0:
	// no churn.
	Rate float64
	// Every is the time between steps. Default 1 s.
	Every time.Duration
	// Duration is when the last step comes. Default 0: no churn.
	Duration time.Duration
}

// MaxChurnRate bounds Churn.Rate: replacing more than half of the nodes at
// once is a crash, not churn.
const MaxChurnRate = 0.5

// On reports whether c replaces anyone.
func (c Churn) On() bool { return c.Rate > 0 && c.Duration > 0 }

// every is Every with its default.
func (c Churn) every() time.Duration {
	if c.Every > 0 {
		return c.Every
	}
	return time.Second
}

// Steps is how many churn steps a run has.
func (c Churn) Steps() int {
	if !c.On() {
		return 0
	}
	return int(c.Duration / c.every())
}

// PerStep is how many of n nodes each step replaces (at least one).
func (c Churn) PerStep(n int) int {
	return max(1, int(math.Round(c.Rate*float64(n))))
}

// Joiners is how many fresh nodes a run of n nodes adds.
func (c Churn) Joiners(n int) int { return c.Steps() * c.PerStep(n) }

func (mc *MembershipConfig) validate(c *Config, n int) error {
	if err := mc.Config.Validate(); err != nil {
		return err
	}
	if c.Graph != nil && c.Graph.Directed || c.Graph == nil && c.Topology == TopologyKOut {
		return errors.New("membership: links are two-way; a kout topology's are one-way")
	}
	if len(c.Adversaries) > 0 {
		// Their report counts honest reach over a fixed set of nodes.
		return errors.New("membership: not with adversaries (their report assumes the fixed overlay)")
	}
	ch := mc.Churn
	if !(ch.Rate >= 0 && ch.Rate <= MaxChurnRate) {
		return fmt.Errorf("churn rate %v: want 0..%v", ch.Rate, MaxChurnRate)
	}
	if ch.Every < 0 || ch.Duration < 0 || mc.Until < 0 {
		return fmt.Errorf("churn every %v, duration %v, until %v: must not be negative", ch.Every, ch.Duration, mc.Until)
	}
	if ch.On() {
		if c.Crash.Fraction > 0 {
			return errors.New("churn: crashes come from the churn; drop the crash")
		}
		if ch.Steps() == 0 {
			return fmt.Errorf("churn duration %v is shorter than one step of %v", ch.Duration, ch.every())
		}
		if ch.PerStep(n) >= n {
			return fmt.Errorf("churn rate %v replaces all %d nodes at once", ch.Rate, n)
		}
		if n+ch.Joiners(n) > MaxNodes {
			return fmt.Errorf("churn: %d nodes and %d joiners are over %d", n, ch.Joiners(n), MaxNodes)
		}
	}
	return nil
}

// Membership events ride on tick events: ref is refTick | kind, kind
// nonzero (a gossip tick's is 0); kinds from memSlot0 on index a slot.
const (
	memTick  uint32 = 1 // the membership's own tick of node to
	memPing  uint32 = 2 // a PING from → to
	memPong  uint32 = 3 // a PONG from → to
	memStep  uint32 = 4 // a churn step: sample the degrees, crash, join
	memSlot0 uint32 = 16
)

// memSlot is a membership frame that carries data: a peer exchange or a
// dial.
type memSlot struct {
	dial    bool
	entry   membership.Entry // dial: the entry dialed
	need    bool             // peer exchange: the sender needs the link
	entries []membership.Entry
}

// MembershipStats counts what the nodes' memberships did in a run.
type MembershipStats struct {
	Pings     int64 `json:"pings"`     // PING frames sent
	Exchanges int64 `json:"exchanges"` // peer-exchange frames sent
	Lost      int64 `json:"lost"`      // membership frames the fault layer dropped
	Dials     int64 `json:"dials"`     // dials asked for
	// DialsFailed were refused (the target was down) or timed out.
	DialsFailed int64 `json:"dials_failed"`
	Links       int64 `json:"links"` // links that came up from dials
	Suspects    int64 `json:"suspects"`
	Evictions   int64 `json:"evictions"`
	Drops       int64 `json:"drops"`   // surplus links dropped above the high bound
	Crashed     int   `json:"crashed"` // nodes the churn crashed
	Joined      int   `json:"joined"`  // fresh nodes the churn booted
	// LinksClosedByCrashes were closed at the crashed nodes' peers.
	LinksClosedByCrashes int64 `json:"links_closed_by_crashes"`
}

// MembershipReport is a run's membership figures, in its Report.
type MembershipReport struct {
	MembershipStats
	// End is the live nodes' degrees when the run ended.
	End DegreeSample `json:"end"`
}

// membershipReport is what Run puts in the report; nil with membership
// off.
func (s *Sim) membershipReport() *MembershipReport {
	m := s.mem
	if m == nil {
		return nil
	}
	hook := m.onDegree
	var end DegreeSample
	m.onDegree = func(d DegreeSample) { end = d }
	s.memReport(s.memSample())
	m.onDegree = hook
	return &MembershipReport{MembershipStats: m.stats, End: end}
}

// DegreeSample is the active degree (links up) of the live nodes at one
// moment: a churn step samples it just before it crashes anyone, and
// again right after the crashes (the Dip fields), before anyone has
// replaced a lost link.
type DegreeSample struct {
	At   int64 `json:"at_ns"` // virtual time
	Live int   `json:"live"`
	Min  int   `json:"min"`
	Max  int   `json:"max"`
	// Mean is the mean degree.
	Mean float64 `json:"mean"`
	// Below and Above count the live nodes below the low bound and above
	// the high bound.
	Below int `json:"below"`
	Above int `json:"above"`
	// Booting counts the live nodes that joined within the last step,
	// BootingOutside those of them outside the bounds.
	Booting        int `json:"booting"`
	BootingOutside int `json:"booting_outside"`
	// DipMin and DipBelow are the lowest degree and the live nodes below
	// the low bound right after the step's crashes; at the first and the
	// last sample, which crash nobody, they repeat Min and Below.
	DipMin   int `json:"dip_min"`
	DipBelow int `json:"dip_below"`
}

// members is the simulator's half of the membership: each node's
// membership.Membership, the links, the churn's state.
type members struct {
	cfg   *MembershipConfig
	mcfg  membership.Config
	nodes []*membership.Membership // nil for a node that has not joined
	links [][]uint32               // links up, both ends listed
	// heardAt[i][k] is when node i last received a frame over its link
	// links[i][k], 0 for none since its membership last heard of it: as
	// in the runtime, where a link's reader stamps each frame and the
	// membership reads the stamps at its tick.
	heardAt [][]int64
	adj     []wire.NodeID // the cores' private copy of the boot adjacency
	armed   []int64       // pending membership tick, 0 none
	addrs   []string
	mrand   []rand.Rand
	mpcg    []rand.PCG
	slots   []memSlot
	free    []uint32
	pool    []*membership.Output // free Outputs
	stack   []*membership.Output // Outputs handed out by memOut, innermost last

	initial int   // nodes at boot; the others wait for the churn
	next    int   // the next fresh node
	until   int64 // the run goes on at least until then
	final   bool  // the loop has ended: broadcasts may settle
	churn   *rand.Rand
	live    []uint32 // live nodes, any order
	pos     []int32  // index in live, -1 for none
	bootAt  []int64  // when each node booted, -1 never
	joined  []bool   // its first link came up
	stats   MembershipStats

	onJoin   func(node int, at int64)
	onDegree func(DegreeSample)
}

// churnStream and memStream are the PCG streams of the churn's draws and
// of the nodes' memberships (memStream + node), apart from the network's
// and the cores' streams.
const (
	churnStream = 1<<62 + 3
	memStream   = 1 << 61
)

// withJoiners returns g with room for the churn's fresh nodes: they have
// no boot links.
func withJoiners(g *Graph, joiners int) *Graph {
	if joiners == 0 {
		return g
	}
	off := make([]int, len(g.Off), len(g.Off)+joiners)
	copy(off, g.Off)
	for range joiners {
		off = append(off, len(g.Adj))
	}
	return &Graph{Off: off, Adj: g.Adj, Directed: g.Directed}
}

// newMembers builds the membership layer of a run over g (joiners
// included); initial nodes boot, the others wait.
func newMembers(cfg *Config, g *Graph, initial int) *members {
	mc := cfg.Membership
	n := g.N()
	m := &members{
		cfg:     mc,
		mcfg:    mc.Config,
		nodes:   make([]*membership.Membership, n),
		links:   make([][]uint32, n),
		heardAt: make([][]int64, n),
		adj:     slices.Clone(g.Adj),
		armed:   make([]int64, n),
		addrs:   make([]string, n),
		mrand:   make([]rand.Rand, n),
		mpcg:    make([]rand.PCG, n),
		initial: initial,
		next:    initial,
		until:   int64(mc.Until),
		churn:   rand.New(rand.NewPCG(cfg.Seed, churnStream)),
		pos:     make([]int32, n),
		bootAt:  make([]int64, n),
		joined:  make([]bool, n),
	}
	if mc.Churn.On() {
		m.until = max(m.until, int64(mc.Churn.Duration))
	}
	m.mcfg.AllowAddr = m.allowed
	for i := range n {
		m.addrs[i] = "n" + strconv.Itoa(i+1)
		m.pos[i] = -1
		m.bootAt[i] = -1
	}
	return m
}

// allowed is the peer-exchange address rule: an address is a node id in
// range, n1 … nN.
func (m *members) allowed(addr string) bool {
	id, err := strconv.Atoi(strings.TrimPrefix(addr, "n"))
	return err == nil && strings.HasPrefix(addr, "n") && id >= 1 && id <= len(m.addrs)
}

// peers returns node i's window of the private adjacency.
func (m *members) peers(g *Graph, i int) []wire.NodeID {
	lo, hi := g.Off[i], g.Off[i+1]
	return m.adj[lo:hi:hi]
}

func (m *members) entry(i uint32) membership.Entry {
	return membership.Entry{ID: wire.NodeID(i) + 1, Addr: m.addrs[i]}
}

func (m *members) get() *membership.Output {
	if k := len(m.pool); k > 0 {
		o := m.pool[k-1]
		m.pool = m.pool[:k-1]
		return o
	}
	return &membership.Output{}
}

func (m *members) put(o *membership.Output) {
	o.Reset()
	m.pool = append(m.pool, o)
}

func (m *members) linked(i, j uint32) bool { return slices.Contains(m.links[i], j) }

func (m *members) link(i, j uint32) {
	m.links[i] = append(m.links[i], j)
	m.heardAt[i] = append(m.heardAt[i], 0)
}

func (m *members) unlink(i, j uint32) {
	if k := slices.Index(m.links[i], j); k >= 0 {
		l, h := m.links[i], m.heardAt[i]
		last := len(l) - 1
		l[k], h[k] = l[last], h[last]
		m.links[i], m.heardAt[i] = l[:last], h[:last]
	}
}

func (m *members) addLive(i uint32) {
	m.pos[i] = int32(len(m.live))
	m.live = append(m.live, i)
}

func (m *members) removeLive(i uint32) {
	k := m.pos[i]
	if k < 0 {
		return
	}
	last := m.live[len(m.live)-1]
	m.live[k] = last
	m.pos[last] = k
	m.live = m.live[:len(m.live)-1]
	m.pos[i] = -1
}

// OnJoin sets a function called when a node's first link comes up: a
// booted node's at time 0, a fresh node's once its dial to its seed is
// answered. From then on it is part of the overlay.
func (s *Sim) OnJoin(f func(node int, at int64)) {
	if s.mem != nil {
		s.mem.onJoin = f
	}
}

// OnDegree sets a function called at every churn step, before it crashes
// anyone, with the degrees of the live nodes, and once more at the end of
// the churn.
func (s *Sim) OnDegree(f func(DegreeSample)) {
	if s.mem != nil {
		s.mem.onDegree = f
	}
}

// MembershipStats returns what the memberships did; ok is false with
// membership off.
func (s *Sim) MembershipStats() (MembershipStats, bool) {
	if s.mem == nil {
		return MembershipStats{}, false
	}
	return s.mem.stats, true
}

// Degrees returns every node's active degree (links up), -1 for a node
// that is down (crashed, or not joined yet). Nil with membership off.
func (s *Sim) Degrees() []int {
	m := s.mem
	if m == nil {
		return nil
	}
	out := make([]int, s.n)
	for i := range out {
		out[i] = -1
		if m.nodes[i] != nil && !s.crashed[i] {
			out[i] = len(m.links[i])
		}
	}
	return out
}

// NodeMembership returns node i's membership (read it, do not drive it),
// nil for a node that has not joined or with membership off.
func (s *Sim) NodeMembership(i int) *membership.Membership {
	if s.mem == nil || i < 0 || i >= s.n {
		return nil
	}
	return s.mem.nodes[i]
}

// Linked reports whether nodes a and b (indexes) have a link up; with
// membership off, whether the topology links them.
func (s *Sim) Linked(a, b int) bool {
	if s.mem == nil {
		return slices.Contains(s.graph.Peers(a), wire.NodeID(b)+1)
	}
	return s.mem.linked(uint32(a), uint32(b))
}

// memStart boots the initial nodes at time 0: each gets a membership, its
// boot links come up in it (the cores have them already), and the first
// churn step is queued.
func (s *Sim) memStart() {
	m := s.mem
	for i := range m.initial {
		m.boot(s, uint32(i), 0)
		for _, p := range s.graph.Peers(i) {
			m.link(uint32(i), uint32(p-1))
		}
	}
	for i := range m.initial {
		u := uint32(i)
		for _, j := range m.links[i] {
			// Inbound or outbound does not change a decision; the lower
			// index is taken as the dialer.
			m.nodes[i].Up(0, m.entry(j), j < u, s.memOut(u))
			s.memDone(u)
		}
		if !m.joined[i] && len(m.links[i]) > 0 {
			m.joined[i] = true
			if m.onJoin != nil {
				m.onJoin(i, 0)
			}
		}
		s.memArm(u)
	}
	if m.cfg.Churn.On() {
		s.memReport(s.memSample())
		s.memPush(event{at: int64(m.cfg.Churn.every()), ref: refTick | memStep})
	}
}

// boot creates node i's membership at now.
func (m *members) boot(s *Sim, i uint32, now int64) {
	m.mpcg[i] = *rand.NewPCG(s.cfg.Seed, memStream+uint64(i))
	m.mrand[i] = *rand.New(&m.mpcg[i])
	ms, err := membership.New(m.mcfg, wire.NodeID(i)+1, m.addrs[i], &m.mrand[i])
	if err != nil {
		panic(err) // the config was validated
	}
	m.nodes[i] = ms
	m.bootAt[i] = now
	m.addLive(i)
}

// The membership's outputs nest (acting on one node's may close a link,
// which the peer's membership hears of at once): each call gets an Output
// of its own from a pool, memOut hands it out and memDone acts on it.
// They pair strictly, innermost first.
func (s *Sim) memOut(i uint32) *membership.Output {
	o := s.mem.get()
	s.mem.stack = append(s.mem.stack, o)
	return o
}

// memDone acts on the Output memOut last handed out, for node i.
func (s *Sim) memDone(i uint32) {
	m := s.mem
	o := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	s.memAct(i, o)
	m.put(o)
}

// memAct carries out what node i's membership asked for in o and re-arms
// its tick.
func (s *Sim) memAct(i uint32, o *membership.Output) {
	m := s.mem
	for _, id := range o.Pings {
		if j := uint32(id - 1); m.linked(i, j) {
			m.stats.Pings++
			s.memSend(i, j, memPing)
		}
	}
	for _, x := range o.Exchanges {
		if j := uint32(x.To - 1); m.linked(i, j) {
			m.stats.Exchanges++
			s.memSend(i, j, m.slot(memSlot{need: x.Need, entries: slices.Clone(x.Entries)}))
		}
	}
	for _, id := range o.Evict {
		s.memClose(i, uint32(id-1))
	}
	for _, id := range o.Drop {
		s.memClose(i, uint32(id-1))
	}
	for _, e := range o.Dial {
		m.stats.Dials++
		j := uint32(e.ID - 1)
		if e.ID == 0 || int(j) >= s.n {
			s.mem.nodes[i].DialFailed(s.now, e, s.memOut(i))
			s.memDone(i)
			continue
		}
		// A dial is not lost: TCP retransmits its SYN. Only a cut stops
		// it, at arrival.
		s.seq++
		s.memPush(event{at: s.now + s.linkDelay(i, j), to: j, from: i, ref: refTick | m.slot(memSlot{dial: true, entry: e})})
	}
	for _, e := range o.Events {
		switch e.Kind {
		case membership.EventSuspect:
			m.stats.Suspects++
		case membership.EventEvict:
			m.stats.Evictions++
		case membership.EventDrop:
			m.stats.Drops++
		case membership.EventDialFailed:
			m.stats.DialsFailed++
		}
	}
	s.memArm(i)
}

// slot stores a membership frame's data and returns its event kind.
func (m *members) slot(sl memSlot) uint32 {
	if k := len(m.free); k > 0 {
		idx := m.free[k-1]
		m.free = m.free[:k-1]
		m.slots[idx] = sl
		return memSlot0 + idx
	}
	if uint32(len(m.slots)) >= refIndex-memSlot0 {
		panic("sim: too many membership frames in flight")
	}
	m.slots = append(m.slots, sl)
	return memSlot0 + uint32(len(m.slots)-1)
}

// take returns the data of a slot kind and frees the slot.
func (m *members) take(kind uint32) memSlot {
	idx := kind - memSlot0
	sl := m.slots[idx]
	m.slots[idx] = memSlot{}
	m.free = append(m.free, idx)
	return sl
}

// linkDelay draws one link delay from a to b, as a copy of a message
// takes.
func (s *Sim) linkDelay(a, b uint32) int64 {
	if s.uniformSpan > 0 {
		return s.uniformMin + s.net.Int64N(s.uniformSpan)
	}
	return s.latency(a, b)
}

// memSend sends membership frame kind from a to b, through the fault
// layer.
func (s *Sim) memSend(a, b uint32, kind uint32) {
	var extra int64
	if s.fl != nil {
		var drop bool
		if drop, _, extra = s.decide(a, b); drop {
			s.mem.stats.Lost++
			if kind >= memSlot0 {
				s.mem.take(kind)
			}
			return
		}
	}
	s.memPush(event{at: s.now + extra + s.linkDelay(a, b), to: b, from: a, ref: refTick | kind})
}

func (s *Sim) memPush(e event) {
	s.seq++
	e.seq = s.seq
	s.q.push(e)
}

// memArm queues node i's next membership tick when it wants one earlier
// than the one pending.
func (s *Sim) memArm(i uint32) {
	m := s.mem
	t := max(m.nodes[i].NextTick(), s.now, 1) // 1: armed 0 means none
	if m.armed[i] == 0 || t < m.armed[i] {
		m.armed[i] = t
		s.memPush(event{at: t, to: i, ref: refTick | memTick})
	}
}

// memUp brings the link between a (the dialer) and b up at both ends.
func (s *Sim) memUp(a, b uint32) {
	m := s.mem
	m.link(a, b)
	m.link(b, a)
	m.stats.Links++
	for _, x := range [2][2]uint32{{b, a}, {a, b}} {
		i, j := x[0], x[1]
		gossip.LinkUp(s.node(i), s.now, wire.NodeID(j)+1, i == a, &s.out)
		s.handle(int(i))
		m.nodes[i].Up(s.now, m.entry(j), i == b, s.memOut(i))
		s.memDone(i)
		if !m.joined[i] {
			m.joined[i] = true
			if m.onJoin != nil {
				m.onJoin(int(i), s.now)
			}
		}
	}
}

// memClose closes the link between a and b at both ends; a crashed end
// hears nothing.
func (s *Sim) memClose(a, b uint32) {
	m := s.mem
	if !m.linked(a, b) {
		return
	}
	m.unlink(a, b)
	m.unlink(b, a)
	for _, x := range [2][2]uint32{{a, b}, {b, a}} {
		i, j := x[0], x[1]
		if s.crashed[i] {
			continue
		}
		s.node(i).PeerDown(s.now, wire.NodeID(j)+1, &s.out)
		s.handle(int(i))
		m.nodes[i].Down(s.now, wire.NodeID(j)+1, s.memOut(i))
		s.memDone(i)
	}
}

// memCrash takes node i down: it leaves the live set and, unless crashes
// are silent, its links close at its peers.
func (s *Sim) memCrash(i uint32) {
	m := s.mem
	m.removeLive(i)
	if m.cfg.SilentCrash {
		return
	}
	for len(m.links[i]) > 0 {
		m.stats.LinksClosedByCrashes++
		s.memClose(i, m.links[i][len(m.links[i])-1])
	}
}

// memHeard stamps, at a frame's arrival at live node to, the link from
// from as heard (a frame on a link that has closed stamps nothing).
func (s *Sim) memHeard(to, from uint32, at int64) {
	m := s.mem
	for k, j := range m.links[to] {
		if j == from {
			m.heardAt[to][k] = at
			return
		}
	}
}

// memFeedHeard hands node i's membership the stamps of its links since
// the last time, before it ticks.
func (s *Sim) memFeedHeard(i uint32, o *membership.Output) {
	m := s.mem
	h := m.heardAt[i]
	for k, j := range m.links[i] {
		if h[k] != 0 {
			m.nodes[i].Heard(h[k], wire.NodeID(j)+1, o)
			h[k] = 0
		}
	}
}

// memEvent handles a membership event (a tick event whose ref carries a
// membership kind).
func (s *Sim) memEvent(e *event) {
	m := s.mem
	kind := e.ref & refIndex
	switch kind {
	case memStep:
		s.memChurnStep(e.from == 1)
		return
	case memTick:
		if m.armed[e.to] != e.at {
			return // superseded by an earlier one
		}
		if s.crashed[e.to] {
			m.armed[e.to] = 0
			return
		}
		if s.fl != nil && s.fl.paused(e.to) {
			m.armed[e.to] = s.fl.pauseEnd
			s.hold(e)
			return
		}
		m.armed[e.to] = 0
		o := s.memOut(e.to)
		s.memFeedHeard(e.to, o)
		m.nodes[e.to].Tick(s.now, o)
		s.memDone(e.to)
		return
	}
	if s.fl != nil && s.fl.paused(e.to) {
		s.hold(e)
		return
	}
	var sl memSlot
	if kind >= memSlot0 {
		sl = m.take(kind)
	}
	to, from := e.to, e.from
	if sl.dial {
		switch {
		case s.crashed[from]:
			// The dialer is gone: nothing comes of it.
		case s.crashed[to] || m.nodes[to] == nil:
			m.nodes[from].DialFailed(s.now, sl.entry, s.memOut(from))
			s.memDone(from)
		case s.fl != nil && s.fl.cutOnArrival(from, to):
			// No answer: the dial times out in the membership.
		case !m.linked(from, to):
			s.memUp(from, to)
		}
		return
	}
	if s.crashed[to] || m.nodes[to] == nil || !m.linked(to, from) || s.fl != nil && s.fl.cutOnArrival(from, to) {
		return // a frame on a link that has closed, or cut, is lost
	}
	s.memHeard(to, from, s.now)
	switch {
	case kind == memPing:
		s.memSend(to, from, memPong)
	case kind >= memSlot0:
		m.nodes[to].ExchangeFrom(s.now, wire.NodeID(from)+1, sl.need, sl.entries, s.memOut(to))
		s.memDone(to)
	}
}

// memChurnStep samples the degrees and, unless it is the last sample
// after the churn, crashes Churn.PerStep random
// live nodes and boots as many fresh ones, each seeded with a random live
// node that did not crash, and queues the next step.
func (s *Sim) memChurnStep(last bool) {
	m := s.mem
	ch := m.cfg.Churn
	d := s.memSample()
	if last {
		s.memReport(d)
		return
	}
	k := ch.PerStep(m.initial)
	for range k {
		if len(m.live) <= 1 {
			break
		}
		i := m.live[m.churn.IntN(len(m.live))]
		s.crashed[i] = true
		m.stats.Crashed++
		if s.onCrash != nil {
			s.onCrash(int(i), s.base+s.now)
		}
		s.memCrash(i)
	}
	if d != nil {
		d.DipMin, d.DipBelow = math.MaxInt, 0
		for _, i := range m.live {
			k := len(m.links[i])
			d.DipMin = min(d.DipMin, k)
			if k < m.mcfg.ActiveLow {
				d.DipBelow++
			}
		}
		if len(m.live) == 0 {
			d.DipMin = 0
		}
		s.memReport(d)
	}
	seeds := len(m.live)
	for range k {
		if m.next >= s.n || seeds == 0 {
			break
		}
		i := uint32(m.next)
		m.next++
		seed := m.live[m.churn.IntN(seeds)]
		s.crashed[i] = false
		m.boot(s, i, s.now)
		m.nodes[i].Seed(m.entry(seed))
		m.stats.Joined++
		s.memArm(i)
	}
	next := s.now + int64(ch.every())
	if next <= int64(ch.Duration) {
		s.memPush(event{at: next, ref: refTick | memStep})
	} else {
		s.memPush(event{at: max(m.until, s.now), from: 1, ref: refTick | memStep}) // the last sample
	}
}

// memReport hands d to the OnDegree hook.
func (s *Sim) memReport(d *DegreeSample) {
	if d != nil {
		s.mem.onDegree(*d)
	}
}

// memSample measures the live nodes' degrees for the OnDegree hook; nil
// without one.
func (s *Sim) memSample() *DegreeSample {
	m := s.mem
	if m.onDegree == nil {
		return nil
	}
	lo, hi := m.mcfg.ActiveLow, m.mcfg.ActiveHigh
	step := int64(m.cfg.Churn.every())
	d := DegreeSample{At: s.base + s.now, Live: len(m.live), Min: math.MaxInt}
	sum := 0
	for _, i := range m.live {
		k := len(m.links[i])
		sum += k
		d.Min, d.Max = min(d.Min, k), max(d.Max, k)
		out := k < lo || k > hi
		if k < lo {
			d.Below++
		}
		if k > hi {
			d.Above++
		}
		if s.now-m.bootAt[i] < step && m.bootAt[i] > 0 {
			d.Booting++
			if out {
				d.BootingOutside++
			}
		}
	}
	if d.Live == 0 {
		d.Min = 0
	} else {
		d.Mean = float64(sum) / float64(d.Live)
	}
	d.DipMin, d.DipBelow = d.Min, d.Below
	return &d
}
