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
}

type view int

const (
	viewFlows view = iota
	viewTraffic
	viewFlow
	viewExchange
)

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

type list struct{ cursor, offset int }

// docLine is one line of a scrollable detail document.
type docLine struct {
	text string // styled
	ex   string // exchange opened by enter
	copy string // value copied by y
	sel  bool   // the cursor may stop here
}

type doc struct {
	lines  []docLine
	cursor int // index into lines, -1: nothing selectable
	offset int
}

// Model is the root Bubble Tea model. It switches on the current view; all
// OAuth meaning comes from the Analysis.
type Model struct {
	opts   Options
	eng    *engine // nil while the pump goroutine owns the analysis
	kinds  map[string]mcptap.HopKind
	decode func(string) []oauth.Layer
	st     styles
	live   bool
	closed bool

	exs      []mcptap.Exchange // arrival order
	exIdx    map[string]int
	flows    []mcptap.Flow // by start time
	flowIdx  map[string]int
	findings []mcptap.Finding
	findIdx  map[string]int
	errors   int
	dropped  uint64

	view     view
	back     []view
	flowRows []int // indices into flows that pass the filter
	trafRows []int // indices into exs that pass the filter
	fl, tl   list
	newest   bool // newest first
	follow   bool

	selFlow string
	flowDoc doc
	hopLine []int // line of each hop in flowDoc
	selEx   string
	full    *mcptap.Exchange // the opened exchange with bodies
	loadErr error
	exDoc   doc
	raw     bool

	filter    string
	terms     []term
	exFlowIdx map[string]int      // built only while a client/rule/text filter is on
	exRules   map[string][]string // exchange → rules of findings citing it
	filtering bool
	input     string
	help      bool
	msg       string
	copied    string

	width, height int
	now           time.Time
}

