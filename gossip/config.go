package gossip

import (
	"errors"
	"fmt"
	"time"

	"gossipmesh/wire"
)

// Strategy names a router: the rule that decides which peers get a message.
type Strategy string

// The routers gossipmesh ships.
const (
	// Flood sends every new message to every peer but the one it came from.
	// It reaches every node of a connected graph along shortest paths, at
	// the price of one copy per link.
	Flood Strategy = "flood"
	// Fanout sends every new message to Fanout peers chosen at random (never
	// the one it came from): the lesson's pseudo-code. Fewer copies, and a
	// small chance that some node is missed.
	Fanout Strategy = "fanout"
	// Plumtree pushes each message along a spanning tree of eager links
	// and announces it (IHAVE) on the lazy rest, repairing with GRAFT
	// (plumtree.go): after the first messages a message costs N-1 payload
	// frames plus small control frames.
	Plumtree Strategy = "plumtree"
	// Lazy pushes each message to a few peers (LazyD) and announces it
	// (IHAVE) to some others every heartbeat, which fetch it with IWANT if
	// the push missed them (lazy.go): gossipsub's mesh plus gossip.
	Lazy Strategy = "lazy"
)

// Strategies lists the valid strategies, for flags and error messages.
func Strategies() []Strategy { return []Strategy{Flood, Fanout, Plumtree, Lazy} }

