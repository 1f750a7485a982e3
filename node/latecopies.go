package node

import (
	"os"
	"runtime"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// A node's first receipt of a message is the lowest-hop copy among those
// that had arrived when the loop took them. Taking them too early makes hop
// counts measure the machine's scheduler: when a node writes a message to
// its peers one after another, the first peer it wakes often preempts it
// on the same CPU, relays the message, and a copy that came the long way is
// at the next node before the short-way copy has even been written. So
// when a small batch holds the first copy of a message, and that copy came
// at more hops than messages of its origin have taken to reach this node
// before (or the origin is new), the loop lets the other copies in before
// it takes the batch: it gives up its CPU once, so a preempted sender can
// finish its writes, and then lets the Go scheduler poll the network, so
// the readers of sockets that became readable meanwhile queue their
// frames. Neither step waits for a time: each ends as soon as the kernel
// and the Go scheduler have run what was ready. The per-origin memory is
// bounded (maxNearest entries of a few bytes, about 100 KiB at most).

// relayedFirstCopy reports whether, under flood, the batch (sorted by hop)
// holds a message that the node has not seen yet and whose lowest-hop copy
// in the batch came at more hops than this node has known a message of
// that origin to take: a shorter copy is then likely on its way. With
// fanout, the shorter copy may never come.
func (n *Node) relayedFirstCopy() bool {
	if n.cfg.Gossip.Strategy != gossip.Flood || len(n.batch) > maxWaitBatch {
		return false
	}
	now := time.Now().UnixNano()
	for i := range n.batch {
		m := &n.batch[i].msg
		if m.Hop <= 1 || n.lowerHopBefore(i) {
			continue
		}
		if e, ok := n.nearest[m.Origin]; ok && m.Hop <= e.hop {
			continue // no shorter path known from this origin
		}
		if sq, ok := n.innerProtocol().(seenQuerier); ok && !sq.Seen(now, m.ID) {
			return true
		}
	}
	return false
}

// seenQuerier is a protocol that can say whether it already has a message
// (the gossip core can). With one that cannot, the loop never waits for
// late copies.
type seenQuerier interface {
	Seen(now int64, id wire.MsgID) bool
}

// maxWaitBatch is the largest batch that waits for late copies. A node
// that takes bigger batches is busy, and its backlog, not a preempted
// sender, decides which copy comes first; waiting would only cost it
// throughput.
const maxWaitBatch = 16

// maxNearest bounds the per-origin hop memory; an origin's entry is only a
// hint, so the map is simply emptied when full.
const maxNearest = 4096

// nearest is what a node knows of its distance from one origin.
type nearest struct {
	hop    uint16 // lowest hop of a first receipt from the origin
	misses uint8  // waits in a row that brought no copy at hop
}

// maxMisses is how many waits in a row may bring nothing shorter before
// the estimate moves up one hop: a preempted sender is sometimes too late
// even so, but a path that grew longer (a link went down) should stop
// costing waits after a few messages.
const maxMisses = 8

// learnNearest records the hop of a first receipt from origin.
func (n *Node) learnNearest(origin wire.NodeID, hop uint16, waited bool) {
	e, ok := n.nearest[origin]
	switch {
	case !ok:
		if n.nearest == nil || len(n.nearest) >= maxNearest {
			n.nearest = make(map[wire.NodeID]nearest)
		}
		n.nearest[origin] = nearest{hop: hop}
	case hop <= e.hop:
		n.nearest[origin] = nearest{hop: hop}
	case waited:
		e.misses++
		if e.misses >= maxMisses {
			e = nearest{hop: e.hop + 1}
		}
		n.nearest[origin] = e
	}
}

// lowerHopBefore reports whether a copy of batch[i]'s message with a lower
// hop comes before it in the (sorted) batch.
func (n *Node) lowerHopBefore(i int) bool {
	m := &n.batch[i].msg
	for j := range i {
		if o := &n.batch[j].msg; o.ID == m.ID && o.Hop < m.Hop {
			return true
		}
	}
	return false
}

// letLateCopiesIn yields the CPU to other processes once, then parks the
// loop until the Go scheduler has polled the network.
func (n *Node) letLateCopiesIn() {
	osYield()
	if n.poll == nil && !n.pollBroken {
		n.poll = n.startNetPoller()
		n.pollBroken = n.poll == nil
	}
	if p := n.poll; p != nil && !p.wait() {
		n.poll, n.pollBroken = nil, true
	}
	runtime.Gosched() // readers readied by the poll queue their frames
}

// netPoller makes the Go scheduler poll the network on demand.
// runtime.Gosched does not: the scheduler polls only when it has nothing
// else to run, and a yielding goroutine is still runnable. So the loop
// parks reading a pipe that a helper goroutine writes to only after the
// loop parked; the scheduler, with nothing to run, polls, and that one poll
// wakes the loop and every reader whose socket became readable together.
// It costs a pipe (two descriptors) and a goroutine per node.
type netPoller struct {
	r    *os.File
	poke chan struct{}
	dead chan struct{} // closed when the helper has stopped
	buf  [1]byte
}

// startNetPoller starts the helper, which stops with the node. It returns
// nil if no pipe can be made; the loop then only yields.
func (n *Node) startNetPoller() *netPoller {
	r, w, err := os.Pipe()
	if err != nil {
		n.log.Warn("no pipe to poll the network with; hop counts will be less exact", "err", err)
		return nil
	}
	p := &netPoller{r: r, poke: make(chan struct{}), dead: make(chan struct{})}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(p.dead)
		defer r.Close()
		defer w.Close() // ends a Read in progress with EOF
		one := []byte{1}
		for {
			select {
			case <-p.poke:
				// Let the loop park in its Read first, if it is not
				// parked yet: a write before it would spare the poll.
				runtime.Gosched()
				if _, err := w.Write(one); err != nil {
					return
				}
			case <-n.stop:
				return
			}
		}
	}()
	return p
}

// wait parks the caller until the helper has written, which happens only
// after the scheduler ran out of other work and polled. It reports false
// if the helper has stopped.
func (p *netPoller) wait() bool {
	select {
	case p.poke <- struct{}{}:
	case <-p.dead:
		return false
	}
	_, err := p.r.Read(p.buf[:])
	return err == nil
}
