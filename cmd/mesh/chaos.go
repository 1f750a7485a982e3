package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gossipmesh/cluster"
	"gossipmesh/fault"
)

func chaosCommand() command {
	return command{name: "chaos", summary: "inject faults into the running mesh: partitions, loss, delay, kills, pauses", run: runChaos}
}

// chaosSynopsis is the help's usage line and the verbs.
const chaosSynopsis = `chaos VERB [ARGS] [flags]

verbs (SET is "all", an index, a range such as 0-4, or a list such as 5,7,9):
  split SET SET            cut every link between the two sets, both ways
  heal                     remove every cut (loss and delay stay)
  loss P [SET]             drop each frame the nodes of SET send with probability P (default all)
  delay D [JITTER] [SET]   hold each frame the nodes of SET send D ± JITTER, e.g. 10ms 5ms (default all)
  kill SET                 SIGKILL the nodes; mesh status shows them exited
  restart SET              start the nodes again, same id and ports, with no faults
  pause SET                SIGSTOP the nodes: hung, connections open, silent
  resume SET               SIGCONT paused nodes
  adversary SET MODE       make the nodes misbehave: MODE as for mesh node --adversary (blackhole,
                           spam=20000, censor=@3 …; @K is node K's id), or honest (also none, "")
  clear                    undo everything: resume paused nodes, restart exited ones, clear every plan,
                           turn every adversary honest
  status                   show each node's state, fault plan and adversary mode
  scenario NAME            run one row of the fault table on the mesh and print what
                           it found: kill, loss, split, pause, restart, crash or hung,
                           or a Byzantine row: byzantine or spam (see the README's
                           figures); it ends with clear

Every verb returns once the change is in force on every node concerned.`

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("chaos", chaosSynopsis, stderr)
	state := fs.String("state", cluster.DefaultStatePath, "state file written by mesh up")
	asJSON := fs.Bool("json", false, "status: print the nodes as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for a change to be in force")
	var sc scenarioFlags
	sc.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(stderr, "chaos needs a verb: split, heal, loss, delay, kill, restart, pause, resume, adversary, clear, status or scenario\nRun 'mesh help chaos' for what each does.")
	}
	if *timeout <= 0 {
		return usageError(stderr, "--timeout must be positive, got %v", *timeout)
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	if _, ok := chaosArity[verb]; !ok {
		return usageError(stderr, "chaos: unknown verb %q\nRun 'mesh help chaos' for the verbs.", verb)
	}
	if a := chaosArity[verb]; len(rest) < a[0] || len(rest) > a[1] {
		return usageError(stderr, "chaos %s: %s, got %q\nRun 'mesh help chaos' for the verbs.", verb, chaosArgs[verb], rest)
	}
	if *asJSON && verb != "status" && verb != "scenario" {
		return usageError(stderr, "chaos %s: --json is for status and scenario only", verb)
	}
	if name, ok := sc.setOutside(fs, verb); ok {
		return usageError(stderr, "chaos %s: --%s is for scenario only", verb, name)
	}
	ch, err := cluster.OpenChaos(*state)
	if err != nil {
		return err
	}
	ch.Timeout, ch.Notes = *timeout, chaosNotes{stderr}
	set := func(i int) ([]int, error) {
		if i >= len(rest) {
			return fault.ParseSet("all", ch.Len())
		}
		s, err := fault.ParseSet(rest[i], ch.Len())
		if err != nil {
			return nil, usageError(stderr, "chaos %s: %v", verb, err)
		}
		return s, nil
	}
	switch verb {
	case "split":
		a, err := set(0)
		if err != nil {
			return err
		}
		b, err := set(1)
		if err != nil {
			return err
		}
		for _, i := range a {
			if slices.Contains(b, i) {
				return usageError(stderr, "chaos split: node %d is in both sets: a split needs two sets apart, such as 0-4 5-9", i)
			}
		}
		if err := ch.Split(ctx, a, b); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "split: nodes %s cut off from nodes %s\n", rest[0], rest[1])
	case "heal":
		if err := ch.Heal(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "healed: no link is cut")
	case "loss":
		p, err := strconv.ParseFloat(rest[0], 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return usageError(stderr, "chaos loss: %q is not a probability: want a number from 0 to 1, such as 0.2", rest[0])
		}
		s, err := set(1)
		if err != nil {
			return err
		}
		if err := ch.Loss(ctx, p, s); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "loss %v on every link from %d nodes\n", p, len(s))
	case "delay":
		d, err := parseChaosDuration("delay", rest[0], stderr)
		if err != nil {
			return err
		}
		var jitter time.Duration
		setAt := 1
		if len(rest) > 1 {
			// The second argument is a jitter if it parses as a duration,
			// else the set.
			// A bare number ("0") is a node index, not a jitter.
			if j, jerr := time.ParseDuration(rest[1]); jerr == nil && strings.ContainsAny(rest[1], "nsuµmh") {
				if j < 0 {
					return usageError(stderr, "chaos delay: jitter %q: want 0 or more", rest[1])
				}
				jitter, setAt = j, 2
			} else if len(rest) == 3 {
				return usageError(stderr, "chaos delay: jitter %q: want a Go duration such as 5ms", rest[1])
			}
		}
		if setAt < len(rest)-1 {
			return usageError(stderr, "chaos delay: %s, got %q", chaosArgs["delay"], rest)
		}
		if d+jitter > fault.MaxDelay {
			return usageError(stderr, "chaos delay: %v plus jitter %v: want at most %v together", d, jitter, fault.MaxDelay)
		}
		s, err := set(setAt)
		if err != nil {
			return err
		}
		if err := ch.Delay(ctx, d, jitter, s); err != nil {
			return err
		}
		if jitter != 0 {
			fmt.Fprintf(stdout, "delay %v ± %v on every link from %d nodes\n", d, jitter, len(s))
		} else {
			fmt.Fprintf(stdout, "delay %v on every link from %d nodes\n", d, len(s))
		}
	case "kill", "restart", "pause", "resume":
		s, err := set(0)
		if err != nil {
			return err
		}
		do := map[string]func(context.Context, []int) error{"kill": ch.Kill, "restart": ch.Restart, "pause": ch.Pause, "resume": ch.Resume}[verb]
		if err := do(ctx, s); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: nodes %s\n", map[string]string{"kill": "killed", "restart": "restarted", "pause": "paused", "resume": "resumed"}[verb], rest[0])
	case "adversary":
		s, err := set(0)
		if err != nil {
			return err
		}
		mode := rest[1]
		if mode == "honest" {
			mode = ""
		}
		if _, err := cluster.ResolveMode(mode, nil); err != nil && !strings.Contains(mode, "@") {
			return usageError(stderr, "chaos adversary: %v", err)
		}
		if err := ch.Adversary(ctx, s, mode); err != nil {
			return err
		}
		if mode == "" || mode == "none" {
			fmt.Fprintf(stdout, "honest: nodes %s\n", rest[0])
		} else {
			fmt.Fprintf(stdout, "adversary %s: nodes %s\n", mode, rest[0])
		}
	case "clear":
		if err := ch.Clear(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "cleared: every node runs with no fault plan, and honest")
	case "status":
		nodes := ch.Status(ctx)
		if *asJSON {
			return writeJSON(stdout, struct {
				Nodes []cluster.ChaosNode `json:"nodes"`
			}{nodes})
		}
		printChaosStatus(stdout, nodes)
	case "scenario":
		cfg := sc.config(rest[0])
		if err := cfg.Validate(); err != nil {
			return usageError(stderr, "chaos %v", err)
		}
		if sc.runs < 1 {
			return usageError(stderr, "chaos scenario: --runs %d: want 1 or more", sc.runs)
		}
		if sc.verbose {
			cfg.Log = stderr
		}
		return runScenarios(ctx, ch, cfg, sc.runs, *asJSON, stdout)
	}
	return nil
}

