package adversary

import (
	"strings"
	"testing"
	"time"
)

// TestParseRoundTrip: every mode parses, prints in canonical form and
// parses back to the same modes.
func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"none", ""},
		{"blackhole", "blackhole"},
		{"spam=20000", "spam=20000"},
		{"spam", "spam=1000"},
		{"spam-invalid=500", "spam-invalid=500"},
		{"forge", "forge=10"},
		{"replay=2.5", "replay=2.5"},
		{"spam=0.1", "spam=0.1"},
		{"forge=0.5", "forge=0.5"},
		{"spam-invalid=2.0", "spam-invalid=2"},
		{"forge=.25", "forge=0.25"},
		{"spam=0.001", "spam=0.001"},
		{"spam=1e-3", "spam=0.001"},
		{"spam=1000000", "spam=1000000"},
		{"forge=3.3333333333333335", "forge=3.3333333333333335"},
		{"censor=00000000000000ab", "censor=00000000000000ab"},
		{"censor=ab", "censor=00000000000000ab"},
		{"delay=200ms", "delay=200ms"},
		{"eclipse=0000000000000007", "eclipse=0000000000000007"},
		{"liar,tamper", "tamper,liar"},
		{" tamper , liar ", "tamper,liar"},
		{"eclipse=7,delay=1s,blackhole", "blackhole,delay=1s,eclipse=0000000000000007"},
	} {
		ms, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := ms.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		back, err := Parse(ms.String())
		if err != nil || back.String() != ms.String() || len(back) != len(ms) {
			t.Errorf("Parse(%q) does not round-trip: %v, %v", ms.String(), back, err)
		}
	}
	ms, _ := Parse("delay=250ms,spam=3,censor=5")
	if d, _ := ms.Get(Delay); d.Delay != 250*time.Millisecond {
		t.Errorf("delay %v", d.Delay)
	}
	if s, _ := ms.Get(Spam); s.Rate != 3 {
		t.Errorf("spam rate %v", s.Rate)
	}
	if f, _ := mustParse(t, "forge=0.1").Get(Forge); f.Rate != 0.1 {
		t.Errorf("forge=0.1: rate %v", f.Rate)
	}
	if c, _ := ms.Get(Censor); c.Target != 5 {
		t.Errorf("censor target %v", c.Target)
	}
	if !ms.Has(Spam) || ms.Has(Blackhole) {
		t.Error("Has is wrong")
	}
	for _, k := range Kinds() {
		if strings.HasPrefix(k.String(), "kind-") {
			t.Errorf("kind %d has no name", k)
		}
	}
}

// TestParseErrors: each bad part is refused with an error that names it.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, mention string }{
		{"blackhol", "blackhol"},
		{"spam=fast", "fast"},
		{"spam=0", "rate"},
		{"spam=-3", "rate"},
		{"spam=2000000", "rate"},
		{"spam=0.0009", "rate"},
		{"forge=1e-9", "rate"},
		{"spam=Inf", "rate"},
		{"spam=0.1.2", "0.1.2"},
		{"spam=NaN", "NaN"},
		{"censor", "censor"},
		{"censor=xyz", "xyz"},
		{"censor=0", "target"},
		{"censor=00000000000000000ab", "00000000000000000ab"},
		{"eclipse=", "eclipse"},
		{"delay", "delay"},
		{"delay=soon", "soon"},
		{"delay=-1s", "delay"},
		{"delay=2h", "delay"},
		{"blackhole=1", "blackhole"},
		{"tamper,tamper", "twice"},
		{"tamper,,liar", `""`},
	} {
		ms, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tc.in, ms)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("Parse(%q): %q does not mention %q", tc.in, err, tc.mention)
		}
	}
}
