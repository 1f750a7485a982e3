package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gossipmesh/api"
	"gossipmesh/identity"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// SoakConfig tunes Soak: how long it runs, the honest load it offers and
// the hostile traffic it mixes in. Start from DefaultSoakConfig. Every
// count is a total over the mesh; the traffic is spread over the nodes.
type SoakConfig struct {
	// Duration is how long the mixed load runs, after the storm if there
	// is one. Default 60 s.
	Duration time.Duration
	// Seed picks the publishers, the targets of hostile connections and the
	// fake peers' ids: the same seed gives the same plan. Default 1.
	Seed uint64
	// Rate is the background stream of small honest messages, in messages
	// per second over the whole mesh, each POSTed to a random node. They
	// are checked through the nodes' logs (exactly once at every node).
	// Default 50; 0 turns the stream off.
	Rate float64
	// Size is the body size of the small messages and of the storm's, in
	// bytes. Default 64, what `mesh bench` sends.
	Size int
	// Tracked is the rate of tracked honest messages per second: small
	// messages with a unique body, each checked at every node through
	// GET /messages/{id}?wait=. Default 1; 0 tracks only the large ones.
	Tracked float64
	// LargeRate is the rate of large messages per second, each POSTed to a
	// random node and tracked like the others. Default 0.5; 0 turns them
	// off.
	LargeRate float64
	// LargeSize is the large messages' body size. Default 1 MiB, the
	// nodes' default body limit.
	LargeSize int
	// SlowConns is how many raw connections to the nodes' gossip ports
	// send a valid hello, then all of a ~1 MiB message frame but its last
	// 4 KiB, then one more byte every TrickleGossip. Default 300.
	SlowConns int
	// Attempts is the total number of gossip connection attempts, slow
	// ones included; the others connect and never say hello. They are
	// spread over the first half of Duration. Default 1,000. Must be at
	// least SlowConns.
	Attempts int
	// Tricklers is how many HTTP connections POST /messages with a 1 MiB
	// Content-Length and then send the body one byte a second. Default
	// 100.
	Tricklers int
	// Subscribers is how many GET /events subscribers connect with a tiny
	// receive buffer and never read. Default 500.
	Subscribers int
	// Spread spreads the slow connections, the tricklers and the
	// subscribers over every node. Default false: they all go to one node
	// (the victim, drawn from Seed), which is what a per-node budget must
	// withstand. The silent connection attempts go to random nodes either
	// way.
	Spread bool
	// CrossSiteEvery is the period of the cross-site rounds: each round
	// sends every kind of cross-site request (foreign Origin, Sec-Fetch-Site
	// cross-site, foreign Host, text/plain and form bodies) to every
	// state-changing route of one node (and of the dashboard, if
	// DashboardURL is set). Default 5 s; 0 sends no cross-site requests.
	CrossSiteEvery time.Duration
	// DashboardURL, if set, is a dashboard serving this cluster
	// ("http://127.0.0.1:8080"). Its publish route gets the cross-site
	// rounds; its restart and kill routes get one round at the end, after
	// the delivery counts are taken, because a request that gets through
	// kills a node.
	DashboardURL string
	// RSSBudget is the peak resident set size (VmHWM) allowed to any node,
	// in bytes. Default 256 MiB.
	RSSBudget int64
	// Storm, if positive, is a burst published first: one POST /load of
	// Storm messages at full speed (rate 0) at one node. StormHonest
	// honest messages follow at random nodes, and each must reach every
	// node within StormWithin of its publish. Default 0: no storm.
	Storm int
	// StormHonest is how many honest messages follow the storm. Default 10.
	StormHonest int
	// StormWithin is how soon after its publish every node must receive a
	// message that follows the storm. Default 1 s.
	StormWithin time.Duration
	// HonestWait is how long a tracked message may take to reach a node.
	// Default 10 s: the mesh is under hostile load on a shared machine.
	HonestWait time.Duration
	// Settle bounds the wait, after the load stops, for the nodes'
	// delivery counters to stop moving before they are read. Default 30 s.
	Settle time.Duration
	// SampleEvery is the period of the resource samples (VmHWM, open file
	// descriptors, goroutines). Default 500 ms.
	SampleEvery time.Duration
	// Progress, if set, gets one line per phase.
	Progress func(string)
}

// DefaultSoakConfig returns the defaults documented on SoakConfig: the
// hostile-and-heavy-user mix of `mesh soak`.
func DefaultSoakConfig() SoakConfig {
	return SoakConfig{
		Duration:       60 * time.Second,
		Seed:           1,
		Rate:           50,
		Size:           64,
		Tracked:        1,
		LargeRate:      0.5,
		LargeSize:      wire.DefaultMaxBody,
		SlowConns:      300,
		Attempts:       1000,
		Tricklers:      100,
		Subscribers:    500,
		CrossSiteEvery: 5 * time.Second,
		RSSBudget:      256 << 20,
		StormHonest:    10,
		StormWithin:    time.Second,
		HonestWait:     10 * time.Second,
		Settle:         30 * time.Second,
		SampleEvery:    500 * time.Millisecond,
	}
}

// Soak limits: they keep a typo from turning the soak into a denial of
// service of the machine it runs on.
const (
	MaxSoakDuration = 24 * time.Hour
	MaxSoakRate     = 10_000
	MaxSoakConns    = 10_000
)

