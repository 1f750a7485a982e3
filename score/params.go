// Package score keeps a per-peer score in the spirit of gossipsub v1.1 and
// acts on it: Book holds the counters each term of the score is made of,
// and Guard, a gossip.Protocol decorator, feeds the book from what the
// protocol it wraps does and shuts out the peers whose score falls below
// the thresholds. Because Guard sits at the protocol seam, every driver
// (the node runtime, the in-memory tests, the simulator) gets the same
// defences without code of its own beyond acting on Output.Disconnects.
//
// Like the gossip core, the package is pure: time is an input (now, in
// nanoseconds on the driver's clock), nothing here starts a goroutine,
// reads the clock or draws random numbers, so the same inputs give the
// same scores in every driver.
//
// The score of a peer is the sum of these terms (gossipsub's names):
//
//	P1  time connected      +TimeWeight × min(connected / TimeQuantum, TimeCap)
//	P2  first deliveries    +FirstDeliveryWeight × min(first deliveries, FirstDeliveryCap), decaying
//	P3  delivery deficit    DeficitWeight × deficit², deficit in [0, 1], on eager links only
//	P4  invalid messages    InvalidWeight × invalid², decaying slowly
//	P6  IP colocation       ColocationWeight × max(0, peers on its IP − ColocationThreshold)²
//	P7  behaviour penalty   BehaviourWeight × max(0, penalty − BehaviourThreshold)², decaying
//
// P5, gossipsub's application-specific score, has no counterpart here:
// this mesh has no application that vouches for peers.
package score

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Thresholds are the scores below which a peer loses, in order, gossip
// (IHAVE, IWANT and PULL to and from it are dropped), everything (every
// frame it sends is dropped: graylisted), and its link (it is disconnected
// and banned for Params.BanDuration). A score below 0 costs a peer its
// eager (mesh) link first. All are at most 0 and ordered
// Disconnect ≤ Graylist ≤ Gossip ≤ 0.
type Thresholds struct {
	// Gossip: below it no gossip goes to or comes from the peer. Default
	// −40: four times what the worst honest peer measured in the lossy
	// test mesh reached (README, "Peer scoring").
	Gossip float64
	// Graylist: below it every frame from the peer is dropped unread
	// (and costs it Params.GraylistedPenalty). Default −160: the fifth
	// invalid message (5² × −10 = −250) graylists any peer, even one
	// with the most credit P1 and P2 give (+30); four never do (−160,
	// not below).
	Graylist float64
	// Disconnect: below it the peer is disconnected and banned. Default
	// −400: a peer graylisted by five invalid messages is banned by the
	// 19th frame it sends after them (P7: (19 − 6)² = 169 more), while
	// one that falls silent recovers.
	Disconnect float64
}

// DefaultThresholds returns the thresholds documented on each field.
func DefaultThresholds() Thresholds {
	return Thresholds{Gossip: -40, Graylist: -160, Disconnect: -400}
}

// Validate reports thresholds that are positive or out of order.
func (t Thresholds) Validate() error {
	switch {
	case isBad(t.Gossip) || isBad(t.Graylist) || isBad(t.Disconnect):
		return errors.New("score thresholds: must be finite numbers")
	case t.Gossip > 0:
		return fmt.Errorf("score thresholds: gossip threshold %v must be at most 0", t.Gossip)
	case t.Graylist > t.Gossip:
		return fmt.Errorf("score thresholds: graylist threshold %v must be at most the gossip threshold %v", t.Graylist, t.Gossip)
	case t.Disconnect > t.Graylist:
		return fmt.Errorf("score thresholds: disconnect threshold %v must be at most the graylist threshold %v", t.Disconnect, t.Graylist)
	}
	return nil
}

