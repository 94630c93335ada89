package tui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// param is one query or form parameter in its raw and decoded forms, in the
// order it was sent.
type param struct{ name, raw, value string }

func parseParams(s string) []param {
	var ps []param
	for _, kv := range strings.Split(s, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			dv = v
		}
		ps = append(ps, param{dk, v, dv})
	}
	return ps
}

// exchangeScreen is one exchange: request and response, decoded values and
// the findings that cite it. With Options.Load it shows the head at once and
// the bodies when they arrive.
type exchangeScreen struct {
	*shared
	id      string
	full    *mcptap.Exchange // with bodies; nil while loading
	loadErr error
	d       doc
	w, h    int
	hidden  hiddenCopy // full with its secrets hidden, for the rebuilds
}

// hiddenCopy is an exchange as the screen shows it, and what it was made
// from: the copy (full), what the redactor had learned, whether secrets
// were shown.
type hiddenCopy struct {
	of     *mcptap.Exchange
	gen    int
	reveal bool
	ex     mcptap.Exchange
}

// newExchangeScreen opens exchange id; the command, if any, loads its bodies.
func newExchangeScreen(s *shared, id string, w, h int) (*exchangeScreen, tea.Cmd) {
	es := &exchangeScreen{shared: s, id: id, w: w, h: h}
	ex, _ := s.exchange(id)
	if s.opts.Load != nil && ex.Complete {
		es.build()
		load := s.opts.Load
		return es, func() tea.Msg {
			full, err := load(id)
			return loadedMsg{ex: full, err: err}
		}
	}
	es.full = &ex
	es.build()
	return es, nil
}

func (m *exchangeScreen) kind() view { return viewExchange }

func (m *exchangeScreen) SetSize(w, h int) {
	m.w, m.h = w, h
	m.build()
}

func (m *exchangeScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case moveMsg:
		m.d.move(int(msg), m.h)
	case rawMsg:
		m.raw = !m.raw
		m.build()
	case loadedMsg:
		if msg.ex.ID == m.id {
			m.loadErr = msg.err
			if msg.err == nil {
				e := msg.ex
				m.full = &e
			}
			m.build()
		}
	case refreshMsg:
		// without a loader the exchanges carry their bodies: show the newest
		if m.full != nil && m.opts.Load == nil {
			for _, ex := range msg.exs {
				if ex.ID == m.id {
					e := ex
					m.full = &e
					m.build()
				}
			}
		}
	}
	return nil
}

func (m *exchangeScreen) View() string { return strings.Join(m.d.render(m.shared, m.w, m.h), "\n") }

func (m *exchangeScreen) selection() selection {
	return selection{copy: m.d.current().copy, subject: m.id}
}

