package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gossipmesh/api"
	"gossipmesh/fault"
	"gossipmesh/wire"
)

// This file is `mesh chaos`: faults injected into a mesh that `mesh up`
// runs, found through its state file. Link faults (loss, delay, cuts) are
// each node's own fault plan, set through its API (PUT /faults) and read
// back (GET /faults) before a verb reports success. Process faults are
// signals: SIGKILL, SIGSTOP and SIGCONT go to PIDs the state file proves
// to be the mesh's (see SignalProven), and a restart is asked of the
// launcher, which holds the slot's listeners, over its control socket.

// ControlPath is where the launcher of the mesh recorded in the state file
// statePath listens for control requests: beside it, with the extension
// .sock (.mesh/cluster.sock for .mesh/cluster.json).
func ControlPath(statePath string) string {
	return strings.TrimSuffix(statePath, filepath.Ext(statePath)) + ".sock"
}

// ServeControl answers control requests for c on a Unix socket at path,
// until the returned stop is called:
//
//	POST /nodes/{index}/restart   start node index again (same id and ports)
//
// A Unix socket rather than a TCP port: no web page can reach it, and its
// file mode (0600) keeps other users out. A stale socket file at path is
// replaced; the caller holds the state file's lock (LockState), so no
// other launcher owns it.
func (c *Cluster) ServeControl(path string) (stop func() error, err error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nodes/{index}/restart", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("index"))
		if err != nil || i < 0 || i >= len(c.Nodes()) {
			api.WriteError(w, http.StatusNotFound, fmt.Sprintf("no node %q", r.PathValue("index")))
			return
		}
		if err := c.restartSlot(r.Context(), i); err != nil {
			api.WriteError(w, http.StatusConflict, err.Error())
			return
		}
		api.WriteJSON(w, http.StatusOK, c.Nodes()[i].Member)
	})
	srv := &http.Server{Handler: api.JSONErrors(mux), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() error {
		err := srv.Close()
		<-done
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return err
	}, nil
}

// RestartNode is what the control socket does for a restart, for a
// caller in the launcher's own process (the dashboard): node i starts
// again with its id and ports, and RestartNode returns once it answers,
// without waiting for a mesh that faults keep from being ready.
func (c *Cluster) RestartNode(ctx context.Context, i int) error { return c.restartSlot(ctx, i) }

// restartSlot starts a new process in node i's slot, killing the old one
// if it still runs, and waits (within StartTimeout) until the new process
// answers with the slot's id. Unlike Restart it does not wait for the whole
// mesh to be ready: under chaos other nodes may be paused or cut off, and
// the restarted node redials its peers by itself.
func (c *Cluster) restartSlot(ctx context.Context, i int) error {
	if err := c.respawn(i); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	want := c.Nodes()[i].ID
	for {
		// Only this node's exit matters: under chaos others may be down.
		if n := c.Nodes()[i]; !n.Running {
			return fmt.Errorf("cluster: node %d (pid %d) exited: %s%s", i, n.PID, n.ExitErr, logTail(n.LogPath, 2048))
		}
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		h, err := c.Client(i).Health(hctx)
		hcancel()
		if err == nil && h.ID == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: node %d restarted but not answering: %v", i, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NodeState is what `mesh chaos` knows of a node's process.
type NodeState string

// The states of a node's process.
const (
	StateRunning NodeState = "running"
	StatePaused  NodeState = "paused" // stopped by SIGSTOP
	StateExited  NodeState = "exited" // killed, crashed or not yet restarted
)

// Chaos injects faults into the mesh recorded in a state file. Every verb
// returns once its change is in force on every node concerned: plans read
// back from the nodes, processes seen stopped, gone or answering again.
// Nodes that are not running are skipped by the plan verbs, with a note to
// Notes; a paused node cannot take a new plan (its API does not answer),
// so a plan verb that concerns one fails, and says to resume it.
type Chaos struct {
	path  string
	state State
	mesh  *Mesh
	// Timeout bounds how long a verb waits for its change to be in force
	// (a restart gets the launcher's own start timeout on top). Default
	// 10 s.
	Timeout time.Duration
	// Notes receives one line per node a verb skipped, and why. Default
	// io.Discard.
	Notes io.Writer
}

// OpenChaos reads the state file at path.
func OpenChaos(path string) (*Chaos, error) {
	s, err := ReadState(path)
	if err != nil {
		return nil, err
	}
	m, err := NewMesh(s.Members(), nil)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &Chaos{path: path, state: s, mesh: m, Timeout: 10 * time.Second, Notes: io.Discard}, nil
}

// Len is the number of nodes in the mesh.
func (ch *Chaos) Len() int { return len(ch.state.Nodes) }

// reload reads the state file again, for the PIDs that run now.
func (ch *Chaos) reload() error {
	s, err := ReadState(ch.path)
	if err != nil {
		return err
	}
	m, err := NewMesh(s.Members(), nil)
	if err != nil {
		return fmt.Errorf("state file %s: %w", ch.path, err)
	}
	ch.state, ch.mesh = s, m
	return nil
}

// procState says whether node i runs, is paused or has exited, from the
// state file and /proc.
func (ch *Chaos) procState(i int) NodeState {
	n := ch.state.Nodes[i]
	if !n.Running || ch.state.IdentifyNode(i) != nil {
		return StateExited
	}
	if stopped, err := procStopped(n.PID); err == nil && stopped {
		return StatePaused
	}
	return StateRunning
}

func (ch *Chaos) notef(format string, args ...any) {
	if ch.Notes != nil {
		fmt.Fprintf(ch.Notes, format+"\n", args...)
	}
}

func (ch *Chaos) id(i int) wire.NodeID {
	id, _ := wire.ParseNodeID(ch.state.Nodes[i].ID)
	return id
}

// call runs one API call on node i with a bound of its own, so that one
// node that does not answer cannot hold a verb for ever.
func (ch *Chaos) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, min(ch.Timeout, 5*time.Second))
	defer cancel()
	return f(ctx)
}

