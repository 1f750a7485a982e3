package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StateLock is the exclusive lock that one `mesh up` holds on its state
// file for as long as it runs: two launchers started at the same moment on
// one state file would otherwise both see no running mesh, both launch, and
// leave one mesh that `mesh down` cannot find. The lock is flock(2) on a
// file beside the state file (LockPath), so the kernel releases it however
// the launcher ends, even by SIGKILL, and a stale lock cannot exist.
type StateLock struct {
	f    *os.File
	path string
}

// ErrLocked is what LockState wraps when another process holds the lock.
var ErrLocked = errors.New("another `mesh up` is running on this state file")

// LockPath is the lock file of the state file at statePath: the state
// file's name plus ".lock". The lock file is left in place when the
// launcher ends: removing it could let two launchers lock two different
// files of the same name.
func LockPath(statePath string) string { return statePath + ".lock" }

// LockState takes the lock of the state file at statePath without waiting
// for its holder (beyond lockSettle), creating its directory and lock file
// as needed. It fails with ErrLocked if another launcher holds it. The descriptor is close-on-exec, so node
// processes never inherit the lock.
func LockState(statePath string) (*StateLock, error) {
	path := LockPath(statePath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	err = flockSettled(f)
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (state %s, lock %s held): stop it with `mesh down --state %s`, or choose another --state", ErrLocked, statePath, path, statePath)
		}
		return nil, fmt.Errorf("state lock %s: %w", path, err)
	}
	return &StateLock{f: f, path: path}, nil
}

// lockSettle is how long LockState keeps trying a lock that is held
// before it calls the state file taken. A lock this process released a
// moment ago can still be held by a child it is starting: fork copies every
// descriptor, the lock's too, and the kernel closes the close-on-exec ones
// only as the child's exec completes, just after the parent's fork call
// returns. In one process that launches meshes one after another (the tests
// do) the next LockState can land in that gap; with other goroutines
// starting processes, about one re-lock in five did, with no retry. A
// launcher that really holds the lock holds it for as long as it runs, so
// waiting this long first only delays the refusal.
const lockSettle = 250 * time.Millisecond

// flockSettled takes an exclusive flock on f without blocking, trying again
// every few milliseconds for up to lockSettle while it is held.
func flockSettled(f *os.File) error {
	deadline := time.Now().Add(lockSettle)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK) && time.Now().Before(deadline):
			time.Sleep(2 * time.Millisecond)
			continue
		}
		return err
	}
}

// Close releases the lock. It is safe to call more than once.
func (l *StateLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("state lock %s: %w", l.path, err)
	}
	return nil
}

// DefaultLogDir is where `mesh up` puts the nodes' logs unless told
// otherwise: beside the state file, named after it (.mesh/cluster.json →
// .mesh/cluster.logs), so that two meshes whose state files share a
// directory never write into the same node-N.log.
func DefaultLogDir(statePath string) string {
	base := filepath.Base(statePath)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return filepath.Join(filepath.Dir(statePath), base+".logs")
}
