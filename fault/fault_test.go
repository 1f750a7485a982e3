package fault

import (
	"encoding/json"
	"go/build"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

func TestDecideReproducibleForSeed(t *testing.T) {
	p := &Plan{Rule: Rule{Drop: 0.3, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}}
	run := func(seed uint64) []time.Duration {
		rng := rand.New(rand.NewPCG(seed, 0))
		var out []time.Duration
		for i := range 1000 {
			drop, d := p.Decide(int64(i), 1, 2, rng)
			if drop {
				d = -1
			}
			out = append(out, d)
		}
		return out
	}
	a, b := run(7), run(7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different decisions")
	}
	if reflect.DeepEqual(a, run(8)) {
		t.Fatal("another seed gave the same 1000 decisions")
	}
	for _, d := range a {
		if d >= 0 && (d < 5*time.Millisecond || d > 15*time.Millisecond) {
			t.Fatalf("delay %v outside 10ms±5ms", d)
		}
	}
}

func TestDropRateWithinBounds(t *testing.T) {
	p := &Plan{Rule: Rule{Drop: 0.2}}
	rng := rand.New(rand.NewPCG(42, 42))
	const n = 100_000
	dropped := 0
	for i := range n {
		if drop, d := p.Decide(int64(i), 1, 2, rng); drop {
			dropped++
		} else if d != 0 {
			t.Fatalf("delay %v without a delay rule", d)
		}
	}
	// 20% of 100,000: the standard deviation is about 126, so ±1% is
	// nearly 8 of them.
	if dropped < 19_000 || dropped > 21_000 {
		t.Fatalf("dropped %d of %d, want about 20%%", dropped, n)
	}
}

func TestDecideCutsAndLinkRules(t *testing.T) {
	p := &Plan{
		Rule: Rule{Drop: 1},
		Cut:  map[wire.NodeID]bool{9: true},
		Links: map[Link]LinkRule{
			{1, 2}: {Rule: Rule{Delay: time.Second}},
			{2, 1}: {Cut: true},
		},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		from, to wire.NodeID
		drop     bool
		delay    time.Duration
	}{
		{1, 2, false, time.Second}, // the link rule overrides Drop 1
		{2, 1, true, 0},            // cut one way only
		{1, 3, true, 0},            // the plan's rule
		{9, 2, true, 0},            // cut node, both ways
		{1, 9, true, 0},
	}
	for _, c := range cases {
		drop, delay := p.Decide(0, c.from, c.to, rng)
		if drop != c.drop || delay != c.delay {
			t.Errorf("%d→%d: got (%v, %v), want (%v, %v)", c.from, c.to, drop, delay, c.drop, c.delay)
		}
	}
	if !p.IsCut(2, 1) || p.IsCut(1, 2) || !p.IsCut(9, 1) || !p.IsCut(1, 9) {
		t.Error("IsCut disagrees with the plan")
	}
	split := &Plan{Sides: map[wire.NodeID]int{1: 0, 2: 0, 3: 1}}
	for _, c := range []struct {
		a, b wire.NodeID
		cut  bool
	}{{1, 2, false}, {1, 3, true}, {3, 2, true}, {3, 4, false}, {4, 1, false}} {
		drop, _ := split.Decide(0, c.a, c.b, rng)
		if drop != c.cut || split.IsCut(c.a, c.b) != c.cut {
			t.Errorf("sides: %d→%d dropped %v, IsCut %v; want %v", c.a, c.b, drop, split.IsCut(c.a, c.b), c.cut)
		}
	}
	var none *Plan
	if drop, d := none.Decide(0, 1, 2, rng); drop || d != 0 || !none.IsZero() || none.IsCut(1, 2) {
		t.Error("a nil plan injected a fault")
	}
}

func TestValidateNamesField(t *testing.T) {
	cases := []struct {
		p    Plan
		want string
	}{
		{Plan{Rule: Rule{Drop: 1.5}}, "drop"},
		{Plan{Rule: Rule{Drop: -0.1}}, "drop"},
		{Plan{Rule: Rule{Delay: -time.Second}}, "delay"},
		{Plan{Rule: Rule{Jitter: -time.Second}}, "jitter"},
		{Plan{Rule: Rule{Delay: MaxDelay, Jitter: time.Millisecond}}, "delay"},
		{Plan{Cut: map[wire.NodeID]bool{0: true}}, "cut"},
		{Plan{Links: map[Link]LinkRule{{1, 1}: {}}}, "links"},
		{Plan{Links: map[Link]LinkRule{{1, 2}: {Rule: Rule{Drop: 2}}}}, "links[0000000000000001→0000000000000002]: drop"},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %q", c.p, err, c.want)
		}
	}
	nan := Plan{}
	json.Unmarshal([]byte(`{"drop":0}`), &nan)
	nan.Drop = nanValue()
	if err := nan.Validate(); err == nil {
		t.Error("NaN drop passed")
	}
	ok := Plan{Rule: Rule{Drop: 1, Delay: time.Second, Jitter: time.Second}, Cut: map[wire.NodeID]bool{5: true}}
	if err := ok.ValidateFor(4); err != nil {
		t.Errorf("a valid node plan: %v", err)
	}
	if err := ok.ValidateFor(5); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Errorf("own id in the cut list: got %v", err)
	}
	withLinks := Plan{Links: map[Link]LinkRule{{1, 2}: {Cut: true}}}
	if err := withLinks.ValidateFor(1); err == nil || !strings.Contains(err.Error(), "links") {
		t.Errorf("links in a node plan: got %v", err)
	}
	sides := Plan{Sides: map[wire.NodeID]int{2: 1}}
	if err := sides.ValidateFor(1); err == nil || !strings.Contains(err.Error(), "sides") {
		t.Errorf("sides in a node plan: got %v", err)
	}
	if err := (&Plan{Sides: map[wire.NodeID]int{0: 1}}).Validate(); err == nil || !strings.Contains(err.Error(), "sides") {
		t.Errorf("node 0 on a side: got %v", err)
	}
	paused := Plan{Paused: map[wire.NodeID]bool{2: true}}
	if err := paused.ValidateFor(1); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Errorf("paused in a node plan: got %v", err)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestJSONRoundTrip(t *testing.T) {
	in := `{"drop":0.2,"delay":"10ms","jitter":"5ms","cut":["00000000000000ff","0000000000000001"]}`
	var p Plan
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	want := Plan{Rule: Rule{Drop: 0.2, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}, Cut: map[wire.NodeID]bool{1: true, 255: true}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("decoded %+v, want %+v", p, want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := `{"drop":0.2,"delay":"10ms","jitter":"5ms","cut":["0000000000000001","00000000000000ff"]}`; string(b) != got {
		t.Fatalf("encoded %s, want %s", b, got)
	}
	empty, _ := json.Marshal(Plan{})
	if string(empty) != `{"drop":0,"delay":"0s","jitter":"0s","cut":[]}` {
		t.Fatalf("the empty plan encodes as %s", empty)
	}
	full := Plan{Links: map[Link]LinkRule{{1, 2}: {Cut: true}, {2, 1}: {Rule: Rule{Drop: 0.5, Delay: time.Millisecond}}}, Sides: map[wire.NodeID]int{1: 0, 5: 0, 2: 1}, Paused: map[wire.NodeID]bool{3: true}}
	b, _ = json.Marshal(full)
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, full) {
		t.Fatalf("round trip of %s: got %+v, %v", b, back, err)
	}
	for in, field := range map[string]string{
		`{"delay":"soon"}`:                  "delay",
		`{"jitter":"1 ms"}`:                 "jitter",
		`{"cut":["xyz"]}`:                   "cut[0]",
		`{"links":[{"from":"1","to":"2"}]}`: "links[0].from",
		`{"paused":["000000000000000g"]}`:   "paused[0]",
		`{"dorp":0.2}`:                      "dorp",
		`{"sides":[["0000000000000001"],["0000000000000001"]]}`: "sides[1][0]",
		`{"sides":[["x"]]}`: "sides[0][0]",
		`{"links":[{"from":"0000000000000001","to":"0000000000000002","delay":"x"}]}`: "links[0].delay",
	} {
		var p Plan
		err := json.Unmarshal([]byte(in), &p)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming %s", in, err, field)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	p := &Plan{Cut: map[wire.NodeID]bool{1: true}, Links: map[Link]LinkRule{{1, 2}: {Cut: true}}, Sides: map[wire.NodeID]int{1: 0}, Paused: map[wire.NodeID]bool{3: true}}
	q := p.Clone()
	q.Sides[2] = 1
	q.Cut[2] = true
	q.Links[Link{2, 1}] = LinkRule{}
	q.Paused[4] = true
	if len(p.Cut) != 1 || len(p.Links) != 1 || len(p.Sides) != 1 || len(p.Paused) != 1 {
		t.Fatal("Clone shares maps with the original")
	}
}

func TestParseSet(t *testing.T) {
	ok := map[string][]int{
		"all":     {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		"0-4":     {0, 1, 2, 3, 4},
		"5,7,9":   {5, 7, 9},
		"3":       {3},
		"7,0-2,1": {0, 1, 2, 7},
		" 8 - 9 ": nil, // spaces inside a range are not allowed
	}
	for in, want := range ok {
		got, err := ParseSet(in, 10)
		if want == nil {
			if err == nil {
				t.Errorf("%q: got %v, want an error", in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":     "empty node set",
		"10":   "node 10 does not exist",
		"4-2":  "runs backwards",
		"a":    `"a" is not a node index`,
		"1,,2": "empty item",
		"-1":   "is not a node index",
		"0-":   "is not a node index",
		"+1":   "is not a node index",
	}
	for in, want := range bad {
		_, err := ParseSet(in, 10)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

// TestPure keeps the package free of what would make it unfit for the
// simulator: goroutines aside (vet cannot see those), it may import no
// clock-, socket- or file-bound package.
func TestPure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"bytes": true, "cmp": true, "encoding/json": true, "errors": true, "fmt": true, "math/rand/v2": true, "slices": true, "strconv": true, "strings": true, "time": true, "gossipmesh/wire": true}
	for _, imp := range pkg.Imports {
		if !allowed[imp] {
			t.Errorf("fault imports %s", imp)
		}
	}
	for _, f := range pkg.GoFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"time.Now", "time.Sleep", "time.After", "go func", "rand.Float64()", "rand.Int"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s: the plan takes time and randomness as inputs", f, bad)
			}
		}
	}
}
