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
)

// Strategies lists the valid strategies, for flags and error messages.
func Strategies() []Strategy { return []Strategy{Flood, Fanout} }

// Config tunes a Core. Start from DefaultConfig and change what you need;
// New calls Validate.
type Config struct {
	// Strategy picks the router. Default Flood.
	Strategy Strategy
	// Fanout is how many random peers the Fanout router picks per message,
	// capped by the node's degree. Default 8, the lesson's k.
	Fanout int
	// SeenCapacity bounds the seen-cache in entries; the oldest entry is
	// forgotten first. Default 100,000: at 16 bytes of id a few MiB, and
	// minutes of traffic at the rates a node here sustains.
	SeenCapacity int
	// SeenTTL bounds the seen-cache in age. A copy that arrives after its id
	// was forgotten counts as new, so this must outlast the time a message
	// takes to cross the mesh by far. Default 2 minutes, as in gossipsub.
	SeenTTL time.Duration
	// MaxHops drops messages that arrive at more hops than this, a guard
	// against a peer that inflates the count. Default 64.
	MaxHops uint16
	// MaxBody is the largest message body published or accepted. Default
	// 1 MiB (wire.DefaultMaxBody).
	MaxBody int
	// VerifyIDs recomputes the id of every message on first receipt and
	// rejects one whose id does not match its origin, seq and body. It costs
	// one SHA-256 per delivered message (not per duplicate). Default true.
	VerifyIDs bool
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Strategy:     Flood,
		Fanout:       8,
		SeenCapacity: 100_000,
		SeenTTL:      2 * time.Minute,
		MaxHops:      64,
		MaxBody:      wire.DefaultMaxBody,
		VerifyIDs:    true,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch c.Strategy {
	case Flood, Fanout:
	default:
		return fmt.Errorf("gossip: unknown strategy %q (want one of %v)", c.Strategy, Strategies())
	}
	if c.Fanout < 1 {
		return fmt.Errorf("gossip: fanout must be at least 1, got %d", c.Fanout)
	}
	if c.SeenCapacity < 1 {
		return fmt.Errorf("gossip: seen capacity must be at least 1, got %d", c.SeenCapacity)
	}
	if c.SeenTTL <= 0 {
		return fmt.Errorf("gossip: seen TTL must be positive, got %v", c.SeenTTL)
	}
	if c.MaxHops < 1 {
		return errors.New("gossip: max hops must be at least 1")
	}
	if c.MaxBody < 0 {
		return fmt.Errorf("gossip: max body must not be negative, got %d", c.MaxBody)
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
