package sim

import (
	"fmt"
	"math"
)

// chartBins is how many bins RunCharts keeps for delivery times: enough
// for a smooth curve at any N in constant memory (a million-node run or
// ten thousand broadcasts would otherwise keep a time per delivery).
const chartBins = 1024

// RunCharts collects what the charts of a single run draw (`mesh sim
// --chart`): how long after its publish each node got each broadcast,
// pooled over the broadcasts. Times go into chartBins equal bins; when one
// falls past the last, the bins merge pairwise and double in width, so the
// curve keeps at least chartBins/2 bins of resolution whatever the latency
// model, and the same run always gives the same bins.
type RunCharts struct {
	width int64 // bin width, nanoseconds
	// bins holds the finished broadcasts; cur the one under way, which a
	// cancelled run leaves out of its report and so out of the charts.
	bins, cur []int64
	pubAt     int64
}

// NewRunCharts returns an empty collector; feed it with Observer.
func NewRunCharts() *RunCharts {
	return &RunCharts{width: 1000, bins: make([]int64, chartBins), cur: make([]int64, chartBins)}
}

// Observer returns the hook that feeds c, for RunObserved.
func (c *RunCharts) Observer() Observer { return Observer{Deliver: c.observe} }

func (c *RunCharts) observe(d Delivery) {
	if d.Hop == 0 && d.From < 0 {
		// The publisher's own copy comes first in every broadcast: the
		// one before it has finished.
		c.commit()
		c.pubAt = d.At
	}
	t := d.At - c.pubAt
	for t >= c.width*chartBins {
		half := chartBins / 2
		for _, b := range [][]int64{c.bins, c.cur} {
			for k := range half {
				b[k] = b[2*k] + b[2*k+1]
			}
			clear(b[half:])
		}
		c.width *= 2
	}
	c.cur[t/c.width]++
}

// commit adds the current broadcast's times to the finished ones.
func (c *RunCharts) commit() {
	for k, v := range c.cur {
		c.bins[k] += v
	}
	clear(c.cur)
}

// Charts draws r (the report of the run c watched): the coverage curve,
// the mean fraction of nodes reached against virtual time since publish,
// and the hop histogram, the mean fraction first reached at each hop with
// the cumulative coverage by hop beside it.
func (c *RunCharts) Charts(r *Report) (coverage, hops *Chart) {
	if r.Partial {
		clear(c.cur) // the broadcast that was cut off is not in r
	}
	c.commit()
	nb := float64(len(r.PerBroadcast))
	total := float64(r.Nodes) * nb
	if total == 0 {
		total = 1
	}
	last := 0
	for k, v := range c.bins {
		if v > 0 {
			last = k
		}
	}
	// Mean over broadcasts of reached(t)/N is the pooled count over N·B,
	// since every broadcast has the same N.
	cov := Series{Name: "nodes reached", NoMarkers: true}
	var cum int64
	for k := 0; k <= last; k++ {
		cum += c.bins[k]
		cov.X = append(cov.X, float64((int64(k)+1)*c.width)/1e6)
		cov.Y = append(cov.Y, 100*float64(cum)/total)
	}
	t := r.TimeToCoverageMS
	coverage = &Chart{
		Title: fmt.Sprintf("coverage against time: 50%% at %s, 90%% at %s, 99%% at %s, 100%% at %s",
			msLabel(t[0]), msLabel(t[1]), msLabel(t[2]), msLabel(t[3])),
		Subtitle: runSubtitle(r),
		XLabel:   "virtual time since publish (ms)",
		YLabel:   "nodes reached (%)",
		YMax:     100,
		Series:   []Series{cov},
	}

	at := Series{Name: "first reached at hop h", Bars: true}
	by := Series{Name: "reached by hop h"}
	for h, v := range meanCoverageByHop(r) {
		sum := 0
		for i := range r.PerBroadcast {
			if b := r.PerBroadcast[i].ReachedByHop; h < len(b) {
				sum += b[h]
			}
		}
		at.X, at.Y = append(at.X, float64(h)), append(at.Y, 100*float64(sum)/total)
		by.X, by.Y = append(by.X, float64(h)), append(by.Y, 100*v)
	}
	lastHop := trimFloat(r.LastDeliveryHop)
	if len(r.PerBroadcast) > 1 {
		lastHop = fmt.Sprintf("%.2f (max %d)", r.LastDeliveryHop, r.MaxLastDeliveryHop)
	}
	hops = &Chart{
		Title: fmt.Sprintf("coverage by hop: mean hop %.2f, last delivery hop %s, reliability %.4g%%",
			r.MeanHop, lastHop, 100*r.Reliability),
		Subtitle: runSubtitle(r),
		XLabel:   "hop (0 = publisher)",
		YLabel:   "nodes (%)",
		YMax:     100,
		Series:   []Series{at, by},
	}
	return coverage, hops
}

// runSubtitle says what was run, and over how many broadcasts the means
// are.
func runSubtitle(r *Report) string {
	s := r.Describe()
	if n := len(r.PerBroadcast); n > 1 {
		s = fmt.Sprintf("mean of %d broadcasts; %s", n, s)
	}
	return s
}

// msLabel renders a time to coverage, "never" for a level not reached.
func msLabel(v float64) string {
	if math.IsNaN(v) {
		return "never"
	}
	return trimFloat(math.Round(v*10)/10) + " ms"
}

func trimFloat(v float64) string { return fmt.Sprint(v) }
