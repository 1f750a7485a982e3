package sim

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"gossipmesh/wire"
)

// TestPlumtreeExperimentHeals runs the crash sweep at 400 nodes: the same
// seed gives the same bytes, flood and Plumtree get the same crashes and
// publishers (same live nodes and component), and for every X <= 80%
// every Plumtree broadcast from the 3rd after the crash reaches the whole
// largest surviving component.
func TestPlumtreeExperimentHeals(t *testing.T) {
	ec := ExperimentConfig{Nodes: 400, Broadcasts: 5, Seed: 3}
	render := func() ([]byte, *Experiment) {
		e, err := RunExperiment(context.Background(), ExperimentPlumtree, ec)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := e.WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		if err := e.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		if err := e.Plumtree.Chart().WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), e
	}
	a, e := render()
	if b, _ := render(); !bytes.Equal(a, b) {
		t.Fatal("two runs of the same seed differ")
	}
	if !strings.Contains(string(a), "largest surviving connected component") {
		t.Error("the table does not say what reliability counts")
	}
	p := e.Plumtree
	if want := len(PlumtreeCrashPercents) * 2 * ec.Broadcasts; len(p.Rows) != want {
		t.Fatalf("%d rows, want %d", len(p.Rows), want)
	}
	type key struct{ x, after int }
	plum := map[key]PlumtreeExperimentRow{}
	for _, r := range p.Rows {
		if r.Strategy == "plumtree" {
			plum[key{r.CrashedPct, r.After}] = r
		}
	}
	for _, r := range p.Rows {
		if r.Strategy != "flood" {
			continue
		}
		q := plum[key{r.CrashedPct, r.After}]
		if q.Live != r.Live || q.Component != r.Component {
			t.Errorf("X=%d%%: plumtree saw %d live / component %d, flood %d / %d", r.CrashedPct, q.Live, q.Component, r.Live, r.Component)
		}
		if r.Reliability != 1 {
			t.Errorf("X=%d%% broadcast %d: flood reached %.4f of the component", r.CrashedPct, r.After, r.Reliability)
		}
		if r.ControlMessages != 0 {
			t.Errorf("flood sent %d control frames", r.ControlMessages)
		}
	}
	healed := p.Healed()
	for _, x := range PlumtreeCrashPercents {
		if x <= 80 && !healed[x] {
			t.Errorf("X=%d%%: a Plumtree broadcast from the 3rd after the crash missed part of the largest component", x)
		}
	}
	for k, r := range plum {
		if r.Component < 1 || r.Component > r.Live || r.Live != r.Nodes-r.Nodes*r.CrashedPct/100 {
			t.Errorf("%v: live %d, component %d of %d nodes", k, r.Live, r.Component, r.Nodes)
		}
	}
}

// TestLargestComponent checks the component search on a graph by hand:
// two paths, 0-1-2 and 3-4, with node 1 crashed, leave {3, 4}.
func TestLargestComponent(t *testing.T) {
	g := &Graph{Off: []int{0, 1, 3, 4, 5, 6}, Adj: []wire.NodeID{2, 1, 3, 2, 5, 4}}
	got := largestComponent(g, []bool{false, true, false, false, false})
	if len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Errorf("largest component %v, want [3 4]", got)
	}
	if got := largestComponent(g, make([]bool, 5)); len(got) != 3 {
		t.Errorf("no crash: largest component %v, want 0 1 2", got)
	}
}
