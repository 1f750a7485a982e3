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
		ctx, cancel := context.WithTimeout(n.runCtx, n.cfg.DialTimeout)
		conn, err := n.cfg.Transport.Dial(ctx, addr)
		cancel()
		if err == nil {
			began := time.Now()
			live, err := n.serveConn(conn, true)
			if errors.Is(err, errSelf) {
				n.log.Warn("candidate is this node; not dialing it again", "addr", addr)
				return
			}
			// Follow the links that replaced ours (or won over ours) until
			// none is left: only then is there something to redial.
			for live != nil {
				select {
				case <-live.done:
				case <-n.stop:
					return
				}
				live = live.next.Load()
			}
			if err == nil && time.Since(began) > n.cfg.BackoffMax {
				backoff = n.cfg.BackoffMin // a link that lived a while resets the backoff
			}
		} else {
			n.log.Debug("dial failed", "addr", addr, "err", err)
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
	}
}
