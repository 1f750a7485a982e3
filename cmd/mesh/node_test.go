package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/identity"
)

func TestNodeRejectsBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "--strategy", "gossipsub"}, "strategy"},
		{[]string{"node", "--id", "00000000000000aa"}, "--id is gone"},
		{[]string{"node", "--key", "/nonexistent/node.key"}, "--key"},
		{[]string{"node", "--peers", "-1"}, "peers"},
		{[]string{"node", "--fanout", "0"}, "fanout"},
		{[]string{"node", "--max-body", "-1"}, "max body"},
		{[]string{"node", "--receipts", "0"}, "receipts"},
		{[]string{"node", "--log-format", "xml"}, "log-format"},
		{[]string{"node", "--log-level", "loud"}, "log-level"},
		{[]string{"node", "--candidates", "nohostport"}, "candidates"},
		{[]string{"node", "--listen-fd", "1"}, "listen-fd"},
		{[]string{"node", "stray"}, "unexpected"},
		{[]string{"node", "--bogus"}, "bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
	}
}

func TestDefaultHTTPAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7001": "127.0.0.1:8001",
		"[::1]:9000":     "[::1]:10000",
		"0.0.0.0:65000":  "",
	} {
		got, err := defaultHTTPAddr(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("defaultHTTPAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the node's log writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inherit returns a fresh descriptor for a listening socket, as a launcher
// would pass one down; runNode adopts (and closes) it.
func inherit(t *testing.T) (fd int, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err = syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd, ln.Addr().String()
}

// TestNodeServesAndStops runs `mesh node` twice in-process, one on
// inherited listeners and one dialing it, publishes through the HTTP API,
// and stops both with their context, as SIGTERM would.
func TestNodeServesAndStops(t *testing.T) {
	gossipFD, gossipAddr := inherit(t)
	httpFD, httpAddr := inherit(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errA, errB error
	var wg sync.WaitGroup
	logsA, logsB := &syncBuffer{}, &syncBuffer{}
	// A gets its key from a file; B keeps one in its data directory.
	keyA, err := identity.FromSeed(bytes.Repeat([]byte{0xaa}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "a.key")
	if err := keyA.Save(keyFile); err != nil {
		t.Fatal(err)
	}
	idA := keyA.ID().String()
	dataB := filepath.Join(t.TempDir(), "b")
	wg.Go(func() {
		errA = runNode(ctx, []string{"--listen-fd", strconv.Itoa(gossipFD), "--http-fd", strconv.Itoa(httpFD), "--key", keyFile, "--log-format", "json"}, io.Discard, logsA)
	})
	wg.Go(func() {
		errB = runNode(ctx, []string{"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--candidates", gossipAddr, "--data-dir", dataB}, io.Discard, logsB)
	})

	a := api.NewClient("http://"+httpAddr, http.DefaultClient)
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := a.Health(ctx)
		if err == nil && h.Peers == 1 {
			if h.ID != idA || h.GossipAddr != gossipAddr || h.HTTPAddr != httpAddr {
				t.Errorf("health %+v", h)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A never linked to B: %+v, %v\nA: %s\nB: %s", h, err, logsA, logsB)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// B's HTTP address is in its startup line, which B's log writer may
	// still hold for a few milliseconds.
	var m []string
	for m == nil {
		m = regexp.MustCompile(`http=http://(\S+)`).FindStringSubmatch(logsB.String())
		if m == nil && time.Now().After(deadline) {
			t.Fatalf("no http address in B's log:\n%s", logsB)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := api.NewClient("http://"+m[1], http.DefaultClient)
	pub, err := a.Publish(ctx, "through the API")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.Receipt(ctx, pub.ID, 10*time.Second)
	if err != nil || rc.Hop != 1 || rc.From != idA {
		t.Fatalf("receipt at B: %+v, %v", rc, err)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("gossipmesh_messages_published_total 1")) {
		t.Errorf("metrics lack the publish:\n%s", metrics)
	}

	cancel()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("shutdown: A %v, B %v", errA, errB)
	}
	if !strings.Contains(logsB.String(), "msg=delivered") || !strings.Contains(logsA.String(), `"msg":"published"`) {
		t.Errorf("receipt lines missing\nA: %s\nB: %s", logsA, logsB)
	}
	if !strings.Contains(logsA.String(), `"msg":"node stopped"`) {
		t.Errorf("A did not log its shutdown:\n%s", logsA)
	}
	// Each says at start which id it is and where its key lives; B made
	// its key in its data directory, and a restart there loads it.
	if want := fmt.Sprintf(`"msg":"identity","node":"%s","key":"%s","key_file":"loaded"`, idA, keyFile); !strings.Contains(logsA.String(), want) {
		t.Errorf("A's log lacks %s:\n%s", want, logsA)
	}
	keyB, err := identity.Load(filepath.Join(dataB, "node.key"))
	if err != nil {
		t.Fatalf("B's key in its data directory: %v", err)
	}
	if want := fmt.Sprintf("msg=identity node=%s key=%s key_file=created", keyB.ID(), filepath.Join(dataB, "node.key")); !strings.Contains(logsB.String(), want) {
		t.Errorf("B's log lacks %q:\n%s", want, logsB)
	}
	if st, err := os.Stat(dataB); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("B's data directory: %v, %v; want mode 0700", st, err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:7001": filepath.Join(".mesh", "node-127.0.0.1-7001"),
		"[::1]:7002":     filepath.Join(".mesh", "node-__1-7002"),
	} {
		if got := defaultDataDir(addr); got != want {
			t.Errorf("defaultDataDir(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestNodeCPUProfile: `mesh node --cpuprofile` writes the profile of its
// run, with %p replaced by the process id, when the node stops. Not
// parallel: a process has one CPU profile at a time.
func TestNodeCPUProfile(t *testing.T) {
	httpFD, httpAddr := inherit(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runErr error
	var wg sync.WaitGroup
	logs := &syncBuffer{}
	wg.Go(func() {
		runErr = runNode(ctx, []string{"--listen", "127.0.0.1:0", "--http-fd", strconv.Itoa(httpFD),
			"--data-dir", filepath.Join(dir, "data"), "--cpuprofile", filepath.Join(dir, "node-%p.pprof")}, io.Discard, logs)
	})
	c := api.NewClient("http://"+httpAddr, http.DefaultClient)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Health(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never answered: %s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("node: %v\n%s", runErr, logs)
	}
	path := filepath.Join(dir, fmt.Sprintf("node-%d.pprof", os.Getpid()))
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("profile %s: %v, %v", path, st, err)
	}
}
