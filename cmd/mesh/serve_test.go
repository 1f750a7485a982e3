package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/node"
)

// startServedNode runs one real node and its HTTP server, as `mesh node`
// does, with the given limits, until the test ends. It returns the HTTP
// address.
func startServedNode(t *testing.T, lim api.ServerLimits, hlim api.HandlerLimits) string {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPAddr = httpLn.Addr().String()
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveNodeWith(ctx, n, httpLn, cfg.Logger, lim, hlim) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveNode: %v", err)
		}
	})
	return httpLn.Addr().String()
}

// metric reads one unlabelled sample from a node's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNodeLoadEndsWithItsClient: over a real node's HTTP API, the rates
// that used to overflow the schedule are a 400 naming the field, and a
// load whose client goes away stops publishing.
func TestNodeLoadEndsWithItsClient(t *testing.T) {
	t.Parallel()
	addr := startServedNode(t, api.DefaultServerLimits(), api.DefaultHandlerLimits())
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, body := range []string{`{"count":100,"rate":1e308}`, `{"count":100,"rate":1e-300}`, `{"count":-1}`, `{"count":1,"size":1e9}`} {
		resp, err := hc.Post("http://"+addr+"/load", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST /load %s: %v", body, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("POST /load %s: %d %s, want a 400 JSON error", body, resp.StatusCode, b)
		}
	}
	if got := metric(t, addr, "gossipmesh_messages_published_total"); got != 0 {
		t.Fatalf("refused loads published %v messages", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := api.NewClient("http://"+addr, nil).Load(ctx, api.LoadRequest{Count: api.MaxLoadCount, Rate: 5000})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, addr, "gossipmesh_messages_published_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the load never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // the client goes away
	<-done
	// The node notices, and stops: the count settles well short of the
	// million asked for.
	var last float64 = -1
	for {
		got := metric(t, addr, "gossipmesh_messages_published_total")
		if got == last {
			if got >= api.MaxLoadCount {
				t.Fatalf("the load ran to its end (%v) after its client left", got)
			}
			t.Logf("load stopped after %v messages", got)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node still publishes after its client left: %v", got)
		}
		last = got
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNodeHTTPLimits: `mesh node`'s server cuts a trickled body, closes
// connections over its cap at once (and counts them in /metrics), and
// refuses event streams over its cap.
func TestNodeHTTPLimits(t *testing.T) {
	t.Parallel()
	lim := api.DefaultServerLimits()
	lim.ReadHeaderTimeout, lim.ReadTimeout = 300*time.Millisecond, 300*time.Millisecond
	lim.MaxConns = 4
	addr := startServedNode(t, lim, api.HandlerLimits{MaxSubscribers: 1})

	// A body trickled a byte at a time is cut at the read timeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n", addr)
	cut := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(cut) }()
	sent := 0
	for ; sent < 400; sent++ {
		if _, err := c.Write([]byte(" ")); err != nil {
			break
		}
		select {
		case <-cut:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	c.Close()
	if sent == 400 {
		t.Errorf("a body trickled over 20 s was read to its end")
	}

	// One event stream is the cap here: a second is a 503.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := api.NewClient("http://"+addr, nil).Events(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := api.NewClient("http://"+addr, nil).Events(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a second event stream: %v, want 503", err)
	}

	// Fill the rest of the connection cap with busy connections, each
	// waiting for a message that never comes, then knock. (Idle ones
	// would give up their places to the knocks.) A connection over the
	// cap is closed at once: its read ends in EOF, where a held one's
	// read times out.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for len(held) < lim.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		fmt.Fprintf(c, "GET /messages/%s?wait=1m HTTP/1.1\r\nHost: %s\r\n\r\n", strings.Repeat("ab", 16), addr)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			break // over the cap already: the stream holds a slot too
		}
	}
	knocks := 0
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := tryRequest(c, addr); err == nil {
			t.Errorf("a connection over the cap was served: %s", resp.Status)
		}
		c.Close()
		knocks++
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	cancel() // frees the stream's connection too
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots never freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := metric(t, addr, "gossipmesh_http_connections_refused_total"); got < float64(knocks) {
		t.Errorf("gossipmesh_http_connections_refused_total = %v, want at least %d", got, knocks)
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
