package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gossipmesh/cluster"
)

// Bad flags and arguments exit 2 with a message that names the problem,
// before anything is launched.
func TestMeshCommandsRejectBadUsage(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--nodes", "0"}, "nodes"},
		{[]string{"demo", "--peers", "10"}, "peers"},
		{[]string{"demo", "--strategy", "gossipsub"}, "strategy"},
		{[]string{"demo", "--messages", "0"}, "messages"},
		{[]string{"demo", "extra"}, "no arguments"},
		{[]string{"up", "--log-format", "xml"}, "log format"},
		{[]string{"up", "--bogus"}, "bogus"},
		{[]string{"publish", "--state", state}, "TEXT"},
		{[]string{"status", "--timeout", "0s", "--state", state}, "timeout"},
		{[]string{"down", "now", "--state", state}, "no arguments"},
		{[]string{"bench", "--nodes", "1"}, "at least 2"},
		{[]string{"bench", "--messages", "0"}, "messages"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// Commands that read the state file fail (exit 1) with a hint when no mesh
// is up.
func TestMeshCommandsWithoutStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none.json")
	for _, args := range [][]string{
		{"status", "--state", state},
		{"publish", "--state", state, "hi"},
		{"down", "--state", state},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("mesh %v: exit %d, want 1", args, code)
		}
		if !strings.Contains(stderr.String(), "mesh up") {
			t.Errorf("mesh %v: stderr %q does not say how to start a mesh", args, stderr.String())
		}
	}
}

// Every flag is checked before anything starts, and a bad one exits 2: an
// address with no valid port, a body size over the nodes' limit, a gossip
// address that is not one, --peers too large for the mesh. Before, these
// failed only after the nodes had started, or exited 1.
func TestBadFlagsExit2BeforeAnythingStarts(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--nodes", "2", "--peers", "1", "--dashboard", "127.0.0.1:99999"}, "--dashboard"},
		{[]string{"demo", "--nodes", "2", "--peers", "1", "--dashboard=127.0.0.1:99999"}, "--dashboard"},
		{[]string{"up", "--nodes", "2", "--peers", "1", "--state", filepath.Join(t.TempDir(), "s.json"), "--dashboard", "127.0.0.1:99999"}, "--dashboard"},
		{[]string{"bench", "--nodes", "2", "--peers", "1", "--size", "2000000"}, "size"},
		{[]string{"node", "--listen", "nonsense"}, "--listen"},
		{[]string{"node", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:70000"}, "--http"},
		{[]string{"demo", "--nodes", "3", "--peers", "3"}, "at most nodes-1 = 2"},
		{[]string{"demo", "--nodes", "1001"}, "1 to 1000"},
		{[]string{"publish", "--state", filepath.Join(t.TempDir(), "s.json"), "--file", "body.txt", "hi"}, "not both"},
		{[]string{"publish", "--state", filepath.Join(t.TempDir(), "s.json"), "-x"}, "mesh publish -- -text"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("mesh %v: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("mesh %v: stderr %q does not mention %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("mesh %v: printed %q: something started", tc.args, stdout.String())
		}
	}
}

// A flag error is its own line and a hint, not the whole flag list; help
// that was asked for goes to stdout and exits 0.
func TestFlagErrorsAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // "" : stdout must be empty
		stderr     string // "" : stderr must be empty
		maxErrLine int
	}{
		{[]string{"sim", "--bogus"}, 2, "", "Run 'mesh sim -h' for its flags.", 2},
		{[]string{"demo", "--nodes", "x"}, 2, "", "Run 'mesh demo -h' for its flags.", 2},
		{[]string{"help", "demo"}, 0, "usage: mesh demo", "", 0},
		{[]string{"demo", "-h"}, 0, "usage: mesh demo", "", 0},
		{[]string{"publish", "--help"}, 0, "usage: mesh publish", "", 0},
		{[]string{"help"}, 0, "commands:", "", 0},
		{[]string{"--help"}, 0, "commands:", "", 0},
		{[]string{}, 2, "", "commands:", 0},
		{[]string{"help", "nope"}, 2, "", "unknown command \"nope\"", 2},
		{[]string{"--version"}, 0, runtime.Version(), "", 0},
		{[]string{"version"}, 0, runtime.Version(), "", 0},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("mesh %v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		for _, s := range []struct {
			name, got, want string
		}{{"stdout", stdout.String(), tc.stdout}, {"stderr", stderr.String(), tc.stderr}} {
			if s.want == "" && s.got != "" {
				t.Errorf("mesh %v: %s %q, want nothing", tc.args, s.name, s.got)
			}
			if !strings.Contains(s.got, s.want) {
				t.Errorf("mesh %v: %s %q does not contain %q", tc.args, s.name, s.got, s.want)
			}
		}
		if n := strings.Count(stderr.String(), "\n"); tc.maxErrLine > 0 && n > tc.maxErrLine {
			t.Errorf("mesh %v: %d lines on stderr, want at most %d:\n%s", tc.args, n, tc.maxErrLine, stderr.String())
		}
	}
}