// updatePlans changes the plan of every node of set with edit, and checks
// that each node then reports the changed plan.
func (ch *Chaos) updatePlans(ctx context.Context, set []int, edit func(i int, p *fault.Plan)) error {
	var todo []int
	for _, i := range set {
		switch ch.procState(i) {
		case StateExited:
			ch.notef("node %d is not running: its plan is not set (a restarted node starts with none)", i)
		case StatePaused:
			return fmt.Errorf("node %d is paused, so it cannot take a new plan: resume it first (mesh chaos resume %d)", i, i)
		default:
			todo = append(todo, i)
		}
	}
	for _, i := range todo {
		c := ch.mesh.Client(i)
		var p fault.Plan
		if err := ch.call(ctx, func(ctx context.Context) (err error) { p, err = c.Faults(ctx); return err }); err != nil {
			return fmt.Errorf("node %d: reading its plan: %w", i, err)
		}
		want := p.Clone()
		edit(i, want)
		if err := ch.call(ctx, func(ctx context.Context) error { _, err := c.SetFaults(ctx, *want); return err }); err != nil {
			return fmt.Errorf("node %d: setting its plan: %w", i, err)
		}
		var got fault.Plan
		if err := ch.call(ctx, func(ctx context.Context) (err error) { got, err = c.Faults(ctx); return err }); err != nil {
			return fmt.Errorf("node %d: reading back its plan: %w", i, err)
		}
		if !samePlan(got, *want) {
			return fmt.Errorf("node %d: holds %s after the change, want %s", i, planString(got), planString(*want))
		}
	}
	return nil
}

func samePlan(a, b fault.Plan) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func planString(p fault.Plan) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// Split cuts every link between the nodes of a and those of b: each node
// of a gets b's ids in its cut list, and each node of b gets a's. The sets
// must not overlap.
func (ch *Chaos) Split(ctx context.Context, a, b []int) error {
	for _, i := range a {
		if slices.Contains(b, i) {
			return fmt.Errorf("node %d is on both sides of the split", i)
		}
	}
	cutAll := func(other []int) func(int, *fault.Plan) {
		return func(_ int, p *fault.Plan) {
			if p.Cut == nil {
				p.Cut = make(map[wire.NodeID]bool)
			}
			for _, j := range other {
				p.Cut[ch.id(j)] = true
			}
		}
	}
	if err := ch.updatePlans(ctx, a, cutAll(b)); err != nil {
		return err
	}
	return ch.updatePlans(ctx, b, cutAll(a))
}

