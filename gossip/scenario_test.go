package gossip

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gossipmesh/wire"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/scenarios with what the core does now")

// TestScenarios runs the scenario files in testdata/scenarios, in the manner
// of etcd-io/raft's datadriven tests: each step is a directive, a line
// "----", and the output the core must produce, ended by a blank line.
// `go test ./gossip -run Scenarios -rewrite` regenerates the expectations;
// review the diff before committing it.
//
// Directives:
//
//	config strategy=fanout fanout=2 ttl=1s capacity=8 future=1s seqbase=N storecap=N optimize=N graft=100ms ihave=10ms
//	       lazyd=N dlazy=N history=N ae=1s|off aemax=N
//	                                                      settings for nodes made after it
//	node ID peers=A,B,...                                 make a node
//	publish NODE BODY [at=NS]                             NODE publishes BODY
//	deliver [count=K] [at=NS]                             deliver queued sends in FIFO order
//	drop [count=K]                                        lose the first K queued sends (default 1)
//	inject-ctl NODE from=X kind=ihave|iwant|graft|prune [of=O:S:B] [at=NS]
//	                                                      NODE gets a control frame, naming the
//	                                                      message of origin O, seq S, body B
//	inject NODE from=X origin=O seq=S hop=H body=B [id=valid|bogus] [pub=NS] [at=NS]
//	                                                      pub is PublishedAt (default 0)
//	tick NODE at=NS                                       tick NODE, print its seen-cache
//	down NODE PEER [at=NS]                                NODE's link to PEER goes down
//	up NODE PEER [at=NS]                                  NODE's link to PEER comes up (what NODE sends is queued)
//	plumtree NODE                                         print NODE's Plumtree links and counters
//	antientropy NODE                                      print NODE's anti-entropy counters
//	lazy NODE                                             print NODE's lazy-push eager set and counters
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) { runScenario(t, path) })
	}
}

type scenario struct {
	t     *testing.T
	cfg   Config
	nodes map[wire.NodeID]*Core
	queue []queued
}

type queued struct {
	from wire.NodeID
	send Send
}

