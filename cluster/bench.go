package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"gossipmesh/api"
	"gossipmesh/wire"
)

// BenchConfig tunes Bench. Start from DefaultBenchConfig.
type BenchConfig struct {
	// Messages is how many sequential messages the latency phase times.
	// Default 500.
	Messages int
	// Warmup messages go out first, untimed, so that connections, caches
	// and the nodes' heaps are warm. Default 20.
	Warmup int
	// Gap is the idle time between one sequential message reaching every
	// node and the next publish. Default 0: back to back. Each message is
	// published only once every node has reported the previous one on its
	// event stream, so messages never overlap; a gap adds idle time on top,
	// which on this VM makes every wakeup slower (see the README).
	Gap time.Duration
	// Wait bounds how long one sequential message may take to reach every
	// node before the next goes out anyway (it then counts as Late).
	// Default 1 s.
	Wait time.Duration
	// Size is the message body size in bytes, at most the nodes' body
	// limit (wire.DefaultMaxBody). Default 64.
	Size int
	// Step is how long each rate of the throughput search runs. Default 2 s.
	Step time.Duration
	// StartRate is the first rate tried, in deliveries/s. The search
	// doubles it until a rate fails, then bisects. Default 10,000.
	StartRate float64
	// MaxRate caps the search, in deliveries/s; the nodes must keep enough
	// receipts for a step at this rate (see StepMessages). Default 500,000.
	MaxRate float64
	// Precision ends the bisection once the failing rate is within this
	// fraction of the passing one. Default 0.05.
	Precision float64
	// MaxSteps bounds the number of steps run, retries included. Default
	// 20.
	MaxSteps int
	// Retries is how many more times a rate that failed is run before the
	// search takes it as failed: a rate is sustained when one of its runs
	// passes. On a shared machine one scheduling stall near a step's end
	// fails it, at any rate. Default 1.
	Retries int
	// Drain is how long after a step's last publish its deliveries may
	// still land and count: long enough for the repairs the routers
	// document, so that a message a loaded node dropped and a repair then
	// fetched is judged delivered, while one never delivered still fails
	// the step. Default 3 s: Plumtree's GRAFT comes 1 s after the IHAVE
	// (PlumtreeGraftTimeout) and its retry 20 ms later, and anti-entropy
	// repairs a message within its grace (at least the GRAFT timeout and
	// retry) plus one period (1 s, give or take half) of its publish.
	Drain time.Duration
	// LateShare is the share of a step's deliveries that may land after
	// the tail bound (100 ms after the last publish), provided they land
	// within Drain: the repaired ones. The other deliveries must all land
	// within the bound, which is what shows the mesh kept up with the
	// rate (a backlog delays the last messages at every node, far more
	// than this share). Default 0.001.
	LateShare float64
	// QuietFor is how long the mesh must send no payload frame (no
	// message, first copy, duplicate or repair, at any node) before the
	// next step starts, so that the repairs and queues of one step do not
	// load the next. Default 300 ms.
	QuietFor time.Duration
	// QuietMax bounds that wait; a step that starts on a mesh still busy
	// after it says so (Step.QuietWait). Default 10 s.
	QuietMax time.Duration
	// Seed picks the publishers. Default 1.
	Seed uint64
	// Progress, if set, gets one line per phase and per rate tried.
	Progress func(string)
}

