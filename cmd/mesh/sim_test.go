package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimDeterministic: the same seed and flags give byte-identical
// output, in every format.
func TestSimDeterministic(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--nodes", "400", "--degree", "8", "--broadcasts", "3"},
		{"sim", "--nodes", "400", "--topology", "kout", "--degree", "4", "--loss", "0.05", "--crash", "0.1@40ms", "--json", "--broadcasts", "2"},
		{"sim", "--nodes", "300", "--strategy", "fanout", "--fanout", "3", "--latency", "lognormal:50ms,0.5", "--csv", "--graphs", "2"},
	} {
		var a, b, errs bytes.Buffer
		if code := run(args, &a, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if code := run(args, &b, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if a.Len() == 0 || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%v: two runs differ:\n%s\n---\n%s", args, a.String(), b.String())
		}
	}
}

func TestSimSweepWritesChart(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "fanout.svg")
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--nodes", "300", "--sweep", "fanout=2..4", "--svg", svg}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 6 {
		t.Errorf("want a header, a blank line, a column line and 3 rows, got:\n%s", out.String())
	}
	data, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(data, []byte("<svg")) || !bytes.Contains(data, []byte("fanout=4")) {
		t.Fatalf("chart: %v\n%.200s", err, data)
	}
}

func TestSimExperimentSmall(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--experiment", "slot", "--nodes", "300", "--graphs", "1", "--broadcasts", "2"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "| random 8-regular, flood |") {
		t.Fatalf("no slot table:\n%s", out.String())
	}
}

// TestSimBadFlags: bad flags are reported clearly and exit 2.
func TestSimBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "1"},
		{"--latency", "fast"},
		{"--latency", "200ms-100ms"},
		{"--strategy", "gossipsub"},
		{"--topology", "no-such-file.txt"},
		{"--crash", "2@1s"},
		{"--loss", "1.5"},
		{"--sweep", "color=1..3"},
		{"--sweep", "fanout=5..1"},
		{"--experiment", "nope"},
		{"--json", "--csv"},
		{"--graphs", "0"},
		{"--regions", "no-such-file"},
		{"extra"},
		{"--bogus"},
	} {
		var out, errs bytes.Buffer
		if code := run(append([]string{"sim"}, args...), &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errs.String())
		}
		if !strings.Contains(errs.String(), "usage: mesh sim") {
			t.Errorf("%v: no usage on stderr: %q", args, errs.String())
		}
	}
}
