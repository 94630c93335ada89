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
	var ids []mcptap.RuleID
	for _, r := range ruleRows(t, path) {
		ids = append(ids, mcptap.RuleID(r.id))
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
	// The team's copy of the spec, when this checkout sits next to it: every
	// rule row there is in docs/FINDINGS.md, word for word and in the same
	// order. docs/FINDINGS.md may carry rows the team's copy does not have
	// yet (the check family came with `mcptap check`); it never drops or
	// rewrites one.
	const spec = "../shared/spec/FINDINGS.md"
	if _, err := os.Stat(spec); err != nil {
		return
	}
	ownRows := ruleRows(t, "docs/FINDINGS.md")
	at := map[string]int{}
	for i, r := range ownRows {
		at[r.id] = i
	}
	last := -1
	for _, r := range ruleRows(t, spec) {
		i, ok := at[r.id]
		switch {
		case !ok:
			t.Errorf("%s: %s is not in docs/FINDINGS.md: copy its row in", spec, r.id)
		case ownRows[i].line != r.line:
			t.Errorf("%s: %s differs:\n spec: %s\n docs: %s", spec, r.id, r.line, ownRows[i].line)
		case i < last:
			t.Errorf("%s: %s is out of order in docs/FINDINGS.md", spec, r.id)
		}
		last = max(last, i)
	}
}

type ruleRow struct{ id, line string }

// ruleRows reads the rule rows of a catalogue file, in order.
func ruleRows(t *testing.T, path string) []ruleRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []ruleRow
	row := regexp.MustCompile("^\\| `([a-z0-9.-]+)` \\|")
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			rows = append(rows, ruleRow{m[1], line})
		}
	}
	return rows
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