// Validate reports the first setting that cannot work.
func (c SoakConfig) Validate() error {
	rate := func(name string, v, hi float64) error {
		if math.IsNaN(v) || v < 0 || v > hi {
			return fmt.Errorf("soak: %s must be 0 to %v per second, got %v", name, hi, v)
		}
		return nil
	}
	count := func(name string, v, hi int) error {
		if v < 0 || v > hi {
			return fmt.Errorf("soak: %s must be 0 to %d, got %d", name, hi, v)
		}
		return nil
	}
	switch {
	case c.Duration < time.Second || c.Duration > MaxSoakDuration:
		return fmt.Errorf("soak: duration must be 1s to %v, got %v", MaxSoakDuration, c.Duration)
	case c.Size < 0 || c.Size > wire.DefaultMaxBody:
		return fmt.Errorf("soak: size must be 0 to %d bytes, got %d", wire.DefaultMaxBody, c.Size)
	case c.LargeSize < 0 || c.LargeSize > wire.DefaultMaxBody:
		return fmt.Errorf("soak: large size must be 0 to %d bytes, got %d", wire.DefaultMaxBody, c.LargeSize)
	case c.CrossSiteEvery < 0 || (c.CrossSiteEvery > 0 && c.CrossSiteEvery < 100*time.Millisecond):
		return fmt.Errorf("soak: cross-site period must be 0 (off) or at least 100ms, got %v", c.CrossSiteEvery)
	case c.RSSBudget < 1:
		return fmt.Errorf("soak: RSS budget must be positive, got %d", c.RSSBudget)
	case c.StormHonest < 0 || c.StormHonest > 1000:
		return fmt.Errorf("soak: storm honest messages must be 0 to 1000, got %d", c.StormHonest)
	case c.StormWithin <= 0:
		return fmt.Errorf("soak: storm deadline must be positive, got %v", c.StormWithin)
	case c.HonestWait <= 0 || c.HonestWait > api.MaxWait:
		return fmt.Errorf("soak: honest wait must be above 0 and at most %v, got %v", api.MaxWait, c.HonestWait)
	case c.Settle < 0:
		return fmt.Errorf("soak: settle must not be negative, got %v", c.Settle)
	case c.SampleEvery < 10*time.Millisecond:
		return fmt.Errorf("soak: sample period must be at least 10ms, got %v", c.SampleEvery)
	case c.Attempts < c.SlowConns:
		return fmt.Errorf("soak: attempts (%d) must be at least the slow connections (%d), which are part of them", c.Attempts, c.SlowConns)
	}
	if c.DashboardURL != "" {
		if u, err := url.Parse(c.DashboardURL); err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("soak: dashboard URL %q: want http://HOST:PORT", c.DashboardURL)
		}
	}
	return errors.Join(
		rate("rate", c.Rate, MaxSoakRate),
		rate("tracked rate", c.Tracked, 100),
		rate("large rate", c.LargeRate, 100),
		count("slow connections", c.SlowConns, MaxSoakConns),
		count("attempts", c.Attempts, MaxSoakConns),
		count("tricklers", c.Tricklers, MaxSoakConns),
		count("subscribers", c.Subscribers, MaxSoakConns),
		count("storm", c.Storm, api.MaxLoadCount),
	)
}

// SoakResult is what `mesh soak` reports.
type SoakResult struct {
	Nodes    int
	Duration time.Duration
	Seed     uint64
	// PerNode has one row per node slot, in index order.
	PerNode []SoakNode
	// Load counts what the soak published.
	Load SoakLoad
	// Honest is the tracked messages' delivery.
	Honest SoakHonest
	// Storm is set when the soak started with a storm.
	Storm *SoakStorm
	// Hostile counts the hostile connections and what became of them.
	Hostile SoakHostile
	// Victim is the node that took the slow connections, the tricklers and
	// the subscribers; -1 when they were spread.
	Victim int
	// CrossSite lists the cross-site requests by route and kind.
	CrossSite []CrossSiteCount
	// Settled is false when the delivery counters still moved at the end
	// of Settle.
	Settled bool
	// Failures lists every invariant that failed, one sentence each;
	// empty when the soak passed.
	Failures []string
}

// OK reports whether every invariant held.
func (r SoakResult) OK() bool { return len(r.Failures) == 0 }

// CrossSiteChanged is the number of cross-site requests that changed
// state: a message published or a node killed or restarted.
func (r SoakResult) CrossSiteChanged() (changed, sent int) {
	for _, c := range r.CrossSite {
		changed += c.Changed
		sent += c.Sent
	}
	return changed, sent
}

// SoakNode is one node's figures.
type SoakNode struct {
	Index int
	// PIDs lists the processes seen in the slot (more than one if a
	// cross-site restart got through).
	PIDs []int
	// PeakRSS is the highest VmHWM sampled, in bytes.
	PeakRSS int64
	// FDs and Goroutines are the last sample (the load has stopped and
	// the hostile connections are closed); the peaks are over the run.
	FDs, PeakFDs               int
	Goroutines, PeakGoroutines int
	// LogBytes is the size of the node's log file(s) at the end.
	LogBytes int64
	// Published and Delivered count the node's "published" and
	// "delivered" log lines; MetricPublished and MetricDelivered are its
	// gossipmesh_messages_*_total counters, read once the load settled.
	Published, Delivered             int
	MetricPublished, MetricDelivered int
	// Expected is the number of distinct messages other nodes published
	// (from their logs); Missing those of them this node never delivered.
	Expected, Missing int
	// Twice counts messages delivered more than once; MaxPerMessage is
	// the highest number of deliveries of one message (1 when all is well).
	Twice, MaxPerMessage int
	// TwiceExample is one message id delivered more than once.
	TwiceExample string
	// Stray counts delivered ids that no node's log says it published.
	Stray int
	// Exact is true when the log is known to hold every delivery (no
	// dropped lines, at least as many lines as the counter), so that the
	// per-message counts are exact; Inexact says why not.
	Exact   bool
	Inexact string
}

// SoakLoad counts the honest publishes.
type SoakLoad struct {
	Small, Tracked, Large int
	// Errors counts publishes that were not answered 201; Skipped the
	// small messages not sent because 32 publishes were already in flight.
	Errors, Skipped int
	// FirstError is the first publish error.
	FirstError string
}

// SoakHonest is the tracked messages' delivery, checked at every node
// (the publisher excluded) with GET /messages/{id}?wait=HonestWait.
type SoakHonest struct {
	Messages int
	// Pairs and Delivered count (message, receiving node) pairs.
	Pairs, Delivered int
	// Missing describes the first few pairs that never arrived.
	Missing []string
}

// Ratio is the delivered fraction of pairs (1 when there were none).
func (h SoakHonest) Ratio() float64 {
	if h.Pairs == 0 {
		return 1
	}
	return float64(h.Delivered) / float64(h.Pairs)
}

// SoakStorm is the storm phase's result.
type SoakStorm struct {
	Publisher int
	Messages  int
	// Elapsed is the time the POST /load took.
	Elapsed time.Duration
	// Honest counts the (message, node) pairs of the messages that
	// followed; InTime those that arrived within StormWithin of the
	// publish; MaxLatency is the slowest arrival seen.
	Honest        SoakHonest
	InTime        int
	MaxLatency    time.Duration
	ErrPublishing string
}

// SoakHostile counts hostile connections by kind.
type SoakHostile struct {
	SlowConns, SilentConns, Tricklers, Subscribers ConnCount
}

// ConnCount is what became of one kind of hostile connection.
type ConnCount struct {
	// Tried counts attempts; Refused those that failed to connect (or to
	// send their opening bytes); Closed those the node closed before the
	// soak ended; Open those still open at the end.
	Tried, Refused, Closed, Open int
}

// CrossSiteCount is one (route, kind) of cross-site request.
type CrossSiteCount struct {
	Route, Kind string
	Sent        int
	// Refused counts 4xx answers; Changed requests that changed state (a
	// 2xx answer, or a node that died or restarted); Other the rest
	// (5xx, no answer).
	Refused, Changed, Other int
	// Example is the first answer, for the report.
	Example string
}

