package membership

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"gossipmesh/wire"
)

// world is a virtual-time network of Memberships with instant links: the
// driver a simulator would be, small enough for a test. A dial to a dead
// node or a paused one fails; a dead node's links close at
// once (its peers see Down, as a runtime sees a closed socket); a paused
// node keeps its links but answers nothing.
type world struct {
	t      *testing.T
	cfg    Config
	ms     []*Membership
	dead   []bool
	paused []bool
	links  []map[int]bool
	now    int64
	// dials counts the dials node i asked for to node j, [i, j]; drops
	// the surplus links dropped. Both since the last resetCounts.
	dials map[[2]int]int
	drops int
}

func entryOf(i int) Entry {
	return Entry{ID: wire.NodeID(i + 1), Addr: fmt.Sprintf("127.0.0.1:%d", 10000+i)}
}

func indexOf(id wire.NodeID) int { return int(id) - 1 }

func newWorld(t *testing.T, n int, seed uint64) *world {
	w := &world{t: t, cfg: DefaultConfig(), dead: make([]bool, n), paused: make([]bool, n), links: make([]map[int]bool, n), dials: map[[2]int]int{}}
	for i := range n {
		m, err := New(w.cfg, entryOf(i).ID, entryOf(i).Addr, rand.New(rand.NewPCG(seed, uint64(i))))
		if err != nil {
			t.Fatal(err)
		}
		w.ms = append(w.ms, m)
		w.links[i] = map[int]bool{}
	}
	// Boot: each node dials three earlier nodes, as `mesh up` seeds them
	// (a connected graph), and knows nothing else.
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := 1; i < n; i++ {
		for range 3 {
			j := rng.IntN(i)
			w.ms[i].Seed(entryOf(j))
			w.connect(i, j)
		}
	}
	return w
}

func (w *world) connect(a, b int) bool {
	if a == b || w.dead[b] || w.paused[b] || w.links[a][b] {
		return false
	}
	w.links[a][b], w.links[b][a] = true, true
	var oa, ob Output
	w.ms[a].Up(w.now, entryOf(b), false, &oa)
	w.ms[b].Up(w.now, entryOf(a), true, &ob)
	w.act(a, &oa)
	w.act(b, &ob)
	return true
}

func (w *world) disconnect(a, b int) {
	if !w.links[a][b] {
		return
	}
	delete(w.links[a], b)
	delete(w.links[b], a)
	for _, p := range [][2]int{{a, b}, {b, a}} {
		if !w.dead[p[0]] {
			var o Output
			w.ms[p[0]].Down(w.now, entryOf(p[1]).ID, &o)
			w.act(p[0], &o)
		}
	}
}

// act carries out what node i asked for.
func (w *world) act(i int, o *Output) {
	if w.paused[i] {
		return // a stopped process does nothing
	}
	for _, x := range o.Exchanges {
		j := indexOf(x.To)
		if w.links[i][j] && !w.paused[j] {
			var oj Output
			w.ms[j].ExchangeFrom(w.now, entryOf(i).ID, x.Need, x.Entries, &oj)
			w.act(j, &oj)
		}
	}
	for _, id := range o.Pings {
		j := indexOf(id)
		if w.links[i][j] && !w.paused[j] {
			var oi Output
			w.ms[i].Heard(w.now, id, &oi) // the PONG
			w.act(i, &oi)
		}
	}
	w.drops += len(o.Drop)
	for _, e := range o.Dial {
		w.dials[[2]int{i, indexOf(e.ID)}]++
	}
	for _, id := range append(append([]wire.NodeID(nil), o.Evict...), o.Drop...) {
		w.disconnect(i, indexOf(id))
	}
	for _, e := range o.Dial {
		if !w.connect(i, indexOf(e.ID)) {
			var oi Output
			w.ms[i].DialFailed(w.now, e, &oi)
			w.act(i, &oi)
		}
	}
}

func (w *world) runFor(d time.Duration) {
	end := w.now + int64(d)
	for ; w.now < end; w.now += 250 * ms {
		for i, m := range w.ms {
			if w.dead[i] || w.paused[i] {
				continue
			}
			var o Output
			m.NextTick()
			m.Tick(w.now, &o)
			w.act(i, &o)
		}
	}
}

// resetCounts starts the dial and drop counts afresh.
func (w *world) resetCounts() {
	clear(w.dials)
	w.drops = 0
}

// redials is the most dials one node asked for to one other, and how
// many dials in all, since the last resetCounts.
func (w *world) redials() (most, all int) {
	for _, n := range w.dials {
		most = max(most, n)
		all += n
	}
	return most, all
}

