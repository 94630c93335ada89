package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// The HTML report is one self-contained file: styles and the small filter
// script are inline, nothing is fetched, and the diagrams and verdicts need
// no script at all (an arrow is a link to its exchange's panel, which CSS
// :target shows).

//go:embed html.tmpl
var htmlSource string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"clientName": oauth.ClientName,
	"faultWords": mcptap.Fault.Words,
	"mark":       mark,
}).Parse(htmlSource))

// party is one lane of a sequence diagram.
type party int

const (
	partyClient party = iota
	partyBrowser
	partyServer
	partyAuth
	partyIdP
	nParties
)

var partyNames = [nParties]string{"Client platform", "Browser", "MCP server", "Authorization server", "Upstream identity provider"}

// hopParties says who sent a hop and to whom, as mcptap identified the roles:
// an inner hop is a leg between the authorization server (an OAuth proxy)
// and the identity provider behind it.
func hopParties(h Hop) (from, to party) {
	switch h.Kind {
	case mcptap.HopDiscoveryAuth, mcptap.HopRegister:
		return partyClient, partyAuth
	case mcptap.HopAuthorize:
		if h.Inner {
			return partyBrowser, partyIdP
		}
		return partyBrowser, partyAuth
	case mcptap.HopRedirect:
		if h.Inner {
			return partyIdP, partyBrowser
		}
		return partyAuth, partyBrowser
	case mcptap.HopCallback:
		if h.Inner {
			return partyBrowser, partyAuth
		}
		return partyBrowser, partyClient
	case mcptap.HopCallbackCompletion:
		return partyBrowser, partyClient
	case mcptap.HopToken, mcptap.HopRefresh:
		if h.Inner {
			return partyAuth, partyIdP
		}
		return partyClient, partyAuth
	}
	return partyClient, partyServer // MCP calls and resource discovery
}

type htmlLane struct {
	X          int
	Name, Host string
}

type htmlArrow struct {
	X1, X2, Y, LabelX int
	Label, Gap, Title string
	Exchange          string // "" for a hop that never came
	Status            string // ok, redirect, client-error, server-error, missing
	Broken, Missing   bool
}

type htmlDiagram struct {
	Width, Height, Bottom int
	Lanes                 []htmlLane
	Arrows                []htmlArrow
}

type htmlFlow struct {
	Flow
	N              int
	Class          string // ok, warning, error, progress
	VerdictFinding *Finding
	Others         []Finding
	Warnings       int
	Diagram        htmlDiagram
	StateJSON      string
}

type htmlKV struct{ K, V string }

type htmlJWT struct{ Label, Header, Claims, Note string }

type htmlExchange struct {
	ID, Method, URL, Proto, Status, Err, Flow, Kind, Mode string
	Start                                                 string
	ReqHeaders, RespHeaders                               []htmlKV
	Query                                                 []htmlKV
	ReqBody, RespBody                                     string
	ReqNote, RespNote                                     string
	JWTs                                                  []htmlJWT
	Checks                                                []mcptap.Check
	Findings                                              []string
}

type htmlPage struct {
	Header                   string
	Redacted                 bool
	Flows                    []htmlFlow
	Outside                  []Finding
	Repro                    []string
	Exchanges                []htmlExchange
	Clients, Faults, Results []string
	Detail                   bool
}

const (
	laneGap   = 190
	laneLeft  = 150
	rowHeight = 46
	topHeight = 58
)

