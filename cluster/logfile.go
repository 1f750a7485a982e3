package cluster

import (
	"fmt"
	"os"
	"sync"
)

// DefaultLogMaxBytes is Config.LogMaxBytes's default: 32 MiB per file, and
// with the one rotated file kept, at most 64 MiB of disk per node.
const DefaultLogMaxBytes = 32 << 20

// minLogMaxBytes is the smallest cap Validate accepts: below it a single
// crash trace would not fit in one file.
const minLogMaxBytes = 4 << 10

// logFile is a node slot's log: the launcher copies the child's stdout and
// stderr into it through a pipe, and it keeps the file under a size cap by
// rotation: when a write would take node-N.log past max, node-N.log is
// renamed to node-N.log.1 (replacing the older one) and a new node-N.log is
// started. A node that logs without end (a storm, a flood of warnings)
// therefore fills at most twice max bytes of disk.
//
// Write never fails: an error returned to the copying goroutine would close
// the pipe, and the node would die of SIGPIPE at its next log line. Errors
// are counted instead, and the next write tries again.
type logFile struct {
	path string
	max  int64

	mu      sync.Mutex
	f       *os.File // nil after an error or Close; reopened on demand
	size    int64
	errs    int64 // writes or opens that failed
	rotated int64 // rotations so far
	closed  bool
}

// openLogFile opens (appending to) the log at path, capped at max bytes.
func openLogFile(path string, max int64) (*logFile, error) {
	l := &logFile{path: path, max: max}
	if err := l.openLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) openLocked() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log %s: %w", l.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log %s: %w", l.path, err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// rotateLocked moves the current file to path.1 and starts a new one.
func (l *logFile) rotateLocked() error {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("log %s: %w", l.path, err)
	}
	l.rotated++
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("log %s: %w", l.path, err)
	}
	l.f, l.size = f, 0
	return nil
}

// Write appends p, rotating first if p would not fit in the current file;
// a p larger than the cap is split across files. It always reports
// len(p) written (see logFile).
func (l *logFile) Write(p []byte) (int, error) {
	n := len(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return n, nil
	}
	if l.f == nil {
		if err := l.openLocked(); err != nil {
			l.errs++
			return n, nil
		}
	}
	for len(p) > 0 {
		if l.size > 0 && l.size+int64(len(p)) > l.max {
			if err := l.rotateLocked(); err != nil {
				l.errs++
				return n, nil
			}
		}
		chunk := p[:min(int64(len(p)), l.max)]
		w, err := l.f.Write(chunk)
		l.size += int64(w)
		if err != nil {
			l.errs++
			return n, nil
		}
		p = p[len(chunk):]
	}
	return n, nil
}

// Close closes the file; later writes are dropped.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