func (w *world) kill(i int) {
	w.dead[i] = true
	for j := range w.links[i] {
		w.disconnect(i, j)
	}
}

// check asserts every live node is within its degree bounds, its active
// view is its links, and the live nodes' graph is connected.
func (w *world) check(what string) {
	w.t.Helper()
	start, alive := -1, 0
	for i := range w.ms {
		if w.dead[i] {
			continue
		}
		alive++
		start = i
		d := len(w.links[i])
		if d < w.cfg.ActiveLow || d > w.cfg.ActiveHigh {
			w.t.Errorf("%s: node %d has degree %d, want %d..%d", what, i, d, w.cfg.ActiveLow, w.cfg.ActiveHigh)
		}
		if a := len(w.ms[i].Active()); a != d {
			w.t.Errorf("%s: node %d: active view %d, links %d", what, i, a, d)
		}
		if p := len(w.ms[i].Passive()); p > w.cfg.PassiveSize {
			w.t.Errorf("%s: node %d: passive view %d above its bound", what, i, p)
		}
	}
	seen := map[int]bool{start: true}
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for j := range w.links[i] {
			if !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	if len(seen) != alive {
		w.t.Errorf("%s: %d of %d live nodes reachable from node %d", what, len(seen), alive, start)
	}
}

// TestScenarioKillThirtyPercent: 200 nodes learn each other by peer
// exchange; 30% die at once; the survivors refill their active views from
// their passive views and stay connected.
func TestScenarioKillThirtyPercent(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		w := newWorld(t, 200, seed)
		w.runFor(30 * time.Second)
		learned := 0
		for _, m := range w.ms {
			learned += len(m.Passive())
		}
		if learned < 200*w.cfg.PassiveSize/2 {
			t.Errorf("seed %d: passive views hold %d entries in all after 30 s of exchanges, want most of %d", seed, learned, 200*w.cfg.PassiveSize)
		}
		w.check(fmt.Sprintf("seed %d before the kill", seed))
		rng := rand.New(rand.NewPCG(seed, 7))
		for _, i := range rng.Perm(200)[:60] {
			w.kill(i)
		}
		w.runFor(10 * time.Second)
		w.check(fmt.Sprintf("seed %d after killing 30%%", seed))
	}
}

// TestScenarioHungNodeEvicted: a node that stops answering (SIGSTOP)
// keeps its links but is evicted by every peer; a one-second pause of
// another evicts nobody.
func TestScenarioHungNodeEvicted(t *testing.T) {
	w := newWorld(t, 50, 4)
	w.runFor(20 * time.Second)
	w.check("before")
	const hung, brief = 7, 9
	peers := len(w.links[hung])
	briefPeers := len(w.links[brief])
	w.paused[hung], w.paused[brief] = true, true
	w.runFor(time.Second)
	w.paused[brief] = false
	w.runFor(14 * time.Second)
	if len(w.links[hung]) != 0 {
		t.Errorf("hung node still linked to %d of its %d peers", len(w.links[hung]), peers)
	}
	if len(w.links[brief]) < briefPeers {
		t.Errorf("a one-second pause cost node %d links: %d, had %d", brief, len(w.links[brief]), briefPeers)
	}
	w.dead[hung] = true // for check: it is out of the mesh
	w.check("after the hang")
}

// TestScenarioNoRedialFlapping: once the views settle, nothing is dialed
// or dropped; after 30% of the nodes die, the survivors refill their views
// without dialing any one node more than twice (a full node that refused
// them, or a dead one, is passed over for RefusalBackoff). Before, a
// survivor owed several replacements dialed the same full node up to six
// times in a row, each link up and dropped at once (a 50-process mesh
// showed the same, ten times in 1.3 s).
func TestScenarioNoRedialFlapping(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		w := newWorld(t, 50, seed)
		w.runFor(30 * time.Second)
		w.resetCounts()
		w.runFor(20 * time.Second)
		if _, all := w.redials(); all != 0 || w.drops != 0 {
			t.Errorf("seed %d: at a steady membership, %d dials and %d drops in 20 s; want none", seed, all, w.drops)
		}
		w.resetCounts()
		rng := rand.New(rand.NewPCG(seed, 7))
		for _, i := range rng.Perm(50)[:15] {
			w.kill(i)
		}
		w.runFor(10 * time.Second)
		if most, all := w.redials(); most > 2 {
			t.Errorf("seed %d: after the kill, a node dialed one other %d times (%d dials in all); want at most 2", seed, most, all)
		}
		w.check(fmt.Sprintf("seed %d after killing 30%%", seed))
	}
}
