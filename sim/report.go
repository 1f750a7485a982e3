package sim

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Coverage holds the time, in milliseconds since publish, until 50%, 90%,
// 99% and 100% of the nodes had a message. NaN means the level was never
// reached; JSON shows it as null.
type Coverage [4]float64

// MarshalJSON writes {"50":…,"90":…,"99":…,"100":…} in that order.
func (c Coverage) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, lvl := range coverageLevels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(lvl), 10)
		b = append(b, '"', ':')
		b = appendNum(b, c[i])
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Coverage) UnmarshalJSON(data []byte) error {
	var m map[string]*float64
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	for i, lvl := range coverageLevels {
		c[i] = math.NaN()
		if v := m[strconv.Itoa(lvl)]; v != nil {
			c[i] = *v
		}
	}
	return nil
}

func appendNum(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// Broadcast is what one message did.
type Broadcast struct {
	Index     int `json:"index"`
	Publisher int `json:"publisher"`
	// PublishedAtMS is the virtual time of publish since the run started.
	PublishedAtMS float64 `json:"published_at_ms"`
	// Reached counts nodes that had the message, publisher included.
	Reached int `json:"reached"`
	// Reliability is Reached / N: over all nodes, crashed ones included.
	Reliability float64 `json:"reliability"`
	// Live counts the nodes that had not crashed when the broadcast ended
	// (N when nothing crashed).
	Live int `json:"live"`
	// ReachedLive counts the live nodes that had the message: a node that
	// crashed is not counted as unreached, even if it had the message.
	ReachedLive int `json:"reached_live"`
	// ReliabilityLive is ReachedLive / Live: what the crash left of the
	// spread, as opposed to the nodes the crash took away.
	ReliabilityLive float64 `json:"reliability_live"`
	// MeanHop is the mean hop of the nodes reached, publisher excluded.
	MeanHop float64 `json:"mean_hop"`
	// LastDeliveryHop is the largest hop of any first receipt.
	LastDeliveryHop int `json:"last_delivery_hop"`
	// RMR is the relative message redundancy, Messages/(Reached−1) − 1:
	// 0 when every copy reached a new node. It is the issue's
	// messages/(N−1) − 1 whenever every node is reached.
	RMR float64 `json:"rmr"`
	// TimeToCoverageMS is the time to 50/90/99/100% of N.
	TimeToCoverageMS Coverage `json:"time_to_coverage_ms"`
	// ReachedByHop[h] counts nodes first reached at hop h.
	ReachedByHop []int `json:"reached_by_hop"`
	// Messages counts payload copies the nodes sent, including the ones a
	// link then lost: every copy sent is a first receipt, a duplicate,
	// lost, or at a crashed node (or rejected).
	Messages int64 `json:"messages"`
	// Duplicates counts copies that reached a node that had the message.
	Duplicates int64 `json:"duplicates"`
	// Lost counts copies sent and then dropped by link loss (Config.Loss);
	// Messages − Lost copies arrived somewhere.
	Lost int64 `json:"lost"`
	// Cut counts copies a cut link dropped (a partition, Config.Partition):
	// every copy sent is a first receipt, a duplicate, lost, cut, at a
	// crashed node or rejected.
	Cut int64 `json:"cut,omitempty"`
	// ToCrashed counts copies that arrived at a crashed node.
	ToCrashed int64 `json:"to_crashed"`
	// Rejected counts copies a core refused as malformed (always 0 unless
	// the core and simulator disagree).
	Rejected int64 `json:"rejected"`
	// ControlMessages counts the control frames (IHAVE, IWANT, GRAFT,
	// PRUNE, PULL) sent for this broadcast, lost ones included: a frame
	// counts toward the broadcast of the first id it carries, and one
	// without (a PRUNE) toward the broadcast whose copy caused it (the
	// rule is in control.go). Always 0 for flood and fanout, which send
	// none.
	ControlMessages int64 `json:"control_messages"`
	// Partition, for a broadcast published while a partition
	// (Config.Partition) was in force, is what each side held at the heal and
	// how long after it every live node held the broadcast. Absent
	// otherwise.
	Partition *PartitionReach `json:"partition,omitempty"`
}

// CoverageByHop returns the fraction of n nodes reached at hop h or less.
func (b *Broadcast) CoverageByHop(n int) []float64 {
	out := make([]float64, len(b.ReachedByHop))
	sum := 0
	for h, c := range b.ReachedByHop {
		sum += c
		out[h] = float64(sum) / float64(n)
	}
	return out
}

// Report is one run: the means over its broadcasts, what was simulated,
// and every broadcast. The first eight fields and their JSON names are the
// interface other tools rely on.
type Report struct {
	Nodes      int    `json:"nodes"`
	Broadcasts int    `json:"broadcasts"`
	Seed       uint64 `json:"seed"`
	// Reliability, MeanHop, LastDeliveryHop and RMR are means over the
	// broadcasts. Reliability is over all nodes, crashed ones included.
	Reliability     float64 `json:"reliability"`
	MeanHop         float64 `json:"mean_hop"`
	LastDeliveryHop float64 `json:"last_delivery_hop"`
	RMR             float64 `json:"rmr"`
	// TimeToCoverageMS is the mean over the broadcasts that reached each
	// level (null when none did).
	TimeToCoverageMS Coverage `json:"time_to_coverage_ms"`
	// AllReached is the fraction of broadcasts that reached every node.
	AllReached float64 `json:"all_reached"`
	// ReliabilityLive is the mean of the broadcasts' ReliabilityLive: the
	// fraction of the nodes still up that were reached. It equals
	// Reliability when nothing crashed.
	ReliabilityLive float64 `json:"reliability_live"`
	// AllLiveReached is the fraction of broadcasts that reached every node
	// still up.
	AllLiveReached float64 `json:"all_live_reached"`
	// Messages, Lost, Duplicates and ToCrashed are the broadcasts' copy
	// counts added up: copies sent, and of those, the ones a link lost, the
	// ones that reached a node that had the message, and the ones that
	// reached a crashed node.
	Messages   int64 `json:"messages"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	ToCrashed  int64 `json:"to_crashed"`
	// ControlMessages is the broadcasts' control frames added up;
	// ControlUnattributed counts the control frames of the run that no
	// broadcast could be charged with (a timer's frame whose ids had all
	// settled). Together they are every control frame sent.
	ControlMessages     int64 `json:"control_messages"`
	ControlUnattributed int64 `json:"control_unattributed"`
	// MaxLastDeliveryHop is the largest last delivery hop of any broadcast.
	MaxLastDeliveryHop int     `json:"max_last_delivery_hop"`
	Topology           string  `json:"topology"`
	Degree             int     `json:"degree"`
	MeanDegree         float64 `json:"mean_degree"`
	Strategy           string  `json:"strategy"`
	Fanout             int     `json:"fanout"`
	Latency            string  `json:"latency"`
	Regions            int     `json:"regions,omitempty"`
	Loss               float64 `json:"loss"`
	Crash              string  `json:"crash,omitempty"`
	// Delay, Partition and Pause are the fault layer's settings as the
	// flags spell them, absent when unset.
	Delay     string `json:"delay,omitempty"`
	Partition string `json:"partition,omitempty"`
	Pause     string `json:"pause,omitempty"`
	// Cut is the copies that cut links dropped, added up.
	Cut int64 `json:"cut,omitempty"`
	// PartitionRepaired is the fraction of the broadcasts published
	// during the partition that every live node held in the end; absent
	// without a partition.
	PartitionRepaired *float64 `json:"partition_repaired,omitempty"`
	// Graphs is how many independent topologies the broadcasts ran on.
	Graphs int `json:"graphs"`
	// Events counts message arrivals the engine processed.
	Events int64 `json:"events"`
	// Adversaries is what the liars (Config.Adversaries) did and what
	// reached the honest nodes; absent without any.
	Adversaries *AdversaryReport `json:"adversaries,omitempty"`
	// Partial marks a run stopped before all its broadcasts finished.
	Partial      bool        `json:"partial,omitempty"`
	PerBroadcast []Broadcast `json:"per_broadcast"`
}

func newReport(cfg *Config, g *Graph, bs []Broadcast) *Report {
	r := &Report{
		Nodes:      g.N(),
		Seed:       cfg.Seed,
		Topology:   cfg.Topology,
		Degree:     cfg.Degree,
		MeanDegree: round(g.MeanDegree(), 4),
		Strategy:   string(cfg.Gossip.Strategy),
		Latency:    cfg.Latency.String(),
		Loss:       cfg.Loss,
		Crash:      cfg.Crash.String(),
		Partition:  cfg.Partition.String(),
		Pause:      cfg.Pause.String(),
		Graphs:     1,
	}
	if cfg.Gossip.Strategy == "fanout" {
		r.Fanout = cfg.Gossip.Fanout
	}
	if cfg.Regions != nil {
		r.Regions = len(cfg.Regions.Names)
	}
	if cfg.Delay != 0 || cfg.Jitter != 0 {
		r.Delay = cfg.Delay.String() + "," + cfg.Jitter.String()
	}
	r.PerBroadcast = bs
	r.summarize()
	return r
}

// Merge pools runs of the same setup on different topologies (seeds) into
// one report: its broadcasts are all of theirs, renumbered, and its seed
// is the first run's.
func Merge(rs []*Report) *Report {
	if len(rs) == 0 {
		return nil
	}
	m := *rs[0]
	m.PerBroadcast = nil
	m.Graphs, m.Events, m.ControlUnattributed = 0, 0, 0
	deg := 0.0
	for _, r := range rs {
		m.Graphs += r.Graphs
		m.Events += r.Events
		m.ControlUnattributed += r.ControlUnattributed
		m.Partial = m.Partial || r.Partial
		deg += r.MeanDegree
		for _, b := range r.PerBroadcast {
			b.Index = len(m.PerBroadcast)
			m.PerBroadcast = append(m.PerBroadcast, b)
		}
	}
	m.MeanDegree = round(deg/float64(len(rs)), 4)
	m.summarize()
	return &m
}

// summarize fills the means from PerBroadcast.
func (r *Report) summarize() {
	bs := r.PerBroadcast
	r.Broadcasts = len(bs)
	r.Messages, r.Lost, r.Duplicates, r.ToCrashed, r.ControlMessages, r.Cut = 0, 0, 0, 0, 0, 0
	r.PartitionRepaired = nil
	parted, repaired := 0, 0
	if len(bs) == 0 {
		r.TimeToCoverageMS = Coverage{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
		return
	}
	var rel, relLive, hop, last, rmr float64
	var cov [4]float64
	var covN [4]int
	all, allLive := 0, 0
	r.MaxLastDeliveryHop = 0
	for i := range bs {
		b := &bs[i]
		rel += b.Reliability
		relLive += b.ReliabilityLive
		hop += b.MeanHop
		last += float64(b.LastDeliveryHop)
		rmr += b.RMR
		r.MaxLastDeliveryHop = max(r.MaxLastDeliveryHop, b.LastDeliveryHop)
		if b.Reached == r.Nodes {
			all++
		}
		if b.ReachedLive == b.Live {
			allLive++
		}
		r.Messages += b.Messages
		r.Lost += b.Lost
		r.Duplicates += b.Duplicates
		r.ToCrashed += b.ToCrashed
		r.Cut += b.Cut
		r.ControlMessages += b.ControlMessages
		if b.Partition != nil {
			parted++
			if b.Partition.HealToFullMS != nil {
				repaired++
			}
		}
		for k, t := range b.TimeToCoverageMS {
			if !math.IsNaN(t) {
				cov[k] += t
				covN[k]++
			}
		}
	}
	n := float64(len(bs))
	if parted > 0 {
		f := round(float64(repaired)/float64(parted), 6)
		r.PartitionRepaired = &f
	}
	r.Reliability = round(rel/n, 6)
	r.MeanHop = round(hop/n, 4)
	r.LastDeliveryHop = round(last/n, 4)
	r.RMR = round(rmr/n, 4)
	r.AllReached = round(float64(all)/n, 6)
	r.ReliabilityLive = round(relLive/n, 6)
	r.AllLiveReached = round(float64(allLive)/n, 6)
	for k := range cov {
		r.TimeToCoverageMS[k] = math.NaN()
		if covN[k] > 0 {
			r.TimeToCoverageMS[k] = round(cov[k]/float64(covN[k]), 3)
		}
	}
}

// round rounds x to d decimals, so that reports stay readable.
func round(x float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(x*p) / p
}

// WriteJSON writes r as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("sim: report: %w", err)
	}
	data = append(data, '\n')
	_, err = w.Write(data)
	return err
}

// CSVHeader is the header row of WriteCSV; sweeps prepend their parameter.
var CSVHeader = []string{
	"nodes", "topology", "degree", "strategy", "fanout", "latency", "loss", "crash", "seed",
	"broadcast", "publisher", "reached", "reliability", "live", "reached_live", "reliability_live",
	"mean_hop", "last_delivery_hop", "rmr",
	"t50_ms", "t90_ms", "t99_ms", "t100_ms", "messages", "duplicates", "lost", "to_crashed",
	"control_messages",
}

// CSVRows returns one row per broadcast, in CSVHeader's order.
func (r *Report) CSVRows() [][]string {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	i := strconv.Itoa
	rows := make([][]string, 0, len(r.PerBroadcast))
	for _, b := range r.PerBroadcast {
		rows = append(rows, []string{
			i(r.Nodes), r.Topology, i(r.Degree), r.Strategy, i(r.Fanout), r.Latency, f(r.Loss), r.Crash,
			strconv.FormatUint(r.Seed, 10),
			i(b.Index), i(b.Publisher), i(b.Reached), f(b.Reliability),
			i(b.Live), i(b.ReachedLive), f(b.ReliabilityLive), f(round(b.MeanHop, 6)),
			i(b.LastDeliveryHop), f(round(b.RMR, 6)),
			f(b.TimeToCoverageMS[0]), f(b.TimeToCoverageMS[1]), f(b.TimeToCoverageMS[2]), f(b.TimeToCoverageMS[3]),
			strconv.FormatInt(b.Messages, 10), strconv.FormatInt(b.Duplicates, 10),
			strconv.FormatInt(b.Lost, 10), strconv.FormatInt(b.ToCrashed, 10),
			strconv.FormatInt(b.ControlMessages, 10),
		})
	}
	return rows
}

// WriteCSV writes a header and one row per broadcast.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	cw.WriteAll(r.CSVRows())
	if err := cw.Error(); err != nil {
		return fmt.Errorf("sim: csv: %w", err)
	}
	return nil
}

// Describe is a one-line summary of what was simulated.
func (r *Report) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes, %s", r.Nodes, r.Topology)
	switch r.Topology {
	case TopologyKOut:
		fmt.Fprintf(&b, " %d (one-way)", r.Degree)
	case TopologyUndirected, TopologyRegular:
		fmt.Fprintf(&b, " degree %d", r.Degree)
	}
	fmt.Fprintf(&b, " (mean %.2f peers), %s", r.MeanDegree, r.Strategy)
	if r.Strategy == "fanout" {
		fmt.Fprintf(&b, " %d", r.Fanout)
	}
	fmt.Fprintf(&b, ", latency %s", r.Latency)
	if r.Regions > 0 {
		fmt.Fprintf(&b, " + %d-region matrix", r.Regions)
	}
	if r.Loss > 0 {
		fmt.Fprintf(&b, ", loss %g", r.Loss)
	}
	if r.Crash != "" {
		fmt.Fprintf(&b, ", crash %s", r.Crash)
	}
	if r.Delay != "" {
		fmt.Fprintf(&b, ", delay %s", r.Delay)
	}
	if r.Partition != "" {
		fmt.Fprintf(&b, ", partition %s", r.Partition)
	}
	if r.Pause != "" {
		fmt.Fprintf(&b, ", pause %s", r.Pause)
	}
	fmt.Fprintf(&b, ", seed %d", r.Seed)
	if r.Graphs > 1 {
		fmt.Fprintf(&b, " (+%d more graphs)", r.Graphs-1)
	}
	return b.String()
}

// WriteText writes the readable report: the setup, the distribution of
// each figure over the broadcasts, and the mean coverage by hop.
func (r *Report) WriteText(w io.Writer) error {
	bw := &errWriter{w: w}
	bw.printf("mesh sim: %s\n", r.Describe())
	state := ""
	if r.Partial {
		state = " (PARTIAL: stopped early; the broadcast that was cut off is left out)"
	}
	bw.printf("%d broadcast(s)%s, %d reached every node (%.1f%%), %d message arrivals\n",
		r.Broadcasts, state, int(math.Round(r.AllReached*float64(r.Broadcasts))), 100*r.AllReached, r.Events)
	bs := r.PerBroadcast
	if r.Crash != "" && len(bs) > 0 {
		// Crashed nodes are not unreached: say how the nodes still up did.
		bw.printf("%d of %d nodes crashed (%s); %d broadcast(s) reached every live node (%.1f%%)\n",
			r.Nodes-bs[len(bs)-1].Live, r.Nodes, r.Crash,
			int(math.Round(r.AllLiveReached*float64(r.Broadcasts))), 100*r.AllLiveReached)
	}
	bw.printf("copies: %d sent", r.Messages)
	if r.Loss > 0 {
		pct := 0.0
		if r.Messages > 0 {
			pct = 100 * float64(r.Lost) / float64(r.Messages)
		}
		bw.printf(", %d of them lost on the links (%.2f%%, loss %g)", r.Lost, pct, r.Loss)
	}
	if r.Partition != "" {
		bw.printf(", %d dropped on cut links", r.Cut)
	}
	bw.printf(", %d duplicates", r.Duplicates)
	if r.Crash != "" {
		bw.printf(", %d to crashed nodes", r.ToCrashed)
	}
	bw.printf("; %d control frames", r.ControlMessages+r.ControlUnattributed)
	if r.ControlUnattributed > 0 {
		bw.printf(" (%d of them after their broadcasts settled)", r.ControlUnattributed)
	}
	bw.printf("\n")
	if r.Adversaries != nil {
		r.Adversaries.writeText(bw)
	}
	if r.PartitionRepaired != nil {
		parted := 0
		for i := range bs {
			if bs[i].Partition != nil {
				parted++
			}
		}
		bw.printf("partition %s: %d broadcast(s) published during it; every live node held %.1f%% of them in the end\n",
			r.Partition, parted, 100**r.PartitionRepaired)
	}
	bw.printf("\n")
	type statRow struct {
		name string
		get  func(*Broadcast) float64
		prec int // decimals; 0 for a count
	}
	rows := []statRow{{"reliability", func(b *Broadcast) float64 { return b.Reliability }, 6}}
	if r.Crash != "" {
		rows[0].name = "reliability (all)"
		rows = append(rows, statRow{"reliability (live)", func(b *Broadcast) float64 { return b.ReliabilityLive }, 6})
	}
	rows = append(rows, []statRow{
		{"mean hop", func(b *Broadcast) float64 { return b.MeanHop }, 3},
		{"last delivery hop", func(b *Broadcast) float64 { return float64(b.LastDeliveryHop) }, 0},
		{"rmr", func(b *Broadcast) float64 { return b.RMR }, 3},
		{"control frames", func(b *Broadcast) float64 { return float64(b.ControlMessages) }, 0},
		{"t50% ms", func(b *Broadcast) float64 { return b.TimeToCoverageMS[0] }, 1},
		{"t90% ms", func(b *Broadcast) float64 { return b.TimeToCoverageMS[1] }, 1},
		{"t99% ms", func(b *Broadcast) float64 { return b.TimeToCoverageMS[2] }, 1},
		{"t100% ms", func(b *Broadcast) float64 { return b.TimeToCoverageMS[3] }, 1},
	}...)
	if r.Partition != "" {
		// Rows of the broadcasts published during the partition: what the
		// publisher's side and the others held at the heal, and how long
		// after it every live node held the broadcast.
		rows = append(rows, []statRow{
			{"own side at heal", func(b *Broadcast) float64 { return b.Partition.ownSide() }, 6},
			{"other sides at heal", func(b *Broadcast) float64 { return b.Partition.otherSides() }, 6},
			{"heal to all ms", func(b *Broadcast) float64 { return b.Partition.healToFull() }, 1},
		}...)
	}
	bw.printf("%-18s %12s %12s %12s %12s %12s %8s\n", "", "mean", "min", "p50", "p90", "max", "n")
	for _, row := range rows {
		vals := make([]float64, 0, len(bs))
		for i := range bs {
			if v := row.get(&bs[i]); !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			bw.printf("%-18s %12s %12s %12s %12s %12s %8d\n", row.name, "-", "-", "-", "-", "-", 0)
			continue
		}
		slices.Sort(vals)
		sum := 0.0
		for _, v := range vals {
			sum += v
		}
		p := func(q float64) float64 { return vals[min(len(vals)-1, int(math.Ceil(q*float64(len(vals))))-1)] }
		ff := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
		mean := sum / float64(len(vals))
		meanPrec := max(row.prec, 3)
		if row.prec == 0 && mean == math.Trunc(mean) {
			meanPrec = 0 // a count whose mean is whole prints as the count it is
		}
		bw.printf("%-18s %12s %12s %12s %12s %12s %8d\n", row.name, ff(mean, meanPrec),
			ff(vals[0], row.prec), ff(p(0.5), row.prec), ff(p(0.9), row.prec), ff(vals[len(vals)-1], row.prec), len(vals))
	}
	// Coverage by hop: counts with one broadcast, means over several.
	maxH := 0
	for i := range bs {
		maxH = max(maxH, len(bs[i].ReachedByHop))
	}
	head := "new nodes"
	if len(bs) > 1 {
		head = "new nodes (mean)"
	}
	bw.printf("\n%-5s %16s %12s\n", "hop", head, "coverage")
	cum := 0
	for h := 0; h < maxH; h++ {
		sum := 0
		for i := range bs {
			if h < len(bs[i].ReachedByHop) {
				sum += bs[i].ReachedByHop[h]
			}
		}
		cum += sum
		cov := 100 * float64(cum) / float64(len(bs)) / float64(r.Nodes)
		if len(bs) == 1 {
			bw.printf("%-5d %16d %11.4f%%\n", h, sum, cov)
		} else {
			bw.printf("%-5d %16.2f %11.4f%%\n", h, float64(sum)/float64(len(bs)), cov)
		}
	}
	return bw.err
}

// errWriter keeps the first write error so that report code stays flat.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
