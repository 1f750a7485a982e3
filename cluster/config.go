// Package cluster launches and supervises a mesh of `mesh node` processes on
// 127.0.0.1, waits until they are healthy and linked, and measures how a
// message spreads through them. The CLI (demo, up, publish, status, bench),
// the end-to-end tests and the dashboard all drive a mesh through it.
//
// The launcher binds every node's listeners itself and hands them to the
// child as inherited files: a port that the launcher merely found "free"
// could be taken by anything else on the machine before the child binds it.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/netns"
)

// Config describes a mesh to launch. Start from DefaultConfig; New calls
// Validate.
type Config struct {
	// Binary is the mesh executable, run as `Binary node ...`. Default: the
	// running executable (os.Executable), so that `go run ./cmd/mesh demo`
	// needs no separate build step.
	Binary string
	// Nodes is how many node processes to run. Default 10, the lesson's.
	Nodes int
	// Peers is how many other nodes each node dials, chosen at random.
	// Links are undirected, so a node ends up with at least this many
	// neighbours. Default 3, the lesson's. Capped at Nodes-1.
	Peers int
	// Seed derives the topology, the node ids and each node's own seed: the
	// same seed gives the same mesh. Default 1.
	Seed uint64
	// Strategy is the gossip router, passed to every node. Default flood.
	Strategy gossip.Strategy
	// Fanout is the fanout router's k, passed to every node. Default 8.
	Fanout int
	// AntiEntropy is gossip.Config.AntiEntropy, passed to every node as
	// --anti-entropy: 0 the strategy's default (off for flood and fanout,
	// gossip.DefaultAntiEntropy for the routers that repair), negative
	// off, positive the period. Default 0.
	AntiEntropy time.Duration
	// Signing is every node's --signing policy. Default
	// gossip.SigningStrict.
	Signing gossip.Signing
	// Validators are every node's --validate list (gossip.ParseValidator
	// specs). Default none.
	Validators []string
	// Membership runs every node with --membership, and raises a node's
	// --active-high to its degree in the topology where that is above the
	// default, so that the membership never drops a link the topology
	// (and WaitReady) expects. With Netns, peer exchange also takes the
	// namespaces' subnet (--px-nets). Default false.
	Membership bool
	// MaxBody, if positive, sets the nodes' message body limit; 0 keeps the
	// node's default (1 MiB).
	MaxBody int
	// Receipts, if positive, sets how many receipts each node keeps for
	// GET /messages; 0 keeps the node's default. Bench raises it so that it
	// can collect every receipt of a load step.
	Receipts int
	// GOMAXPROCS, if positive, is set in every node's environment. On a
	// small machine the node processes compete for the same cores, and one
	// P per node cuts scheduler overhead. 0 inherits the launcher's
	// environment.
	GOMAXPROCS int
	// CalmSysmon keeps the Go runtime's monitor thread (sysmon) in every
	// node at its idle pace of one wakeup per 10 ms. By default, sysmon
	// sleeps deeply while a process is idle and, woken by the first system
	// call after that, polls every 20 µs for a millisecond or more: on two
	// cores shared by ten or fifty node processes, each message sets off
	// tens of thousands of those wakeups, and they take the CPU from the
	// nodes that are forwarding. The switch is GODEBUG=schedtrace with a
	// period of 24.8 days: a trace period disables the deep sleep (so
	// nothing resets the pace), and a trace is never printed in practice.
	// The cost is sysmon's own duties (preempting a goroutine that runs
	// over 10 ms, taking a P back from a long system call) at up to twice
	// their usual delay, which a node, whose goroutines do little at a
	// time, does not notice, and 100 sysmon wakeups a second per idle node
	// (10 idle nodes here: 3% of one core, against 0.2%). Measured side by
	// side on the 2-core machine (mesh bench, 3 seeds): N=10 p50 1.86 →
	// 1.08 ms, N=50 11.4 → 8.2 ms (2 seeds). Default true.
	CalmSysmon bool
	// LogFormat is the nodes' log format, text or json. Default text.
	LogFormat string
	// LogLevel, if set, is passed to the nodes as --log-level (debug, info,
	// warn, error). Each node logs one info line per first receipt, so
	// bench sets warn. Default: the node's default.
	LogLevel string
	// LogDir, if set, receives node-<index>.log with each node's stdout and
	// stderr, and keys/node-<index>.key with each node's key (directory
	// 0700, files 0600; see Cluster.KeyPath). Empty: a temporary directory
	// that Stop removes.
	LogDir string
	// LogMaxBytes caps each node's log file: a write that would take
	// node-<index>.log past it first renames the file to node-<index>.log.1
	// (replacing the older one) and starts a new one, so a node's logs take
	// at most twice this much disk however much it logs. Default
	// DefaultLogMaxBytes (32 MiB); at least 4 KiB.
	LogMaxBytes int64
	// Host is the address every listener binds. Default 127.0.0.1.
	Host string
	// HTTPPortOffset puts a node's HTTP listener on its gossip port plus this
	// offset when that port is free (the lesson's convention), else on any
	// free port. Default 1000; negative always picks any free port.
	HTTPPortOffset int
	// StartTimeout bounds Start: every node healthy, every chosen link up on
	// both ends, the mesh connected. Default 20 s.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL. Default 10 s: longer than the 5 s a node gives its HTTP
	// requests to finish, so that SIGKILL is only for a node that hangs.
	StopTimeout time.Duration
	// Netns runs every node in a Linux network namespace of its own, with
	// its own address in 198.18.0.0/15, joined to the others by veth pairs
	// and bridges (package netns), so that frames cross real network
	// stacks and a partition can be real: Cluster.Netns().SetSegment takes
	// a segment's trunk down. Start makes the namespaces and Stop removes
	// them. Needs root and iproute2; Host does not apply. Default off.
	Netns bool
	// NetnsSegments is how many segments (bridges) the namespaces are
	// spread over, in contiguous blocks of node indices, when Netns is
	// set. Default 2: halves, 0-4 and 5-9 of 10 nodes.
	NetnsSegments int
	// Adversaries run some nodes with `mesh node --adversary`: each spec's
	// Count nodes with its Mode, placed at random by Seed (see
	// placeAdversaries: the same seed and specs place the same nodes; a
	// node that a censor or eclipse mode targets stays honest). A node
	// with eclipse=TARGET also dials the target, whether the topology
	// chose it or not. The state file and `mesh status` record each
	// node's mode. Default none: every node honest.
	Adversaries []AdversarySpec
	// ExtraArgs are appended to every node's command line.
	ExtraArgs []string
	// OnExit, if set, is called from a supervisor goroutine whenever a node
	// process exits, including during Stop. err is nil for a clean exit.
	OnExit func(index, pid int, err error)
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Nodes:          10,
		Peers:          3,
		Seed:           1,
		Strategy:       gossip.Flood,
		Signing:        gossip.SigningStrict,
		Fanout:         8,
		LogFormat:      "text",
		LogMaxBytes:    DefaultLogMaxBytes,
		Host:           "127.0.0.1",
		HTTPPortOffset: 1000,
		StartTimeout:   20 * time.Second,
		StopTimeout:    10 * time.Second,
		CalmSysmon:     true,
		NetnsSegments:  2,
	}
}

