package cluster

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAdversaries(t *testing.T) {
	t.Parallel()
	got, err := ParseAdversaries("10:blackhole, 2:spam=20000,delay=100ms,1:eclipse=@3")
	if err != nil {
		t.Fatal(err)
	}
	want := []AdversarySpec{{10, "blackhole"}, {2, "spam=20000,delay=100ms"}, {1, "eclipse=@3"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := FormatAdversaries(got); s != "10:blackhole,2:spam=20000,delay=100ms,1:eclipse=@3" {
		t.Errorf("FormatAdversaries: %q", s)
	}
	for _, bad := range []string{"blackhole", "0:blackhole", "3:", "x:tamper"} {
		if _, err := ParseAdversaries(bad); err == nil {
			t.Errorf("ParseAdversaries(%q) accepted it", bad)
		}
	}
}

// TestPlaceAdversaries: the seed alone decides where the adversaries
// go, each spec gets exactly its count, targets stay honest, and @K names
// node K.
func TestPlaceAdversaries(t *testing.T) {
	t.Parallel()
	topo := NewTopology(20, 3, 5)
	specs := []AdversarySpec{{4, "blackhole"}, {3, "censor=@0"}, {2, "spam=500"}}
	a, err := placeAdversaries(specs, topo.IDs, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := placeAdversaries(specs, topo.IDs, 5)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different places:\n%v\n%v", a, b)
	}
	count := map[string]int{}
	for _, m := range a {
		count[m]++
	}
	censor := "censor=" + topo.IDs[0].String()
	if count["blackhole"] != 4 || count[censor] != 3 || count["spam=500"] != 2 || count[""] != 11 {
		t.Fatalf("placed %v", count)
	}
	if a[0] != "" {
		t.Errorf("the censor's target, node 0, runs %q", a[0])
	}
	c, _ := placeAdversaries(specs, topo.IDs, 6)
	if slices.Equal(a, c) {
		t.Errorf("seeds 5 and 6 placed the adversaries alike: %v", a)
	}
	if _, err := placeAdversaries([]AdversarySpec{{20, "blackhole"}, {1, "eclipse=@2"}}, topo.IDs, 5); err == nil || !strings.Contains(err.Error(), "not a target") {
		t.Errorf("21 adversaries of 20 nodes, one a target: %v", err)
	}
}
