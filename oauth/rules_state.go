package oauth

import (
	"fmt"

	"github.com/mcptap/mcptap"
)

func ruleStateTooLong(t *Tracker, f *flow) []hit {
	if f.a == nil || len(f.state) <= bigStateChars {
		return nil
	}
	a := f.a
	if a.status() >= 400 && a.status() < 500 {
		return []hit{{anchor: a.id(),
			detail:   fmt.Sprintf("The authorize request carried a %d-character state and was refused with %d. RFC 6749 puts no bound on state; ChatGPT's relay states are over 500 characters.", len(f.state), a.status()),
			evidence: []mcptap.Evidence{ev(a, "query.state", "accepted at any length", fmt.Sprintf("%d characters → %d", len(f.state), a.status()), "")}}}
	}
	for _, r := range f.redirects {
		raw, _ := r.locQ.Raw("state")
		if compareState(f.stateRaw, raw) == AlterTruncated {
			got := unescape(raw, true)
			return []hit{{anchor: r.id(), exchanges: ids(a, r),
				detail:   fmt.Sprintf("The state sent was %d characters; the one echoed back is its first %d: the authorization server stores state in a column or field that is too short.", len(f.state), len(got)),
				evidence: []mcptap.Evidence{ev(r, "header.Location state length", fmt.Sprint(len(f.state)), fmt.Sprint(len(got)), "")}}}
		}
	}
	return nil
}

// stateHop is one place a returning state can be read.
type stateHop struct {
	x     *exInfo
	field string
	raw   string
	has   bool
	code  bool
}

// returns lists the hops of f that carry the authorization response back, in
// order: redirects, callbacks, callback completions.
func returns(f *flow) []stateHop {
	var out []stateHop
	for _, h := range f.hops {
		if h.inner {
			continue
		}
		var q Query
		field := ""
		switch {
		case h.kind == mcptap.HopRedirect:
			q, field = h.x.locQ, "header.Location"
		case h.kind == mcptap.HopCallback:
			q, field = h.x.q, "query"
		case h.kind == mcptap.HopCallbackCompletion:
			full := str(jsonObject(h.x.ex.ReqBody), "full_redirect_url")
			if full == "" {
				continue
			}
			_, rq := splitURL(full)
			q, field = ParseQuery(rq), "body.full_redirect_url"
		default:
			continue
		}
		raw, has := q.Raw("state")
		_, code := q.Lookup("code")
		out = append(out, stateHop{x: h.x, field: field, raw: raw, has: has, code: code})
	}
	return out
}

func ruleStateNotEchoed(t *Tracker, f *flow) []hit {
	if f.a == nil || f.state == "" {
		return nil
	}
	for _, r := range returns(f) {
		if r.raw != "" {
			continue
		}
		fault := mcptap.FaultAuthServer
		note := "the authorization server dropped it"
		if r.field != "header.Location" {
			if len(f.redirects) > 0 {
				fault, note = mcptap.FaultClient, "the redirect had it; the client lost it"
			} else {
				note = "the redirect itself was not captured; the callback has no state"
			}
		}
		return []hit{{anchor: r.x.id(), exchanges: ids(f.a, r.x), fault: fault,
			detail: fmt.Sprintf("The authorize request carried state=%s; the response that brought the code back has %s (%s). RFC 6749 §4.1.2 requires the exact state in the response. Clients refuse it (\"Missing state param in response from OAuth provider\", \"Invalid state\").",
				f.stateRaw, map[bool]string{false: "no state", true: "an empty state"}[r.has], note),
			evidence: []mcptap.Evidence{ev(f.a, "query.state", f.stateRaw, "", "sent"), ev(r.x, r.field+".state", f.stateRaw, showAbsent(r.raw, r.has), note)}}}
	}
	return nil
}

