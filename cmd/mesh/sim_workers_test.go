package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSimWorkersSameOutput: mesh sim --workers N prints the same bytes,
// and writes the same trace and charts, for every N and format.
func TestSimWorkersSameOutput(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "300", "--degree", "8", "--broadcasts", "12"},
		{"--nodes", "300", "--degree", "8", "--broadcasts", "12", "--seed", "7", "--json"},
		{"--nodes", "250", "--topology", "kout", "--degree", "4", "--strategy", "fanout", "--fanout", "3", "--loss", "0.05", "--broadcasts", "9", "--csv"},
		{"--nodes", "200", "--latency", "lognormal:50ms,0.5", "--broadcasts", "7", "--graphs", "2", "--json"},
		{"--nodes", "300", "--degree", "6", "--crash", "0.2", "--broadcasts", "10"},
		{"--nodes", "200", "--broadcasts", "6", "--gap", "0", "--json"},            // dependent: one goroutine
		{"--nodes", "200", "--broadcasts", "6", "--crash", "0.1@20ms", "--json"},   // dependent: one goroutine
		{"--nodes", "200", "--broadcasts", "6", "--strategy", "plumtree", "--csv"}, // dependent: one goroutine
	} {
		var want []byte
		for _, w := range []int{1, 2, 3} {
			dir := t.TempDir()
			full := append([]string{"sim", "--workers", strconv.Itoa(w)}, args...)
			full = append(full, "--chart", filepath.Join(dir, "c"))
			if !slicesContains(args, "--graphs") {
				full = append(full, "--trace", filepath.Join(dir, "t.json"))
			}
			var out, errs bytes.Buffer
			if code := run(full, &out, &errs); code != 0 {
				t.Fatalf("%v: exit %d: %s", full, code, errs.String())
			}
			got := out.Bytes()
			for _, f := range []string{"t.json", "c-coverage.svg", "c-hops.svg"} {
				data, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil && !(f == "t.json" && os.IsNotExist(err)) {
					t.Fatal(err)
				}
				got = append(append(got, f...), data...)
			}
			if w == 1 {
				want = got
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%v: --workers %d differs from --workers 1:\n%.2000s\n---\n%.2000s", args, w, got, want)
			}
		}
	}
}

// TestSimWorkersFlag: --workers is checked, and its help names the default.
func TestSimWorkersFlag(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--nodes", "100", "--workers", "-1"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "workers") {
		t.Fatalf("--workers -1: exit %d, stderr %q", code, errs.String())
	}
	out.Reset()
	errs.Reset()
	run([]string{"sim", "-h"}, &out, &errs)
	help := out.String() + errs.String()
	if !strings.Contains(help, "-workers") || !strings.Contains(help, "GOMAXPROCS") {
		t.Fatalf("help does not describe --workers:\n%s", help)
	}
}
