package adversary

import (
	"slices"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/score"
	"gossipmesh/wire"
)

// Each test here runs one mode in a small in-memory mesh of gossip cores
// and shows its harm with the defences off (a core that checks nothing it
// need not: no signatures, no id verification) and, where a defence
// exists, no harm with it on.

// offConfig is a core with every defence off.
func offConfig() gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.VerifyIDs = false
	cfg.Signing = gossip.SigningNone
	return cfg
}

// onConfig is a core with the defences on: strict signing, with the
// simulator's cost model of signatures (gossip.ModelAuth) as its Auth.
func onConfig() gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.Auth = gossip.NewModelAuth(1)
	return cfg
}

// every returns the ids 1..n that are multiples of k.
func every(n, k int) []wire.NodeID {
	var ids []wire.NodeID
	for i := k; i <= n; i += k {
		ids = append(ids, wire.NodeID(i))
	}
	return ids
}

// liars gives each of ids the modes ms.
func liars(ids []wire.NodeID, ms string) (map[wire.NodeID]Modes, map[wire.NodeID]bool) {
	parsed, err := Parse(ms)
	if err != nil {
		panic(err)
	}
	modes, evil := map[wire.NodeID]Modes{}, map[wire.NodeID]bool{}
	for _, id := range ids {
		modes[id], evil[id] = parsed, true
	}
	return modes, evil
}

func statsOf(m *testMesh, id wire.NodeID) Stats { return m.nodes[id].(*Node).Stats() }

func TestBlackholeMesh(t *testing.T) {
	t.Parallel()
	t.Run("off: a blackhole cuts a line", func(t *testing.T) {
		modes, evil := liars([]wire.NodeID{10}, "blackhole")
		m := newMesh(t, 20, line(20), 1, coreBuilder(t, offConfig(), modes), evil)
		m.publishAll([]wire.NodeID{1}, 5, 0, 50*time.Millisecond)
		m.run(int64(2 * time.Second))
		r := m.report()
		want := []wire.NodeID{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
		if !slices.Equal(r.missing, want) {
			t.Errorf("honest nodes missing messages: %v, want those behind the blackhole %v (%v)", r.missing, want, r)
		}
		if m.got[10][firstID(m)] == 0 {
			t.Error("the blackhole did not receive what it withheld")
		}
		if s := statsOf(m, 10); s.Dropped == 0 {
			t.Errorf("blackhole stats %+v: nothing dropped", s)
		}
	})
	t.Run("on: a third of a redundant mesh blackholed, every honest node gets everything", func(t *testing.T) {
		modes, evil := liars(every(45, 3), "blackhole")
		m := newMesh(t, 45, randomMesh(45, 5, 2), 2, coreBuilder(t, onConfig(), modes), evil)
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(3 * time.Second))
		if r := m.report(); r.reach != 1 {
			t.Errorf("honest reach with blackholes: %v", r)
		}
	})
}

func firstID(m *testMesh) wire.MsgID {
	for id := range m.pubs {
		return id
	}
	return wire.MsgID{}
}

func TestTamperMesh(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, cfg gossip.Config) (*testMesh, report) {
		modes, evil := liars(every(30, 5), "tamper")
		m := newMesh(t, 30, randomMesh(30, 3, 3), 3, coreBuilder(t, cfg, modes), evil)
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(3 * time.Second))
		return m, m.report()
	}
	t.Run("off: tampered bodies delivered", func(t *testing.T) {
		m, r := run(t, offConfig())
		if r.tampered == 0 {
			t.Errorf("no honest node delivered a tampered body: %v", r)
		}
		if s := statsOf(m, 5); s.Tampered == 0 {
			t.Errorf("tamperer stats %+v", s)
		}
	})
	t.Run("on: none delivered, every honest body arrives", func(t *testing.T) {
		m, r := run(t, onConfig())
		if r.tampered != 0 || r.reach != 1 {
			t.Errorf("with the defences on: %v", r)
		}
		if m.rejected == 0 {
			t.Error("no tampered copy was rejected: the tamperers did nothing")
		}
	})
}

