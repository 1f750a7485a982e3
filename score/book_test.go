package score

import (
	"math"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

const sec = int64(time.Second)

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestDefaultsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Params){
		"positive gossip":          func(p *Params) { p.Thresholds.Gossip = 1 },
		"graylist above gossip":    func(p *Params) { p.Thresholds.Graylist = -10 },
		"disconnect above gray":    func(p *Params) { p.Thresholds.Disconnect = -100 },
		"NaN threshold":            func(p *Params) { p.Thresholds.Gossip = math.NaN() },
		"positive invalid weight":  func(p *Params) { p.InvalidWeight = 1 },
		"negative reward":          func(p *Params) { p.FirstDeliveryWeight = -1 },
		"zero half-life":           func(p *Params) { p.InvalidHalfLife = 0 },
		"retain below ban":         func(p *Params) { p.RetainScore = p.BanDuration - 1 },
		"no peers":                 func(p *Params) { p.MaxPeers = 0 },
		"fraction above 1":         func(p *Params) { p.DeficitFraction = 2 },
		"zero promise timeout":     func(p *Params) { p.PromiseTimeout = 0 },
		"zero rate-limit divisor":  func(p *Params) { p.RateLimitedPerPenalty = 0 },
		"decay-to-zero out of 0,1": func(p *Params) { p.DecayToZero = 1 },
	}
	for name, f := range bad {
		p := DefaultParams()
		f(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		} else if !strings.HasPrefix(err.Error(), "score params:") {
			t.Errorf("%s: error %q lacks its context", name, err)
		}
	}
}

// onlyTerm returns params with every weight but the one set zero.
func onlyTerm(set func(*Params)) Params {
	p := DefaultParams()
	p.TimeWeight, p.FirstDeliveryWeight, p.DeficitWeight, p.InvalidWeight, p.ColocationWeight, p.BehaviourWeight = 0, 0, 0, 0, 0, 0
	set(&p)
	return p
}

func TestTimeConnectedIsCappedAndResets(t *testing.T) {
	b := NewBook(onlyTerm(func(p *Params) { p.TimeWeight = 1 }))
	b.Connected(1, 0)
	near(t, "after 5 min", b.Score(1, 5*60*sec), 5)
	near(t, "after 1 h (capped)", b.Score(1, 3600*sec), 10)
	b.Disconnected(1, 3600*sec)
	near(t, "disconnected", b.Score(1, 3601*sec), 0)
	b.Connected(1, 3700*sec)
	near(t, "reconnected, 2 min", b.Score(1, 3820*sec), 2)
}

func TestFirstDeliveriesCapAndDecay(t *testing.T) {
	b := NewBook(onlyTerm(func(p *Params) { p.FirstDeliveryWeight = 0.1 }))
	b.Connected(1, 0)
	for range 50 {
		b.Delivered(1, 0, true)
	}
	b.Delivered(1, 0, false) // a duplicate is no first delivery
	near(t, "50 deliveries", b.Score(1, 0), 5)
	near(t, "one half-life later", b.Score(1, 60*sec), 2.5)
	for range 1000 {
		b.Delivered(1, 60*sec, true)
	}
	near(t, "capped", b.Score(1, 60*sec), 20)
}

func TestInvalidIsSquaredAndDecaysSlowly(t *testing.T) {
	b := NewBook(onlyTerm(func(p *Params) { p.InvalidWeight = -10 }))
	b.Connected(1, 0)
	b.Invalid(1, 0)
	near(t, "one", b.Score(1, 0), -10)
	b.Invalid(1, 0)
	b.Invalid(1, 0)
	near(t, "three", b.Score(1, 0), -90)
	near(t, "three, ten minutes on", b.Score(1, 600*sec), -10*1.5*1.5)
	if tm := b.Terms(1, 0); tm.Worst() != "invalid_messages" {
		t.Errorf("worst term %q", tm.Worst())
	}
}

func TestBehaviourHasAThreshold(t *testing.T) {
	b := NewBook(onlyTerm(func(p *Params) { p.BehaviourWeight, p.BehaviourThreshold = -1, 10 }))
	b.Connected(1, 0)
	b.Penalty(1, 0, 10)
	near(t, "at the threshold", b.Score(1, 0), 0)
	b.Penalty(1, 0, 5)
	near(t, "5 over", b.Score(1, 0), -25)
	// 15 halves to 7.5 in a minute: under the threshold again.
	near(t, "a minute on", b.Score(1, 60*sec), 0)
	b.Penalty(1, 60*sec, -100) // a negative penalty is ignored
	near(t, "negative ignored", b.Score(1, 60*sec), 0)
}

func TestColocationCountsConnectedPeersPerHost(t *testing.T) {
	b := NewBook(onlyTerm(func(p *Params) { p.ColocationWeight = -10; p.ColocationThreshold = 2 }))
	for id := wire.NodeID(1); id <= 5; id++ {
		b.Connected(id, 0)
		b.SetHost(id, "10.0.0.1")
	}
	b.Connected(6, 0)
	b.SetHost(6, "10.0.0.2")
	near(t, "5 on one host, threshold 2", b.Score(1, 0), -90)
	near(t, "alone on its host", b.Score(6, 0), 0)
	b.Disconnected(5, 0)
	b.Disconnected(4, 0)
	near(t, "3 left", b.Score(1, 0), -10)
	b.SetHost(3, "")
	near(t, "2 left", b.Score(1, 0), 0)
}

