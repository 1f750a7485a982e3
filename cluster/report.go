package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"gossipmesh/api"
)

// Report is how one message spread: every node's receipt beside its
// shortest-path distance from the publisher in the real topology.
type Report struct {
	// ID is the message id.
	ID string
	// Publisher is the index of the node the message was posted to.
	Publisher int
	// Nodes is the mesh size; Reached counts the nodes that hold the
	// message, the publisher included.
	Nodes, Reached int
	// PublishedAt is when the POST was sent. Every latency counts from it:
	// the nodes share this machine's clock.
	PublishedAt time.Time
	// TimeToLast is the latest receipt's latency.
	TimeToLast time.Duration
	// Hops counts the reached nodes by hop.
	Hops Histogram
	// Duplicates counts the copies that reached a node already holding the
	// message, over all nodes.
	Duplicates int
	// PayloadFrames and ControlFrames count the frames the reached nodes
	// sent for this message, summed over them (api.Receipt.PayloadFrames,
	// ControlFrames): copies of it, and control frames naming it or caused
	// by a copy of it.
	PayloadFrames, ControlFrames int
	// Receipts lists the reached nodes' receipts, by index.
	Receipts []NodeReceipt
	// Missing lists the nodes that did not receive the message in time.
	Missing []int
	// Graph is the topology observed just before the publish, the one
	// the distances come from.
	Graph Graph
	// Distances holds every node's shortest-path distance from the
	// publisher in Graph, by index, reached or not; -1 where there is no
	// path. A node that missed the message keeps its distance here.
	Distances []int
	// Seed is the seed of the mesh (and, for `mesh demo`, of its
	// publishers), so that a report names the run that repeats it. The
	// caller sets it: the nodes do not know it.
	Seed uint64
}

// NodeReceipt is one node's receipt of the message.
type NodeReceipt struct {
	Index int
	// Hop is the hop count of the first copy: 0 at the publisher.
	Hop int
	// From is the index of the neighbour that delivered the first copy; -1
	// at the publisher (or for a sender outside the mesh).
	From int
	// Distance is the node's shortest-path distance from the publisher in
	// the observed topology; -1 if the topology has no path. Hop can exceed
	// it when the first copy took a longer path on a busy machine.
	Distance int
	// Latency is the time from the POST to this node's first receipt.
	Latency time.Duration
	// Duplicates counts the later copies this node received.
	Duplicates int
	// PayloadFrames and ControlFrames count the frames this node sent for
	// the message.
	PayloadFrames, ControlFrames int
}

// Complete reports whether every node was reached.
func (r Report) Complete() bool { return r.Reached == r.Nodes }

// RMR is the relative message redundancy of the message: payload frames
// over the N-1 a spanning tree needs, minus 1, with N the mesh's node
// count (reached or not). 0 for a settled tree, about 2 x links / (N-1) -
// 2 for flood; 0 for a mesh of one node.
func (r Report) RMR() float64 { return rmr(float64(r.PayloadFrames), r.Nodes) }

// rmr is payload / (nodes-1) - 1, 0 when nodes < 2.
func rmr(payload float64, nodes int) float64 {
	if nodes < 2 {
		return 0
	}
	return payload/float64(nodes-1) - 1
}

// ByArrival returns the receipts ordered by latency (ties by index): the
// order in which the message reached the nodes.
func (r Report) ByArrival() []NodeReceipt {
	out := slices.Clone(r.Receipts)
	slices.SortStableFunc(out, func(a, b NodeReceipt) int {
		if a.Latency != b.Latency {
			return cmp.Compare(a.Latency, b.Latency)
		}
		return a.Index - b.Index
	})
	return out
}

