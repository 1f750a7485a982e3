package adversary

import (
	"math"
	"math/rand/v2"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Bounds on what a Node keeps, so that a liar stays within a node's memory
// budget however long it runs.
const (
	// MaxKept is how many messages replay keeps (and MaxKeptBytes how many
	// body bytes): the oldest go first.
	MaxKept      = 1024
	MaxKeptBytes = 4 << 20
	// MaxHeld is how many sends delay holds at once; a send beyond it is
	// dropped (counted in Stats.Dropped).
	MaxHeld = 1 << 16
	// maxOrigins is how many origins forge remembers to impersonate.
	maxOrigins = 256
	// maxCensored is how many of the censored origin's ids censor
	// remembers, to keep them out of its announcements.
	maxCensored = 4096
	// bodySize is the body length of what spam, forge and spam-invalid
	// make up.
	bodySize = 16
)

// Stats counts what a Node did, for the dashboard, the API and metrics.
// Counts are of sends (one frame to one peer) unless said otherwise.
type Stats struct {
	// Dropped: sends the honest protocol wanted that it withheld
	// (blackhole, eclipse, liar's payloads, delay's overflow).
	Dropped uint64 `json:"dropped"`
	// Tampered: forwards sent with an altered body.
	Tampered uint64 `json:"tampered"`
	// Forged: messages made up under another node's origin.
	Forged uint64 `json:"forged"`
	// Replayed: old messages re-sent (each counted once per round).
	Replayed uint64 `json:"replayed"`
	// Spammed: messages spam and spam-invalid made up.
	Spammed uint64 `json:"spammed"`
	// Delayed: sends held back.
	Delayed uint64 `json:"delayed"`
	// Censored: sends of the censored origin's messages withheld, and
	// announcements of them left out.
	Censored uint64 `json:"censored"`
	// Lies: ids announced that it will never serve, and IWANT or GRAFT
	// requests it ignored.
	Lies uint64 `json:"lies"`
}

// Node is an adversary: it wraps an honest protocol and misbehaves as its
// Modes say. It is itself a gossip.Protocol and a gossip.Waker (NextWake
// is the inner protocol's when it is a Waker, else NextTick), so that
// every driver runs it unchanged. Not safe for concurrent use.
type Node struct {
	inner gossip.Protocol
	waker gossip.Waker
	rng   *rand.Rand
	modes Modes
	cfg   behaviour
	stats Stats

	// peers follows PeerUp and PeerDown, for a driver that uses them; a
	// driver that hands the inner core its peers directly (the simulator)
	// is asked through the inner's Peers method.
	peers []wire.NodeID

	// rate modes' schedules, one per rated kind; stop, when set, ends
	// them (SetStop); phase places their emissions in their period
	// (SetPhase), 0 for the default, 1.
	rates [kindEnd]rateState
	stop  int64
	phase float64

	// origins remembers who to impersonate, with the highest sequence
	// seen from each.
	origins map[wire.NodeID]uint64
	order   []wire.NodeID
	// kept is replay's ring of old messages, oldest first from keptHead.
	kept      []*wire.Message
	keptBytes int
	cursor    int
	// censored holds ids of the censored origin's messages.
	censored map[wire.MsgID]struct{}
	// held are delay's sends, in release order.
	held []heldSend
	// seq numbers spam-invalid's messages.
	seq uint64
	// signed says that the messages the node last saw or published carry
	// an auth block, so that what it makes up carries one too, as a real
	// liar's would (a mesh that does not sign refuses signed messages,
	// one that signs refuses unsigned ones); ownKey is its own public key
	// once it has published, which a forgery carries under another
	// origin.
	signed bool
	ownKey *[wire.AuthKeySize]byte
	// lastSrc and lastTampered cache the tampered copy of the message last
	// forwarded, since the core shares one copy across a forward's sends.
	lastSrc, lastTampered *wire.Message
}

type heldSend struct {
	at int64
	s  gossip.Send
}

type rateState struct {
	started bool
	start   int64
	done    uint64
}

// behaviour is Modes unpacked for the hot path.
type behaviour struct {
	blackhole, tamper, liar bool
	censor, eclipse         wire.NodeID
	delay                   int64
	rate                    [kindEnd]float64
}

// compile-time checks.
var (
	_ gossip.Protocol = (*Node)(nil)
	_ gossip.Waker    = (*Node)(nil)
)

// Wrap returns an adversary around p that misbehaves as ms says (nil ms:
// honest, p's behaviour exactly). rng is its only random source (bodies,
// victims, made-up ids): seed it for reproducible runs. ms must be valid
// (Parse's output is); an invalid mode is ignored.
func Wrap(p gossip.Protocol, ms Modes, rng *rand.Rand) *Node {
	n := &Node{inner: p, rng: rng}
	n.waker, _ = p.(gossip.Waker)
	n.SetModes(ms)
	return n
}

// SetModes changes how the node misbehaves, at run time (PUT /adversary).
// Rate modes restart their schedule at the next input; sends already held
// by delay are still released on time.
func (n *Node) SetModes(ms Modes) {
	var valid Modes
	for _, m := range ms {
		if m.Validate() == nil && !valid.Has(m.Kind) {
			valid = append(valid, m)
		}
	}
	n.modes = valid
	n.cfg = behaviour{}
	for _, m := range valid {
		switch m.Kind {
		case Blackhole:
			n.cfg.blackhole = true
		case Tamper:
			n.cfg.tamper = true
		case Liar:
			n.cfg.liar = true
		case Censor:
			n.cfg.censor = m.Target
		case Eclipse:
			n.cfg.eclipse = m.Target
		case Delay:
			n.cfg.delay = int64(m.Delay)
		}
		if m.Kind.rated() {
			n.cfg.rate[m.Kind] = m.Rate
		}
	}
	n.rates = [kindEnd]rateState{}
	n.lastSrc, n.lastTampered = nil, nil
}

// SetStop makes the rate modes (spam, spam-invalid, forge, replay) emit
// nothing at or after virtual time t, 0 for never (the default). A driver
// that runs until no work is left (the simulator) uses it to end a liar
// that would otherwise keep it busy for ever.
func (n *Node) SetStop(t int64) { n.stop = t }

// SetPhase places the rate modes' emissions within their period 1/rate:
// emission i (from 1) is due (i − 1 + phase)/rate after the schedule
// starts. The default, phase 1, is one period after the start and every
// period after. phase must be in (0, 1]; anything else is the default.
// Many adversaries at a low rate (forge=0.1: one message every 10 s) with
// phases spread over (0, 1] share one steady load between them, where in
// step they would all emit at once, or all too late for a short run. A
// driver sets it before the first input; it holds across SetModes.
func (n *Node) SetPhase(phase float64) {
	if !(phase > 0 && phase <= 1) {
		phase = 1
	}
	n.phase = phase
}

// Modes returns the modes in force (do not modify).
func (n *Node) Modes() Modes { return n.modes }

// Stats returns what the node has done so far.
func (n *Node) Stats() Stats { return n.stats }

// Inner returns the honest protocol the node wraps.
func (n *Node) Inner() gossip.Protocol { return n.inner }

// ID implements gossip.Protocol.
func (n *Node) ID() wire.NodeID { return n.inner.ID() }

// Publish implements gossip.Protocol: the node's own publishes go out even
// from a blackhole (delay still holds them).
func (n *Node) Publish(now int64, body []byte, out *gossip.Output) (*wire.Message, error) {
	n.start(now)
	k := len(out.Sends)
	m, err := n.inner.Publish(now, body, out)
	n.filter(now, out, k, true)
	if m != nil {
		n.noteOwn(m)
	}
	return m, err
}

// noteOwn learns from the node's own publish whether the mesh signs, and
// its key.
func (n *Node) noteOwn(m *wire.Message) {
	n.signed = m.Auth != nil
	if m.Auth != nil {
		key := m.Auth.Key
		n.ownKey = &key
	}
}

// fakeAuth is the auth block of a made-up message: the node's own key if
// it knows it (else random bytes) and a signature of random bytes, which
// verifies for nobody.
func (n *Node) fakeAuth() *wire.Auth {
	a := &wire.Auth{}
	if n.ownKey != nil {
		a.Key = *n.ownKey
	} else {
		n.fill(a.Key[:])
	}
	n.fill(a.Sig[:])
	return a
}

// Step implements gossip.Protocol.
func (n *Node) Step(now int64, from wire.NodeID, f gossip.Frame, out *gossip.Output) {
	n.start(now)
	if m := f.Msg; m != nil {
		n.observe(m)
	}
	if c := f.Ctl; c != nil && n.cfg.liar && (c.Kind == wire.FrameIWant || c.Kind == wire.FrameGraft) {
		n.stats.Lies += uint64(max(1, len(c.IDs)))
		return // a promise it will not keep
	}
	k, e := len(out.Sends), len(out.Events)
	n.inner.Step(now, from, f, out)
	n.filter(now, out, k, false)
	if n.cfg.liar && f.Msg != nil {
		for _, ev := range out.Events[e:] {
			if ev.Kind == gossip.EventDelivered && ev.Msg.ID == f.Msg.ID {
				n.lie(now, from, f.Msg, out)
				break
			}
		}
	}
}

// Tick implements gossip.Protocol: the inner protocol's timed work
// (filtered), then delay's due releases, then the rate modes' batches.
func (n *Node) Tick(now int64, out *gossip.Output) {
	n.start(now)
	k := len(out.Sends)
	n.inner.Tick(now, out)
	n.filter(now, out, k, false)
	n.release(now, out)
	for kind := Blackhole; kind < kindEnd; kind++ {
		if r := n.cfg.rate[kind]; r > 0 {
			n.emit(now, kind, r, out)
		}
	}
}

// NextTick implements gossip.Protocol: the earliest of the inner
// protocol's, the next held send's release and the rate modes' next
// emissions.
func (n *Node) NextTick() int64 { return earliest(n.inner.NextTick(), n.ownNext()) }

// NextWake implements gossip.Waker: the inner protocol's NextWake (its
// NextTick when it is no Waker), or the node's own work if earlier: a held
// send or a rate emission must not wait for the next input.
func (n *Node) NextWake() int64 {
	var t int64
	if n.waker != nil {
		t = n.waker.NextWake()
	} else {
		t = n.inner.NextTick()
	}
	return earliest(t, n.ownNext())
}

// PeerUp implements gossip.Protocol.
func (n *Node) PeerUp(now int64, p wire.NodeID, out *gossip.Output) {
	n.start(now)
	if p != n.ID() && !contains(n.peers, p) {
		n.peers = append(n.peers, p)
	}
	k := len(out.Sends)
	n.inner.PeerUp(now, p, out)
	n.filter(now, out, k, false)
}

// PeerDown implements gossip.Protocol.
func (n *Node) PeerDown(now int64, p wire.NodeID, out *gossip.Output) {
	for i, q := range n.peers {
		if q == p {
			n.peers = append(n.peers[:i], n.peers[i+1:]...)
			break
		}
	}
	k := len(out.Sends)
	n.inner.PeerDown(now, p, out)
	n.filter(now, out, k, false)
}

// Peers returns the peers the node sends its own lies to: the inner
// protocol's when it reports them (a gossip.Core does), else those PeerUp
// and PeerDown left.
func (n *Node) Peers() []wire.NodeID {
	if p, ok := n.inner.(interface{ Peers() []wire.NodeID }); ok {
		return p.Peers()
	}
	return n.peers
}

// start begins the rate modes' schedules at the first time the node sees.
func (n *Node) start(now int64) {
	for k := range n.rates {
		if n.cfg.rate[k] > 0 && !n.rates[k].started {
			n.rates[k] = rateState{started: true, start: now}
		}
	}
}

// ownNext is the earliest of the node's own timed work, 0 for none.
func (n *Node) ownNext() int64 {
	var t int64
	if len(n.held) > 0 {
		t = n.held[0].at
	}
	for k, r := range n.cfg.rate {
		if st := &n.rates[k]; r > 0 && st.started {
			if at := st.at(st.done+1, r, n.phase); n.stop == 0 || at < n.stop {
				t = earliest(t, at)
			}
		}
	}
	return t
}

// at is the time of the i-th emission (from 1) of a schedule at rate r
// and phase (SetPhase; 0 is 1): (i − 1 + phase)/r after its start. At
// phase 1, i − 1 + 1 is i exactly, so the default schedule is i/r.
func (st *rateState) at(i uint64, r, phase float64) int64 {
	if phase == 0 {
		phase = 1
	}
	return st.start + int64(math.Ceil((float64(i)-1+phase)*1e9/r))
}

// emit sends the emissions of kind due by now, at most one second's worth:
// a node ticked late skips the rest rather than bursting.
func (n *Node) emit(now int64, kind Kind, r float64, out *gossip.Output) {
	st := &n.rates[kind]
	if !st.started {
		return
	}
	limit := uint64(math.Ceil(r))
	ph := n.phase
	if ph == 0 {
		ph = 1
	}
	var sent uint64
	for at := st.at(st.done+1, r, ph); at <= now && (n.stop == 0 || at < n.stop); at = st.at(st.done+1, r, ph) {
		if sent == limit {
			// Skip the backlog: the next emission is the first after now
			// (those due by now number about elapsed·r + 1 − phase).
			due := float64(now-st.start) * r / 1e9
			if ph != 1 {
				due = max(0, due+1-ph)
			}
			st.done = uint64(due)
			for st.at(st.done+1, r, ph) <= now {
				st.done++
			}
			break
		}
		st.done++
		sent++
		switch kind {
		case Spam:
			n.spam(now, out)
		case SpamInvalid:
			n.spamInvalid(now, out)
		case Forge:
			n.forge(now, out)
		case Replay:
			n.replay(now, out)
		}
	}
}

// filter applies the modes to the sends the inner protocol queued in
// out.Sends[k:]; own says they come from the node's own Publish.
func (n *Node) filter(now int64, out *gossip.Output, k int, own bool) {
	c := &n.cfg
	if !c.blackhole && !c.tamper && !c.liar && c.censor == 0 && c.eclipse == 0 && c.delay == 0 {
		return
	}
	self := n.ID()
	j := k
	for _, s := range out.Sends[k:] {
		keep := true
		switch {
		case c.blackhole && !own:
			keep = false
			n.stats.Dropped++
		case c.eclipse != 0 && (s.To == c.eclipse || s.Msg != nil && s.Msg.Origin == c.eclipse):
			keep = false
			n.stats.Dropped++
		case s.Msg != nil && c.censor != 0 && s.Msg.Origin == c.censor:
			keep = false
			n.stats.Censored++
		case s.Msg != nil && c.liar && !own:
			keep = false // it never serves
			n.stats.Dropped++
		case s.Msg != nil && c.tamper && s.Msg.Origin != self:
			s.Msg = n.tampered(s.Msg)
			n.stats.Tampered++
		case s.Ctl != nil && c.censor != 0 && s.Ctl.Kind == wire.FrameIHave && len(n.censored) > 0:
			s.Ctl = n.uncensored(s.Ctl)
			if s.Ctl == nil {
				keep = false
			}
		}
		if !keep {
			continue
		}
		if c.delay > 0 {
			n.hold(now+c.delay, s)
			continue
		}
		out.Sends[j] = s
		j++
	}
	clear(out.Sends[j:])
	out.Sends = out.Sends[:j]
}

// hold queues s for release at at.
func (n *Node) hold(at int64, s gossip.Send) {
	if len(n.held) >= MaxHeld {
		n.stats.Dropped++
		return
	}
	// Delay is one value at a time, so releases come in order, except
	// right after SetModes shortened it: keep the queue sorted.
	i := len(n.held)
	for i > 0 && n.held[i-1].at > at {
		i--
	}
	n.held = append(n.held, heldSend{})
	copy(n.held[i+1:], n.held[i:])
	n.held[i] = heldSend{at: at, s: s}
	n.stats.Delayed++
}

// release sends the held sends due by now.
func (n *Node) release(now int64, out *gossip.Output) {
	i := 0
	for i < len(n.held) && n.held[i].at <= now {
		out.Sends = append(out.Sends, n.held[i].s)
		i++
	}
	if i > 0 {
		rest := copy(n.held, n.held[i:])
		clear(n.held[rest:])
		n.held = n.held[:rest]
	}
}

// observe remembers what m tells a liar: an origin to impersonate, a
// message to replay, an id to censor.
func (n *Node) observe(m *wire.Message) {
	n.signed = m.Auth != nil
	if n.cfg.rate[Forge] > 0 && m.Origin != n.ID() {
		if n.origins == nil {
			n.origins = make(map[wire.NodeID]uint64)
		}
		if seq, ok := n.origins[m.Origin]; ok {
			n.origins[m.Origin] = max(seq, m.Seq)
		} else if len(n.order) < maxOrigins {
			n.origins[m.Origin] = m.Seq
			n.order = append(n.order, m.Origin)
		}
	}
	if n.cfg.rate[Replay] > 0 {
		n.keep(m)
	}
	if n.cfg.censor != 0 && m.Origin == n.cfg.censor {
		if n.censored == nil || len(n.censored) >= maxCensored {
			n.censored = make(map[wire.MsgID]struct{})
		}
		n.censored[m.ID] = struct{}{}
	}
}

// keep adds m to replay's ring, once, evicting the oldest for room.
func (n *Node) keep(m *wire.Message) {
	for _, k := range n.kept {
		if k.ID == m.ID {
			return
		}
	}
	for len(n.kept) > 0 && (len(n.kept) >= MaxKept || n.keptBytes+len(m.Body) > MaxKeptBytes) {
		n.keptBytes -= len(n.kept[0].Body)
		n.kept[0] = nil
		n.kept = n.kept[1:]
		n.cursor = max(0, n.cursor-1)
	}
	if len(m.Body) > MaxKeptBytes {
		return
	}
	n.kept = append(n.kept, m)
	n.keptBytes += len(m.Body)
}

// tampered returns a copy of m with its body altered and everything else,
// id and signature included, left as it was.
func (n *Node) tampered(m *wire.Message) *wire.Message {
	if m == n.lastSrc {
		return n.lastTampered
	}
	t := *m
	body := make([]byte, max(len(m.Body), 1))
	copy(body, m.Body)
	for i := range body {
		body[i] ^= 0x5a
	}
	t.Body = body
	n.lastSrc, n.lastTampered = m, &t
	return &t
}

// uncensored returns c without the censored ids, nil if none is left.
func (n *Node) uncensored(c *wire.Control) *wire.Control {
	var ids []wire.MsgID
	for _, id := range c.IDs {
		if _, ok := n.censored[id]; ok {
			n.stats.Censored++
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == len(c.IDs) {
		return c
	}
	if len(ids) == 0 {
		return nil
	}
	d := *c
	d.IDs = ids
	return &d
}

// lie announces m's id and a made-up one to every peer but from, none of
// which the node will serve.
func (n *Node) lie(now int64, from wire.NodeID, m *wire.Message, out *gossip.Output) {
	var fake wire.MsgID
	n.fill(fake[:])
	c := &wire.Control{Kind: wire.FrameIHave, IDs: []wire.MsgID{m.ID, fake}}
	for _, p := range n.Peers() {
		if p != from {
			n.send(now, gossip.Send{To: p, Frame: gossip.Frame{Ctl: c}}, out)
			n.stats.Lies += uint64(len(c.IDs))
		}
	}
}

// spam publishes a valid message of the node's own.
func (n *Node) spam(now int64, out *gossip.Output) {
	body := make([]byte, bodySize)
	n.fill(body)
	k := len(out.Sends)
	m, err := n.inner.Publish(now, body, out)
	if err != nil {
		return
	}
	n.noteOwn(m)
	n.filter(now, out, k, true)
	n.stats.Spammed++
}

// spamInvalid sends every peer a message under the node's own origin that
// no honest node may accept: in a mesh that signs, in turn one with a
// wrong id and one with a right id and a bad signature; in one that does
// not, a wrong id, which passes only a receiver that checks nothing.
func (n *Node) spamInvalid(now int64, out *gossip.Output) {
	n.seq++
	m := &wire.Message{Origin: n.ID(), Seq: 1<<63 | n.seq, Hop: 1, PublishedAt: now, Body: make([]byte, bodySize)}
	n.fill(m.Body)
	if n.signed && n.seq%2 == 0 {
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	} else {
		n.fill(m.ID[:])
	}
	if n.signed {
		m.Auth = n.fakeAuth()
	}
	n.broadcast(now, m, out)
	n.stats.Spammed++
}

// forge sends every peer a message that claims to come from an origin the
// node has seen (else a peer), with a valid id over the forged fields and
// the next sequence number after the highest it saw from that origin.
func (n *Node) forge(now int64, out *gossip.Output) {
	var victim wire.NodeID
	var seq uint64
	if len(n.order) > 0 {
		victim = n.order[n.rng.IntN(len(n.order))]
		seq = n.origins[victim] + 1
		n.origins[victim] = seq
	} else if peers := n.Peers(); len(peers) > 0 {
		victim = peers[n.rng.IntN(len(peers))]
		seq = 1 + n.rng.Uint64N(1<<32)
	} else {
		return
	}
	m := &wire.Message{Origin: victim, Seq: seq, Hop: 1, PublishedAt: now, Body: make([]byte, bodySize)}
	n.fill(m.Body)
	m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
	if n.signed {
		m.Auth = n.fakeAuth() // its own key, under another origin
	}
	n.broadcast(now, m, out)
	n.stats.Forged++
}

// replay re-sends the next kept message to every peer: verbatim and with
// its publish time set to now, in turn.
func (n *Node) replay(now int64, out *gossip.Output) {
	if len(n.kept) == 0 {
		return
	}
	if n.cursor >= len(n.kept) {
		n.cursor = 0
	}
	src := n.kept[n.cursor]
	n.cursor++
	m := *src
	m.Hop = 1
	n.stats.Replayed++
	if n.stats.Replayed%2 == 0 {
		m.PublishedAt = now
	}
	n.broadcast(now, &m, out)
}

// broadcast sends m, which the node made up, to every peer, through delay
// when it is on (and past nothing else: a blackhole or censor still
// lies when asked to).
func (n *Node) broadcast(now int64, m *wire.Message, out *gossip.Output) {
	for _, p := range n.Peers() {
		n.send(now, gossip.Send{To: p, Frame: gossip.Frame{Msg: m}}, out)
	}
}

// send queues one of the node's own lies, held when delay is on.
func (n *Node) send(now int64, s gossip.Send, out *gossip.Output) {
	if n.cfg.eclipse != 0 && s.To == n.cfg.eclipse {
		n.stats.Dropped++
		return
	}
	if n.cfg.delay > 0 {
		n.hold(now+n.cfg.delay, s)
		return
	}
	out.Sends = append(out.Sends, s)
}

// fill fills b from the node's random source.
func (n *Node) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := n.rng.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

func earliest(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

func contains(ids []wire.NodeID, id wire.NodeID) bool {
	for _, q := range ids {
		if q == id {
			return true
		}
	}
	return false
}