// Config tunes a Core. Start from DefaultConfig and change what you need;
// New calls Validate.
type Config struct {
	// Strategy picks the router. Default Flood.
	Strategy Strategy
	// Fanout is how many random peers the Fanout router picks per message,
	// capped by the node's degree. Default 8, the lesson's k.
	Fanout int
	// SeenCapacity bounds the seen-cache in entries; the oldest entry is
	// forgotten first. Forgetting never re-delivers: once the cache has
	// forgotten an id to make room, messages published no later than it
	// are refused ("under load") instead. Default 100,000: 24 bytes an
	// entry, a few MiB, and seconds to minutes of traffic at the rates a
	// node here sustains. At most 1<<30.
	SeenCapacity int
	// SeenTTL is the acceptance window W: a copy is accepted only while
	// now < PublishedAt + W, and its id is remembered until then, so no
	// copy that can still be accepted finds its id forgotten by age. A copy
	// that waited longer (in a queue, or at a partitioned peer) is dropped
	// as expired. It must outlast the time a message takes to cross the
	// mesh by far. Default 2 minutes, as in gossipsub.
	SeenTTL time.Duration
	// MaxFuture is the clock skew allowed to publishers: a message claiming
	// to be published more than MaxFuture after the receiver's now is
	// refused, since its id would have to be remembered for longer than
	// the window. Default 10 seconds; 0 demands clocks that agree exactly
	// (the simulator's virtual time).
	MaxFuture time.Duration
	// SeqBase numbers this node's publishes: the first gets sequence
	// SeqBase+1. A message id hashes origin, sequence and body, so a node
	// that restarts with the same id must not reuse a sequence number: the
	// node runtime sets SeqBase to its boot time in Unix nanoseconds.
	// Default 0 (the simulator, whose nodes never restart).
	SeqBase uint64
	// MaxHops drops messages that arrive at more hops than this, a guard
	// against a peer that inflates the count. Default 64.
	MaxHops uint16
	// MaxBody is the largest message body published or accepted. Default
	// 1 MiB (wire.DefaultMaxBody).
	MaxBody int
	// VerifyIDs recomputes the id of every message on first receipt and
	// rejects one whose id does not match its origin, seq and body. It costs
	// one SHA-256 per delivered message (not per duplicate). Default true.
	// Under SigningStrict the id is always checked, whatever this says: a
	// valid signature over a wrong id would deliver the same content
	// twice, under two ids.
	VerifyIDs bool
	// Signing is the message-signing policy (validate.go): SigningStrict
	// signs every publish and rejects unsigned or badly signed messages;
	// SigningNone publishes unsigned and rejects signed ones. Default
	// SigningStrict, as gossipsub's StrictSign. Every node of a mesh must
	// run the same policy.
	Signing Signing
	// Auth signs and verifies under SigningStrict (required there, unused
	// under SigningNone). It is per node: the driver sets it (the node
	// runtime from its key, the simulator to a cost model). Default nil.
	Auth Auth
	// Validators name the built-in application validators every message
	// must pass before delivery, in order (ParseValidator: "utf8", "json",
	// "nonempty", "max-body=N"). Every node of a mesh should run the same
	// ones, since a Reject blames the sender. Default none.
	Validators []string
	// CustomValidators run after Validators, for drivers and tests that
	// bring their own. Default none.
	CustomValidators []Validator
	// PlumtreeGraftTimeout is how long a Plumtree node waits, after the
	// first IHAVE for a message it lacks, before it sends GRAFT to the
	// announcer. It must exceed the usual lag of the eager path behind the
	// lazy one, or the tree keeps re-forming. Default 1 s. Real links here
	// take well under a millisecond, but a process on a loaded machine
	// can wait 100 ms for a core: with a 100 ms timeout the IHAVE then
	// outran the eager copy, GRAFT and PRUNE cycled, and a 50-node mesh
	// sustained a sixteenth of the rate (README, Figures). A copy that
	// really is lost waits a second for repair (anti-entropy repairs it
	// too). gossipsub's IWANT follow-up is 3 s.
	PlumtreeGraftTimeout time.Duration
	// PlumtreeGraftRetry is how long a Plumtree node waits after a GRAFT
	// before it grafts the next announcer: the paper's second timeout,
	// about one round trip. Default 20 ms.
	PlumtreeGraftRetry time.Duration
	// PlumtreeIHaveInterval is how long a Plumtree node gathers message
	// ids for its lazy peers before it sends each one IHAVE frame with all
	// of them (at most wire.MaxControlIDs a frame). Default 10 ms, which
	// the simulator keeps; the node runtime uses 50 ms
	// (node.DefaultConfig), since on a real link each frame is a write, a
	// wakeup and a read.
	PlumtreeIHaveInterval time.Duration
	// PlumtreeOptimizeThreshold is the paper's tree optimization: when a
	// message arrives at hop h from an eager peer after a lazy peer
	// announced it at hop h', and h - (h'+1) >= the threshold (the lazy
	// path is that many hops shorter), the node grafts the announcer (a
	// GRAFT without ids: it has the message) and prunes the eager peer, so
	// that the tree moves to the shorter path. As in the paper, only an
	// announcement that beat the eager copy counts (plumtree.go says why).
	// Default 3: at 10,000 simulated nodes it brings the last delivery hop
	// of a settled tree from 15.3 (off) to 10.6-11.2, against flood's
	// 9.7-10.1 on the same graph, at RMR 0, and 50 simulated nodes with
	// broadcasts from random origins 5 ms apart pay no more duplicates
	// than with it off (docs/sim.md). The paper's 7 counts hops the same
	// way; 0 turns it off. At most MaxHops.
	PlumtreeOptimizeThreshold int
	// StoreCapacity, StoreBytes and StoreTTL bound the message store that
	// serves repairs (Plumtree's GRAFT): at most StoreCapacity messages
	// and StoreBytes body bytes, each kept at most StoreTTL; the oldest
	// goes first. A message past these bounds can no longer be repaired
	// from this node (counted as a store miss). Defaults 10,000 messages,
	// 64 MiB and 2 minutes (the acceptance window: a later copy would be
	// refused anyway). Only cores that serve repairs keep a store: under
	// a router that repairs, or with anti-entropy on.
	StoreCapacity int
	StoreBytes    int
	StoreTTL      time.Duration
	// AntiEntropy is the anti-entropy period (antientropy.go): every
	// period, give or take half, a node swaps digests with one random
	// peer and each side sends what the other lacks, which repairs what
	// every push lost (a healed partition, a node that was down). 0 means
	// the strategy's default (AntiEntropyPeriod): off for flood and
	// fanout, DefaultAntiEntropy for every router that repairs (plumtree,
	// lazy); a negative value turns it off; a positive one is the period,
	// 1 ms to 24 hours. memberlist's push/pull runs every 30 s over full
	// state; a digest here is a few bytes per origin, so a period of
	// seconds costs little and heals in seconds.
	AntiEntropy time.Duration
	// AntiEntropyMaxMessages and AntiEntropyMaxBytes bound one answer to a
	// PULL: at most that many messages and body bytes; the rest goes in
	// later exchanges. Defaults 256 messages and 1 MiB.
	AntiEntropyMaxMessages int
	AntiEntropyMaxBytes    int

	// The lazy router's settings (lazy.go), chosen for this mesh's small
	// degree (3 to 8 peers) and sub-millisecond links; gossipsub's are D 6,
	// D_lazy 6, heartbeat 1 s, history 5, gossip 3 and a 3 s IWANT
	// follow-up.
	//
	// LazyD is how many peers get each new message eagerly (the eager
	// set, never the sender). Default 3: half of gossipsub's D 6, since a
	// node here has 3 to 8 peers and D 6 would be flood on most of them;
	// 3 still reaches nearly every node, and the heartbeat repairs the
	// rest. At most 1024.
	LazyD int
	// LazyDLazy is how many peers outside the eager set get IHAVE each
	// heartbeat, drawn at random. Default 3 (gossipsub 6), which is every
	// other peer of a node with 6 peers or fewer. At most 1024.
	LazyDLazy int
	// LazyHeartbeat is how often a node with recent messages or pending
	// IWANTs announces and checks its promises; an idle node does not
	// tick. Default 100 ms (gossipsub 1 s): links here answer in well
	// under a millisecond, so repair is bounded by the heartbeat, and a
	// 1 s heartbeat would make every repair take a second.
	LazyHeartbeat time.Duration
	// LazyHistory is how many heartbeats a message stays in the message
	// cache, whose ids IWANT is answered for (bodies come from the
	// message store). Heartbeats are counted as the node runs them, so a
	// late one under load counts as one; an idle node's cache ages by
	// the clock. Default 50, 5 s: gossipsub keeps 5 heartbeats, which is
	// 5 s of its 1 s heartbeat; 5 of this mesh's 100 ms heartbeats would
	// leave half a second for an IWANT to come, which a loaded machine
	// misses. At least LazyGossip, at most 1000.
	LazyHistory int
	// LazyGossip is how many of the latest heartbeats' ids an IHAVE
	// announces: each id is announced at this many heartbeats. Default 3,
	// as gossipsub. At least 1.
	LazyGossip int
	// LazyIWantTimeout is how long a node waits for a message it asked
	// for with IWANT before it counts the promise broken and asks the
	// next peer that announced it. Checked at heartbeats. Default 300 ms,
	// three heartbeats (gossipsub's follow-up is 3 s, three of its
	// heartbeats): far above a round trip here, short enough that a dead
	// announcer costs little.
	LazyIWantTimeout time.Duration
	// LazyDOut is how many eager slots a node keeps on links it dialed
	// itself (gossipsub's D_out), when its driver says which those are
	// (Dialer): the eager set is topped up from them first, even past
	// LazyD. A node picks whom it dials; an attacker only chooses to
	// connect to it, so however many peers graft it or fill its peer
	// list, at least this many of the peers it pushes to are its own
	// choice; and a GRAFT from a dialed peer is taken even when the eager
	// set is full (gossipsub's rule against mesh takeover). Default 1
	// (gossipsub's 2 of D 6, scaled to LazyD 3); 0 reserves no slot (the
	// GRAFT rule stays). At most LazyD: accepted links keep their slots
	// anyway, since a node takes GRAFTs up to twice LazyD.
	LazyDOut int
	// LazyMaxIHave is how many announced ids a node asks one peer for
	// per heartbeat (gossipsub's MaxIHaveLength); the rest of that peer's
	// announcements until the next heartbeat are ignored, so a peer that
	// announces what it never serves cannot make the node wait on more
	// than this many of its promises a heartbeat. Default 8,000: two full
	// IHAVE frames (wire.MaxControlIDs each), more than an honest peer
	// sends a heartbeat, which is one. At least 1.
	LazyMaxIHave int
	// LazyGossipFactor makes the announcements grow with the peer list
	// (gossipsub v1.1's GossipFactor): each heartbeat IHAVE goes to
	// max(LazyDLazy, LazyGossipFactor × candidates) peers outside the
	// eager set. A node among many sybils, which forward nothing of some
	// origin (a censor) or nothing at all, would otherwise spend its few
	// announcements on them, and the honest nodes that lack a message
	// would hear of it by lottery. Default 0.25, as gossipsub: at this
	// mesh's usual degree (3 to 8) a quarter of the lazy peers is fewer
	// than LazyDLazy, so nothing changes there. In [0, 1].
	LazyGossipFactor float64
	// LazyEagerSilence is how long the eager set may push this node
	// nothing (no copy, first or duplicate, from any eager peer) before
	// a first copy that came another way (an IWANT answer, an
	// anti-entropy pull) grafts the peer that sent it. Links cut without
	// a PeerDown (a partition, a peer that stopped forwarding) leave an
	// eager set that pushes nothing, and the node would hear of each
	// message only if a lazy neighbour's random announcements happened to
	// pick it; the peer that just delivered is a link known to work.
	// While the eager set pushes anything, nothing changes. Default 5 s,
	// the cache horizon at the default LazyHistory and LazyHeartbeat; 0
	// turns it off.
	LazyEagerSilence time.Duration

	// OriginRate is the per-origin rate budget (origin.go), in new
	// messages a second: a node delivers and forwards at most that many
	// of any one origin a second, after a burst of OriginBurst, and
	// refuses the rest (EventRefused, ErrOriginBudget) without marking
	// them seen. Only under SigningStrict, where the origin is proven: a
	// budget keyed by a claim anyone can make would let a forger silence
	// an honest origin. Default 0: off, for the simulator, whose million
	// nodes cannot each afford a table; the node runtime turns it on
	// (node.DefaultOriginRate).
	OriginRate float64
	// OriginBurst is how many messages of one origin a node accepts at
	// once before OriginRate paces them: the bucket's size. Default 0:
	// DefaultOriginBurstSeconds (2 s) of OriginRate.
	OriginBurst float64
	// OriginMax bounds the origins a node keeps a bucket for; a new one
	// takes the place of the origin charged least recently. Default 0:
	// DefaultOriginMax (4,096, about 200 KiB). At most 1M.
	OriginMax int
}

