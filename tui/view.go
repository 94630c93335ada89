package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/pace"
)

// View renders the whole screen; only rows that fit are rendered.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "mcptap"
	return v
}

// Render is the screen as text (with styles), exactly height lines.
func (m *Model) Render() string {
	w, h := m.width, m.height
	if w < 20 {
		w = 20
	}
	if h < 4 {
		h = 4
	}
	lines := make([]string, 0, h)
	lines = append(lines, fit(m.titleLine(), w))
	body := m.bodyHeight()
	var bl []string
	if m.help {
		bl = m.helpLines()
	} else {
		bl = strings.Split(m.top().View(), "\n")
	}
	for i := 0; i < body; i++ {
		s := ""
		if i < len(bl) {
			s = bl[i]
		}
		lines = append(lines, fit(s, w))
	}
	lines = append(lines, m.st.status.Render(fit(m.statusLine(), w)))
	lines = append(lines, fit(m.keyLine(), w))
	return strings.Join(lines, "\n")
}

func (m *Model) titleLine() string {
	tab := func(n, name string, on bool) string {
		if on {
			return m.st.tabOn.Render(" " + n + " " + name + " ")
		}
		return m.st.tab.Render(" " + n + " " + name + " ")
	}
	base := m.stack[0].kind()
	s := m.st.bold.Render("mcptap") + " " + tab("1", fmt.Sprintf("Flows (%d)", len(m.flows)), base == viewFlows) +
		" " + tab("2", fmt.Sprintf("Traffic (%d)", len(m.exs)), base == viewTraffic)
	for _, sc := range m.stack[1:] {
		switch sc := sc.(type) {
		case *flowScreen:
			if i, ok := m.flowIdx[sc.id]; ok {
				s += "  › flow " + short(m.flows[i].ID, 12)
			}
		case *exchangeScreen:
			if ex, ok := m.exchange(sc.id); ok {
				s += "  › " + ex.Method + " " + short(sanitize(pathOnly(ex.Target)), 40)
			}
		}
	}
	if m.filter != "" {
		s += "  " + m.st.warn.Render("[filter: "+m.filter+"]")
	}
	return s
}

