package node

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// errBanned refuses a link, or a dial, to a peer the score banned.
var errBanned = errors.New("peer is banned")

// maxBanAddrs bounds the banned gossip addresses the dialers skip, like
// score.Params.MaxBans bounds the bans.
const maxBanAddrs = 4096

// banList is the runtime's copy of the guard's bans: the loop adds to it
// when it acts on a Disconnect, the loop's addLink and the dialers read
// it. The guard refuses a banned peer at PeerUp too; this list closes the
// connection as soon as the hello names a banned id, and keeps the
// dialers from dialing a banned peer's address at all.
type banList struct {
	mu     sync.Mutex
	byID   map[wire.NodeID]ban
	byAddr map[string]int64 // a banned peer's listen address → until, Unix ns
}

type ban struct {
	until  int64 // Unix ns
	reason string
	addr   string
}

func newBanList() *banList {
	return &banList{byID: make(map[wire.NodeID]ban), byAddr: make(map[string]int64)}
}

// add bans id (listening on addr, "" if unknown) until until, and reports
// whether the ban is new (not the guard refusing a peer it banned before).
func (b *banList) add(id wire.NodeID, addr string, until int64, reason string) (fresh bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, had := b.byID[id]
	fresh = !had || old.until != until
	if had && addr == "" {
		addr = old.addr
	}
	if len(b.byID) >= maxBanAddrs {
		b.expireLocked(time.Now().UnixNano())
	}
	if len(b.byID) >= maxBanAddrs {
		return fresh // the guard still refuses it at PeerUp
	}
	if had && old.addr != "" && old.addr != addr {
		delete(b.byAddr, old.addr)
	}
	b.byID[id] = ban{until: until, reason: reason, addr: addr}
	if addr != "" {
		b.byAddr[addr] = until
	}
	return fresh
}

func (b *banList) expireLocked(now int64) {
	for id, x := range b.byID {
		if x.until <= now {
			delete(b.byID, id)
			if x.addr != "" && b.byAddr[x.addr] == x.until {
				delete(b.byAddr, x.addr)
			}
		}
	}
}

// idErr is errBanned, with when and why, if id is banned at now.
func (b *banList) idErr(id wire.NodeID, now int64) error {
	b.mu.Lock()
	x, ok := b.byID[id]
	b.mu.Unlock()
	if !ok || x.until <= now {
		return nil
	}
	return fmt.Errorf("%w until %s (%s)", errBanned, time.Unix(0, x.until).UTC().Format(time.RFC3339), x.reason)
}

// addrBanned reports whether the peer listening on addr is banned at now.
func (b *banList) addrBanned(addr string, now int64) bool {
	b.mu.Lock()
	until, ok := b.byAddr[addr]
	b.mu.Unlock()
	return ok && now < until
}

// list returns the bans in force at now, soonest end first.
func (b *banList) list(now int64) []api.BannedPeer {
	b.mu.Lock()
	out := make([]api.BannedPeer, 0, len(b.byID))
	for id, x := range b.byID {
		if x.until > now {
			out = append(out, api.BannedPeer{ID: id.String(), Until: time.Unix(0, x.until).UTC(), Reason: x.reason})
		}
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Until.Equal(out[j].Until) {
			return out[i].Until.Before(out[j].Until)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// refuseBanned is addLink's check: it closes p and reports true if its
// node id is banned. The loop calls it before anything else of p is kept.
func (n *Node) refuseBanned(p *peer) bool {
	if n.guard == nil {
		return false
	}
	err := n.bans.idErr(p.id, time.Now().UnixNano())
	if err == nil {
		return false
	}
	p.close(err)
	n.m.rejected.WithLabelValues("banned").Inc()
	n.log.Info("refusing link", "peer", p.conn.RemoteAddr().String(), "peer_id", p.id.String(), "outbound", p.outbound, "err", err)
	return true
}

// dialBanned is the dialers' check: true if the peer at addr is banned.
func (n *Node) dialBanned(addr string) bool {
	return n.guard != nil && n.bans.addrBanned(addr, time.Now().UnixNano())
}

// applyDisconnects acts on the protocol's Disconnects: each banned peer's
// link is closed and the ban recorded for the handshake and the dialers.
// Only the loop calls it, from flushSends.
func (n *Node) applyDisconnects(ds []gossip.Disconnect) {
	for _, d := range ds {
		addr := ""
		p := n.links[d.Peer]
		if p != nil {
			addr = p.addr
		} else if s := n.standby[d.Peer]; s != nil {
			addr = s.addr
		}
		if n.bans.add(d.Peer, addr, d.Until, d.Reason) {
			n.m.bans.WithLabelValues(d.Reason).Inc()
		}
		err := fmt.Errorf("%w until %s (%s)", errBanned, time.Unix(0, d.Until).UTC().Format(time.RFC3339), d.Reason)
		if p != nil {
			n.log.Warn("banning peer", "peer_id", d.Peer.String(), "addr", addr, "reason", d.Reason, "until", time.Unix(0, d.Until).UTC())
			p.close(err)
		}
		if s := n.standby[d.Peer]; s != nil {
			s.close(err)
		}
	}
}

// scoreView is what GET /peers and GET /peers/banned read of the guard,
// which only the loop may touch: a snapshot taken on the loop.
type scoreView struct {
	scores map[wire.NodeID]float64
}

// scoreSnapshot is answered on the loop (see loop's scoreReq case).
func (n *Node) scoreSnapshot() scoreView {
	v := scoreView{scores: make(map[wire.NodeID]float64)}
	if n.guard == nil {
		return v
	}
	for _, ps := range n.guard.Scores(time.Now().UnixNano()) {
		v.scores[ps.Peer] = ps.Score
	}
	return v
}

// scores asks the loop for the peers' scores; nil if scoring is off or
// the loop does not answer within statsTimeout.
func (n *Node) scores() map[wire.NodeID]float64 {
	if n.guard == nil {
		return nil
	}
	reply := make(chan scoreView, 1)
	t := time.NewTimer(statsTimeout)
	defer t.Stop()
	select {
	case n.scoreReq <- reply:
	case <-n.stop:
		return nil
	case <-t.C:
		return nil
	}
	select {
	case v := <-reply:
		return v.scores
	case <-n.stop:
		return nil
	}
}

// BannedPeers implements api.BanBackend: the bans in force, soonest end
// first; ok is false when scoring is off.
func (n *Node) BannedPeers() ([]api.BannedPeer, bool) {
	if n.guard == nil {
		return nil, false
	}
	return n.bans.list(time.Now().UnixNano()), true
}

// newGuard wraps core in the scoring defences of p.
func newGuard(core gossip.Protocol, p *score.Params) (*score.Guard, error) {
	g, err := score.NewGuard(core, *p)
	if err != nil {
		return nil, fmt.Errorf("scoring: %w", err)
	}
	return g, nil
}

var _ api.BanBackend = (*Node)(nil)

// innerProtocol is the protocol inside the guard (the core itself when
// scoring is off), for what only it can answer (its seen-cache, its
// statistics).
func (n *Node) innerProtocol() gossip.Protocol {
	if n.guard != nil {
		return n.guard.Inner()
	}
	return n.core
}