// minAntiEntropy bounds the anti-entropy period from below: a shorter one
// is a digest storm, not a repair.
const minAntiEntropy = time.Millisecond

// DefaultAntiEntropy is the anti-entropy period of the routers that have it
// on by default: one second, so a healed partition is repaired within a
// few seconds for one small digest frame per node per second.
const DefaultAntiEntropy = time.Second

// AntiEntropyPeriod resolves AntiEntropy: the period, or 0 when
// anti-entropy is off.
func (c Config) AntiEntropyPeriod() time.Duration {
	switch {
	case c.AntiEntropy < 0:
		return 0
	case c.AntiEntropy > 0:
		return c.AntiEntropy
	}
	switch c.Strategy {
	case Flood, Fanout:
		return 0
	}
	return DefaultAntiEntropy
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Strategy:     Flood,
		Fanout:       8,
		SeenCapacity: 100_000,
		SeenTTL:      2 * time.Minute,
		MaxFuture:    10 * time.Second,
		MaxHops:      64,
		MaxBody:      wire.DefaultMaxBody,
		VerifyIDs:    true,
		Signing:      SigningStrict,

		PlumtreeGraftTimeout:  time.Second,
		PlumtreeGraftRetry:    20 * time.Millisecond,
		PlumtreeIHaveInterval: 10 * time.Millisecond,
		StoreCapacity:         10_000,
		StoreBytes:            64 << 20,
		StoreTTL:              2 * time.Minute,

		PlumtreeOptimizeThreshold: 3,

		AntiEntropyMaxMessages: 256,
		AntiEntropyMaxBytes:    1 << 20,

		LazyD:            3,
		LazyDLazy:        3,
		LazyHeartbeat:    100 * time.Millisecond,
		LazyHistory:      50,
		LazyGossip:       3,
		LazyIWantTimeout: 300 * time.Millisecond,
		LazyDOut:         1,
		LazyMaxIHave:     2 * wire.MaxControlIDs,
		LazyGossipFactor: 0.25,
		LazyEagerSilence: 5 * time.Second,
	}
}

