package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
)

// TestLoadBounds: every number of POST /load has a range, and a value
// outside it is a 400 that names the field, before the node does anything.
// 1e308 and 1e-300 are the rates that overflowed the schedule; NaN and
// Inf cannot be written in JSON, and 1e309 does not fit a float64.
func TestLoadBounds(t *testing.T) {
	t.Parallel()
	fake := newFake()
	srv, _ := newServerFor(t, fake)
	for _, tc := range []struct{ body, field string }{
		{`{"count":10,"rate":1e308}`, "rate"},
		{`{"count":10,"rate":1e-300}`, "rate"},
		{`{"count":10,"rate":-1}`, "rate"},
		{`{"count":10,"rate":1e309}`, "rate"},
		{`{"count":10,"rate":NaN}`, "invalid JSON"},
		{`{"count":10,"rate":Infinity}`, "invalid JSON"},
		{`{"count":10,"rate":"fast"}`, "rate"},
		{`{"count":0}`, "count"},
		{`{"count":-5}`, "count"},
		{`{"count":2000000}`, "count"},
		{`{"count":1e20}`, "count"},
		{`{"count":99999999999999999999}`, "count"},
		{`{"count":1,"size":-1}`, "size"},
		{`{"count":1,"size":17}`, "size"},
		{`{"count":1,"size":9223372036854775807}`, "size"},
	} {
		status, msg := send(t, "POST", srv.URL+"/load", "", tc.body, map[string]string{"Content-Type": "application/json"})
		if status != http.StatusBadRequest || !strings.Contains(msg, tc.field) {
			t.Errorf("POST /load %s: %d %q, want 400 naming %q", tc.body, status, msg, tc.field)
		}
	}
	if n := fake.loadCalls(); n != 0 {
		t.Errorf("%d out-of-range loads reached the node", n)
	}
	for _, ok := range []api.LoadRequest{{Count: 1}, {Count: 1, Rate: api.MinLoadRate}, {Count: api.MaxLoadCount, Rate: api.MaxLoadRate, Size: 16}} {
		if err := ok.Validate(16); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// testLimits are small limits, so that tests reach them quickly.
func testLimits() api.ServerLimits {
	l := api.DefaultServerLimits()
	l.ReadHeaderTimeout = 200 * time.Millisecond
	l.ReadTimeout = 300 * time.Millisecond
	l.WriteTimeout = 300 * time.Millisecond
	l.MaxConns = 3
	return l
}

// serveLimited serves h with lim on a loopback port until the test ends.
func serveLimited(t *testing.T, h http.Handler, lim api.ServerLimits) (string, *api.ConnLimiter) {
	t.Helper()
	if err := lim.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := api.LimitListener(ln, lim.MaxConns)
	srv := api.NewServer(h, lim, nil)
	cl.Track(srv)
	go srv.Serve(cl)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), cl
}

// TestTrickledBodyIsCut: a request body sent a byte at a time is cut off
// at the read timeout instead of holding the connection for as long as
// the client likes.
func TestTrickledBodyIsCut(t *testing.T) {
	t.Parallel()
	srv := api.NewHandler(newFake(), nil)
	addr, _ := serveLimited(t, srv, testLimits())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 200 // at one byte per 50 ms, 10 s: far past the 300 ms timeout
	fmt.Fprintf(conn, "POST /messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, n)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // an answer, then EOF
		close(closed)
	}()
	sent := 0
trickle:
	for ; sent < n; sent++ {
		if _, err := conn.Write([]byte(" ")); err != nil {
			break
		}
		select {
		case <-closed:
			break trickle
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-closed:
	default:
		t.Fatalf("the server still held the connection after all %d trickled bytes", n)
	}
	t.Logf("server cut the connection after %d of %d trickled bytes", sent, n)
}

// TestLongAnswersOutliveTimeouts: the read and write timeouts bound
// reading a request and each write, not the life of a stream or a wait.
func TestLongAnswersOutliveTimeouts(t *testing.T) {
	t.Parallel()
	lim := testLimits()
	h := http.NewServeMux()
	h.HandleFunc("POST /wait", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if !api.DecodeJSON(w, r, 1<<10, &v) {
			return
		}
		select {
		case <-time.After(4 * lim.ReadTimeout):
		case <-r.Context().Done():
			return // the test sees no answer
		}
		api.WriteJSON(w, 200, v)
	})
	h.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			select {
			case <-time.After(lim.ReadTimeout / 2):
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	addr, _ := serveLimited(t, h, lim)
	resp, err := http.Post("http://"+addr+"/wait", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatalf("a wait past the timeouts: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"a":1`) {
		t.Errorf("a wait past the timeouts: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines++
	}
	if lines != 8 {
		t.Errorf("a stream of 8 lines over 4 read timeouts delivered %d: %v", lines, sc.Err())
	}
}

// TestWriteTimeoutCutsNonReader: a client that stops reading an answer is
// cut off at the write timeout and the handler is let go.
func TestWriteTimeoutCutsNonReader(t *testing.T) {
	t.Parallel()
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	})
	addr, _ := serveLimited(t, h, testLimits())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr) // and never read
	select {
	case err := <-done:
		t.Logf("handler let go: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the handler still writes to a client that reads nothing")
	}
}

// TestConnectionCap: over MaxConns, while every connection is busy with a
// request, a new connection is closed at once and counted; a freed slot
// serves again.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	lim := testLimits()
	lim.ReadHeaderTimeout, lim.ReadTimeout = time.Minute, time.Minute // idle conns stay
	addr, cl := serveLimited(t, api.NewHandler(newFake(), nil), lim)
	var held []net.Conn
	for range lim.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Each held connection is served: a request on it is answered.
	for i, c := range held {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection %d: %v %v", i, resp, err)
		}
		// Start the next request and never finish its body: the
		// connection is busy with it, not idle, and cannot be evicted.
		fmt.Fprintf(c, "POST /messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"body\":", addr)
	}
	waitFor(t, "the held connections to be busy", func() bool { return cl.Idle() == 0 })
	for k := range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tryRequest(c, addr)
		c.Close()
		if err == nil {
			t.Fatalf("connection %d over the cap was served: %s", k+1, resp.Status)
		}
	}
	if got := cl.Refused(); got != 5 {
		t.Errorf("Refused() = %d, want 5", got)
	}
	held[0].Close()
	deadline := time.Now().Add(30 * time.Second)
	for cl.Open() >= lim.MaxConns {
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection never freed its slot: %d open", cl.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slot was freed: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestEventStreamCap: over MaxSubscribers, GET /events is a 503 JSON
// error; a stream that ends frees its slot.
func TestEventStreamCap(t *testing.T) {
	t.Parallel()
	node := streamingNode{fakeNode: newFake(), ch: make(chan api.Event)}
	srv := newHTTPServer(t, api.NewHandlerWith(node, nil, api.HandlerLimits{MaxSubscribers: 2}))
	c := api.NewClient(srv.URL, srv.Client())
	ctx1, cancel1 := context.WithCancel(t.Context())
	if _, err := c.Events(ctx1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Events(t.Context()); err != nil {
		t.Fatal(err)
	}
	status, msg := send(t, "GET", srv.URL+"/events", "", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(msg, "too many event streams") {
		t.Fatalf("third stream: %d %q, want 503", status, msg)
	}
	cancel1()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := c.Events(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream never freed its slot: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := (api.HandlerLimits{}).Validate(); err == nil {
		t.Error("HandlerLimits{} passed Validate")
	}
	if err := (api.ServerLimits{}).Validate(); err == nil {
		t.Error("ServerLimits{} passed Validate")
	}
}

// tryRequest sends GET /healthz on c and reads the answer: a connection
// closed over the cap gives an error (EOF or a reset), never an answer.
func tryRequest(c net.Conn, host string) (*http.Response, error) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestConnectionCapEvictsIdleFirst: at the cap, a new connection takes the
// place of the kept-alive connection idle the longest, so idle hoarders
// cannot lock an honest client out.
func TestConnectionCapEvictsIdleFirst(t *testing.T) {
	t.Parallel()
	lim := testLimits()
	lim.ReadHeaderTimeout, lim.ReadTimeout, lim.IdleTimeout = time.Minute, time.Minute, time.Minute
	addr, cl := serveLimited(t, api.NewHandler(newFake(), nil), lim)
	var held []net.Conn
	for i := range lim.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection %d: %v %v", i, resp, err)
		}
		held = append(held, c)
	}
	waitFor(t, "the held connections to be idle", func() bool { return cl.Idle() == lim.MaxConns })
	for k := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tryRequest(c, addr)
		c.Close()
		if err != nil {
			t.Fatalf("new connection %d at the cap, with idle ones to evict: %v", k+1, err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("new connection %d: %s", k+1, resp.Status)
		}
	}
	if got := cl.Evicted(); got < 1 {
		t.Errorf("Evicted() = %d, want at least 1", got)
	}
	if got := cl.Refused(); got != 0 {
		t.Errorf("Refused() = %d, want 0 while idle connections could make room", got)
	}
	// The first held connection, idle the longest, lost its place.
	_ = held[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := held[0].Read(make([]byte, 1)); err == nil {
		t.Error("the connection idle the longest is still open")
	}
}

// waitFor polls cond until it holds, or fails the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