// soakRun is one soak's shared state.
type soakRun struct {
	cfg   SoakConfig
	c     *Cluster
	nodes []NodeInfo // as at the start
	hc    *http.Client
	cl    []*api.Client
	rng   *rand.Rand
	rngMu sync.Mutex
	say   func(string)

	mu      sync.Mutex
	res     SoakResult
	cross   map[[2]string]*CrossSiteCount
	samples []SoakNode // per node: PeakRSS, PeakFDs, PeakGoroutines, PIDs
}

func (s *soakRun) intn(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

// SoakLogLine is a generous size of one receipt log line: a cluster
// driven by Soak needs Config.LogMaxBytes of at least SoakLogLine times
// SoakConfig.Messages() for its logs to keep every receipt line.
const SoakLogLine = 256

// Messages estimates how many messages the soak publishes (the storm, the
// small, tracked and large streams, the cross-site publishes that get
// through): each is a receipt line in every node's log.
func (c SoakConfig) Messages() int {
	perS := c.Rate + c.Tracked + c.LargeRate
	if c.CrossSiteEvery > 0 {
		perS += float64(3*len(crossSiteKinds())) / c.CrossSiteEvery.Seconds()
	}
	return c.Storm + int(math.Ceil(perS*c.Duration.Seconds()))
}

// Soak drives the running cluster c with the mixed honest and hostile load
// of cfg, then stops c (its logs must be complete) and checks the
// invariants: every message delivered exactly once at every node, every
// tracked honest message at every node, no node over the RSS budget, no
// cross-site request that changed state. Failures go in the result; the
// error is for a soak that could not run. c must log at info level or
// below: the per-message counts come from the nodes' "delivered" lines.
func Soak(ctx context.Context, c *Cluster, cfg SoakConfig) (SoakResult, error) {
	if err := cfg.Validate(); err != nil {
		return SoakResult{}, err
	}
	switch c.Config().LogLevel {
	case "", "info", "debug":
	default:
		return SoakResult{}, fmt.Errorf("soak: nodes must log at info level, not %q: the per-message counts come from their logs", c.Config().LogLevel)
	}
	if c.Config().LogDir == "" {
		return SoakResult{}, errors.New("soak: the cluster needs a LogDir: Stop removes a temporary one, and the soak reads the logs after Stop")
	}
	say := cfg.Progress
	if say == nil {
		say = func(string) {}
	}
	nodes := c.Nodes()
	s := &soakRun{
		cfg:   cfg,
		c:     c,
		nodes: nodes,
		hc:    &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32, DisableCompression: true}},
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x736f616b)), // "soak"
		say:   say,
		cross: make(map[[2]string]*CrossSiteCount),
	}
	defer s.hc.CloseIdleConnections()
	for _, n := range nodes {
		s.cl = append(s.cl, api.NewClient(n.HTTPURL, s.hc))
	}
	s.res = SoakResult{Nodes: len(nodes), Duration: cfg.Duration, Seed: cfg.Seed, Victim: -1}
	if !cfg.Spread {
		s.res.Victim = s.intn(len(nodes))
	}
	s.samples = make([]SoakNode, len(nodes))

	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); s.sampleLoop(sampleCtx) }()
	defer func() { stopSampling(); <-sampled }()

	if cfg.Storm > 0 {
		if err := s.storm(ctx); err != nil {
			return s.res, err
		}
	}
	if err := s.mixed(ctx); err != nil {
		return s.res, err
	}
	if ctx.Err() != nil {
		return s.res, ctx.Err()
	}

	say(fmt.Sprintf("settling: waiting up to %v for the delivery counters to stop moving", cfg.Settle))
	metrics := s.settle(ctx)
	if cfg.DashboardURL != "" && cfg.CrossSiteEvery > 0 {
		say("cross-site: restart and kill through the dashboard")
		s.crossSiteDashboardKill(ctx)
	}
	s.sampleOnce(ctx)
	stopSampling()
	<-sampled

	say("stopping the mesh, then counting deliveries in every node's log")
	if err := c.Stop(); err != nil {
		say(fmt.Sprintf("warning: %v", err))
	}
	if err := s.countLogs(metrics); err != nil {
		return s.res, err
	}
	s.finish()
	return s.res, nil
}

// --- resources ---------------------------------------------------------

func (s *soakRun) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		s.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOnce records every node's VmHWM, open descriptors and goroutines.
// VmHWM is the kernel's own high-water mark of the process's RSS, so a
// peak between two samples is not missed.
func (s *soakRun) sampleOnce(ctx context.Context) {
	nodes := s.c.Nodes()
	var wg sync.WaitGroup
	for i, n := range nodes {
		if !n.Running {
			continue
		}
		wg.Go(func() {
			hwm, _ := procHWM(n.PID)
			fds, fdErr := countFDs(n.PID)
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			m, mErr := scrapeMetrics(ctx, s.hc, n.HTTPURL)
			s.mu.Lock()
			defer s.mu.Unlock()
			row := &s.samples[i]
			if !slices.Contains(row.PIDs, n.PID) {
				row.PIDs = append(row.PIDs, n.PID)
			}
			row.PeakRSS = max(row.PeakRSS, hwm)
			if fdErr == nil {
				row.FDs = fds
				row.PeakFDs = max(row.PeakFDs, fds)
			}
			if g, ok := m["go_goroutines"]; ok && mErr == nil {
				row.Goroutines = int(g)
				row.PeakGoroutines = max(row.PeakGoroutines, int(g))
			}
		})
	}
	wg.Wait()
}

// procHWM returns a process's peak resident set size (VmHWM) in bytes.
func procHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d: VmHWM %q: %w", pid, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmHWM in /proc status", pid)
}

// countFDs counts a process's open file descriptors.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return len(ents), nil
}

// scrapeMetrics reads the unlabelled series of a node's /metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s answered %s", base, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 8<<20))
}

// parseMetrics reads Prometheus text exposition, keeping series without
// labels.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("metrics: %w", err)
	}
	return out, nil
}

// Counter names the soak reads.
const (
	metricPublished = "gossipmesh_messages_published_total"
	metricDelivered = "gossipmesh_messages_delivered_total"
)

// --- storm -------------------------------------------------------------