// maxSeenCapacity keeps ring positions within the cache's int32 fields.
const maxSeenCapacity = 1 << 30

// maxFuture bounds MaxFuture and SeenTTL: a day of clock skew is a broken
// clock, a day-long window a memory leak, and the bound keeps now +
// MaxFuture + SeenTTL far from overflow.
const maxFuture = 24 * time.Hour

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	if c.Signing == SigningStrict && c.Auth == nil {
		return errors.New("gossip: strict signing needs an Auth to sign and verify with (the driver sets it: a node's key, or the simulator's model)")
	}
	return nil
}

// ValidateSettings is Validate but for Auth, which a driver sets per node
// after it checks its own config (the node runtime from its key, the
// simulator to its model).
func (c Config) ValidateSettings() error {
	switch c.Strategy {
	case Flood, Fanout, Plumtree, Lazy:
	default:
		return fmt.Errorf("gossip: unknown strategy %q (want one of %v)", c.Strategy, Strategies())
	}
	if c.Fanout < 1 {
		return fmt.Errorf("gossip: fanout must be at least 1, got %d", c.Fanout)
	}
	if c.SeenCapacity < 1 || c.SeenCapacity > maxSeenCapacity {
		return fmt.Errorf("gossip: seen capacity must be in 1..%d, got %d", maxSeenCapacity, c.SeenCapacity)
	}
	if c.SeenTTL <= 0 || c.SeenTTL > maxFuture {
		return fmt.Errorf("gossip: seen TTL must be in (0, %v], got %v", maxFuture, c.SeenTTL)
	}
	if c.MaxFuture < 0 || c.MaxFuture > maxFuture {
		return fmt.Errorf("gossip: max future must be in 0..%v, got %v", maxFuture, c.MaxFuture)
	}
	if c.MaxHops < 1 {
		return errors.New("gossip: max hops must be at least 1")
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("gossip: max body must not be negative, got %d", c.MaxBody)
	}
	switch c.Signing {
	case SigningStrict, SigningNone:
	default:
		return fmt.Errorf("gossip: unknown signing policy %q (want one of %v)", c.Signing, SigningPolicies())
	}
	if err := checkValidatorNames(c.Validators); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"plumtree graft timeout", c.PlumtreeGraftTimeout}, {"plumtree graft retry", c.PlumtreeGraftRetry}, {"plumtree ihave interval", c.PlumtreeIHaveInterval}, {"store TTL", c.StoreTTL}} {
		if d.v <= 0 || d.v > maxFuture {
			return fmt.Errorf("gossip: %s must be in (0, %v], got %v", d.name, maxFuture, d.v)
		}
	}
	if c.PlumtreeOptimizeThreshold < 0 || c.PlumtreeOptimizeThreshold > int(c.MaxHops) {
		return fmt.Errorf("gossip: plumtree optimize threshold must be in 0..%d (max hops; 0 is off), got %d", c.MaxHops, c.PlumtreeOptimizeThreshold)
	}
	if c.StoreCapacity < 1 || c.StoreCapacity > maxSeenCapacity {
		return fmt.Errorf("gossip: store capacity must be in 1..%d, got %d", maxSeenCapacity, c.StoreCapacity)
	}
	if c.StoreBytes < 1 {
		return fmt.Errorf("gossip: store bytes must be at least 1, got %d", c.StoreBytes)
	}
	if c.AntiEntropy > maxFuture || c.AntiEntropy > 0 && c.AntiEntropy < minAntiEntropy {
		return fmt.Errorf("gossip: anti-entropy period must be in [%v, %v] (negative: off, 0: the strategy's default), got %v", minAntiEntropy, maxFuture, c.AntiEntropy)
	}
	if c.AntiEntropyMaxMessages < 1 || c.AntiEntropyMaxMessages > maxSeenCapacity {
		return fmt.Errorf("gossip: anti-entropy max messages must be in 1..%d, got %d", maxSeenCapacity, c.AntiEntropyMaxMessages)
	}
	if c.AntiEntropyMaxBytes < 1 {
		return fmt.Errorf("gossip: anti-entropy max bytes must be at least 1, got %d", c.AntiEntropyMaxBytes)
	}
	if err := c.validateLazy(); err != nil {
		return err
	}
	return c.validateOrigin()
}

