package node

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// Node implements the HTTP API's backend.
var _ api.Backend = (*Node)(nil)

// errStopped is what requests get once the node is shutting down.
var errStopped = errors.New("node: stopped")

// publishBodies runs one publish request through the loop.
func (n *Node) publishBodies(ctx context.Context, bodies [][]byte) (*pubRequest, error) {
	r := &pubRequest{ctx: ctx, bodies: bodies, done: make(chan struct{})}
	select {
	case n.pubs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stop:
		return nil, errStopped
	}
	// The loop always finishes a request it took.
	<-r.done
	// The loop has just queued the message to the peers' writers; let
	// them write before this goroutine goes on to answer an HTTP client.
	// With GOMAXPROCS=1 the answer would otherwise go out first.
	runtime.Gosched()
	return r, nil
}

// Publish implements api.Backend. The node holds its own message at hop 0
// and logs it as "published", not "delivered".
func (n *Node) Publish(ctx context.Context, body []byte) (api.Receipt, error) {
	if len(body) > n.cfg.Gossip.MaxBody {
		return api.Receipt{}, fmt.Errorf("%w: %d bytes, limit %d", api.ErrBodyTooLarge, len(body), n.cfg.Gossip.MaxBody)
	}
	// The message shares body from here on; the caller's slice must not
	// change under it.
	body = append([]byte(nil), body...)
	r, err := n.publishBodies(ctx, [][]byte{body})
	if err != nil {
		return api.Receipt{}, err
	}
	if r.err != nil {
		if errors.Is(r.err, gossip.ErrBodyTooLarge) {
			return api.Receipt{}, fmt.Errorf("%w: %w", api.ErrBodyTooLarge, r.err)
		}
		return api.Receipt{}, r.err
	}
	rc, ok := n.receipts.get(r.ids[0])
	if !ok {
		// Evicted already (a tiny store under heavy load): rebuild it.
		rc = (&receipt{id: r.ids[0], origin: n.id, publishedAt: r.at[0], receivedAt: r.at[0], size: len(body)}).toAPI()
		rc.Body = string(body)
	}
	return rc, nil
}

// Receipt implements api.Backend.
func (n *Node) Receipt(ctx context.Context, id string, wait time.Duration) (api.Receipt, bool) {
	mid, err := wire.ParseMsgID(id)
	if err != nil {
		return api.Receipt{}, false
	}
	if r, ok := n.receipts.get(mid); ok || wait <= 0 {
		return r, ok
	}
	ch, cancel := n.receipts.wait(mid)
	defer cancel()
	if ch != nil {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		case <-n.stop:
		}
	}
	return n.receipts.get(mid)
}

// Recent implements api.Backend.
func (n *Node) Recent(limit int) []api.Receipt { return n.receipts.recent(limit) }

// Peers implements api.Backend: the live links, in node id order.
func (n *Node) Peers() []api.Peer {
	scores := n.scores()
	n.linksMu.RLock()
	out := make([]api.Peer, 0, len(n.links))
	for _, p := range n.links {
		info := p.info()
		info.Score = scores[p.id]
		out = append(out, info)
	}
	n.linksMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Health implements api.Backend.
func (n *Node) Health() api.Health {
	n.linksMu.RLock()
	peers := len(n.links)
	n.linksMu.RUnlock()
	status := "ok"
	select {
	case <-n.stop:
		status = "stopping"
	default:
	}
	return api.Health{
		Status:     status,
		ID:         n.idStr,
		GossipAddr: n.addr,
		HTTPAddr:   n.cfg.HTTPAddr,
		Peers:      peers,
		PID:        n.pid,
	}
}

// MaxBody implements api.Backend.
func (n *Node) MaxBody() int { return n.cfg.Gossip.MaxBody }
