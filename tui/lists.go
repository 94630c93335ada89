package tui

import (
	"fmt"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// rowList is what the two list screens share: the rows that pass the filter
// (indices into the shared slice), the cursor and the size.
type rowList struct {
	*shared
	rows []int
	l    list
	w, h int
}

func (r *rowList) SetSize(w, h int) { r.w, r.h = w, h }

// move moves the cursor; moving off the newest row stops following.
func (r *rowList) move(d int) {
	r.l.cursor += d
	clampList(&r.l, len(r.rows))
	r.follow = r.follow && r.l.cursor == r.newestPos(len(r.rows))
}

// handle is the list part of Update; match says whether the i-th shared row
// passes the filter and n is how many rows the shared slice has.
func (r *rowList) handle(msg tea.Msg, n int, match func(int) bool) {
	switch msg := msg.(type) {
	case moveMsg:
		r.move(int(msg))
	case orderMsg:
		r.l.cursor = len(r.rows) - 1 - r.l.cursor
	case followMsg:
		r.l.cursor = r.newestPos(len(r.rows))
	case refilterMsg:
		r.rows = r.rows[:0]
		for i := range n {
			if match(i) {
				r.rows = append(r.rows, i)
			}
		}
		r.l = list{}
		if r.follow {
			r.l.cursor = r.newestPos(len(r.rows))
		}
	}
	clampList(&r.l, len(r.rows))
}

// current is the shared index under the cursor, -1 when the list is empty.
func (r *rowList) current() int {
	if len(r.rows) == 0 {
		return -1
	}
	return r.rowAt(r.rows, r.l.cursor)
}

// flowsScreen lists the OAuth flows, one row each with its verdict.
type flowsScreen struct{ rowList }

func (s *flowsScreen) kind() view { return viewFlows }

func (s *flowsScreen) Update(msg tea.Msg) tea.Cmd {
	if r, ok := msg.(refreshMsg); ok && r.analysis {
		msg = refilterMsg{} // flows were replaced: recompute every row
		keep := s.l
		s.handle(msg, len(s.flows), s.matchFlow)
		if !s.follow {
			s.l = keep
		}
		clampList(&s.l, len(s.rows))
		return nil
	}
	s.handle(msg, len(s.flows), s.matchFlow)
	return nil
}

func (s *flowsScreen) selection() selection {
	i := s.current()
	if i < 0 {
		return selection{}
	}
	f := s.flows[i]
	v := f.State
	if v == "" {
		v = f.ID
	}
	return selection{flow: f.ID, copy: v}
}

func (s *flowsScreen) View() string {
	from, to := window(&s.l, len(s.rows), s.h-1)
	// On a narrow terminal the verdict and the fault side stay whole: the
	// state column shrinks first, then the start time goes.
	need := 0
	for pos := from; pos < to; pos++ {
		f := s.flows[s.rowAt(s.rows, pos)]
		need = max(need, min(len(f.Verdict.Rule)+3+len(f.Verdict.Fault), 60))
	}
	// fixed cells: selection mark, glyph, client, duration and the blanks
	// between them; one more for the ellipsis a cut row ends with
	const fixed = 25 + 1
	labelW := 0 // the demo's scenario names
	if s.labels != nil {
		for pos := from; pos < to; pos++ {
			labelW = max(labelW, min(len(s.labels[s.flows[s.rowAt(s.rows, pos)].ID])+1, 25))
		}
	}
	stateW, startW := 14, 10
	for fixed+labelW+stateW+startW+need > s.w {
		if stateW > 6 {
			stateW--
			continue
		}
		if labelW > 9 {
			labelW--
			continue
		}
		if startW > 0 {
			startW = 0
			continue
		}
		break // nothing left to give: the verdict is cut at the edge
	}
	started := startW > 0
	col := func(client, label, state, start, duration string) string {
		row := fmt.Sprintf(" %-10s ", client)
		if labelW > 0 {
			row += fmt.Sprintf("%-*s", labelW, label)
		}
		row += fmt.Sprintf("%-*s ", stateW, state)
		if started {
			row += fmt.Sprintf("%-9s ", start)
		}
		return row + fmt.Sprintf("%-9s ", duration)
	}
	head := s.st.head.Render("  " + col("CLIENT", "SCENARIO", "STATE", "STARTED", "DURATION") + "VERDICT")
	if len(s.rows) == 0 {
		msg := "No OAuth flows yet: waiting for an authorization attempt."
		if s.filter != "" {
			msg = "No flow matches the filter " + s.filter + " (esc clears it)."
		}
		return strings.Join([]string{head, "", "   " + msg, "   " + s.st.dim.Render(fmt.Sprintf("%s seen so far; press 2 for all traffic.", plural(len(s.exs), "exchange")))}, "\n")
	}
	out := []string{head}
	for pos := from; pos < to; pos++ {
		f := s.flows[s.rowAt(s.rows, pos)]
		label := ""
		if labelW > 0 {
			label = short(sanitize(s.labels[f.ID]), labelW-1)
		}
		row := " " + s.glyph(f) + col(short(oauth.ClientName(f.Client), 10), label,
			short(sanitize(shortState(f)), stateW),
			f.Started.Local().Format("15:04:05"), dur(s.flowDuration(f)))
		row += s.verdictWords(f)
		out = append(out, s.selectRow(row, s.w, pos == s.l.cursor))
	}
	return strings.Join(out, "\n")
}

// trafficScreen lists every exchange in arrival order.
type trafficScreen struct{ rowList }

func (s *trafficScreen) kind() view { return viewTraffic }

func (s *trafficScreen) Update(msg tea.Msg) tea.Cmd {
	if r, ok := msg.(refreshMsg); ok {
		for i := len(s.exs) - r.added; i < len(s.exs); i++ {
			if s.matchExchange(i) {
				s.rows = append(s.rows, i)
			}
		}
		if s.follow {
			s.l.cursor = s.newestPos(len(s.rows))
		}
		clampList(&s.l, len(s.rows))
		return nil
	}
	s.handle(msg, len(s.exs), s.matchExchange)
	return nil
}

func (s *trafficScreen) selection() selection {
	i := s.current()
	if i < 0 {
		return selection{}
	}
	ex := s.tables.exchange(&s.exs[i])
	return selection{exchange: ex.ID, copy: s.hideTarget(ex.URL())}
}

func (s *trafficScreen) View() string {
	head := s.st.head.Render(fmt.Sprintf("   %-12s %-7s %-6s %-8s %-9s %-26s %s", "TIME", "METHOD", "STATUS", "DURATION", "SIZE", "HOP", "URL"))
	if len(s.rows) == 0 {
		msg := "No traffic yet."
		if s.filter != "" {
			msg = "No exchange matches the filter " + s.filter + " (esc clears it)."
		}
		return strings.Join([]string{head, "", "   " + msg}, "\n")
	}
	out := []string{head}
	from, to := window(&s.l, len(s.rows), s.h-1)
	for pos := from; pos < to; pos++ {
		ex := s.tables.exchange(&s.exs[s.rowAt(s.rows, pos)])
		out = append(out, s.selectRow(s.trafficRow(&ex), s.w, pos == s.l.cursor))
	}
	return strings.Join(out, "\n")
}

func (s *trafficScreen) trafficRow(ex *mcptap.Exchange) string {
	status := strconv.Itoa(ex.Status)
	var st string
	switch {
	case ex.Err != "":
		st = s.st.bad.Render(fmt.Sprintf("%-6s", "ERR"))
	case ex.StatusUnrecorded():
		st = s.st.wait.Render(fmt.Sprintf("%-6s", "?")) // answered; the status was not recorded
	case ex.Status == 0:
		st = s.st.wait.Render(fmt.Sprintf("%-6s", "…"))
	case ex.Status >= 400:
		st = s.st.bad.Render(fmt.Sprintf("%-6s", status))
	case ex.Status >= 300:
		st = s.st.warn.Render(fmt.Sprintf("%-6s", status))
	default:
		st = s.st.ok.Render(fmt.Sprintf("%-6s", status))
	}
	d := ex.Duration()
	size := humanBytes(ex.RespSize)
	if !ex.Complete && ex.Err == "" {
		if ex.Status != 0 {
			size = s.st.wait.Render(fmt.Sprintf("%-9s", "open "+humanBytes(ex.RespSize)))
		}
		if s.live && !s.closed {
			d = s.now.Sub(ex.Start)
		}
	}
	kind := ""
	if k, ok := s.hop(ex.ID); ok {
		kind = string(k)
	}
	url := sanitize(ex.Host + s.hideTarget(ex.Target))
	if ex.Err != "" {
		url += "  " + s.st.bad.Render(sanitize(s.hideText(ex.Err)))
	}
	return fmt.Sprintf("   %-12s %-7s %s %-8s %s %-26s %s", ex.Start.Local().Format("15:04:05.000"), short(ex.Method, 7), st,
		dur(d), fit(size, 9), short(kind, 26), url)
}
