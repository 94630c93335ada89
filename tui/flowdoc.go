package tui

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// gapWarn is the pause between two hops that the timeline calls out.
const gapWarn = 10 * time.Second

// flowScreen is one flow: its state, verdict, hop timeline and findings.
type flowScreen struct {
	*shared
	id      string
	d       doc
	hopLine []int // line of each hop in d
	w, h    int
}

func newFlowScreen(s *shared, id string, w, h int) *flowScreen {
	fs := &flowScreen{shared: s, id: id, w: w, h: h}
	fs.build()
	return fs
}

func (m *flowScreen) kind() view { return viewFlow }

func (m *flowScreen) SetSize(w, h int) {
	m.w, m.h = w, h
	m.build()
}

func (m *flowScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case moveMsg:
		m.d.move(int(msg), m.h)
	case refreshMsg:
		if msg.analysis {
			m.build()
		}
	case tickMsg:
		m.build() // the running timer
	}
	return nil
}

func (m *flowScreen) View() string { return strings.Join(m.d.render(m.shared, m.w, m.h), "\n") }

func (m *flowScreen) selection() selection {
	l := m.d.current()
	return selection{exchange: l.ex, copy: l.copy}
}

func (m *flowScreen) build() {
	d := &m.d
	keepCursor, keepOffset := d.cursor, d.offset
	first := d.lines == nil
	d.lines = d.lines[:0]
	i, ok := m.flowIdx[m.id]
	if !ok {
		d.lines = append(d.lines, docLine{text: " This flow is not in the analysis any more."})
		d.cursor = -1
		return
	}
	f := m.flows[i]
	m.learnFlow(f)
	w := m.w
	add := func(l docLine) { d.lines = append(d.lines, l) }
	text := func(s string) { add(docLine{text: s}) }

	who := oauth.ClientName(f.Client)
	if l := m.labels[f.ID]; l != "" {
		who += " · scenario " + sanitize(l)
	}
	text(fmt.Sprintf(" %s %s · %s · %s · started %s · lasted %s", m.glyph(f), m.st.bold.Render("Flow "+f.ID),
		who, f.Status, f.Started.Local().Format("15:04:05"), dur(m.flowDuration(f))))
	if f.State != "" {
		m.wrapped(add, w, " state    "+sanitize(f.State), f.State, 10)
		if len(f.StateDecoded) > 0 {
			b, _ := json.Marshal(f.StateDecoded)
			m.wrapped(add, w, " decoded  "+sanitize(string(b)), string(b), 10)
		}
	} else {
		text(" state    " + m.st.dim.Render("(none)"))
	}
	verdict := m.verdictWords(f)
	if f.Verdict.Rule != "" && f.Verdict.Rule != "ok" {
		verdict = m.st.bad.Render(string(f.Verdict.Rule)) + fmt.Sprintf(" · %s · fault: %s (%s)", f.Verdict.Severity, f.Verdict.Fault, f.Verdict.Fault.Words())
	}
	text(" verdict  " + verdict)
	text("")

	// Hop timeline.
	text(" " + m.st.head.Render("Hop timeline") + m.st.dim.Render("   Δ = time since the previous hop"))
	vf, hasVerdict := m.verdictFinding(f)
	brokenAt, missing, failed := -1, mcptap.HopKind(""), false
	if hasVerdict {
		brokenAt, missing, failed = oauth.BrokenHop(f, vf)
	}
	m.hopLine = m.hopLine[:0]
	prev := f.Started
	for i, h := range f.Hops {
		gap := h.At.Sub(prev)
		prev = h.At
		ex, _ := m.exchange(h.Exchange)
		isBroken := i == brokenAt
		mark := "  "
		if isBroken {
			mark = m.st.bad.Render("✗ ")
		}
		target := ex.Method + " " + sanitize(ex.Host+pathOnly(ex.Target))
		if h.Inner {
			target = "(upstream IdP) " + target
		}
		room := w - 46
		if isBroken {
			room -= 20
		}
		line := fmt.Sprintf(" %s%s %-27s %s %s", mark, m.gap(gap), string(h.Kind), m.status(h.Status, ex.Err, ex.StatusUnrecorded()), clip(target, max(room, 10)))
		if isBroken {
			line += m.st.bad.Render("  ◀ chain broke here")
		}
		m.hopLine = append(m.hopLine, len(d.lines))
		add(docLine{text: line, ex: h.Exchange, copy: m.hideTarget(ex.URL()), sel: true})
	}
	if f.MoreMCPCalls > 0 {
		// A long live session keeps a flow's first MCP calls as hops and
		// counts the rest (the traffic list has every one).
		text(fmt.Sprintf("   %s", m.st.dim.Render(fmt.Sprintf("… and %d more successful MCP calls (press 2 for all traffic)", f.MoreMCPCalls))))
	}
	switch {
	case failed && brokenAt < 0:
		gap := vf.At.Sub(prev)
		label := "(missing hop)"
		switch missing {
		case mcptap.HopToken:
			label = "token   never called"
		case mcptap.HopMCP:
			label = "mcp     bearer never sent"
		}
		text(fmt.Sprintf(" %s%s %s", m.st.bad.Render("✗ "), m.gap(gap), m.st.bad.Render(fmt.Sprintf("%-34s none within the %s timeout", label, dur(m.opts.TokenTimeout))+"  ◀ chain broke here")))
	case f.Status == mcptap.FlowInProgress && !f.WaitingSince.IsZero():
		waited := m.now.Sub(f.WaitingSince)
		text(fmt.Sprintf(" %s%s %s", m.st.wait.Render("… "), m.gap(m.now.Sub(prev)),
			m.st.wait.Render(fmt.Sprintf("%-34s %s / %s", "token   waiting for the token call", clock(waited), clock(m.opts.TokenTimeout)))))
	}
	text("")

	// Findings, the verdict's first, then by severity.
	var fds []mcptap.Finding
	for _, id := range f.Findings {
		if fd, ok := m.finding(id); ok {
			fds = append(fds, fd)
		}
	}
	sort.SliceStable(fds, func(a, b int) bool {
		va, vb := fds[a].Rule == f.Verdict.Rule, fds[b].Rule == f.Verdict.Rule
		if va != vb {
			return va
		}
		return fds[a].Severity.Rank() > fds[b].Severity.Rank()
	})
	text(" " + m.st.head.Render(fmt.Sprintf("Findings (%d)", len(fds))))
	if len(fds) == 0 {
		text("   " + m.st.dim.Render("none"))
	}
	for _, fd := range fds {
		m.findingLines(fd, w, add)
	}
	at := -1
	if brokenAt >= 0 {
		at = m.hopLine[brokenAt]
	}
	d.rebuilt(first, keepCursor, keepOffset, func(l docLine) bool { return l.ex != "" }, at)
}