// Params are every weight, cap, decay and limit of the score and of what
// Guard does with it. Start from DefaultParams; Validate checks them.
// Decays are half-lives: a decaying counter halves every half-life, and
// one that falls below DecayToZero is zero.
type Params struct {
	// P1, time connected: TimeWeight per TimeQuantum connected, at most
	// TimeCap quanta. Defaults 1 per minute, at most 10 (+10 after ten
	// minutes): a long-standing peer earns a little credit, never enough
	// to hide misbehaviour.
	TimeWeight  float64
	TimeQuantum time.Duration
	TimeCap     float64

	// P2, first deliveries: FirstDeliveryWeight per message the peer was
	// the first to deliver, the count capped at FirstDeliveryCap and
	// halving every FirstDeliveryHalfLife. Defaults 0.1, 200 (at most
	// +20), 1 minute.
	FirstDeliveryWeight   float64
	FirstDeliveryCap      float64
	FirstDeliveryHalfLife time.Duration

	// P3, delivery deficit on eager links. A peer this node pushed
	// payload to within the last DeficitWindow, and that has been
	// connected for DeficitActivation, is expected to have delivered
	// (first copies or duplicates) at least DeficitFraction of the
	// messages this node received in the meantime, once that count is at
	// least DeficitMinimum (decayed counts, halving every
	// DeficitHalfLife). The deficit is the share of that expectation it
	// did not meet, from 0 to 1; the term is DeficitWeight × deficit².
	// Defaults −10, 10 s, 30 s, 0.02, 250, 30 s (so at least five
	// copies are expected, and a quiet mesh expects none): a silent eager peer falls
	// below 0 (and out of the eager set) but, on P3 alone, never below
	// the gossip threshold, because an honest leaf (a peer with no other
	// link) has nothing to deliver either. 0 turns P3 off.
	DeficitWeight     float64
	DeficitWindow     time.Duration
	DeficitActivation time.Duration
	DeficitFraction   float64
	DeficitMinimum    float64
	DeficitHalfLife   time.Duration

	// P4, invalid messages: InvalidWeight × (count)², the count of
	// messages the peer itself got wrong (gossip.EventRejected with
	// PeerFault) halving every InvalidHalfLife. Defaults −10 and 10
	// minutes: the one term an honest peer never earns, so it is steep
	// and slow to forget.
	InvalidWeight   float64
	InvalidHalfLife time.Duration

	// P6, IP colocation: ColocationWeight × (peers sharing the peer's IP
	// beyond ColocationThreshold)². Defaults −10 and 8. The driver says
	// which IP a peer is on (Guard.SetAddr); the runtime leaves loopback
	// out, since a local mesh runs every node on 127.0.0.1.
	ColocationWeight    float64
	ColocationThreshold int

	// P7, behaviour penalty: BehaviourWeight × (penalty −
	// BehaviourThreshold)², the penalty halving every BehaviourHalfLife.
	// A broken promise (an IHAVE whose IWANT or GRAFT the announcer did
	// not answer itself within PromiseBreak, whoever else delivered the
	// message) adds 1, less PromiseCredit for each promise the peer keeps
	// (never below what other penalties added), and so does every
	// RateLimitedPerPenalty frames the runtime dropped for the peer's
	// rate limits (Guard.Penalize). Defaults −1, 6, 1 minute: six broken
	// promises more than kept cost nothing. With 20% loss on every frame
	// the most an honest peer owed at once was about 9.8 (P7 −14, Plumtree,
	// whose score its first deliveries kept at 0; lazy push: under 6), in
	// TestHonestLossyMeshBansNoOne. A liar that breaks 13 is below the
	// gossip threshold (−49), one that breaks 27 is banned (−441).
	BehaviourWeight    float64
	BehaviourThreshold float64
	BehaviourHalfLife  time.Duration

	// GraylistedPenalty is the behaviour penalty (P7) each frame dropped
	// from a graylisted peer adds: a peer that keeps talking once
	// graylisted goes on to the disconnect threshold and its ban, one
	// that falls silent recovers as its score decays. Default 1: a peer
	// graylisted by five invalid messages is banned by its 19th frame
	// after them, at the default thresholds.
	GraylistedPenalty float64

	// DecayToZero is where a decaying counter counts as zero. Default
	// 0.01.
	DecayToZero float64

	// Thresholds are where the score takes gossip, everything, then the
	// link away. Default DefaultThresholds().
	Thresholds Thresholds

	// BanDuration is how long a peer below the disconnect threshold is
	// refused (at PeerUp; the runtime also refuses it at the handshake and
	// does not dial it). Default 10 minutes.
	BanDuration time.Duration
	// RetainScore is how long a disconnected peer's score is kept, so that
	// reconnecting does not launder a bad one (gossipsub's RetainScore).
	// At least BanDuration. Default 30 minutes.
	RetainScore time.Duration
	// MaxPeers bounds the peers the book tracks, connected and retained.
	// When it is full a new peer takes the place of the retained peer
	// with the best score (the one whose memory matters least); connected
	// peers are always tracked, so a driver's link caps bound the rest.
	// A peer costs about 200 bytes. Default 4,096.
	MaxPeers int
	// MaxBans bounds the bans held; when full, the ban that ends soonest
	// goes. Default 4,096.
	MaxBans int

	// PromiseBreak is how long a peer has to deliver a message it
	// announced with IHAVE once this node asked for it (IWANT, or a GRAFT
	// naming it), before the promise counts as broken (P7). Only the
	// promising peer's own copy, first or duplicate, keeps it: a copy
	// from another peer settles nothing, so a liar cannot hide behind an
	// honest path. PromiseTimeout is how long its copy may still come and
	// the promise count as kept after all, the penalty taken back: a
	// grace for slow links when PromiseBreak is shorter. Like gossipsub,
	// one id per request frame is tracked. Defaults 3 s and 3 s
	// (gossipsub's IWANT follow-up time). The lazy router does not wait
	// for the charge: it asks another announcer at its own
	// LazyIWantTimeout, and stops counting an eager peer that breaks its
	// IWANTs (gossip.LazyRouter). A shorter PromiseBreak demotes a liar
	// sooner but, by isolating it sooner, sees fewer of its lies: at
	// 300 ms, in TestLiarGuarded, 7 of the two liars' 12 honest peers
	// scored them below 0 and never banned them.
	// PromiseBreak is at most PromiseTimeout.
	PromiseBreak   time.Duration
	PromiseTimeout time.Duration
	// PromiseCredit is how much of its broken-promise penalty a peer
	// gets back for each promise it keeps in time (P7, never below 0,
	// never more than broken promises added). Only the promising peer's
	// own copy keeps a promise: the message coming from someone else
	// settles nothing, so a liar that never serves what it announces is
	// charged for every lie even when honest peers deliver every message.
	// Honest loss breaks honest promises too (with 20% of every frame
	// lost, 35 to 40% of them: the IWANT or its answer), and they keep
	// the rest: a credit of 1 a kept promise offsets one broken, so a
	// peer that keeps at least half its promises pays only for runs of
	// bad luck, which BehaviourThreshold absorbs. Default 1; in [0, 1]
	// (0: every broken promise counts, as long as it decays).
	PromiseCredit float64
	// MaxPromises bounds the promises tracked at once; more are not
	// tracked. Default 8,192.
	MaxPromises int
	// RateLimitedPerPenalty is how many frames the runtime drops for a
	// peer's rate limits per unit of behaviour penalty. Default 100: a
	// flooder at twice a 100,000 frames/s limit earns 1,000 a second.
	RateLimitedPerPenalty int
	// OverBudgetPerPenalty is how many copies over their origin's rate
	// budget (gossip.ErrOriginBudget) a peer must send as their origin,
	// that is, messages it published itself past its budget, per unit of
	// behaviour penalty (P7). A relay of an over-budget origin is never
	// charged: it forwards what its own budget let through, and cannot
	// know that ours is spent. Default 10: a spammer at 20,000 messages/s
	// against a 1,000/s budget earns the 31 units that ban it, whatever
	// credit P1 and P2 gave it (+30), in about 16 ms of over-budget
	// copies, while the 100 copies the threshold forgives cover an honest
	// publisher's queueing jitter many times over.
	OverBudgetPerPenalty int
	// Interval is how often Guard recomputes every connected peer's score
	// to act on thresholds crossed by time alone (decay, P1, P3), besides
	// after every event that lowers a score. Default 1 s.
	Interval time.Duration
}