func (m *exchangeScreen) build() {
	d := &m.d
	keepCursor, keepOffset := d.cursor, d.offset
	first := d.lines == nil
	d.lines = d.lines[:0]
	ex := m.full
	if ex == nil {
		head, ok := m.exchange(m.id)
		if !ok {
			d.lines = append(d.lines, docLine{text: " This exchange is gone."})
			d.cursor = -1
			return
		}
		ex = &head
	}
	// What the screen shows has its secrets hidden (secrets.go); what it
	// decodes (JWT claims, encoding layers) comes from the recorded bytes.
	rawEx := ex
	if f, _, ok := m.flowOf(ex.ID); ok {
		m.learnFlow(f)
	}
	m.learnExchange(*ex)
	// A rebuild (a resize, raw, a refresh) of the same copy, with nothing
	// learned since, shows the hidden copy made before.
	c := &m.hidden
	if m.full == nil || c.of != m.full || c.gen != m.secrets.gen || c.reveal != m.secrets.reveal {
		*c = hiddenCopy{of: m.full, gen: m.secrets.gen, reveal: m.secrets.reveal, ex: m.shown(*ex)}
	}
	shownEx := c.ex
	ex = &shownEx
	w := m.w
	add := func(l docLine) { d.lines = append(d.lines, l) }
	text := func(s string) { add(docLine{text: s}) }
	kv := func(indent, k, v string) {
		m.wrapped(add, w, indent+m.st.key.Render(sanitize(k))+": "+sanitize(v), v, len(indent)+2)
	}
	section := func(s string) { text(""); text(" " + m.st.head.Render(s)) }

	mode := "decoded"
	if m.raw {
		mode = "raw"
	}
	add(docLine{text: " " + m.st.bold.Render(ex.Method+" "+sanitize(ex.URL())), copy: ex.URL(), sel: true})
	meta := fmt.Sprintf(" %s · %s · started %s", ex.Mode, ex.Proto, ex.Start.Local().Format("15:04:05.000"))
	if !ex.ResponseAt.IsZero() {
		meta += " · head after " + dur(ex.ResponseAt.Sub(ex.Start))
	}
	if !ex.End.IsZero() {
		meta += " · ended after " + dur(ex.End.Sub(ex.Start))
	}
	if ex.Listener != "" {
		meta += " · via " + ex.Listener
	}
	if ex.Upstream != "" {
		meta += " → " + ex.Upstream
	}
	text(meta)
	if f, h, ok := m.flowOf(ex.ID); ok {
		text(fmt.Sprintf(" hop %s in flow %s (%s) · %s", m.st.bold.Render(string(h.Kind)), short(f.ID, 12), oauth.ClientName(f.Client), mode+" view (d switches)"))
	} else if k, ok := m.hop(ex.ID); ok {
		text(fmt.Sprintf(" hop %s · %s", m.st.bold.Render(string(k)), mode+" view (d switches)"))
	} else {
		text(" not part of an OAuth flow · " + mode + " view (d switches)")
	}
	if ex.Err != "" {
		text(" " + m.st.bad.Render("transport error: "+sanitize(ex.Err)))
	}
	if m.loadErr != nil {
		text(" " + m.st.bad.Render("could not load the bodies: "+m.loadErr.Error()))
	} else if m.full == nil {
		text(" " + m.st.dim.Render("loading bodies…"))
	}
	// findings that cite this exchange
	for _, fd := range m.findings {
		for _, id := range fd.Exchanges {
			if id == ex.ID {
				add(docLine{text: " " + m.sevGlyph(fd.Severity) + " " + m.st.bold.Render(string(fd.Rule)) + " · fault: " + string(fd.Fault) + " · " + sanitize(m.hideText(fd.Title)),
					copy: string(fd.Rule), sel: true})
				break
			}
		}
	}

	// Request.
	section("Request")
	if m.raw {
		add(docLine{text: "   " + sanitize(ex.Method+" "+ex.Target+" "+ex.Proto), copy: ex.Target, sel: true})
		add(docLine{text: "   " + m.st.key.Render("Host") + ": " + sanitize(ex.Host), copy: ex.Host, sel: true})
	}
	m.headerLines(ex.ReqHeader, kv)
	_, rawQuery, hasQuery := strings.Cut(ex.Target, "?")
	if hasQuery && !m.raw {
		section("Query parameters")
		_, recQuery, _ := strings.Cut(rawEx.Target, "?")
		m.paramLines(parseParams(rawQuery), parseParams(recQuery), ex, kv, add)
	}
	reqType := ex.ReqHeader.Get("Content-Type")
	if !m.raw && isForm(reqType) && len(ex.ReqBody) > 0 {
		section("Form parameters")
		m.paramLines(parseParams(string(ex.ReqBody)), parseParams(string(rawEx.ReqBody)), ex, kv, add)
	}
	if auth := rawEx.ReqHeader.Get("Authorization"); !m.raw && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		m.jwtLines("Authorization bearer", strings.TrimSpace(auth[7:]), ex, add)
	}
	m.bodyLines("Request body", ex.ReqBody, len(rawEx.ReqBody), ex.ReqSize, ex.ReqTruncated, reqType, true, w, add)

	// Response.
	if ex.Status != 0 {
		section(fmt.Sprintf("Response %d %s", ex.Status, http.StatusText(ex.Status)))
		m.headerLines(ex.RespHeader, kv)
		if loc := ex.RespHeader.Get("Location"); loc != "" && !m.raw {
			if _, q, ok := strings.Cut(loc, "?"); ok {
				section("Location parameters")
				_, recQ, _ := strings.Cut(rawEx.RespHeader.Get("Location"), "?")
				m.paramLines(parseParams(q), parseParams(recQ), ex, kv, add)
			}
		}
		respType := ex.RespHeader.Get("Content-Type")
		if !m.raw && isJSON(respType) && len(rawEx.RespBody) > 0 {
			var body map[string]any
			if json.Unmarshal(rawEx.RespBody, &body) == nil {
				for _, k := range []string{"access_token", "id_token", "refresh_token"} {
					if s, ok := body[k].(string); ok && strings.Count(s, ".") == 2 {
						m.jwtLines(k, s, ex, add)
					}
				}
			}
		}
		m.bodyLines("Response body", ex.RespBody, len(rawEx.RespBody), ex.RespSize, ex.RespTruncated, respType, ex.Complete, w, add)
	} else if ex.Err == "" {
		section("Response")
		text("   " + m.st.wait.Render("waiting for the response head…"))
	}

	d.rebuilt(first, keepCursor, keepOffset, func(l docLine) bool { return l.sel }, -1)
}

