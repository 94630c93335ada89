package oauth

import (
	"fmt"
	"strings"

	"github.com/mcptap/mcptap"
)

func isStateNotFound(x *exInfo) bool {
	return x.status() == 404 || strings.Contains(strings.ToLower(string(x.ex.RespBody)), "state not found")
}

func ruleCallbackStateNotFound(t *Tracker, f *flow) []hit {
	for _, c := range f.completions {
		if c.status() < 400 || !isStateNotFound(c) || !t.complete(c) {
			continue
		}
		intact, checked := chainIntact(f)
		rb, _ := splitURL(f.redirectURI)
		attempts := t.attempts[rb]
		detail := fmt.Sprintf("%s %s answered %d %s. Checked: %s; authorize attempts to this callback in the session: %d.",
			c.method(), c.base, c.status(), truncate(string(c.ex.RespBody), 80), strings.Join(checked, "; "), attempts)
		h := hit{anchor: c.id(), exchanges: ids(f.a, c), detail: detail,
			evidence: []mcptap.Evidence{ev(c, "status", "200", fmt.Sprint(c.status()), truncate(string(c.ex.RespBody), 80))}}
		if !intact {
			// The engine names the cause (CausedBy).
		} else if acc := accountMismatch(f, c); acc != "" {
			h.fault = mcptap.FaultUser
			h.detail += " " + acc
			h.exchanges = append(ids(f.links...), h.exchanges...)
			h.fix = "Finish the connection in the same browser, account and workspace that started it."
		} else if attempts > 1 {
			h.detail += " Several attempts were started; only the newest one's state is kept by ChatGPT."
		}
		if f.a == nil {
			h.fault = mcptap.FaultUnknown
		}
		return []hit{h}
	}
	return nil
}

// accountMismatch compares ChatGPT-Account-ID between the link initiation and
// the callback completion (reference §6, H3).
func accountMismatch(f *flow, c *exInfo) string {
	got := c.reqH("ChatGPT-Account-ID")
	if got == "" {
		return ""
	}
	// The link initiation is where the attempt started; then the hops.
	for _, l := range f.links {
		if w := l.reqH("ChatGPT-Account-ID"); w != "" && w != got {
			return fmt.Sprintf("The callback ran under ChatGPT account %s, the attempt started (link initiation %s) under %s.", got, l.id(), w)
		}
	}
	for _, h := range f.hops {
		if w := h.x.reqH("ChatGPT-Account-ID"); w != "" && w != got && h.x != c {
			return fmt.Sprintf("The callback ran under ChatGPT account %s, the attempt started under %s.", got, w)
		}
	}
	return ""
}

func ruleCallbackRejected(t *Tracker, f *flow) []hit {
	var xs []*exInfo
	for _, h := range f.hops {
		if h.inner {
			continue
		}
		if h.kind == mcptap.HopCallback && h.x.status() >= 400 {
			xs = append(xs, h.x)
		}
		if h.kind == mcptap.HopCallbackCompletion && h.x.status() >= 400 && !isStateNotFound(h.x) {
			xs = append(xs, h.x)
		}
	}
	for _, c := range xs {
		if !t.complete(c) {
			continue
		}
		h := hit{anchor: c.id(), exchanges: ids(f.a, c),
			detail:   fmt.Sprintf("The client's callback %s %s answered %d (%s).", c.method(), c.base, c.status(), truncate(string(c.ex.RespBody), 100)),
			evidence: []mcptap.Evidence{ev(c, "status", "2xx", fmt.Sprint(c.status()), truncate(string(c.ex.RespBody), 100))}}
		if c.status() == 405 {
			h.detail += " 405: the callback expects GET; check that the authorization server does not use response_mode=form_post."
		}
		if ok, _ := chainIntact(f); ok {
			h.detail += " The code and state it received were intact."
		}
		return []hit{h}
	}
	return nil
}

func ruleCallbackUnreachable(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopCallback || x.inner || !isLoopbackURL(x.url) || !x.ex.Complete || (x.ex.Err == "" && x.status() != 0) || x.statusUnrecorded() {
		return nil
	}
	return []hit{{key: x.key + "|unreachable",
		detail:   fmt.Sprintf("The browser was sent to the client's loopback callback %s and could not reach it (%s): the client that started the login is no longer listening there (it exited, timed out, or listens on another port or on localhost vs 127.0.0.1).", x.base, orNone(x.ex.Err)),
		evidence: []mcptap.Evidence{ev(x, "status", "the client's callback page", "connection failed", x.ex.Err)}}}
}

// expectsCompletion: a ChatGPT callback page, which posts the code and state
// to ChatGPT's backend (…/links/oauth/callback) when it loads.
func expectsCompletion(x *exInfo) bool {
	p := strings.ToLower(pathOf(x.base))
	return clientFromRedirect(x.base) == ClientChatGPT && (strings.HasPrefix(p, "/connector/oauth/") || p == "/connector_platform_oauth_redirect")
}

func ruleCallbackMissingData(t *Tracker, f *flow) []hit {
	if len(f.completions) > 0 {
		return nil
	}
	for _, c := range f.callbacks {
		if c.inner || !successful(c) || !expectsCompletion(c) {
			continue
		}
		return []hit{{anchor: c.id(), key: c.id() + "|missing-data", exchanges: ids(f.a, c),
			detail:   fmt.Sprintf("ChatGPT's callback page %s loaded (%d) with the code and state, and the page never posted them to ChatGPT's backend (…/links/oauth/callback) before the recording ended. A script blocker, a closed tab, or a page error stops it there.", c.base, c.status()),
			evidence: []mcptap.Evidence{ev(c, "callback completion", "POST …/links/oauth/callback", "none", "")}}}
	}
	return nil
}
