// Package membership is gossipmesh's peer membership: HyParView's active
// and passive views with degree bounds, gossipsub-style peer exchange, and
// a SWIM/Lifeguard-style failure detector (heartbeats on idle links,
// suspicion before eviction, timeouts stretched when this node is itself
// slow).
//
// Like gossip.Core it is a pure state machine: no goroutines, sockets,
// wall clock or global random source. Time is an input (nanoseconds on the
// driver's clock), randomness a *rand.Rand handed in, and what it wants
// done (send a PING or a peer exchange, evict, dial, drop) is written into
// an Output the driver owns, so the node runtime, the in-memory network
// and the simulator can run the same code.
package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Config tunes a Membership. Start from DefaultConfig. The failure
// detector's defaults follow hashicorp/memberlist's DefaultLANConfig
// (ProbeInterval 1 s, ProbeTimeout 500 ms, SuspicionMult 4,
// AwarenessMaxMultiplier 8); the view sizes are chosen for this mesh,
// smaller than HyParView's paper (active 5, passive 30) allows, because
// nodes boot with 3 dialed peers and take inbound links as well.
type Config struct {
	// ProbeInterval is how long a link may stay silent before this node
	// sends the peer a PING. Any frame from the peer counts as an answer;
	// a busy link never carries a PING. Default 1 s (memberlist's).
	ProbeInterval time.Duration
	// ProbeTimeout is how long after a PING the peer may stay silent
	// before it is suspected. Default 500 ms (memberlist's).
	ProbeTimeout time.Duration
	// SuspicionMult times ProbeInterval is how long a suspect may stay
	// silent before it is evicted (its link closed). memberlist scales
	// its suspicion timeout with log10 of the cluster size, which is
	// about 1 for the meshes a node sees as neighbours; here the timeout
	// is per link, so it is fixed. Default 4, so a hung peer is suspected
	// within ProbeInterval+ProbeTimeout of its last frame (plus up to one
	// probe interval, since its last heartbeat) and evicted 4 s later; a
	// peer paused for one second answers long before.
	SuspicionMult int
	// AwarenessMax bounds Lifeguard's local health multiplier: each tick
	// that reaches this node more than ProbeTimeout late (its own loop or
	// process was stalled) raises its awareness by one, each ProbeInterval
	// of on-time ticks lowers it by one, and every timeout is multiplied
	// by 1+awareness. The lag itself is never held against peers: their
	// silence clocks move forward by it. Default 8 (memberlist's
	// AwarenessMaxMultiplier).
	AwarenessMax int

	// ActiveLow is the low degree bound: below it the node dials peers
	// from its passive view. Default 3, what a booted node dials.
	ActiveLow int
	// ActiveHigh is the high degree bound: above it the node drops the
	// surplus with HyParView's priorities: a link whose peer said (in its
	// peer exchange) that it does not need it, else a random link other
	// than the newest (a full node still takes a newcomer that needs it);
	// a dropped peer goes to the passive view. Default 8.
	ActiveHigh int
	// MinOutbound is how many of its own (outbound) links the node never
	// drops for surplus: above the high bound, an inbound link cannot take
	// the place of one of the last MinOutbound links this node dialed, so
	// that peers that only dial in (sybils around a target) cannot eclipse
	// it. Default 2; at most ActiveLow.
	MinOutbound int
	// PassiveSize bounds the passive view, the (id, address) pairs known
	// but not linked. A full view replaces a random entry. Default 30, the
	// paper's.
	PassiveSize int
	// DialTimeout is how long a dial from the passive view may stay
	// unanswered before the node counts it as failed and tries another.
	// Default 5 s.
	DialTimeout time.Duration
	// RefusalBackoff is how long this node passes over a passive entry
	// whose node refused a link it dialed (closed it at once: a full node
	// dropping a link its dialer said it did not need), or whose dial
	// failed. Without it the refused entry went straight back into the
	// pool it had just been drawn from, and a node owed several
	// replacements dialed the same full node again and again, a link up
	// and down every few milliseconds; the node runtime's redial loop of
	// a booted peer waits out a refusal's backoff too (RefusedUntil). A
	// node below its low bound still dials such an entry when it has no
	// other: it says it needs the link, so a full node keeps it. Default
	// 30 s; 0 turns the backoff off.
	RefusalBackoff time.Duration

	// ExchangeInterval is the mean time between peer exchanges: every
	// interval (jittered over [3/4, 5/4] of it) the node sends one random
	// active peer a sample of its views. A new link gets one at once.
	// Default 5 s.
	ExchangeInterval time.Duration
	// ExchangeSize bounds the entries of one peer exchange, sent and
	// accepted. Default 8, at most MaxExchange.
	ExchangeSize int

	// AllowedNets are the networks, besides loopback, that a peer-exchange
	// address may be in. An address must be an IP literal and a port: a
	// peer must not make this node resolve names, nor dial anything but
	// the mesh's own addresses. Default none: loopback only.
	AllowedNets []netip.Prefix
	// AllowAddr, when set, replaces the address rule above (in-memory
	// test networks name hosts). Default nil.
	AllowAddr func(addr string) bool
}