// runScenarios runs the scenario runs times, seeds cfg.Seed (default 1)
// and up, printing each run and then each figure's median; it fails if
// any check of any run did not hold.
func runScenarios(ctx context.Context, ch *cluster.Chaos, cfg cluster.ScenarioConfig, runs int, asJSON bool, stdout io.Writer) error {
	seed := max(cfg.Seed, 1)
	var results []cluster.ScenarioResult
	failed := 0
	for k := range runs {
		cfg.Seed = seed + uint64(k)
		res, err := ch.RunScenario(ctx, cfg)
		if err != nil {
			return err
		}
		if !res.OK() {
			failed++
		}
		results = append(results, res)
		if !asJSON {
			if runs > 1 {
				fmt.Fprintf(stdout, "run %d of %d, seed %d: ", k+1, runs, cfg.Seed)
			}
			res.WriteText(stdout)
		}
	}
	medians := cluster.MedianFigures(results)
	if asJSON {
		if err := writeJSON(stdout, struct {
			Runs    []cluster.ScenarioResult `json:"runs"`
			Medians []cluster.ScenarioMedian `json:"medians"`
		}{results, medians}); err != nil {
			return err
		}
	} else if runs > 1 {
		fmt.Fprintf(stdout, "medians of %d runs:\n", runs)
		for _, m := range medians {
			v := strconv.FormatFloat(m.Median, 'f', 0, 64) + " ms"
			if len(m.Runs) == 0 {
				v = "never within the limit"
			}
			parts := make([]string, len(m.Runs))
			for i, r := range m.Runs {
				parts[i] = strconv.FormatFloat(r, 'f', 0, 64)
			}
			v += " (" + strings.Join(parts, ", ") + ")"
			if m.Missing > 0 {
				v += fmt.Sprintf(", %d runs never within the limit", m.Missing)
			}
			if m.Target != "" {
				v += ", target " + m.Target
			}
			fmt.Fprintf(stdout, "  %s: %s\n", m.What, v)
		}
	}
	if failed > 0 {
		return fmt.Errorf("scenario %s: a check did not hold in %d of %d runs", cfg.Name, failed, runs)
	}
	return nil
}