// Heal removes every cut from every node; loss and delay stay.
func (ch *Chaos) Heal(ctx context.Context) error {
	return ch.updatePlans(ctx, ch.all(), func(_ int, p *fault.Plan) { p.Cut = nil })
}

// Loss sets the drop probability on every link from the nodes of set.
func (ch *Chaos) Loss(ctx context.Context, prob float64, set []int) error {
	r := fault.Rule{Drop: prob}
	if err := (&fault.Plan{Rule: r}).Validate(); err != nil {
		return err
	}
	return ch.updatePlans(ctx, set, func(_ int, p *fault.Plan) { p.Drop = prob })
}

// Delay sets the added delay and jitter on every link from the nodes of
// set.
func (ch *Chaos) Delay(ctx context.Context, delay, jitter time.Duration, set []int) error {
	if err := (&fault.Plan{Rule: fault.Rule{Delay: delay, Jitter: jitter}}).Validate(); err != nil {
		return err
	}
	return ch.updatePlans(ctx, set, func(_ int, p *fault.Plan) { p.Delay, p.Jitter = delay, jitter })
}

func (ch *Chaos) all() []int {
	out := make([]int, ch.Len())
	for i := range out {
		out[i] = i
	}
	return out
}

// Kill sends SIGKILL to the nodes of set, each proven to be the recorded
// process first, and waits until each is gone and, while the launcher
// runs, until the state file records it as exited (what `mesh status`
// reports).
func (ch *Chaos) Kill(ctx context.Context, set []int) error {
	var killed []int
	for _, i := range set {
		n := ch.state.Nodes[i]
		if ch.procState(i) == StateExited {
			ch.notef("node %d is not running", i)
			continue
		}
		if err := SignalProven(n.PID, n.PIDStart, n.Exe, "node", syscall.SIGKILL); err != nil {
			return fmt.Errorf("node %d: not killed: %w", i, err)
		}
		killed = append(killed, i)
	}
	deadline := time.Now().Add(ch.Timeout)
	for _, i := range killed {
		n := ch.state.Nodes[i]
		if err := waitUntil(ctx, deadline, func() bool { return !Alive(n.PID, n.PIDStart) }); err != nil {
			return fmt.Errorf("node %d (pid %d): still running after SIGKILL: %w", i, n.PID, err)
		}
	}
	if len(killed) == 0 {
		return nil
	}
	if !ch.state.LauncherAlive() {
		ch.notef("the launcher (pid %d) is not running, so the state file will not record the kill", ch.state.LauncherPID)
		return nil
	}
	return waitUntil(ctx, deadline, func() bool {
		s, err := ReadState(ch.path)
		if err != nil {
			return false
		}
		for _, i := range killed {
			if s.Nodes[i].Running && s.Nodes[i].PID == ch.state.Nodes[i].PID {
				return false
			}
		}
		return true
	})
}

// Restart asks the launcher to start the nodes of set again, each with
// its id and ports, and returns once each answers. A node that runs is
// killed first. A restarted node starts with no fault plan.
func (ch *Chaos) Restart(ctx context.Context, set []int) error {
	if err := ch.state.IdentifyLauncher(); err != nil {
		return fmt.Errorf("the launcher is not running (%v): only `mesh up` can restart its nodes", err)
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ControlPath(ch.path))
		},
	}}
	defer hc.CloseIdleConnections()
	for _, i := range set {
		rctx, cancel := context.WithTimeout(ctx, ch.Timeout+time.Minute)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, "http://launcher/nodes/"+strconv.Itoa(i)+"/restart", nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			cancel()
			return fmt.Errorf("node %d: asking the launcher at %s: %w", i, ControlPath(ch.path), err)
		}
		var e api.Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusOK {
			_ = json.Unmarshal(b, &e)
			return fmt.Errorf("node %d: the launcher did not restart it: %d %s", i, resp.StatusCode, e.Error)
		}
	}
	return ch.reload()
}

// Pause stops the nodes of set with SIGSTOP and waits until each is seen
// stopped. A paused node keeps its connections but reads and writes
// nothing: a hung peer.
func (ch *Chaos) Pause(ctx context.Context, set []int) error {
	return ch.signalAll(ctx, set, syscall.SIGSTOP, true)
}

// Resume continues paused nodes of set with SIGCONT and waits until each
// runs again.
func (ch *Chaos) Resume(ctx context.Context, set []int) error {
	return ch.signalAll(ctx, set, syscall.SIGCONT, false)
}

