package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestSimByzantineExperiment: `mesh sim --experiment byzantine` with
// --kinds prints a table of just those kinds, defences off and on, and
// writes its two charts under the --svg prefix; the testbed's and the
// byzantine experiment's flags are refused on the other experiment.
func TestSimByzantineExperiment(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir() + "/byz"
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--experiment", "byzantine", "--nodes", "200", "--kinds", "forge", "--workers", "2", "--svg", prefix}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	s := out.String()
	if !strings.Contains(s, "| 0% | none |") || !strings.Contains(s, "| 50% | forge |") || strings.Contains(s, "| blackhole |") {
		t.Errorf("want rows for none and forge only:\n%s", s)
	}
	for _, suffix := range []string{"-delivery-n200.svg", "-p99-n200.svg"} {
		data, err := os.ReadFile(prefix + suffix)
		if err != nil || !bytes.HasPrefix(data, []byte("<svg")) || !bytes.Contains(data, []byte("forge, on")) {
			t.Errorf("chart %s: %v\n%.200s", suffix, err, data)
		}
	}
	for _, args := range [][]string{
		{"sim", "--experiment", "byzantine", "--sybils", "10"},
		{"sim", "--experiment", "testbed", "--kinds", "forge"},
		{"sim", "--experiment", "byzantine", "--kinds", "nope", "--nodes", "200"},
	} {
		out.Reset()
		errs.Reset()
		if code := run(args, &out, &errs); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}
