package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"gossipmesh/maelstrom"
)

func TestMaelstromRejectsBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"maelstrom", "extra"},
		{"maelstrom", "--overlay", "ring"},
		{"maelstrom", "--strategy", "telepathy"},
		{"maelstrom", "--batch", "-1s"},
		{"maelstrom", "--branching", "0"},
		{"maelstrom", "--log-level", "loud"},
		{"maelstrom-test", "--nodes", "0"},
		{"maelstrom-test", "--rate", "0"},
		{"maelstrom-test", "--partitions", "--nodes", "1"},
		{"maelstrom-test", "--overlay", "ring"},
		{"maelstrom-test", "extra"},
	} {
		var out, errs bytes.Buffer
		if code := runWithStdin(args, strings.NewReader(""), &out, &errs); code != 2 {
			t.Errorf("mesh %q exited %d, want 2 (stderr %q)", args, code, errs.String())
		}
		if out.Len() != 0 {
			t.Errorf("mesh %q wrote to stdout: %q", args, out.String())
		}
	}
}

// `mesh maelstrom` answers on stdout only, and logs on stderr only.
func TestMaelstromNodeStdio(t *testing.T) {
	in := strings.Join([]string{
		`{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n0","n1"]}}`,
		`{"src":"c0","dest":"n1","body":{"type":"broadcast","msg_id":2,"message":5}}`,
		`{"src":"c0","dest":"n1","body":{"type":"read","msg_id":3}}`,
	}, "\n") + "\n"
	var out, errs bytes.Buffer
	if code := runWithStdin([]string{"maelstrom"}, strings.NewReader(in), &out, &errs); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs.String())
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e maelstrom.Envelope
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("stdout line %q is not a message: %v", line, err)
		}
		b, err := maelstrom.DecodeBody(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Dest+":"+b.Type)
		if b.Type == "read_ok" && (b.Messages == nil || len(*b.Messages) != 1 || (*b.Messages)[0] != 5) {
			t.Errorf("read_ok %s, want [5]", e.Body)
		}
	}
	if want := "c0:init_ok n0:gossip c0:broadcast_ok c0:read_ok"; strings.Join(types, " ") != want {
		t.Errorf("stdout carried %q, want %q", strings.Join(types, " "), want)
	}
	if !strings.Contains(errs.String(), "maelstrom node ready") {
		t.Errorf("stderr lacks the ready line: %q", errs.String())
	}
}

// `mesh maelstrom-test` runs this executable as its nodes (the test binary
// acts as mesh; see TestMain) and prints a report.
func TestMaelstromTestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	var out, errs bytes.Buffer
	args := []string{"maelstrom-test", "--nodes", "3", "--rate", "20", "--time", "1s", "--settle", "1s", "--json", "--batch", "100ms"}
	if code := runWithStdin(args, strings.NewReader(""), &out, &errs); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs.String())
	}
	var r maelstrom.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("--json output %q: %v", out.String(), err)
	}
	if r.Nodes != 3 || r.Broadcasts == 0 || r.LostCount != 0 || r.Ops != r.Broadcasts+r.Reads || len(r.NodeArgs) != 1 || r.NodeArgs[0] != "--batch=100ms" {
		t.Errorf("report %+v", r)
	}
}