// DefaultBenchConfig returns the defaults documented on BenchConfig.
func DefaultBenchConfig() BenchConfig {
	return BenchConfig{
		Messages:  500,
		Warmup:    20,
		Wait:      time.Second,
		Size:      64,
		Step:      2 * time.Second,
		StartRate: 10_000,
		MaxRate:   500_000,
		Precision: 0.05,
		MaxSteps:  20,
		Retries:   1,
		Seed:      1,
		Drain:     3 * time.Second,
		LateShare: 0.001,
		QuietFor:  300 * time.Millisecond,
		QuietMax:  10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c BenchConfig) Validate() error {
	switch {
	case c.Messages < 1:
		return fmt.Errorf("bench: messages must be at least 1, got %d", c.Messages)
	case c.Warmup < 0:
		return fmt.Errorf("bench: warmup must not be negative, got %d", c.Warmup)
	case c.Gap < 0:
		return fmt.Errorf("bench: gap must not be negative, got %v", c.Gap)
	case c.Wait <= 0:
		return fmt.Errorf("bench: wait must be positive, got %v", c.Wait)
	case c.Size < 0 || c.Size > wire.DefaultMaxBody:
		return fmt.Errorf("bench: size must be 0 to %d bytes (the nodes' body limit), got %d", wire.DefaultMaxBody, c.Size)
	case c.Step < 100*time.Millisecond:
		return fmt.Errorf("bench: step must be at least 100ms, got %v", c.Step)
	case c.StartRate <= 0 || c.MaxRate < c.StartRate:
		return fmt.Errorf("bench: want 0 < start rate (%v) <= max rate (%v)", c.StartRate, c.MaxRate)
	case c.Precision <= 0 || c.Precision >= 1:
		return fmt.Errorf("bench: precision must be between 0 and 1, got %v", c.Precision)
	case c.Retries < 0:
		return fmt.Errorf("bench: retries must not be negative, got %d", c.Retries)
	case c.MaxSteps < 1:
		return fmt.Errorf("bench: max steps must be at least 1, got %d", c.MaxSteps)
	case c.Drain < maxTail:
		return fmt.Errorf("bench: drain must be at least the tail bound %v, got %v", maxTail, c.Drain)
	case c.LateShare < 0 || c.LateShare >= 1:
		return fmt.Errorf("bench: late share must be at least 0 and below 1, got %v", c.LateShare)
	case c.QuietFor <= 0 || c.QuietMax < c.QuietFor:
		return fmt.Errorf("bench: want 0 < quiet-for (%v) <= quiet-max (%v)", c.QuietFor, c.QuietMax)
	}
	return nil
}

// StepMessages is how many messages one step at rate deliveries/s publishes
// in a mesh of n nodes: the nodes must keep at least this many receipts
// (Config.Receipts), or the bench cannot see every delivery.
func (c BenchConfig) StepMessages(n int, rate float64) int {
	return max(int(math.Ceil(rate/float64(max(n-1, 1))*c.Step.Seconds())), 10)
}

// BenchResult is what `mesh bench` reports.
type BenchResult struct {
	Nodes    int
	Messages int
	// Gap is the idle time between sequential messages that was used.
	Gap time.Duration
	// Latency is the time from the POST to the last node's receipt over
	// the sequential messages.
	Latency LatencyStats
	// Frames is what the sequential messages cost, per message: the
	// payload and control frames every node sent for them
	// (api.Receipt.PayloadFrames, ControlFrames), summed over the nodes and
	// averaged over the timed messages.
	Frames Frames
	// Sustained is the highest rate that met every condition.
	Sustained Sustained
	// Steps lists every rate tried, in order.
	Steps []Step
}

// LatencyStats summarises the sequential messages.
type LatencyStats struct {
	P50, P99, Max time.Duration
	// Incomplete counts messages that some node never received; they are
	// left out of the percentiles.
	Incomplete int
	// Late counts messages that had not reached every node within Wait,
	// when the next was published anyway: their figures include
	// interference.
	Late int
}

// Frames are mean frames per message.
type Frames struct {
	PayloadPerMsg, ControlPerMsg float64
}

// RMR is the relative message redundancy of the sequential phase: the mean
// payload frames per message over the N-1 a spanning tree needs, minus 1.
func (r BenchResult) RMR() float64 { return rmr(r.Frames.PayloadPerMsg, r.Nodes) }

// Sustained is the throughput result.
type Sustained struct {
	// DeliveriesPerS counts (message, receiving node) pairs per second,
	// the publisher excluded.
	DeliveriesPerS float64
	// DeliveryRatio is delivered over expected pairs at that rate: 1 when
	// a rate passed; the lowest rate's ratio when none did.
	DeliveryRatio float64
}

// Step is one rate of the throughput search.
type Step struct {
	// Rate is the target in deliveries/s; MsgRate the publisher's
	// messages/s.
	Rate, MsgRate float64
	Count         int
	// Achieved is the publisher's achieved messages/s.
	Achieved float64
	// Delivered and Expected count (message, receiving node) pairs.
	Delivered, Expected int
	// Tail is the time from the last publish to the last delivery,
	// repairs included.
	Tail time.Duration
	// BulkTail is the time from the last publish until all but
	// BenchConfig.LateShare of the expected deliveries had landed: the
	// figure the 100 ms bound judges. It is BenchConfig.Drain when more
	// than that share never landed.
	BulkTail time.Duration
	// Late counts deliveries that landed more than the tail bound after
	// the last publish, within Drain: repaired copies, or a backlog.
	Late int
	// QuietWait is how long the bench waited, before this step, for the
	// mesh to send no payload frame for BenchConfig.QuietFor; Busy says
	// it was still sending at QuietMax.
	QuietWait time.Duration
	Busy      bool
	// Retry marks a second run of the rate of the step before, which
	// failed.
	Retry bool
	OK    bool
	// Why says which condition failed.
	Why string
}

// Sustained-rate conditions (issue 2).
const (
	scheduleSlack = 0.05                   // publisher within 5% of its schedule
	maxTail       = 100 * time.Millisecond // last delivery within 100 ms of the last publish
)

// Bench measures a running mesh: first the spread time of sequential
// messages, then the highest sustained delivery rate.
func Bench(ctx context.Context, m *Mesh, cfg BenchConfig) (BenchResult, error) {
	if err := cfg.Validate(); err != nil {
		return BenchResult{}, err
	}
	if m.Len() < 2 {
		return BenchResult{}, errors.New("bench: needs at least 2 nodes")
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x62656e6368)) // "bench"
	res := BenchResult{Nodes: m.Len(), Messages: cfg.Messages, Gap: cfg.Gap}

	progress(fmt.Sprintf("latency: %d sequential messages, each once the last has reached every node (gap %v)", cfg.Messages, cfg.Gap))
	lat, frames, err := benchLatency(ctx, m, cfg, rng)
	if err != nil {
		return res, err
	}
	res.Latency, res.Frames = lat, frames

	publisher := rng.IntN(m.Len())
	progress(fmt.Sprintf("throughput: node %d publishes for %v per rate", publisher, cfg.Step))
	pass, fail := 0.0, math.Inf(1)
	rate := cfg.StartRate
	tries := 0 // failed runs of this rate so far
	for len(res.Steps) < cfg.MaxSteps {
		// Start each rate on a quiet mesh: the previous phase's queues
		// drained and its repairs done.
		waited, quiet, err := waitQuiet(ctx, m, cfg.QuietFor, cfg.QuietMax)
		if err != nil {
			return res, err
		}
		st, err := benchStep(ctx, m, cfg, publisher, rate)
		if err != nil {
			return res, err
		}
		st.QuietWait, st.Busy = waited, !quiet
		st.Retry = tries > 0
		res.Steps = append(res.Steps, st)
		verdict := "ok"
		if !st.OK {
			verdict = "FAIL: " + st.Why
		}
		progress(fmt.Sprintf("  %9.0f deliveries/s  delivered %d/%d  bulk tail %v  tail %v  late %d  quiet after %v  %s",
			st.Rate, st.Delivered, st.Expected, st.BulkTail.Round(time.Microsecond), st.Tail.Round(time.Microsecond),
			st.Late, st.QuietWait.Round(time.Millisecond), verdict))
		if !st.OK && tries < cfg.Retries {
			// One stall of a loaded machine at the end of a step fails
			// it: run the rate again before the search takes it as the
			// bound it cannot pass.
			tries++
			continue
		}
		tries = 0
		if st.OK {
			pass = rate
			res.Sustained = Sustained{DeliveriesPerS: rate, DeliveryRatio: 1}
		} else {
			fail = rate
			if pass == 0 {
				res.Sustained.DeliveryRatio = float64(st.Delivered) / float64(st.Expected)
			}
		}
		switch {
		case math.IsInf(fail, 1):
			if rate >= cfg.MaxRate {
				return res, nil
			}
			rate = min(2*rate, cfg.MaxRate)
		case pass == 0:
			if rate < 100 {
				return res, nil
			}
			rate /= 2
		default:
			if (fail-pass)/pass <= cfg.Precision {
				return res, nil
			}
			rate = (pass + fail) / 2
		}
	}
	return res, nil
}