func TestDeficitOnEagerLinksOnly(t *testing.T) {
	p := onlyTerm(func(p *Params) { p.DeficitWeight = -10 })
	b := NewBook(p)
	b.Connected(1, 0) // eager, silent
	b.Connected(2, 0) // eager, delivers
	b.Connected(3, 0) // never pushed to: not eager
	b.Connected(4, 0) // eager, delivers a little
	now := 40 * sec   // past the activation
	for i := range 1000 {
		from := wire.NodeID(2)
		if i%200 == 0 {
			from = 4 // 5 of 1000: a quarter of the 20 expected
		}
		b.Delivered(from, now, true)
	}
	for id := wire.NodeID(1); id <= 4; id++ {
		if id != 3 {
			b.Pushed(id, now)
		}
	}
	near(t, "silent eager peer", b.Score(1, now), -10)
	near(t, "delivering peer", b.Score(2, now), 0)
	near(t, "lazy peer", b.Score(3, now), 0)
	near(t, "a quarter of the expectation", b.Score(4, now), -10*0.75*0.75)
	near(t, "no longer eager after the window", b.Score(1, now+int64(p.DeficitWindow)+1), 0)

	// Before the activation, and in a quiet mesh, nothing is expected.
	q := NewBook(p)
	q.Connected(1, 0)
	for range 1000 {
		q.Delivered(2, 10*sec, true)
	}
	q.Pushed(1, 10*sec)
	near(t, "before activation", q.Score(1, 10*sec), 0)
	quiet := NewBook(p)
	quiet.Connected(1, 0)
	for range int(p.DeficitMinimum) - 1 {
		quiet.Delivered(2, 40*sec, true)
	}
	quiet.Pushed(1, 40*sec)
	near(t, "quiet mesh", quiet.Score(1, 40*sec), 0)
}

func TestRetentionKeepsABadScoreAcrossReconnects(t *testing.T) {
	p := DefaultParams()
	b := NewBook(p)
	b.Connected(1, 0)
	for range 5 {
		b.Invalid(1, 0)
	}
	b.Disconnected(1, sec)
	b.Connected(1, 2*sec)
	if s := b.Score(1, 2*sec); s > -200 {
		t.Errorf("reconnected peer's score %v: the invalid messages were laundered", s)
	}
	b.Disconnected(1, 3*sec)
	later := 3*sec + int64(p.RetainScore)
	if b.Score(1, later) != 0 || b.Tracked(1) {
		t.Errorf("record kept past the retention period")
	}
}

func TestBookIsBounded(t *testing.T) {
	p := DefaultParams()
	p.MaxPeers = 3
	b := NewBook(p)
	b.Connected(1, 0)
	b.Connected(2, 0)
	b.Invalid(2, 0) // bad: worth remembering
	b.Connected(3, 0)
	b.Disconnected(1, sec)
	b.Disconnected(2, sec)
	b.Connected(4, 2*sec) // full: the retained peer with the best score goes
	if b.Len() != 3 || b.Tracked(1) || !b.Tracked(2) {
		t.Fatalf("len %d, tracked 1 %v, 2 %v: want 3, the good retained peer forgotten and the bad one kept", b.Len(), b.Tracked(1), b.Tracked(2))
	}
	// Connected peers are always tracked, even past the bound.
	b.Connected(5, 2*sec)
	b.Connected(6, 2*sec)
	if !b.Tracked(5) || !b.Tracked(6) || b.Tracked(2) {
		t.Fatalf("connected peers must be tracked; retained ones give way")
	}
}

func TestThresholdDefaultsAreOrdered(t *testing.T) {
	th := DefaultThresholds()
	p := DefaultParams()
	maxCredit := p.TimeWeight*p.TimeCap + p.FirstDeliveryWeight*p.FirstDeliveryCap
	// The fifth invalid message graylists even a peer with every credit,
	// four do not graylist one with none: the bounds the documentation
	// gives.
	if s := p.InvalidWeight*25 + maxCredit; s >= th.Graylist {
		t.Errorf("five invalid messages from the best peer score %v, not below %v", s, th.Graylist)
	}
	if s := p.InvalidWeight * 16; s < th.Graylist {
		t.Errorf("four invalid messages score %v, already below %v", s, th.Graylist)
	}
	// Graylisted by five, a peer is banned by its 19th frame after them.
	over := func(frames float64) float64 {
		return p.BehaviourWeight * (frames - p.BehaviourThreshold) * (frames - p.BehaviourThreshold)
	}
	if s := p.InvalidWeight*25 + over(19); s >= th.Disconnect {
		t.Errorf("five invalid messages and 19 graylisted frames score %v, not below %v", s, th.Disconnect)
	}
	if s := p.InvalidWeight*25 + over(18); s < th.Disconnect {
		t.Errorf("five invalid messages and 18 graylisted frames score %v, already below %v", s, th.Disconnect)
	}
	// P3 alone never takes gossip away.
	if p.DeficitWeight <= th.Gossip {
		t.Errorf("delivery deficit alone (%v) reaches the gossip threshold %v", p.DeficitWeight, th.Gossip)
	}
}
