package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// Every soak flag is checked before a node starts or a log directory is
// made: a bad one exits 2 with a message that names it.
func TestSoakRejectsBadFlagsBeforeStarting(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1", "--peers", "1"}, "at least 2 nodes"},
		{[]string{"--duration", "0s"}, "duration"},
		{[]string{"--duration", "100h"}, "duration"},
		{[]string{"--rate", "-1"}, "rate"},
		{[]string{"--rate", "1e308"}, "rate"},
		{[]string{"--large-rate", "NaN"}, "large rate"},
		{[]string{"--large-size", "2000000"}, "large size"},
		{[]string{"--slow-conns", "500", "--attempts", "400"}, "attempts"},
		{[]string{"--subscribers", "-1"}, "subscribers"},
		{[]string{"--rss-budget", "0"}, "rss-budget"},
		{[]string{"--rss-budget", "lots"}, "rss-budget"},
		{[]string{"--storm", "2000000"}, "storm"},
		{[]string{"--honest-wait", "0s"}, "honest wait"},
		{[]string{"--cross-site-every", "1ms"}, "cross-site"},
		{[]string{"--log-level", "warn"}, "log-level info"},
		{[]string{"--strategy", "gossipsub"}, "strategy"},
		{[]string{"now"}, "no arguments"},
	} {
		args := append([]string{"soak", "--logs", logs}, tc.args...)
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", args, stderr.String(), tc.want)
		}
		if _, err := os.Stat(logs); err == nil {
			t.Fatalf("mesh %v made the log directory before failing", args)
		}
	}
}

func TestSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "1048576": 1 << 20, "1.5MiB": 3 << 19, "100B": 100} {
		var s sizeFlag
		if err := s.Set(in); err != nil || s.bytes != want {
			t.Errorf("%q: %d, %v; want %d", in, s.bytes, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "MiB", "1TB", "inf"} {
		var s sizeFlag
		if err := s.Set(in); err == nil {
			t.Errorf("%q accepted as %d bytes", in, s.bytes)
		}
	}
}

// The JSON report's field names are what scripts read: check they are all
// there, in snake case, and that an absent storm is null.
func TestSoakJSONFieldNames(t *testing.T) {
	r := cluster.SoakResult{
		Nodes: 2, Duration: time.Minute, Seed: 3, Victim: 1,
		PerNode:   []cluster.SoakNode{{Index: 0, PeakRSS: 1 << 20, Exact: true, MaxPerMessage: 1}, {Index: 1}},
		CrossSite: []cluster.CrossSiteCount{{Route: "node POST /messages", Kind: "origin", Sent: 2, Changed: 1, Refused: 1}},
		Failures:  []string{"x"},
	}
	b, err := json.Marshal(soakOut(r, cluster.DefaultSoakConfig()))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"nodes":2`, `"seed":3`, `"ok":false`, `"failures":["x"]`, `"victim":1`, `"storm":null`,
		`"peak_rss_bytes":1048576`, `"delivered_twice":0`, `"max_deliveries_per_message":1`, `"exact":true`, `"rss_budget_bytes":268435456`,
		`"cross_site":{"sent":2,"changed":1,"by_route":[{"route":"node POST /messages","kind":"origin","sent":2,"refused":1,"changed":1`,
		`"honest":{"messages":0,"pairs":0,"delivered":0,"ratio":1,"missing":[]}`, `"slow_frames":{`, `"closed_by_node":0`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON lacks %s:\n%s", want, got)
		}
	}
}