func TestForgeMesh(t *testing.T) {
	t.Parallel()
	t.Run("off: forged origins accepted", func(t *testing.T) {
		modes, evil := liars(every(30, 10), "forge=20")
		m := newMesh(t, 30, randomMesh(30, 3, 4), 4, coreBuilder(t, offConfig(), modes), evil)
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(2 * time.Second))
		r := m.report()
		if r.forged == 0 {
			t.Errorf("no forged message accepted: %v", r)
		}
		if s := statsOf(m, 10); s.Forged == 0 {
			t.Errorf("forger stats %+v", s)
		}
	})
	t.Run("on: strict signing accepts no forgery, and the guard bans the forgers", func(t *testing.T) {
		modes, evil := liars(every(30, 10), "forge=20")
		m := newMesh(t, 30, randomMesh(30, 3, 4), 4, guardBuilder(t, onConfig(), modes), evil)
		peers := map[wire.NodeID][]wire.NodeID{}
		for id := range evil {
			peers[id] = slices.Clone(m.links[id])
		}
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(2 * time.Second))
		r := m.report()
		if r.forged != 0 || r.foreign != 0 || r.reach != 1 {
			t.Errorf("with the defences on: %v", r)
		}
		for id, ps := range peers {
			if statsOf(m, id).Forged == 0 {
				t.Errorf("forger %v forged nothing", id)
			}
			if kept := m.shutOut(id, ps); len(kept) > 0 {
				t.Errorf("honest peers %v of %v did not ban forger %v", kept, ps, id)
			}
		}
	})
}

func TestReplayMesh(t *testing.T) {
	t.Parallel()
	t.Run("off: a replay past the seen window is delivered again", func(t *testing.T) {
		cfg := offConfig()
		cfg.SeenTTL = time.Second
		modes, evil := liars(every(30, 10), "replay=20")
		m := newMesh(t, 30, randomMesh(30, 3, 5), 5, coreBuilder(t, cfg, modes), evil)
		m.publishAll(m.honest(), 10, 0, 100*time.Millisecond)
		m.run(int64(4 * time.Second))
		r := m.report()
		if r.again == 0 {
			t.Errorf("no message delivered twice: %v", r)
		}
		if m.refused == 0 {
			t.Error("no verbatim replay past the window was refused as expired")
		}
		if s := statsOf(m, 10); s.Replayed == 0 {
			t.Errorf("replayer stats %+v", s)
		}
	})
	t.Run("on: with signed publish times no replay is delivered again", func(t *testing.T) {
		cfg := onConfig()
		cfg.SeenTTL = time.Second
		modes, evil := liars(every(30, 10), "replay=20")
		m := newMesh(t, 30, randomMesh(30, 3, 5), 5, coreBuilder(t, cfg, modes), evil)
		m.publishAll(m.honest(), 10, 0, 100*time.Millisecond)
		m.run(int64(4 * time.Second))
		r := m.report()
		if r.again != 0 || r.reach != 1 {
			t.Errorf("with the defences on: %v", r)
		}
		if m.rejected == 0 || statsOf(m, 10).Replayed == 0 {
			t.Errorf("no rewritten replay was rejected (%d rejected, stats %+v)", m.rejected, statsOf(m, 10))
		}
	})
}

func TestSpamMesh(t *testing.T) {
	t.Parallel()
	t.Run("off: every honest node delivers the spam", func(t *testing.T) {
		modes, evil := liars([]wire.NodeID{7}, "spam=200")
		m := newMesh(t, 30, randomMesh(30, 3, 6), 6, coreBuilder(t, offConfig(), modes), evil)
		m.publishAll(m.honest(), 10, 0, 100*time.Millisecond)
		m.run(int64(time.Second))
		r := m.report()
		s := statsOf(m, 7)
		if s.Spammed < 150 {
			t.Errorf("spammer sent %d in a second at 200/s", s.Spammed)
		}
		if per := r.foreign / len(m.honest()); per < 100 {
			t.Errorf("honest nodes delivered %d spam messages each, want most of %d: %v", per, s.Spammed, r)
		}
	})
}

