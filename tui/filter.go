package tui

import (
	"slices"
	"strconv"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// filterState is the / filter the lists apply, and the indexes that the
// client, rule and text terms need (built only while such a term is on).
type filterState struct {
	filter    string
	terms     []term
	unknown   []string            // keys the filter named that it does not know
	exFlowIdx map[string]int      // exchange → flow
	exRules   map[string][]string // exchange → rules of findings citing it
	exFaults  map[string][]string // exchange → fault sides of findings citing it
}

// setFilter parses a new filter and builds the indexes its terms need.
func (s *shared) setFilter(f string) {
	s.filter = f
	s.terms, s.unknown = parseFilter(f)
	s.exFlowIdx = nil
	s.exRules = nil
	s.exFaults = nil
	for _, t := range s.terms {
		if t.key == "client" || t.key == "rule" || t.key == "fault" || t.key == "text" {
			s.indexExchanges()
			break
		}
	}
}

// term is one word of the / filter: "key:value" with key one of filterKeys;
// a bare word is text. All terms must match.
type term struct{ key, val string }

// filterKeys are the keys the / filter knows, in the order the help names them.
var filterKeys = []string{"path", "status", "client", "rule", "fault", "text"}

// parseFilter splits a filter into terms. A word whose "key:" is no known key
// is searched as text, and its key is returned as unknown so the user hears
// of it (a URL's scheme is no key).
func parseFilter(s string) (ts []term, unknown []string) {
	for _, w := range strings.Fields(strings.ToLower(s)) {
		k, v, ok := strings.Cut(w, ":")
		switch {
		case ok && slices.Contains(filterKeys, k):
			ts = append(ts, term{k, v})
		default:
			if ok && k != "" && k != "http" && k != "https" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyz_-") == "" {
				unknown = append(unknown, k)
			}
			ts = append(ts, term{"text", w})
		}
	}
	return ts, unknown
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

// indexExchanges maps exchanges to their flow and rules for client/rule filters.
func (s *shared) indexExchanges() {
	s.exFlowIdx = map[string]int{}
	for i, f := range s.flows {
		for _, h := range f.Hops {
			s.exFlowIdx[h.Exchange] = i
		}
	}
	s.exRules = map[string][]string{}
	s.exFaults = map[string][]string{}
	for _, fd := range s.findings {
		for _, id := range fd.Exchanges {
			s.exRules[id] = append(s.exRules[id], string(fd.Rule))
			s.exFaults[id] = append(s.exFaults[id], string(fd.Fault))
		}
	}
}

func (s *shared) matchFlow(i int) bool {
	f := &s.flows[i]
	for _, t := range s.terms {
		ok := false
		switch t.key {
		case "path":
			for _, h := range f.Hops {
				if ex, found := s.exchange(h.Exchange); found && has(ex.Target, t.val) {
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
			ok = has(f.Client, t.val) || has(oauth.ClientName(f.Client), t.val)
		case "fault":
			ok = has(string(f.Verdict.Fault), t.val) || has(f.Verdict.Fault.Words(), t.val)
			for _, id := range f.Findings {
				if fd, found := s.finding(id); found && fd.Severity != mcptap.SevInfo && has(string(fd.Fault), t.val) {
					ok = true
				}
			}
		case "rule":
			ok = has(string(f.Verdict.Rule), t.val)
			for _, id := range f.Findings {
				if fd, found := s.finding(id); found && has(string(fd.Rule), t.val) {
					ok = true
				}
			}
		case "text":
			ok = has(f.Client, t.val) || has(oauth.ClientName(f.Client), t.val) || has(f.State, t.val) ||
				has(string(f.Verdict.Rule), t.val) || has(string(f.Verdict.Fault), t.val) || has(string(f.Status), t.val)
			for _, id := range f.Findings {
				if fd, found := s.finding(id); found && (has(string(fd.Rule), t.val) || has(fd.Title, t.val)) {
					ok = true
				}
			}
			for _, h := range f.Hops {
				if ex, found := s.exchange(h.Exchange); found && has(ex.Target, t.val) {
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

func (s *shared) matchExchange(i int) bool {
	if len(s.terms) == 0 {
		return true
	}
	head := s.tables.exchange(&s.exs[i]) // what the filter reads is in the row
	ex := &head
	for _, t := range s.terms {
		ok := false
		switch t.key {
		case "path":
			ok = has(ex.Target, t.val)
		case "status":
			ok = statusMatch(ex.Status, ex.Err, t.val)
		case "client":
			if fi, found := s.exFlowIdx[ex.ID]; found {
				f := s.flows[fi]
				ok = has(f.Client, t.val) || has(oauth.ClientName(f.Client), t.val)
			}
		case "rule":
			for _, r := range s.exRules[ex.ID] {
				ok = ok || has(r, t.val)
			}
		case "fault":
			for _, f := range s.exFaults[ex.ID] {
				ok = ok || has(f, t.val)
			}
		case "text":
			ok = has(ex.URL(), t.val) || has(ex.Method, t.val) || has(ex.Err, t.val) ||
				has(strconv.Itoa(ex.Status), t.val)
			if k, found := s.hop(ex.ID); found {
				ok = ok || has(string(k), t.val)
			}
			for _, r := range s.exRules[ex.ID] {
				ok = ok || has(r, t.val)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