func (m *shared) gap(d time.Duration) string {
	s := fmt.Sprintf("%9s", "+"+dur(d))
	switch {
	case d >= 60*time.Second:
		return m.st.bad.Render(s)
	case d >= gapWarn:
		return m.st.warn.Render(s)
	}
	return m.st.dim.Render(s)
}

func (m *shared) status(code int, errText string, unrecorded bool) string {
	switch {
	case errText != "":
		return m.st.bad.Render("ERR")
	case unrecorded:
		return m.st.wait.Render("?  ") // answered; the status was not recorded
	case code == 0:
		return m.st.wait.Render("…  ")
	case code >= 400:
		return m.st.bad.Render(strconv.Itoa(code))
	case code >= 300:
		return m.st.warn.Render(strconv.Itoa(code))
	}
	return m.st.ok.Render(strconv.Itoa(code))
}

func (m *shared) sevGlyph(s mcptap.Severity) string {
	switch s {
	case mcptap.SevError:
		return m.st.bad.Render("✗ error  ")
	case mcptap.SevWarning:
		return m.st.warn.Render("! warning")
	}
	return m.st.dim.Render("i info   ")
}

func (m *shared) findingLines(fd mcptap.Finding, w int, add func(docLine)) {
	ex := ""
	if len(fd.Exchanges) > 0 {
		ex = fd.Exchanges[0]
	}
	add(docLine{text: fmt.Sprintf("   %s %s  fault: %s (%s)", m.sevGlyph(fd.Severity), m.st.bold.Render(string(fd.Rule)), fd.Fault, fd.Fault.Words()),
		ex: ex, copy: string(fd.Rule) + ": " + m.hideText(fd.Title), sel: true})
	inner := max(w-8, 20)
	if fd.Title != "" {
		add(docLine{text: "     " + m.st.bold.Render(sanitize(m.hideText(fd.Title)))})
	}
	for _, l := range wrapPlain(m.hideText(fd.Detail), inner) {
		add(docLine{text: "     " + l})
	}
	for _, ev := range fd.Evidence {
		m.evidenceLines(ev, w, add)
	}
	if fd.Fix != "" {
		fix := wrapPlain("Fix: "+m.hideText(fd.Fix), inner)
		for i, l := range fix {
			if i == 0 {
				add(docLine{text: "     " + m.st.ok.Render(l), copy: m.hideText(fd.Fix), sel: true})
				continue
			}
			add(docLine{text: "     " + m.st.ok.Render(l)})
		}
	}
	add(docLine{})
}

