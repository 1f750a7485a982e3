package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"gossipmesh/api"
)

// MaxLoss is the highest drop probability the page's loss slider may set.
// Past one frame in two the mesh mostly shows that it is cut off, which
// the split button shows better; `mesh chaos loss` goes up to 1.
const MaxLoss = 0.5

// maxFaultRequest bounds the JSON body of the fault routes.
const maxFaultRequest = 64 << 10

// faultStatusWait bounds how long GET /api/faults waits for the nodes'
// plans: the page asks every few seconds, and one node that does not
// answer must not hold it.
const faultStatusWait = 3 * time.Second

// Node process states, as GET /api/faults reports them (the same words as
// `mesh chaos status`).
const (
	StateRunning = "running"
	StatePaused  = "paused" // stopped by SIGSTOP: a hung peer
	StateExited  = "exited"
)

// FaultMesh is a Mesh that the dashboard can also inject faults into: the
// controls of `mesh chaos` for a person at the page. Each method returns
// once its change is in force on every node concerned, as the chaos verbs
// do. A method may wrap errors.ErrUnsupported (the dashboard answers 501
// and hides the controls), or ErrNoSuchNode.
type FaultMesh interface {
	Mesh
	// Split cuts every link between the nodes of a and those of b.
	Split(ctx context.Context, a, b []int) error
	// Heal removes every cut; loss stays.
	Heal(ctx context.Context) error
	// Loss sets the drop probability on every link of every node.
	Loss(ctx context.Context, drop float64) error
	// Pause stops node i (SIGSTOP): it keeps its connections but reads
	// and writes nothing.
	Pause(ctx context.Context, i int) error
	// Resume continues node i after Pause (SIGCONT).
	Resume(ctx context.Context, i int) error
	// Faults reports every node's process state and the faults it holds.
	Faults(ctx context.Context) ([]NodeFaults, error)
}

// NodeFaults is one node's faults, as the page draws them.
type NodeFaults struct {
	Index int `json:"index"`
	// State is StateRunning, StatePaused or StateExited.
	State string `json:"state"`
	// Cut lists the nodes whose links this node cuts, both ways.
	Cut []int `json:"cut"`
	// Drop is the node's drop probability on its outgoing links.
	Drop float64 `json:"drop"`
	// Error says why the node's plan could not be read (it is then
	// reported without cuts or loss).
	Error string `json:"error,omitempty"`
}

// FaultsView is the answer to GET /api/faults and to every fault route.
type FaultsView struct {
	// Available is false when the mesh cannot take faults from the page
	// (Why says why); the page then hides its fault controls.
	Available bool   `json:"available"`
	Why       string `json:"why,omitempty"`
	// Nodes is every node's state and plan, in index order.
	Nodes []NodeFaults `json:"nodes"`
	// CutLinks are the links of GET /api/topology that a cut at either
	// end breaks: the page draws them dashed.
	CutLinks [][2]int `json:"cut_links"`
	// Loss is the highest drop probability any node holds.
	Loss float64 `json:"loss"`
}

// SplitRequest is the body of POST /api/faults/split. Both sides empty
// (the body {}) means halves: nodes 0..n/2-1 against n/2..n-1.
type SplitRequest struct {
	A []int `json:"a"`
	B []int `json:"b"`
}

// LossRequest is the body of POST /api/faults/loss.
type LossRequest struct {
	// Drop is the probability, 0 to MaxLoss, that a frame is dropped.
	Drop *float64 `json:"drop"`
}

// faultMesh returns the mesh's fault controls, answering 501 itself when
// it has none.
func (s *Server) faultMesh(w http.ResponseWriter) (FaultMesh, bool) {
	fm, ok := s.mesh.(FaultMesh)
	if !ok {
		api.WriteError(w, http.StatusNotImplemented, "this mesh takes no faults from the dashboard")
	}
	return fm, ok
}

// faultsView reads the mesh's faults and the cut links they make.
func (s *Server) faultsView(ctx context.Context) FaultsView {
	v := FaultsView{Nodes: []NodeFaults{}, CutLinks: [][2]int{}}
	fm, ok := s.mesh.(FaultMesh)
	if !ok {
		v.Why = "this mesh takes no faults from the dashboard"
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, faultStatusWait)
	defer cancel()
	nodes, err := fm.Faults(ctx)
	if err != nil {
		v.Why = err.Error()
		return v
	}
	v.Available = true
	v.Nodes = nodes
	cut := make(map[[2]int]bool)
	for _, n := range nodes {
		if n.Cut == nil {
			n.Cut = []int{}
		}
		v.Loss = max(v.Loss, n.Drop)
		for _, j := range n.Cut {
			cut[[2]int{min(n.Index, j), max(n.Index, j)}] = true
		}
	}
	for i := range v.Nodes {
		if v.Nodes[i].Cut == nil {
			v.Nodes[i].Cut = []int{}
		}
	}
	for _, l := range links(s.mesh.Nodes()) {
		if cut[l] {
			v.CutLinks = append(v.CutLinks, l)
		}
	}
	return v
}

