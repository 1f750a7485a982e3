package gossip

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCoreIsPure keeps the protocol core a deterministic state machine, so
// that the runtime, the in-memory network and the simulator drive the same
// code: it fails if a non-test file of gossip/, wire/, membership/,
// fault/, score/ or adversary/ (the state machines every driver runs, and
// the guard and the liars that wrap them) imports what does I/O or
// concurrency, starts a goroutine, reads the wall clock, or draws from a
// global random source.
func TestCoreIsPure(t *testing.T) {
	forbiddenImports := map[string]bool{
		"net": true, "net/http": true, "os": true, "os/exec": true, "os/signal": true,
		"syscall": true, "sync": true, "sync/atomic": true, "math/rand": true,
		"crypto/rand": true, "io/ioutil": true, "log": true, "log/slog": true, "unsafe": true,
	}
	// Reading the clock or sleeping: time is an input to the core.
	forbiddenTime := map[string]bool{
		"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
	}
	// math/rand/v2 is allowed for its types and constructors only; its
	// package-level functions draw from the global source.
	allowedRand := map[string]bool{"Rand": true, "New": true, "NewPCG": true, "PCG": true, "Source": true}

	checked := map[string]bool{}
	for _, dir := range []string{".", "../wire", "../membership", "../fault", "../score", "../adversary"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			checked[filepath.ToSlash(path)] = true
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			names := map[string]string{} // local name → import path
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if forbiddenImports[p] {
					t.Errorf("%s imports %s", path, p)
				}
				local := p[strings.LastIndex(p, "/")+1:]
				if p == "math/rand/v2" {
					local = "rand"
				}
				if imp.Name != nil {
					local = imp.Name.Name
				}
				names[local] = p
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
				case *ast.SelectorExpr:
					x, ok := n.X.(*ast.Ident)
					if !ok {
						return true
					}
					switch names[x.Name] {
					case "time":
						if forbiddenTime[n.Sel.Name] {
							t.Errorf("%s: calls time.%s", fset.Position(n.Pos()), n.Sel.Name)
						}
					case "math/rand/v2":
						if !allowedRand[n.Sel.Name] {
							t.Errorf("%s: uses the global random source (rand.%s)", fset.Position(n.Pos()), n.Sel.Name)
						}
					}
				}
				return true
			})
		}
	}
	// The seam and the routers live here, so the rules bind every router:
	// a router is a file of this package plus a line in its registry.
	for _, f := range []string{"protocol.go", "router.go", "core.go", "plumtree.go", "store.go", "lazy.go", "antientropy.go",
		"../score/guard.go", "../score/book.go", "../adversary/node.go", "../adversary/mode.go", "../fault/fault.go", "../membership/membership.go"} {
		if !checked[f] {
			t.Errorf("%s was not checked", f)
		}
	}
}
