package membership

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"gossipmesh/wire"
)

// Entry is one known node: its id and the gossip address it listens on.
// A zero ID means an address whose node is not yet known (a booted
// candidate); such entries are dialed but never sent in a peer exchange.
type Entry struct {
	ID   wire.NodeID
	Addr string
}

// EventKind says what an Event reports.
type EventKind uint8

// Events, for logs and metrics.
const (
	// EventSuspect: a peer stayed silent past a PING's timeout.
	EventSuspect EventKind = iota + 1
	// EventRefuted: a suspect spoke again before it was evicted.
	EventRefuted
	// EventEvict: a suspect stayed silent for the suspicion timeout; its
	// link is to be closed.
	EventEvict
	// EventDrop: a surplus link above the high bound is to be closed.
	EventDrop
	// EventDial: a passive entry is to be dialed.
	EventDial
	// EventDialFailed: a dial from the passive view failed or timed out;
	// the entry is forgotten.
	EventDialFailed
	// EventSlow: this node's own ticks came late; its awareness (timeout
	// multiplier) went up.
	EventSlow
	// EventRefused: a peer closed a link this node dialed, as a full node
	// refuses a link its dialer does not need: a replacement within
	// DialTimeout, any other within ProbeInterval of this node saying it
	// did not need it. The entry is passed over for RefusalBackoff.
	EventRefused
)

var eventNames = [...]string{"", "suspect", "refuted", "evict", "drop", "dial", "dial_failed", "slow", "refused"}

// String names the event kind as logs and metrics print it.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// Event is one thing the membership decided or noticed.
type Event struct {
	Kind EventKind
	Peer Entry
	At   int64
}

// Exchange is a peer exchange to send: a sample of this node's views,
// and whether this node needs the link (it is at or below its low bound
// with it), which a full receiver weighs when it picks a link to drop.
type Exchange struct {
	To      wire.NodeID
	Need    bool
	Entries []Entry
}

// Output is what a Membership wants done; the driver owns it, acts on it
// and calls Reset.
type Output struct {
	Pings     []wire.NodeID // send a PING
	Exchanges []Exchange    // send a peer exchange
	Evict     []wire.NodeID // close the link: the peer is presumed dead
	Drop      []wire.NodeID // close the link: surplus above the high bound
	Dial      []Entry       // dial this passive entry
	Events    []Event
}

// Reset empties o, keeping its storage.
func (o *Output) Reset() {
	o.Pings, o.Exchanges, o.Evict, o.Drop, o.Dial, o.Events = o.Pings[:0], o.Exchanges[:0], o.Evict[:0], o.Drop[:0], o.Dial[:0], o.Events[:0]
}

// Peer is one active-view entry as the API shows it.
type Peer struct {
	Entry
	Inbound bool
	Suspect bool
	// Silent is how long the peer had been silent at the last tick, ns.
	Silent int64
}

type link struct {
	Entry
	inbound  bool
	up       int64
	heard    int64 // last time a frame came from it
	pinged   int64 // when an unanswered PING went out; 0 none
	suspect  int64 // since when it is suspected; 0 not
	evicting bool  // an eviction was asked for; waiting for Down
	dropping bool  // a surplus drop was asked for; waiting for Down
	// need is what the peer's last exchange said: 1 it needs this link,
	// -1 it does not, 0 it has not said yet.
	need        int8
	replacement bool // this node dialed it as a replacement, above its low bound
	// told is what this node's last exchange to the peer said: that it
	// needs the link.
	told bool
}

// cooldown is a passive entry passed over until a time: its node refused
// a link this node dialed, or a dial to it failed.
type cooldown struct {
	addr    string
	until   int64
	refused bool // a refusal, not a failed dial
}

type pendingDial struct {
	Entry
	since       int64
	replacement bool // dialed above the low bound, for a failed peer
}