// Flags may come after the arguments; "--" ends them; --dashboard takes
// its value in either form, or stands alone for the default address.
func TestParseFlagsInterspersedAndOptionalValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		json bool
		dash string
		rest []string
	}{
		{[]string{"hi", "--json"}, true, "", []string{"hi"}},
		{[]string{"hello", "world", "--json", "again"}, true, "", []string{"hello", "world", "again"}},
		{[]string{"--", "--json", "x"}, false, "", []string{"--json", "x"}},
		{[]string{"a", "--", "--json"}, false, "", []string{"a", "--json"}},
		{[]string{"-"}, false, "", []string{"-"}},
		{[]string{"--dashboard"}, false, defaultDashboard, nil},
		{[]string{"--dashboard", "--json"}, true, defaultDashboard, nil},
		{[]string{"--dashboard", "127.0.0.1:9999"}, false, "127.0.0.1:9999", nil},
		{[]string{"--dashboard=127.0.0.1:9999", "--json"}, true, "127.0.0.1:9999", nil},
		{[]string{"-dashboard", "off"}, false, "", nil},
		{[]string{"--name", "--dashboard", "x"}, false, "", []string{"x"}}, // --name's value is "--dashboard"
	} {
		for _, demo := range []bool{true, false} {
			fs := newFlagSet("t", "t", io.Discard)
			asJSON := fs.Bool("json", false, "")
			fs.String("name", "", "")
			var d dashboardFlag
			if demo {
				d.registerDemo(fs)
			} else {
				d.registerUp(fs)
				d.addr = "" // start from off to see what the flags set
			}
			if err := parseFlags(fs, tc.args); err != nil {
				t.Errorf("%q: %v", tc.args, err)
				continue
			}
			if *asJSON != tc.json || d.addr != tc.dash || !slices.Equal(fs.Args(), tc.rest) {
				t.Errorf("%q (demo %v): json %v dashboard %q args %q; want %v %q %q", tc.args, demo, *asJSON, d.addr, fs.Args(), tc.json, tc.dash, tc.rest)
			}
		}
	}
}

// --peers defaults to min(3, nodes-1), so that --nodes 2 and --nodes 3
// work without it; a value the user gives is checked as given.
func TestPeersDefaultFitsTheMesh(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		peers int // -1: a usage error
	}{
		{[]string{"--nodes", "1"}, 0},
		{[]string{"--nodes", "2"}, 1},
		{[]string{"--nodes", "3"}, 2},
		{[]string{"--nodes", "4"}, 3},
		{[]string{"--nodes", "50"}, 3},
		{[]string{"--nodes", "10", "--peers", "5"}, 5},
		{[]string{"--nodes", "3", "--peers", "3"}, -1},
		{[]string{"--nodes", "2", "--peers", "0"}, -1},
	} {
		fs := newFlagSet("t", "t", io.Discard)
		var lf launchFlags
		lf.register(fs, 1, "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cfg, err := lf.config(&stderr)
		switch {
		case tc.peers < 0 && !errors.Is(err, errUsage):
			t.Errorf("%q: peers %d, err %v; want a usage error", tc.args, cfg.Peers, err)
		case tc.peers >= 0 && (err != nil || cfg.Peers != tc.peers):
			t.Errorf("%q: peers %d, err %v (%s); want %d", tc.args, cfg.Peers, err, stderr.String(), tc.peers)
		}
	}
}

// A node that was not reached keeps its distance in the table, and a miss
// under fanout is put down to fanout's random choice, not to time.
func TestReportRowsAndProblems(t *testing.T) {
	g := cluster.NewGraph(4, [][2]int{{0, 1}, {1, 2}, {2, 3}})
	r := cluster.Report{
		ID: "abc", Publisher: 0, Nodes: 4, Reached: 2, Graph: g, Distances: g.Distances(0),
		Hops:     cluster.Histogram{0: 1, 1: 1},
		Receipts: []cluster.NodeReceipt{{Index: 0, From: -1}, {Index: 1, Hop: 1, From: 0, Distance: 1}},
		Missing:  []int{2, 3},
	}
	var out bytes.Buffer
	printReport(&out, r)
	for _, want := range []string{"     2    -     2     -          -  1,3    NOT REACHED", "     3    -     3     -          -  2      NOT REACHED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if p := reportProblem(r, "fanout", time.Second); !strings.Contains(p, "fanout missed node(s) 2,3") {
		t.Errorf("fanout problem %q", p)
	}
	if p := reportProblem(r, "flood", time.Second); strings.Contains(p, "fanout") || !strings.Contains(p, "2,3") {
		t.Errorf("flood problem %q", p)
	}
	full := cluster.Report{Nodes: 1, Reached: 1, TimeToLast: 2 * time.Second}
	if p := reportProblem(full, "flood", time.Second); !strings.Contains(p, "later than 1s") {
		t.Errorf("late problem %q", p)
	}
	if p := reportProblem(full, "flood", 0); p != "" {
		t.Errorf("no deadline: problem %q", p)
	}
}

// A body from stdin or a file must be text, not empty, and not huge.
func TestReadBody(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"ok": "hello\n", "empty": "", "binary": "\xff\xfe"} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	if got, err := readBody(filepath.Join(dir, "ok"), nil); err != nil || got != "hello\n" {
		t.Errorf("ok: %q, %v", got, err)
	}
	for name, want := range map[string]string{"empty": "empty", "binary": "UTF-8", "missing": "no such file"} {
		if _, err := readBody(filepath.Join(dir, name), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", name, err, want)
		}
	}
	if _, err := readBody("stdin", io.LimitReader(zeros{}, maxPublishRead+10)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("huge stdin: err %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}
