package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
)

// raw does one request with exactly the headers given (and Host, if not
// empty) and returns the status and the JSON error.
func raw(t *testing.T, method, url, host, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// TestDashboardRefusesOtherSites sends the dashboard's kill and publish
// routes what another origin's page, a form, a no-cors fetch or a rebound
// DNS name can send, and checks that no node was killed and nothing was
// published; then that the page's own requests (token, JSON, same origin)
// work.
func TestDashboardRefusesOtherSites(t *testing.T) {
	t.Parallel()
	m := newFakeMesh(t, 3, ringLinks(3))
	base := dashboard(t, m, nil)
	host := strings.TrimPrefix(base, "http://")
	_, port, _ := net.SplitHostPort(host)
	tok := pageToken(t, base)
	js := "application/json"
	h := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	pub := `{"node":0,"body":"x"}`
	adv := `{"mode":"blackhole"}`
	for _, tc := range []struct {
		name, method, path, host, body string
		hdr                            map[string]string
		status                         int
	}{
		{"rebound name, page", "GET", "/", "evil.example:" + port, "", nil, 421},
		{"rebound name, nodes", "GET", "/api/nodes", "evil.example:" + port, "", nil, 421},
		{"rebound name, stream", "GET", "/api/events", "evil.example:" + port, "", nil, 421},
		{"rebound name, kill", "POST", "/api/nodes/1/kill", "evil.example:" + port, "", h("Content-Type", js, api.TokenHeader, tok), 421},
		{"no-cors kill", "POST", "/api/nodes/1/kill", "", "", h("Origin", "http://127.0.0.1:9", "Sec-Fetch-Site", "same-site"), 403},
		{"no-cors publish", "POST", "/api/publish", "", pub, h("Content-Type", "text/plain;charset=UTF-8", "Origin", "http://127.0.0.1:9", "Sec-Fetch-Site", "same-site"), 403},
		{"form publish", "POST", "/api/publish", "", pub, h("Content-Type", "application/x-www-form-urlencoded"), 415},
		{"text/plain kill", "POST", "/api/nodes/1/kill", "", "", h("Content-Type", "text/plain", api.TokenHeader, tok), 415},
		{"no token kill", "POST", "/api/nodes/1/kill", "", "", h("Content-Type", js), 403},
		{"wrong token kill", "POST", "/api/nodes/1/kill", "", "", h("Content-Type", js, api.TokenHeader, strings.Repeat("0", 64)), 403},
		{"no token publish", "POST", "/api/publish", "", pub, h("Content-Type", js), 403},
		{"token, other origin", "POST", "/api/nodes/1/kill", "", "", h("Content-Type", js, api.TokenHeader, tok, "Origin", "http://localhost:9"), 403},
		{"token, cross-site", "POST", "/api/nodes/2/restart", "", "", h("Content-Type", js, api.TokenHeader, tok, "Sec-Fetch-Site", "cross-site"), 403},
		{"rebound name, adversary", "POST", "/api/nodes/1/adversary", "evil.example:" + port, adv, h("Content-Type", js, api.TokenHeader, tok), 421},
		{"no-cors adversary", "POST", "/api/nodes/1/adversary", "", adv, h("Content-Type", "text/plain;charset=UTF-8", "Origin", "http://127.0.0.1:9", "Sec-Fetch-Site", "same-site"), 403},
		{"text/plain adversary", "POST", "/api/nodes/1/adversary", "", adv, h("Content-Type", "text/plain", api.TokenHeader, tok), 415},
		{"no token adversary", "POST", "/api/nodes/1/adversary", "", adv, h("Content-Type", js), 403},
		{"token, other origin, adversary", "POST", "/api/nodes/1/adversary", "", adv, h("Content-Type", js, api.TokenHeader, tok, "Origin", "http://localhost:9"), 403},
	} {
		if status, msg := raw(t, tc.method, base+tc.path, tc.host, tc.body, tc.hdr); status != tc.status {
			t.Errorf("%s: %s %s: %d %q, want %d", tc.name, tc.method, tc.path, status, msg, tc.status)
		}
	}
	if k := m.advSets(); k != 0 {
		t.Errorf("refused requests set %d adversary modes", k)
	}
	m.mu.Lock()
	for _, fn := range m.nodes {
		if fn.down || len(fn.receipts) != 0 {
			t.Errorf("node %d changed by a refused request: down %v, %d receipts", fn.index, fn.down, len(fn.receipts))
		}
	}
	m.mu.Unlock()

	// The page's own requests pass: same origin, JSON, token.
	own := h("Content-Type", js, api.TokenHeader, tok, "Origin", base, "Sec-Fetch-Site", "same-origin")
	if status, msg := raw(t, "POST", base+"/api/publish", "", pub, own); status != 201 {
		t.Errorf("the page's publish: %d %q", status, msg)
	}
	if status, msg := raw(t, "POST", base+"/api/nodes/0/adversary", "", adv, own); status != 200 {
		t.Errorf("the page's adversary control: %d %q", status, msg)
	}
	if status, msg := raw(t, "POST", base+"/api/nodes/1/kill", "", "", own); status != 200 {
		t.Errorf("the page's kill: %d %q", status, msg)
	}
	// localhost names the same loopback listener.
	if status, msg := raw(t, "GET", base+"/api/nodes", "localhost:"+port, "", nil); status != 200 {
		t.Errorf("GET /api/nodes as localhost: %d %q", status, msg)
	}
	// Each launch has its own token.
	if other := pageToken(t, dashboard(t, m, nil)); other == tok {
		t.Error("two dashboards share a token")
	}
}

// TestDashboardLimits: the dashboard's server closes connections over its
// cap at once and refuses browser streams over MaxStreams with a 503.
func TestDashboardLimits(t *testing.T) {
	t.Parallel()
	lim := api.DefaultServerLimits()
	lim.MaxConns = 2
	s, err := New(newFakeMesh(t, 2, [][2]int{{0, 1}}), Options{Limits: lim, MaxStreams: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()

	stream := openSSE(t, base) // connection 1
	stream.next("hello")
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}} // connection 2
	if status, msg := rawWith(t, hc, base+"/api/events"); status != http.StatusServiceUnavailable || !strings.Contains(msg, "too many event streams") {
		t.Errorf("a second browser stream: %d %q, want 503", status, msg)
	}
	// The refused stream's connection was closed with its 503, so the
	// second slot is free: take it with a publish whose body never
	// finishes (busy, so it cannot be evicted).
	tok := pageTokenOnceFree(t, base)
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "POST /api/publish HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s: %s\r\nContent-Length: 100\r\n\r\n{\"body\":", ln.Addr(), api.TokenHeader, tok)
	// Once the server has taken that request both slots are busy, and a
	// third connection is closed at once. How soon it takes it depends on
	// the machine's load, so ask again until one is refused: with no cap,
	// every one would be served.
	refused := false
	for deadline := time.Now().Add(30 * time.Second); !refused && time.Now().Before(deadline); {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /api/mode HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", ln.Addr())
		_, err = http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		refused = err != nil
		if !refused {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !refused {
		t.Error("connections over the cap of 2 were still served 30 s after both slots were taken")
	}
	if _, err := New(nil, Options{Trace: sampleTrace(), Limits: api.ServerLimits{MaxConns: 1}}); err == nil {
		t.Error("New accepted invalid limits")
	}
}

func rawWith(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// pageTokenOnceFree is pageToken on a server at its connection cap, which
// gives a closed connection's slot back only when it sees the close: a
// request that comes first is refused (EOF), so it tries again until the
// slot is free (10 s at most).
func pageTokenOnceFree(t *testing.T, base string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := tokenRE.FindSubmatch(b)
			if m == nil {
				t.Fatalf("GET %s/: no mesh-token meta tag in the page", base)
			}
			return string(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/: %v (the slot never came free)", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