func ruleStateAltered(t *Tracker, f *flow) []hit {
	var out []hit
	if f.a != nil && f.stateRaw != "" {
		intactBefore := false // an earlier return hop carried the state unchanged
		for _, r := range returns(f) {
			if r.raw == "" {
				continue
			}
			how := compareState(f.stateRaw, r.raw)
			if how == "" {
				intactBefore = true
				continue
			}
			fault := mcptap.FaultAuthServer
			who := "The authorization server changed it before redirecting back"
			if intactBefore {
				fault, who = mcptap.FaultClient, "It was intact in the redirect; the client changed it afterwards"
			}
			if r.field != "header.Location" && !intactBefore && len(f.redirects) == 0 {
				who = "The redirect was not captured; the callback already carries the altered value"
			}
			out = append(out, hit{anchor: r.x.id(), exchanges: ids(f.a, r.x), fault: fault,
				title:  "state came back altered (" + how + ")",
				detail: fmt.Sprintf("The state sent and the state returned differ: %s. %s. The client cannot find its attempt (\"state does not match\", \"OAuth state not found\").", describeAlteration(how), who),
				evidence: []mcptap.Evidence{ev(f.a, "query.state", f.stateRaw, "", "sent (raw)"),
					ev(r.x, r.field+".state", f.stateRaw, r.raw, how)}})
			break
		}
	}
	if f.inner != nil && f.inner.stateRaw != "" {
		for _, cb := range f.inner.callbacks {
			raw, has := cb.q.Raw("state")
			if !has || raw == "" {
				continue
			}
			if how := compareState(f.inner.stateRaw, raw); how != "" {
				out = append(out, hit{anchor: cb.id(), exchanges: ids(f.inner.authorize, cb),
					title:    "upstream state came back altered (" + how + ")",
					detail:   fmt.Sprintf("On the inner leg to the upstream identity provider the state differs: %s. The server's own callback cannot match it.", describeAlteration(how)),
					evidence: []mcptap.Evidence{ev(cb, "query.state", f.inner.stateRaw, raw, how)}})
				break
			}
		}
	}
	return out
}

func describeAlteration(how string) string {
	switch how {
	case AlterPlusToSpace:
		return "'+' became a space (form decoding without re-encoding)"
	case AlterDoubleEncoded:
		return "the value was percent-encoded twice (%25 sequences)"
	case AlterPaddingStripped:
		return "base64 '=' padding was stripped"
	case AlterPaddingAdded:
		return "base64 '=' padding was added"
	case AlterTruncated:
		return "the value was truncated"
	case AlterBase64Alphabet:
		return "base64 was re-encoded in the other alphabet ('-_' vs '+/')"
	case AlterJSONReserialize:
		return "the JSON inside the base64 was decoded and re-serialized"
	case AlterCaseWhitespace:
		return "letter case or surrounding whitespace changed"
	}
	return "a different value came back"
}

func ruleStateStale(t *Tracker, f *flow) []hit {
	if f.a == nil || f.redirectURI == "" {
		return nil
	}
	b, _ := splitURL(f.redirectURI)
	g := t.byRedirect[b]
	if g == nil || g == f || g.a == nil || g.n < f.n {
		return nil
	}
	for _, r := range returns(f) {
		if r.x.at().After(g.a.at()) || r.x.order > g.a.order {
			return []hit{{anchor: r.x.id(), exchanges: ids(f.a, g.a, r.x),
				detail: fmt.Sprintf("This response carries the state of the attempt started at %s, but a newer authorize (started %s, state %s) replaced it. The client only remembers the newest attempt (Connect clicked twice, an old popup, a reconnect reusing an old link). If the user did not retry, the client started the second attempt itself.",
					f.a.at().Format("15:04:05"), g.a.at().Format("15:04:05"), g.stateRaw),
				evidence: []mcptap.Evidence{ev(r.x, r.field+".state", g.stateRaw, r.raw, "newest attempt's state vs the one returned")}}}
		}
	}
	return nil
}

// chainIntact reports whether the state came back byte-equal everywhere.
func chainIntact(f *flow) (bool, []string) {
	var checked []string
	if f.a == nil || f.stateRaw == "" {
		return true, []string{"no authorize captured: the state chain could not be checked (route the authorization server or the browser through mcptap)"}
	}
	ok := true
	for _, r := range returns(f) {
		how := compareState(f.stateRaw, r.raw)
		switch {
		case r.raw == "":
			ok = false
			checked = append(checked, r.field+": state missing")
		case how != "":
			ok = false
			checked = append(checked, r.field+": state "+how)
		default:
			checked = append(checked, r.field+": state identical")
		}
	}
	return ok, checked
}
