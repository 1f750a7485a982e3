package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultStatePath is where `mesh up` records the running mesh for
// publish, status and down.
const DefaultStatePath = ".mesh/cluster.json"

// StateVersion is the state file's format version. Version 2 records each
// process's executable and whether each node runs, and is rewritten as
// nodes exit and restart; `mesh down` refuses a version 1 file, which
// cannot prove which processes are the mesh's.
const StateVersion = 2

// State is the state file: everything the other subcommands need to find
// and stop a mesh that `mesh up` is running.
type State struct {
	Version int `json:"version"`
	// LauncherPID is the `mesh up` process; `mesh down` signals it.
	LauncherPID int `json:"launcher_pid"`
	// LauncherStart is the launcher's /proc start time, so that down never
	// signals a later process that reuses the PID.
	LauncherStart uint64 `json:"launcher_start"`
	// LauncherExe is the launcher's executable (/proc/PID/exe): with the
	// start time and the `up` subcommand, what proves a live PID is the
	// launcher before down signals it.
	LauncherExe string    `json:"launcher_exe"`
	StartedAt   time.Time `json:"started_at"`
	// UpdatedAt is when the launcher last rewrote the file: at start, and
	// whenever a node's process exits or is restarted.
	UpdatedAt time.Time   `json:"updated_at"`
	Seed      uint64      `json:"seed"`
	Peers     int         `json:"peers"`
	Strategy  string      `json:"strategy"`
	Fanout    int         `json:"fanout"`
	LogDir    string      `json:"log_dir,omitempty"`
	Nodes     []StateNode `json:"nodes"`
}

// StateNode is one node in the state file.
type StateNode struct {
	Member
	// PIDStart is the node's /proc start time (see LauncherStart).
	PIDStart uint64 `json:"pid_start"`
	// Exe is the node's executable (see LauncherExe).
	Exe string `json:"exe"`
	// Running is false once the node's process has exited (killed from
	// the dashboard, or crashed) and until it is restarted.
	Running bool `json:"running"`
	// Exited says how the last process ended, while Running is false.
	Exited string `json:"exited,omitempty"`
	// Chosen lists the nodes this node dials.
	Chosen []int `json:"chosen"`
	// Log is the file holding the node's output.
	Log string `json:"log,omitempty"`
	// Adversary is the mode the node was launched with (`mesh up
	// --adversaries`), absent for an honest node; `mesh status` asks the
	// node what is in force now.
	Adversary string `json:"adversary,omitempty"`
}

// Members returns the nodes as Members, for NewMesh.
func (s State) Members() []Member {
	out := make([]Member, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = n.Member
	}
	return out
}

// State describes the running cluster for the state file, with
// launcherPID as the process to signal to stop it.
func (c *Cluster) State(launcherPID int) State {
	c.stateMu.Lock()
	started := c.stateStarted
	c.stateMu.Unlock()
	return c.state(launcherPID, started)
}

// state is State with the start time given; it takes c.mu, never
// c.stateMu.
func (c *Cluster) state(launcherPID int, started time.Time) State {
	if started.IsZero() {
		started = time.Now().UTC()
	}
	s := State{
		Version:     StateVersion,
		LauncherPID: launcherPID,
		StartedAt:   started,
		UpdatedAt:   time.Now().UTC(),
		Seed:        c.cfg.Seed,
		Peers:       c.cfg.Peers,
		Strategy:    string(c.cfg.Strategy),
		Fanout:      c.cfg.Fanout,
	}
	s.LauncherStart, _, _ = ProcStart(launcherPID)
	s.LauncherExe, _ = ProcExe(launcherPID)
	if !c.tempLogs {
		s.LogDir = c.logDir
	}
	for _, n := range c.Nodes() {
		sn := StateNode{Member: n.Member, PIDStart: n.PIDStart, Exe: n.Exe, Chosen: n.Chosen, Running: n.Running, Adversary: n.Adversary}
		if !n.Running {
			sn.Exited = n.ExitErr
			if sn.Exited == "" {
				sn.Exited = "exit status 0"
			}
		}
		if !c.tempLogs {
			sn.Log = n.LogPath
		}
		s.Nodes = append(s.Nodes, sn)
	}
	return s
}

// TrackState writes the state file at path now and again whenever a
// node's process exits or is restarted, so that status, publish and down
// see the PIDs that run now, never those of processes that are gone. Stop
// ends the tracking and removes the file, unless another launcher has since
// replaced it. Each write is atomic (see WriteState). launcherPID is the
// process that down signals to stop the mesh.
func (c *Cluster) TrackState(path string, launcherPID int) error {
	c.stateMu.Lock()
	if c.stateStarted.IsZero() {
		c.stateStarted = time.Now().UTC()
	}
	c.statePath, c.statePID = path, launcherPID
	c.stateMu.Unlock()
	return c.writeTrackedState()
}

// StatePath is the state file TrackState writes, or "" when the cluster
// is not tracked: the dashboard opens it with OpenChaos to inject the
// same faults as `mesh chaos`.
func (c *Cluster) StatePath() string {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.statePath
}

// writeTrackedState rewrites the tracked state file, if any, from the
// cluster as it is now. Writes are serialised, and each one snapshots the
// cluster after taking its turn, so the last write is always the newest.
func (c *Cluster) writeTrackedState() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.statePath == "" {
		return nil
	}
	c.mu.Lock()
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return nil
	}
	err := WriteState(c.statePath, c.state(c.statePID, c.stateStarted))
	c.stateErr = err
	return err
}

// untrackState ends the tracking and removes the state file if it is
// still this launcher's.
func (c *Cluster) untrackState() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	path, pid := c.statePath, c.statePID
	c.statePath = ""
	if path == "" {
		return nil
	}
	if s, err := ReadState(path); err == nil && s.LauncherPID == pid {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state file: %w", err)
		}
	}
	return nil
}

// WriteState writes s to path atomically (a temporary file renamed into
// place), creating the directory: a reader never sees half a file.
func WriteState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".cluster-*.json")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// ErrNoState is what ReadState wraps when there is no state file: no mesh
// is up (or it was started with another --state).
var ErrNoState = errors.New("no running mesh recorded (start one with `mesh up`)")

// ReadState reads and checks the state file at path.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("%s: %w", path, ErrNoState)
	}
	if err != nil {
		return s, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file %s: %w", path, err)
	}
	if s.Version != StateVersion {
		return s, fmt.Errorf("state file %s: format version %d, this mesh reads version %d (the file was written by another version of mesh)", path, s.Version, StateVersion)
	}
	if len(s.Nodes) == 0 {
		return s, fmt.Errorf("state file %s: no nodes", path)
	}
	for i, n := range s.Nodes {
		if n.Index != i {
			return s, fmt.Errorf("state file %s: node %d has index %d", path, i, n.Index)
		}
	}
	return s, nil
}

// LauncherAlive reports whether the launcher recorded in s still runs: a
// live process proven to be it (see Identify).
func (s State) LauncherAlive() bool { return s.IdentifyLauncher() == nil }

// IdentifyLauncher proves that the recorded launcher runs (see Identify).
func (s State) IdentifyLauncher() error {
	return Identify(s.LauncherPID, s.LauncherStart, s.LauncherExe, "up")
}

// IdentifyNode proves that node i's recorded process runs (see Identify).
func (s State) IdentifyNode(i int) error {
	n := s.Nodes[i]
	return Identify(n.PID, n.PIDStart, n.Exe, "node")
}

// ErrNotRunning is what Identify wraps when no live process holds a
// recorded PID: that process has ended, and there is nothing to signal.
var ErrNotRunning = errors.New("not running")