func runScenario(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &scenario{t: t, cfg: unsignedConfig(), nodes: map[wire.NodeID]*Core{}}
	var rewritten strings.Builder
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			rewritten.WriteString(text + "\n")
			continue
		}
		directive, dirLine := text, line
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: directive without a ---- line", path, dirLine)
		}
		line++
		var want []string
		for sc.Scan() {
			line++
			if sc.Text() == "" {
				break
			}
			want = append(want, sc.Text())
		}
		got := s.step(directive)
		rewritten.WriteString(directive + "\n----\n" + strings.Join(got, "\n") + "\n\n")
		if !*rewrite && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, dirLine, directive, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *scenario) step(directive string) []string {
	fields := strings.Fields(directive)
	args := map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	at := s.int(args["at"])
	var out Output
	switch fields[0] {
	case "config":
		s.cfg = unsignedConfig()
		for k, v := range args {
			switch k {
			case "strategy":
				s.cfg.Strategy = Strategy(v)
			case "fanout":
				s.cfg.Fanout = int(s.int(v))
			case "capacity":
				s.cfg.SeenCapacity = int(s.int(v))
			case "ttl":
				d, err := time.ParseDuration(v)
				if err != nil {
					s.t.Fatal(err)
				}
				s.cfg.SeenTTL = d
			case "maxhops":
				s.cfg.MaxHops = uint16(s.int(v))
			case "future":
				d, err := time.ParseDuration(v)
				if err != nil {
					s.t.Fatal(err)
				}
				s.cfg.MaxFuture = d
			case "storecap":
				s.cfg.StoreCapacity = int(s.int(v))
			case "optimize":
				s.cfg.PlumtreeOptimizeThreshold = int(s.int(v))
			case "graft":
				d, err := time.ParseDuration(v)
				if err != nil {
					s.t.Fatal(err)
				}
				s.cfg.PlumtreeGraftTimeout = d
			case "ihave":
				d, err := time.ParseDuration(v)
				if err != nil {
					s.t.Fatal(err)
				}
				s.cfg.PlumtreeIHaveInterval = d
			case "seqbase":
				s.cfg.SeqBase = uint64(s.int(v))
			case "ae":
				if v == "off" {
					s.cfg.AntiEntropy = -1
					break
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					s.t.Fatal(err)
				}
				s.cfg.AntiEntropy = d
			case "aemax":
				s.cfg.AntiEntropyMaxMessages = int(s.int(v))
			case "lazyd":
				s.cfg.LazyD = int(s.int(v))
			case "dlazy":
				s.cfg.LazyDLazy = int(s.int(v))
			case "history":
				s.cfg.LazyHistory = int(s.int(v))
			}
		}
		if err := s.cfg.Validate(); err != nil {
			return []string{"error: " + err.Error()}
		}
		return []string{"ok"}
	case "node":
		id := s.id(pos[0])
		c, err := New(s.cfg, id, rand.New(rand.NewPCG(1, uint64(id))))
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		if args["peers"] != "" {
			for _, p := range strings.Split(args["peers"], ",") {
				c.AddPeer(s.id(p))
			}
		}
		s.nodes[id] = c
		return []string{"ok"}
	case "publish":
		id := s.id(pos[0])
		if _, err := s.nodes[id].Publish(at, []byte(strings.Join(pos[1:], " ")), &out); err != nil {
			return []string{"error: " + err.Error()}
		}
		return s.take(id, &out)
	case "deliver":
		count := len(s.queue)
		if v, ok := args["count"]; ok {
			count = min(count, int(s.int(v)))
		}
		var lines []string
		for range count {
			q := s.queue[0]
			s.queue = s.queue[1:]
			out.Reset()
			node, ok := s.nodes[q.send.To]
			if !ok {
				lines = append(lines, fmt.Sprintf("n%d: no such node, dropped", q.send.To))
				continue
			}
			node.Step(at, q.from, q.send.Frame, &out)
			lines = append(lines, s.take(q.send.To, &out)...)
		}
		if len(lines) == 0 {
			return []string{"nothing queued"}
		}
		return lines
	case "drop":
		count := min(len(s.queue), 1)
		if v, ok := args["count"]; ok {
			count = min(len(s.queue), int(s.int(v)))
		}
		var lines []string
		for _, q := range s.queue[:count] {
			what := "message"
			if q.send.Ctl != nil {
				what = q.send.Ctl.Kind.String()
			}
			lines = append(lines, fmt.Sprintf("lost n%d -> n%d %s", q.from, q.send.To, what))
		}
		s.queue = s.queue[count:]
		if len(lines) == 0 {
			return []string{"nothing queued"}
		}
		return lines
	case "inject":
		id := s.id(pos[0])
		m := &wire.Message{Origin: s.id(args["origin"]), Seq: uint64(s.int(args["seq"])), Hop: uint16(s.int(args["hop"])), PublishedAt: s.int(args["pub"]), Body: []byte(args["body"])}
		m.ID = wire.ComputeMsgID(m.Origin, m.Seq, m.Body)
		if args["id"] == "bogus" {
			m.ID[0] ^= 0xff
		}
		s.nodes[id].Receive(at, s.id(args["from"]), m, &out)
		return s.take(id, &out)
	case "antientropy":
		id := s.id(pos[0])
		st, ok := AntiEntropyStatsOf(s.nodes[id])
		if !ok {
			return []string{"no store"}
		}
		return []string{fmt.Sprintf("n%d: pulls=%d digests=%d partial=%d answered=%d repairs-sent=%d repairs-received=%d truncated=%d unrepairable=%d store=%d next-pull=%d",
			id, st.PullsSent, st.DigestsSent, st.PartialDigests, st.PullsAnswered, st.RepairsSent, st.RepairsReceived, st.Truncated, st.Unrepairable, st.Store.Messages, s.nodes[id].aeNext())}
	case "inject-ctl":
		id := s.id(pos[0])
		kinds := map[string]wire.FrameType{"ihave": wire.FrameIHave, "iwant": wire.FrameIWant, "graft": wire.FrameGraft, "prune": wire.FramePrune}
		kind, ok := kinds[args["kind"]]
		if !ok {
			s.t.Fatalf("inject-ctl: unknown kind %q", args["kind"])
		}
		c := &wire.Control{Kind: kind}
		if of, ok := args["of"]; ok {
			parts := strings.SplitN(of, ":", 3)
			if len(parts) != 3 {
				s.t.Fatalf("inject-ctl: of=%q, want ORIGIN:SEQ:BODY", of)
			}
			c.IDs = []wire.MsgID{wire.ComputeMsgID(s.id(parts[0]), uint64(s.int(parts[1])), []byte(parts[2]))}
		}
		s.nodes[id].Step(at, s.id(args["from"]), Frame{Ctl: c}, &out)
		return s.take(id, &out)
	case "down":
		id := s.id(pos[0])
		s.nodes[id].PeerDown(at, s.id(pos[1]), &out)
		return s.take(id, &out)
	case "up":
		id := s.id(pos[0])
		s.nodes[id].PeerUp(at, s.id(pos[1]), &out)
		return s.take(id, &out)
	case "plumtree":
		id := s.id(pos[0])
		st, ok := PlumtreeStatsOf(s.nodes[id])
		if !ok {
			return []string{"not a plumtree node"}
		}
		var lazy []string
		for _, p := range s.nodes[id].Peers() {
			if IsLazy(s.nodes[id], p) {
				lazy = append(lazy, fmt.Sprintf("n%d", p))
			}
		}
		return []string{fmt.Sprintf("n%d: eager=%d lazy=%d %v missing=%d prunes=%d grafts=%d ihaves=%d optimized=%d store=%d served=%d misses=%d",
			id, st.Eager, st.Lazy, lazy, st.Missing, st.PrunesSent, st.GraftsSent, st.IHavesSent, st.Optimizations, st.Store.Messages, st.Store.Served, st.Store.Misses)}
	case "lazy":
		id := s.id(pos[0])
		st, ok := LazyStatsOf(s.nodes[id])
		if !ok {
			return []string{"not a lazy node"}
		}
		var eager []string
		for _, p := range LazyEager(s.nodes[id]) {
			eager = append(eager, fmt.Sprintf("n%d", p))
		}
		return []string{fmt.Sprintf("n%d: eager=%v lazy=%d cached=%d promises=%d ihaves=%d iwants=%d served=%d unserved=%d broken=%d store=%d",
			id, eager, st.Lazy, st.Cached, st.Promises, st.IHavesSent, st.IWantsSent, st.Served, st.Unserved, st.PromisesBroken, st.Store.Messages)}
	case "tick":
		id := s.id(pos[0])
		s.nodes[id].Tick(at, &out)
		lines := []string{fmt.Sprintf("n%d: seen=%d next-tick=%d", id, s.nodes[id].SeenLen(), s.nodes[id].NextTick())}
		if len(out.Sends)+len(out.Events) > 0 {
			lines = append(lines, s.take(id, &out)...)
		}
		return lines
	}
	s.t.Fatalf("unknown directive %q", fields[0])
	return nil
}

