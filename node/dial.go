package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// dialLoop keeps a link to the candidate at addr: dial, handshake, serve
// until the link fails, wait a jittered, capped, exponential backoff, and
// again. When the other side's link wins (both dialed at once), it waits on
// that link instead of redialing, so the pair settles on one connection.
func (n *Node) dialLoop(addr string) {
	defer n.wg.Done()
	backoff := n.cfg.BackoffMin
	for {
		lived, again := n.keepLink(addr)
		if !again {
			return
		}
		if lived || n.eclipsing() {
			// A link that lived a while resets the backoff; an eclipse
			// adversary never backs off (adversary.go).
			backoff = n.cfg.BackoffMin
		}
		// Jitter over [backoff/2, backoff], so that peers that lost a
		// common neighbour do not redial it in lockstep. It comes from the
		// runtime's source, not the node's seeded one: timing is not part
		// of what a seed reproduces.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		select {
		case <-time.After(wait):
		case <-n.stop:
			return
		}
		backoff = min(2*backoff, n.cfg.BackoffMax)
		// With membership on, a lost booted peer is replaced from the
		// passive view at once; this loop keeps redialing it (so that a
		// restarted peer gets its links back) only while the node is below
		// its high degree bound, so that a full node dials nobody.
		for n.degreeAtHigh() && !n.eclipsing() {
			select {
			case <-time.After(n.cfg.BackoffMax):
			case <-n.stop:
				return
			}
		}
		// Nor is a node that refused the link (a full node dropping a
		// link this node said it did not need) asked again before its
		// refusal backoff is over: redialing it at once only had it
		// dropped again, the link up and down every few tens of
		// milliseconds. Read after the backoff, by when the loop has
		// seen the link go.
		for d := n.refusedFor(addr); d > 0 && !n.eclipsing(); d = n.refusedFor(addr) {
			select {
			case <-time.After(d):
			case <-n.stop:
				return
			}
		}
	}
}

// keepLink holds one link to the candidate at addr until it is gone: the
// link the peer dialed, if that one wins a simultaneous dial (see addLink),
// else one it dials. It reports whether the link lived long enough to
// reset the backoff, and whether to dial again: not once the node stops,
// nor when addr turns out to be this node.
func (n *Node) keepLink(addr string) (lived, again bool) {
	// Without this check, a dial that the peer closed (in favour of its
	// own, winning link) before our end registered that link would be
	// retried, and the pair would briefly hold two connections again.
	if live := n.winningLinkTo(addr); live != nil {
		began := time.Now()
		again = n.follow(live)
		return time.Since(began) > n.cfg.BackoffMax, again
	}
	if n.dialBanned(addr) {
		return false, true // banned by the score: wait out the backoff
	}
	ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.DialTimeout)
	conn, err := n.cfg.Transport.Dial(ctx, addr)
	cancel()
	if err != nil {
		n.log.Debug("dial failed", "addr", addr, "err", err)
		return false, true
	}
	began := time.Now()
	live, err := n.serveConn(conn, true, 0)
	if errors.Is(err, errSelf) {
		n.log.Warn("candidate is this node; not dialing it again", "addr", addr)
		return false, false
	}
	// Follow the links that replaced ours (or won over ours) until none is
	// left: only then is there something to redial.
	again = n.follow(live)
	return err == nil && time.Since(began) > n.cfg.BackoffMax, again
}

// follow waits until live, and every link that replaces it, has gone down.
// It reports false if the node stopped first.
func (n *Node) follow(live *peer) bool {
	for live != nil {
		select {
		case <-live.done:
		case <-n.stop:
			return false
		}
		live = live.next.Load()
	}
	return true
}

// winningLinkTo returns the open link to the node listening at addr if it
// is the one a simultaneous dial keeps (dialed by the lower id), else nil.
func (n *Node) winningLinkTo(addr string) *peer {
	n.linksMu.RLock()
	defer n.linksMu.RUnlock()
	for _, p := range n.links {
		if p.addr == addr && !p.closed() && p.dialer == min(n.id, p.id) {
			return p
		}
	}
	return nil
}
