package tui

import (
	"slices"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// Options configure a TUI program.
type Options struct {
	Session  mcptap.Session // shown in the status line; used to name the report
	Listen   []string       // listen addresses (live)
	Upstream []string       // upstream URLs (live)

	// TokenTimeout is the wait before token.never-called (shown on the
	// running timer); it must match the Analysis's own setting. Default 60s.
	TokenTimeout time.Duration

	// Analysis rebuilds flows and findings; nil means a fresh oauth.Tracker.
	Analysis Analysis

	// Load, when set, returns an exchange with its bodies. The model then
	// keeps only heads of complete exchanges in memory and loads bodies when
	// an exchange is opened (or a report is written).
	Load func(id string) (mcptap.Exchange, error)

	// Dropped reports exchanges the capture could not deliver (live).
	Dropped func() uint64

	// ReportDir is where r writes the markdown report ("" = working directory).
	ReportDir string

	// Decode splits a value into its decoding layers; nil uses oauth.Decode.
	Decode func(string) []oauth.Layer

	// Label, if set, names the flow an exchange belongs to (the demo: its
	// scenario); the flows list and the flow screen show it.
	Label func(mcptap.Exchange) string

	// SecretKey keys the hashes that stand for hidden secrets (tests fix
	// it; nil draws one per run, as reports do).
	SecretKey []byte
}

// ExchangesMsg is a batch of new or updated exchanges (upserted by ID).
type ExchangesMsg []mcptap.Exchange

// tickMsg drives the time-based rules and running timers.
type tickMsg time.Time

// closedMsg says the live subscription ended (capture stopped).
type closedMsg struct{}

// loadedMsg carries an exchange whose bodies were loaded lazily.
type loadedMsg struct {
	ex  mcptap.Exchange
	err error
}

// reportMsg says where the report went.
type reportMsg struct {
	path string
	err  error
}

const tickEvery = 500 * time.Millisecond

// staleEvery bounds how long MCP hops that did not trigger a refresh may be
// missing from the flows' timelines.
const staleEvery = 2 * time.Second

// Model is the root Bubble Tea model: it owns the shared snapshot of the
// analysis, the navigation stack of screens, the filter input and the help;
// every OAuth meaning comes from the Analysis.
type Model struct {
	shared
	eng *engine // nil while the pump goroutine owns the analysis

	flowsList   *flowsScreen
	trafficList *trafficScreen
	stack       []screen // stack[0] is one of the two lists; the top is shown

	filtering  bool
	input      string
	reportBase string // while r asks for the format: the file to write, without extension
	help       bool
	msg        string
	copied     string

	width, height int
}

// New returns a model over opts. live makes it tick the analysis' clock.
func New(opts Options, live bool) *Model {
	if opts.TokenTimeout <= 0 {
		opts.TokenTimeout = 60 * time.Second
	}
	m := &Model{
		shared: shared{
			opts:    opts,
			decode:  opts.Decode,
			st:      newStyles(),
			live:    live,
			exIdx:   map[string]int{},
			flowIdx: map[string]int{},
			findIdx: map[string]int{},
			follow:  live,
			secrets: newSecrets(opts.SecretKey),
		},
		width:  120,
		height: 40,
	}
	m.flowsList = &flowsScreen{rowList{shared: &m.shared}}
	m.trafficList = &trafficScreen{rowList{shared: &m.shared}}
	m.stack = []screen{m.flowsList}
	m.setSizes()
	an := opts.Analysis
	if an == nil {
		an = defaultAnalysis(opts.TokenTimeout, opts.Load != nil)
	}
	m.eng = newEngine(an)
	if m.decode == nil {
		m.decode = defaultDecode
	}
	if live {
		m.now = time.Now()
	}
	return m
}

// Init starts the clock of a live model.
func (m *Model) Init() tea.Cmd {
	if m.live {
		return tick()
	}
	return nil
}

func tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Ingest feeds exchanges to the model's own analysis and shows the result
// (replays and tests; a live program analyses in its pump goroutine).
func (m *Model) Ingest(batch []mcptap.Exchange) {
	m.apply(m.eng.ingest(batch))
}

// Finish tells the analysis the recording is over (replay).
func (m *Model) Finish() {
	m.apply(m.eng.finish())
}

// apply shows one snapshot of the analysis: upserts its exchanges and, when
// they were re-read, replaces flows and findings.
func (m *Model) apply(s snapshotMsg) {
	m.exs = growRows(m.exs, len(s.exs))
	keepFull := m.opts.Load == nil
	if keepFull {
		m.full = slices.Grow(m.full, len(s.exs))
	}
	added := 0
	for i := range s.exs {
		ex := &s.exs[i]
		if !m.live {
			for _, t := range []time.Time{ex.Start, ex.ResponseAt, ex.End} {
				if t.After(m.now) {
					m.now = t
				}
			}
		}
		if !keepFull {
			if ex.Complete {
				delete(m.inflight, ex.ID)
			} else {
				if m.inflight == nil {
					m.inflight = map[string]mcptap.Exchange{}
				}
				m.inflight[ex.ID] = *ex
			}
		}
		if j, ok := m.exIdx[ex.ID]; ok {
			m.exs[j] = m.tables.row(ex, m.exs[j].kind)
			if keepFull {
				m.full[j] = *ex
			}
			continue
		}
		m.exIdx[ex.ID] = len(m.exs)
		m.exs = append(m.exs, m.tables.row(ex, 0))
		if keepFull {
			m.full = append(m.full, *ex)
		}
		added++
	}
	for id, k := range s.kinds {
		if j, ok := m.exIdx[id]; ok {
			m.exs[j].kind = m.tables.kind(k)
		}
	}
	if s.now.After(m.now) {
		m.now = s.now // the traffic is newer than the last clock tick
	}
	if s.read {
		m.setAnalysis(s.flows, s.findings)
	}
	if s.load != nil {
		m.load = s.load
		if s.load.over {
			m.load = nil
		}
	}
	m.broadcast(refreshMsg{exs: s.exs, added: added, analysis: s.read})
}

// growRows makes room for n more rows: all of them at once (a replay is
// one copy, not log2(n)), and then an eighth more, not the quarter append
// would add: at a million rows the spare capacity is most of the waste.
func growRows(rows []exRow, n int) []exRow {
	if cap(rows)-len(rows) >= n {
		return rows
	}
	out := make([]exRow, len(rows), len(rows)+n+len(rows)/8)
	copy(out, rows)
	return out
}

// setAnalysis replaces flows (sorted by start) and findings.
func (m *Model) setAnalysis(flows []mcptap.Flow, findings []mcptap.Finding) {
	m.flows = flows
	clear(m.flowIdx)
	for i, f := range flows {
		m.flowIdx[f.ID] = i
	}
	m.findings = findings
	clear(m.findIdx)
	m.errors, m.warnings = 0, 0
	for i, f := range m.findings {
		m.findIdx[f.ID] = i
		switch f.Severity {
		case mcptap.SevError:
			m.errors++
		case mcptap.SevWarning:
			m.warnings++
		}
	}
	if m.exFlowIdx != nil {
		m.indexExchanges()
	}
	if m.opts.Label != nil {
		m.labels = make(map[string]string, len(flows))
		for _, f := range flows {
			for _, h := range f.Hops {
				if ex, ok := m.exchange(h.Exchange); ok {
					if l := m.opts.Label(ex); l != "" {
						m.labels[f.ID] = l
						break
					}
				}
			}
		}
	}
}

// broadcast hands msg to both lists and to every screen on the stack.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, sc := range m.screens() {
		cmds = append(cmds, sc.Update(msg))
	}
	return tea.Batch(cmds...)
}

