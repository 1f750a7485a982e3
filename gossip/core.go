// Package gossip is the protocol core of gossipmesh: a pure, deterministic
// state machine that the real TCP runtime, the in-memory network and the
// simulator all drive.
//
// A Core implements Protocol, the seam every driver drives: Publish, Step
// (a frame from a peer), Tick, PeerUp and PeerDown write what the core
// wants done into an Output that the driver owns: typed frames to send
// (messages and control frames) and events (published, delivered,
// duplicate, refused, rejected) for logs, metrics and dashboards. Routers
// (router.go) are per-node state machines the core calls on. Time is an
// input and randomness comes from a *rand.Rand handed in at construction,
// so the same inputs always give the same outputs. The package starts no
// goroutines, opens no sockets or files and never reads the wall clock;
// purity_test.go keeps it so.
package gossip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"gossipmesh/wire"
)

// Send asks the driver to deliver a frame to peer To. A message already
// carries the hop count the receiver sees. Many sends share one Msg or Ctl:
// do not modify them.
type Send struct {
	To wire.NodeID
	Frame
}

// EventKind says what happened to a message at this node.
type EventKind uint8

// Event kinds.
const (
	// EventPublished: this node published Msg (hop 0).
	EventPublished EventKind = iota + 1
	// EventDelivered: the first copy of Msg reached this node, from From,
	// at Msg.Hop hops from the publisher.
	EventDelivered
	// EventDuplicate: a later copy of a message already seen arrived from
	// From. Counted, not logged.
	EventDuplicate
	// EventRejected: a message that breaks the protocol arrived from From;
	// Err says how. The message is dropped and not marked seen. Only when
	// PeerFault is set did From itself break the rule (or relay what it
	// should have checked: a bad signature, a wrong id under strict
	// signing, a validator's reject); otherwise From may be an honest
	// forwarder of what someone else forged.
	EventRejected
	// EventRefused: a well-formed copy that the core cannot accept without
	// risking a second delivery: it is older than the acceptance window
	// (ErrExpired), claims a publish time too far ahead (ErrFuture), or is
	// no newer than what the seen-cache has forgotten (ErrUnderLoad); or
	// one a validator ignored (ErrIgnored). Err says which. Dropped,
	// counted, never the sender's fault.
	EventRefused
	// EventDown and EventUp are a node's own fate, which drivers report
	// (a simulated crash, a dashboard replay); the core never emits them.
	EventDown
	EventUp
)

// Event names: the one spelling of the event vocabulary, which logs, the
// API (api.Event.Kind, ?kind= on GET /events), simulator traces and the
// dashboard all use. Constants, so that other packages can use them where
// Go wants a constant.
const (
	NamePublished = "published"
	NameDelivered = "delivered"
	NameDuplicate = "duplicate"
	NameRejected  = "rejected"
	NameRefused   = "refused"
	NameDown      = "down"
	NameUp        = "up"
)

// String returns k's name (NamePublished, ...).
func (k EventKind) String() string {
	switch k {
	case EventPublished:
		return NamePublished
	case EventDelivered:
		return NameDelivered
	case EventDuplicate:
		return NameDuplicate
	case EventRejected:
		return NameRejected
	case EventRefused:
		return NameRefused
	case EventDown:
		return NameDown
	case EventUp:
		return NameUp
	}
	return fmt.Sprintf("event-%d", uint8(k))
}

// StreamedEvents are the kinds a node streams to its subscribers (the
// API's GET /events): what happens to messages that reach it. Rejected
// and refused copies are counted in metrics instead.
func StreamedEvents() []EventKind {
	return []EventKind{EventPublished, EventDelivered, EventDuplicate}
}

