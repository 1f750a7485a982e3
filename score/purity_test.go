package score

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestScoreIsPure keeps the scoring as deterministic as the protocol it
// guards, so that every driver computes the same scores from the same
// inputs: it fails if a non-test file here imports what does I/O or
// concurrency, starts a goroutine, reads the wall clock or draws random
// numbers (the same rules as gossip/purity_test.go).
func TestScoreIsPure(t *testing.T) {
	forbidden := map[string]bool{
		"net": true, "net/http": true, "os": true, "os/exec": true, "syscall": true,
		"sync": true, "sync/atomic": true, "math/rand": true, "math/rand/v2": true,
		"crypto/rand": true, "log": true, "log/slog": true, "unsafe": true,
	}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
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
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); forbidden[p] {
				t.Errorf("%s imports %s", path, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && clock[n.Sel.Name] {
					t.Errorf("%s: calls time.%s", fset.Position(n.Pos()), n.Sel.Name)
				}
			}
			return true
		})
	}
	if checked < 3 {
		t.Errorf("checked %d files, want params.go, book.go and guard.go at least", checked)
	}
}
