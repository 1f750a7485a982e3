package maelstrom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"
)

// HarnessConfig describes one run of the broadcast workload. Start from
// DefaultHarnessConfig; RunHarness calls Validate.
type HarnessConfig struct {
	// Binary is the mesh executable; each node runs as `Binary maelstrom
	// NodeArgs…`. No default.
	Binary string
	// NodeArgs are the flags passed to every node (for example --batch).
	// Default none.
	NodeArgs []string
	// Env, when non-nil, is every node process's environment (os/exec's
	// rule: nil inherits the harness's). Default nil.
	Env []string
	// Nodes is how many node processes run. Default 5.
	Nodes int
	// Latency delays every message, server-to-server and client alike, by
	// this much one way, as Maelstrom's --latency does. Default 100 ms.
	Latency time.Duration
	// Rate is client operations per second over all nodes, half broadcasts
	// and half reads, each at a node chosen at random. Default 100.
	Rate float64
	// Time is how long the workload runs. Default 20 s.
	Time time.Duration
	// Partitions, when set, splits the nodes into two random groups every
	// PartitionEvery and heals them PartitionEvery later, again and again
	// while the workload runs; messages between the groups are dropped.
	// The cluster is healed before the final reads. Default false.
	Partitions bool
	// PartitionEvery is how long each partition, and each healed spell
	// between two, lasts. Default 5 s.
	PartitionEvery time.Duration
	// Settle is how long the harness waits after the workload (and the
	// heal) before the final reads. Default 5 s.
	Settle time.Duration
	// OpTimeout is how long a client waits for an answer before it gives
	// the operation up as indeterminate. Default 5 s.
	OpTimeout time.Duration
	// Seed seeds the choice of nodes, operations and partitions. Default 1.
	Seed uint64
	// Stderr gets every node's log lines, each prefixed with its name.
	// Default nil: discarded.
	Stderr io.Writer
}

// DefaultHarnessConfig returns the defaults documented on each field.
func DefaultHarnessConfig() HarnessConfig {
	return HarnessConfig{
		Nodes: 5, Latency: 100 * time.Millisecond, Rate: 100, Time: 20 * time.Second,
		PartitionEvery: 5 * time.Second, Settle: 5 * time.Second, OpTimeout: 5 * time.Second, Seed: 1,
	}
}

// MaxHarnessNodes bounds Nodes: each node is a process.
const MaxHarnessNodes = 200

// Validate reports the first setting that cannot work.
func (c HarnessConfig) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("maelstrom: harness needs the mesh binary")
	case c.Nodes < 1 || c.Nodes > MaxHarnessNodes:
		return fmt.Errorf("maelstrom: nodes must be 1 to %d, got %d", MaxHarnessNodes, c.Nodes)
	case c.Latency < 0:
		return fmt.Errorf("maelstrom: latency must not be negative, got %v", c.Latency)
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0) || c.Rate > 100_000:
		return fmt.Errorf("maelstrom: rate must be above 0 and at most 100000 ops/s, got %v", c.Rate)
	case c.Time <= 0:
		return fmt.Errorf("maelstrom: time must be positive, got %v", c.Time)
	case c.Partitions && c.Nodes < 2:
		return errors.New("maelstrom: partitions need at least 2 nodes")
	case c.Partitions && c.PartitionEvery <= 0:
		return fmt.Errorf("maelstrom: partition period must be positive, got %v", c.PartitionEvery)
	case c.Settle < 0:
		return fmt.Errorf("maelstrom: settle must not be negative, got %v", c.Settle)
	case c.OpTimeout <= 0:
		return fmt.Errorf("maelstrom: op timeout must be positive, got %v", c.OpTimeout)
	}
	return nil
}