// storm publishes cfg.Storm messages at full speed at one node, then the
// honest messages that must still get through within StormWithin.
func (s *soakRun) storm(ctx context.Context) error {
	cfg := s.cfg
	pub := s.intn(len(s.cl))
	st := &SoakStorm{Publisher: pub, Messages: cfg.Storm}
	s.res.Storm = st
	s.say(fmt.Sprintf("storm: POST /load of %d messages of %d bytes at full speed at node %d", cfg.Storm, cfg.Size, pub))
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	lr, err := s.cl[pub].Load(lctx, api.LoadRequest{Rate: 0, Count: cfg.Storm, Size: cfg.Size})
	cancel()
	st.Elapsed = time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st.ErrPublishing = err.Error()
	}
	s.say(fmt.Sprintf("storm: %d published in %v; %d honest messages follow, each due at every node within %v", lr.Published, st.Elapsed.Round(time.Millisecond), cfg.StormHonest, cfg.StormWithin))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for k := range cfg.StormHonest {
		at := s.intn(len(s.cl))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := s.cl[at].Publish(pctx, fmt.Sprintf("soak storm honest %d seed %d", k, cfg.Seed))
		cancel()
		if err != nil {
			mu.Lock()
			st.Honest.Messages++
			st.Honest.Pairs += len(s.cl) - 1
			st.Honest.Missing = appendCapped(st.Honest.Missing, fmt.Sprintf("honest message %d at node %d: publish failed: %v", k, at, err))
			mu.Unlock()
			continue
		}
		mu.Lock()
		st.Honest.Messages++
		mu.Unlock()
		for i := range s.cl {
			if i == at {
				continue
			}
			wg.Go(func() {
				rc, err := s.receipt(ctx, i, r.ID, cfg.HonestWait)
				mu.Lock()
				defer mu.Unlock()
				st.Honest.Pairs++
				if err != nil {
					st.Honest.Missing = appendCapped(st.Honest.Missing, fmt.Sprintf("%s (from node %d) at node %d: %v", r.ID, at, i, err))
					return
				}
				st.Honest.Delivered++
				lat := rc.ReceivedAt.Sub(rc.PublishedAt)
				st.MaxLatency = max(st.MaxLatency, lat)
				if lat <= cfg.StormWithin {
					st.InTime++
				}
			})
		}
	}
	wg.Wait()
	return ctx.Err()
}

// receipt asks node i for id, waiting up to wait. A message that did not
// come in time is a short error: the failures quote it.
func (s *soakRun) receipt(ctx context.Context, i int, id string, wait time.Duration) (api.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+5*time.Second)
	defer cancel()
	rc, err := s.cl[i].Receipt(ctx, id, wait)
	if errors.Is(err, api.ErrNotFound) {
		return rc, fmt.Errorf("not there after %v", wait)
	}
	return rc, err
}

// appendCapped keeps the first five entries: enough to go on, short
// enough to read.
func appendCapped(list []string, s string) []string {
	if len(list) < 5 {
		return append(list, s)
	}
	return list
}

// --- the mixed phase ---------------------------------------------------

// mixed runs the honest load, the hostile connections and the cross-site
// rounds together for cfg.Duration, then closes every hostile connection
// and waits for the tracked messages' checks.
func (s *soakRun) mixed(ctx context.Context) error {
	cfg := s.cfg
	s.say(fmt.Sprintf("mixed load for %v: %.4g small msgs/s, %.4g tracked msgs/s, %.4g large (%d B) msgs/s; %d slow frames, %d connection attempts, %d trickled HTTP bodies, %d idle subscribers; cross-site every %v",
		cfg.Duration, cfg.Rate, cfg.Tracked, cfg.LargeRate, cfg.LargeSize, cfg.SlowConns, cfg.Attempts, cfg.Tricklers, cfg.Subscribers, cfg.CrossSiteEvery))
	if s.res.Victim >= 0 && cfg.SlowConns+cfg.Tricklers+cfg.Subscribers > 0 {
		s.say(fmt.Sprintf("the slow connections, tricklers and subscribers all go to node %d", s.res.Victim))
	}
	phase, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()

	var checks sync.WaitGroup // tracked-message checks: they outlive the phase
	var wg sync.WaitGroup
	h := newHostile()
	wg.Go(func() { s.smallLoad(phase) })
	wg.Go(func() { s.trackedLoad(phase, &checks, "tracked", cfg.Tracked, cfg.Size) })
	wg.Go(func() { s.trackedLoad(phase, &checks, "large", cfg.LargeRate, cfg.LargeSize) })
	wg.Go(func() { s.gossipConns(phase, h) })
	wg.Go(func() { s.httpConns(phase, h) })
	wg.Go(func() { s.trickle(phase, h) })
	if cfg.CrossSiteEvery > 0 {
		wg.Go(func() { s.crossSiteLoop(phase) })
	}
	wg.Wait()
	s.say("mixed load over: checking which hostile connections the nodes closed")
	s.res.Hostile = h.finish()
	checks.Wait()
	return nil
}

// smallLoad publishes the background stream: message k at start + k/Rate,
// at most 32 in flight.
func (s *soakRun) smallLoad(ctx context.Context) {
	if s.cfg.Rate <= 0 {
		return
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	pad := strings.Repeat("s", s.cfg.Size)
	for k := 0; ; k++ {
		next := start.Add(time.Duration(float64(k) / s.cfg.Rate * float64(time.Second)))
		if sleep(ctx, time.Until(next)) != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			s.mu.Lock()
			s.res.Load.Skipped++
			s.mu.Unlock()
			continue
		}
		at := s.intn(len(s.cl))
		body := bodyOf(fmt.Sprintf("soak %d/%d ", s.cfg.Seed, k), pad)
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := s.publish(ctx, at, body)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.countPublish(err, func(l *SoakLoad) { l.Small++ })
		})
	}
}

// bodyOf is prefix then pad, cut to len(pad) bytes unless the prefix is
// longer: unique bodies of the configured size.
func bodyOf(prefix, pad string) string {
	if len(prefix) >= len(pad) {
		return prefix
	}
	return prefix + pad[len(prefix):]
}

func (s *soakRun) countPublish(err error, ok func(*SoakLoad)) {
	if err == nil {
		ok(&s.res.Load)
		return
	}
	s.res.Load.Errors++
	if s.res.Load.FirstError == "" {
		s.res.Load.FirstError = err.Error()
	}
}

func (s *soakRun) publish(ctx context.Context, at int, body string) (api.PublishResponse, error) {
	// The request outlives the phase by a little: a publish in flight
	// when the phase ends still counts.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	return s.cl[at].Publish(ctx, body)
}