// wrapped adds a long line as several: the first is selectable and copies
// value, continuation lines are indented by cont cells.
func (m *shared) wrapped(add func(docLine), width int, line, value string, cont int) {
	w := max(width-1, 20)
	cont = min(max(cont, 2), w/2)
	if ansi.StringWidth(line) <= w {
		add(docLine{text: line, copy: value, sel: true})
		return
	}
	add(docLine{text: ansi.Cut(line, 0, w), copy: value, sel: true})
	rest := ansi.Cut(line, w, ansi.StringWidth(line))
	pad := strings.Repeat(" ", cont)
	for _, l := range strings.Split(ansi.Hardwrap(rest, w-cont, true), "\n") {
		add(docLine{text: pad + l})
	}
}

func isForm(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/x-www-form-urlencoded"
}

func isJSON(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func (m *shared) headerLines(h http.Header, kv func(indent, k, v string)) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range h[k] {
			kv("   ", k, v)
		}
	}
}

// paramLines lists parameters decoded, and peels state (and any value the
// decoder understands) layer by layer. PKCE values get their check.
// paramLines shows parameters as shown (secrets hidden) and decodes their
// layers from rec, the same parameters as recorded.
func (m *exchangeScreen) paramLines(ps, rec []param, ex *mcptap.Exchange, kv func(indent, k, v string), add func(docLine)) {
	for i, p := range ps {
		kv("   ", p.name, p.value)
		if p.raw != p.value {
			m.wrapped(add, m.w, "     "+m.st.dim.Render("raw: "+sanitize(p.raw)), p.raw, 7)
		}
		recorded := p.value
		if len(rec) == len(ps) && rec[i].name == p.name {
			recorded = rec[i].value
		}
		switch {
		case p.name == "state":
			m.layerLines(p.value, false, add)
		case p.name == "client_assertion" || strings.HasSuffix(p.name, "_token"):
			// A hidden secret shows only what cannot give it away: a
			// JWT's header and claims, not a base64 layer of its bytes.
			m.layerLines(recorded, !m.secrets.reveal, add)
		}
		if p.name == "code_verifier" {
			m.pkceLines(ex, add)
		}
	}
}

func (m *exchangeScreen) layerLines(v string, jwtOnly bool, add func(docLine)) {
	layers := m.decode(v)
	shown := 0
	for _, l := range layers {
		if l.Kind == "raw" || jwtOnly && (l.Kind != "jwt" || l.JSON == nil) {
			continue
		}
		note := ""
		if l.Note != "" {
			note = " (" + l.Note + ")"
		}
		path := ""
		if l.Path != "" {
			path = " " + l.Path
		}
		prefix := fmt.Sprintf("     %s↳ %s%s%s: ", strings.Repeat("  ", max(l.Depth-1, 0)), l.Kind, path, note)
		val := l.Text
		if l.JSON != nil {
			if b, err := json.Marshal(l.JSON); err == nil {
				val = string(b)
			}
		}
		m.wrapped(add, m.w, m.st.dim.Render(prefix)+sanitize(val), val, len(prefix)-2)
		shown++
	}
	if shown == 0 && v != "" && !jwtOnly {
		add(docLine{text: "     " + m.st.dim.Render("↳ opaque: no encoding layer recognised")})
	}
}

// pkceLines shows the analysis' PKCE check of a token request: the TUI
// computes nothing about OAuth, it shows the flow's Checks.
func (m *exchangeScreen) pkceLines(ex *mcptap.Exchange, add func(docLine)) {
	f, _, ok := m.flowOf(ex.ID)
	var check *mcptap.Check
	if ok {
		for i := range f.Checks {
			if f.Checks[i].Name == "pkce" && f.Checks[i].Exchange == ex.ID {
				check = &f.Checks[i]
			}
		}
	}
	switch {
	case check == nil:
		add(docLine{text: "     " + m.st.dim.Render("no PKCE check in the analysis for this request")})
	case check.Result == mcptap.CheckPassed:
		d := m.hideText(check.Detail)
		m.wrapped(add, m.w, "     "+m.st.ok.Render("✓ PKCE check passes: "+d), d, 7)
	case check.Result == mcptap.CheckFailed:
		d := m.hideText(check.Detail)
		m.wrapped(add, m.w, "     "+m.st.bad.Render("✗ PKCE check fails: "+d), d, 7)
	default:
		add(docLine{text: "     " + m.st.dim.Render("not checked: "+m.hideText(check.Detail))})
	}
}