// screens is every live screen: the two lists and the opened ones.
func (m *Model) screens() []screen {
	out := []screen{m.flowsList, m.trafficList}
	for _, sc := range m.stack {
		if sc != screen(m.flowsList) && sc != screen(m.trafficList) {
			out = append(out, sc)
		}
	}
	return out
}

func (m *Model) top() screen { return m.stack[len(m.stack)-1] }

func (m *Model) bodyHeight() int {
	h := m.height - 3 // title, status line, key line
	if h < 1 {
		h = 1
	}
	return h
}

func (m *Model) setSizes() {
	for _, sc := range m.screens() {
		sc.SetSize(m.width, m.bodyHeight())
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.setSizes()
	case ExchangesMsg:
		m.Ingest(msg)
	case snapshotMsg:
		m.apply(msg)
	case tickMsg:
		m.now = time.Time(msg)
		if m.opts.Dropped != nil {
			m.dropped = m.opts.Dropped()
		}
		news := false
		if m.eng != nil {
			var s snapshotMsg
			if s, news = m.eng.tick(m.now); news {
				m.apply(s)
			}
		}
		if !news {
			m.top().Update(msg) // running timers
		}
		if m.live {
			return m, tick()
		}
	case closedMsg:
		m.closed = true
		m.msg = "capture stopped; press q to quit"
	case loadedMsg:
		return m, m.broadcast(msg)
	case curlMsg:
		if msg.err != nil {
			m.msg = "curl: could not load the exchange: " + msg.err.Error()
			return m, nil
		}
		return m, m.copyText(msg.cmd, "curl command")
	case reportMsg:
		if msg.err != nil {
			m.msg = "report: " + msg.err.Error()
		} else {
			m.msg = "report written to " + msg.path + " (secrets redacted)"
		}
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp:
			m.move(-3)
		case tea.MouseWheelDown:
			m.move(3)
		}
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if m.filtering {
		return m.filterKey(k)
	}
	if m.reportBase != "" {
		return m.reportKey(k)
	}
	if m.help {
		if s == "q" || s == "ctrl+c" {
			return tea.Quit
		}
		m.help = false
		return nil
	}
	m.msg = ""
	if b, ok := keyIndex[s]; ok {
		return b.do(m)
	}
	return nil
}