// maxLazyDegree bounds LazyD and LazyDLazy: far above any degree this
// mesh builds, low enough that a typo is caught.
const maxLazyDegree = 1024

// maxLazyHistory bounds LazyHistory, which keeps history x heartbeat far
// from overflow.
const maxLazyHistory = 1000

// validateLazy checks the lazy router's settings.
func (c Config) validateLazy() error {
	if c.LazyD < 1 || c.LazyD > maxLazyDegree {
		return fmt.Errorf("gossip: lazy D must be in 1..%d, got %d", maxLazyDegree, c.LazyD)
	}
	if c.LazyDLazy < 1 || c.LazyDLazy > maxLazyDegree {
		return fmt.Errorf("gossip: lazy D_lazy must be in 1..%d, got %d", maxLazyDegree, c.LazyDLazy)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lazy heartbeat", c.LazyHeartbeat}, {"lazy IWANT timeout", c.LazyIWantTimeout}} {
		if d.v <= 0 || d.v > maxFuture {
			return fmt.Errorf("gossip: %s must be in (0, %v], got %v", d.name, maxFuture, d.v)
		}
	}
	if c.LazyDOut < 0 || c.LazyDOut > c.LazyD {
		return fmt.Errorf("gossip: lazy D_out must be in 0..%d (lazy D), got %d", c.LazyD, c.LazyDOut)
	}
	if !(c.LazyGossipFactor >= 0 && c.LazyGossipFactor <= 1) {
		return fmt.Errorf("gossip: lazy gossip factor must be in [0, 1], got %v", c.LazyGossipFactor)
	}
	if c.LazyEagerSilence < 0 || c.LazyEagerSilence > maxFuture {
		return fmt.Errorf("gossip: lazy eager silence must be in [0, %v], got %v", maxFuture, c.LazyEagerSilence)
	}
	if c.LazyMaxIHave < 1 {
		return fmt.Errorf("gossip: lazy max IHAVE must be at least 1 id a heartbeat, got %d", c.LazyMaxIHave)
	}
	if c.LazyGossip < 1 {
		return fmt.Errorf("gossip: lazy gossip must be at least 1 heartbeat, got %d", c.LazyGossip)
	}
	if c.LazyHistory < c.LazyGossip || c.LazyHistory > maxLazyHistory {
		return fmt.Errorf("gossip: lazy history must be in %d..%d heartbeats (at least lazy gossip), got %d", c.LazyGossip, maxLazyHistory, c.LazyHistory)
	}
	return nil
}

// ParseStrategy turns a flag value into a Strategy.
func ParseStrategy(s string) (Strategy, error) {
	for _, v := range Strategies() {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("unknown strategy %q (want one of %v)", s, Strategies())
}
