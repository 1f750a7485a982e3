package node_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gossipmesh/node"
)

// blockingWriter blocks every Write until released, like a pipe nobody
// reads.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestLogWriterNeverBlocksAndCountsDrops(t *testing.T) {
	t.Parallel()
	dst := &blockingWriter{release: make(chan struct{})}
	lw := node.NewLogWriter(dst, 100)
	// The destination is stuck: these writes must all return at once,
	// keeping what fits and dropping the rest.
	for i := range 50 {
		if _, err := fmt.Fprintf(lw, "line %02d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	close(dst.release)
	lw.Close()
	out := dst.buf.String()
	if !strings.Contains(out, "line 00\n") {
		t.Errorf("the first line is missing:\n%s", out)
	}
	kept := strings.Count(out, "line ")
	if !strings.Contains(out, fmt.Sprintf("log: %d lines dropped", 50-kept)) {
		t.Errorf("kept %d lines but no matching drop notice:\n%s", kept, out)
	}
	if kept == 50 {
		t.Error("nothing was dropped although the destination was stuck and the buffer holds 100 bytes")
	}
}

func TestLogWriterKeepsOrderAndFlushesOnClose(t *testing.T) {
	t.Parallel()
	var dst bytes.Buffer
	lw := node.NewLogWriter(&dst, 1<<20)
	var want strings.Builder
	for i := range 1000 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		lw.Write([]byte(line))
	}
	lw.Close()
	if dst.String() != want.String() {
		t.Errorf("lines lost or reordered: got %d bytes, want %d", dst.Len(), want.Len())
	}
}