func TestSpamInvalidMesh(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, cfg gossip.Config) (*testMesh, report) {
		modes, evil := liars([]wire.NodeID{7}, "spam-invalid=100")
		m := newMesh(t, 30, randomMesh(30, 3, 7), 7, coreBuilder(t, cfg, modes), evil)
		m.publishAll(m.honest(), 10, 0, 100*time.Millisecond)
		m.run(int64(time.Second))
		return m, m.report()
	}
	t.Run("off: invalid messages delivered", func(t *testing.T) {
		_, r := run(t, offConfig())
		if r.foreign == 0 {
			t.Errorf("no invalid message delivered: %v", r)
		}
	})
	t.Run("on: none delivered, all rejected", func(t *testing.T) {
		m, r := run(t, onConfig())
		if r.foreign != 0 || r.reach != 1 {
			t.Errorf("with the defences on: %v", r)
		}
		if s := statsOf(m, 7); m.rejected < int(s.Spammed) {
			t.Errorf("%d rejections for %d invalid messages", m.rejected, s.Spammed)
		}
	})
}

func TestDelayMesh(t *testing.T) {
	t.Parallel()
	const d = 500 * time.Millisecond
	t.Run("off: nodes behind a delayer get everything late", func(t *testing.T) {
		modes, evil := liars([]wire.NodeID{5}, "delay=500ms")
		m := newMesh(t, 10, line(10), 8, coreBuilder(t, offConfig(), modes), evil)
		m.publishAll([]wire.NodeID{1}, 5, 0, 50*time.Millisecond)
		m.run(int64(3 * time.Second))
		r := m.report()
		if r.reach != 1 || r.maxLatency < d {
			t.Errorf("behind a 500 ms delayer: %v", r)
		}
		if s := statsOf(m, 5); s.Delayed == 0 {
			t.Errorf("delayer stats %+v", s)
		}
	})
	t.Run("on: a redundant mesh routes around delayers", func(t *testing.T) {
		modes, evil := liars(every(40, 5), "delay=500ms")
		m := newMesh(t, 40, randomMesh(40, 4, 9), 9, coreBuilder(t, onConfig(), modes), evil)
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(3 * time.Second))
		if r := m.report(); r.reach != 1 || r.maxLatency >= d {
			t.Errorf("with delayers in a redundant mesh: %v", r)
		}
	})
}

func TestCensorMesh(t *testing.T) {
	t.Parallel()
	t.Run("off: the censored origin is missing behind the censor", func(t *testing.T) {
		modes, evil := liars([]wire.NodeID{5}, "censor=1")
		m := newMesh(t, 10, line(10), 10, coreBuilder(t, offConfig(), modes), evil)
		m.publish(0, 1, body(1))
		m.publish(0, 10, body(2))
		m.run(int64(2 * time.Second))
		var fromOne, fromTen wire.MsgID
		for id, p := range m.pubs {
			if p.Origin == 1 {
				fromOne = id
			} else {
				fromTen = id
			}
		}
		for _, h := range m.honest() {
			if got := m.got[h][fromOne] > 0; got != (h < 5) {
				t.Errorf("node %v has node 1's message: %v", h, got)
			}
			if m.got[h][fromTen] == 0 {
				t.Errorf("node %v lacks node 10's message, which is not censored", h)
			}
		}
		if s := statsOf(m, 5); s.Censored == 0 {
			t.Errorf("censor stats %+v", s)
		}
	})
	t.Run("on: a redundant mesh routes around censors", func(t *testing.T) {
		modes, evil := liars(every(40, 4), "censor=1")
		m := newMesh(t, 40, randomMesh(40, 4, 11), 11, coreBuilder(t, onConfig(), modes), evil)
		m.publishAll([]wire.NodeID{1, 2, 3}, 12, 0, 100*time.Millisecond)
		m.run(int64(2 * time.Second))
		if r := m.report(); r.reach != 1 {
			t.Errorf("with censors in a redundant mesh: %v", r)
		}
	})
}

