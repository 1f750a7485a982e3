package gossip_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// budgetMesh is a core with a per-origin budget under the model auth, and
// messages signed as any origin.
type budgetMesh struct {
	auth *gossip.ModelAuth
	cfg  gossip.Config
	core *gossip.Core
	seq  map[wire.NodeID]uint64
}

const budgetNode, budgetRelay, budgetOther wire.NodeID = 1, 2, 3

func newBudgetMesh(t *testing.T, rate, burst float64, max int) *budgetMesh {
	t.Helper()
	b := &budgetMesh{auth: gossip.NewModelAuth(7), seq: map[wire.NodeID]uint64{}}
	b.cfg = gossip.DefaultConfig()
	b.cfg.Auth = b.auth
	b.cfg.OriginRate, b.cfg.OriginBurst, b.cfg.OriginMax = rate, burst, max
	c, err := gossip.New(b.cfg, budgetNode, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c.AddPeer(budgetRelay)
	c.AddPeer(budgetOther)
	b.core = c
	return b
}

// msg is the next message of origin, published at at and received at hop 1.
func (b *budgetMesh) msg(t *testing.T, origin wire.NodeID, at int64) *wire.Message {
	t.Helper()
	b.seq[origin]++
	body := []byte(fmt.Sprintf("%v-%d", origin, b.seq[origin]))
	m := &wire.Message{ID: wire.ComputeMsgID(origin, b.seq[origin], body), Origin: origin, Seq: b.seq[origin], Hop: 1, PublishedAt: at, Body: body}
	a, err := b.auth.Sign(origin, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Auth = a
	return m
}

// step hands m from from to the core at now and returns its one event and
// how many sends it caused.
func (b *budgetMesh) step(t *testing.T, now int64, from wire.NodeID, m *wire.Message) (gossip.Event, int) {
	t.Helper()
	var out gossip.Output
	b.core.Step(now, from, gossip.Frame{Msg: m}, &out)
	return only(t, &out), len(out.Sends)
}

// TestOriginBudgetIgnoresOverBudget: an origin gets its burst, then its
// rate; a copy over budget is refused with ErrOriginBudget, not forwarded
// and not marked seen, so the same message is delivered once the budget
// has refilled.
func TestOriginBudgetIgnoresOverBudget(t *testing.T) {
	b := newBudgetMesh(t, 10, 5, 0)
	const origin wire.NodeID = 50
	now := int64(time.Hour)
	for i := range 5 {
		e, sends := b.step(t, now, budgetRelay, b.msg(t, origin, now))
		if e.Kind != gossip.EventDelivered || sends == 0 {
			t.Fatalf("copy %d within the burst: %v with %d sends, want delivered and forwarded", i, e.Kind, sends)
		}
	}
	over := b.msg(t, origin, now)
	e, sends := b.step(t, now, budgetRelay, over)
	if e.Kind != gossip.EventRefused || e.Err != gossip.ErrOriginBudget || sends != 0 {
		t.Fatalf("sixth copy at once: %v (%v) with %d sends, want refused for the origin budget, not forwarded", e.Kind, e.Err, sends)
	}
	// Another origin is not affected.
	if e, _ := b.step(t, now, budgetRelay, b.msg(t, 60, now)); e.Kind != gossip.EventDelivered {
		t.Fatalf("another origin: %v (%v), want delivered", e.Kind, e.Err)
	}
	// 100 ms later one token (10/s) is back: the refused message is new
	// to the core and is delivered now.
	now += int64(100 * time.Millisecond)
	if e, _ := b.step(t, now, budgetOther, over); e.Kind != gossip.EventDelivered {
		t.Fatalf("refused message after the refill: %v (%v), want delivered (it was not marked seen)", e.Kind, e.Err)
	}
	if e, _ := b.step(t, now, budgetOther, b.msg(t, origin, now)); e.Kind != gossip.EventRefused {
		t.Fatalf("next copy in the same instant: %v, want refused", e.Kind)
	}
	st, ok := b.core.OriginStats()
	if !ok || st.Ignored != 2 || st.Direct != 0 || st.Tracked != 2 {
		t.Errorf("stats %+v (ok %v), want 2 ignored, none direct, 2 origins tracked", st, ok)
	}
	// A copy the origin sends itself counts as direct.
	if e, _ := b.step(t, now, origin, b.msg(t, origin, now)); e.Err != gossip.ErrOriginBudget {
		t.Fatalf("direct copy over budget: %v (%v)", e.Kind, e.Err)
	}
	if st, _ := b.core.OriginStats(); st.Direct != 1 {
		t.Errorf("direct %d, want 1", st.Direct)
	}
}

// TestOriginBudgetRate: over ten seconds an origin sending far faster
// than its rate gets its burst plus rate × time delivered, no more.
func TestOriginBudgetRate(t *testing.T) {
	b := newBudgetMesh(t, 100, 50, 0)
	const origin wire.NodeID = 50
	start := int64(time.Hour)
	delivered := 0
	for i := range 10_000 { // 1,000 a second for 10 s
		now := start + int64(i)*int64(time.Millisecond)
		if e, _ := b.step(t, now, budgetRelay, b.msg(t, origin, now)); e.Kind == gossip.EventDelivered {
			delivered++
		}
	}
	// 50 at once, then 100 a second for 9.999 s.
	if want := 50 + 999; delivered < want-1 || delivered > want+1 {
		t.Errorf("delivered %d of 10,000 in 10 s, want about %d (burst 50 + 100/s)", delivered, want)
	}
}

// TestOriginBudgetForgeriesSpendNothing: a copy that fails its signature
// does not spend its origin's tokens, so a forger cannot silence an
// honest origin.
func TestOriginBudgetForgeriesSpendNothing(t *testing.T) {
	b := newBudgetMesh(t, 1, 2, 0)
	const origin wire.NodeID = 50
	now := int64(time.Hour)
	for range 10 {
		m := b.msg(t, origin, now)
		m.Auth.Sig[0] ^= 1
		if e, _ := b.step(t, now, budgetRelay, m); e.Kind != gossip.EventRejected {
			t.Fatalf("forgery: %v, want rejected", e.Kind)
		}
	}
	for i := range 2 {
		if e, _ := b.step(t, now, budgetRelay, b.msg(t, origin, now)); e.Kind != gossip.EventDelivered {
			t.Fatalf("honest copy %d after 10 forgeries: %v (%v), want delivered", i, e.Kind, e.Err)
		}
	}
}

// TestOriginBudgetEviction: past OriginMax origins the one charged least
// recently is forgotten (and comes back with a full bucket); the table
// never holds more than OriginMax.
func TestOriginBudgetEviction(t *testing.T) {
	b := newBudgetMesh(t, 1, 1, 3)
	now := int64(time.Hour)
	spend := func(origin wire.NodeID) gossip.EventKind {
		e, _ := b.step(t, now, budgetRelay, b.msg(t, origin, now))
		return e.Kind
	}
	for _, o := range []wire.NodeID{10, 11, 12} {
		if k := spend(o); k != gossip.EventDelivered {
			t.Fatalf("origin %v's first: %v", o, k)
		}
	}
	// 10 is spent and still tracked.
	if k := spend(10); k != gossip.EventRefused {
		t.Fatalf("origin 10's second: %v, want refused", k)
	}
	// 13 takes the slot of 10, the least recently charged (11 and 12
	// were charged after it; a refusal charges nothing).
	if k := spend(13); k != gossip.EventDelivered {
		t.Fatalf("origin 13: %v", k)
	}
	st, _ := b.core.OriginStats()
	if st.Tracked != 3 || st.Evicted != 1 {
		t.Fatalf("stats %+v, want 3 tracked, 1 evicted", st)
	}
	if k := spend(11); k != gossip.EventRefused {
		t.Errorf("origin 11, still tracked and spent: %v, want refused", k)
	}
	if k := spend(10); k != gossip.EventDelivered {
		t.Errorf("origin 10, forgotten: %v, want delivered with a fresh bucket", k)
	}
	for o := wire.NodeID(100); o < 200; o++ {
		spend(o)
	}
	if st, _ := b.core.OriginStats(); st.Tracked != 3 {
		t.Errorf("tracked %d after 100 more origins, want the cap, 3", st.Tracked)
	}
}

// TestOriginBudgetOff: the budget is off at rate 0 and under SigningNone,
// where the origin is a claim anyone can make.
func TestOriginBudgetOff(t *testing.T) {
	b := newBudgetMesh(t, 0, 0, 0)
	if _, ok := b.core.OriginStats(); ok {
		t.Error("rate 0 keeps budgets")
	}
	cfg := unsignedPublic()
	cfg.OriginRate = 1
	c, err := gossip.New(cfg, 1, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.OriginStats(); ok {
		t.Error("SigningNone keeps budgets keyed by an unproven origin")
	}

}

func unsignedPublic() gossip.Config {
	cfg := gossip.DefaultConfig()
	cfg.Signing = gossip.SigningNone
	return cfg
}

func TestOriginBudgetConfig(t *testing.T) {
	for _, c := range []struct {
		rate, burst float64
		max         int
		want        string
	}{
		{-1, 0, 0, "origin rate"},
		{2e9, 0, 0, "origin rate"},
		{10, -1, 0, "origin burst"},
		{10, 0.5, 0, "origin burst"},
		{10, 0, -1, "origin max"},
		{10, 0, 1 << 21, "origin max"},
	} {
		cfg := gossip.DefaultConfig()
		cfg.OriginRate, cfg.OriginBurst, cfg.OriginMax = c.rate, c.burst, c.max
		err := cfg.ValidateSettings()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rate %v burst %v max %v: %v, want an error about %s", c.rate, c.burst, c.max, err, c.want)
		}
	}
	cfg := gossip.DefaultConfig()
	cfg.OriginRate = 100
	if cfg.OriginBurstSize() != 200 || cfg.OriginMaxTracked() != gossip.DefaultOriginMax {
		t.Errorf("defaults: burst %v max %d", cfg.OriginBurstSize(), cfg.OriginMaxTracked())
	}
}

// TestTokenBucketWait: Wait says when the next token comes.
func TestTokenBucketWait(t *testing.T) {
	var b gossip.TokenBucket
	b.Fill(0, 2)
	taken := 0
	for range 3 {
		if b.Take(0, 10, 2) {
			taken++
		}
	}
	if taken != 2 {
		t.Fatalf("a bucket of 2 gave %d tokens", taken)
	}
	if w := b.Wait(0, 10, 2); w != 100*time.Millisecond {
		t.Errorf("wait %v, want 100ms at 10/s", w)
	}
	if w := b.Wait(int64(50*time.Millisecond), 10, 2); w != 50*time.Millisecond {
		t.Errorf("wait %v half way, want 50ms", w)
	}
	// A clock that goes back refills nothing.
	if b.Has(-int64(time.Hour), 10, 2) {
		t.Error("a clock going back refilled the bucket")
	}
}
