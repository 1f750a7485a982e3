package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSigningFlags: --signing, --auth and --validate take their documented
// values in every subcommand that builds nodes, and a bad value is a usage
// error before anything starts.
func TestSigningFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--signing", "maybe"},
		{"sim", "--auth", "rsa"},
		{"sim", "--validate", "xml"},
		{"sim", "--validate", "max-body"},
		{"node", "--signing", "maybe"},
		{"node", "--validate", "utf8,xml"},
		{"up", "--validate", "max-body=x"},
		{"bench", "--validate", "xml"},
	} {
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errs.String())
		}
	}
	for _, args := range [][]string{
		{"sim", "--nodes", "200", "--signing", "none"},
		{"sim", "--nodes", "200", "--auth", "ed25519"},
		{"sim", "--nodes", "200", "--validate", "utf8,max-body=100"},
	} {
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		if !strings.Contains(out.String(), "1 reached every node (100.0%)") {
			t.Errorf("%v: the broadcast did not reach every node:\n%s", args, out.String())
		}
	}
	// A validator that rejects the simulator's binary bodies stops the
	// broadcast at its publisher.
	var out, errs bytes.Buffer
	if code := run([]string{"sim", "--nodes", "200", "--validate", "json"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "0 reached every node (0.0%)") {
		t.Errorf("--validate json: the broadcast spread:\n%s", out.String())
	}
}