// Report is what a harness run measured.
type Report struct {
	Nodes     int      `json:"nodes"`
	LatencyMS float64  `json:"latency_ms"`
	Rate      float64  `json:"rate"`
	TimeS     float64  `json:"time_s"`
	NodeArgs  []string `json:"node_args"`

	// Ops counts client operations: broadcasts and reads, the final reads
	// included, as Maelstrom counts its history.
	Ops        int `json:"ops"`
	Broadcasts int `json:"broadcasts"`
	Reads      int `json:"reads"`
	// Acked broadcasts got broadcast_ok; Failed got an error or no answer
	// within the op timeout.
	Acked  int `json:"acked"`
	Failed int `json:"failed"`
	// ServerMsgs counts messages a node sent to another node, including
	// those a partition then dropped; Dropped counts the latter.
	ServerMsgs int `json:"server_msgs"`
	Dropped    int `json:"dropped"`
	// MsgsPerOp is ServerMsgs / Ops, Maelstrom's msgs-per-op.
	MsgsPerOp float64 `json:"msgs_per_op"`
	// Stable latency of each acknowledged value that is not lost: the time
	// from its broadcast's invocation until the invocation of the last
	// read that lacked it (zero if none did), so that every read begun
	// after that includes it (Jepsen's set-full definition, which
	// Maelstrom's broadcast checker uses).
	StableMedianMS float64 `json:"stable_latency_median_ms"`
	StableP95MS    float64 `json:"stable_latency_p95_ms"`
	StableMaxMS    float64 `json:"stable_latency_max_ms"`
	// Lost lists acknowledged values missing from at least one final read.
	Lost      []int64 `json:"lost"`
	LostCount int     `json:"lost_count"`
	// FinalReadsMissing counts nodes whose final read got no answer: their
	// values are then unknown and the run is not valid.
	FinalReadsMissing int `json:"final_reads_missing"`
	// Unexpected counts values some read returned that no client ever
	// broadcast: a node that invents values. Always 0 for a correct node.
	Unexpected int `json:"unexpected"`
	Partitions int `json:"partitions"`
}

// op is one client operation and what came of it.
type op struct {
	read      bool
	node      int
	value     int64
	invoked   time.Time
	completed time.Time
	ok        bool
	done      bool
	values    []int64 // read_ok, sorted
}

// harness is one run's shared state.
type harness struct {
	cfg   HarnessConfig
	names []string
	links []chan delivery

	mu      sync.Mutex
	ops     map[int64]*op
	nextID  int64
	waiters map[int64]chan struct{}
	group   []int // partition group of each node; nil when healed
	serverN int
	dropped int

	logMu  sync.Mutex   // serialises the nodes' log lines
	linkMu sync.RWMutex // held to send on links; closed under its write lock
	closed bool
}

// delivery is one line due at a node's stdin.
type delivery struct {
	due  time.Time
	src  int // node index, or -1 for the client
	line []byte
}

const clientName = "c1"

