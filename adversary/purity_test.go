package adversary

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

// TestPure keeps the package a deterministic state machine like the core
// it wraps, so that a liar behaves alike in every driver: it fails if a
// non-test file imports what does I/O or concurrency, starts a goroutine,
// reads the wall clock, or draws from a global random source.
func TestPure(t *testing.T) {
	forbiddenImports := map[string]bool{
		"net": true, "net/http": true, "os": true, "os/exec": true, "os/signal": true,
		"syscall": true, "sync": true, "sync/atomic": true, "math/rand": true,
		"crypto/rand": true, "io/ioutil": true, "log": true, "log/slog": true, "unsafe": true,
	}
	forbiddenTime := map[string]bool{
		"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
	}
	allowedRand := map[string]bool{"Rand": true, "New": true, "NewPCG": true, "PCG": true, "Source": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		checked++
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{}
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
	if checked < 2 {
		t.Errorf("checked %d files, want mode.go and node.go at least", checked)
	}
}