func (m *Model) move(d int) { m.top().Update(moveMsg(d)) }

func (m *Model) toggleOrder() tea.Cmd {
	m.newest = !m.newest
	m.flowsList.Update(orderMsg{})
	m.trafficList.Update(orderMsg{})
	if m.newest {
		m.msg = "newest first"
	} else {
		m.msg = "newest last"
	}
	return nil
}

// toggleSecrets shows or hides the secrets on every screen.
func (m *Model) toggleSecrets() tea.Cmd {
	m.secrets.reveal = !m.secrets.reveal
	m.setSizes() // the open screens rebuild their lines
	if m.secrets.reveal {
		m.msg = "secrets shown: codes, tokens and credentials are on screen (s hides them)"
	} else {
		m.msg = "secrets hidden"
	}
	return nil
}

func (m *Model) toggleFollow() tea.Cmd {
	m.follow = !m.follow
	if m.follow {
		m.flowsList.Update(followMsg{})
		m.trafficList.Update(followMsg{})
		m.msg = "follow on: the newest row stays selected"
	} else {
		m.msg = "follow off"
	}
	return nil
}

// setView shows one of the two lists, closing what was opened.
func (m *Model) setView(v view) {
	if v == viewTraffic {
		m.stack = []screen{m.trafficList}
	} else {
		m.stack = []screen{m.flowsList}
	}
}

// applyFilter makes the lists show what passes the current filter.
func (m *Model) applyFilter() {
	m.setFilter(m.filter)
	m.flowsList.Update(refilterMsg{})
	m.trafficList.Update(refilterMsg{})
	switch {
	case m.filter == "":
		m.msg = "filter cleared"
	case len(m.unknown) > 0:
		m.msg = "unknown filter key " + strings.Join(m.unknown, ": ") + ": searched as text; keys are " + strings.Join(filterKeys, ": ") + ":"
	default:
		m.msg = "filter: " + m.filter + " (esc clears)"
	}
}

func (m *Model) goBack() {
	if m.filter != "" && len(m.stack) == 1 {
		m.filter = ""
		m.applyFilter()
		return
	}
	if len(m.stack) > 1 {
		m.stack = m.stack[:len(m.stack)-1]
	}
}

// open opens what the top screen's cursor is on: a flow or an exchange.
func (m *Model) open() tea.Cmd {
	sel := m.top().selection()
	switch {
	case sel.flow != "":
		m.stack = append(m.stack, newFlowScreen(&m.shared, sel.flow, m.width, m.bodyHeight()))
	case sel.exchange != "":
		if _, ok := m.exchange(sel.exchange); !ok {
			return nil
		}
		sc, cmd := newExchangeScreen(&m.shared, sel.exchange, m.width, m.bodyHeight())
		m.stack = append(m.stack, sc)
		return cmd
	}
	return nil
}

func (m *Model) copy() tea.Cmd {
	v := m.top().selection().copy
	if v == "" {
		m.msg = "nothing to copy here"
		return nil
	}
	return m.copyText(v, "")
}

// copyText puts v on the clipboard (OSC 52) and says so; what names it.
func (m *Model) copyText(v, what string) tea.Cmd {
	m.copied = v
	if what == "" {
		what = plural(len(v), "byte")
	}
	m.msg = "copied " + what + " to the clipboard (OSC 52): " + short(sanitize(v), 40)
	return tea.SetClipboard(v)
}

func (m *Model) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch k.String() {
	case "enter":
		m.filtering = false
		m.filter = strings.TrimSpace(m.input)
		m.applyFilter()
	case "esc":
		m.filtering = false
	case "backspace":
		if r := []rune(m.input); len(r) > 0 {
			m.input = string(r[:len(r)-1])
		}
	case "ctrl+u":
		m.input = ""
	case "ctrl+c":
		return tea.Quit
	default:
		if k.Text != "" {
			m.input += k.Text
		} else if k.String() == "space" {
			m.input += " "
		}
	}
	return nil
}
