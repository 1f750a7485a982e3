package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/node"
)

// TestValidSpammerIsBannedByItsNeighbours: a node that publishes valid,
// signed messages of its own far past the per-origin budget (the
// adversary's spam mode) is banned by every one of its neighbours, for
// behaviour; the node that only hears it through honest relays bans no
// one; the excess is counted as refused for origin_rate; and every honest
// message published during the spam reaches every honest node.
func TestValidSpammerIsBannedByItsNeighbours(t *testing.T) {
	t.Parallel()
	// 0-2-3-4 is the honest path; the spammer, 1, links to 0, 2 and 4.
	m := startMesh(t, [][]int{nil, {0}, {0, 1}, {2}, {3, 1}}, func(i int, c *node.Config) {
		c.Gossip.OriginRate = 200
	})
	m.waitLinked()
	ctx := context.Background()
	spammer := m.nodes[1]
	honest := []*node.Node{m.nodes[0], m.nodes[2], m.nodes[3], m.nodes[4]}
	neighbours := []*node.Node{m.nodes[0], m.nodes[2], m.nodes[4]}
	if _, err := spammer.SetAdversary(ctx, "spam=5000"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		rc, err := honest[i%len(honest)].Publish(ctx, []byte(fmt.Sprint("honest ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range neighbours {
		eventually(t, "every neighbour to ban the spammer", func() bool {
			bans, _ := n.BannedPeers()
			return len(bans) == 1
		})
		bans, _ := n.BannedPeers()
		if bans[0].ID != spammer.ID().String() || bans[0].Reason != "behaviour" {
			t.Errorf("node %v bans %+v, want the spammer for behaviour", n.ID(), bans[0])
		}
		// Over budget as they arrived (dropped by the reader) or in the
		// core (refused): either way counted for origin_rate.
		if got := counterValue(t, n.Registry(), "gossipmesh_rejected_total", "origin_rate") +
			counterValue(t, n.Registry(), "gossipmesh_refused_total", "origin_rate"); got == 0 {
			t.Errorf("node %v counted no copy over budget for origin_rate", n.ID())
		}
	}
	if bans, _ := m.nodes[3].BannedPeers(); len(bans) != 0 {
		t.Errorf("node 3, which hears the spammer only through honest relays, bans %+v", bans)
	}
	for _, n := range honest {
		for _, id := range ids {
			if _, ok := n.Receipt(ctx, id, 30*time.Second); !ok {
				t.Errorf("node %v lacks honest message %s", n.ID(), id)
			}
		}
		for _, p := range n.Peers() {
			if p.Score < 0 {
				t.Errorf("node %v scores honest peer %s at %v", n.ID(), p.ID, p.Score)
			}
		}
	}
}

// TestOwnPublishOverBudget: a node refuses its own publishes past its
// budget, POST /messages with 429 and a message that says why, rather
// than emit what its peers would ignore; POST /load waits for the budget
// instead and publishes everything; under SigningNone there is no budget.
func TestOwnPublishOverBudget(t *testing.T) {
	t.Parallel()
	// Node 2's budget refills once in 1,000 s, so that however slowly the
	// publishes below go, none gets a token back; nodes 0 and 1 run at 20
	// a second (own burst 2), for the load and its check.
	m := startMesh(t, [][]int{nil, {0}, {0}}, func(i int, c *node.Config) {
		c.Gossip.OriginRate, c.Gossip.OriginBurst = 20, 4
		if i == 2 {
			c.Gossip.OriginRate = 0.001
		}
	})
	m.waitLinked()
	n := m.nodes[2]
	srv := httptest.NewServer(api.NewHandler(n, nil))
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL, srv.Client())
	ctx := context.Background()
	var refused error
	published := 0
	for range 5 {
		if _, err := c.Publish(ctx, "quick"); err != nil {
			refused = err
			break
		}
		published++
	}
	var se *api.StatusError
	if !errors.As(refused, &se) || se.Status != http.StatusTooManyRequests || !strings.Contains(se.Message, "rate budget") {
		t.Fatalf("after %d publishes: %v, want a 429 that names the rate budget", published, refused)
	}
	if published != 2 {
		t.Errorf("%d publishes got through, want the burst of 2", published)
	}
	n, peer := m.nodes[0], m.nodes[1]
	srv0 := httptest.NewServer(api.NewHandler(n, nil))
	t.Cleanup(srv0.Close)
	c = api.NewClient(srv0.URL, srv0.Client())
	res, err := c.Load(ctx, api.LoadRequest{Count: 10})
	if err != nil || res.Published != 10 {
		t.Fatalf("load of 10 over a budget of 20/s: %+v, %v, want all 10 published", res, err)
	}
	if got := counter(t, n, "gossipmesh_publish_refused_total"); got < 2 {
		t.Errorf("publish_refused_total %v, want the refusal and the load's waits", got)
	}
	last := res.IDs[len(res.IDs)-1]
	if _, ok := peer.Receipt(ctx, last, 30*time.Second); !ok {
		t.Error("the peer lacks the load's last message")
	}
	if got := counterValue(t, peer.Registry(), "gossipmesh_refused_total", "origin_rate"); got != 0 {
		t.Errorf("the peer refused %v of the node's copies for its budget: the node emitted past it", got)
	}

	u := startMesh(t, [][]int{nil}, func(i int, c *node.Config) {
		c.Gossip.Signing, c.Gossip.Auth = gossip.SigningNone, nil
		c.Gossip.OriginRate, c.Gossip.OriginBurst = 20, 4
	})
	for i := range 10 {
		if _, err := u.nodes[0].Publish(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("unsigned publish %d: %v, want no budget under SigningNone", i, err)
		}
	}
}
