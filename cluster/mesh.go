package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"gossipmesh/api"
)

// Member is one node of a running mesh as the launcher recorded it. These
// are the field names of `mesh status --json` and of the state file.
type Member struct {
	Index      int    `json:"index"`
	ID         string `json:"id"`
	PID        int    `json:"pid"`
	GossipAddr string `json:"gossip_addr"`
	HTTPURL    string `json:"http_url"`
}

// Mesh is a view of a running mesh through its nodes' HTTP APIs: what
// publish, status and bench need, whether the mesh is this process's
// Cluster or one that `mesh up` recorded in a state file.
type Mesh struct {
	members []Member
	clients []*api.Client
	index   map[string]int // node id → index
}

// NewHTTPClient returns the HTTP client a Mesh uses: its own transport with
// enough idle connections for one request per node at once, no proxy (the
// nodes are local) and a bounded connect (api.DialTimeout). A whole call is
// bounded by its context, or by api.DefaultTimeout when that has none: an
// overall http.Client.Timeout would cut the long-polling receipt waits.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: api.DialTimeout}).DialContext,
		MaxIdleConns:        4 * MaxNodes,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// NewMesh returns a view of members, talking to them through hc (nil: a
// new NewHTTPClient). Member i must have Index i.
func NewMesh(members []Member, hc *http.Client) (*Mesh, error) {
	if hc == nil {
		hc = NewHTTPClient()
	}
	m := &Mesh{members: slices.Clone(members), index: make(map[string]int, len(members))}
	for i, mb := range members {
		if mb.Index != i {
			return nil, fmt.Errorf("cluster: member %d has index %d", i, mb.Index)
		}
		if _, dup := m.index[mb.ID]; dup {
			return nil, fmt.Errorf("cluster: node id %s appears twice", mb.ID)
		}
		m.index[mb.ID] = i
		m.clients = append(m.clients, api.NewClient(mb.HTTPURL, hc))
	}
	return m, nil
}

// Len is the number of nodes.
func (m *Mesh) Len() int { return len(m.members) }

// Members returns a copy of the member list.
func (m *Mesh) Members() []Member { return slices.Clone(m.members) }

// Client returns the API client of node i.
func (m *Mesh) Client(i int) *api.Client { return m.clients[i] }

// IndexOf maps a node id to its index; false for an id outside the mesh.
func (m *Mesh) IndexOf(id string) (int, bool) {
	i, ok := m.index[id]
	return i, ok
}

// Observation is the mesh as its nodes describe it at one moment.
type Observation struct {
	// Health is each node's /healthz answer (zero where Errs[i] != nil).
	Health []api.Health
	// Peers[i] lists, ascending, the indices node i reports as linked (nil
	// where Errs[i] != nil). Peers outside the mesh are left out.
	Peers [][]int
	// Errs[i] says why node i did not answer, or answered as someone else.
	Errs []error
	// Graph is the undirected graph of every reported link: a link counts
	// if either end reports it.
	Graph Graph
}

// Answered reports whether every node answered.
func (o Observation) Answered() bool {
	return !slices.ContainsFunc(o.Errs, func(err error) bool { return err != nil })
}

// Connected is the status command's definition: every node answers and the
// undirected peer graph is connected.
func (o Observation) Connected() bool { return o.Answered() && o.Graph.Connected() }

// Reports reports whether both a and b list each other: the link is up on
// both ends.
func (o Observation) Reports(a, b int) bool {
	_, ab := slices.BinarySearch(o.Peers[a], b)
	_, ba := slices.BinarySearch(o.Peers[b], a)
	return ab && ba
}

// Observe asks every node, at once, for /healthz and /peers. A node that
// answers with another node's id counts as not answering: a stale state
// file may point at a port that something else now holds.
func (m *Mesh) Observe(ctx context.Context) Observation {
	n := len(m.members)
	o := Observation{Health: make([]api.Health, n), Peers: make([][]int, n), Errs: make([]error, n)}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h, err := m.clients[i].Health(ctx)
			if err != nil {
				o.Errs[i] = err
				return
			}
			if h.ID != m.members[i].ID {
				o.Errs[i] = fmt.Errorf("%s answers as node %s, want %s", m.members[i].HTTPURL, h.ID, m.members[i].ID)
				return
			}
			peers, err := m.clients[i].Peers(ctx)
			if err != nil {
				o.Errs[i] = err
				return
			}
			o.Health[i] = h
			idx := make([]int, 0, len(peers))
			for _, p := range peers {
				if j, ok := m.index[p.ID]; ok && j != i {
					idx = append(idx, j)
				}
			}
			slices.Sort(idx)
			o.Peers[i] = slices.Compact(idx)
		})
	}
	wg.Wait()
	var links [][2]int
	for i, ps := range o.Peers {
		for _, j := range ps {
			links = append(links, [2]int{i, j})
		}
	}
	o.Graph = NewGraph(n, links)
	return o
}
