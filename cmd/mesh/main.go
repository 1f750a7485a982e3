// Command mesh is gossipmesh's one binary: it runs a node, launches and
// drives a local mesh of node processes, benchmarks it and simulates large
// networks. Each subcommand lives in its own file; this one only dispatches.
// Subcommands turn flags into config and call into the packages: no
// protocol logic lives here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and returns an error to print; errUsage-wrapped errors exit 2.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		// Keep this list in the order of the README.
		demoCommand(),
		{name: "node", summary: "run one peer", run: runNode},
		upCommand(),
		downCommand(),
		publishCommand(),
		statusCommand(),
		chaosCommand(),
		benchCommand(),
		soakCommand(),
		{name: "sim", summary: "simulate up to a million nodes in virtual time", run: runSim},
		replayCommand(),
		promConfigCommand(),
		maelstromCommand(), maelstromTestCommand(),
	}
}

// errUsage marks bad flags or arguments: the message was already printed.
var errUsage = errors.New("usage")

func main() {
	os.Exit(runWithStdin(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: the tests call it with buffers. Its
// stdin is the process's.
func run(args []string, stdout, stderr io.Writer) int {
	return runWithStdin(args, os.Stdin, stdout, stderr)
}

// runWithStdin dispatches to a subcommand. Help that was asked for (-h,
// --help, `mesh help CMD`) goes to stdout and exits 0; usage errors go to
// stderr and exit 2.
func runWithStdin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		if len(args) > 2 {
			fmt.Fprintf(stderr, "mesh help: want one command, got %q\nRun 'mesh help' for the commands.\n", args[1:])
			return 2
		}
		// `mesh help demo` is `mesh demo -h`.
		args = []string{args[1], "-h"}
	case "version", "-version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "mesh version: takes no arguments, got %q\n", args[1:])
			return 2
		}
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ctx = withStdin(ctx, stdin)
		errOut := stderr
		if wantsHelp(args[1:]) {
			// The command's FlagSet prints its help to what it takes as
			// stderr: asked-for help belongs on stdout.
			errOut = stdout
		}
		err := c.run(ctx, args[1:], stdout, errOut)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "mesh %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "mesh: unknown command %q\nRun 'mesh help' for the commands.\n", args[0])
	return 2
}

// wantsHelp reports whether args ask for help: -h, -help or --help before
// any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mesh <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	width := len("version")
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-*s  %s\n", width, "help", "show a command's flags: mesh help <command>")
	fmt.Fprintf(w, "  %-*s  %s\n", width, "version", "print the module version, VCS revision and Go version (also --version)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'mesh <command> -h' for a command's flags.")
}

// versionLine is `mesh --version`: the module version, the VCS revision
// and time when the binary was built from a checkout (`go build` and `go
// run` record them), and the Go version, so that a bug report names the
// exact build.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "mesh (unknown version: no build info) " + runtime.Version()
	}
	s := "mesh " + bi.Main.Path + " " + bi.Main.Version
	var rev, at string
	modified := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			modified = kv.Value == "true"
		}
	}
	if rev != "" {
		s += ", revision " + rev
		if modified {
			s += " (modified)"
		}
		if at != "" {
			s += " of " + at
		}
	}
	return s + ", " + bi.GoVersion
}

// stdinKey is the context key under which a command finds its standard
// input (`mesh publish -` reads the body from it).
type stdinKey struct{}

func withStdin(ctx context.Context, r io.Reader) context.Context {
	return context.WithValue(ctx, stdinKey{}, r)
}

// stdinFrom returns the invocation's standard input: the process's unless
// the caller (a test) gave another.
func stdinFrom(ctx context.Context) io.Reader {
	if r, ok := ctx.Value(stdinKey{}).(io.Reader); ok && r != nil {
		return r
	}
	return os.Stdin
}

// fullHelp marks the output a FlagSet's Usage writes its full help to; on
// any other output Usage prints a one-line hint instead.
type fullHelp struct{ io.Writer }

// newFlagSet returns a FlagSet for a subcommand that reports errors instead
// of exiting. Its Usage prints a one-line hint ("Run 'mesh sim -h' for its
// flags."), so that a mistake is not buried under the whole flag list; the
// full list is printed only when asked for with -h.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mesh "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if h, ok := fs.Output().(fullHelp); ok {
			fmt.Fprintf(h, "usage: mesh %s\n\nflags:\n", synopsis)
			fs.PrintDefaults()
			return
		}
		fmt.Fprintf(fs.Output(), "Run 'mesh %s -h' for its flags.\n", name)
	}
	return fs
}

// parseFlags parses args into fs. Flags may come after arguments (`mesh
// publish hi --json`); "--" ends the flags, so that an argument may start
// with a dash. An optional-value flag (see optionalValue) takes the next
// argument as its value unless it starts with a dash. A bad flag is
// reported in one line and a hint and comes back wrapping errUsage; -h
// prints the full help and comes back as flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := parseInterspersed(fs, joinOptionalValues(fs, args))
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(fullHelp{out})
		fs.Usage()
		fs.SetOutput(out)
		return err
	}
	fmt.Fprintf(out, "%s: %v\n", fs.Name(), err)
	fs.Usage()
	return fmt.Errorf("%w: %w", errUsage, err)
}

// parseInterspersed parses flags wherever they are among args, leaving the
// arguments, in order, as fs.Args().
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var positional []string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, left...)
			break
		}
		positional = append(positional, left[0])
		rest = left[1:]
	}
	// A leading "--" makes Parse stop at once and keep the rest as is.
	return fs.Parse(append([]string{"--"}, positional...))
}

// optionalValue is a flag that may stand alone or take a value, in the
// form --flag=VALUE or --flag VALUE: --dashboard, where alone it means the
// default address. bareValue is what it means alone.
type optionalValue interface {
	flag.Value
	bareValue() string
}

// joinOptionalValues rewrites "--flag VALUE" as "--flag=VALUE" for the
// optional-value flags of fs, when VALUE does not start with a dash, and a
// bare "--flag" as "--flag=" its bareValue.
func joinOptionalValues(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		name, hasValue := flagName(a)
		if name == "" || hasValue {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		next := i+1 < len(args) && !strings.HasPrefix(args[i+1], "-")
		switch v := f.Value.(type) {
		case optionalValue:
			if next {
				out[len(out)-1] = a + "=" + args[i+1]
				i++
			} else {
				out[len(out)-1] = a + "=" + v.bareValue()
			}
		case interface{ IsBoolFlag() bool }:
			if !v.IsBoolFlag() && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		default:
			// A flag that takes a value: the next argument is it, even
			// when it looks like a flag.
			if i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
		}
	}
	return out
}

// flagName returns the name in "-name", "--name" or "--name=value", and
// whether a value is attached; "" for an argument that is not a flag.
func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", false
	}
	name = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if k := strings.IndexByte(name, '='); k >= 0 {
		return name[:k], true
	}
	return name, false
}