func TestEclipseMesh(t *testing.T) {
	t.Parallel()
	// Node 1 links only to nodes 2-6; nodes 2-40 form a mesh.
	links := [][2]int{{1, 2}, {1, 3}, {1, 4}, {1, 5}, {1, 6}}
	for _, l := range randomMesh(39, 3, 12) {
		links = append(links, [2]int{l[0] + 1, l[1] + 1})
	}
	sybils := []wire.NodeID{2, 3, 4, 5, 6}
	t.Run("off: the surrounded target hears nothing and is heard by nobody", func(t *testing.T) {
		modes, evil := liars(sybils, "eclipse=1")
		m := newMesh(t, 40, links, 12, coreBuilder(t, offConfig(), modes), evil)
		m.publishAll([]wire.NodeID{1, 10, 20}, 9, 0, 90*time.Millisecond)
		m.run(int64(2 * time.Second))
		r := m.report()
		if len(m.got[1]) != 3 { // its own three
			t.Errorf("the target delivered %d messages, want only its own 3", len(m.got[1]))
		}
		for id, p := range m.pubs {
			if p.Origin != 1 {
				continue
			}
			for _, h := range m.honest() {
				if h != 1 && m.got[h][id] > 0 {
					t.Errorf("honest node %v got the target's message", h)
				}
			}
		}
		if r.reach == 1 {
			t.Errorf("eclipse did no harm: %v", r)
		}
	})
	t.Run("on: one honest link of the target's own keeps it in the mesh", func(t *testing.T) {
		modes, evil := liars(sybils, "eclipse=1")
		m := newMesh(t, 40, append(slices.Clone(links), [2]int{1, 30}), 12, coreBuilder(t, onConfig(), modes), evil)
		m.publishAll([]wire.NodeID{1, 10, 20}, 9, 0, 90*time.Millisecond)
		m.run(int64(2 * time.Second))
		if r := m.report(); r.reach != 1 {
			t.Errorf("target with an honest link: %v", r)
		}
	})
}

func TestLiarMesh(t *testing.T) {
	t.Parallel()
	cfg := offConfig()
	cfg.Strategy = gossip.Lazy
	cfg.LazyD = 1
	cfg.AntiEntropy = -1
	run := func(t *testing.T, mode string) (*testMesh, report) {
		modes, evil := liars(every(40, 4), mode)
		m := newMesh(t, 40, randomMesh(40, 4, 13), 13, coreBuilder(t, cfg, modes), evil)
		m.publishAll(m.honest(), 20, 0, 200*time.Millisecond)
		m.run(int64(5 * time.Second))
		return m, m.report()
	}
	_, silent := run(t, "blackhole")
	m, lying := run(t, "liar")
	t.Logf("blackholes: %v; liars: %v", silent, lying)
	if lying.maxLatency <= silent.maxLatency {
		t.Errorf("liars did not delay repair beyond what silent peers do: %v against %v", lying.maxLatency, silent.maxLatency)
	}
	if s := statsOf(m, 4); s.Lies == 0 {
		t.Errorf("liar stats %+v", s)
	}
}

// The scoring defences: honest cores behind a guard (package score),
// whose Disconnects the mesh acts on.

func TestSpamInvalidGuarded(t *testing.T) {
	t.Parallel()
	modes, evil := liars([]wire.NodeID{7}, "spam-invalid=100")
	links := randomMesh(30, 3, 7)
	m := newMesh(t, 30, links, 7, guardBuilder(t, onConfig(), modes), evil)
	peers := slices.Clone(m.links[7])
	m.publishAll(m.honest(), 10, 0, 100*time.Millisecond)
	m.run(int64(2 * time.Second))
	r := m.report()
	if r.foreign != 0 || r.reach != 1 {
		t.Errorf("guarded mesh with an invalid spammer: %v", r)
	}
	if kept := m.shutOut(7, peers); len(kept) > 0 {
		t.Errorf("honest peers %v of %v did not ban the invalid spammer", kept, peers)
	}
}

