package node

import (
	"net"
	"time"
)

// tokenBucket allows rate units a second on average and burst at once.
type tokenBucket struct {
	tokens float64
	last   int64 // Unix ns of the last refill; 0: full, never used
}

// take spends n units at now if the bucket holds them.
func (b *tokenBucket) take(now int64, rate, burst, n float64) bool {
	if b.last == 0 {
		b.tokens, b.last = burst, now
	} else if now > b.last {
		b.tokens = min(burst, b.tokens+rate*float64(now-b.last)/float64(time.Second))
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// linkLimit is one link's buckets: frames and bytes.
type linkLimit struct {
	frames, bytes tokenBucket
}

// rateLimited reports whether the frame in must be dropped for its link's
// rate limits (Config.PeerFrameRate, PeerByteRate; a second's worth of
// burst), and counts it. A dropped frame counts against the peer's score
// (score.Guard.Penalize), so a sustained flooder is banned. Only the loop
// calls it.
func (n *Node) rateLimited(in *inbound, now int64) bool {
	if n.cfg.PeerFrameRate <= 0 && n.cfg.PeerByteRate <= 0 {
		return false
	}
	l := n.limits[in.from]
	if l == nil {
		if n.links[in.from.id] != in.from && n.standby[in.from.id] != in.from {
			return false // gone already: nothing to keep a bucket for
		}
		l = &linkLimit{}
		n.limits[in.from] = l
	}
	ok := true
	if r := float64(n.cfg.PeerFrameRate); r > 0 {
		ok = l.frames.take(now, r, r, 1)
	}
	if r := float64(n.cfg.PeerByteRate); ok && r > 0 {
		ok = l.bytes.take(now, r, r, float64(in.size))
	}
	if ok {
		return false
	}
	n.m.rateLimited.Inc()
	if n.guard != nil {
		n.guard.Penalize(now, in.from.id, 1, &n.out)
	}
	return true
}

// forgetLimit drops the buckets of a link that went down.
func (n *Node) forgetLimit(p *peer) { delete(n.limits, p) }

// colocationHost is the host a peer counts under for the score's IP
// colocation term: its remote IP, or "" (exempt) for loopback, where a
// local mesh runs every node, and for addresses that are not IPs (memnet
// host names count as given).
func colocationHost(p *peer) string {
	h := hostOf(p.conn.RemoteAddr())
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return ""
	}
	return h
}