// evidenceLines shows one piece of evidence; two compared values go side by
// side with the bytes that differ highlighted in both.
func (m *shared) evidenceLines(ev mcptap.Evidence, w int, add func(docLine)) {
	ev = m.hideEvidence(ev)
	label := "evidence"
	if ev.Field != "" {
		label += " " + ev.Field
	}
	if ev.Exchange != "" {
		label += m.st.dim.Render(" (exchange " + short(ev.Exchange, 12) + ")")
	}
	add(docLine{text: "     " + label, ex: ev.Exchange, copy: ev.Got, sel: ev.Exchange != "" || ev.Got != ""})
	if ev.Want != "" || ev.Got != "" {
		col := max((w-12)/2, 12)
		want, got := sanitize(ev.Want), sanitize(ev.Got)
		i, j, k := diffSpan(want, got)
		l := m.highlight(want, i, j, "(absent)")
		r := m.highlight(got, i, k, "(absent)")
		ll := strings.Split(ansi.Hardwrap(l, col, true), "\n")
		rl := strings.Split(ansi.Hardwrap(r, col, true), "\n")
		add(docLine{text: "       " + m.st.dim.Render(fit("sent / expected", col)+" │ echoed / got")})
		for n := 0; n < len(ll) || n < len(rl); n++ {
			a, b := "", ""
			if n < len(ll) {
				a = ll[n]
			}
			if n < len(rl) {
				b = rl[n]
			}
			add(docLine{text: "       " + fit(a, col) + " │ " + b})
		}
		if i == len(want) && i == len(got) && want != "" {
			add(docLine{text: "       " + m.st.dim.Render("byte for byte identical")})
		}
	}
	if ev.Note != "" {
		for _, l := range wrapPlain(ev.Note, max(w-10, 20)) {
			add(docLine{text: "       " + m.st.dim.Render(l)})
		}
	}
}

// highlight styles s[i:j] as the differing part; an empty s shows absent.
func (m *shared) highlight(s string, i, j int, absent string) string {
	if s == "" {
		return m.st.hl.Render(absent)
	}
	if i >= j {
		if i < len(s) || i == len(s) {
			return s
		}
	}
	return s[:i] + m.st.hl.Render(s[i:j]) + s[j:]
}
