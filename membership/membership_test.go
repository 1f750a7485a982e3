package membership

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gossipmesh/wire"
)

const ms = int64(time.Millisecond)

func newTest(t *testing.T, cfg Config) *Membership {
	t.Helper()
	m, err := New(cfg, 1, "127.0.0.1:7001", rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loop(i int) Entry {
	return Entry{ID: wire.NodeID(100 + i), Addr: fmt.Sprintf("127.0.0.1:%d", 8000+i)}
}

// run ticks m every 250 ms from from to to (exclusive), calling heard
// before each tick, and returns what it asked for.
func run(m *Membership, from, to int64, heard func(now int64, out *Output)) Output {
	var all Output
	for now := from; now < to; now += 250 * ms {
		var out Output
		if heard != nil {
			heard(now, &out)
		}
		m.NextTick()
		m.Tick(now, &out)
		all.Pings = append(all.Pings, out.Pings...)
		all.Evict = append(all.Evict, out.Evict...)
		all.Drop = append(all.Drop, out.Drop...)
		all.Dial = append(all.Dial, out.Dial...)
		all.Events = append(all.Events, out.Events...)
	}
	return all
}

func firstEvent(o Output, k EventKind) (int64, bool) {
	for _, e := range o.Events {
		if e.Kind == k {
			return e.At, true
		}
	}
	return 0, false
}

// A peer that goes silent (hung: no close) is pinged, suspected and only
// then evicted, within the documented bounds of its last frame.
func TestSilentPeerSuspectedThenEvicted(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	start := int64(time.Second)
	m.Up(start, loop(1), false, &out)
	got := run(m, start, start+20*int64(time.Second), nil)
	sus, ok := firstEvent(got, EventSuspect)
	if !ok {
		t.Fatal("silent peer never suspected")
	}
	ev, ok := firstEvent(got, EventEvict)
	if !ok {
		t.Fatal("silent peer never evicted")
	}
	if len(got.Pings) == 0 || ev <= sus {
		t.Fatalf("pings %d, suspect at %v, evict at %v: want pings, then suspicion before eviction", len(got.Pings), time.Duration(sus-start), time.Duration(ev-start))
	}
	if sus-start > 3*int64(time.Second) || ev-start > 10*int64(time.Second) {
		t.Errorf("suspected after %v, evicted after %v of silence: want within 3 s and 10 s", time.Duration(sus-start), time.Duration(ev-start))
	}
	if !slices.Equal(got.Evict, []wire.NodeID{loop(1).ID}) {
		t.Errorf("evict %v, want the peer once", got.Evict)
	}
}

// A peer silent for one second (a paused process that resumes) may be
// suspected but is never evicted; its first frame refutes the suspicion.
func TestOneSecondPauseEvictsNobody(t *testing.T) {
	for _, pauseAt := range []int64{2000, 2100, 2400, 3000} {
		m := newTest(t, DefaultConfig())
		var out Output
		m.Up(ms, loop(1), false, &out)
		pauseFrom, pauseTo := pauseAt*ms, (pauseAt+1000)*ms
		got := run(m, ms, 20*int64(time.Second), func(now int64, out *Output) {
			if now < pauseFrom || now >= pauseTo {
				m.Heard(now-ms, loop(1).ID, out) // it answers whatever it was sent
			}
		})
		if len(got.Evict) != 0 {
			t.Errorf("pause at %d ms: evicted %v", pauseAt, got.Evict)
		}
		if _, sus := firstEvent(got, EventSuspect); sus {
			if _, ok := firstEvent(got, EventRefuted); !ok {
				t.Errorf("pause at %d ms: suspected and never refuted", pauseAt)
			}
		}
		if a := m.Active(); len(a) != 1 || a[0].Suspect {
			t.Errorf("pause at %d ms: active view %+v", pauseAt, a)
		}
	}
}

// A node whose own ticks stop for 5 s (it was paused, or its machine
// stalled) holds the lag against nobody, and stretches its timeouts.
func TestOwnStallSuspectsNobody(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 4 {
		m.Up(ms, loop(i), false, &out)
	}
	heardAll := func(now int64, out *Output) {
		for i := range 4 {
			m.Heard(now-ms, loop(i).ID, out)
		}
	}
	got := run(m, ms, 5*int64(time.Second), heardAll)
	// Stalled from 5 s to 10 s: no tick, nothing heard. Its peers' frames
	// wait in its inbox and arrive just after it resumes.
	got2 := run(m, 10*int64(time.Second), 10*int64(time.Second)+250*ms, nil)
	got3 := run(m, 10*int64(time.Second)+250*ms, 20*int64(time.Second), heardAll)
	for _, o := range []Output{got, got2, got3} {
		if len(o.Evict) != 0 {
			t.Fatalf("evicted %v after its own stall", o.Evict)
		}
		if _, ok := firstEvent(o, EventSuspect); ok {
			t.Fatalf("suspected a peer after its own stall: %+v", o.Events)
		}
	}
	if _, ok := firstEvent(got2, EventSlow); !ok {
		t.Error("the stall was not noticed")
	}
	if m.Awareness() != 0 {
		t.Errorf("awareness %d ten seconds after the stall, want back to 0", m.Awareness())
	}
}

// Below the low bound the node dials from its passive view; above the
// high bound it drops the surplus, never the newest link, into the
// passive view.
func TestDegreeBounds(t *testing.T) {
	cfg := DefaultConfig()
	m := newTest(t, cfg)
	for i := range 10 {
		m.Seed(loop(i))
	}
	var out Output
	m.Up(ms, loop(0), false, &out)
	if len(out.Dial) != cfg.ActiveLow-1 {
		t.Fatalf("one link: dials %v, want %d", out.Dial, cfg.ActiveLow-1)
	}
	for _, d := range out.Dial {
		if d == loop(0) {
			t.Error("dialed a peer already linked")
		}
	}
	// A dial that fails forgets the entry and dials another.
	failed := out.Dial[0]
	out.Reset()
	m.DialFailed(2*ms, failed, &out)
	if len(out.Dial) != 1 || out.Dial[0] == failed || slices.Contains(m.Passive(), failed) {
		t.Errorf("after a failed dial: dials %v, passive %v", out.Dial, m.Passive())
	}
	// Fill above the high bound.
	m2 := newTest(t, cfg)
	out.Reset()
	for i := range cfg.ActiveHigh {
		m2.Up(int64(i+1)*ms, loop(i), false, &out)
	}
	out.Reset()
	m2.Up(2000*ms, loop(50), true, &out)
	m2.Up(2100*ms, loop(51), true, &out)
	if len(out.Drop) != 0 {
		t.Fatalf("dropped %v before the newcomers said whether they need their links", out.Drop)
	}
	m2.ExchangeFrom(2200*ms, loop(50).ID, true, nil, &out)
	m2.ExchangeFrom(2200*ms, loop(51).ID, false, nil, &out)
	if len(out.Drop) != 2 || out.Drop[0] != loop(51).ID || slices.Contains(out.Drop, loop(50).ID) {
		t.Fatalf("drops %v, want the newcomer that needs no link (%v), then an old one, never the one that needs it", out.Drop, loop(51).ID)
	}
	dropped := out.Drop[1]
	out.Reset()
	m2.Down(2300*ms, dropped, &out)
	if !slices.ContainsFunc(m2.Passive(), func(e Entry) bool { return e.ID == dropped }) {
		t.Error("a dropped peer did not go to the passive view")
	}
	if len(out.Dial) != 0 {
		t.Errorf("dialed %v after a surplus drop", out.Dial)
	}
}

// A failed peer is replaced from the passive view even when the degree is
// still above the low bound (HyParView keeps its active view full).
func TestFailedPeerReplaced(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 5 {
		m.Up(ms, loop(i), false, &out)
	}
	m.Seed(loop(20), loop(21))
	out.Reset()
	m.Down(2*ms, loop(2).ID, &out)
	if len(out.Dial) != 1 {
		t.Fatalf("dials %v after a peer failed, want one replacement", out.Dial)
	}
	if slices.Contains(m.Passive(), loop(2)) {
		t.Error("a failed peer went to the passive view")
	}
}

// A replacement that a full node refuses (it closes the link at once) is
// followed by a dial to another passive entry, a bounded number of times
// per failed peer.
func TestRefusedReplacementRetried(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 5 {
		m.Up(ms, loop(i), false, &out)
	}
	m.Seed(loop(20), loop(21), loop(22), loop(23), loop(24), loop(25))
	out.Reset()
	now := 2 * int64(time.Second) // the links are settled: a close is a failure
	m.Down(now, loop(2).ID, &out)
	refusals := 0
	for len(out.Dial) == 1 && refusals < 20 {
		e := out.Dial[0]
		out.Reset()
		now += ms
		m.Up(now, e, false, &out) // the dial connects...
		now += ms
		m.Down(now, e.ID, &out) // ...and the full node closes it
		refusals++
		if !slices.Contains(m.Passive(), e) {
			t.Errorf("refusal %d: %v did not go back to the passive view", refusals, e)
		}
	}
	if len(out.Dial) != 0 {
		t.Fatalf("still dialing %v after %d refusals", out.Dial, refusals)
	}
	if refusals != 1+replacementRetries {
		t.Errorf("dialed %d replacements for one failed peer, all refused: want the first and %d retries", refusals, replacementRetries)
	}
	// A replacement that is accepted stays, and nothing more is dialed.
	out.Reset()
	now += ms
	m.Down(now, loop(3).ID, &out)
	if len(out.Dial) != 1 {
		t.Fatalf("dials %v after a second peer failed, want one replacement", out.Dial)
	}
	e := out.Dial[0]
	out.Reset()
	m.Up(now+ms, e, false, &out)
	if len(out.Dial) != 0 || len(m.Active()) != 4 {
		t.Errorf("after an accepted replacement: dials %v, %d links; want none and 4", out.Dial, len(m.Active()))
	}
}

// Peer exchange: bounded, never this node or a linked peer, never an
// address outside the rule, and a claim never moves a known id.
func TestExchangeMergeRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PassiveSize = 4
	m := newTest(t, cfg)
	var out Output
	m.Up(ms, loop(0), false, &out)
	took, refused := m.ExchangeFrom(2*ms, loop(0).ID, false, []Entry{
		loop(1),
		{ID: 1, Addr: "127.0.0.1:9999"},      // this node's id
		{ID: 50, Addr: "127.0.0.1:7001"},     // this node's address
		loop(0),                              // linked already
		{ID: 51, Addr: "10.0.0.5:7001"},      // not loopback
		{ID: 52, Addr: "example.com:7001"},   // a name
		{ID: 53, Addr: "127.0.0.1:0"},        // no port
		{ID: 54, Addr: "169.254.169.254:80"}, // metadata service
	}, &out)
	if refused != 4 {
		t.Errorf("refused %d, want 4: non-loopback, name, port 0, link-local", refused)
	}
	if took != 1 || !slices.Equal(m.Passive(), []Entry{loop(1)}) {
		t.Errorf("took %d, passive %v, want only %v", took, m.Passive(), loop(1))
	}
	// A known id keeps its address.
	m.ExchangeFrom(3*ms, loop(0).ID, false, []Entry{{ID: loop(1).ID, Addr: "127.0.0.1:6666"}}, &out)
	if !slices.Equal(m.Passive(), []Entry{loop(1)}) {
		t.Errorf("a claim moved a known id: %v", m.Passive())
	}
	// Bounded: the view never passes PassiveSize, an exchange never takes
	// more than ExchangeSize.
	var many []Entry
	for i := range MaxExchange {
		many = append(many, loop(10+i))
	}
	took, refused = m.ExchangeFrom(4*ms, loop(0).ID, false, many, &out)
	if refused != MaxExchange-cfg.ExchangeSize || took != cfg.ExchangeSize || len(m.Passive()) != cfg.PassiveSize {
		t.Errorf("took %d refused %d, passive %d: want %d, %d, %d", took, refused, len(m.Passive()), cfg.ExchangeSize, MaxExchange-cfg.ExchangeSize, cfg.PassiveSize)
	}
	// Configured networks widen the rule.
	cfg.AllowedNets, _ = ParseNets("10.0.0.0/24")
	if !cfg.Allowed("10.0.0.5:7001") || cfg.Allowed("10.0.1.5:7001") {
		t.Error("AllowedNets not applied")
	}
}

// Exchanges go out when a link comes up and periodically, never naming
// the recipient, and bounded.
func TestExchangeSent(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 3 {
		m.Up(ms, loop(i), false, &out)
	}
	if len(out.Exchanges) != 3 {
		t.Fatalf("exchanges %d on link up, want one per link", len(out.Exchanges))
	}
	for _, x := range out.Exchanges {
		for _, e := range x.Entries {
			if e.ID == x.To {
				t.Errorf("exchange to %v names it", x.To)
			}
		}
	}
	n := 0
	for now := int64(2 * ms); now < 60*int64(time.Second); now += 250 * ms {
		out.Reset()
		for i := range 3 {
			m.Heard(now, loop(i).ID, &out)
		}
		m.NextTick()
		m.Tick(now, &out)
		n += len(out.Exchanges)
	}
	if n < 60/7 || n > 60/3 {
		t.Errorf("%d periodic exchanges in 60 s, want about one per 5 s", n)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.ActiveHigh = 2
	if bad.Validate() == nil {
		t.Error("high below low accepted")
	}
	bad = DefaultConfig()
	bad.ExchangeSize = MaxExchange + 1
	if bad.Validate() == nil {
		t.Error("exchange size above the wire's limit accepted")
	}
	if _, err := ParseNets("10.0.0.0/8,nonsense"); err == nil {
		t.Error("bad prefix parsed")
	}
}

// Booted dials in flight count toward the degree: a node that learns
// peers before its booted links are up does not dial them too, unless a
// booted dial fails to come up within DialTimeout.
func TestBootedDialsCount(t *testing.T) {
	cfg := DefaultConfig()
	m := newTest(t, cfg)
	var out Output
	for i := range 3 {
		m.DialStarted(ms, Entry{Addr: loop(i).Addr})
	}
	m.ExchangeFrom(2*ms, 0, false, []Entry{loop(10), loop(11), loop(12)}, &out)
	m.NextTick()
	m.Tick(3*ms, &out)
	if len(out.Dial) != 0 {
		t.Fatalf("dialed %v while the booted dials were in flight", out.Dial)
	}
	m.Up(4*ms, loop(0), false, &out)
	m.Up(5*ms, loop(1), false, &out)
	// The third booted dial never comes up.
	out.Reset()
	got := run(m, 10*ms, int64(cfg.DialTimeout)+20*ms, func(now int64, o *Output) {
		m.Heard(now, loop(0).ID, o)
		m.Heard(now, loop(1).ID, o)
	})
	if len(got.Dial) != 1 {
		t.Errorf("dials %v after a booted dial timed out, want one from the passive view", got.Dial)
	}
}

// TestInboundNeverDropsTheLastOutbound: a node full of peers that dialed
// it keeps its last MinOutbound own links, however many more dial in:
// inbound links alone cannot eclipse it.
func TestInboundNeverDropsTheLastOutbound(t *testing.T) {
	cfg := DefaultConfig()
	m := newTest(t, cfg)
	var out Output
	m.Up(ms, loop(0), false, &out)
	m.Up(ms, loop(1), false, &out)
	now := 2 * ms
	for i := 2; i < 60; i++ {
		now += 100 * ms
		m.Up(now, loop(i), true, &out)
		m.ExchangeFrom(now, loop(i).ID, true, nil, &out) // every sybil says it needs its link
		for _, id := range out.Drop {
			m.Down(now, id, &out)
		}
		out.Reset()
		now += 2 * cfg.ProbeInterval.Nanoseconds()
		m.Tick(now, &out)
		for _, id := range out.Drop {
			if id == loop(0).ID || id == loop(1).ID {
				t.Fatalf("after %d inbound links: dropped own link %v", i-1, id)
			}
			m.Down(now, id, &out)
		}
		out.Reset()
	}
	own := 0
	for _, p := range m.Active() {
		if !p.Inbound {
			own++
		}
	}
	if own != 2 || len(m.Active()) > cfg.ActiveHigh {
		t.Fatalf("active view %d links, %d own: want at most %d and both own links", len(m.Active()), own, cfg.ActiveHigh)
	}
}

// A full node that refuses a replacement dial is not dialed again: the
// refusal is reported once (EventRefused) and the entry is passed over
// for RefusalBackoff, even when it is the only one left. Before, it went
// straight back into the pool it came from and a node owed several
// replacements dialed it again at once, a link up and down each time.
// Below the low bound the node dials it anyway: it then says it needs the
// link, which a full node keeps.
func TestRefusedPeerNotDialedAgain(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 5 {
		m.Up(ms, loop(i), false, &out)
	}
	full := loop(20)
	m.Seed(full)
	out.Reset()
	now := 2 * int64(time.Second)
	m.Down(now, loop(2).ID, &out) // a settled peer fails: one replacement owed
	if !slices.Equal(out.Dial, []Entry{full}) {
		t.Fatalf("dials %v after a peer failed, want %v", out.Dial, full)
	}
	out.Reset()
	now += ms
	m.Up(now, full, false, &out)
	out.Reset()
	now += ms
	m.Down(now, full.ID, &out) // the full node closes it at once
	want := []Event{{Kind: EventRefused, Peer: full, At: now}}
	if !slices.Equal(out.Events, want) || len(out.Dial) != 0 {
		t.Fatalf("after the refusal: events %v, dials %v; want %v and no dial", out.Events, out.Dial, want)
	}
	if !slices.Contains(m.Passive(), full) {
		t.Error("the refusing node left the passive view")
	}
	// Another failure within the backoff: the refusing node is the only
	// passive entry, and is not dialed.
	refusedAt, backoff := now, int64(DefaultConfig().RefusalBackoff)
	now += ms
	out.Reset()
	m.Down(now, loop(3).ID, &out)
	if len(out.Dial) != 0 {
		t.Errorf("dialed %v again %v after it refused", out.Dial, time.Duration(now-refusedAt))
	}
	got := run(m, now+250*ms, refusedAt+backoff-250*ms, func(at int64, o *Output) {
		for i := range 5 {
			m.Heard(at, loop(i).ID, o)
		}
	})
	if len(got.Dial) != 0 {
		t.Errorf("dialed %v within the refusal backoff", got.Dial)
	}
	// Below the low bound it is dialed anyway.
	now = refusedAt + backoff - 250*ms
	out.Reset()
	m.Down(now, loop(0).ID, &out)
	m.Down(now, loop(1).ID, &out)
	if !slices.Equal(out.Dial, []Entry{full}) {
		t.Errorf("below the low bound: dials %v, want %v", out.Dial, full)
	}
}

// A dial that failed is not made again within RefusalBackoff, even when a
// peer exchange brings the address straight back (its node is down; its
// neighbours' passive views still hold it).
func TestFailedDialNotRepeated(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 5 {
		m.Up(ms, loop(i), false, &out)
	}
	dead := loop(20)
	m.Seed(dead)
	out.Reset()
	m.Down(2*int64(time.Second), loop(2).ID, &out)
	if !slices.Equal(out.Dial, []Entry{dead}) {
		t.Fatalf("dials %v after a peer failed, want %v", out.Dial, dead)
	}
	out.Reset()
	m.DialFailed(2*int64(time.Second)+ms, dead, &out)
	if slices.Contains(m.Passive(), dead) {
		t.Error("a failed dial's entry stayed in the passive view")
	}
	out.Reset()
	if took, _ := m.ExchangeFrom(2*int64(time.Second)+2*ms, loop(0).ID, false, []Entry{dead}, &out); took != 1 {
		t.Fatalf("exchange took %d entries, want the 1", took)
	}
	m.Down(2*int64(time.Second)+3*ms, loop(3).ID, &out)
	if slices.Contains(out.Dial, dead) {
		t.Errorf("dialed %v again 2 ms after its dial failed", dead)
	}
}

// A booted peer's link (one the driver dials and redials on its own) that
// the peer closes at once after this node said it did not need it is a
// refusal too, not a failure: nothing is owed, nothing else is dialed, and
// the driver can read the backoff to hold its own redials. Before, it
// counted as a failed peer: a replacement dial, and the driver's redial
// 50 ms later met the same full node (a restarted node's booted peer,
// dialed and dropped again and again).
func TestBootedPeerRefusalIsNoFailure(t *testing.T) {
	m := newTest(t, DefaultConfig())
	var out Output
	for i := range 4 {
		m.Up(ms, loop(i), false, &out)
	}
	m.Seed(loop(20))
	booted := loop(9)
	now := 2 * int64(time.Second)
	m.DialStarted(now, Entry{Addr: booted.Addr})
	out.Reset()
	m.Up(now, booted, false, &out)
	if len(out.Exchanges) != 1 || out.Exchanges[0].Need {
		t.Fatalf("exchanges %+v at the booted link's up, want one saying it is not needed", out.Exchanges)
	}
	out.Reset()
	m.Down(now+ms, booted.ID, &out)
	want := []Event{{Kind: EventRefused, Peer: booted, At: now + ms}}
	if !slices.Equal(out.Events, want) || len(out.Dial) != 0 {
		t.Fatalf("after the refusal: events %v, dials %v; want %v and no dial", out.Events, out.Dial, want)
	}
	if got, wantUntil := m.RefusedUntil(now+ms, booted.Addr), now+ms+int64(DefaultConfig().RefusalBackoff); got != wantUntil {
		t.Errorf("refused until %d, want %d", got, wantUntil)
	}
	if got := m.RefusedUntil(now+ms+int64(DefaultConfig().RefusalBackoff), booted.Addr); got != 0 {
		t.Errorf("refused until %d once the backoff is over, want 0", got)
	}
	// A settled link that closes is a failure, as before.
	out.Reset()
	m.Down(now+2*ms, loop(3).ID, &out)
	if !slices.Equal(out.Dial, []Entry{loop(20)}) {
		t.Errorf("dials %v after a settled peer failed, want %v", out.Dial, loop(20))
	}
}

// A node that loses its only link before it learned anyone else (its
// seed, full, dropped it for another newcomer) dials its seed again, at
// most once per DialTimeout while that fails: HyParView's rejoin through
// the contact. Before, its passive view was empty and it stayed at
// degree 0 for good.
func TestIsolatedNodeRejoinsThroughItsSeed(t *testing.T) {
	m := newTest(t, DefaultConfig())
	seed := loop(7)
	m.Seed(seed)
	var out Output
	m.Tick(ms, &out)
	if !slices.Equal(out.Dial, []Entry{seed}) {
		t.Fatalf("first tick dials %v, want the seed", out.Dial)
	}
	out.Reset()
	m.Up(2*ms, seed, false, &out)
	out.Reset()
	m.Down(50*ms, seed.ID, &out) // dropped before its exchange came
	if len(m.Passive()) != 0 {
		t.Fatalf("passive %v, want it empty for this test", m.Passive())
	}
	if !slices.Equal(out.Dial, []Entry{seed}) {
		t.Fatalf("dials %v with no link and nothing known, want the seed again", out.Dial)
	}
	out.Reset()
	m.DialFailed(60*ms, seed, &out)
	if len(out.Dial) != 0 {
		t.Errorf("dials %v right after the rejoin failed, want none until DialTimeout", out.Dial)
	}
	got := run(m, 250*ms, 50*ms+int64(DefaultConfig().DialTimeout)+250*ms, nil)
	if !slices.Equal(got.Dial, []Entry{seed}) {
		t.Errorf("dials %v over the next DialTimeout, want the seed once", got.Dial)
	}
}