// Membership is one node's views and failure detector. It is not safe for
// concurrent use: one goroutine drives it, as it drives the gossip core.
type Membership struct {
	cfg     Config
	self    Entry
	rng     *rand.Rand
	active  []*link // in the order the links came up
	passive []Entry
	dialing []pendingDial
	// cooling are the addresses whose nodes refused a link this node
	// dialed, or whose dial failed, passed over by dials until their time
	// (RefusalBackoff).
	cooling []cooldown
	// seeds are the entries this node was seeded with, its contacts for
	// a rejoin; rejoinAt is the earliest time of the next one.
	seeds    []Entry
	rejoinAt int64
	replace  int // dials owed for peers that failed
	// retries is how many more refusals of a replacement dial may be
	// answered with another dial (see replacementRetries).
	retries  int
	aware    int // Lifeguard's local health multiplier, 0..AwarenessMax
	healthy  int64
	want     int64 // the tick time this node last asked for
	last     int64 // the last tick
	exchange int64 // next periodic exchange
}

// New returns the membership of the node self listening at selfAddr.
func New(cfg Config, self wire.NodeID, selfAddr string, rng *rand.Rand) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, fmt.Errorf("membership: nil rand")
	}
	return &Membership{cfg: cfg, self: Entry{ID: self, Addr: selfAddr}, rng: rng}, nil
}

// scaled is d stretched by the node's awareness, in ns.
func (m *Membership) scaled(d time.Duration) int64 { return int64(d) * int64(1+m.aware) }