func (ch *Chaos) signalAll(ctx context.Context, set []int, sig syscall.Signal, stop bool) error {
	var done []int
	for _, i := range set {
		n := ch.state.Nodes[i]
		switch st := ch.procState(i); {
		case st == StateExited:
			ch.notef("node %d is not running", i)
			continue
		case (st == StatePaused) == stop:
			continue // already as asked
		}
		if err := SignalProven(n.PID, n.PIDStart, n.Exe, "node", sig); err != nil {
			return fmt.Errorf("node %d: not signalled: %w", i, err)
		}
		done = append(done, i)
	}
	deadline := time.Now().Add(ch.Timeout)
	for _, i := range done {
		pid := ch.state.Nodes[i].PID
		err := waitUntil(ctx, deadline, func() bool {
			stopped, err := procStopped(pid)
			return err == nil && stopped == stop
		})
		if err != nil {
			want := "running again"
			if stop {
				want = "stopped"
			}
			return fmt.Errorf("node %d (pid %d): not %s: %w", i, pid, want, err)
		}
	}
	return nil
}

// Clear undoes every fault: paused nodes are resumed, exited nodes
// restarted (when the launcher runs), every node's plan cleared and every
// adversary turned honest. The mesh is then as `mesh up` started it, less
// what its nodes missed and its adversaries.
func (ch *Chaos) Clear(ctx context.Context) error {
	var paused, exited []int
	for i := range ch.state.Nodes {
		switch ch.procState(i) {
		case StatePaused:
			paused = append(paused, i)
		case StateExited:
			exited = append(exited, i)
		}
	}
	if err := ch.Resume(ctx, paused); err != nil {
		return err
	}
	if len(exited) > 0 {
		if ch.state.LauncherAlive() {
			if err := ch.Restart(ctx, exited); err != nil {
				return err
			}
		} else {
			ch.notef("nodes %v are not running and the launcher is gone: not restarted", exited)
		}
	}
	if err := ch.updatePlans(ctx, ch.all(), func(_ int, p *fault.Plan) { *p = fault.Plan{} }); err != nil {
		return err
	}
	return ch.Adversary(ctx, ch.all(), "")
}

// ChaosNode is one node in `mesh chaos status`.
type ChaosNode struct {
	Index int       `json:"index"`
	ID    string    `json:"id"`
	PID   int       `json:"pid"`
	State NodeState `json:"state"`
	// Faults is the plan the node reports; absent when it did not answer.
	Faults *fault.Plan `json:"faults,omitempty"`
	// Cut is the plan's cut list as node indices.
	Cut []int `json:"cut"`
	// Adversary is the adversary mode the node runs, null when it is
	// honest or did not answer.
	Adversary *string `json:"adversary"`
	// Error says why the plan could not be read.
	Error string `json:"error,omitempty"`
}

// Status reports every node's process state and the plan it holds. A
// paused or exited node is not asked.
func (ch *Chaos) Status(ctx context.Context) []ChaosNode {
	out := make([]ChaosNode, ch.Len())
	for i, n := range ch.state.Nodes {
		cn := ChaosNode{Index: i, ID: n.ID, PID: n.PID, State: ch.procState(i), Cut: []int{}}
		if cn.State == StateRunning {
			var p fault.Plan
			err := ch.call(ctx, func(ctx context.Context) (err error) { p, err = ch.mesh.Client(i).Faults(ctx); return err })
			if err != nil {
				cn.Error = err.Error()
			} else {
				cn.Faults = &p
				for _, id := range p.CutIDs() {
					if j, ok := ch.mesh.IndexOf(id.String()); ok {
						cn.Cut = append(cn.Cut, j)
					}
				}
				slices.Sort(cn.Cut)
			}
			var a api.Adversary
			if err := ch.call(ctx, func(ctx context.Context) (err error) { a, err = ch.mesh.Client(i).Adversary(ctx); return err }); err == nil && !a.Honest() {
				cn.Adversary = &a.Mode
			}
		}
		out[i] = cn
	}
	return out
}

// waitUntil polls cond every 10 ms until it holds, ctx ends or deadline
// passes.
func waitUntil(ctx context.Context, deadline time.Time, cond func() bool) error {
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