// MaxExchange is the most entries a peer exchange may carry.
const MaxExchange = 32

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ProbeInterval:    time.Second,
		ProbeTimeout:     500 * time.Millisecond,
		SuspicionMult:    4,
		AwarenessMax:     8,
		ActiveLow:        3,
		ActiveHigh:       8,
		MinOutbound:      2,
		PassiveSize:      30,
		DialTimeout:      5 * time.Second,
		RefusalBackoff:   30 * time.Second,
		ExchangeInterval: 5 * time.Second,
		ExchangeSize:     8,
	}
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.ProbeInterval <= 0:
		return fmt.Errorf("membership: probe interval %v: must be positive", c.ProbeInterval)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("membership: probe timeout %v: must be positive", c.ProbeTimeout)
	case c.SuspicionMult < 1:
		return fmt.Errorf("membership: suspicion multiplier %d: must be at least 1", c.SuspicionMult)
	case c.AwarenessMax < 0:
		return fmt.Errorf("membership: awareness max %d: must not be negative", c.AwarenessMax)
	case c.ActiveLow < 1:
		return fmt.Errorf("membership: active low bound %d: must be at least 1", c.ActiveLow)
	case c.ActiveHigh < c.ActiveLow:
		return fmt.Errorf("membership: active high bound %d: below the low bound %d", c.ActiveHigh, c.ActiveLow)
	case c.MinOutbound < 0 || c.MinOutbound > c.ActiveLow:
		return fmt.Errorf("membership: min outbound %d: must be between 0 and the low bound %d", c.MinOutbound, c.ActiveLow)
	case c.PassiveSize < 0:
		return fmt.Errorf("membership: passive size %d: must not be negative", c.PassiveSize)
	case c.DialTimeout <= 0:
		return fmt.Errorf("membership: dial timeout %v: must be positive", c.DialTimeout)
	case c.RefusalBackoff < 0:
		return fmt.Errorf("membership: refusal backoff %v: must not be negative", c.RefusalBackoff)
	case c.ExchangeInterval <= 0:
		return fmt.Errorf("membership: exchange interval %v: must be positive", c.ExchangeInterval)
	case c.ExchangeSize < 1 || c.ExchangeSize > MaxExchange:
		return fmt.Errorf("membership: exchange size %d: want 1..%d", c.ExchangeSize, MaxExchange)
	}
	for _, p := range c.AllowedNets {
		if !p.IsValid() {
			return errors.New("membership: allowed nets: invalid prefix")
		}
	}
	return nil
}

// Allowed reports whether a peer-exchange address passes the rule: an IP
// literal and a port 1..65535, the IP loopback or in AllowedNets; or
// whatever AllowAddr says when it is set.
func (c *Config) Allowed(addr string) bool {
	if c.AllowAddr != nil {
		return c.AllowAddr(addr)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 {
		return false
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range c.AllowedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseNets parses a comma-separated list of CIDR prefixes, for flags.
func ParseNets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ',' {
			continue
		}
		part := s[start:i]
		start = i + 1
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("membership: allowed net %s: %w", strconv.Quote(part), err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