// RunHarness starts cfg.Nodes node processes, initialises them, runs the
// broadcast workload, heals, settles, reads every node once more and
// reports. The processes are stopped (by PID) before it returns.
func RunHarness(ctx context.Context, cfg HarnessConfig) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	h := &harness{cfg: cfg, ops: make(map[int64]*op), waiters: make(map[int64]chan struct{})}
	for i := range cfg.Nodes {
		h.names = append(h.names, "n"+strconv.Itoa(i))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var procs []*exec.Cmd
	var wg sync.WaitGroup
	defer func() {
		// Closing stdin ends a node; a node that lingers is killed by PID.
		h.closeLinks()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			for _, p := range procs {
				p.Process.Kill()
			}
			<-done
		}
	}()
	for i, name := range h.names {
		cmd := exec.Command(cfg.Binary, append([]string{"maelstrom"}, cfg.NodeArgs...)...)
		cmd.Env = cfg.Env
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return Report{}, fmt.Errorf("maelstrom: %s stdin: %w", name, err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return Report{}, fmt.Errorf("maelstrom: %s stdout: %w", name, err)
		}
		cmd.Stderr = prefixWriter(cfg.Stderr, name, &h.logMu)
		if err := cmd.Start(); err != nil {
			return Report{}, fmt.Errorf("maelstrom: starting %s: %w", name, err)
		}
		procs = append(procs, cmd)
		link := make(chan delivery, 1<<16)
		h.links = append(h.links, link)
		wg.Add(3)
		go func() { defer wg.Done(); h.deliver(i, link, stdin) }()
		go func() { defer wg.Done(); h.route(i, stdout) }()
		go func() { defer wg.Done(); cmd.Wait() }()
	}

	// init, then Maelstrom's default suggestion, a grid.
	for i, name := range h.names {
		if _, err := h.call(ctx, i, &Body{Type: "init", NodeID: name, NodeIDs: h.names}); err != nil {
			return Report{}, fmt.Errorf("maelstrom: init %s: %w", name, err)
		}
	}
	topo := gridTopology(h.names)
	for i, name := range h.names {
		if _, err := h.call(ctx, i, &Body{Type: "topology", Topology: topo}); err != nil {
			return Report{}, fmt.Errorf("maelstrom: topology %s: %w", name, err)
		}
	}
	h.mu.Lock()
	h.serverN, h.dropped = 0, 0 // count the workload only
	for id := range h.ops {
		delete(h.ops, id)
	}
	h.mu.Unlock()

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d61656c))
	partitions := 0
	var nemesis sync.WaitGroup
	stopNemesis := make(chan struct{})
	if cfg.Partitions {
		prng := rand.New(rand.NewPCG(cfg.Seed, 0x6e656d))
		nemesis.Add(1)
		go func() {
			defer nemesis.Done()
			for {
				select {
				case <-stopNemesis:
					return
				case <-time.After(cfg.PartitionEvery):
				}
				g := make([]int, cfg.Nodes)
				perm := prng.Perm(cfg.Nodes)
				cut := 1 + prng.IntN(cfg.Nodes-1)
				for k, i := range perm {
					if k < cut {
						g[i] = 1
					}
				}
				h.mu.Lock()
				h.group = g
				h.mu.Unlock()
				partitions++
				select {
				case <-stopNemesis:
					return
				case <-time.After(cfg.PartitionEvery):
				}
				h.mu.Lock()
				h.group = nil
				h.mu.Unlock()
			}
		}()
	}

	// The workload: one operation every 1/rate, at a random node.
	var pending sync.WaitGroup
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	value := int64(0)
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if due.Sub(start) >= cfg.Time {
			break
		}
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return Report{}, ctx.Err()
			case <-time.After(d):
			}
		}
		node := rng.IntN(cfg.Nodes)
		body := &Body{Type: "read"}
		if rng.IntN(2) == 0 {
			v := value
			value++
			body = &Body{Type: "broadcast", Message: &v}
		}
		pending.Add(1)
		go func() { defer pending.Done(); h.call(ctx, node, body) }()
	}
	close(stopNemesis)
	nemesis.Wait()
	h.mu.Lock()
	h.group = nil
	h.mu.Unlock()
	pending.Wait()
	select {
	case <-ctx.Done():
		return Report{}, ctx.Err()
	case <-time.After(cfg.Settle):
	}

	// Final reads, one per node.
	finals := make([]*op, cfg.Nodes)
	var fw sync.WaitGroup
	for i := range cfg.Nodes {
		fw.Add(1)
		go func() { defer fw.Done(); finals[i], _ = h.call(ctx, i, &Body{Type: "read"}) }()
	}
	fw.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	return h.report(finals, partitions), nil
}

// call sends body to node i as the client and waits for its answer (or
// the op timeout). It returns the recorded op.
func (h *harness) call(ctx context.Context, i int, body *Body) (*op, error) {
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	o := &op{read: body.Type == "read", node: i, invoked: time.Now()}
	if body.Message != nil {
		o.value = *body.Message
	}
	wait := make(chan struct{})
	h.ops[id], h.waiters[id] = o, wait
	h.mu.Unlock()
	body.MsgID = &id
	line, err := Encode(clientName, h.names[i], body)
	if err != nil {
		return o, err
	}
	h.send(i, delivery{due: o.invoked.Add(h.cfg.Latency), src: -1, line: line})
	t := time.NewTimer(h.cfg.OpTimeout)
	defer t.Stop()
	select {
	case <-wait:
	case <-t.C:
	case <-ctx.Done():
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.waiters, id)
	if !o.done {
		o.done = true // a late answer is ignored: the op stays failed
		return o, fmt.Errorf("no answer from %s within %v", h.names[i], h.cfg.OpTimeout)
	}
	if !o.ok {
		return o, fmt.Errorf("%s answered with an error", h.names[i])
	}
	return o, nil
}

// deliver writes the lines due at node i, each at its time. The latency is
// fixed, so lines come due in the order they were queued.
func (h *harness) deliver(i int, link <-chan delivery, stdin io.WriteCloser) {
	defer stdin.Close()
	for d := range link {
		if w := time.Until(d.due); w > 0 {
			time.Sleep(w)
		}
		if d.src >= 0 {
			h.mu.Lock()
			cut := h.group != nil && h.group[d.src] != h.group[i]
			if cut {
				h.dropped++
			}
			h.mu.Unlock()
			if cut {
				continue
			}
		}
		if _, err := stdin.Write(d.line); err != nil {
			// The node is gone; drain so that senders never block.
			for range link {
			}
			return
		}
	}
}

