package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"gossipmesh/api"
)

// The dashboard's adversary controls: it asks every node's GET /adversary
// for the page's marks, and sets a node's mode through that node's PUT
// /adversary, the same route `mesh chaos adversary` uses. Nothing of it is
// the mesh's: any mesh whose nodes run the node API has it.

// adversaryWait bounds how long GET /api/adversaries waits for the nodes:
// the page asks every few seconds, and one node that does not answer must
// not hold it.
const adversaryWait = 3 * time.Second

// maxAdversaryRequest bounds the JSON body of POST /api/nodes/{i}/adversary.
const maxAdversaryRequest = 4 << 10

// NodeAdversary is one node's line of GET /api/adversaries.
type NodeAdversary struct {
	Index int `json:"index"`
	// Mode is the adversary modes the node runs, "" for honest.
	Mode string `json:"mode"`
	// Stats counts what the node did as an adversary.
	Stats api.AdversaryStats `json:"stats"`
	// Error says why the node's state could not be read (a node that is
	// down, or one that runs no adversary routes).
	Error string `json:"error,omitempty"`
}

// AdversariesView is the answer to GET /api/adversaries and to POST
// /api/nodes/{index}/adversary: every node's line, in index order.
type AdversariesView struct {
	Nodes []NodeAdversary `json:"nodes"`
}

// AdversaryRequest is the body of POST /api/nodes/{index}/adversary.
type AdversaryRequest struct {
	// Mode is the modes to put in force, as `mesh node --adversary`
	// spells them; "" turns the node honest.
	Mode *string `json:"mode"`
}

// adversaries asks every live node for its adversary state at once.
func (s *Server) adversaries(ctx context.Context) AdversariesView {
	ctx, cancel := context.WithTimeout(ctx, adversaryWait)
	defer cancel()
	nodes := s.mesh.Nodes()
	v := AdversariesView{Nodes: make([]NodeAdversary, len(nodes))}
	var wg sync.WaitGroup
	for i, n := range nodes {
		v.Nodes[i] = NodeAdversary{Index: i}
		if !n.Alive {
			v.Nodes[i].Error = "node is down"
			continue
		}
		wg.Go(func() {
			a, err := s.client(n.HTTPURL).Adversary(ctx)
			if err != nil {
				v.Nodes[i].Error = err.Error()
				return
			}
			v.Nodes[i].Mode, v.Nodes[i].Stats = a.Mode, a.Stats
		})
	}
	wg.Wait()
	return v
}

func (s *Server) getAdversaries(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.adversaries(r.Context()))
}

// setAdversary puts a mode in force on one node through its own API; a
// mode the node refuses comes back as the node's 400, naming the field.
func (s *Server) setAdversary(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("node index %q: want a whole number", r.PathValue("index")))
		return
	}
	n, ok := s.node(w, i)
	if !ok {
		return
	}
	var req AdversaryRequest
	if !api.DecodeJSON(w, r, maxAdversaryRequest, &req) {
		return
	}
	if req.Mode == nil {
		api.WriteError(w, http.StatusBadRequest, `missing field "mode": the adversary modes, such as "blackhole", or "" for honest`)
		return
	}
	if !n.Alive {
		api.WriteError(w, http.StatusConflict, fmt.Sprintf("node %d is down: restart it first", i))
		return
	}
	if _, err := s.client(n.HTTPURL).SetAdversary(r.Context(), *req.Mode); err != nil {
		api.WriteError(w, upstreamStatus(err), fmt.Sprintf("adversary node %d: %v", i, err))
		return
	}
	s.log.Info("dashboard: adversary", "index", i, "mode", *req.Mode)
	s.hub.send(mustJSON(map[string]any{"type": "control", "index": i, "action": "adversary"}))
	api.WriteJSON(w, http.StatusOK, s.adversaries(r.Context()))
}