func (s *Server) getFaults(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.faultsView(r.Context()))
}

// faultDone answers a fault route: its error, or the faults now in force,
// after telling every page to look again.
func (s *Server) faultDone(w http.ResponseWriter, r *http.Request, action string, index int, err error) {
	what := action
	if index >= 0 {
		what = fmt.Sprintf("%s node %d", action, index)
	}
	if err != nil {
		status := http.StatusConflict
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			status = http.StatusNotImplemented
		case errors.Is(err, ErrNoSuchNode):
			status = http.StatusNotFound
		}
		api.WriteError(w, status, fmt.Sprintf("%s: %v", what, err))
		return
	}
	s.log.Info("dashboard: " + what)
	ev := map[string]any{"type": "control", "action": action}
	if index >= 0 {
		ev["index"] = index
	}
	s.hub.send(mustJSON(ev))
	api.WriteJSON(w, http.StatusOK, s.faultsView(r.Context()))
}

func (s *Server) split(w http.ResponseWriter, r *http.Request) {
	fm, ok := s.faultMesh(w)
	if !ok {
		return
	}
	var req SplitRequest
	if !api.DecodeJSON(w, r, maxFaultRequest, &req) {
		return
	}
	n := len(s.mesh.Nodes())
	if len(req.A) == 0 && len(req.B) == 0 {
		for i := range n {
			if i < n/2 {
				req.A = append(req.A, i)
			} else {
				req.B = append(req.B, i)
			}
		}
	}
	switch {
	case len(req.A) == 0 || len(req.B) == 0:
		api.WriteError(w, http.StatusBadRequest, `fields "a" and "b": give both sides of the split, or neither for halves`)
		return
	case n < 2:
		api.WriteError(w, http.StatusConflict, "a mesh of one node has nothing to split")
		return
	}
	for _, side := range []struct {
		name string
		set  []int
	}{{"a", req.A}, {"b", req.B}} {
		for _, i := range side.set {
			if i < 0 || i >= n {
				api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("field %q: node %d: the mesh has nodes 0 to %d", side.name, i, n-1))
				return
			}
			if side.name == "a" && slices.Contains(req.B, i) {
				api.WriteError(w, http.StatusBadRequest, fmt.Sprintf(`fields "a" and "b": node %d is on both sides`, i))
				return
			}
		}
	}
	s.faultDone(w, r, "split", -1, fm.Split(r.Context(), req.A, req.B))
}

func (s *Server) heal(w http.ResponseWriter, r *http.Request) {
	fm, ok := s.faultMesh(w)
	if !ok {
		return
	}
	s.faultDone(w, r, "heal", -1, fm.Heal(r.Context()))
}

func (s *Server) loss(w http.ResponseWriter, r *http.Request) {
	fm, ok := s.faultMesh(w)
	if !ok {
		return
	}
	var req LossRequest
	if !api.DecodeJSON(w, r, maxFaultRequest, &req) {
		return
	}
	switch {
	case req.Drop == nil:
		api.WriteError(w, http.StatusBadRequest, `missing field "drop": the probability, 0 to 0.5, that a frame is dropped`)
		return
	case !(*req.Drop >= 0 && *req.Drop <= MaxLoss): // also refuses NaN
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf(`field "drop": %v is outside 0 to %v`, *req.Drop, MaxLoss))
		return
	}
	s.faultDone(w, r, "loss", -1, fm.Loss(r.Context(), *req.Drop))
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.nodeFault(w, r, "pause", func(fm FaultMesh) func(context.Context, int) error { return fm.Pause })
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	s.nodeFault(w, r, "resume", func(fm FaultMesh) func(context.Context, int) error { return fm.Resume })
}

func (s *Server) nodeFault(w http.ResponseWriter, r *http.Request, verb string, pick func(FaultMesh) func(context.Context, int) error) {
	fm, ok := s.faultMesh(w)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("node index %q: want a whole number", r.PathValue("index")))
		return
	}
	if _, ok := s.node(w, i); !ok {
		return
	}
	s.faultDone(w, r, verb, i, pick(fm)(r.Context(), i))
}
