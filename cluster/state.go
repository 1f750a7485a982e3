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

// StateVersion is the state file's format version.
const StateVersion = 1

// State is the state file: everything the other subcommands need to find
// and stop a mesh that `mesh up` is running.
type State struct {
	Version int `json:"version"`
	// LauncherPID is the `mesh up` process; `mesh down` signals it.
	LauncherPID int `json:"launcher_pid"`
	// LauncherStart is the launcher's /proc start time, so that down never
	// signals a later process that reuses the PID.
	LauncherStart uint64      `json:"launcher_start"`
	StartedAt     time.Time   `json:"started_at"`
	Seed          uint64      `json:"seed"`
	Peers         int         `json:"peers"`
	Strategy      string      `json:"strategy"`
	Fanout        int         `json:"fanout"`
	LogDir        string      `json:"log_dir,omitempty"`
	Nodes         []StateNode `json:"nodes"`
}

// StateNode is one node in the state file.
type StateNode struct {
	Member
	// PIDStart is the node's /proc start time (see LauncherStart).
	PIDStart uint64 `json:"pid_start"`
	// Chosen lists the nodes this node dials.
	Chosen []int `json:"chosen"`
	// Log is the file holding the node's output.
	Log string `json:"log,omitempty"`
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
	s := State{
		Version:     StateVersion,
		LauncherPID: launcherPID,
		StartedAt:   time.Now().UTC(),
		Seed:        c.cfg.Seed,
		Peers:       c.cfg.Peers,
		Strategy:    string(c.cfg.Strategy),
		Fanout:      c.cfg.Fanout,
	}
	s.LauncherStart, _, _ = ProcStart(launcherPID)
	if !c.tempLogs {
		s.LogDir = c.logDir
	}
	for _, n := range c.Nodes() {
		sn := StateNode{Member: n.Member, PIDStart: n.PIDStart, Chosen: n.Chosen}
		if !c.tempLogs {
			sn.Log = n.LogPath
		}
		s.Nodes = append(s.Nodes, sn)
	}
	return s
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
		return s, fmt.Errorf("state file %s: version %d, want %d", path, s.Version, StateVersion)
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

// LauncherAlive reports whether the launcher recorded in s still runs.
func (s State) LauncherAlive() bool { return Alive(s.LauncherPID, s.LauncherStart) }