// scenarioFlags are `mesh chaos scenario`'s flags: zero values take the
// scenario's row (cluster.DefaultScenarioConfig).
type scenarioFlags struct {
	seed             uint64
	rate, frac, loss float64
	duration, limit  time.Duration
	messages         int
	mode             string
	runs             int
	verbose          bool
}

// scenarioFlagNames are the flags that only scenario takes.
var scenarioFlagNames = []string{"seed", "rate", "fraction", "loss", "duration", "limit", "messages", "mode", "runs", "v"}

func (f *scenarioFlags) register(fs *flag.FlagSet) {
	fs.Uint64Var(&f.seed, "seed", 0, "scenario: seed for the nodes it faults and the publishers (default 1)")
	fs.Float64Var(&f.rate, "rate", 0, "scenario: messages/s published while it streams (default: the row's, kill 100, loss 20, others 10)")
	fs.Float64Var(&f.frac, "fraction", 0, "scenario: share of the nodes kill kills (default 0.3) and pause pauses (default 0.1)")
	fs.Float64Var(&f.loss, "loss", 0, "scenario loss: drop probability on every link (default 0.2)")
	fs.DurationVar(&f.duration, "duration", 0, "scenario: how long the fault lasts (default: the row's, split and restart 10s, pause 5s, hung at most 15s; kill: survivors stream 5s)")
	fs.DurationVar(&f.limit, "limit", 0, "scenario: longest wait for any outcome before its check fails (default 2m)")
	fs.IntVar(&f.messages, "messages", 0, "scenario loss: messages published (default 100)")
	fs.StringVar(&f.mode, "mode", "", "scenario byzantine and spam: the adversary mode, as for mesh node --adversary (default: byzantine blackhole, spam spam-invalid=20000)")
	fs.IntVar(&f.runs, "runs", 1, "scenario: run it this many times, seeds --seed and up, and print each figure's median")
	fs.BoolVar(&f.verbose, "v", false, "scenario: log each step on stderr")
}