// take formats a node's output and queues its sends.
func (s *scenario) take(id wire.NodeID, out *Output) []string {
	var lines []string
	for _, e := range out.Events {
		l := fmt.Sprintf("n%d: %s %s hop=%d", id, e.Kind, e.Msg.ID.String()[:8], e.Msg.Hop)
		if e.From != 0 {
			l += fmt.Sprintf(" from=n%d", e.From)
		}
		if e.PeerFault {
			l += " peer-fault"
		}
		if e.Err != nil {
			l += " err=" + strconv.Quote(e.Err.Error())
		}
		lines = append(lines, l)
	}
	for _, snd := range out.Sends {
		if c := snd.Ctl; c != nil && c.Kind == wire.FramePull {
			lines = append(lines, fmt.Sprintf("n%d: send to=n%d %s", id, snd.To, frameName(snd.Frame)))
		} else if c != nil {
			l := fmt.Sprintf("n%d: send to=n%d %v ids=%d ranges=%d", id, snd.To, c.Kind, len(c.IDs), len(c.Ranges))
			switch {
			case c.Kind == wire.FrameIHave && c.HasHop:
				l += fmt.Sprintf(" hop=%d", c.Hop)
			case c.Kind == wire.FramePrune:
				l += " reason=" + c.Reason.String()
			}
			lines = append(lines, l)
		} else {
			lines = append(lines, fmt.Sprintf("n%d: send to=n%d hop=%d", id, snd.To, snd.Msg.Hop))
		}
		s.queue = append(s.queue, queued{from: id, send: snd})
	}
	if len(lines) == 0 {
		return []string{"(nothing)"}
	}
	return lines
}

// frameName renders a frame in one word or so; a PULL with its flags and
// ranges (origin:first-last).
func frameName(f Frame) string {
	c := f.Ctl
	if c == nil {
		return fmt.Sprintf("msg %s hop=%d", f.Msg.ID.String()[:8], f.Msg.Hop)
	}
	if c.Kind != wire.FramePull {
		return c.Kind.String()
	}
	var b strings.Builder
	b.WriteString("pull")
	if c.Flags&wire.PullWantDigest != 0 {
		b.WriteString(" want-digest")
	}
	if c.Flags&wire.PullPartial != 0 {
		b.WriteString(" partial")
	}
	b.WriteString(" [")
	for i, r := range c.Ranges {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "n%d:%d-%d", r.Origin, r.First, r.Last)
	}
	b.WriteString("]")
	return b.String()
}

func (s *scenario) id(v string) wire.NodeID { return wire.NodeID(s.int(strings.TrimPrefix(v, "n"))) }

func (s *scenario) int(v string) int64 {
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		s.t.Fatalf("bad number %q", v)
	}
	return n
}
