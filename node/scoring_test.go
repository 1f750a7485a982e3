package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/node"
	"gossipmesh/wire"
)

// counterValue reads one series of a node's registry: name with label
// reason=value, 0 if absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
				}
			}
		}
	}
	return 0
}

// TestFlooderIsRateLimitedThenBanned: a peer that sends faster than its
// link's frame limit loses the excess (rejected_total{reason=
// "rate_limited"}); the dropped frames count against its score until it
// is banned, after which GET /peers/banned lists it, its link is gone, its
// redials are refused and nothing it publishes gets through.
func TestFlooderIsRateLimitedThenBanned(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}}, func(i int, c *node.Config) {
		if i == 0 {
			c.PeerFrameRate = 200
			c.Scoring.RateLimitedPerPenalty = 2
		}
	})
	m.waitLinked()
	victim, flooder := m.nodes[0], m.nodes[1]
	srv := httptest.NewServer(api.NewHandler(victim, nil))
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL, srv.Client())
	ctx := context.Background()

	if _, err := flooder.Load(ctx, api.LoadRequest{Count: 3000}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the flooder to be banned", func() bool {
		bans, err := c.BannedPeers(ctx)
		return err == nil && len(bans) == 1
	})
	bans, _ := c.BannedPeers(ctx)
	if bans[0].ID != flooder.ID().String() || bans[0].Reason != "behaviour" || !bans[0].Until.After(time.Now().Add(5*time.Minute)) {
		t.Fatalf("banned %+v, want the flooder for behaviour, for the default 10 minutes", bans[0])
	}
	if got := counterValue(t, victim.Registry(), "gossipmesh_rejected_total", "rate_limited"); got == 0 {
		t.Error("no frame counted as rate_limited")
	}
	if got := counterValue(t, victim.Registry(), "gossipmesh_bans_total", "behaviour"); got != 1 {
		t.Errorf("bans_total{reason=behaviour} = %v, want 1", got)
	}
	eventually(t, "the link to go", func() bool { return len(victim.Peers()) == 0 })
	// The flooder keeps redialing (it was given the victim as a
	// candidate); every attempt is refused after its hello.
	closed := counterValue(t, victim.Registry(), "gossipmesh_rejected_total", "banned")
	eventually(t, "a redial to be refused", func() bool {
		return counterValue(t, victim.Registry(), "gossipmesh_rejected_total", "banned") > closed
	})
	rc, err := flooder.Publish(ctx, []byte("after the ban"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := victim.Receipt(ctx, rc.ID, 300*time.Millisecond); ok {
		t.Error("a banned peer's message got through")
	}
	if ps := victim.Peers(); len(ps) != 0 {
		t.Errorf("the victim links to %v after the ban", ps)
	}

	// The route answers JSON with an RFC 3339 time.
	resp, err := srv.Client().Get(srv.URL + "/peers/banned")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list []map[string]string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
		t.Fatalf("GET /peers/banned: %s (%v)", raw, err)
	}
	if _, err := time.Parse(time.RFC3339, list[0]["until"]); err != nil || list[0]["id"] != flooder.ID().String() || list[0]["reason"] != "behaviour" {
		t.Errorf("GET /peers/banned: %s", raw)
	}
}

// TestHonestBurstIsNotBanned: the default limits let a burst of honest
// traffic through untouched: nothing rate limited, nobody banned, every
// message delivered.
func TestHonestBurstIsNotBanned(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}, {0, 1}}, nil)
	m.waitLinked()
	ctx := context.Background()
	res, err := m.nodes[2].Load(ctx, api.LoadRequest{Count: 5000, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	last := res.IDs[len(res.IDs)-1]
	for i, n := range m.nodes[:2] {
		if _, ok := n.Receipt(ctx, last, 30*time.Second); !ok {
			t.Fatalf("node %d lacks the burst's last message", i)
		}
		if got := counterValue(t, n.Registry(), "gossipmesh_rejected_total", "rate_limited"); got != 0 {
			t.Errorf("node %d rate limited %v honest frames", i, got)
		}
		if bans, ok := n.BannedPeers(); !ok || len(bans) != 0 {
			t.Errorf("node %d bans %v (scoring on: %v)", i, bans, ok)
		}
	}
}

// TestPeersShowScores: GET /peers gives every link a "score", a number;
// with scoring off, GET /peers/banned is a 404 that says so.
func TestPeersShowScores(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}, {0}}, func(i int, c *node.Config) {
		if i == 2 {
			c.Scoring = nil
		}
	})
	m.waitLinked()
	ctx := context.Background()
	for k := range 20 {
		if _, err := m.nodes[1].Publish(ctx, []byte(fmt.Sprint(k))); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.NewHandler(m.nodes[0], nil))
	t.Cleanup(srv.Close)
	var peers []map[string]any
	eventually(t, "node 1 to score above 0 for its first deliveries", func() bool {
		resp, err := srv.Client().Get(srv.URL + "/peers")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		peers = nil
		if json.NewDecoder(resp.Body).Decode(&peers) != nil || len(peers) != 2 {
			return false
		}
		for _, p := range peers {
			if p["id"] == m.nodes[1].ID().String() {
				s, ok := p["score"].(float64)
				return ok && s > 0
			}
		}
		return false
	})
	for _, p := range peers {
		if _, ok := p["score"].(float64); !ok {
			t.Errorf("peer %v has no numeric score: %v", p["id"], p)
		}
	}
	off := httptest.NewServer(api.NewHandler(m.nodes[2], nil))
	t.Cleanup(off.Close)
	resp, err := off.Client().Get(off.URL + "/peers/banned")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "scoring is off") {
		t.Errorf("GET /peers/banned with scoring off: %d %s", resp.StatusCode, body)
	}
}