// setOutside names a scenario flag set for another verb.
func (f *scenarioFlags) setOutside(fs *flag.FlagSet, verb string) (string, bool) {
	if verb == "scenario" {
		return "", false
	}
	for _, n := range scenarioFlagNames {
		if flagSet(fs, n) {
			return n, true
		}
	}
	return "", false
}

func (f *scenarioFlags) config(name string) cluster.ScenarioConfig {
	return cluster.ScenarioConfig{
		Name: name, Seed: f.seed, Rate: f.rate, Fraction: f.frac, Loss: f.loss,
		Duration: f.duration, Limit: f.limit, Messages: f.messages, Mode: f.mode,
	}
}

// chaosArity is each verb's least and most arguments; chaosArgs says
// which.
var chaosArity = map[string][2]int{
	"split": {2, 2}, "heal": {0, 0}, "loss": {1, 2}, "delay": {1, 3},
	"kill": {1, 1}, "restart": {1, 1}, "pause": {1, 1}, "resume": {1, 1},
	"adversary": {2, 2}, "clear": {0, 0}, "status": {0, 0}, "scenario": {1, 1},
}

var chaosArgs = map[string]string{
	"split": "want two node sets, such as 0-4 5-9", "heal": "takes no arguments",
	"loss": "want a probability and an optional node set, such as 0.2 0-4", "delay": "want a delay, an optional jitter and an optional node set, such as 10ms 5ms 0-4",
	"kill": "want one node set, such as 2 or 0-4", "restart": "want one node set, such as 2 or 0-4",
	"pause": "want one node set, such as 3 or 5,7,9", "resume": "want one node set, such as 3 or all",
	"adversary": "want a node set and a mode, such as 0-2 blackhole or all honest",
	"clear":     "takes no arguments", "status": "takes no arguments",
	"scenario": "want one scenario: kill, loss, split, pause, restart, crash, hung, byzantine or spam",
}

func parseChaosDuration(what, s string, stderr io.Writer) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usageError(stderr, "chaos %s: %q: want a Go duration of 0 or more, such as 10ms", what, s)
	}
	return d, nil
}

// chaosNotes prefixes the lines the chaos verbs note about skipped nodes.
type chaosNotes struct{ w io.Writer }

func (n chaosNotes) Write(p []byte) (int, error) {
	if _, err := io.WriteString(n.w, "mesh chaos: "+string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// printChaosStatus prints one line per node: state, loss, delay and cuts.
func printChaosStatus(w io.Writer, nodes []cluster.ChaosNode) {
	fmt.Fprintf(w, "  %4s  %-16s  %7s  %-7s  %5s  %-15s  %-23s  %s\n", "node", "id", "pid", "state", "drop", "delay", "adversary", "cut")
	for _, n := range nodes {
		drop, delay, cut := "-", "-", "-"
		switch {
		case n.Error != "":
			cut = "not answering: " + n.Error
		case n.Faults != nil:
			drop = strconv.FormatFloat(n.Faults.Drop, 'g', 4, 64)
			delay = n.Faults.Delay.String()
			if n.Faults.Jitter != 0 {
				delay += "±" + n.Faults.Jitter.String()
			}
			if len(n.Cut) > 0 {
				cut = joinInts(n.Cut)
			} else {
				cut = "none"
			}
		}
		adv := "-"
		if n.Adversary != nil {
			adv = *n.Adversary
		} else if n.Faults != nil {
			adv = "honest"
		}
		fmt.Fprintf(w, "  %4d  %-16s  %7d  %-7s  %5s  %-15s  %-23s  %s\n", n.Index, n.ID, n.PID, n.State, drop, delay, adv, cut)
	}
	var paused, exited []string
	for _, n := range nodes {
		switch n.State {
		case cluster.StatePaused:
			paused = append(paused, strconv.Itoa(n.Index))
		case cluster.StateExited:
			exited = append(exited, strconv.Itoa(n.Index))
		}
	}
	fmt.Fprintf(w, "\npaused: %s · exited: %s\n", listOrNone(paused), listOrNone(exited))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}
