package tui

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// The bytes that differ between the sent and the echoed state are the ones
// highlighted, one row per transformation state.altered names.
func TestDiffSpan(t *testing.T) {
	cases := []struct {
		name, a, b string
		da, db     string // differing parts
	}{
		{"identical", "abc", "abc", "", ""},
		{"plus-to-space", "a+b/c==", "a b/c==", "+", " "},
		{"double-encoded", "a%3Db", "a%253Db", "", "25"},
		{"padding-stripped", "eyJhIjoxfQ==", "eyJhIjoxfQ", "==", ""},
		{"truncated", "abcdef", "abc", "def", ""},
		{"absent", "abc", "", "abc", ""},
		{"multibyte", "aé", "aè", "é", "è"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i, j, k := diffSpan(c.a, c.b)
			if c.a[i:j] != c.da || c.b[i:k] != c.db {
				t.Errorf("diff %q/%q, want %q/%q", c.a[i:j], c.b[i:k], c.da, c.db)
			}
		})
	}
}

func TestHighlightMarksOnlyTheDifference(t *testing.T) {
	m := New(Options{Analysis: newFixedAnalysis(nil)}, false)
	i, j, _ := diffSpan("a+b", "a b")
	got := m.highlight("a+b", i, j, "(absent)")
	if ansi.Strip(got) != "a+b" || !strings.Contains(got, m.st.hl.Render("+")) || strings.Contains(got, m.st.hl.Render("a")) {
		t.Errorf("highlight %q", got)
	}
	if ansi.Strip(m.highlight("", 0, 0, "(absent)")) != "(absent)" {
		t.Error("an empty value shows (absent)")
	}
}

func FuzzDiffSpan(f *testing.F) {
	f.Add("a+b", "a b")
	f.Add("é", "e\u0301")
	f.Fuzz(func(t *testing.T, a, b string) {
		i, j, k := diffSpan(a, b)
		if i > j || i > k || j > len(a) || k > len(b) || a[:i] != b[:i] || a[j:] != b[k:] {
			t.Fatalf("diffSpan(%q, %q) = %d %d %d", a, b, i, j, k)
		}
		if utf8.ValidString(a) && utf8.ValidString(b) && (!utf8.ValidString(a[i:j]) || !utf8.ValidString(b[i:k])) {
			t.Fatalf("diffSpan(%q, %q) splits a rune", a, b)
		}
	})
}

// Query strings and form bodies come from the traffic: parsing never panics
// and keeps every parameter in order.
func FuzzParseParams(f *testing.F) {
	f.Add("a=1&b=%zz&&c")
	f.Add("state=eyJ%3D%3D&state=2")
	f.Fuzz(func(t *testing.T, s string) {
		ps := parseParams(s)
		n := 0
		for _, kv := range strings.Split(s, "&") {
			if kv != "" {
				n++
			}
		}
		if len(ps) != n {
			t.Fatalf("parseParams(%q): %d params, want %d", s, len(ps), n)
		}
	})
}

func FuzzFilter(f *testing.F) {
	f.Add("rule:state status:4xx client:chat path:/oauth text:x")
	f.Fuzz(func(t *testing.T, s string) {
		m := fixtureReplay()
		m.filter = s
		m.applyFilter()
		_ = m.Render()
	})
}

func TestTinyTerminal(t *testing.T) {
	m := sized(fixtureReplay(), 10, 2)
	for _, k := range []string{"enter", "down", "enter", "2", "enter", "d", "?", "x"} {
		m.Update(press(k))
		_ = m.Render()
	}
}