func (r Report) writeHTML(w io.Writer) error {
	groups := r.byFlow()
	page := htmlPage{Header: r.header(), Redacted: r.Redacted, Outside: groups[""], Repro: r.Reproduce(),
		Detail: r.exchanges != nil}
	seen := map[string]map[string]bool{"client": {}, "fault": {}, "result": {}}
	add := func(kind, v string, to *[]string) {
		if !seen[kind][v] {
			seen[kind][v] = true
			*to = append(*to, v)
		}
	}
	hopOf := map[string]Hop{}
	flowOf := map[string]string{}
	for i, f := range r.Flows {
		hf := htmlFlow{Flow: f, N: i + 1, StateJSON: decodedJSON(f.State.Decoded)}
		for _, fd := range ordered(f, groups) {
			fd := fd
			if hf.VerdictFinding == nil && f.Verdict.Rule != "ok" && mcptap.RuleID(fd.Rule) == f.Verdict.Rule {
				hf.VerdictFinding = &fd
				continue
			}
			hf.Others = append(hf.Others, fd)
			if fd.Severity == mcptap.SevWarning {
				hf.Warnings++
			}
		}
		switch {
		case f.Verdict.Rule != "ok" && f.Verdict.Severity == mcptap.SevError:
			hf.Class = "error"
		case f.Verdict.Rule != "ok" || hf.Warnings > 0:
			hf.Class = "warning"
		case f.Status == string(mcptap.FlowInProgress):
			hf.Class = "progress"
		default:
			hf.Class = "ok"
		}
		hf.Diagram = diagram(f)
		for _, h := range f.Hops {
			hopOf[h.Exchange] = h
			flowOf[h.Exchange] = f.ID
		}
		add("client", clientOrUnknown(f.Client), &page.Clients)
		add("fault", string(f.Verdict.Fault), &page.Faults)
		add("result", hf.Class, &page.Results)
		page.Flows = append(page.Flows, hf)
	}
	if r.exchanges != nil {
		page.Exchanges = r.exchangePanels(hopOf, flowOf)
	}
	var buf bytes.Buffer
	if err := htmlTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// diagram lays out one flow's sequence diagram: a lane per party that takes
// part, an arrow per hop (a run of identical MCP calls is one arrow), the hop
// where the chain broke marked, and a hop that never came drawn dashed.
func diagram(f Flow) htmlDiagram {
	runs := collapse(f.Hops)
	broken := -1 // the run that holds the broken hop
	if f.BrokenHop != nil {
		n := 0
		for i, g := range runs {
			if *f.BrokenHop >= n && *f.BrokenHop < n+g.n {
				broken = i
			}
			n += g.n
		}
	}
	used := [nParties]bool{}
	hosts := [nParties]string{}
	for _, g := range runs {
		a, b := hopParties(g.Hop)
		used[a], used[b] = true, true
		if hosts[b] == "" && g.Kind != mcptap.HopRedirect {
			hosts[b] = hostOf(g.URL)
		}
	}
	if f.MissingHop != "" {
		a, b := hopParties(Hop{Kind: f.MissingHop})
		used[a], used[b] = true, true
	}
	var d htmlDiagram
	x := map[party]int{}
	for p := range nParties {
		if !used[p] {
			continue
		}
		x[p] = laneLeft + len(d.Lanes)*laneGap
		d.Lanes = append(d.Lanes, htmlLane{X: x[p], Name: partyNames[p], Host: hosts[p]})
	}
	y := topHeight + 24
	var prev time.Time
	for i, g := range runs {
		a, b := hopParties(g.Hop)
		kind, status := g.cells()
		label := kind
		if g.Method != "" && g.Method != "→" {
			label = g.Method + " " + label
		}
		if status != "" {
			label += " · " + status
		}
		arrow := htmlArrow{X1: x[a], X2: x[b], Y: y, Label: label, Gap: gap(prev, g.At), Exchange: g.Exchange,
			Title: g.URL, Status: statusClass(g.Hop), Broken: i == broken}
		arrow.LabelX = (arrow.X1 + arrow.X2) / 2
		d.Arrows = append(d.Arrows, arrow)
		prev = g.last
		y += rowHeight
	}
	if f.MissingHop != "" {
		a, b := hopParties(Hop{Kind: f.MissingHop})
		d.Arrows = append(d.Arrows, htmlArrow{X1: x[a], X2: x[b], Y: y, LabelX: (x[a] + x[b]) / 2,
			Label: string(f.MissingHop) + " never came", Status: "missing", Missing: true, Broken: true})
		y += rowHeight
	}
	d.Bottom = y - rowHeight/2
	d.Height = y
	d.Width = laneLeft*2 + max(len(d.Lanes)-1, 0)*laneGap
	return d
}

func statusClass(h Hop) string {
	switch {
	case h.Kind == mcptap.HopMCPUnauthenticated && h.Status == 401:
		return "ok" // the challenge that starts the dance
	case h.Kind == mcptap.HopRedirect || (h.Status >= 300 && h.Status < 400):
		return "redirect"
	case h.Status >= 500:
		return "server-error"
	case h.Status >= 400:
		return "client-error"
	case h.StatusUnrecorded:
		return "unrecorded"
	case h.Status == 0:
		return "none"
	}
	return "ok"
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return ""
}

// exchangePanels renders the cited exchanges, in recording order.
func (r Report) exchangePanels(hopOf map[string]Hop, flowOf map[string]string) []htmlExchange {
	cites := map[string][]string{}
	for _, fd := range r.Findings {
		for _, id := range fd.Exchanges {
			cites[id] = append(cites[id], fd.Rule)
		}
	}
	checks := map[string][]mcptap.Check{}
	for _, f := range r.Flows {
		for _, c := range f.Checks {
			checks[c.Exchange] = append(checks[c.Exchange], c)
		}
	}
	ids := make([]string, 0, len(r.exchanges))
	for id := range r.exchanges {
		ids = append(ids, id)
	}
	sort.Strings(ids) // IDs sort by time
	out := make([]htmlExchange, 0, len(ids))
	for _, id := range ids {
		ex := r.exchanges[id]
		p := htmlExchange{ID: id, Method: ex.Method, URL: ex.URL(), Proto: ex.Proto, Err: ex.Err, Flow: flowOf[id],
			Kind: string(hopOf[id].Kind), Mode: string(ex.Mode), Start: ex.Start.UTC().Format("2006-01-02 15:04:05.000 UTC"),
			ReqHeaders: headerList(ex.ReqHeader), RespHeaders: headerList(ex.RespHeader),
			Checks: checks[id], Findings: cites[id]}
		if ex.Status != 0 {
			p.Status = fmt.Sprintf("%d %s", ex.Status, http.StatusText(ex.Status))
		}
		if _, q, ok := strings.Cut(ex.Target, "?"); ok {
			for _, prm := range oauth.ParseQuery(q) {
				p.Query = append(p.Query, htmlKV{prm.Key, prm.Value})
			}
		}
		p.ReqBody, p.ReqNote = bodyText(ex.ReqBody, ex.ReqSize, ex.ReqTruncated)
		p.RespBody, p.RespNote = bodyText(ex.RespBody, ex.RespSize, ex.RespTruncated)
		if auth := ex.ReqHeader.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			p.JWTs = appendJWT(p.JWTs, "Authorization bearer", strings.TrimSpace(auth[7:]))
		}
		var body map[string]any
		if json.Unmarshal(ex.RespBody, &body) == nil {
			for _, k := range []string{"access_token", "id_token", "refresh_token"} {
				if s, ok := body[k].(string); ok {
					p.JWTs = appendJWT(p.JWTs, k, s)
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func appendJWT(js []htmlJWT, label, tok string) []htmlJWT {
	t := oauth.DecodeJWT(tok)
	if t.Kind == "opaque" {
		return js
	}
	h, _ := json.MarshalIndent(t.Header, "", "  ")
	j := htmlJWT{Label: label, Header: string(h), Note: t.Kind + ", decoded, signature not verified"}
	if t.Claims != nil {
		c, _ := json.MarshalIndent(t.Claims, "", "  ")
		j.Claims = string(c)
	}
	if t.Err != "" {
		j.Note += "; " + t.Err
	}
	return append(js, j)
}

func headerList(h http.Header) []htmlKV {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []htmlKV
	for _, k := range names {
		for _, v := range h[k] {
			out = append(out, htmlKV{k, v})
		}
	}
	return out
}

// bodyText is a body as text to show (JSON indented, binary as a note) and
// a note on what was not recorded.
func bodyText(b []byte, size int64, truncated bool) (text, note string) {
	switch {
	case truncated:
		note = fmt.Sprintf("truncated: the first %d of %d bytes were recorded", len(b), size)
	case len(b) == 0 && size > 0:
		note = fmt.Sprintf("%d bytes, not recorded", size)
	}
	if len(b) == 0 {
		return "", note
	}
	if !utf8.Valid(b) {
		return "", strings.TrimPrefix(note+fmt.Sprintf("; %d bytes of binary data", len(b)), "; ")
	}
	var out bytes.Buffer
	if !truncated && json.Indent(&out, b, "", "  ") == nil {
		return out.String(), note
	}
	return string(b), note
}