// ParseEventKind returns the kind that name spells.
func ParseEventKind(name string) (EventKind, error) {
	for k := EventPublished; k <= EventUp; k++ {
		if k.String() == name {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown event kind %q", name)
}

// Event reports what the core did with a message, for logs, metrics,
// dashboards and, later, peer scoring.
type Event struct {
	Kind EventKind
	// Msg is the message as it reached this node. Shared: do not modify.
	Msg *wire.Message
	// From is the peer that sent it; zero for EventPublished.
	From wire.NodeID
	// Err is why the message was rejected or refused (EventRejected and
	// EventRefused only).
	Err error
	// PeerFault says, for EventRejected, that From is to blame, so the
	// driver (the peer score) may punish the link: From set the hop count,
	// which every node rewrites, or it forwarded what every honest node
	// checks first (the signature, the id under strict signing, the
	// application validators). What a forwarder cannot check (a forged
	// origin under SigningNone) it is not held to.
	PeerFault bool
}

// Output collects the sends (typed frames, in the order the core sent them)
// and events of one or more steps. The driver owns it and calls Reset
// after acting on it, so a Core holds no buffers of its own: a simulator of
// a million cores needs only one Output.
type Output struct {
	Sends  []Send
	Events []Event
	// Disconnects asks the driver to close links and refuse the peers
	// until a time: a defence (score.Guard) bans a peer whose score fell
	// below its disconnect threshold. The protocol has already forgotten
	// the peer; the driver's PeerDown that follows is a no-op for it.
	Disconnects []Disconnect
	// route is scratch space for the router.
	route []wire.NodeID
}

// SendControl queues control frame c to peer to. Routers call it; c is
// shared from then on and must not be modified.
func (o *Output) SendControl(to wire.NodeID, c *wire.Control) {
	o.Sends = append(o.Sends, Send{To: to, Frame: Frame{Ctl: c}})
}

// SendIDs queues control frames like proto (IHAVE, IWANT, GRAFT) carrying
// ids to peer to, as many as it takes at wire.MaxControlIDs a frame, and
// returns how many it queued. Each frame is a copy of proto with its
// share of ids; ids is shared from then on and must not be modified.
func (o *Output) SendIDs(to wire.NodeID, proto wire.Control, ids []wire.MsgID) (frames uint64) {
	for len(ids) > 0 {
		k := min(len(ids), wire.MaxControlIDs)
		c := proto
		c.IDs = ids[:k:k]
		o.SendControl(to, &c)
		ids = ids[k:]
		frames++
	}
	return frames
}

// Disconnect asks the driver to close the link to Peer and to refuse it
// (its connections, and dials to it) until Until, in nanoseconds on the
// driver's clock. Reason is a short word for logs, metrics and the API
// ("invalid_messages", "behaviour", ...).
type Disconnect struct {
	Peer   wire.NodeID
	Until  int64
	Reason string
}

// Reset empties o, keeping its storage.
func (o *Output) Reset() {
	clear(o.Sends)
	clear(o.Events)
	o.Sends, o.Events, o.Disconnects = o.Sends[:0], o.Events[:0], o.Disconnects[:0]
}

// Errors a Core reports, on Publish or as the Err of an EventRejected or
// EventRefused.
var (
	ErrBodyTooLarge = errors.New("message body exceeds the limit")
	ErrBadHop       = errors.New("hop count out of range")
	ErrIDMismatch   = errors.New("message id does not match its content")
	ErrFromSelf     = errors.New("message claims this node as its origin but this boot did not publish it")
	ErrExpired      = errors.New("message is older than the acceptance window")
	ErrFuture       = errors.New("message claims a publish time beyond the allowed clock skew")
	ErrUnderLoad    = errors.New("message is too old for what the seen-cache still remembers under load")
)

// Core is one node's gossip state: its peers, its seen-cache and its
// publish sequence. It is not safe for concurrent use; one goroutine (the
// runtime's node loop, or the simulator) drives it.
//
// Its fields, the router's per-node state included, are kept to two cache
// lines (128 bytes), because a simulator of a million nodes touches one
// core per event, at random.
type Core struct {
	sh    *Shared
	id    wire.NodeID
	rng   *rand.Rand
	peers []wire.NodeID
	seen  seenCache
	seq   uint64
	state any // the router's per-node state (Router.Init)
	// store holds recent messages for repairs (store.go); nil unless the
	// router repairs or anti-entropy is on (Shared.stores).
	store *msgStore
}

// Shared is a validated Config and the Router it names. Every core built
// from it points to it instead of holding a copy, which matters to a
// simulator of a million cores.
type Shared struct {
	cfg    Config
	router Router
	// timed is false for a router that never asks for a tick (flood,
	// fanout): the core then skips its tick hooks, which a simulator of a
	// million nodes would otherwise call on every event.
	timed bool
	// stores says that every core keeps a message store (store.go),
	// because the router serves repairs from it or anti-entropy is on.
	stores bool
	// ae is the anti-entropy period in nanoseconds (antientropy.go), 0
	// when it is off.
	ae int64
	// strict is cfg.Signing == SigningStrict.
	strict bool
	// validators are the application validators, in order (validate.go).
	validators []namedValidator
	// origins says that every core keeps per-origin budgets (origin.go),
	// of originBurst messages for at most originMax origins.
	origins     bool
	originBurst float64
	originMax   int
}

// Share validates cfg and returns it ready for NewShared.
func Share(cfg Config) (*Shared, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := newRouter(cfg)
	if err != nil {
		return nil, err
	}
	return newShared(cfg, r)
}

func newShared(cfg Config, r Router) (*Shared, error) {
	vs, err := buildValidators(cfg)
	if err != nil {
		return nil, err
	}
	_, stores := r.(repairer)
	ae := int64(cfg.AntiEntropyPeriod())
	return &Shared{cfg: cfg, router: r, timed: !untimed(r), stores: stores || ae > 0, ae: ae,
		strict: cfg.Signing == SigningStrict, validators: vs,
		origins: cfg.originBudgetOn(), originBurst: cfg.OriginBurstSize(), originMax: cfg.OriginMaxTracked()}, nil
}

// shareWith is Share with a router that is not in the registry (tests).
func shareWith(cfg Config, r Router) (*Shared, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newShared(cfg, r)
}

// Config returns the configuration the cores share.
func (sh *Shared) Config() Config { return sh.cfg }

// New returns a Core for node id. rng is the core's only source of
// randomness: seed it per node for reproducible runs. A math/rand/v2 PCG
// source holds 16 bytes, which matters at a million nodes.
func New(cfg Config, id wire.NodeID, rng *rand.Rand) (*Core, error) {
	sh, err := Share(cfg)
	if err != nil {
		return nil, err
	}
	return NewShared(sh, id, rng), nil
}

// NewShared is New for drivers that build many cores from one Config (the
// simulator).
func NewShared(sh *Shared, id wire.NodeID, rng *rand.Rand) *Core {
	c := &Core{}
	c.Init(sh, id, rng)
	return c
}

// Init makes c, a zero or reused Core value, a core for node id, as
// NewShared does, without allocating: the simulator builds its cores in
// one slab.
func (c *Core) Init(sh *Shared, id wire.NodeID, rng *rand.Rand) {
	*c = Core{sh: sh, id: id, rng: rng}
	if sh.stores || sh.origins {
		c.store = &msgStore{}
	}
	if sh.origins {
		c.store.origins = newOriginTable()
	}
	sh.router.Init(c)
}

// ID returns the node's id.
func (c *Core) ID() wire.NodeID { return c.id }

// Peers returns the current peers. The slice is the core's: do not modify.
func (c *Core) Peers() []wire.NodeID { return c.peers }

// AddPeer links the node to p, as PeerUp does, for setting up a core
// before it runs (tests, scenarios): the router hears of it, and whatever
// it sends is dropped. Adding a present peer, or the node itself, does
// nothing.
func (c *Core) AddPeer(p wire.NodeID) {
	var out Output
	c.PeerUp(0, p, &out)
}

// PeerUp implements Protocol: it links the node to p and tells the router.
// Adding a present peer, or the node itself, does nothing.
func (c *Core) PeerUp(now int64, p wire.NodeID, out *Output) {
	if p == c.id || c.hasPeer(p) {
		return
	}
	c.peers = append(c.peers, p)
	c.sh.router.OnPeerUp(c, now, p, out)
}

// PeerUpDialed implements Dialer: PeerUp for a link this node dialed,
// which a router that tells them apart (DialRouter) hears of as such.
func (c *Core) PeerUpDialed(now int64, p wire.NodeID, out *Output) {
	if p == c.id || c.hasPeer(p) {
		return
	}
	c.peers = append(c.peers, p)
	if d, ok := c.sh.router.(DialRouter); ok {
		d.OnPeerUpDialed(c, now, p, out)
		return
	}
	c.sh.router.OnPeerUp(c, now, p, out)
}

// RemovePeer unlinks p, as PeerDown does, dropping what the router sends.
func (c *Core) RemovePeer(p wire.NodeID) {
	var out Output
	c.PeerDown(0, p, &out)
}

// PeerDown implements Protocol: it unlinks p and tells the router;
// removing an absent peer does nothing.
func (c *Core) PeerDown(now int64, p wire.NodeID, out *Output) {
	for i, q := range c.peers {
		if q == p {
			last := len(c.peers) - 1
			c.peers[i] = c.peers[last]
			c.peers = c.peers[:last]
			c.sh.router.OnPeerDown(c, now, p, out)
			return
		}
	}
}

// SetPeers replaces the peer list with peers, which the core then owns.
// The simulator uses it to hand each core a window of one shared adjacency
// array; it must hold no duplicates and not the node itself.
func (c *Core) SetPeers(peers []wire.NodeID) { c.peers = peers }

func (c *Core) hasPeer(p wire.NodeID) bool {
	for _, q := range c.peers {
		if q == p {
			return true
		}
	}
	return false
}

// Publish starts a new message with body at time now (nanoseconds on the
// driver's clock), signs it under SigningStrict, marks it seen, reports
// EventPublished and routes it to peers at hop 1. It returns the message
// as the publisher holds it (hop 0). The application validators do not
// run on its own publishes: the application is their author.
func (c *Core) Publish(now int64, body []byte, out *Output) (*wire.Message, error) {
	if len(body) > c.sh.cfg.MaxBody {
		return nil, fmt.Errorf("publish: %w: %d bytes, limit %d", ErrBodyTooLarge, len(body), c.sh.cfg.MaxBody)
	}
	seq := c.seq
	if seq == 0 {
		seq = c.sh.cfg.SeqBase
	}
	seq++
	m := &wire.Message{
		ID:          wire.ComputeMsgID(c.id, seq, body),
		Origin:      c.id,
		Seq:         seq,
		PublishedAt: now,
		Body:        body,
	}
	if err := c.sign(m); err != nil {
		return nil, err
	}
	c.seq = seq
	c.seen.add(m.ID, now+int64(c.sh.cfg.SeenTTL), c.sh.cfg.SeenCapacity)
	c.keep(now, m)
	out.Events = append(out.Events, Event{Kind: EventPublished, Msg: m})
	c.forward(now, m, 0, out)
	return m, nil
}

// Step implements Protocol: a message goes to Receive, a PULL to
// anti-entropy (antientropy.go), any other control frame to the router.
func (c *Core) Step(now int64, from wire.NodeID, f Frame, out *Output) {
	switch {
	case f.Msg != nil:
		c.Receive(now, from, f.Msg, out)
	case f.Ctl != nil && f.Ctl.Kind == wire.FramePull:
		c.onPull(now, from, f.Ctl, out)
	case f.Ctl != nil:
		c.sh.router.OnControl(c, now, from, f.Ctl, out)
	}
}

// Receive handles a message that peer from sent at time now, through the
// validation pipeline, cheapest check first: the hop count and size
// (check), dedup (a copy of an id already seen is a duplicate, and costs
// no crypto), the acceptance window (admit), the origin's rate budget when
// it is on (origin.go: a copy of a spent origin costs no crypto either),
// then the id, the signature and the application validators
// (validate.go); only a copy that passes them all spends a token of its
// origin's budget, so a forger cannot spend an honest origin's. The first copy that
// passes them all is marked seen, delivered and forwarded; a copy that
// fails is rejected or refused and not marked seen, so an honest copy that
// arrives later still gets through.
//
// No message is delivered twice. A copy is accepted only inside its
// acceptance window, now < PublishedAt + SeenTTL, and its id is kept at
// least that long, with one exception: to make room the cache forgets its
// oldest id early. Every forgotten id, by age or for room, raises the
// cache's floor to that id's expiry (PublishedAt + SeenTTL), and a copy
// whose expiry is at or below the floor is refused. A copy whose id was
// forgotten has its message's own expiry, which is at or below the floor:
// refused, whatever the clock does. A copy that passes was never
// forgotten, so if it had been delivered the cache still holds its id.
// The price is that, under load, a first copy older than the newest
// forgotten id is refused too: the cache refuses rather than forgets.
// Under SigningStrict PublishedAt is signed, so the window is also the
// replay defence: a peer cannot make an old message look new, and one
// replayed after its id was forgotten is refused, by age or by the floor.
func (c *Core) Receive(now int64, from wire.NodeID, m *wire.Message, out *Output) {
	if fault, err := c.check(m); err != nil {
		out.Events = append(out.Events, Event{Kind: EventRejected, Msg: m, From: from, Err: err, PeerFault: fault})
		return
	}
	if c.seen.contains(now, m.ID) {
		out.Events = append(out.Events, Event{Kind: EventDuplicate, Msg: m, From: from})
		c.sh.router.OnDuplicate(c, now, m, from, out)
		return
	}
	expires, err := c.admit(now, m)
	if err != nil {
		out.Events = append(out.Events, Event{Kind: EventRefused, Msg: m, From: from, Err: err})
		return
	}
	if c.sh.origins && c.overBudget(now, m) {
		c.refuseOverBudget(from, m, out)
		return
	}
	if kind, fault, err := c.validate(m); err != nil {
		out.Events = append(out.Events, Event{Kind: kind, Msg: m, From: from, Err: err, PeerFault: fault})
		return
	}
	if c.sh.origins {
		c.chargeOrigin(now, m)
	}
	c.seen.add(m.ID, expires, c.sh.cfg.SeenCapacity)
	c.keep(now, m)
	if c.store != nil && c.store.ae.opens > 0 {
		c.noteDelivery(now, from, m)
	}
	out.Events = append(out.Events, Event{Kind: EventDelivered, Msg: m, From: from})
	if m.Hop < c.sh.cfg.MaxHops {
		c.forward(now, m, from, out)
	}
}

// admit applies the acceptance window to a copy whose id the cache does not
// hold, and returns when its id may be forgotten.
func (c *Core) admit(now int64, m *wire.Message) (expires int64, err error) {
	// Future first: it keeps PublishedAt + SeenTTL from overflowing.
	if m.PublishedAt > now+int64(c.sh.cfg.MaxFuture) {
		return 0, fmt.Errorf("%w: published %v ahead, allowed %v", ErrFuture,
			time.Duration(m.PublishedAt-now), c.sh.cfg.MaxFuture)
	}
	expires = m.PublishedAt + int64(c.sh.cfg.SeenTTL)
	if now >= expires {
		return 0, fmt.Errorf("%w: published %v ago, window %v", ErrExpired,
			time.Duration(now-m.PublishedAt), c.sh.cfg.SeenTTL)
	}
	if !c.seen.covers(expires) {
		return 0, ErrUnderLoad
	}
	return expires, nil
}

// check applies the cheap validity rules, before dedup. fault says whether
// the peer that sent m broke the rule itself: only the hop count is set by
// the sender; the rest it relays from the origin.
func (c *Core) check(m *wire.Message) (fault bool, err error) {
	switch {
	case m.Hop == 0 || m.Hop > c.sh.cfg.MaxHops:
		return true, fmt.Errorf("%w: %d, want 1..%d", ErrBadHop, m.Hop, c.sh.cfg.MaxHops)
	case len(m.Body) > c.sh.cfg.MaxBody:
		return false, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, len(m.Body), c.sh.cfg.MaxBody)
	case m.Origin == c.id:
		// Our own message coming back goes on to dedup, as long as this
		// boot published it (sequences SeqBase+1 .. seq); one it did not
		// is forged, or left over from an earlier boot, and either way a
		// forwarder cannot know.
		if m.Seq > c.sh.cfg.SeqBase && m.Seq <= c.seq {
			return false, nil
		}
		return false, ErrFromSelf
	}
	return false, nil
}

// forward routes m (held at this node at m.Hop) to the peers the router
// picks, as one shared copy at m.Hop+1.
func (c *Core) forward(now int64, m *wire.Message, from wire.NodeID, out *Output) {
	out.route = c.sh.router.Route(c, now, m, from, out.route[:0], out)
	if len(out.route) == 0 {
		return
	}
	next := *m
	next.Hop++
	for _, p := range out.route {
		out.Sends = append(out.Sends, Send{To: p, Frame: Frame{Msg: &next}})
	}
}

// Tick implements Protocol: it forgets expired ids, sends the period's
// anti-entropy PULL when it is due and, when the router's time has come,
// runs its tick hook, which may send.
func (c *Core) Tick(now int64, out *Output) {
	c.seen.expire(now)
	if c.sh.ae != 0 {
		c.antiEntropyTick(now, out)
	}
	if !c.sh.timed {
		return
	}
	if t := c.sh.router.NextTick(c); t != 0 && t <= now {
		c.sh.router.OnTick(c, now, out)
	}
}

// NextTick implements Protocol: the earliest of the seen-cache's next
// expiry, the next anti-entropy pull and the router's next tick, 0 for
// never.
func (c *Core) NextTick() int64 {
	t := c.seen.nextExpiry()
	if c.sh.ae != 0 {
		t = earliest(t, c.aeNext())
	}
	if !c.sh.timed {
		return t
	}
	return earliest(t, c.sh.router.NextTick(c))
}

// NextWake implements Waker: the earliest of the next anti-entropy pull
// and the router's next tick. The seen-cache's expiry can wait for the
// next input, which expires it first.
func (c *Core) NextWake() int64 {
	var t int64
	if c.sh.ae != 0 {
		t = c.aeNext()
	}
	if !c.sh.timed {
		return t
	}
	return earliest(t, c.sh.router.NextTick(c))
}

// earliest is the earlier of two tick times, where 0 means never.
func earliest(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// SeenLen is the number of ids in the seen-cache, for metrics and tests.
func (c *Core) SeenLen() int { return c.seen.len() }