// trackedLoad publishes rate messages/s of size bytes, one at a time,
// each checked at every other node.
func (s *soakRun) trackedLoad(ctx context.Context, checks *sync.WaitGroup, kind string, rate float64, size int) {
	if rate <= 0 {
		return
	}
	pad := strings.Repeat(kind[:1], size)
	start := time.Now()
	for k := 0; ; k++ {
		next := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
		if sleep(ctx, time.Until(next)) != nil {
			return
		}
		at := s.intn(len(s.cl))
		r, err := s.publish(ctx, at, bodyOf(fmt.Sprintf("soak %s %d/%d ", kind, s.cfg.Seed, k), pad))
		s.mu.Lock()
		s.countPublish(err, func(l *SoakLoad) {
			if kind == "large" {
				l.Large++
			} else {
				l.Tracked++
			}
		})
		if err == nil {
			s.res.Honest.Messages++
		}
		s.mu.Unlock()
		if err != nil {
			continue
		}
		for i := range s.cl {
			if i == at {
				continue
			}
			checks.Go(func() {
				_, err := s.receipt(context.WithoutCancel(ctx), i, r.ID, s.cfg.HonestWait)
				s.mu.Lock()
				defer s.mu.Unlock()
				s.res.Honest.Pairs++
				if err != nil {
					s.res.Honest.Missing = appendCapped(s.res.Honest.Missing, fmt.Sprintf("%s message %s (from node %d) at node %d: %v", kind, r.ID, at, i, err))
					return
				}
				s.res.Honest.Delivered++
			})
		}
	}
}

// --- hostile connections -----------------------------------------------

// hostile holds the hostile connections, by kind.
type hostile struct {
	mu    sync.Mutex
	kinds map[string][]*hostileConn
	tried map[string]int
	fail  map[string]int
}

type hostileConn struct {
	conn   net.Conn
	closed atomic.Bool // the node closed it (seen by a read or a write)
	// trickle is the byte sent every tick, or 0 for a connection that
	// only waits.
	trickle byte
	every   int  // ticks between trickled bytes
	watched bool // a goroutine reads it (see watch)
	// closedAtEnd is the verdict of hostile.finish, taken before the
	// soak closes the connection itself.
	closedAtEnd bool
}

const (
	kindSlow       = "slow"
	kindSilent     = "silent"
	kindTrickler   = "trickler"
	kindSubscriber = "subscriber"
)

func newHostile() *hostile {
	return &hostile{kinds: make(map[string][]*hostileConn), tried: make(map[string]int), fail: make(map[string]int)}
}

func (h *hostile) add(kind string, hc *hostileConn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tried[kind]++
	if err != nil {
		h.fail[kind]++
		if hc != nil && hc.conn != nil {
			hc.conn.Close()
		}
		return
	}
	h.kinds[kind] = append(h.kinds[kind], hc)
}

func (h *hostile) list(kind string) []*hostileConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.kinds[kind])
}

// finish finds out which connections the node closed, closes the rest and
// counts them.
func (h *hostile) finish() SoakHostile {
	h.mu.Lock()
	defer h.mu.Unlock()
	var wg sync.WaitGroup
	for _, list := range h.kinds {
		for _, hc := range list {
			wg.Go(func() {
				switch {
				case hc.closed.Load():
					hc.closedAtEnd = true
				case hc.watched:
					// Give the watcher a moment to see a close that has
					// already happened.
					time.Sleep(100 * time.Millisecond)
					hc.closedAtEnd = hc.closed.Load()
				default:
					hc.closedAtEnd = closedByPeer(hc.conn)
				}
				hc.conn.Close()
			})
		}
	}
	wg.Wait()
	count := func(kind string) ConnCount {
		cc := ConnCount{Tried: h.tried[kind], Refused: h.fail[kind]}
		for _, hc := range h.kinds[kind] {
			if hc.closedAtEnd {
				cc.Closed++
			} else {
				cc.Open++
			}
		}
		return cc
	}
	return SoakHostile{
		SlowConns: count(kindSlow), SilentConns: count(kindSilent),
		Tricklers: count(kindTrickler), Subscribers: count(kindSubscriber),
	}
}

// closedByPeer reads whatever is buffered on conn for up to a second: an
// end of stream or a reset means the other side closed it; a read timeout
// that it is still open.
func closedByPeer(conn net.Conn) bool {
	deadline := time.Now().Add(time.Second)
	buf := make([]byte, 64<<10)
	for {
		next := time.Now().Add(200 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		_ = conn.SetReadDeadline(next)
		_, err := conn.Read(buf)
		if err == nil {
			if time.Now().After(deadline) {
				return false // still talking
			}
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// gossipConns opens the slow connections in the first tenth of the phase
// and the silent ones evenly over its first half.
func (s *soakRun) gossipConns(ctx context.Context, h *hostile) {
	cfg := s.cfg
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 16)
	start := time.Now()
	for k := range cfg.SlowConns {
		at := start.Add(time.Duration(k) * (cfg.Duration / 10) / time.Duration(max(cfg.SlowConns, 1)))
		if sleep(ctx, time.Until(at)) != nil {
			return
		}
		target := s.nodes[s.hostileTarget(k)].GossipAddr
		key := s.fakeKey()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			hc, err := slowFrame(ctx, target, key)
			h.add(kindSlow, hc, err)
		})
	}
	silent := cfg.Attempts - cfg.SlowConns
	start = time.Now()
	for k := range silent {
		at := start.Add(time.Duration(k) * (cfg.Duration / 2) / time.Duration(max(silent, 1)))
		if sleep(ctx, time.Until(at)) != nil {
			return
		}
		target := s.nodes[s.intn(len(s.nodes))].GossipAddr
		wg.Go(func() {
			conn, err := dial(ctx, target)
			if err != nil {
				h.add(kindSilent, nil, err)
				return
			}
			hc := &hostileConn{conn: conn}
			h.add(kindSilent, hc, nil)
			hc.watch()
		})
	}
}

// dial bounds every hostile connection attempt to 2 s.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// hostileTarget is the node the k-th slow connection, trickler or
// subscriber goes to.
func (s *soakRun) hostileTarget(k int) int {
	if s.res.Victim < 0 {
		return k % len(s.nodes)
	}
	return s.res.Victim
}

// fakeKey draws a key, from the run's seeded rand, whose id no node of the
// mesh has: a stranger that can complete the handshake as itself.
func (s *soakRun) fakeKey() *identity.Key {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	for {
		var seed [32]byte
		for i := 0; i < len(seed); i += 8 {
			binary.LittleEndian.PutUint64(seed[i:], s.rng.Uint64())
		}
		k, err := identity.FromSeed(seed[:])
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(s.nodes, func(n NodeInfo) bool { return n.ID == k.ID().String() }) {
			return k
		}
	}
}

// slowFrameTail is what a slow connection holds back of its frame: the
// frame never completes within a soak.
const slowFrameTail = 4 << 10

// slowFrame connects to a gossip port, completes the handshake as the
// holder of key, and sends a message frame of the largest default size but
// its last slowFrameTail bytes. It reads (and discards) what the node
// sends, so the node has no reason to drop it but the frame that never
// ends.
func slowFrame(ctx context.Context, addr string, key *identity.Key) (*hostileConn, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	hc := &hostileConn{conn: conn, trickle: 'x', every: 5}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := node.Handshake(conn, key, "127.0.0.1:9"); err != nil {
		return hc, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	// A frame header for a message of DefaultMaxBody bytes; the payload
	// (zeros) is never finished, so it is never decoded.
	length := uint32(wire.DefaultMaxFrame - 4)
	hdr := []byte{byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length), wire.Version, byte(wire.FrameMessage)}
	if _, err := conn.Write(hdr); err != nil {
		return hc, err
	}
	hc.watch()
	payload := make([]byte, int(length)-2-slowFrameTail)
	if _, err := conn.Write(payload); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			hc.closed.Store(true) // the node hung up mid-frame
		}
	}
	return hc, nil
}