// DefaultParams returns the defaults documented on each Params field.
func DefaultParams() Params {
	return Params{
		TimeWeight:            1,
		TimeQuantum:           time.Minute,
		TimeCap:               10,
		FirstDeliveryWeight:   0.1,
		FirstDeliveryCap:      200,
		FirstDeliveryHalfLife: time.Minute,
		DeficitWeight:         -10,
		DeficitWindow:         10 * time.Second,
		DeficitActivation:     30 * time.Second,
		DeficitFraction:       0.02,
		DeficitMinimum:        250,
		DeficitHalfLife:       30 * time.Second,
		InvalidWeight:         -10,
		InvalidHalfLife:       10 * time.Minute,
		ColocationWeight:      -10,
		ColocationThreshold:   8,
		BehaviourWeight:       -1,
		BehaviourThreshold:    6,
		BehaviourHalfLife:     time.Minute,
		GraylistedPenalty:     1,
		DecayToZero:           0.01,
		Thresholds:            DefaultThresholds(),
		BanDuration:           10 * time.Minute,
		RetainScore:           30 * time.Minute,
		MaxPeers:              4096,
		MaxBans:               4096,
		PromiseBreak:          3 * time.Second,
		PromiseTimeout:        3 * time.Second,
		PromiseCredit:         1,
		MaxPromises:           8192,
		RateLimitedPerPenalty: 100,
		OverBudgetPerPenalty:  10,
		Interval:              time.Second,
	}
}

