package sandbox

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoAdapters enforces DESIGN.md: sandbox imports none of the
// adapters (a simulator built from the adapter's own types would only agree
// with itself). It goes further: no package of this module at all, in code
// or tests, so nothing of ours can reach the adapters transitively; the code
// itself uses the standard library only.
func TestImportsNoAdapters(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/refundgate/refundgate") {
				t.Errorf("%s imports %s", name, path)
			}
			first, _, _ := strings.Cut(path, "/")
			if !strings.HasSuffix(name, "_test.go") && strings.Contains(first, ".") {
				t.Errorf("%s imports %s, outside the standard library", name, path)
			}
		}
	}
}