// New returns a model over opts. live makes it tick the analysis' clock.
func New(opts Options, live bool) *Model {
	if opts.TokenTimeout <= 0 {
		opts.TokenTimeout = 60 * time.Second
	}
	m := &Model{
		opts:    opts,
		kinds:   map[string]mcptap.HopKind{},
		decode:  opts.Decode,
		st:      newStyles(),
		live:    live,
		exIdx:   map[string]int{},
		flowIdx: map[string]int{},
		findIdx: map[string]int{},
		follow:  live,
		width:   120,
		height:  40,
	}
	an := opts.Analysis
	if an == nil {
		an = defaultAnalysis(opts.TokenTimeout)
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
	m.exs = slices.Grow(m.exs, len(s.exs)) // one copy for a replay, not log2(n)
	m.trafRows = slices.Grow(m.trafRows, len(s.exs))
	for _, ex := range s.exs {
		if m.opts.Load != nil && ex.Complete {
			ex.ReqBody, ex.RespBody = nil, nil
		}
		if !m.live {
			for _, t := range []time.Time{ex.Start, ex.ResponseAt, ex.End} {
				if t.After(m.now) {
					m.now = t
				}
			}
		}
		if i, ok := m.exIdx[ex.ID]; ok {
			m.exs[i] = ex
			continue
		}
		m.exIdx[ex.ID] = len(m.exs)
		m.exs = append(m.exs, ex)
		if m.matchExchange(len(m.exs) - 1) {
			m.trafRows = append(m.trafRows, len(m.exs)-1)
		}
	}
	for id, k := range s.kinds {
		m.kinds[id] = k
	}
	if s.now.After(m.now) {
		m.now = s.now // the traffic is newer than the last clock tick
	}
	if s.read {
		m.setAnalysis(s.flows, s.findings)
	} else if m.follow {
		m.tl.cursor = m.newestPos(len(m.trafRows))
	}
	m.clampLists()
	if m.selEx != "" && m.full != nil && m.opts.Load == nil {
		for _, ex := range s.exs {
			if ex.ID == m.selEx {
				e := ex
				m.full = &e
				m.buildExchangeDoc()
			}
		}
	}
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
	m.errors = 0
	for i, f := range m.findings {
		m.findIdx[f.ID] = i
		if f.Severity == mcptap.SevError {
			m.errors++
		}
	}
	if m.exFlowIdx != nil {
		m.indexExchanges()
	}
	m.flowRows = m.flowRows[:0]
	for i := range m.flows {
		if m.matchFlow(i) {
			m.flowRows = append(m.flowRows, i)
		}
	}
	if m.follow {
		m.fl.cursor = m.newestPos(len(m.flowRows))
		m.tl.cursor = m.newestPos(len(m.trafRows))
	}
	m.clampLists()
	if m.view == viewFlow || (m.view == viewExchange && len(m.back) > 0 && m.back[len(m.back)-1] == viewFlow) {
		m.buildFlowDoc()
	}
}

func (m *Model) newestPos(n int) int {
	if m.newest || n == 0 {
		return 0
	}
	return n - 1
}

// rowAt maps a display position to an index in rows.
func (m *Model) rowAt(rows []int, pos int) int {
	if m.newest {
		return rows[len(rows)-1-pos]
	}
	return rows[pos]
}

func (m *Model) clampLists() {
	clampList(&m.fl, len(m.flowRows))
	clampList(&m.tl, len(m.trafRows))
}

func clampList(l *list, n int) {
	if l.cursor >= n {
		l.cursor = n - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
}

func (m *Model) selectedFlow() (mcptap.Flow, bool) {
	if len(m.flowRows) == 0 {
		return mcptap.Flow{}, false
	}
	return m.flows[m.rowAt(m.flowRows, m.fl.cursor)], true
}

func (m *Model) selectedExchange() (mcptap.Exchange, bool) {
	if len(m.trafRows) == 0 {
		return mcptap.Exchange{}, false
	}
	return m.exs[m.rowAt(m.trafRows, m.tl.cursor)], true
}

func (m *Model) exchange(id string) (mcptap.Exchange, bool) {
	i, ok := m.exIdx[id]
	if !ok {
		return mcptap.Exchange{}, false
	}
	return m.exs[i], true
}

func (m *Model) finding(id string) (mcptap.Finding, bool) {
	i, ok := m.findIdx[id]
	if !ok {
		return mcptap.Finding{}, false
	}
	return m.findings[i], true
}

// verdictFinding is the finding that names a flow's verdict, if any.
func (m *Model) verdictFinding(f mcptap.Flow) (mcptap.Finding, bool) {
	for _, id := range f.Findings {
		if fd, ok := m.finding(id); ok && fd.Rule == f.Verdict.Rule {
			return fd, true
		}
	}
	return mcptap.Finding{}, false
}

// flowOf finds the flow that holds an exchange as a hop.
func (m *Model) flowOf(exID string) (mcptap.Flow, mcptap.Hop, bool) {
	for _, f := range m.flows {
		for _, h := range f.Hops {
			if h.Exchange == exID {
				return f, h, true
			}
		}
	}
	return mcptap.Flow{}, mcptap.Hop{}, false
}

func (m *Model) bodyHeight() int {
	h := m.height - 3 // title, status line, key line
	if h < 1 {
		h = 1
	}
	return h
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.rebuildDocs()
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
		if !news && m.view == viewFlow {
			m.buildFlowDoc() // running timer
		}
		if m.live {
			return m, tick()
		}
	case closedMsg:
		m.closed = true
		m.msg = "capture stopped; press q to quit"
	case loadedMsg:
		if msg.ex.ID == m.selEx {
			m.loadErr = msg.err
			if msg.err == nil {
				e := msg.ex
				m.full = &e
			}
			m.buildExchangeDoc()
		}
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

func (m *Model) rebuildDocs() {
	if m.selFlow != "" {
		m.buildFlowDoc()
	}
	if m.selEx != "" {
		m.buildExchangeDoc()
	}
}

func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if m.filtering {
		return m.filterKey(k)
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

func (m *Model) toggleOrder() tea.Cmd {
	m.newest = !m.newest
	m.fl.cursor = len(m.flowRows) - 1 - m.fl.cursor
	m.tl.cursor = len(m.trafRows) - 1 - m.tl.cursor
	m.clampLists()
	if m.newest {
		m.msg = "newest first"
	} else {
		m.msg = "newest last"
	}
	return nil
}

func (m *Model) toggleFollow() tea.Cmd {
	m.follow = !m.follow
	if m.follow {
		m.fl.cursor = m.newestPos(len(m.flowRows))
		m.tl.cursor = m.newestPos(len(m.trafRows))
		m.msg = "follow on: the newest row stays selected"
	} else {
		m.msg = "follow off"
	}
	return nil
}

func (m *Model) setView(v view) {
	m.view = v
	m.back = m.back[:0]
}

func (m *Model) goBack() {
	if m.filter != "" && (m.view == viewFlows || m.view == viewTraffic) {
		m.filter = ""
		m.applyFilter()
		return
	}
	if len(m.back) == 0 {
		return
	}
	m.view = m.back[len(m.back)-1]
	m.back = m.back[:len(m.back)-1]
	if m.view != viewExchange {
		m.selEx, m.full = "", nil
	}
	if m.view != viewFlow && m.view != viewExchange {
		m.selFlow = ""
	}
}

func (m *Model) move(d int) {
	switch m.view {
	case viewFlows:
		m.fl.cursor += d
		clampList(&m.fl, len(m.flowRows))
		m.follow = m.follow && m.fl.cursor == m.newestPos(len(m.flowRows))
	case viewTraffic:
		m.tl.cursor += d
		clampList(&m.tl, len(m.trafRows))
		m.follow = m.follow && m.tl.cursor == m.newestPos(len(m.trafRows))
	case viewFlow:
		m.flowDoc.move(d, m.bodyHeight())
	case viewExchange:
		m.exDoc.move(d, m.bodyHeight())
	}
}

// move steps the cursor over selectable lines, or scrolls when none are in reach.
func (d *doc) move(step, h int) {
	n := len(d.lines)
	if n == 0 {
		return
	}
	if d.cursor >= 0 {
		dir := 1
		if step < 0 {
			dir = -1
		}
		target := d.cursor + step
		if target < 0 {
			target = 0
		}
		if target > n-1 {
			target = n - 1
		}
		// find the nearest selectable line at or beyond target in the direction of travel
		best := -1
		for i := target; i >= 0 && i < n; i += dir {
			if d.lines[i].sel {
				best = i
				break
			}
		}
		if best < 0 {
			for i := target; i >= 0 && i < n; i -= dir {
				if d.lines[i].sel {
					best = i
					break
				}
			}
		}
		if best >= 0 && best != d.cursor {
			d.cursor = best
			if d.cursor < d.offset {
				d.offset = d.cursor
			}
			if d.cursor >= d.offset+h {
				d.offset = d.cursor - h + 1
			}
			// show trailing text when the cursor sits on the last selectable line
			if step > 0 && best == d.lastSel() {
				d.offset += step
			}
			d.clamp(h)
			return
		}
	}
	d.offset += step
	d.clamp(h)
}

func (d *doc) lastSel() int {
	for i := len(d.lines) - 1; i >= 0; i-- {
		if d.lines[i].sel {
			return i
		}
	}
	return -1
}

func (d *doc) clamp(h int) {
	if d.offset > len(d.lines)-h {
		d.offset = len(d.lines) - h
	}
	if d.offset < 0 {
		d.offset = 0
	}
	if d.cursor >= 0 && d.cursor < d.offset && d.lines[d.cursor].sel {
		// keep the cursor on screen after a scroll
		for i := d.offset; i < len(d.lines) && i < d.offset+h; i++ {
			if d.lines[i].sel {
				d.cursor = i
				break
			}
		}
	}
}

func (m *Model) open() tea.Cmd {
	switch m.view {
	case viewFlows:
		f, ok := m.selectedFlow()
		if !ok {
			return nil
		}
		m.back = append(m.back, m.view)
		m.view = viewFlow
		m.selFlow = f.ID
		m.flowDoc = doc{}
		m.buildFlowDoc()
	case viewTraffic:
		ex, ok := m.selectedExchange()
		if !ok {
			return nil
		}
		return m.openExchange(ex.ID)
	case viewFlow:
		if c := m.flowDoc.cursor; c >= 0 && c < len(m.flowDoc.lines) && m.flowDoc.lines[c].ex != "" {
			return m.openExchange(m.flowDoc.lines[c].ex)
		}
	}
	return nil
}

func (m *Model) openExchange(id string) tea.Cmd {
	ex, ok := m.exchange(id)
	if !ok {
		return nil
	}
	m.back = append(m.back, m.view)
	m.view = viewExchange
	m.selEx = id
	m.exDoc = doc{}
	m.loadErr = nil
	if m.opts.Load != nil && ex.Complete {
		m.full = nil
		m.buildExchangeDoc()
		load := m.opts.Load
		return func() tea.Msg {
			full, err := load(id)
			return loadedMsg{ex: full, err: err}
		}
	}
	m.full = &ex
	m.buildExchangeDoc()
	return nil
}

func (m *Model) copy() tea.Cmd {
	var v string
	switch m.view {
	case viewFlows:
		if f, ok := m.selectedFlow(); ok {
			v = f.State
			if v == "" {
				v = f.ID
			}
		}
	case viewTraffic:
		if ex, ok := m.selectedExchange(); ok {
			v = ex.URL()
		}
	case viewFlow:
		v = m.flowDoc.selectedCopy()
	case viewExchange:
		v = m.exDoc.selectedCopy()
	}
	if v == "" {
		m.msg = "nothing to copy here"
		return nil
	}
	m.copied = v
	m.msg = "copied " + plural(len(v), "byte") + " to the clipboard (OSC 52): " + short(sanitize(v), 40)
	return tea.SetClipboard(v)
}

func (d *doc) selectedCopy() string {
	if d.cursor >= 0 && d.cursor < len(d.lines) {
		return d.lines[d.cursor].copy
	}
	return ""
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

// hop is the analysis' classification of an exchange, if any.
func (m *Model) hop(id string) (mcptap.HopKind, bool) {
	k, ok := m.kinds[id]
	return k, ok
}