func pathOnly(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// loadLine is a replay's progress while it analyses: exchanges read, and
// the time left at the pace so far.
func (m *Model) loadLine() string {
	l := m.load
	s := fmt.Sprintf("analysing %d of %d exchanges", l.done, l.total)
	if left, ok := pace.Left(int64(l.done), int64(l.total), time.Since(l.began)); ok {
		s += fmt.Sprintf(", ~%s left", left)
	}
	return s
}

func (m *Model) statusLine() string {
	var parts []string
	switch {
	case m.live && !m.closed && m.follow:
		parts = append(parts, "live · follow")
	case m.live && !m.closed:
		parts = append(parts, "live")
	case m.live:
		parts = append(parts, "stopped")
	case m.load != nil:
		parts = append(parts, m.loadLine())
	default:
		parts = append(parts, "replay")
	}
	// counts first: on a narrow terminal the addresses are cut, not these
	parts = append(parts, plural(len(m.exs), "exchange"), plural(len(m.flows), "flow"), plural(m.errors, "error"))
	if m.warnings > 0 { // a connection that works can still carry them
		parts = append(parts, plural(m.warnings, "warning"))
	}
	parts = append(parts, fmt.Sprintf("%d dropped", m.dropped+m.opts.Session.Dropped))
	if m.secrets.reveal {
		parts = append(parts, "SECRETS SHOWN")
	}
	if len(m.opts.Listen) > 0 {
		s := "listen " + firstAndMore(m.opts.Listen)
		if len(m.opts.Upstream) > 0 {
			s += " → " + firstAndMore(m.opts.Upstream)
		}
		parts = append(parts, s)
	} else if len(m.opts.Upstream) > 0 {
		parts = append(parts, "upstream "+firstAndMore(m.opts.Upstream))
	}
	if m.opts.Session.ID != "" {
		parts = append(parts, "session "+short(m.opts.Session.ID, 14))
	}
	return " " + strings.Join(parts, " · ")
}

func (m *shared) glyph(f mcptap.Flow) string {
	switch f.Status {
	case mcptap.FlowComplete:
		if m.flowWarnings(f) > 0 {
			return m.st.warn.Render("!") // connected, but not clean
		}
		return m.st.ok.Render("✓")
	case mcptap.FlowFailed:
		return m.st.bad.Render("✗")
	}
	return m.st.wait.Render("…")
}

// flowWarnings counts the warnings among a flow's findings.
func (m *shared) flowWarnings(f mcptap.Flow) int {
	n := 0
	for _, id := range f.Findings {
		if fd, ok := m.finding(id); ok && fd.Severity == mcptap.SevWarning {
			n++
		}
	}
	return n
}

// warningRules names a flow's warnings' rules.
func (m *shared) warningRules(f mcptap.Flow) string {
	var rules []string
	for _, id := range f.Findings {
		if fd, ok := m.finding(id); ok && fd.Severity == mcptap.SevWarning {
			rules = append(rules, string(fd.Rule))
		}
	}
	return strings.Join(rules, ", ")
}

// flowEnd is when a flow last moved, or now while it is still in progress.
func (m *shared) flowDuration(f mcptap.Flow) time.Duration {
	if f.Status == mcptap.FlowInProgress && m.live && !m.closed {
		return m.now.Sub(f.Started)
	}
	end := f.Updated
	if fd, ok := m.verdictFinding(f); ok && fd.At.After(end) {
		end = fd.At // a timeout rule fired after the last hop
	}
	return end.Sub(f.Started)
}

// verdictWords says in words where a flow stands.
func (m *shared) verdictWords(f mcptap.Flow) string {
	switch {
	case f.Status == mcptap.FlowInProgress && !f.WaitingSince.IsZero():
		waited := m.now.Sub(f.WaitingSince)
		return m.st.wait.Render(fmt.Sprintf("code issued, waiting for the token call %s / %s", clock(waited), clock(m.opts.TokenTimeout)))
	case f.Status == mcptap.FlowInProgress:
		last := "started"
		if len(f.Hops) > 0 {
			last = string(f.Hops[len(f.Hops)-1].Kind)
		}
		return m.st.wait.Render("in progress, last hop: " + last)
	case f.Verdict.Rule == "ok" || f.Verdict.Rule == "":
		if f.Status == mcptap.FlowComplete {
			if n := m.flowWarnings(f); n > 0 {
				return m.st.warn.Render("ok with " + plural(n, "warning") + ": " + m.warningRules(f))
			}
			return m.st.ok.Render("ok: authorized, token issued")
		}
	}
	s := string(f.Verdict.Rule) + " · " + string(f.Verdict.Fault)
	if fd, ok := m.verdictFinding(f); ok && fd.Title != "" {
		s += " · " + sanitize(m.hideText(fd.Title))
	}
	if f.Verdict.Severity == mcptap.SevError {
		return m.st.bad.Render(s)
	}
	return m.st.warn.Render(s)
}

func (m *shared) selectRow(row string, w int, sel bool) string {
	if !sel {
		return row
	}
	plain := stripStyles(row)
	return m.st.sel.Render(fit("▸"+strings.TrimPrefix(plain, " "), w))
}

func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "?"
	case n < 1024:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fK", float64(n)/1024)
	}
	return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
}

// firstAndMore keeps the status line short when a session has many routes.
func firstAndMore(xs []string) string {
	if len(xs) <= 1 {
		return strings.Join(xs, "")
	}
	return fmt.Sprintf("%s (+%d more)", xs[0], len(xs)-1)
}

// shortState is a state short enough for a column and still telling flows
// apart: ChatGPT's states are base64 JSON that all begin alike, so their
// random "s" member is shown instead.
func shortState(f mcptap.Flow) string {
	if sv, ok := f.StateDecoded["s"].(string); ok && len(sv) > 4 {
		if len(sv) > 13 {
			sv = "…" + sv[len(sv)-12:]
		}
		return sv
	}
	if f.State == "" {
		return "(no state)"
	}
	return f.State
}