// metricPayloadSent and metricPayloadReceived are the counters waitQuiet
// watches.
const (
	metricPayloadSent     = "gossipmesh_payload_frames_sent_total"
	metricPayloadReceived = "gossipmesh_payload_frames_received_total"
)

// waitQuiet waits until no node has sent or read a payload frame for
// quietFor (the sum of both counters over every node's /metrics stays the
// same across quietFor), or until limit. It reports how long it waited
// and whether the mesh was quiet.
func waitQuiet(ctx context.Context, m *Mesh, quietFor, limit time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	prev, err := payloadFrames(ctx, m)
	if err != nil {
		return 0, false, err
	}
	for {
		if err := sleep(ctx, quietFor); err != nil {
			return time.Since(start), false, err
		}
		cur, err := payloadFrames(ctx, m)
		if err != nil {
			return time.Since(start), false, err
		}
		if cur == prev {
			return time.Since(start), true, nil
		}
		if time.Since(start) >= limit {
			return time.Since(start), false, nil
		}
		prev = cur
	}
}

// payloadFrames sums the payload frames every node has sent and read.
func payloadFrames(ctx context.Context, m *Mesh) (float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	vals := make([]float64, m.Len())
	errs := make([]error, m.Len())
	var wg sync.WaitGroup
	for i := range m.Len() {
		wg.Go(func() {
			got, err := scrapeMetrics(ctx, hc, m.clients[i].BaseURL())
			if err != nil {
				errs[i] = fmt.Errorf("bench: node %d: %w", i, err)
				return
			}
			vals[i] = got[metricPayloadSent] + got[metricPayloadReceived]
		})
	}
	wg.Wait()
	total := 0.0
	for _, v := range vals {
		total += v
	}
	return total, errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// frameSettle is how long the latency phase waits after its last message
// before it collects the receipts, so that the frames sent on a timer for
// the last messages (Plumtree's IHAVE, within 50 ms) are counted.
const frameSettle = 150 * time.Millisecond

// benchLatency publishes the sequential messages at random nodes, each once
// every node has reported the previous one on its event stream, then
// collects every node's receipts in one request per node. The figures come
// from the receipts' timestamps, taken by the nodes before they report,
// and the frames from the counts in the receipts.
func benchLatency(ctx context.Context, m *Mesh, cfg BenchConfig, rng *rand.Rand) (LatencyStats, Frames, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrived, err := watchArrivals(ctx, m)
	if err != nil {
		return LatencyStats{}, Frames{}, err
	}
	counts := make(map[string]int)
	body := strings.Repeat("x", cfg.Size)
	total := cfg.Warmup + cfg.Messages
	ids := make([]string, total)
	sent := make([]time.Time, total)
	var st LatencyStats
	for k := range total {
		pub := rng.IntN(m.Len())
		sent[k] = time.Now()
		r, err := m.clients[pub].Publish(ctx, body)
		if err != nil {
			return LatencyStats{}, Frames{}, fmt.Errorf("bench: publishing at node %d: %w", pub, err)
		}
		ids[k] = r.ID
		done, err := awaitAll(ctx, arrived, counts, r.ID, m.Len(), cfg.Wait)
		if err != nil {
			return LatencyStats{}, Frames{}, err
		}
		if !done && k >= cfg.Warmup {
			st.Late++
		}
		if err := sleep(ctx, cfg.Gap); err != nil {
			return LatencyStats{}, Frames{}, err
		}
	}
	if err := sleep(ctx, frameSettle); err != nil {
		return LatencyStats{}, Frames{}, err
	}
	got, err := collect(ctx, m, total+100)
	if err != nil {
		return LatencyStats{}, Frames{}, err
	}
	var lats []time.Duration
	var payload, control int
	for k := cfg.Warmup; k < total; k++ {
		p, c := got.frames(ids[k])
		payload += p
		control += c
		last, ok := lastReceipt(got, ids[k])
		if !ok {
			st.Incomplete++
			continue
		}
		lats = append(lats, last.Sub(sent[k]))
	}
	frames := Frames{
		PayloadPerMsg: float64(payload) / float64(cfg.Messages),
		ControlPerMsg: float64(control) / float64(cfg.Messages),
	}
	if len(lats) == 0 {
		return st, frames, errors.New("bench: no message reached every node")
	}
	slices.Sort(lats)
	st.P50, st.P99, st.Max = percentile(lats, 0.50), percentile(lats, 0.99), lats[len(lats)-1]
	return st, frames, nil
}

// watchArrivals follows every node's event stream and sends the id of each
// message a node publishes or first receives, until ctx ends.
func watchArrivals(ctx context.Context, m *Mesh) (<-chan string, error) {
	out := make(chan string, 4096)
	for i, c := range m.clients {
		events, err := c.Events(ctx, "published", "delivered")
		if err != nil {
			return nil, fmt.Errorf("bench: event stream of node %d: %w", i, err)
		}
		go func() {
			for ev := range events {
				if ev.Kind != "published" && ev.Kind != "delivered" {
					continue
				}
				select {
				case out <- ev.ID:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return out, nil
}

// awaitAll counts arrivals until n nodes have reported id or wait passes;
// arrivals of other ids (which can come before their publish returns) are
// counted for later. It reports whether all n arrived.
func awaitAll(ctx context.Context, arrived <-chan string, counts map[string]int, id string, n int, wait time.Duration) (bool, error) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for counts[id] < n {
		select {
		case got := <-arrived:
			counts[got]++
		case <-timeout.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	delete(counts, id)
	return true, nil
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// received maps, per node, message id → what its receipt says.
type received []map[string]nodeReceipt

// nodeReceipt is what the bench reads from one receipt.
type nodeReceipt struct {
	at               time.Time // first receipt
	payload, control int       // frames the node sent for the message
}

// frames sums the frames every node sent for message id.
func (got received) frames(id string) (payload, control int) {
	for _, node := range got {
		rc := node[id]
		payload += rc.payload
		control += rc.control
	}
	return payload, control
}

// collect fetches up to limit recent receipts from every node at once.
func collect(ctx context.Context, m *Mesh, limit int) (received, error) {
	got := make(received, m.Len())
	errs := make([]error, m.Len())
	var wg sync.WaitGroup
	for i := range m.Len() {
		wg.Go(func() {
			list, err := m.clients[i].Recent(ctx, min(limit, api.MaxRecent))
			if err != nil {
				errs[i] = fmt.Errorf("bench: receipts of node %d: %w", i, err)
				return
			}
			got[i] = make(map[string]nodeReceipt, len(list))
			for _, rc := range list {
				got[i][rc.ID] = nodeReceipt{at: rc.ReceivedAt, payload: rc.PayloadFrames, control: rc.ControlFrames}
			}
		})
	}
	wg.Wait()
	return got, errors.Join(errs...)
}

// lastReceipt returns the latest receipt of id over all nodes, and whether
// every node has one.
func lastReceipt(got received, id string) (time.Time, bool) {
	var last time.Time
	for _, node := range got {
		rc, ok := node[id]
		if !ok {
			return last, false
		}
		if rc.at.After(last) {
			last = rc.at
		}
	}
	return last, true
}

// benchStep runs one rate: the publisher publishes on its own schedule
// (POST /load), then every node's receipts are checked.
func benchStep(ctx context.Context, m *Mesh, cfg BenchConfig, publisher int, rate float64) (Step, error) {
	n := m.Len()
	st := Step{Rate: rate, MsgRate: rate / float64(n-1), Count: cfg.StepMessages(n, rate)}
	st.Expected = st.Count * (n - 1)
	lr, err := m.clients[publisher].Load(ctx, api.LoadRequest{Rate: st.MsgRate, Count: st.Count, Size: cfg.Size})
	if err != nil {
		return st, fmt.Errorf("bench: load at node %d: %w", publisher, err)
	}
	st.Achieved = lr.AchievedRate
	if len(lr.IDs) == 0 {
		st.Why = "publisher published nothing"
		return st, nil
	}
	last := lr.IDs[len(lr.IDs)-1]
	lastPublish := lr.End
	if rc, err := m.clients[publisher].Receipt(ctx, last, 0); err == nil {
		lastPublish = rc.ReceivedAt
	}
	// Wait (without polling) for the last message at every node, within
	// the drain window.
	drainEnd := lastPublish.Add(cfg.Drain)
	var wg sync.WaitGroup
	for i := range n {
		if i == publisher {
			continue
		}
		wg.Go(func() { _, _ = m.clients[i].Receipt(ctx, last, max(time.Until(drainEnd), 0)) })
	}
	wg.Wait()
	got, err := collect(ctx, m, st.Count+1000)
	if err != nil {
		return st, err
	}
	times := stepDeliveries(got, publisher, lr.IDs)
	if len(times) < st.Expected {
		// Some message is still missing somewhere: give the repairs the
		// rest of the drain window, then look again.
		if err := sleep(ctx, time.Until(drainEnd)); err != nil {
			return st, err
		}
		if got, err = collect(ctx, m, st.Count+1000); err != nil {
			return st, err
		}
		times = stepDeliveries(got, publisher, lr.IDs)
	}
	judgeStep(&st, lr, times, lastPublish, cfg)
	return st, nil
}

// stepDeliveries lists the receipt times of the step's messages ids at
// every node but the publisher.
func stepDeliveries(got received, publisher int, ids []string) []time.Time {
	var out []time.Time
	for i, node := range got {
		if i == publisher {
			continue
		}
		for _, id := range ids {
			if rc, ok := node[id]; ok {
				out = append(out, rc.at)
			}
		}
	}
	return out
}

// judgeStep fills in st's verdict from the publisher's load result and
// the times at which the step's deliveries landed (within the drain
// window). A rate is sustained when the publisher kept to its schedule
// within 5%, every expected delivery landed (a message never delivered
// fails the step, however late the bench looks), and all but
// cfg.LateShare of them landed within 100 ms of the last publish: the
// mesh kept up, and only the few copies a repair fetched came later.
func judgeStep(st *Step, lr api.LoadResult, times []time.Time, lastPublish time.Time, cfg BenchConfig) {
	st.Delivered = len(times)
	sorted := slices.Clone(times)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	if len(sorted) > 0 {
		st.Tail = sorted[len(sorted)-1].Sub(lastPublish)
	}
	for _, t := range sorted {
		if t.Sub(lastPublish) > maxTail {
			st.Late++
		}
	}
	// The delivery that leaves LateShare of the expected ones after it.
	bulk := int(math.Ceil((1 - cfg.LateShare) * float64(st.Expected)))
	switch {
	case bulk > len(sorted):
		// More than the late share never landed: not within the window.
		st.BulkTail = cfg.Drain
	case bulk >= 1:
		st.BulkTail = sorted[bulk-1].Sub(lastPublish)
	}
	var why []string
	if lr.Published < st.Count || lr.AchievedRate < (1-scheduleSlack)*st.MsgRate {
		why = append(why, fmt.Sprintf("publisher managed %.0f of %.0f msgs/s", lr.AchievedRate, st.MsgRate))
	}
	if st.Delivered < st.Expected {
		why = append(why, fmt.Sprintf("%d deliveries missing %v after the last publish", st.Expected-st.Delivered, cfg.Drain))
	}
	if st.BulkTail > maxTail {
		why = append(why, fmt.Sprintf("%.1f%% of deliveries landed by %v after the last publish (want by %v)",
			100*(1-cfg.LateShare), st.BulkTail.Round(time.Millisecond), maxTail))
	}
	st.OK = len(why) == 0
	st.Why = strings.Join(why, "; ")
}