func (m *Membership) find(id wire.NodeID) *link {
	for _, l := range m.active {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// Seed adds booted addresses (or known entries) to the passive view,
// without the peer-exchange address rule: they come from this node's own
// configuration. They are also kept apart, up to PassiveSize of them, as
// the contacts this node rejoins through when it has lost every link and
// its passive view is empty (see rejoin).
func (m *Membership) Seed(entries ...Entry) {
	for _, e := range entries {
		m.addPassive(e)
		if len(m.seeds) < max(m.cfg.PassiveSize, 1) && e.Addr != "" && e.Addr != m.self.Addr && !slices.ContainsFunc(m.seeds, func(s Entry) bool { return s.Addr == e.Addr }) {
			m.seeds = append(m.seeds, e)
		}
	}
}

// DialStarted records a dial to e that the driver started on its own (a
// booted peer) at now: it counts toward the degree, so the node does not
// dial its passive view while its booted dials are in flight, and, if no
// link to e comes up within DialTimeout, it counts as failed.
func (m *Membership) DialStarted(now int64, e Entry) {
	if !slices.ContainsFunc(m.dialing, func(d pendingDial) bool { return d.Addr == e.Addr }) {
		m.dialing = append(m.dialing, pendingDial{Entry: e, since: now})
	}
}

// Up records that a link to e is up: e joins the active view and leaves
// the passive one, and gets a peer exchange at once.
func (m *Membership) Up(now int64, e Entry, inbound bool, out *Output) {
	if l := m.find(e.ID); l != nil {
		l.heard = max(l.heard, now)
		return
	}
	l := &link{Entry: e, inbound: inbound, up: now, heard: now}
	m.active = append(m.active, l)
	m.passive = slices.DeleteFunc(m.passive, func(p Entry) bool { return p.ID == e.ID || p.Addr == e.Addr })
	m.dialing = slices.DeleteFunc(m.dialing, func(d pendingDial) bool {
		if d.ID == e.ID || d.Addr == e.Addr {
			l.replacement = l.replacement || d.replacement
			return true
		}
		return false
	})
	m.sendExchange(e.ID, out)
	m.enforce(now, out)
}

// replacementRetries is how many times, per failed peer, a replacement
// dial that a full node refuses is followed by a dial to another passive
// entry. HyParView tries its passive view until a node accepts; without a
// retry, a node whose replacement met a full peer stayed a link short for
// good (in a 50-process mesh after a few rounds of churn, most of a
// crashed node's peers did). The bound keeps a mesh whose nodes are all
// full from dialing in circles.
const replacementRetries = 4

// Down records that the link to id is gone. A peer this node dropped as
// surplus goes to the passive view, and so does one this node dialed as a
// replacement that closed the link within DialTimeout (a full node
// refusing a link its dialer did not need: EventRefused), after which
// another passive entry is tried, up to replacementRetries times per
// failed peer, never the one that refused for RefusalBackoff; any
// other loss (a closed connection, an eviction) is a failure, and the
// node owes a replacement dial.
func (m *Membership) Down(now int64, id wire.NodeID, out *Output) {
	i := slices.IndexFunc(m.active, func(l *link) bool { return l.ID == id })
	if i < 0 {
		return
	}
	l := m.active[i]
	m.active = slices.Delete(m.active, i, i+1)
	switch {
	case l.dropping:
		m.addPassive(l.Entry)
	case l.replacement && now-l.up < int64(m.cfg.DialTimeout):
		m.refused(now, l, out)
		if m.retries > 0 {
			m.retries--
			m.replace = min(m.replace+1, m.cfg.ActiveHigh)
		}
	case !l.inbound && !l.told && now-l.up < int64(m.cfg.ProbeInterval):
		// Any other link this node dialed (a booted peer, which the
		// driver redials on its own) that the peer closed within the
		// time a full node takes to decide (it waits at most a probe
		// interval for the dialer's say), after being told the link was
		// not needed: refused too, and nothing was lost.
		m.refused(now, l, out)
	default:
		m.replace = min(m.replace+1, m.cfg.ActiveHigh)
		m.retries = min(m.retries+replacementRetries, m.cfg.ActiveHigh*replacementRetries)
	}
	m.enforce(now, out)
}

// refused records that l's node refused a link this node dialed: it goes
// back to the passive view, passed over for RefusalBackoff.
func (m *Membership) refused(now int64, l *link, out *Output) {
	m.addPassive(l.Entry)
	m.cool(now, l.Addr, true)
	out.Events = append(out.Events, Event{Kind: EventRefused, Peer: l.Entry, At: now})
}

// RefusedUntil is when the refusal backoff of addr ends, a node that
// refused a link this node dialed (RefusalBackoff); 0 when none is
// running at now. A driver that redials addresses on its own (booted
// peers) waits for it too. A failed dial's backoff is not reported: a
// booted peer that was down is redialed as before, so that it gets its
// links back when it restarts.
func (m *Membership) RefusedUntil(now int64, addr string) int64 {
	for _, c := range m.cooling {
		if c.refused && c.addr == addr && c.until > now {
			return c.until
		}
	}
	return 0
}

// Refusals adds to dst the refusal backoffs running at now, address to
// until (see RefusedUntil), for a driver that reads them outside its
// loop.
func (m *Membership) Refusals(now int64, dst map[string]int64) {
	for _, c := range m.cooling {
		if c.refused && c.until > now {
			dst[c.addr] = c.until
		}
	}
}

// Heard records that a frame came from id at at: any frame answers a PING
// and refutes a suspicion.
func (m *Membership) Heard(at int64, id wire.NodeID, out *Output) {
	l := m.find(id)
	if l == nil || at <= l.heard {
		return
	}
	l.heard = at
	if l.pinged != 0 && at >= l.pinged {
		l.pinged = 0
	}
	if l.suspect != 0 && !l.evicting {
		l.suspect = 0
		out.Events = append(out.Events, Event{Kind: EventRefuted, Peer: l.Entry, At: at})
	}
}

// DialFailed records that a dial to e, asked for in Output.Dial, failed:
// the entry is forgotten and another is tried.
func (m *Membership) DialFailed(now int64, e Entry, out *Output) {
	i := slices.IndexFunc(m.dialing, func(d pendingDial) bool { return d.Entry == e })
	if i < 0 {
		return
	}
	d := m.dialing[i]
	m.dialing = slices.Delete(m.dialing, i, i+1)
	m.forget(now, d, out)
	m.enforce(now, out)
}

// forget drops the entry of a failed dial; a replacement it was for is
// still owed.
func (m *Membership) forget(now int64, d pendingDial, out *Output) {
	e := d.Entry
	m.passive = slices.DeleteFunc(m.passive, func(p Entry) bool { return p == e })
	m.cool(now, e.Addr, false)
	if d.replacement {
		m.replace = min(m.replace+1, m.cfg.ActiveHigh)
	}
	out.Events = append(out.Events, Event{Kind: EventDialFailed, Peer: e, At: now})
}

// Tick runs the failure detector, the periodic peer exchange and the
// degree bounds at now.
func (m *Membership) Tick(now int64, out *Output) {
	m.health(now, out)
	m.last = now
	for _, l := range m.active {
		if l.evicting || l.dropping {
			continue
		}
		if l.pinged == 0 || now-l.pinged >= m.scaled(m.cfg.ProbeInterval) {
			if now-l.heard >= m.scaled(m.cfg.ProbeInterval) {
				l.pinged = now
				out.Pings = append(out.Pings, l.ID)
			}
		}
		if l.suspect == 0 && l.pinged != 0 && l.heard < l.pinged && now-l.pinged >= m.scaled(m.cfg.ProbeTimeout) {
			l.suspect = now
			out.Events = append(out.Events, Event{Kind: EventSuspect, Peer: l.Entry, At: now})
		}
		if l.suspect != 0 && now-l.suspect >= int64(m.cfg.SuspicionMult)*m.scaled(m.cfg.ProbeInterval) {
			l.evicting = true
			out.Evict = append(out.Evict, l.ID)
			out.Events = append(out.Events, Event{Kind: EventEvict, Peer: l.Entry, At: now})
		}
	}
	if m.exchange == 0 {
		m.exchange = now + m.jitter(m.cfg.ExchangeInterval)
	} else if now >= m.exchange {
		m.exchange = now + m.jitter(m.cfg.ExchangeInterval)
		if to := m.randomActive(); to != nil {
			m.sendExchange(to.ID, out)
		}
	}
	m.enforce(now, out)
}

// health is Lifeguard's local health: a tick that came more than
// ProbeTimeout after the time this node asked for means this node was
// stalled (its process paused, its machine or loop busy). Its peers'
// silence during the stall is not theirs: their clocks move forward by
// the lag, and every timeout is stretched by one more unit for a while.
func (m *Membership) health(now int64, out *Output) {
	if m.want != 0 && now-m.want > int64(m.cfg.ProbeTimeout) {
		lag := now - m.want
		for _, l := range m.active {
			l.heard = min(l.heard+lag, now)
			if l.pinged != 0 {
				l.pinged += lag
			}
			if l.suspect != 0 {
				l.suspect += lag
			}
		}
		m.aware = min(m.aware+1, m.cfg.AwarenessMax)
		m.healthy = now
		out.Events = append(out.Events, Event{Kind: EventSlow, Peer: m.self, At: now})
		return
	}
	if m.aware > 0 && now-m.healthy >= int64(m.cfg.ProbeInterval) {
		m.aware--
		m.healthy = now
	}
}

// jitter is d spread over [3/4, 5/4] of it, in ns.
func (m *Membership) jitter(d time.Duration) int64 {
	return int64(d)*3/4 + m.rng.Int64N(int64(d)/2+1)
}

func (m *Membership) randomActive() *link {
	var live []*link
	for _, l := range m.active {
		if !l.evicting && !l.dropping {
			live = append(live, l)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[m.rng.IntN(len(live))]
}

// sendExchange asks for a peer exchange to to: a random sample of the
// active and passive views, known ids only, to itself excluded.
func (m *Membership) sendExchange(to wire.NodeID, out *Output) {
	var pool []Entry
	for _, l := range m.active {
		if l.ID != to && !l.evicting {
			pool = append(pool, l.Entry)
		}
	}
	for _, p := range m.passive {
		if p.ID != 0 && p.ID != to {
			pool = append(pool, p)
		}
	}
	m.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	need := m.live() <= m.cfg.ActiveLow
	if l := m.find(to); l != nil {
		l.told = need
	}
	out.Exchanges = append(out.Exchanges, Exchange{To: to, Need: need, Entries: pool[:min(len(pool), m.cfg.ExchangeSize)]})
}

// live counts the links not on their way out.
func (m *Membership) live() int {
	n := 0
	for _, l := range m.active {
		if !l.evicting && !l.dropping {
			n++
		}
	}
	return n
}

// ExchangeFrom merges a peer exchange that from sent into the passive
// view, notes whether from needs its link, and reports how many entries it
// took and how many it refused (for their address, or past ExchangeSize).
// It never takes this node, an active peer, an id it already knows (a
// claim does not move a known node's address), nor an address it already
// knows.
func (m *Membership) ExchangeFrom(now int64, from wire.NodeID, need bool, entries []Entry, out *Output) (took, refused int) {
	if l := m.find(from); l != nil {
		l.need = -1
		if need {
			l.need = 1
		}
	}
	if len(entries) > m.cfg.ExchangeSize {
		refused += len(entries) - m.cfg.ExchangeSize
		entries = entries[:m.cfg.ExchangeSize]
	}
	for _, e := range entries {
		switch {
		case e.ID == 0 || e.ID == m.self.ID || e.Addr == m.self.Addr:
			continue
		case !m.cfg.Allowed(e.Addr):
			refused++
			continue
		case m.knows(e):
			continue
		}
		if m.addPassive(e) {
			took++
		}
	}
	m.enforce(now, out)
	return took, refused
}

// knows reports whether e's id or address is in a view already.
func (m *Membership) knows(e Entry) bool {
	for _, l := range m.active {
		if l.ID == e.ID || l.Addr == e.Addr {
			return true
		}
	}
	for _, p := range m.passive {
		if (p.ID != 0 && p.ID == e.ID) || p.Addr == e.Addr {
			return true
		}
	}
	return false
}

// addPassive adds e, replacing a random entry when the view is full.
func (m *Membership) addPassive(e Entry) bool {
	if m.cfg.PassiveSize == 0 || e.Addr == "" || e.Addr == m.self.Addr || (e.ID != 0 && e.ID == m.self.ID) || m.knows(e) {
		return false
	}
	if len(m.passive) >= m.cfg.PassiveSize {
		m.passive[m.rng.IntN(len(m.passive))] = e
		return true
	}
	m.passive = append(m.passive, e)
	return true
}

// enforce keeps the degree between the bounds: it drops the surplus above
// the high bound (random, never the newest), expires dials that took too long,
// and dials random passive entries while the degree (links and dials in
// flight) is below the low bound, or below the high bound while
// replacements for failed peers are owed.
func (m *Membership) enforce(now int64, out *Output) {
	m.dialing = slices.DeleteFunc(m.dialing, func(d pendingDial) bool {
		if now-d.since < int64(m.cfg.DialTimeout) {
			return false
		}
		m.forget(now, d, out)
		return true
	})
	live := m.live()
	for live > m.cfg.ActiveHigh {
		victim := m.surplus(now)
		if victim == nil {
			break // a newcomer has not said whether it needs its link
		}
		victim.dropping = true
		live--
		out.Drop = append(out.Drop, victim.ID)
		out.Events = append(out.Events, Event{Kind: EventDrop, Peer: victim.Entry, At: now})
	}
	for {
		have := live + len(m.dialing)
		if have >= m.cfg.ActiveHigh || (have >= m.cfg.ActiveLow && m.replace == 0) {
			return
		}
		e, ok := m.pickPassive(now, have < m.cfg.ActiveLow)
		if !ok {
			if have == 0 {
				m.rejoin(now, out)
			}
			m.replace, m.retries = 0, 0
			return
		}
		replacement := have >= m.cfg.ActiveLow
		if replacement {
			m.replace--
		}
		m.dialing = append(m.dialing, pendingDial{Entry: e, since: now, replacement: replacement})
		out.Dial = append(out.Dial, e)
		out.Events = append(out.Events, Event{Kind: EventDial, Peer: e, At: now})
	}
}

// surplus picks the link to drop (HyParView's neighbour priorities): the
// newest of the links whose peers said they do not need them (a full node
// refuses a peer that only wants a spare link), else a random link other
// than the newest (a full node still takes a newcomer that knows nobody
// else, and drops another). While a link younger than ProbeInterval has
// not said, it returns nil: the choice waits for its exchange.
func (m *Membership) surplus(now int64) *link {
	var newest, spare *link
	var pool []*link
	// The last MinOutbound links this node dialed are not for dropping.
	outbound := 0
	for _, l := range m.active {
		if !l.evicting && !l.dropping && !l.inbound {
			outbound++
		}
	}
	keepOutbound := outbound <= m.cfg.MinOutbound
	for _, l := range m.active {
		if l.evicting || l.dropping || (keepOutbound && !l.inbound) {
			continue
		}
		if l.need == 0 && now-l.up < int64(m.cfg.ProbeInterval) {
			return nil
		}
		pool = append(pool, l)
		if newest == nil || l.up >= newest.up {
			newest = l
		}
		if l.need < 0 && (spare == nil || l.up >= spare.up) {
			spare = l
		}
	}
	if spare != nil {
		return spare
	}
	pool = slices.DeleteFunc(pool, func(l *link) bool { return l == newest })
	if len(pool) == 0 {
		return newest
	}
	return pool[m.rng.IntN(len(pool))]
}

// rejoin dials a random seed, at most once per DialTimeout, when this
// node has no link, no dial in flight and nothing in its passive view:
// HyParView's node rejoins through its contact. Without it a node whose
// only link was dropped (a full node dropping a random link for a
// newcomer that needed one) before that peer's exchange arrived knew
// nobody for good: a joiner of the simulator's churn, stuck at degree 0
// from its fourth second to the end of the run.
func (m *Membership) rejoin(now int64, out *Output) {
	if len(m.seeds) == 0 || now < m.rejoinAt {
		return
	}
	m.rejoinAt = now + int64(m.cfg.DialTimeout)
	e := m.seeds[m.rng.IntN(len(m.seeds))]
	m.dialing = append(m.dialing, pendingDial{Entry: e, since: now})
	out.Dial = append(out.Dial, e)
	out.Events = append(out.Events, Event{Kind: EventDial, Peer: e, At: now})
}

// pickPassive picks a random passive entry not being dialed, passing over
// the ones whose nodes refused this node lately (RefusalBackoff) unless
// anyway is set and there is no other: a node below its low bound needs
// a link, says so, and is kept.
func (m *Membership) pickPassive(now int64, anyway bool) (Entry, bool) {
	var pool, refused []Entry
	for _, p := range m.passive {
		switch {
		case slices.ContainsFunc(m.dialing, func(d pendingDial) bool { return d.Addr == p.Addr }):
		case m.cooled(now, p.Addr):
			refused = append(refused, p)
		default:
			pool = append(pool, p)
		}
	}
	if len(pool) == 0 && anyway {
		pool = refused
	}
	if len(pool) == 0 {
		return Entry{}, false
	}
	return pool[m.rng.IntN(len(pool))], true
}

// cool passes addr over for RefusalBackoff from now. The list is bounded
// like the passive view: past PassiveSize the oldest goes.
func (m *Membership) cool(now int64, addr string, refused bool) {
	if m.cfg.RefusalBackoff <= 0 {
		return
	}
	m.cooling = slices.DeleteFunc(m.cooling, func(c cooldown) bool { return c.addr == addr || c.until <= now })
	if len(m.cooling) >= max(m.cfg.PassiveSize, 1) {
		m.cooling = slices.Delete(m.cooling, 0, 1)
	}
	m.cooling = append(m.cooling, cooldown{addr: addr, until: now + int64(m.cfg.RefusalBackoff), refused: refused})
}

// cooled reports whether addr is being passed over at now.
func (m *Membership) cooled(now int64, addr string) bool {
	return slices.ContainsFunc(m.cooling, func(c cooldown) bool { return c.addr == addr && c.until > now })
}

// NextTick is when the membership next wants a Tick: a quarter of the
// probe interval after the last one, which is also how it notices its own
// stalls, or earlier for a dial that times out first. Zero before the
// first Tick: tick it at once.
func (m *Membership) NextTick() int64 {
	if m.last == 0 {
		return 0
	}
	next := m.last + int64(m.cfg.ProbeInterval)/4
	for _, l := range m.active {
		if w := l.up + int64(m.cfg.ProbeInterval); l.need == 0 && !l.evicting && !l.dropping && w > m.last {
			next = min(next, w)
		}
	}
	for _, d := range m.dialing {
		next = min(next, d.since+int64(m.cfg.DialTimeout))
	}
	m.want = next
	return next
}

// Active returns the active view in the order the links came up.
func (m *Membership) Active() []Peer {
	out := make([]Peer, 0, len(m.active))
	for _, l := range m.active {
		out = append(out, Peer{Entry: l.Entry, Inbound: l.inbound, Suspect: l.suspect != 0, Silent: max(m.last-l.heard, 0)})
	}
	return out
}

// Passive returns a copy of the passive view.
func (m *Membership) Passive() []Entry { return slices.Clone(m.passive) }

// Dialing returns the passive entries being dialed.
func (m *Membership) Dialing() []Entry {
	out := make([]Entry, 0, len(m.dialing))
	for _, d := range m.dialing {
		out = append(out, d.Entry)
	}
	return out
}

// Awareness is the local health multiplier less one: 0 for a healthy
// node, up to AwarenessMax for one whose own ticks keep coming late.
func (m *Membership) Awareness() int { return m.aware }
