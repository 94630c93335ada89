package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
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
	switch {
	case m.help:
		bl = m.helpLines()
	case m.view == viewFlows:
		bl = m.flowsLines(w, body)
	case m.view == viewTraffic:
		bl = m.trafficLines(w, body)
	case m.view == viewFlow:
		bl = m.docLines(&m.flowDoc, w, body)
	case m.view == viewExchange:
		bl = m.docLines(&m.exDoc, w, body)
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
	top := m.view
	if len(m.back) > 0 {
		top = m.back[0]
	}
	s := m.st.bold.Render("mcptap") + " " + tab("1", fmt.Sprintf("Flows (%d)", len(m.flows)), top == viewFlows) +
		" " + tab("2", fmt.Sprintf("Traffic (%d)", len(m.exs)), top == viewTraffic)
	if m.selFlow != "" && (m.view == viewFlow || m.view == viewExchange) {
		if i, ok := m.flowIdx[m.selFlow]; ok {
			s += "  › flow " + short(m.flows[i].ID, 12)
		}
	}
	if m.view == viewExchange {
		if ex, ok := m.exchange(m.selEx); ok {
			s += "  › " + ex.Method + " " + short(sanitize(pathOnly(ex.Target)), 40)
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

func (m *Model) statusLine() string {
	var parts []string
	switch {
	case m.live && !m.closed && m.follow:
		parts = append(parts, "live · follow")
	case m.live && !m.closed:
		parts = append(parts, "live")
	case m.live:
		parts = append(parts, "stopped")
	default:
		parts = append(parts, "replay")
	}
	// counts first: on a narrow terminal the addresses are cut, not these
	parts = append(parts,
		plural(len(m.exs), "exchange"),
		plural(len(m.flows), "flow"),
		plural(m.errors, "error"),
		fmt.Sprintf("%d dropped", m.dropped+m.opts.Session.Dropped))
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

// window returns the [from, to) display positions to show for a list with
// cursor c, keeping the cursor on screen.
func window(l *list, n, h int) (int, int) {
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+h {
		l.offset = l.cursor - h + 1
	}
	if l.offset > n-h {
		l.offset = n - h
	}
	if l.offset < 0 {
		l.offset = 0
	}
	to := l.offset + h
	if to > n {
		to = n
	}
	return l.offset, to
}

func clientName(c string) string {
	switch c {
	case "chatgpt":
		return "ChatGPT"
	case "claude":
		return "Claude"
	case "vscode":
		return "VS Code"
	case "cursor":
		return "Cursor"
	case "inspector":
		return "Inspector"
	case "claude-code":
		return "Claude Code"
	case "codex":
		return "Codex"
	case "copilot-studio":
		return "Copilot St."
	case "m365-copilot":
		return "M365 Copilot"
	case "copilot-cli":
		return "Copilot CLI"
	case "perplexity":
		return "Perplexity"
	case "open-webui":
		return "Open WebUI"
	case "go-sdk":
		return "Go SDK"
	case "":
		return "unknown"
	}
	return c
}

func faultWords(f mcptap.Fault) string {
	switch f {
	case mcptap.FaultServer:
		return "MCP server"
	case mcptap.FaultAuthServer:
		return "authorization server"
	case mcptap.FaultClient:
		return "client platform"
	case mcptap.FaultUser:
		return "user / browser / tunnel"
	case mcptap.FaultNone:
		return "nobody"
	}
	return "undecided"
}

func (m *Model) glyph(f mcptap.Flow) string {
	switch f.Status {
	case mcptap.FlowComplete:
		return m.st.ok.Render("✓")
	case mcptap.FlowFailed:
		return m.st.bad.Render("✗")
	}
	return m.st.wait.Render("…")
}

// flowEnd is when a flow last moved, or now while it is still in progress.
func (m *Model) flowDuration(f mcptap.Flow) time.Duration {
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
func (m *Model) verdictWords(f mcptap.Flow) string {
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
			return m.st.ok.Render("ok: authorized, token issued")
		}
	}
	s := string(f.Verdict.Rule) + " · " + string(f.Verdict.Fault)
	if fd, ok := m.verdictFinding(f); ok && fd.Title != "" {
		s += " · " + fd.Title
	}
	if f.Verdict.Severity == mcptap.SevError {
		return m.st.bad.Render(s)
	}
	return m.st.warn.Render(s)
}

func (m *Model) flowsLines(w, h int) []string {
	head := m.st.head.Render(fmt.Sprintf("   %-10s %-14s %-9s %-9s %s", "CLIENT", "STATE", "STARTED", "DURATION", "VERDICT"))
	if len(m.flowRows) == 0 {
		msg := "No OAuth flows yet: waiting for an authorization attempt."
		if m.filter != "" {
			msg = "No flow matches the filter " + m.filter + " (esc clears it)."
		}
		return []string{head, "", "   " + msg, "   " + m.st.dim.Render(fmt.Sprintf("%s seen so far; press 2 for all traffic.", plural(len(m.exs), "exchange")))}
	}
	out := []string{head}
	from, to := window(&m.fl, len(m.flowRows), h-1)
	for pos := from; pos < to; pos++ {
		f := m.flows[m.rowAt(m.flowRows, pos)]
		state := shortState(f)
		row := fmt.Sprintf(" %s %-10s %-14s %-9s %-9s ", m.glyph(f), short(clientName(f.Client), 10),
			short(sanitize(state), 14), f.Started.Local().Format("15:04:05"), dur(m.flowDuration(f)))
		row += m.verdictWords(f)
		out = append(out, m.selectRow(row, w, pos == m.fl.cursor))
	}
	return out
}

func (m *Model) selectRow(row string, w int, sel bool) string {
	if !sel {
		return row
	}
	plain := stripStyles(row)
	return m.st.sel.Render(fit("▸"+strings.TrimPrefix(plain, " "), w))
}

func (m *Model) trafficLines(w, h int) []string {
	head := m.st.head.Render(fmt.Sprintf("   %-12s %-7s %-6s %-8s %-9s %-26s %s", "TIME", "METHOD", "STATUS", "DURATION", "SIZE", "HOP", "URL"))
	if len(m.trafRows) == 0 {
		msg := "No traffic yet."
		if m.filter != "" {
			msg = "No exchange matches the filter " + m.filter + " (esc clears it)."
		}
		return []string{head, "", "   " + msg}
	}
	out := []string{head}
	from, to := window(&m.tl, len(m.trafRows), h-1)
	for pos := from; pos < to; pos++ {
		ex := &m.exs[m.rowAt(m.trafRows, pos)]
		out = append(out, m.selectRow(m.trafficRow(ex), w, pos == m.tl.cursor))
	}
	return out
}

func (m *Model) trafficRow(ex *mcptap.Exchange) string {
	status := strconv.Itoa(ex.Status)
	var st string
	switch {
	case ex.Err != "":
		st = m.st.bad.Render(fmt.Sprintf("%-6s", "ERR"))
	case ex.Status == 0:
		st = m.st.wait.Render(fmt.Sprintf("%-6s", "…"))
	case ex.Status >= 400:
		st = m.st.bad.Render(fmt.Sprintf("%-6s", status))
	case ex.Status >= 300:
		st = m.st.warn.Render(fmt.Sprintf("%-6s", status))
	default:
		st = m.st.ok.Render(fmt.Sprintf("%-6s", status))
	}
	d := ex.Duration()
	size := humanBytes(ex.RespSize)
	if !ex.Complete && ex.Err == "" {
		if ex.Status != 0 {
			size = m.st.wait.Render(fmt.Sprintf("%-9s", "open "+humanBytes(ex.RespSize)))
		}
		if m.live && !m.closed {
			d = m.now.Sub(ex.Start)
		}
	}
	kind := ""
	if k, ok := m.hop(ex.ID); ok {
		kind = string(k)
	}
	url := sanitize(ex.Host + ex.Target)
	if ex.Err != "" {
		url += "  " + m.st.bad.Render(sanitize(ex.Err))
	}
	return fmt.Sprintf("   %-12s %-7s %s %-8s %s %-26s %s", ex.Start.Local().Format("15:04:05.000"), short(ex.Method, 7), st,
		dur(d), fit(size, 9), short(kind, 26), url)
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

func (m *Model) docLines(d *doc, w, h int) []string {
	d.clamp(h)
	out := make([]string, 0, h)
	for i := d.offset; i < len(d.lines) && i < d.offset+h; i++ {
		out = append(out, m.selectRow(d.lines[i].text, w, i == d.cursor && d.lines[i].sel))
	}
	return out
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
