package adversary

import (
	"bytes"
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// testMesh is an in-memory network of protocols in virtual time: every
// send becomes an arrival 1-10 ms later (seeded), ticks come at each
// node's NextTick, and what every node delivers is recorded, so that a
// test can tell what honest nodes accepted from the liars among them.
type testMesh struct {
	t     *testing.T
	nodes map[wire.NodeID]gossip.Protocol
	ids   []wire.NodeID
	evil  map[wire.NodeID]bool
	links map[wire.NodeID][]wire.NodeID
	rng   *rand.Rand
	q     evQueue
	seq   uint64
	now   int64
	out   gossip.Output

	// pubs are the messages honest nodes published, by id.
	pubs map[wire.MsgID]*wire.Message
	// got counts deliveries per node and id; at is the first delivery's
	// time; body is what was delivered first.
	got  map[wire.NodeID]map[wire.MsgID]int
	at   map[wire.NodeID]map[wire.MsgID]int64
	body map[wire.NodeID]map[wire.MsgID][]byte
	// rejected and refused count those events at honest nodes.
	rejected, refused int
	// framesTo counts frames that reached each node.
	framesTo map[wire.NodeID]int
	// origin is the claimed origin of every delivered id.
	origin map[wire.MsgID]wire.NodeID
	// frameRate, when positive, is a per-link limit on the frames a node
	// takes from one peer a second (a second's worth of burst), as the
	// node runtime's PeerFrameRate: a frame over it is dropped and, at a
	// guarded node, counted against the peer (Guard.Penalize).
	frameRate float64
	buckets   map[[2]wire.NodeID]*bucket
	// bans records every Disconnect a node asked for: banned[a][b] says
	// that a cut b off.
	banned map[wire.NodeID]map[wire.NodeID]bool
}

// bucket is a token bucket, as the node runtime's.
type bucket struct {
	tokens float64
	last   int64
}

func (b *bucket) take(now int64, rate float64) bool {
	if b.last == 0 {
		b.tokens, b.last = rate, now
	} else if now > b.last {
		b.tokens = min(rate, b.tokens+rate*float64(now-b.last)/1e9)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type ev struct {
	at   int64
	seq  uint64
	to   wire.NodeID
	from wire.NodeID
	f    gossip.Frame
	body []byte // a publish when f is empty
}

type evQueue []ev

func (q evQueue) Len() int { return len(q) }
func (q evQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q evQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *evQueue) Push(x any)   { *q = append(*q, x.(ev)) }
func (q *evQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// builder makes node id's protocol; evil says whether it is an adversary.
type builder func(id wire.NodeID, rng *rand.Rand) gossip.Protocol

// newMesh builds n nodes (ids 1..n) with the given undirected links, and
// brings every link up at time 0.
func newMesh(t *testing.T, n int, links [][2]int, seed uint64, build builder, evil map[wire.NodeID]bool) *testMesh {
	t.Helper()
	m := &testMesh{
		t: t, nodes: map[wire.NodeID]gossip.Protocol{}, evil: evil, links: map[wire.NodeID][]wire.NodeID{},
		rng:  rand.New(rand.NewPCG(seed, 99)),
		pubs: map[wire.MsgID]*wire.Message{},
		got:  map[wire.NodeID]map[wire.MsgID]int{}, at: map[wire.NodeID]map[wire.MsgID]int64{},
		body: map[wire.NodeID]map[wire.MsgID][]byte{}, framesTo: map[wire.NodeID]int{},
		origin: map[wire.MsgID]wire.NodeID{}, buckets: map[[2]wire.NodeID]*bucket{},
		banned: map[wire.NodeID]map[wire.NodeID]bool{},
	}
	if m.evil == nil {
		m.evil = map[wire.NodeID]bool{}
	}
	for i := 1; i <= n; i++ {
		id := wire.NodeID(i)
		m.ids = append(m.ids, id)
		m.nodes[id] = build(id, rand.New(rand.NewPCG(seed, uint64(i))))
		m.got[id], m.at[id], m.body[id] = map[wire.MsgID]int{}, map[wire.MsgID]int64{}, map[wire.MsgID][]byte{}
	}
	for _, l := range links {
		a, b := wire.NodeID(l[0]), wire.NodeID(l[1])
		if a == b || slices.Contains(m.links[a], b) {
			continue
		}
		m.links[a] = append(m.links[a], b)
		m.links[b] = append(m.links[b], a)
	}
	for _, id := range m.ids {
		for _, p := range m.links[id] {
			m.nodes[id].PeerUp(0, p, &m.out)
			m.handle(id)
		}
	}
	return m
}

// coreBuilder builds plain gossip cores of cfg, and wraps the ids in
// modes with an adversary.
func coreBuilder(t *testing.T, cfg gossip.Config, modes map[wire.NodeID]Modes) builder {
	sh, err := gossip.Share(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return func(id wire.NodeID, rng *rand.Rand) gossip.Protocol {
		c := gossip.NewShared(sh, id, rng)
		if ms, ok := modes[id]; ok {
			return Wrap(c, ms, rand.New(rand.NewPCG(uint64(id), 7)))
		}
		return c
	}
}

// guardBuilder is coreBuilder with every honest core behind a scoring
// guard of the default parameters.
func guardBuilder(t *testing.T, cfg gossip.Config, modes map[wire.NodeID]Modes) builder {
	inner := coreBuilder(t, cfg, modes)
	return func(id wire.NodeID, rng *rand.Rand) gossip.Protocol {
		p := inner(id, rng)
		if _, evil := modes[id]; evil {
			return p
		}
		g, err := score.NewGuard(p, score.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
}

// shutOut reports the honest nodes linked to liar at the start that did
// not cut it off.
func (m *testMesh) shutOut(liar wire.NodeID, peers []wire.NodeID) (kept []wire.NodeID) {
	for _, p := range peers {
		if !m.evil[p] && !m.banned[p][liar] {
			kept = append(kept, p)
		}
	}
	return kept
}

// publish schedules a publish of body at node id at time at.
func (m *testMesh) publish(at int64, id wire.NodeID, body []byte) {
	m.push(ev{at: at, to: id, body: body})
}

func (m *testMesh) push(e ev) {
	m.seq++
	e.seq = m.seq
	heap.Push(&m.q, e)
}

// run processes arrivals, publishes and ticks up to virtual time until.
func (m *testMesh) run(until int64) {
	for steps := 0; ; steps++ {
		if steps > 50_000_000 {
			m.t.Fatal("mesh does not settle")
		}
		var tn int64
		var tid wire.NodeID
		for _, id := range m.ids {
			if t := m.nodes[id].NextTick(); t != 0 && (tn == 0 || t < tn) {
				tn, tid = t, id
			}
		}
		te := int64(-1)
		if len(m.q) > 0 {
			te = m.q[0].at
		}
		switch {
		case tn != 0 && (te < 0 || tn <= te) && tn <= until:
			m.now = max(m.now, tn)
			m.nodes[tid].Tick(m.now, &m.out)
			m.handle(tid)
		case te >= 0 && te <= until:
			e := heap.Pop(&m.q).(ev)
			m.now = e.at
			p := m.nodes[e.to]
			if e.f.Msg == nil && e.f.Ctl == nil {
				msg, err := p.Publish(m.now, e.body, &m.out)
				if err != nil {
					m.t.Fatalf("publish at %v: %v", e.to, err)
				}
				if !m.evil[e.to] {
					m.pubs[msg.ID] = msg
				}
			} else if slices.Contains(m.links[e.to], e.from) {
				m.framesTo[e.to]++
				if m.frameRate > 0 && !m.evil[e.to] {
					k := [2]wire.NodeID{e.to, e.from}
					if m.buckets[k] == nil {
						m.buckets[k] = &bucket{}
					}
					if !m.buckets[k].take(m.now, m.frameRate) {
						if g, ok := p.(*score.Guard); ok {
							g.Penalize(m.now, e.from, 1, &m.out)
						}
						m.handle(e.to)
						continue
					}
				}
				p.Step(m.now, e.from, e.f, &m.out)
			}
			m.handle(e.to)
		default:
			m.now = max(m.now, until)
			return
		}
	}
}

// handle records node id's events and turns its sends into arrivals.
func (m *testMesh) handle(id wire.NodeID) {
	for _, e := range m.out.Events {
		switch e.Kind {
		case gossip.EventDelivered, gossip.EventPublished:
			if m.got[id][e.Msg.ID] == 0 {
				m.at[id][e.Msg.ID] = m.now
				m.body[id][e.Msg.ID] = bytes.Clone(e.Msg.Body)
			}
			m.got[id][e.Msg.ID]++
			m.origin[e.Msg.ID] = e.Msg.Origin
		case gossip.EventRejected:
			if !m.evil[id] {
				m.rejected++
			}
		case gossip.EventRefused:
			if !m.evil[id] {
				m.refused++
			}
		}
	}
	for _, s := range m.out.Sends {
		if !slices.Contains(m.links[id], s.To) {
			continue // no such link (a peer gone)
		}
		m.push(ev{at: m.now + int64(time.Millisecond)*(1+m.rng.Int64N(10)), to: s.To, from: id, f: s.Frame})
	}
	cuts := slices.Clone(m.out.Disconnects)
	m.out.Reset()
	for _, d := range cuts {
		m.cut(id, d.Peer)
	}
}

// cut acts on a Disconnect: a asks to close its link to b, which goes
// down at both ends (frames on their way are dropped on arrival), and
// both hear PeerDown.
func (m *testMesh) cut(a, b wire.NodeID) {
	if m.banned[a] == nil {
		m.banned[a] = map[wire.NodeID]bool{}
	}
	m.banned[a][b] = true
	if !slices.Contains(m.links[a], b) {
		return
	}
	m.links[a] = slices.DeleteFunc(m.links[a], func(x wire.NodeID) bool { return x == b })
	m.links[b] = slices.DeleteFunc(m.links[b], func(x wire.NodeID) bool { return x == a })
	m.nodes[b].PeerDown(m.now, a, &m.out)
	m.handle(b)
	m.nodes[a].PeerDown(m.now, b, &m.out)
	m.handle(a)
}

// honest returns the honest nodes.
func (m *testMesh) honest() []wire.NodeID {
	var hs []wire.NodeID
	for _, id := range m.ids {
		if !m.evil[id] {
			hs = append(hs, id)
		}
	}
	return hs
}

// report sums up what honest nodes got.
type report struct {
	// reach is the fraction of (honest message, honest node) pairs
	// delivered with the published body.
	reach float64
	// missing lists the honest nodes that lack some honest message.
	missing []wire.NodeID
	// tampered counts honest deliveries of an honest message's id with
	// another body.
	tampered int
	// forged counts honest deliveries of messages that claim an honest
	// origin that never published them.
	forged int
	// foreign counts honest deliveries of messages no honest node
	// published (forged, spam, invalid).
	foreign int
	// again counts second and later deliveries of one id at one node.
	again int
	// maxLatency is the latest first delivery of an honest message at an
	// honest node, after its publish.
	maxLatency time.Duration
}

func (m *testMesh) report() report {
	var r report
	hs := m.honest()
	honestID := map[wire.NodeID]bool{}
	for _, h := range hs {
		honestID[h] = true
	}
	ok, total := 0, 0
	for _, h := range hs {
		lacks := false
		for id, pub := range m.pubs {
			total++
			n := m.got[h][id]
			switch {
			case n == 0:
				lacks = true
			case !bytes.Equal(m.body[h][id], pub.Body):
				r.tampered++
				lacks = true
			default:
				ok++
				if l := time.Duration(m.at[h][id] - pub.PublishedAt); l > r.maxLatency {
					r.maxLatency = l
				}
			}
		}
		if lacks {
			r.missing = append(r.missing, h)
		}
		for id, n := range m.got[h] {
			if n > 1 {
				r.again += n - 1
			}
			if _, isPub := m.pubs[id]; isPub {
				continue
			}
			r.foreign++
		}
	}
	// Forged: a delivery whose id no honest publish made but whose claimed
	// origin is honest. The origin is only in the message, so look again.
	r.forged = m.forgedAccepted(honestID)
	if total > 0 {
		r.reach = float64(ok) / float64(total)
	}
	return r
}

// forgedAccepted counts honest deliveries that claim an honest origin
// whose publishes do not include them.
func (m *testMesh) forgedAccepted(honestID map[wire.NodeID]bool) int {
	n := 0
	for _, h := range m.honest() {
		for id := range m.got[h] {
			if _, ok := m.pubs[id]; ok {
				continue
			}
			if o, ok := m.origin[id]; ok && honestID[o] {
				n++
			}
		}
	}
	return n
}

func (r report) String() string {
	return fmt.Sprintf("reach %.4f, %d honest nodes missing some, tampered %d, forged %d, foreign %d, again %d, max latency %v",
		r.reach, len(r.missing), r.tampered, r.forged, r.foreign, r.again, r.maxLatency)
}

// line links 1-2-3-...-n.
func line(n int) [][2]int {
	var ls [][2]int
	for i := 1; i < n; i++ {
		ls = append(ls, [2]int{i, i + 1})
	}
	return ls
}

// randomMesh links each of n nodes to k random others (undirected, so the
// mean degree is about 2k), seeded, plus a ring so that it is connected.
func randomMesh(n, k int, seed uint64) [][2]int {
	rng := rand.New(rand.NewPCG(seed, 1))
	var ls [][2]int
	for i := 1; i <= n; i++ {
		ls = append(ls, [2]int{i, i%n + 1})
		for range k - 1 {
			ls = append(ls, [2]int{i, 1 + rng.IntN(n)})
		}
	}
	return ls
}

// body returns a distinct body for publish i.
func body(i int) []byte { return []byte(fmt.Sprintf("honest message %04d", i)) }

// publishAll has every honest node in from publish count messages, spread
// over span from start.
func (m *testMesh) publishAll(from []wire.NodeID, count int, start int64, span time.Duration) {
	for i := range count {
		id := from[i%len(from)]
		m.publish(start+int64(span)*int64(i)/int64(count), id, body(i))
	}
}
