package node

// This file holds each link's fair share of the inbox. The inbox is one
// queue, in arrival order, shared by every link's reader; without a share
// a peer that floods valid messages (signed, new, within their origin's
// rate budget until it is spent) fills it with thousands of frames that
// each cost the loop a signature check, and the frames of every honest
// peer wait behind them until they are dropped as stale (MaxQueueDelay):
// the flood decides what the node hears from everyone else. With a share,
// a link holds at most peerInboxShare frames in the inbox at a time; its
// reader waits for the loop to handle one before it queues another, TCP
// pushes back on that peer alone, and an honest frame waits behind at
// most one share of each other link's frames.

// peerInboxShareDivisor is how many shares the inbox is cut into: a link
// holds at most 1/16 of InboxSize, 256 frames at the default 4,096, one
// loop batch (maxBatch). Sixteen links can each queue a whole share
// before the inbox is full; a node with more links than that is bounded
// by the inbox itself, as before.
const peerInboxShareDivisor = 16

// peerInboxShare is the most frames one link may hold in an inbox of
// inboxSize frames: inboxSize/peerInboxShareDivisor, at least 1 and at
// most the inbox.
func peerInboxShare(inboxSize int) int {
	return min(max(inboxSize/peerInboxShareDivisor, 1), max(inboxSize, 1))
}

// takeShare reserves a place in the inbox for one more of p's frames,
// waiting while p already holds its share, until the loop has handled one
// of them, p's link closes or the node stops; waited says whether it had
// to wait. Only p's reader calls it.
func (n *Node) takeShare(p *peer) (waited bool, err error) {
	select {
	case p.share <- struct{}{}:
		return false, nil
	default:
	}
	n.m.inboxShareWaits.Inc()
	select {
	case p.share <- struct{}{}:
		return true, nil
	case <-p.done:
		return true, p.err
	case <-n.stop:
		return true, errShutdown
	}
}

// giveShare hands back the place one of p's frames held in the inbox,
// once the loop has handled (or dropped) it. A peer made without a share
// (tests that queue frames themselves) holds none.
func (p *peer) giveShare() {
	select {
	case <-p.share:
	default:
	}
}