// MaxNodes bounds Config.Nodes: every node is a process with two listeners
// and a handful of connections, and a 2-core machine has its limits.
const MaxNodes = 1000

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return fmt.Errorf("cluster: nodes must be 1 to %d, got %d", MaxNodes, c.Nodes)
	case c.Peers < 0:
		return fmt.Errorf("cluster: peers must not be negative, got %d", c.Peers)
	case c.Nodes > 1 && c.Peers < 1:
		return fmt.Errorf("cluster: peers must be at least 1 for a mesh of %d nodes, or it cannot be connected", c.Nodes)
	case c.Peers > c.Nodes-1 && c.Nodes > 1:
		return fmt.Errorf("cluster: peers must be at most nodes-1 = %d, got %d", c.Nodes-1, c.Peers)
	case c.Fanout < 1:
		return fmt.Errorf("cluster: fanout must be at least 1, got %d", c.Fanout)
	case c.MaxBody < 0:
		return fmt.Errorf("cluster: max body must not be negative, got %d", c.MaxBody)
	case c.Receipts < 0:
		return fmt.Errorf("cluster: receipts must not be negative, got %d", c.Receipts)
	case c.GOMAXPROCS < 0:
		return fmt.Errorf("cluster: GOMAXPROCS must not be negative, got %d", c.GOMAXPROCS)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("cluster: log format must be text or json, got %q", c.LogFormat)
	case c.LogMaxBytes < minLogMaxBytes:
		return fmt.Errorf("cluster: log max bytes must be at least %d, got %d", minLogMaxBytes, c.LogMaxBytes)
	case c.Host == "":
		return errors.New("cluster: host must be set")
	case c.StartTimeout <= 0:
		return fmt.Errorf("cluster: start timeout must be positive, got %v", c.StartTimeout)
	case c.StopTimeout <= 0:
		return fmt.Errorf("cluster: stop timeout must be positive, got %v", c.StopTimeout)
	case c.Netns && c.Nodes > netns.MaxNodes:
		return fmt.Errorf("cluster: at most %d nodes run in network namespaces, got %d", netns.MaxNodes, c.Nodes)
	case c.Netns && (c.NetnsSegments < 1 || c.NetnsSegments > min(c.Nodes, netns.MaxSegments)):
		return fmt.Errorf("cluster: netns segments must be 1 to %d, got %d", min(c.Nodes, netns.MaxSegments), c.NetnsSegments)
	}
	total := 0
	for _, sp := range c.Adversaries {
		if sp.Count < 1 {
			return fmt.Errorf("cluster: adversaries %q: want a count of at least 1", sp.String())
		}
		total += sp.Count
	}
	if total > c.Nodes {
		return fmt.Errorf("cluster: %d adversaries asked for, but the mesh has %d nodes", total, c.Nodes)
	}
	if _, err := gossip.ParseStrategy(string(c.Strategy)); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	g := gossip.DefaultConfig()
	g.Strategy, g.AntiEntropy = c.Strategy, c.AntiEntropy
	g.Signing, g.Validators = c.Signing, c.Validators
	if err := g.ValidateSettings(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("cluster: log level must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return nil
}

// withBinary fills in the default binary.
func (c Config) withBinary() (Config, error) {
	if c.Binary != "" {
		return c, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return c, fmt.Errorf("cluster: finding the mesh binary: %w", err)
	}
	c.Binary = exe
	return c, nil
}