func isBad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// Validate reports the first parameter that cannot work: a reward with a
// negative weight or a penalty with a positive one, a non-positive
// duration or bound, or thresholds out of order.
func (p Params) Validate() error {
	if err := p.Thresholds.Validate(); err != nil {
		return fmt.Errorf("score params: %w", err)
	}
	for _, v := range []float64{p.TimeWeight, p.TimeCap, p.FirstDeliveryWeight, p.FirstDeliveryCap,
		p.DeficitWeight, p.DeficitFraction, p.DeficitMinimum, p.InvalidWeight, p.ColocationWeight,
		p.BehaviourWeight, p.BehaviourThreshold, p.GraylistedPenalty, p.DecayToZero} {
		if isBad(v) {
			return errors.New("score params: every weight, cap and threshold must be a finite number")
		}
	}
	switch {
	case p.TimeWeight < 0 || p.TimeCap < 0 || p.FirstDeliveryWeight < 0 || p.FirstDeliveryCap < 0:
		return errors.New("score params: P1 and P2 are rewards: their weights and caps must not be negative")
	case p.DeficitWeight > 0 || p.InvalidWeight > 0 || p.ColocationWeight > 0 || p.BehaviourWeight > 0:
		return errors.New("score params: P3, P4, P6 and P7 are penalties: their weights must not be positive")
	case p.TimeQuantum <= 0:
		return fmt.Errorf("score params: time quantum must be positive, got %v", p.TimeQuantum)
	case p.FirstDeliveryHalfLife <= 0 || p.DeficitHalfLife <= 0 || p.InvalidHalfLife <= 0 || p.BehaviourHalfLife <= 0:
		return errors.New("score params: every half-life must be positive")
	case p.DeficitWindow <= 0 || p.DeficitActivation < 0:
		return fmt.Errorf("score params: deficit window must be positive and activation not negative, got %v and %v", p.DeficitWindow, p.DeficitActivation)
	case p.DeficitFraction < 0 || p.DeficitFraction > 1:
		return fmt.Errorf("score params: deficit fraction must be in [0, 1], got %v", p.DeficitFraction)
	case p.DeficitMinimum < 1:
		return fmt.Errorf("score params: deficit minimum must be at least 1 message, got %v", p.DeficitMinimum)
	case p.ColocationThreshold < 1:
		return fmt.Errorf("score params: colocation threshold must be at least 1 peer, got %d", p.ColocationThreshold)
	case p.GraylistedPenalty < 0:
		return fmt.Errorf("score params: graylisted penalty must not be negative, got %v", p.GraylistedPenalty)
	case p.BehaviourThreshold < 0:
		return fmt.Errorf("score params: behaviour threshold must not be negative, got %v", p.BehaviourThreshold)
	case p.DecayToZero <= 0 || p.DecayToZero >= 1:
		return fmt.Errorf("score params: decay-to-zero must be in (0, 1), got %v", p.DecayToZero)
	case p.BanDuration <= 0:
		return fmt.Errorf("score params: ban duration must be positive, got %v", p.BanDuration)
	case p.RetainScore < p.BanDuration:
		return fmt.Errorf("score params: retain score %v must be at least the ban duration %v, or a banned peer's score is forgotten before its ban ends", p.RetainScore, p.BanDuration)
	case p.MaxPeers < 1 || p.MaxBans < 1 || p.MaxPromises < 1:
		return errors.New("score params: max peers, max bans and max promises must be at least 1")
	case p.PromiseBreak <= 0 || p.PromiseTimeout < p.PromiseBreak:
		return fmt.Errorf("score params: promise break must be positive and at most the promise timeout, got %v and %v", p.PromiseBreak, p.PromiseTimeout)
	case !(p.PromiseCredit >= 0 && p.PromiseCredit <= 1):
		return fmt.Errorf("score params: promise credit must be in [0, 1], got %v", p.PromiseCredit)
	case p.OverBudgetPerPenalty < 1:
		return fmt.Errorf("score params: over-budget copies per penalty must be at least 1, got %d", p.OverBudgetPerPenalty)
	case p.RateLimitedPerPenalty < 1:
		return fmt.Errorf("score params: rate-limited frames per penalty must be at least 1, got %d", p.RateLimitedPerPenalty)
	case p.Interval <= 0:
		return fmt.Errorf("score params: interval must be positive, got %v", p.Interval)
	}
	return nil
}
