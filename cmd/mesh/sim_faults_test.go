package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestSimFaultFlags: mesh sim's fault flags run, show in the report and
// give the same bytes for the same seed; bad values exit 2 with an error
// that names the flag and says what is wanted.
func TestSimFaultFlags(t *testing.T) {
	t.Parallel()
	args := []string{"sim", "--nodes", "400", "--degree", "8", "--broadcasts", "3", "--interval", "1s",
		"--partition", "0-199/200-399@500ms-2500ms", "--delay", "5ms,2ms", "--pause", "0.05@1s-1500ms", "--loss", "0.01", "--json"}
	var a, b, errs bytes.Buffer
	if code := run(args, &a, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if code := run(args, &b, &errs); code != 0 || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two runs of one seed differ (exit %d):\n%s\n---\n%s", code, a.String(), b.String())
	}
	var r struct {
		Partition    string `json:"partition"`
		Delay        string `json:"delay"`
		Pause        string `json:"pause"`
		Cut          int64  `json:"cut"`
		PerBroadcast []struct {
			Partition *struct {
				Sides []struct{ Nodes, Reached int } `json:"sides"`
			} `json:"partition"`
		} `json:"per_broadcast"`
	}
	if err := json.Unmarshal(a.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Partition != "0-199/200-399@500ms-2.5s" || r.Delay != "5ms,2ms" || r.Pause != "0.05@1s-1.5s" || r.Cut == 0 {
		t.Errorf("report: partition %q delay %q pause %q cut %d", r.Partition, r.Delay, r.Pause, r.Cut)
	}
	if len(r.PerBroadcast) != 3 || r.PerBroadcast[1].Partition == nil || len(r.PerBroadcast[1].Partition.Sides) != 2 {
		t.Errorf("broadcast 1, published during the split, has no per-side figures: %s", a.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--partition", "halves"}, "--partition: partition \"halves\": want SETS@FROM-TO"},
		{[]string{"--partition", "halves@2s-1s"}, "the end must come after the start"},
		{[]string{"--partition", "0-10/5-399@1s-2s"}, "node 5 is on side 0 and side 1"},
		{[]string{"--partition", "0-10/11-400@1s-2s"}, "node 400 does not exist"},
		{[]string{"--delay", "soon"}, "--delay: delay \"soon\": \"soon\" is not a duration"},
		{[]string{"--delay", "1ms,2m"}, "want at most 1m0s together"},
		{[]string{"--pause", "0.1"}, "--pause: pause \"0.1\": want FRACTION@FROM-TO"},
		{[]string{"--pause", "1@1s-2s"}, "pause fraction must be in (0, 1)"},
	} {
		var out, errs bytes.Buffer
		args := append([]string{"sim", "--nodes", "400"}, c.args...)
		if code := run(args, &out, &errs); code != 2 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, firstLine(errs.String()), c.want)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
