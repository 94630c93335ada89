package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcptap/mcptap"
)

func (r Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func mark(sev mcptap.Severity, rule string) string {
	switch {
	case rule == "ok":
		return "✓"
	case sev == mcptap.SevError:
		return "✗"
	case sev == mcptap.SevWarning:
		return "!"
	}
	return "i"
}

// flowMark is a flow's glyph: its verdict's, except that a flow that
// connected with warnings is "!", not "✓".
func flowMark(f Flow, fs []Finding) string {
	if f.Verdict.Rule == "ok" && warnings(fs) > 0 {
		return "!"
	}
	return mark(f.Verdict.Severity, string(f.Verdict.Rule))
}

func warnings(fs []Finding) int {
	n := 0
	for _, fd := range fs {
		if fd.Severity == mcptap.SevWarning {
			n++
		}
	}
	return n
}

// byFlow groups the findings by flow ID ("" for those outside any flow).
func (r Report) byFlow() map[string][]Finding {
	m := make(map[string][]Finding)
	for _, f := range r.Findings {
		m[f.Flow] = append(m[f.Flow], f)
	}
	return m
}

// ordered returns a flow's findings in the flow's order (verdict first).
func ordered(f Flow, all map[string][]Finding) []Finding {
	idx := make(map[string]int, len(f.Findings))
	for i, id := range f.Findings {
		idx[id] = i
	}
	fs := append([]Finding(nil), all[f.ID]...)
	sort.SliceStable(fs, func(i, j int) bool { return idx[fs[i].ID] < idx[fs[j].ID] })
	return fs
}

// hopRun is a hop, or a run of identical authenticated MCP calls shown as one
// line ("mcp ×120") so a long session's chain stays readable.
type hopRun struct {
	Hop
	n    int
	last time.Time
}

func collapse(hops []Hop) []hopRun {
	var out []hopRun
	for _, h := range hops {
		if n := len(out); n > 0 && h.Kind == mcptap.HopMCP && out[n-1].Kind == mcptap.HopMCP &&
			out[n-1].Status == h.Status && out[n-1].StatusUnrecorded == h.StatusUnrecorded && out[n-1].Method == h.Method && out[n-1].URL == h.URL && out[n-1].Inner == h.Inner {
			out[n-1].n++
			out[n-1].last = h.At
			continue
		}
		out = append(out, hopRun{Hop: h, n: 1, last: h.At})
	}
	return out
}

// cells is the hop's kind column (marked inner, with the run's length) and
// its status column (empty for a redirect, which is part of the authorize's
// response rather than an exchange of its own).
func (g hopRun) cells() (kind, status string) {
	kind = string(g.Kind)
	if g.Inner {
		kind += " (inner)"
	}
	if g.n > 1 {
		kind += fmt.Sprintf(" ×%d", g.n)
	}
	switch {
	case g.Kind == mcptap.HopRedirect:
	case g.StatusUnrecorded:
		status = "?" // answered; the status was not recorded
	default:
		status = fmt.Sprint(g.Status)
	}
	return kind, status
}

func gap(prev, at time.Time) string {
	if prev.IsZero() {
		return ""
	}
	d := at.Sub(prev)
	switch {
	case d < time.Second:
		return fmt.Sprintf("+%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("+%.1fs", d.Seconds())
	}
	return "+" + d.Round(time.Second).String()
}

func shortURL(u string, n int) string {
	if len(u) <= n {
		return u
	}
	for n > 0 && !utf8.RuneStart(u[n]) {
		n--
	}
	return u[:n] + "…"
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// verdictLine is a flow's verdict in one line. A flow that connected with
// warnings is marked "!", not "✓", and says how many (as the live view does).
func verdictLine(f Flow, fs []Finding) string {
	if f.Verdict.Rule == "ok" {
		if n := warnings(fs); n > 0 {
			return fmt.Sprintf("%s ok (%s) with %s", flowMark(f, fs), f.Status, plural(n, "warning"))
		}
		return fmt.Sprintf("%s ok (%s)", flowMark(f, fs), f.Status)
	}
	s := fmt.Sprintf("%s %s — fault: %s", flowMark(f, fs), f.Verdict.Rule, f.Verdict.Fault)
	if f.Title != "" {
		s += " — " + f.Title
	}
	return s
}

func decodedJSON(m map[string]any) string {
	if m == nil {
		return ""
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (r Report) header() string {
	src := r.Session.Source
	if r.Session.Name != "" {
		src += " " + r.Session.Name
	}
	red := "redacted"
	if !r.Redacted {
		red = "NOT redacted"
	}
	return fmt.Sprintf("session %s (%s): %s, %s, %s; secrets %s", r.Session.ID, src,
		plural(r.Session.Exchanges, "exchange"), plural(len(r.Flows), "flow"), plural(len(r.Findings), "finding"), red)
}

func (r Report) writeText(w io.Writer) error {
	var b strings.Builder
	groups := r.byFlow()
	fmt.Fprintf(&b, "mcptap report — %s\n\n", r.header())
	if len(r.Flows) == 0 {
		b.WriteString("No OAuth flow found in this session.\n")
	} else {
		b.WriteString("VERDICTS\n")
		for i, f := range r.Flows {
			fmt.Fprintf(&b, "  %d. %-10s %s  %s\n", i+1, f.Client, f.ID, verdictLine(f, groups[f.ID]))
		}
	}
	for i, f := range r.Flows {
		fmt.Fprintf(&b, "\nFLOW %d  %s  client %s  started %s\n", i+1, f.ID, f.Client, f.Started.UTC().Format("2006-01-02 15:04:05Z"))
		fmt.Fprintf(&b, "  verdict  %s\n", verdictLine(f, groups[f.ID]))
		if f.State.Raw != "" {
			fmt.Fprintf(&b, "  state    %s\n", shortURL(f.State.Raw, 120))
			if d := decodedJSON(f.State.Decoded); d != "" {
				fmt.Fprintf(&b, "           decoded %s\n", shortURL(d, 160))
			}
		}
		b.WriteString("  hops\n")
		var prev time.Time
		for _, g := range collapse(f.Hops) {
			h := g.Hop
			kind, status := g.cells()
			fmt.Fprintf(&b, "    %-12s %-9s %-26s %3s %s %s\n", h.At.UTC().Format("15:04:05.000"), gap(prev, h.At), kind, status, h.Method, shortURL(h.URL, 150))
			prev = g.last
		}
		if len(f.NotChecked) > 0 {
			b.WriteString("  not checked (not recorded)\n")
			for _, n := range f.NotChecked {
				fmt.Fprintf(&b, "    - %s\n", n)
			}
		}
		fs := ordered(f, groups)
		if len(fs) > 0 {
			b.WriteString("  findings\n")
		}
		for _, fd := range fs {
			writeFindingText(&b, fd)
		}
	}
	if loose := groups[""]; len(loose) > 0 {
		b.WriteString("\nFINDINGS OUTSIDE ANY FLOW\n")
		for _, fd := range loose {
			writeFindingText(&b, fd)
		}
	}
	if r.Unclassified > 0 {
		fmt.Fprintf(&b, "\n%s not part of any OAuth or MCP step (not shown).\n", plural(r.Unclassified, "exchange"))
	}
	_, err := io.WriteString(w, Printable(b.String()))
	return err
}

func writeFindingText(b *strings.Builder, fd Finding) {
	fmt.Fprintf(b, "    %s %s %s  fault: %s  [%s]\n", mark(fd.Severity, fd.Rule), fd.Severity, fd.Rule, fd.Fault, fd.ID)
	fmt.Fprintf(b, "      %s\n", fd.Title)
	fmt.Fprintf(b, "      %s\n", fd.Detail)
	for _, e := range fd.Evidence {
		fmt.Fprintf(b, "      evidence %s", e.Field)
		if e.Exchange != "" {
			fmt.Fprintf(b, " (exchange %s)", e.Exchange)
		}
		b.WriteString("\n")
		if e.Want != "" {
			fmt.Fprintf(b, "        want: %s\n", e.Want)
		}
		if e.Got != "" {
			fmt.Fprintf(b, "        got:  %s\n", e.Got)
		}
		if e.Note != "" {
			fmt.Fprintf(b, "        note: %s\n", e.Note)
		}
	}
	fmt.Fprintf(b, "      fix: %s\n", fd.Fix)
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func (r Report) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	groups := r.byFlow()
	fmt.Fprintf(&b, "## mcptap report\n\n%s\n\n", r.header())
	if len(r.Flows) > 0 {
		b.WriteString("| # | client | flow | verdict | fault |\n|---|---|---|---|---|\n")
		for i, f := range r.Flows {
			v := "`" + string(f.Verdict.Rule) + "`"
			if f.Title != "" {
				v += " " + mdEscape(f.Title)
			}
			fmt.Fprintf(&b, "| %d | %s | `%s` | %s %s | %s |\n", i+1, f.Client, f.ID, flowMark(f, groups[f.ID]), v, f.Verdict.Fault)
		}
	} else {
		b.WriteString("No OAuth flow found in this session.\n")
	}
	for i, f := range r.Flows {
		fmt.Fprintf(&b, "\n### Flow %d: %s (`%s`)\n\n", i+1, f.Client, f.ID)
		fmt.Fprintf(&b, "**Verdict:** %s\n\n", mdEscape(verdictLine(f, groups[f.ID])))
		if f.State.Raw != "" {
			fmt.Fprintf(&b, "State: `%s`", f.State.Raw)
			if d := decodedJSON(f.State.Decoded); d != "" {
				fmt.Fprintf(&b, " → `%s`", d)
			}
			b.WriteString("\n\n")
		}
		b.WriteString("| time | gap | hop | status | request |\n|---|---|---|---|---|\n")
		var prev time.Time
		for _, g := range collapse(f.Hops) {
			h := g.Hop
			kind, status := g.cells()
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s `%s` |\n", h.At.UTC().Format("15:04:05.000"), gap(prev, h.At), kind, status, h.Method, mdEscape(shortURL(h.URL, 200)))
			prev = g.last
		}
		if len(f.NotChecked) > 0 {
			b.WriteString("\n**Not checked (not recorded):**\n\n")
			for _, n := range f.NotChecked {
				fmt.Fprintf(&b, "- %s\n", mdEscape(n))
			}
		}
		for _, fd := range ordered(f, groups) {
			writeFindingMarkdown(&b, fd)
		}
	}
	if loose := groups[""]; len(loose) > 0 {
		b.WriteString("\n### Findings outside any flow\n")
		for _, fd := range loose {
			writeFindingMarkdown(&b, fd)
		}
	}
	if cmds := r.Reproduce(); len(cmds) > 0 {
		b.WriteString("\n### Reproduce\n\n```sh\n" + strings.Join(cmds, "\n") + "\n```\n")
	}
	_, err := io.WriteString(w, Printable(b.String()))
	return err
}

func writeFindingMarkdown(b *strings.Builder, fd Finding) {
	fmt.Fprintf(b, "\n#### %s `%s` (%s, fault: %s)\n\n%s\n\n%s\n\n", mark(fd.Severity, fd.Rule), fd.Rule, fd.Severity, fd.Fault, fd.Title, fd.Detail)
	if len(fd.Evidence) > 0 {
		b.WriteString("| field | want | got | note |\n|---|---|---|---|\n")
		for _, e := range fd.Evidence {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", mdEscape(e.Field), code(e.Want), code(e.Got), mdEscape(e.Note))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "**Fix:** %s\n", fd.Fix)
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + mdEscape(s) + "`"
}