func TestTamperGuarded(t *testing.T) {
	t.Parallel()
	modes, evil := liars(every(30, 5), "tamper")
	m := newMesh(t, 30, randomMesh(30, 3, 3), 3, guardBuilder(t, onConfig(), modes), evil)
	peers := map[wire.NodeID][]wire.NodeID{}
	for id := range evil {
		peers[id] = slices.Clone(m.links[id])
	}
	// A tampered copy behind the honest one is a duplicate, dropped before
	// any check: only those that arrive first count against the
	// tamperer, so it takes a few hundred messages.
	m.publishAll(m.honest(), 400, 0, 10*time.Second)
	m.run(int64(11 * time.Second))
	if r := m.report(); r.tampered != 0 || r.reach != 1 {
		t.Errorf("guarded mesh with tamperers: %v", r)
	}
	for id, ps := range peers {
		kept := m.shutOut(id, ps)
		for _, k := range kept {
			if sc := m.nodes[k].(*score.Guard).Score(id, m.now); sc >= 0 {
				t.Errorf("honest peer %v neither banned tamperer %v nor scores it below 0 (%v)", k, id, sc)
			}
		}
		if 2*len(kept) > len(ps) {
			t.Errorf("honest peers %v of %v did not ban tamperer %v", kept, ps, id)
		}
	}
}

func TestSpamGuarded(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, guarded bool, until time.Duration) (*testMesh, []wire.NodeID, report) {
		modes, evil := liars([]wire.NodeID{7}, "spam=20000")
		b := coreBuilder(t, onConfig(), modes)
		if guarded {
			// Rate limits drop honest frames too while the spammer is
			// still linked: anti-entropy repairs them.
			cfg := onConfig()
			cfg.AntiEntropy = 500 * time.Millisecond
			b = guardBuilder(t, cfg, modes)
		}
		m := newMesh(t, 30, randomMesh(30, 3, 6), 6, b, evil)
		if guarded {
			m.frameRate = 2000 // a tenth of the spam rate
		}
		peers := slices.Clone(m.links[7])
		m.publishAll(m.honest(), 20, 0, until/2)
		m.run(int64(until))
		return m, peers, m.report()
	}
	t.Run("off: the spam floods every honest node", func(t *testing.T) {
		m, _, r := run(t, false, 300*time.Millisecond)
		if per := r.foreign / len(m.honest()); per < 3000 {
			t.Errorf("honest nodes delivered %d spam messages each: %v", per, r)
		}
	})
	t.Run("on: rate limits get the spammer banned, honest delivery stays whole", func(t *testing.T) {
		m, peers, r := run(t, true, 4*time.Second)
		for _, h := range m.honest() {
			for b := range m.banned[h] {
				if !m.evil[b] {
					t.Errorf("honest node %v banned honest node %v", h, b)
				}
			}
		}
		if kept := m.shutOut(7, peers); len(kept) > 0 {
			t.Errorf("honest peers %v of %v did not ban a spammer at 4 times their frame limit", kept, peers)
		}
		if r.reach != 1 {
			t.Errorf("honest delivery with a banned spammer: %v", r)
		}
	})
}

func TestLiarGuarded(t *testing.T) {
	t.Parallel()
	cfg := onConfig()
	cfg.Strategy = gossip.Lazy
	cfg.LazyD = 1
	cfg.AntiEntropy = -1
	modes, evil := liars([]wire.NodeID{4, 8}, "liar")
	m := newMesh(t, 40, randomMesh(40, 4, 13), 13, guardBuilder(t, cfg, modes), evil)
	peers := map[wire.NodeID][]wire.NodeID{4: slices.Clone(m.links[4]), 8: slices.Clone(m.links[8])}
	m.publishAll(m.honest(), 400, 0, 20*time.Second)
	m.run(int64(25 * time.Second))
	for liar, ps := range peers {
		// Every honest peer bans it, or at least scores it below 0, which
		// takes its eager link away.
		for _, k := range m.shutOut(liar, ps) {
			if sc := m.nodes[k].(*score.Guard).Score(liar, m.now); sc >= 0 {
				t.Errorf("honest peer %v neither banned liar %v nor scores it below 0 (%v)", k, liar, sc)
			}
		}
		if kept := m.shutOut(liar, ps); 2*len(kept) > len(ps) {
			t.Errorf("honest peers %v of %v did not ban liar %v for its broken promises", kept, ps, liar)
		}
	}
	if r := m.report(); r.reach != 1 {
		t.Errorf("guarded lazy mesh with liars: %v", r)
	}
}
