package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TokenHeader is the request header that carries a dashboard's per-launch
// token on every state-changing request (see GuardOptions.Token).
const TokenHeader = "X-Mesh-Token"

// GuardOptions tunes Guard. The zero value checks Host, Origin,
// Sec-Fetch-Site and Content-Type, and asks for no token: the node's API.
type GuardOptions struct {
	// Token, when not empty, must be sent in the TokenHeader header of
	// every state-changing request. The dashboard generates one per launch
	// (NewToken) and embeds it in its page: a page of another origin cannot
	// read it, so it cannot send it. Default: empty, no token asked for.
	Token string
}

// NewToken returns a fresh random token for GuardOptions.Token: 32 bytes
// from crypto/rand, in hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Guard wraps h so that no web page can drive it. Loopback is not a trust
// boundary: any page a browser opens can send requests to 127.0.0.1, and
// DNS rebinding lets a page read answers from a name that resolves there.
// So, on every route:
//
//   - the Host header must name the address that actually served the
//     request (the listener's ip:port, as the connection's local address
//     says; for a loopback address also localhost:port and any loopback
//     ip:port). Anything else is refused with 421 Misdirected Request,
//     which defeats DNS rebinding: a rebound name never matches.
//
// and on every state-changing request (any method but GET, HEAD, OPTIONS):
//
//   - Sec-Fetch-Site, if present, must be "same-origin" or "none" (a
//     browser sends it on every request; curl and api.Client do not);
//   - Origin, if present, must be this server's own origin;
//   - Content-Type must be application/json. An HTML form or a no-cors
//     fetch cannot send that without a CORS preflight, and this server
//     never answers one with CORS headers;
//   - the token, if GuardOptions.Token is set, must be in TokenHeader.
//
// A cross-site request is refused with 403, a wrong Content-Type with
// 415; every refusal is a JSON error that says which check failed. The
// command-line client (no Origin, no Sec-Fetch-Site, Host as dialled,
// Content-Type application/json on every POST) passes.
func Guard(h http.Handler, opts GuardOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkHost(r); err != "" {
			WriteError(w, http.StatusMisdirectedRequest, err)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		if status, err := checkCrossSite(r, opts.Token); err != "" {
			WriteError(w, status, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkHost returns why r's Host header does not name the address that
// served it, or "" when it does.
func checkHost(r *http.Request) string {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return "refused: the server cannot tell which address served this request"
	}
	lap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return "refused: the server's own address " + local.String() + " is not ip:port"
	}
	if !hostServes(r.Host, lap) {
		return fmt.Sprintf("refused: Host %q is not an address this server answers on (%s)", r.Host, lap)
	}
	return ""
}

// hostServes reports whether a Host header names the listener at local:
// its own ip:port, or, for a loopback listener, localhost or any loopback
// ip at its port. A Host without a port means port 80.
func hostServes(host string, local netip.AddrPort) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
		if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
			name = name[1 : len(name)-1]
		}
	}
	if port != fmt.Sprint(local.Port()) {
		return false
	}
	lip := local.Addr().Unmap().WithZone("")
	if ip, err := netip.ParseAddr(name); err == nil {
		ip = ip.Unmap().WithZone("")
		return ip == lip || (lip.IsLoopback() && ip.IsLoopback())
	}
	return lip.IsLoopback() && strings.EqualFold(strings.TrimSuffix(name, "."), "localhost")
}

// checkCrossSite returns the status and reason for refusing a
// state-changing request, or "" when it may go on.
func checkCrossSite(r *http.Request, token string) (int, string) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return http.StatusForbidden, fmt.Sprintf("refused: cross-site request (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		if !strings.EqualFold(origin, scheme+r.Host) {
			return http.StatusForbidden, fmt.Sprintf("refused: cross-origin request (Origin %q is not %q)", origin, scheme+r.Host)
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, fmt.Sprintf("refused: Content-Type %q: want application/json", r.Header.Get("Content-Type"))
	}
	if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(TokenHeader)), []byte(token)) != 1 {
		return http.StatusForbidden, "refused: missing or wrong " + TokenHeader + " header (the dashboard's page sends it)"
	}
	return 0, ""
}