// watch reads (and discards) from the connection in the background and
// marks it closed when the node closes it.
func (hc *hostileConn) watch() {
	hc.watched = true
	go func() {
		_, _ = io.Copy(io.Discard, hc.conn)
		hc.closed.Store(true)
	}()
}

// httpConns opens the trickled POSTs and the idle subscribers in the first
// tenth of the phase.
func (s *soakRun) httpConns(ctx context.Context, h *hostile) {
	cfg := s.cfg
	var wg sync.WaitGroup
	defer wg.Wait()
	total := cfg.Tricklers + cfg.Subscribers
	start := time.Now()
	for k := range total {
		at := start.Add(time.Duration(k) * (cfg.Duration / 10) / time.Duration(max(total, 1)))
		if sleep(ctx, time.Until(at)) != nil {
			return
		}
		n := s.nodes[s.hostileTarget(k)]
		host := strings.TrimPrefix(n.HTTPURL, "http://")
		kind := kindTrickler
		if k >= cfg.Tricklers {
			kind = kindSubscriber
		}
		wg.Go(func() {
			hc, err := openHTTP(ctx, kind, host)
			h.add(kind, hc, err)
		})
	}
}

// openHTTP opens one trickler (a POST /messages whose 1 MiB body comes a
// byte a second) or one subscriber (GET /events with a 4 KiB receive
// buffer, never read).
func openHTTP(ctx context.Context, kind, host string) (*hostileConn, error) {
	conn, err := dial(ctx, host)
	if err != nil {
		return nil, err
	}
	hc := &hostileConn{conn: conn}
	var req string
	if kind == kindTrickler {
		hc.trickle, hc.every = 'a', 1
		req = "POST /messages HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"body\":\""
	} else {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		req = "GET /events HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/event-stream\r\n\r\n"
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return hc, err
	}
	return hc, nil
}

// trickle sends each slow connection's next byte: tricklers every second,
// slow frames every 5 s. A write that fails means the node closed it.
func (s *soakRun) trickle(ctx context.Context, h *hostile) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, kind := range []string{kindSlow, kindTrickler} {
			for _, hc := range h.list(kind) {
				if hc.trickle == 0 || hc.closed.Load() || tick%hc.every != 0 {
					continue
				}
				wg.Go(func() {
					_ = hc.conn.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := hc.conn.Write([]byte{hc.trickle}); err != nil {
						var ne net.Error
						if !errors.As(err, &ne) || !ne.Timeout() {
							hc.closed.Store(true)
						}
					}
				})
			}
		}
		wg.Wait()
	}
}

// --- cross-site requests ----------------------------------------------

// crossSiteKind is one way a web page (or a rebinding DNS name) reaches a
// local route: each sets one hostile property, and keeps the others
// honest, so that each protection is probed on its own.
type crossSiteKind struct {
	name  string
	ctype string
	set   func(h http.Header)
	host  string // "" keeps the real host
}

// crossSiteKinds lists the kinds of cross-site request a round sends.
func crossSiteKinds() []crossSiteKind {
	return []crossSiteKind{
		{name: "origin", ctype: "application/json", set: func(h http.Header) { h.Set("Origin", "http://evil.example") }},
		{name: "sec-fetch-site", ctype: "application/json", set: func(h http.Header) { h.Set("Sec-Fetch-Site", "cross-site") }},
		{name: "host", ctype: "application/json", host: "evil.example"},
		{name: "text-plain", ctype: "text/plain", set: func(h http.Header) {
			h.Set("Origin", "http://evil.example")
			h.Set("Sec-Fetch-Site", "cross-site")
			h.Set("Sec-Fetch-Mode", "no-cors")
		}},
		{name: "text-plain-bare", ctype: "text/plain"},
		{name: "form", ctype: "application/x-www-form-urlencoded", set: func(h http.Header) { h.Set("Origin", "null") }},
	}
}

// crossSiteRoute is one state-changing route and a body that would change
// state if the request were served.
type crossSiteRoute struct {
	name string // "POST /messages"
	path string
	body func(node, seq int) string
}

// nodeRoutes are a node API's state-changing routes.
func nodeRoutes() []crossSiteRoute {
	return []crossSiteRoute{
		{name: "node POST /messages", path: "/messages", body: func(_, seq int) string { return fmt.Sprintf(`{"body":"cross-site %d"}`, seq) }},
		{name: "node POST /load", path: "/load", body: func(_, _ int) string { return `{"rate":0,"count":1,"size":8}` }},
	}
}

// dashboardPublish is the dashboard's publish route; its kill and restart
// routes are probed apart (crossSiteDashboardKill).
func dashboardPublish() crossSiteRoute {
	return crossSiteRoute{
		name: "dashboard POST /api/publish", path: "/api/publish",
		body: func(node, seq int) string { return fmt.Sprintf(`{"node":%d,"body":"cross-site %d"}`, node, seq) },
	}
}

// crossSiteLoop sends one round every CrossSiteEvery, at a random node.
func (s *soakRun) crossSiteLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CrossSiteEvery)
	defer t.Stop()
	for seq := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round that starts completes, even if the phase ends meanwhile.
		ctx := context.WithoutCancel(ctx)
		i := s.intn(len(s.nodes))
		for _, route := range nodeRoutes() {
			for _, kind := range crossSiteKinds() {
				seq++
				s.crossSite(ctx, s.nodes[i].HTTPURL, route.name, route.path, route.body(i, seq), kind, nil)
			}
		}
		if s.cfg.DashboardURL != "" {
			route := dashboardPublish()
			for _, kind := range crossSiteKinds() {
				seq++
				s.crossSite(ctx, s.cfg.DashboardURL, route.name, route.path, route.body(i, seq), kind, nil)
			}
		}
	}
}

