package maelstrom

import (
	"bytes"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// StableLatencies returns, for each acknowledged broadcast whose value is
// not in lost, its stable latency: the time from the broadcast's
// invocation to the invocation of the last read that lacked the value,
// or zero when no read invoked after the broadcast lacked it. Every read
// that begins later includes the value. This is Jepsen's set-full
// definition, which Maelstrom's broadcast checker applies; reads that
// failed are ignored. The result is sorted.
func StableLatencies(broadcasts, reads []*op, lost map[int64]bool) []time.Duration {
	ok := make([]*op, 0, len(reads))
	for _, r := range reads {
		if r.ok {
			ok = append(ok, r)
		}
	}
	slices.SortFunc(ok, func(a, b *op) int { return a.invoked.Compare(b.invoked) })
	var out []time.Duration
	for _, b := range broadcasts {
		if !b.ok || lost[b.value] {
			continue
		}
		var d time.Duration
		// Scan back from the latest read: the first that lacks the value
		// is the last absent one.
		for k := len(ok) - 1; k >= 0 && !ok[k].invoked.Before(b.invoked); k-- {
			if !has(ok[k].values, b.value) {
				d = ok[k].invoked.Sub(b.invoked)
				break
			}
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// has reports whether the sorted vs holds v.
func has(vs []int64, v int64) bool {
	_, found := slices.BinarySearch(vs, v)
	return found
}

// quantile returns the q-quantile of sorted ds (nearest rank), 0 if empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(k, 0), len(ds)-1)]
}

func msf(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// gridTopology is the topology Maelstrom suggests by default: the nodes
// in rows of ceil(sqrt(N)), each linked to its neighbours above, below,
// left and right.
func gridTopology(names []string) map[string][]string {
	n := len(names)
	w := int(math.Ceil(math.Sqrt(float64(n))))
	t := make(map[string][]string, n)
	for i, name := range names {
		nb := []string{}
		if i%w > 0 {
			nb = append(nb, names[i-1])
		}
		if i%w < w-1 && i+1 < n {
			nb = append(nb, names[i+1])
		}
		if i-w >= 0 {
			nb = append(nb, names[i-w])
		}
		if i+w < n {
			nb = append(nb, names[i+w])
		}
		t[name] = nb
	}
	return t
}

// prefixWriter returns a writer that copies whole lines to w, each
// prefixed with name, or io.Discard when w is nil. The prefixWriters of
// one run share mu, so lines from many nodes never interleave.
func prefixWriter(w io.Writer, name string, mu *sync.Mutex) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &prefixed{w: w, name: name, mu: mu}
}

type prefixed struct {
	w    io.Writer
	name string
	mu   *sync.Mutex
	buf  []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := p.w.Write(append([]byte(p.name+": "), p.buf[:i+1]...))
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
	if len(p.buf) > 64<<10 { // a line that never ends: cut it
		p.buf = p.buf[:0]
	}
	return len(b), nil
}