// Millis renders d in milliseconds, rounded to the microsecond, for JSON.
func Millis(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

// MarshalJSON writes the shape of `mesh demo --json`: the fields the issue
// fixes come first, extras after.
func (r Report) MarshalJSON() ([]byte, error) {
	type receipt struct {
		Index         int     `json:"index"`
		Hop           int     `json:"hop"`
		From          *int    `json:"from"`
		LatencyMS     float64 `json:"latency_ms"`
		Distance      int     `json:"distance"`
		Duplicates    int     `json:"duplicates"`
		PayloadFrames int     `json:"payload_frames"`
		ControlFrames int     `json:"control_frames"`
	}
	type report struct {
		Nodes      int       `json:"nodes"`
		Reached    int       `json:"reached"`
		TimeToLast float64   `json:"time_to_last_ms"`
		Hops       Histogram `json:"hops"`
		Duplicates int       `json:"duplicates"`
		Receipts   []receipt `json:"receipts"`
		ID         string    `json:"id"`
		Publisher  int       `json:"publisher"`
		Missing    []int     `json:"missing"`
		Distances  []int     `json:"distances"`
		Seed       uint64    `json:"seed"`
		// Frames: what the message cost, over every node.
		PayloadFrames int     `json:"payload_frames"`
		ControlFrames int     `json:"control_frames"`
		RMR           float64 `json:"rmr"`
	}
	out := report{
		Nodes: r.Nodes, Reached: r.Reached, TimeToLast: Millis(r.TimeToLast),
		Hops: r.Hops, Duplicates: r.Duplicates, Receipts: []receipt{},
		ID: r.ID, Publisher: r.Publisher, Missing: r.Missing,
		Distances: r.Distances, Seed: r.Seed,
		PayloadFrames: r.PayloadFrames, ControlFrames: r.ControlFrames, RMR: round4(r.RMR()),
	}
	if out.Distances == nil {
		out.Distances = []int{}
	}
	if out.Hops == nil {
		out.Hops = Histogram{}
	}
	if out.Missing == nil {
		out.Missing = []int{}
	}
	for _, rc := range r.Receipts {
		x := receipt{Index: rc.Index, Hop: rc.Hop, LatencyMS: Millis(rc.Latency), Distance: rc.Distance, Duplicates: rc.Duplicates,
			PayloadFrames: rc.PayloadFrames, ControlFrames: rc.ControlFrames}
		if rc.From >= 0 {
			x.From = &rc.From
		}
		out.Receipts = append(out.Receipts, x)
	}
	return json.Marshal(out)
}

// Histogram counts by hop.
type Histogram map[int]int

// Keys returns the hops present, ascending.
func (h Histogram) Keys() []int {
	ks := make([]int, 0, len(h))
	for k := range h {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// MarshalJSON writes {"0": 1, "1": 3, ...} in numeric order (encoding/json
// would sort the keys as strings, putting "10" before "2").
func (h Histogram) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range h.Keys() {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", strconv.Itoa(k), h[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// PropagateOptions tunes Mesh.Propagate.
type PropagateOptions struct {
	// Wait bounds how long to wait for every node to receive the message.
	// Default 5 s: long past the 1 s the demo promises, so that a slow
	// node shows up as late rather than as missing.
	Wait time.Duration
	// Settle is how long to wait, once every node has the message, before
	// reading the duplicate and frame counts, so that copies still in
	// flight, and control frames sent on a timer (Plumtree's IHAVE goes out
	// within 50 ms), are counted. Default 150 ms.
	Settle time.Duration
}

func (o PropagateOptions) withDefaults() PropagateOptions {
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 150 * time.Millisecond
	}
	return o
}

// receiptGrace is how long past the wait a node may take to answer a
// receipt query before it counts as not answering.
const receiptGrace = 250 * time.Millisecond

// observeTimeout bounds Propagate's look at the topology before it
// publishes. Every node answers it in milliseconds on loopback.
const observeTimeout = 500 * time.Millisecond

// Propagate posts body to node publisher, waits for it to reach every node
// (each node is asked once, with a long-polling wait, rather than polled)
// and reports how it spread. The topology for the distances is observed
// just before the publish.
func (m *Mesh) Propagate(ctx context.Context, publisher int, body string, opt PropagateOptions) (Report, error) {
	if publisher < 0 || publisher >= m.Len() {
		return Report{}, fmt.Errorf("cluster: no node %d in a mesh of %d", publisher, m.Len())
	}
	opt = opt.withDefaults()
	// The observation only gives the distances: a node that does not
	// answer it within observeTimeout (a hung, SIGSTOPped process) is left
	// out of the graph rather than holding up the publish.
	octx, cancel := context.WithTimeout(ctx, observeTimeout)
	obs := m.Observe(octx)
	cancel()
	t0 := time.Now()
	// A publisher that has not answered within the wait (hung) has failed.
	pctx, cancelPub := context.WithTimeout(ctx, opt.Wait)
	res, err := m.clients[publisher].Publish(pctx, body)
	cancelPub()
	if err != nil {
		return Report{}, fmt.Errorf("publishing at node %d: %w", publisher, err)
	}
	rcs := make([]*api.Receipt, m.Len())
	errs := make([]error, m.Len())
	var wg sync.WaitGroup
	// A node that does not answer within the wait and a little more (hung,
	// not dead: a dead one answers at once) is reported missing, with
	// the error, instead of holding the report past --wait.
	rctx, cancel := context.WithTimeout(ctx, opt.Wait+receiptGrace)
	defer cancel()
	for i := range m.Len() {
		wg.Go(func() {
			rc, err := m.clients[i].Receipt(rctx, res.ID, opt.Wait)
			if err == nil {
				rcs[i] = &rc
			} else if !errors.Is(err, api.ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	// Read the duplicate and frame counts again once the copies in
	// flight have landed. A caller's deadline that runs out here (a
	// loaded machine: the observation, the wait and the grace used it
	// up) costs only that refresh: the receipts are in hand, and the
	// report is what the caller asked for.
	refresh := true
	select {
	case <-time.After(opt.Settle):
	case <-ctx.Done():
		refresh = false
	}
	for i := range m.Len() {
		if rcs[i] == nil || !refresh {
			continue
		}
		wg.Go(func() {
			if rc, err := m.clients[i].Receipt(ctx, res.ID, 0); err == nil {
				rcs[i].Duplicates = rc.Duplicates
				rcs[i].PayloadFrames, rcs[i].ControlFrames = rc.PayloadFrames, rc.ControlFrames
			}
		})
	}
	wg.Wait()
	r := m.newReport(res.ID, publisher, t0, rcs, obs.Graph)
	if err := errors.Join(errs...); err != nil && r.Reached == 0 {
		return r, err
	}
	return r, nil
}

// newReport assembles a Report from the nodes' receipts (nil: not
// reached) and the observed topology.
func (m *Mesh) newReport(id string, publisher int, t0 time.Time, rcs []*api.Receipt, g Graph) Report {
	dist := g.Distances(publisher)
	r := Report{ID: id, Publisher: publisher, Nodes: m.Len(), PublishedAt: t0, Hops: Histogram{}, Graph: g, Distances: dist}
	for i, rc := range rcs {
		if rc == nil {
			r.Missing = append(r.Missing, i)
			continue
		}
		from := -1
		if j, ok := m.IndexOf(rc.From); ok && rc.From != "" {
			from = j
		}
		nr := NodeReceipt{
			Index:      i,
			Hop:        rc.Hop,
			From:       from,
			Distance:   dist[i],
			Latency:    rc.ReceivedAt.Sub(t0),
			Duplicates: rc.Duplicates,

			PayloadFrames: rc.PayloadFrames,
			ControlFrames: rc.ControlFrames,
		}
		r.Receipts = append(r.Receipts, nr)
		r.Reached++
		r.Hops[rc.Hop]++
		r.Duplicates += rc.Duplicates
		r.PayloadFrames += rc.PayloadFrames
		r.ControlFrames += rc.ControlFrames
		r.TimeToLast = max(r.TimeToLast, nr.Latency)
	}
	return r
}

// Summary sums up a run of several messages: how long they took to reach
// every node, and how closely hop counts followed the shortest paths.
type Summary struct {
	// Messages counts the reports summed up; Complete those that reached
	// every node.
	Messages, Complete int
	// TimeToLastP50 and TimeToLastP99 are percentiles of the time from the
	// POST to the last node, over the complete messages only (an
	// incomplete one has no last node). Zero when none was complete.
	TimeToLastP50, TimeToLastP99 time.Duration
	// Receipts counts the first receipts at nodes other than the
	// publisher, over all messages.
	Receipts int
	// MeanHop and MeanDistance average the hop and the shortest-path
	// distance over those receipts.
	MeanHop, MeanDistance float64
	// HopIsDistance is the share of those receipts whose hop equals the
	// node's distance: the copy that came first took a shortest path.
	HopIsDistance float64
	// Neighbours counts the publisher's direct neighbours (distance 1),
	// reached or not, over all messages; NeighboursAtHop1 is the share of
	// them that received the message at hop 1, straight from the
	// publisher.
	Neighbours       int
	NeighboursAtHop1 float64
	// PayloadFrames and ControlFrames are the mean frames per message over
	// all messages (Report.PayloadFrames, ControlFrames), and RMR the mean
	// of their Report.RMR.
	PayloadFrames, ControlFrames, RMR float64
}

// Summarize sums up reports. The shares are 0 when there is nothing to
// count.
func Summarize(rs []Report) Summary {
	s := Summary{Messages: len(rs)}
	var lasts []time.Duration
	var hops, dists, exact, neighbours, direct, payload, control int
	var rmrs float64
	for _, r := range rs {
		payload += r.PayloadFrames
		control += r.ControlFrames
		rmrs += r.RMR()
		if r.Complete() {
			s.Complete++
			lasts = append(lasts, r.TimeToLast)
		}
		for _, d := range r.Distances {
			if d == 1 {
				neighbours++
			}
		}
		for _, rc := range r.Receipts {
			if rc.Index == r.Publisher {
				continue
			}
			if rc.Distance == 1 && rc.Hop == 1 {
				direct++
			}
			if rc.Distance < 0 {
				continue // no path in the observed graph: nothing to compare
			}
			s.Receipts++
			hops += rc.Hop
			dists += rc.Distance
			if rc.Hop == rc.Distance {
				exact++
			}
		}
	}
	if len(lasts) > 0 {
		slices.Sort(lasts)
		s.TimeToLastP50, s.TimeToLastP99 = percentile(lasts, 0.50), percentile(lasts, 0.99)
	}
	if s.Receipts > 0 {
		n := float64(s.Receipts)
		s.MeanHop, s.MeanDistance, s.HopIsDistance = float64(hops)/n, float64(dists)/n, float64(exact)/n
	}
	if len(rs) > 0 {
		n := float64(len(rs))
		s.PayloadFrames, s.ControlFrames, s.RMR = float64(payload)/n, float64(control)/n, rmrs/n
	}
	s.Neighbours = neighbours
	if neighbours > 0 {
		s.NeighboursAtHop1 = float64(direct) / float64(neighbours)
	}
	return s
}

// MarshalJSON writes the summary line of `mesh demo --json --messages N`,
// inside {"summary": ...}.
func (s Summary) MarshalJSON() ([]byte, error) {
	type pct struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	}
	return json.Marshal(struct {
		Messages         int     `json:"messages"`
		Complete         int     `json:"complete"`
		TimeToLast       pct     `json:"time_to_last_ms"`
		Receipts         int     `json:"receipts"`
		MeanHop          float64 `json:"mean_hop"`
		MeanDistance     float64 `json:"mean_distance"`
		HopIsDistance    float64 `json:"hop_equals_distance"`
		Neighbours       int     `json:"neighbours"`
		NeighboursAtHop1 float64 `json:"neighbours_at_hop_1"`
		PayloadFrames    float64 `json:"payload_frames_per_msg"`
		ControlFrames    float64 `json:"control_frames_per_msg"`
		RMR              float64 `json:"mean_rmr"`
	}{
		s.Messages, s.Complete, pct{Millis(s.TimeToLastP50), Millis(s.TimeToLastP99)},
		s.Receipts, round4(s.MeanHop), round4(s.MeanDistance), round4(s.HopIsDistance),
		s.Neighbours, round4(s.NeighboursAtHop1),
		round4(s.PayloadFrames), round4(s.ControlFrames), round4(s.RMR),
	})
}

// round4 keeps four decimals: enough for a share, short enough to read.
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