// jwtLines shows a JWT's header and claims, and its expiry in words.
func (m *exchangeScreen) jwtLines(label, tok string, ex *mcptap.Exchange, add func(docLine)) {
	t := oauth.DecodeJWT(tok)
	if t.Kind == "opaque" {
		return
	}
	add(docLine{})
	add(docLine{text: " " + m.st.head.Render("JWT in "+label) + m.st.dim.Render("  ("+t.Kind+", decoded, signature not verified)")})
	hdr, _ := json.Marshal(t.Header)
	add(docLine{text: "   header: " + sanitize(string(hdr)), copy: string(hdr), sel: true})
	if t.Claims != nil {
		cl, _ := json.MarshalIndent(t.Claims, "   ", "  ")
		for i, l := range strings.Split(string(cl), "\n") {
			if i == 0 {
				l = "claims: " + l
			} else {
				l = strings.TrimPrefix(l, "   ")
			}
			add(docLine{text: "   " + sanitize(l), copy: l, sel: true})
		}
	}
	if t.Err != "" {
		add(docLine{text: "   " + m.st.warn.Render(t.Err)})
	}
	exp, ok := t.Time("exp")
	switch {
	case !ok && t.Kind == "jwt":
		add(docLine{text: "   " + m.st.warn.Render("no expiry: the token has no exp claim")})
	case ok:
		line := "   expires " + exp.UTC().Format("2006-01-02 15:04:05 UTC") + ": " + expiryWords(exp, ex.Start) + " the exchange"
		if m.live {
			line += ", " + expiryWords(exp, m.now) + " now"
		}
		style := m.st.ok
		if !exp.After(ex.Start) {
			style = m.st.bad
		}
		add(docLine{text: style.Render(line)})
	}
}

// expiryWords says how exp relates to at: "valid for 59m57s after" or
// "expired 3m00s before".
func expiryWords(exp, at time.Time) string {
	if exp.After(at) {
		return "valid for " + dur(exp.Sub(at)) + " after"
	}
	return "expired " + dur(at.Sub(exp)) + " before"
}

func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

// bodyLines shows a body: JSON pretty-printed (decoded view), text as text,
// binary as a short hex dump; truncation and open streams are said.
// bodyLines shows a body as shown (secrets hidden); recorded is how many
// bytes were recorded, which the hidden form does not keep.
func (m *exchangeScreen) bodyLines(title string, body []byte, recorded int, size int64, truncated bool, ct string, complete bool, w int, add func(docLine)) {
	if len(body) == 0 && size <= 0 && !truncated {
		return
	}
	head := fmt.Sprintf("%s (%s", title, plural(int(max(size, int64(recorded))), "byte"))
	if ct != "" {
		head += ", " + ct
	}
	head += ")"
	add(docLine{})
	add(docLine{text: " " + m.st.head.Render(head), copy: string(body), sel: len(body) > 0})
	if truncated {
		add(docLine{text: "   " + m.st.warn.Render(fmt.Sprintf("truncated: the first %d of %d bytes were recorded", recorded, size))})
	}
	if !complete {
		add(docLine{text: "   " + m.st.wait.Render("stream still open: showing what has arrived so far")})
	}
	if len(body) == 0 {
		if size > 0 {
			add(docLine{text: "   " + m.st.dim.Render("(not recorded)")})
		}
		return
	}
	var text string
	switch {
	case !utf8.Valid(body):
		n := min(len(body), 256)
		text = fmt.Sprintf("binary; first %d bytes:\n% x", n, body[:n])
	case !m.raw && (isJSON(ct) || json.Valid(body)) && !truncated:
		text = pretty(body)
	default:
		text = string(body)
	}
	const maxLines = 2000 // a huge body must not stall the renderer
	lines := wrapPlain(text, max(w-4, 20))
	for i, l := range lines {
		if i == maxLines {
			add(docLine{text: "   " + m.st.dim.Render(fmt.Sprintf("… %d more lines (y on the title copies the whole body)", len(lines)-maxLines))})
			break
		}
		add(docLine{text: "   " + l, copy: l, sel: true})
	}
}