// crossSiteDashboardKill sends every kind of cross-site restart, then
// kill, of the last node through the dashboard; a request changed state if
// the node's process changed or died.
func (s *soakRun) crossSiteDashboardKill(ctx context.Context) {
	i := len(s.nodes) - 1
	state := func() string {
		n := s.c.Nodes()[i]
		return fmt.Sprintf("%d/%d/%v", n.PID, n.Starts, n.Running)
	}
	for _, action := range []string{"restart", "kill"} {
		for _, kind := range crossSiteKinds() {
			before := state()
			s.crossSite(ctx, s.cfg.DashboardURL, "dashboard POST /api/nodes/{i}/"+action, fmt.Sprintf("/api/nodes/%d/%s", i, action), "{}", kind,
				func() bool { return state() != before })
		}
	}
}

// crossSite sends one cross-site request and counts what it did. changed,
// if set, is asked whether state changed besides a 2xx answer.
func (s *soakRun) crossSite(ctx context.Context, base, route, path, body string, kind crossSiteKind, changed func() bool) {
	outcome, example := sendCrossSite(ctx, s.hc, base, path, body, kind)
	if outcome != outcomeChanged && changed != nil && changed() {
		outcome = outcomeChanged
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{route, kind.name}
	cc := s.cross[key]
	if cc == nil {
		cc = &CrossSiteCount{Route: route, Kind: kind.name, Example: example}
		s.cross[key] = cc
	}
	cc.Sent++
	switch outcome {
	case outcomeChanged:
		cc.Changed++
	case outcomeRefused:
		cc.Refused++
	default:
		cc.Other++
	}
}

type crossSiteOutcome int

const (
	outcomeOther crossSiteOutcome = iota
	outcomeRefused
	outcomeChanged
)

// sendCrossSite sends one request as kind describes it. A 2xx answer
// means the route did what it was asked; a 4xx that it refused.
func sendCrossSite(ctx context.Context, hc *http.Client, base, path, body string, kind crossSiteKind) (crossSiteOutcome, string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return outcomeOther, err.Error()
	}
	req.Header.Set("Content-Type", kind.ctype)
	if kind.set != nil {
		kind.set(req.Header)
	}
	if kind.host != "" {
		req.Host = kind.host
	}
	resp, err := hc.Do(req)
	if err != nil {
		return outcomeOther, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 80))
	example := strings.TrimSpace(resp.Status + " " + string(bytes.TrimSpace(b)))
	switch {
	case resp.StatusCode/100 == 2:
		return outcomeChanged, example
	case resp.StatusCode/100 == 4:
		return outcomeRefused, example
	}
	return outcomeOther, example
}

// --- settling and counting ---------------------------------------------

// settle waits until the sum of the nodes' delivery counters stays put for
// a second (or Settle passes) and returns every node's counters.
func (s *soakRun) settle(ctx context.Context) []map[string]float64 {
	read := func() ([]map[string]float64, float64, bool) {
		out := make([]map[string]float64, len(s.nodes))
		var wg sync.WaitGroup
		for i, n := range s.nodes {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				out[i], _ = scrapeMetrics(ctx, s.hc, n.HTTPURL)
			})
		}
		wg.Wait()
		sum, ok := 0.0, true
		for _, m := range out {
			v, has := m[metricDelivered]
			ok = ok && has
			sum += v
		}
		return out, sum, ok
	}
	deadline := time.Now().Add(s.cfg.Settle)
	last, sum, ok := read()
	for time.Now().Before(deadline) {
		if sleep(ctx, time.Second) != nil {
			break
		}
		m, next, nextOK := read()
		last = m
		if ok && nextOK && next == sum {
			s.res.Settled = true
			return last
		}
		sum, ok = next, nextOK
	}
	return last
}

// nodeLog is what one node's log says about messages.
type nodeLog struct {
	published map[wire.MsgID]struct{}
	delivered map[wire.MsgID]uint32
	// lines counts "published" and "delivered" lines; dropped the lines
	// the node's log writer reported dropping.
	publishedLines, deliveredLines, dropped int
	bytes                                   int64
}

// logFiles lists a node's log files oldest first: rotated siblings
// (path.N, ..., path.1), then path itself.
func logFiles(path string) []string {
	more, _ := filepath.Glob(path + ".*")
	type rotated struct {
		path string
		n    int
	}
	var rs []rotated
	for _, m := range more {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, path+".")); err == nil && n > 0 {
			rs = append(rs, rotated{m, n})
		}
	}
	slices.SortFunc(rs, func(a, b rotated) int { return b.n - a.n })
	files := make([]string, 0, len(rs)+1)
	for _, r := range rs {
		files = append(files, r.path)
	}
	return append(files, path)
}

// readNodeLog parses every log file of one node as one stream, oldest
// first: a rotation may split a line between two files.
func readNodeLog(path string) (nodeLog, error) {
	nl := nodeLog{published: make(map[wire.MsgID]struct{}), delivered: make(map[wire.MsgID]uint32)}
	var readers []io.Reader
	for _, p := range logFiles(path) {
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nl, fmt.Errorf("soak: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			nl.bytes += st.Size()
		}
		readers = append(readers, f)
	}
	if err := nl.scan(io.MultiReader(readers...)); err != nil {
		return nl, fmt.Errorf("soak: reading the log of %s: %w", path, err)
	}
	return nl, nil
}

