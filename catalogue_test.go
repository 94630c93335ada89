package mcptap_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
)

// findingsIDs reads the rule IDs of the catalogue's tables, in order.
func findingsIDs(t *testing.T, path string) []mcptap.RuleID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []mcptap.RuleID
	row := regexp.MustCompile("^\\| `([a-z0-9.-]+)` \\|")
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			ids = append(ids, mcptap.RuleID(m[1]))
		}
	}
	if len(ids) == 0 {
		t.Fatalf("%s: no rule rows", path)
	}
	return ids
}

// docs/FINDINGS.md is the catalogue shipped with the code; mcptap.Catalogue
// lists the same IDs in the same order (a rule ID is a public interface).
func TestCatalogueMatchesFindings(t *testing.T) {
	ids := findingsIDs(t, "docs/FINDINGS.md")
	if len(ids) != len(mcptap.Catalogue) {
		t.Errorf("docs/FINDINGS.md has %d rules, mcptap.Catalogue %d", len(ids), len(mcptap.Catalogue))
	}
	for i := range min(len(ids), len(mcptap.Catalogue)) {
		if ids[i] != mcptap.Catalogue[i] {
			t.Errorf("rule %d: docs/FINDINGS.md %s, mcptap.Catalogue %s", i, ids[i], mcptap.Catalogue[i])
		}
	}
	// The team's copy of the spec, when this checkout sits next to it.
	if b, err := os.ReadFile("../shared/spec/FINDINGS.md"); err == nil {
		own, _ := os.ReadFile("docs/FINDINGS.md")
		if string(b) != string(own) {
			t.Error("docs/FINDINGS.md differs from ../shared/spec/FINDINGS.md: copy the spec in")
		}
	}
}

// Outside rule.go, code names rules by their constants: a string literal
// that spells a catalogue ID is a typo waiting to happen (tests may spell
// them: they check the public interface).
func TestNoRuleIDLiterals(t *testing.T) {
	known := map[string]bool{}
	for _, id := range mcptap.Catalogue {
		known[string(id)] = true
	}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "tools" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == "rule.go" {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && known[s] {
					t.Errorf("%s: rule ID %q spelled as a literal; use its mcptap.Rule… constant", fset.Position(lit.Pos()), s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
