package web

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gossipmesh/api"
)

// fakeMesh is a mesh of in-process fake nodes, each behind a real HTTP
// server running the real node API handler (api.NewHandler), so that the
// dashboard talks to it exactly as it talks to `mesh node`. Publishing
// "gossips" instantly along breadth-first paths over the live nodes.
type fakeMesh struct {
	mu    sync.Mutex
	nodes []*fakeNode
	adj   [][]int
	seq   int
}

// fakeNode is one node: an api.Backend and api.EventSource.
type fakeNode struct {
	m     *fakeMesh
	index int
	id    string
	srv   *httptest.Server

	// Guarded by m.mu.
	down     bool
	receipts map[string]api.Receipt
	subs     []chan api.Event
	adv      api.Adversary // its adversary mode and counts (adversary_test.go)
	advSets  int           // SetAdversary calls that took effect
}

// newFakeMesh starts n fake nodes linked as given.
func newFakeMesh(t testing.TB, n int, links [][2]int) *fakeMesh {
	t.Helper()
	m := &fakeMesh{adj: make([][]int, n)}
	for _, l := range links {
		m.adj[l[0]] = append(m.adj[l[0]], l[1])
		m.adj[l[1]] = append(m.adj[l[1]], l[0])
	}
	for i := range n {
		fn := &fakeNode{m: m, index: i, id: fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15), receipts: map[string]api.Receipt{}}
		h := api.NewHandler(fn, nil)
		fn.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.mu.Lock()
			down := fn.down
			m.mu.Unlock()
			if down {
				// A killed process does not answer at all; the closest an
				// in-process server gets is hanging up.
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		m.nodes = append(m.nodes, fn)
	}
	t.Cleanup(func() {
		m.mu.Lock()
		for _, fn := range m.nodes {
			fn.closeSubsLocked()
		}
		m.mu.Unlock()
		for _, fn := range m.nodes {
			fn.srv.CloseClientConnections()
			fn.srv.Close()
		}
	})
	return m
}

// ringLinks is a ring with chords: connected, with several path lengths.
func ringLinks(n int) [][2]int {
	var out [][2]int
	for i := range n {
		out = append(out, [2]int{i, (i + 1) % n})
		if i%3 == 0 {
			out = append(out, [2]int{i, (i + n/2) % n})
		}
	}
	return out
}

func (m *fakeMesh) Nodes() []NodeInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]NodeInfo, len(m.nodes))
	for i, fn := range m.nodes {
		out[i] = NodeInfo{Index: i, ID: fn.id, PID: 1000 + i, GossipAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i),
			HTTPURL: fn.srv.URL, Peers: append([]int(nil), m.adj[i]...), Alive: !fn.down}
		if fn.down {
			out[i].PID = 0
		}
	}
	return out
}

func (m *fakeMesh) Kill(_ context.Context, i int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn := m.nodes[i]
	fn.down = true
	fn.closeSubsLocked()
	return nil
}

func (m *fakeMesh) Restart(_ context.Context, i int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[i].down = false
	return nil
}

func (fn *fakeNode) closeSubsLocked() {
	for _, ch := range fn.subs {
		close(ch)
	}
	fn.subs = nil
}

// hopsFrom returns breadth-first hops and parents over the live nodes.
func (m *fakeMesh) hopsFrom(src int) (hop, parent []int) {
	n := len(m.nodes)
	hop, parent = make([]int, n), make([]int, n)
	for i := range hop {
		hop[i], parent[i] = -1, -1
	}
	hop[src] = 0
	q := []int{src}
	for len(q) > 0 {
		a := q[0]
		q = q[1:]
		for _, b := range m.adj[a] {
			if hop[b] < 0 && !m.nodes[b].down {
				hop[b], parent[b] = hop[a]+1, a
				q = append(q, b)
			}
		}
	}
	return hop, parent
}

func (fn *fakeNode) Publish(_ context.Context, body []byte) (api.Receipt, error) {
	if len(body) > fn.MaxBody() {
		return api.Receipt{}, fmt.Errorf("publish: %w", api.ErrBodyTooLarge)
	}
	m := fn.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	var raw [16]byte
	raw[0], raw[15] = byte(fn.index), byte(m.seq)
	id := hex.EncodeToString(raw[:])
	now := time.Now()
	hop, parent := m.hopsFrom(fn.index)
	var mine api.Receipt
	for i, h := range hop {
		if h < 0 {
			continue
		}
		at := now.Add(time.Duration(h) * 100 * time.Microsecond)
		rc := api.Receipt{ID: id, Origin: fn.id, Hop: h, PublishedAt: now, ReceivedAt: at, Size: len(body)}
		kind := "published"
		if h > 0 {
			rc.From = m.nodes[parent[i]].id
			kind = "delivered"
		}
		// Flooding: every reached neighbour that did not get its own first
		// copy from this node sends it one more.
		var dupHops []int
		for _, b := range m.adj[i] {
			if b != parent[i] && hop[b] >= 0 && parent[b] != i {
				dupHops = append(dupHops, hop[b]+1)
			}
		}
		rc.Duplicates = len(dupHops)
		if h == 0 {
			mine = rc
		}
		node := m.nodes[i]
		node.receipts[id] = rc
		node.emitLocked(api.Event{Kind: kind, Node: node.id, ID: id, Origin: fn.id, Hop: h, From: rc.From, At: at, LatencyMS: float64(at.Sub(now)) / 1e6})
		for _, dh := range dupHops {
			node.emitLocked(api.Event{Kind: "duplicate", Node: node.id, ID: id, Origin: fn.id, Hop: dh, At: at})
		}
	}
	return mine, nil
}

func (fn *fakeNode) emitLocked(ev api.Event) {
	for _, ch := range fn.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (fn *fakeNode) Receipt(_ context.Context, id string, _ time.Duration) (api.Receipt, bool) {
	fn.m.mu.Lock()
	defer fn.m.mu.Unlock()
	rc, ok := fn.receipts[id]
	return rc, ok
}

func (fn *fakeNode) Recent(int) []api.Receipt { return nil }
func (fn *fakeNode) Peers() []api.Peer        { return nil }
func (fn *fakeNode) Health() api.Health       { return api.Health{Status: "ok", ID: fn.id} }
func (fn *fakeNode) MaxBody() int             { return 1 << 10 }
func (fn *fakeNode) Load(context.Context, api.LoadRequest) (api.LoadResult, error) {
	return api.LoadResult{}, errors.ErrUnsupported
}

func (fn *fakeNode) Subscribe(buffer int) (<-chan api.Event, func()) {
	m := fn.m
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan api.Event, buffer)
	if fn.down {
		close(ch)
		return ch, func() {}
	}
	fn.subs = append(fn.subs, ch)
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for k, c := range fn.subs {
			if c == ch {
				fn.subs = append(fn.subs[:k], fn.subs[k+1:]...)
				close(ch)
				return
			}
		}
	}
}
