package tui

import (
	"strconv"
	"strings"
)

// term is one word of the / filter: "key:value" with key one of path,
// status, client, rule or text; a bare word is text. All terms must match.
type term struct{ key, val string }

func parseFilter(s string) []term {
	var ts []term
	for _, w := range strings.Fields(strings.ToLower(s)) {
		k, v, ok := strings.Cut(w, ":")
		switch {
		case ok && (k == "path" || k == "status" || k == "client" || k == "rule" || k == "text"):
			ts = append(ts, term{k, v})
		default:
			ts = append(ts, term{"text", w})
		}
	}
	return ts
}

func has(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// statusMatch accepts "404", "4xx", "4", "40", "error" (transport error).
func statusMatch(code int, errText, v string) bool {
	if v == "error" || v == "err" {
		return errText != ""
	}
	v = strings.TrimRight(v, "x")
	return v != "" && strings.HasPrefix(strconv.Itoa(code), v)
}

func (m *Model) applyFilter() {
	m.terms = parseFilter(m.filter)
	m.exFlowIdx = nil
	m.exRules = nil
	for _, t := range m.terms {
		if t.key == "client" || t.key == "rule" || t.key == "text" {
			m.indexExchanges()
			break
		}
	}
	m.flowRows = m.flowRows[:0]
	for i := range m.flows {
		if m.matchFlow(i) {
			m.flowRows = append(m.flowRows, i)
		}
	}
	m.trafRows = m.trafRows[:0]
	for i := range m.exs {
		if m.matchExchange(i) {
			m.trafRows = append(m.trafRows, i)
		}
	}
	m.fl, m.tl = list{}, list{}
	if m.follow {
		m.fl.cursor = m.newestPos(len(m.flowRows))
		m.tl.cursor = m.newestPos(len(m.trafRows))
	}
	if m.filter == "" {
		m.msg = "filter cleared"
	} else {
		m.msg = "filter: " + m.filter + " (esc clears)"
	}
}

// indexExchanges maps exchanges to their flow and rules for client/rule filters.
func (m *Model) indexExchanges() {
	m.exFlowIdx = map[string]int{}
	for i, f := range m.flows {
		for _, h := range f.Hops {
			m.exFlowIdx[h.Exchange] = i
		}
	}
	m.exRules = map[string][]string{}
	for _, fd := range m.findings {
		for _, id := range fd.Exchanges {
			m.exRules[id] = append(m.exRules[id], string(fd.Rule))
		}
	}
}

func (m *Model) matchFlow(i int) bool {
	f := &m.flows[i]
	for _, t := range m.terms {
		ok := false
		switch t.key {
		case "path":
			for _, h := range f.Hops {
				if ex, found := m.exchange(h.Exchange); found && has(ex.Target, t.val) {
					ok = true
					break
				}
			}
		case "status":
			ok = has(string(f.Status), t.val)
			for _, h := range f.Hops {
				ok = ok || statusMatch(h.Status, "", t.val)
			}
		case "client":
			ok = has(f.Client, t.val) || has(clientName(f.Client), t.val)
		case "rule":
			ok = has(string(f.Verdict.Rule), t.val)
			for _, id := range f.Findings {
				if fd, found := m.finding(id); found && has(string(fd.Rule), t.val) {
					ok = true
				}
			}
		case "text":
			ok = has(f.Client, t.val) || has(clientName(f.Client), t.val) || has(f.State, t.val) ||
				has(string(f.Verdict.Rule), t.val) || has(string(f.Verdict.Fault), t.val) || has(string(f.Status), t.val)
			for _, id := range f.Findings {
				if fd, found := m.finding(id); found && (has(string(fd.Rule), t.val) || has(fd.Title, t.val)) {
					ok = true
				}
			}
			for _, h := range f.Hops {
				if ex, found := m.exchange(h.Exchange); found && has(ex.Target, t.val) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (m *Model) matchExchange(i int) bool {
	ex := &m.exs[i]
	for _, t := range m.terms {
		ok := false
		switch t.key {
		case "path":
			ok = has(ex.Target, t.val)
		case "status":
			ok = statusMatch(ex.Status, ex.Err, t.val)
		case "client":
			if fi, found := m.exFlowIdx[ex.ID]; found {
				f := m.flows[fi]
				ok = has(f.Client, t.val) || has(clientName(f.Client), t.val)
			}
		case "rule":
			for _, r := range m.exRules[ex.ID] {
				ok = ok || has(r, t.val)
			}
		case "text":
			ok = has(ex.URL(), t.val) || has(ex.Method, t.val) || has(ex.Err, t.val) ||
				has(strconv.Itoa(ex.Status), t.val)
			if k, found := m.hop(ex.ID); found {
				ok = ok || has(string(k), t.val)
			}
			for _, r := range m.exRules[ex.ID] {
				ok = ok || has(r, t.val)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