// route reads node i's stdout: answers to the client are matched to their
// ops after the latency; messages to nodes are counted and queued.
func (h *harness) route(i int, stdout io.Reader) {
	lr := NewLineReader(stdout)
	for {
		e, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if isBadLine(err) {
				continue
			}
			return
		}
		now := time.Now()
		if e.Dest == clientName {
			b, err := DecodeBody(e.Body)
			if err != nil || b.InReplyTo == nil {
				continue
			}
			id := *b.InReplyTo
			time.AfterFunc(time.Until(now.Add(h.cfg.Latency)), func() { h.answer(id, b) })
			continue
		}
		j := slices.Index(h.names, e.Dest)
		if j < 0 {
			continue
		}
		line, err := json.Marshal(e)
		if err != nil {
			continue
		}
		h.mu.Lock()
		h.serverN++
		h.mu.Unlock()
		h.send(j, delivery{due: now.Add(h.cfg.Latency), src: i, line: append(line, '\n')})
	}
}

// send queues d for node j, unless the run is shutting down.
func (h *harness) send(j int, d delivery) {
	h.linkMu.RLock()
	defer h.linkMu.RUnlock()
	if !h.closed {
		h.links[j] <- d
	}
}

// closeLinks stops every delivery goroutine, which closes the nodes' stdin.
func (h *harness) closeLinks() {
	h.linkMu.Lock()
	defer h.linkMu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, l := range h.links {
		close(l)
	}
}

// answer records the answer b to client request id.
func (h *harness) answer(id int64, b Body) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o, ok := h.ops[id]
	if !ok || o.done {
		return
	}
	o.done, o.completed = true, time.Now()
	switch {
	case b.Type == "broadcast_ok" && !o.read, b.Type == "init_ok", b.Type == "topology_ok":
		o.ok = true
	case b.Type == "read_ok" && o.read && b.Messages != nil:
		o.ok = true
		o.values = slices.Clone(*b.Messages)
		slices.Sort(o.values)
	}
	if w, ok := h.waiters[id]; ok {
		close(w)
		delete(h.waiters, id)
	}
}

// report turns the recorded ops and the final reads into a Report.
func (h *harness) report(finals []*op, partitions int) Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg := h.cfg
	r := Report{Nodes: cfg.Nodes, LatencyMS: msf(cfg.Latency), Rate: cfg.Rate, TimeS: cfg.Time.Seconds(),
		NodeArgs: append([]string{}, cfg.NodeArgs...), ServerMsgs: h.serverN, Dropped: h.dropped,
		Partitions: partitions, Lost: []int64{}}
	var broadcasts, reads []*op
	for _, o := range h.ops {
		if o.read {
			reads = append(reads, o)
		} else {
			broadcasts = append(broadcasts, o)
		}
	}
	r.Ops, r.Broadcasts, r.Reads = len(h.ops), len(broadcasts), len(reads)
	if r.Ops > 0 {
		r.MsgsPerOp = float64(r.ServerMsgs) / float64(r.Ops)
	}
	for _, o := range broadcasts {
		if o.ok {
			r.Acked++
		} else {
			r.Failed++
		}
	}
	for _, o := range reads {
		if !o.ok {
			r.Failed++
		}
	}
	// Lost: acknowledged, yet missing from a final read.
	lost := map[int64]bool{}
	for _, f := range finals {
		if f == nil || !f.ok {
			r.FinalReadsMissing++
			continue
		}
		for _, o := range broadcasts {
			if o.ok && !has(f.values, o.value) {
				lost[o.value] = true
			}
		}
	}
	sent := map[int64]bool{}
	for _, o := range broadcasts {
		sent[o.value] = true
	}
	unexpected := map[int64]bool{}
	for _, o := range reads {
		for _, v := range o.values {
			if !sent[v] {
				unexpected[v] = true
			}
		}
	}
	r.Unexpected = len(unexpected)
	for v := range lost {
		r.Lost = append(r.Lost, v)
	}
	slices.Sort(r.Lost)
	r.LostCount = len(r.Lost)
	lat := StableLatencies(broadcasts, reads, lost)
	r.StableMedianMS = msf(quantile(lat, 0.5))
	r.StableP95MS = msf(quantile(lat, 0.95))
	r.StableMaxMS = msf(quantile(lat, 1))
	return r
}