// scan counts one log stream's message lines, in either of the node's log
// formats:
//
//	time=... level=INFO msg=delivered id=<32 hex> hop=1 ...
//	{"time":...,"level":"INFO","msg":"delivered","id":"<32 hex>",...}
//
// and the log writer's "log: N lines dropped" notices.
func (nl *nodeLog) scan(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An over-long line carries no receipt; skip the rest of it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
		}
		if len(line) > 0 {
			nl.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// The markers scan looks for.
const (
	textDelivered = "msg=delivered "
	textPublished = "msg=published "
	textID        = " id="
	jsonDelivered = `"msg":"delivered"`
	jsonPublished = `"msg":"published"`
	jsonID        = `"id":"`
	droppedNotice = "log: "
	droppedTail   = " lines dropped"
)

func (nl *nodeLog) line(line []byte) {
	kind, rest, idKey := 0, []byte(nil), ""
	if k := bytes.Index(line, []byte(textDelivered)); k >= 0 {
		kind, rest, idKey = 'd', line[k:], textID
	} else if k := bytes.Index(line, []byte(textPublished)); k >= 0 {
		kind, rest, idKey = 'p', line[k:], textID
	} else if k := bytes.Index(line, []byte(jsonDelivered)); k >= 0 {
		kind, rest, idKey = 'd', line[k:], jsonID
	} else if k := bytes.Index(line, []byte(jsonPublished)); k >= 0 {
		kind, rest, idKey = 'p', line[k:], jsonID
	} else if bytes.HasPrefix(line, []byte(droppedNotice)) && bytes.Contains(line, []byte(droppedTail)) {
		f := bytes.Fields(line[len(droppedNotice):])
		if len(f) > 0 {
			if n, err := strconv.Atoi(string(f[0])); err == nil {
				nl.dropped += n
			}
		}
		return
	}
	if kind == 0 {
		return
	}
	k := bytes.Index(rest, []byte(idKey))
	if k < 0 {
		return
	}
	hexID := rest[k+len(idKey):]
	var id wire.MsgID
	if len(hexID) < 2*len(id) {
		return
	}
	if _, err := hex.Decode(id[:], hexID[:2*len(id)]); err != nil {
		return
	}
	if kind == 'p' {
		nl.publishedLines++
		nl.published[id] = struct{}{}
		return
	}
	nl.deliveredLines++
	nl.delivered[id]++
}

// countLogs reads every node's log (after Stop: the lines are flushed) and
// fills the per-node delivery figures. metrics are the counters read once
// the load settled, before Stop.
func (s *soakRun) countLogs(metrics []map[string]float64) error {
	logs := make([]nodeLog, len(s.nodes))
	for i, n := range s.nodes {
		nl, err := readNodeLog(n.LogPath)
		if err != nil {
			return err
		}
		logs[i] = nl
	}
	origin := make(map[wire.MsgID]int)
	for i, nl := range logs {
		for id := range nl.published {
			origin[id] = i
		}
	}
	rows := make([]SoakNode, len(s.nodes))
	for i, nl := range logs {
		row := s.samples[i]
		row.Index = i
		row.LogBytes = nl.bytes
		row.Published, row.Delivered = nl.publishedLines, nl.deliveredLines
		if i < len(metrics) && metrics[i] != nil {
			row.MetricPublished = int(metrics[i][metricPublished])
			row.MetricDelivered = int(metrics[i][metricDelivered])
		}
		row.Expected = len(origin) - len(nl.published)
		found := 0
		for id, n := range nl.delivered {
			if from, ok := origin[id]; !ok || from == i {
				row.Stray++
			} else {
				found++
			}
			if int(n) > row.MaxPerMessage {
				row.MaxPerMessage = int(n)
			}
			if n > 1 {
				row.Twice++
				if row.TwiceExample == "" || id.String() < row.TwiceExample {
					row.TwiceExample = id.String()
				}
			}
		}
		row.Missing = row.Expected - found
		var why []string
		if nl.dropped > 0 {
			why = append(why, fmt.Sprintf("the node dropped %d log lines", nl.dropped))
		}
		if i >= len(metrics) || metrics[i] == nil {
			why = append(why, "its counters could not be read")
		} else {
			if row.Delivered < row.MetricDelivered {
				why = append(why, fmt.Sprintf("its log has %d delivered lines, its counter %d", row.Delivered, row.MetricDelivered))
			}
			if row.Published < row.MetricPublished {
				why = append(why, fmt.Sprintf("its log has %d published lines, its counter %d", row.Published, row.MetricPublished))
			}
		}
		row.Exact = len(why) == 0
		row.Inexact = strings.Join(why, "; ")
		rows[i] = row
	}
	s.res.PerNode = rows
	return nil
}

// finish gathers the cross-site counts and writes the failures.
func (s *soakRun) finish() {
	r := &s.res
	keys := make([][2]string, 0, len(s.cross))
	for k := range s.cross {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		r.CrossSite = append(r.CrossSite, *s.cross[k])
	}
	r.Failures = soakFailures(*r, s.cfg)
}

// soakFailures states every invariant that r breaks.
func soakFailures(r SoakResult, cfg SoakConfig) []string {
	var f []string
	pubs := 0
	for _, n := range r.PerNode {
		pubs += n.MetricPublished
	}
	for _, n := range r.PerNode {
		if n.Twice > 0 {
			f = append(f, fmt.Sprintf("node %d delivered %d message(s) more than once (up to %d times; e.g. %s)", n.Index, n.Twice, n.MaxPerMessage, n.TwiceExample))
		}
		if others := pubs - n.MetricPublished; n.MetricDelivered > others {
			f = append(f, fmt.Sprintf("node %d counted %d deliveries of the %d messages the other nodes published", n.Index, n.MetricDelivered, others))
		}
		if !n.Exact {
			f = append(f, fmt.Sprintf("node %d: exactly-once not proven: %s", n.Index, n.Inexact))
		}
		if n.PeakRSS > cfg.RSSBudget {
			f = append(f, fmt.Sprintf("node %d peaked at %s RSS, over the %s budget", n.Index, mib(n.PeakRSS), mib(cfg.RSSBudget)))
		}
	}
	if h := r.Honest; h.Delivered < h.Pairs {
		f = append(f, fmt.Sprintf("honest delivery %d of %d (message, node) pairs within %v: %s", h.Delivered, h.Pairs, cfg.HonestWait, strings.Join(h.Missing, "; ")))
	}
	if r.Load.Errors > 0 {
		f = append(f, fmt.Sprintf("%d honest publish(es) not answered 201: %s", r.Load.Errors, r.Load.FirstError))
	}
	if st := r.Storm; st != nil {
		if st.ErrPublishing != "" {
			f = append(f, "the storm's POST /load failed: "+st.ErrPublishing)
		}
		if st.Honest.Delivered < st.Honest.Pairs || st.InTime < st.Honest.Pairs {
			f = append(f, fmt.Sprintf("after the storm, %d of %d (message, node) pairs arrived within %v (%d at all; slowest %v)%s",
				st.InTime, st.Honest.Pairs, cfg.StormWithin, st.Honest.Delivered, st.MaxLatency.Round(time.Millisecond), joinMissing(st.Honest.Missing)))
		}
	}
	if changed, sent := r.CrossSiteChanged(); changed > 0 {
		// One entry per route: its changed and sent counts, and the kinds
		// that got through.
		type route struct {
			name          string
			changed, sent int
			through       []string
		}
		var routes []*route
		for _, c := range r.CrossSite {
			if len(routes) == 0 || routes[len(routes)-1].name != c.Route {
				routes = append(routes, &route{name: c.Route})
			}
			rt := routes[len(routes)-1]
			rt.changed, rt.sent = rt.changed+c.Changed, rt.sent+c.Sent
			if c.Changed > 0 {
				rt.through = append(rt.through, c.Kind)
			}
		}
		var which []string
		for _, rt := range routes {
			if rt.changed > 0 {
				which = append(which, fmt.Sprintf("%s %d/%d (%s)", rt.name, rt.changed, rt.sent, strings.Join(rt.through, ", ")))
			}
		}
		f = append(f, fmt.Sprintf("%d of %d cross-site requests changed state (a message published, a node killed or restarted): %s", changed, sent, strings.Join(which, "; ")))
	}
	return f
}

func joinMissing(m []string) string {
	if len(m) == 0 {
		return ""
	}
	return ": " + strings.Join(m, "; ")
}

// mib renders bytes in MiB with one decimal.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
