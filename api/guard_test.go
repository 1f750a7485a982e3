package api_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gossipmesh/api"
)

func newServerFor(t *testing.T, b api.Backend) (*httptest.Server, *api.Client) {
	t.Helper()
	srv := newHTTPServer(t, api.NewHandler(b, nil))
	return srv, api.NewClient(srv.URL, srv.Client())
}

func newHTTPServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// send does one raw request to srvURL+path with the given headers and
// returns the status and the JSON error, if any.
func send(t *testing.T, method, url, host, body string, hdr map[string]string) (int, string) {
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
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// TestGuardRefusesOtherSites sends the node API what a web page of
// another origin, a form, a no-cors fetch and a DNS-rebound name can send,
// and checks that none of it is served and nothing is published; then that
// what the CLI sends still is.
func TestGuardRefusesOtherSites(t *testing.T) {
	t.Parallel()
	fake := newFake()
	fake.maxBody = 1 << 10
	adv := &advNode{fakeNode: fake}
	srv, c := newServerFor(t, adv)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	jsonCT := map[string]string{"Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		h := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	pub := `{"body":"x"}`
	for _, tc := range []struct {
		name, method, path, host, body string
		hdr                            map[string]string
		status                         int
		has                            string
	}{
		{"rebound name, GET", "GET", "/healthz", "evil.example:" + port, "", nil, 421, "evil.example"},
		{"rebound name, GET receipts", "GET", "/messages", "evil.example", "", nil, 421, "Host"},
		{"rebound name, POST", "POST", "/messages", "evil.example:" + port, pub, jsonCT, 421, "Host"},
		{"right name, wrong port", "GET", "/healthz", "127.0.0.1:1", "", nil, 421, "Host"},
		{"localhost at the port", "GET", "/healthz", "localhost:" + port, "", nil, 200, ""},
		{"::1 at the port", "GET", "/healthz", "[::1]:" + port, "", nil, 200, ""},
		{"other loopback ip", "GET", "/healthz", "127.0.0.2:" + port, "", nil, 200, ""},
		{"no-cors fetch (text/plain)", "POST", "/messages", "", pub, with("Content-Type", "text/plain;charset=UTF-8", "Origin", "http://127.0.0.1:9", "Sec-Fetch-Site", "same-site"), 403, "Sec-Fetch-Site"},
		{"form post", "POST", "/messages", "", pub, with("Content-Type", "application/x-www-form-urlencoded"), 415, "Content-Type"},
		{"multipart form", "POST", "/messages", "", pub, with("Content-Type", "multipart/form-data; boundary=x"), 415, "Content-Type"},
		{"text/plain form", "POST", "/messages", "", pub, with("Content-Type", "text/plain"), 415, "Content-Type"},
		{"no content type", "POST", "/messages", "", pub, nil, 415, "Content-Type"},
		{"cross-site", "POST", "/messages", "", pub, with("Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"), 403, "cross-site"},
		{"same-site other port", "POST", "/messages", "", pub, with("Content-Type", "application/json", "Sec-Fetch-Site", "same-site"), 403, "same-site"},
		{"other origin", "POST", "/messages", "", pub, with("Content-Type", "application/json", "Origin", "http://evil.example"), 403, "Origin"},
		{"null origin", "POST", "/messages", "", pub, with("Content-Type", "application/json", "Origin", "null"), 403, "Origin"},
		{"other origin, /load", "POST", "/load", "", `{"count":1}`, with("Content-Type", "application/json", "Origin", "http://localhost:9"), 403, "Origin"},
		{"no-cors /load", "POST", "/load", "", `{"count":1}`, with("Content-Type", "text/plain"), 415, "Content-Type"},
		{"rebound name, PUT /adversary", "PUT", "/adversary", "evil.example:" + port, `{"mode":"blackhole"}`, jsonCT, 421, "Host"},
		{"rebound name, GET /adversary", "GET", "/adversary", "evil.example:" + port, "", nil, 421, "Host"},
		{"no-cors /adversary", "PUT", "/adversary", "", `{"mode":"blackhole"}`, with("Content-Type", "text/plain"), 415, "Content-Type"},
		{"cross-site /adversary", "PUT", "/adversary", "", `{"mode":"blackhole"}`, with("Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"), 403, "cross-site"},
		{"other origin, /adversary", "PUT", "/adversary", "", `{"mode":""}`, with("Content-Type", "application/json", "Origin", "http://localhost:9"), 403, "Origin"},
	} {
		status, msg := send(t, tc.method, srv.URL+tc.path, tc.host, tc.body, tc.hdr)
		if status != tc.status || !strings.Contains(msg, tc.has) {
			t.Errorf("%s: %s %s (Host %q): %d %q, want %d with %q", tc.name, tc.method, tc.path, tc.host, status, msg, tc.status, tc.has)
		}
	}
	if n, loads, sets := len(fake.Recent(100)), fake.loadCalls(), adv.setCalls(); n != 0 || loads != 0 || sets != 0 {
		t.Fatalf("refused requests published %d messages, ran %d loads and set %d adversary modes", n, loads, sets)
	}
	// Same-origin browser requests and the CLI pass.
	self := "http://" + srv.Listener.Addr().String()
	for _, hdr := range []map[string]string{
		with("Content-Type", "application/json", "Sec-Fetch-Site", "same-origin", "Origin", self),
		with("Content-Type", "application/json; charset=utf-8", "Sec-Fetch-Site", "none"),
	} {
		if status, msg := send(t, "POST", srv.URL+"/messages", "", pub, hdr); status != 201 {
			t.Errorf("same-origin publish %v: %d %q", hdr, status, msg)
		}
	}
	if _, err := c.Publish(t.Context(), "from the CLI"); err != nil {
		t.Errorf("the CLI's publish was refused: %v", err)
	}
	if _, err := c.Load(t.Context(), api.LoadRequest{Count: 2}); err != nil {
		t.Errorf("the CLI's load was refused: %v", err)
	}
	if _, err := c.SetAdversary(t.Context(), "blackhole"); err != nil {
		t.Errorf("the CLI's PUT /adversary was refused: %v", err)
	}
}

// TestGuardNeedsToken: with a token, a state-changing request must carry
// it; GETs need none.
func TestGuardNeedsToken(t *testing.T) {
	t.Parallel()
	tok, err := api.NewToken()
	if err != nil || len(tok) != 64 {
		t.Fatalf("token %q, %v", tok, err)
	}
	if other, _ := api.NewToken(); other == tok {
		t.Fatal("two tokens are the same")
	}
	changed := 0
	h := api.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			changed++
		}
		api.WriteJSON(w, 200, map[string]bool{"ok": true})
	}), api.GuardOptions{Token: tok})
	srv := newHTTPServer(t, h)
	js := "application/json"
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		status int
	}{
		{"GET", nil, 200},
		{"POST", map[string]string{"Content-Type": js}, 403},
		{"POST", map[string]string{"Content-Type": js, api.TokenHeader: "wrong"}, 403},
		{"POST", map[string]string{"Content-Type": js, api.TokenHeader: tok[:63]}, 403},
		{"POST", map[string]string{"Content-Type": "text/plain", api.TokenHeader: tok}, 415},
		{"POST", map[string]string{"Content-Type": js, api.TokenHeader: tok, "Sec-Fetch-Site": "cross-site"}, 403},
		{"POST", map[string]string{"Content-Type": js, api.TokenHeader: tok}, 200},
	} {
		if status, msg := send(t, tc.method, srv.URL+"/x", "", "{}", tc.hdr); status != tc.status {
			t.Errorf("%s %v: %d %q, want %d", tc.method, tc.hdr, status, msg, tc.status)
		}
	}
	if changed != 1 {
		t.Errorf("%d POSTs reached the handler, want 1 (the one with the token)", changed)
	}
}