// TestInboundCannotEclipseOutbound: a node's own dials keep their place
// however many peers dial it: with its inbound slots full of sybils, the
// node still holds its outbound links to honest peers, and a lost one
// comes back (its redial is admitted) while the sybils stay at the cap.
func TestInboundCannotEclipseOutbound(t *testing.T) {
	t.Parallel()
	const sybils = 12
	dials := [][]int{{1, 2}, nil, nil}
	for range sybils {
		dials = append(dials, []int{0})
	}
	m := startMesh(t, dials, func(i int, c *node.Config) {
		if i == 0 {
			c.MaxPeers = 6 // two own dials and four inbound slots
		}
	})
	target := m.nodes[0]
	honest := map[string]bool{m.nodes[1].ID().String(): true, m.nodes[2].ID().String(): true}
	check := func() (out, in int) {
		for _, p := range target.Peers() {
			if p.Outbound && honest[p.ID] {
				out++
			} else if !p.Outbound {
				in++
			}
		}
		return out, in
	}
	eventually(t, "the target to hold both honest links and a full inbound share", func() bool {
		out, in := check()
		return out == 2 && in == 4
	})
	// Let the sybils keep redialing for a while: nothing changes.
	time.Sleep(300 * time.Millisecond)
	if out, in := check(); out != 2 || in > 4 {
		t.Fatalf("after the sybils' redials: %d honest outbound links, %d inbound; want 2 and at most 4", out, in)
	}
}

// TestScoringConfigIsValidated: the rate limits and the score's parameters
// are checked by Config.Validate, with errors that name them.
func TestScoringConfigIsValidated(t *testing.T) {
	for name, tc := range map[string]struct {
		tweak func(*node.Config)
		want  string
	}{
		"negative frame rate":     {func(c *node.Config) { c.PeerFrameRate = -1 }, "rate limits"},
		"byte rate below a frame": {func(c *node.Config) { c.PeerByteRate = 1000 }, "byte rate"},
		"thresholds out of order": {func(c *node.Config) { c.Scoring.Thresholds.Disconnect = 0 }, "disconnect threshold"},
	} {
		cfg := node.DefaultConfig()
		tc.tweak(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate said %v, want an error naming %q", name, err, tc.want)
		}
	}
	cfg := node.DefaultConfig()
	cfg.Scoring, cfg.PeerFrameRate, cfg.PeerByteRate = nil, 0, 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("scoring and rate limits off: %v", err)
	}
}

// hopZero is a protocol that publishes every message at hop 0 on the
// wire, which the receiver rejects as the sender's own fault: an invalid
// message spammer, made without speaking the wire by hand.
type hopZero struct{ gossip.Protocol }

func (h hopZero) Publish(now int64, body []byte, out *gossip.Output) (*wire.Message, error) {
	s0 := len(out.Sends)
	m, err := h.Protocol.Publish(now, body, out)
	var bad *wire.Message
	for i := s0; i < len(out.Sends); i++ {
		if out.Sends[i].Msg != nil {
			if bad == nil {
				c := *out.Sends[i].Msg
				c.Hop = 0
				bad = &c
			}
			out.Sends[i].Msg = bad
		}
	}
	return m, err
}

// TestInvalidSpammerIsBannedAtRuntime: a peer that sends invalid messages
// loses its link at each one (the runtime's rule) and, as its score is
// kept across reconnects, is banned for invalid_messages; an honest peer
// of the same node is untouched.
func TestInvalidSpammerIsBannedAtRuntime(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}, {0}}, func(i int, c *node.Config) {
		if i == 1 {
			c.NewProtocol = func(cfg gossip.Config, id wire.NodeID, rng *rand.Rand) (gossip.Protocol, error) {
				core, err := gossip.New(cfg, id, rng)
				return hopZero{core}, err
			}
			c.Scoring = nil // the spammer's own view does not matter
		}
	})
	m.waitLinked()
	victim, spammer, honest := m.nodes[0], m.nodes[1], m.nodes[2]
	ctx := context.Background()
	eventually(t, "the spammer to be banned", func() bool {
		if _, err := spammer.Load(ctx, api.LoadRequest{Count: 50}); err != nil {
			t.Fatal(err)
		}
		bans, _ := victim.BannedPeers()
		return len(bans) == 1
	})
	bans, _ := victim.BannedPeers()
	if bans[0].ID != spammer.ID().String() || bans[0].Reason != "invalid_messages" {
		t.Fatalf("banned %+v, want the spammer for invalid_messages", bans[0])
	}
	rc, err := honest.Publish(ctx, []byte("still here"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := victim.Receipt(ctx, rc.ID, 10*time.Second); !ok {
		t.Fatal("the honest peer's message did not arrive")
	}
	for _, p := range victim.Peers() {
		if p.ID == honest.ID().String() && p.Score < 0 {
			t.Errorf("the honest peer scores %v", p.Score)
		}
		if p.ID == spammer.ID().String() {
			t.Errorf("the banned spammer is still linked")
		}
	}
}
