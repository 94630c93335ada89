package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/mcptap/mcptap"
)

func ruleMCPRedirect(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || !isRedirectStatus(x.status()) {
		return nil
	}
	return []hit{{key: x.key + "|" + x.loc,
		detail:   fmt.Sprintf("%s %s was answered %d to %s. Clients drop the Authorization header on a redirect (and may turn the POST into a GET).", x.method(), x.base, x.status(), x.loc),
		evidence: []mcptap.Evidence{ev(x, "status", "200", fmt.Sprintf("%d → %s", x.status(), x.loc), "")}}}
}

func ruleBearerRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.status() != 401 || x.flow == nil || x.flow.tokenOK == nil {
		return nil
	}
	f := x.flow
	for _, m := range f.mcps {
		if m.order < x.order && m.bearer == x.bearer && successful(m) {
			return nil // it worked before: expiry or revocation (mcp.reauth-ignored judges what follows)
		}
	}
	h := hit{key: f.id, exchanges: ids(f.tokenOK, x),
		detail:   fmt.Sprintf("The token endpoint issued a token at %s; the MCP server answered 401 to it (%s).", f.tokenOKAt.Format("15:04:05"), orNone(x.respH("WWW-Authenticate"))),
		evidence: []mcptap.Evidence{ev(x, "status", "200", "401", x.respH("WWW-Authenticate"))}}
	return []hit{h}
}

func ruleBearerNeverSent(t *Tracker, f *flow, final bool) []hit {
	if f.bearerSeen || f.tokenOK == nil {
		return nil
	}
	if !t.sawMCP {
		return nil // no MCP traffic captured at all: the MCP server is not behind this proxy
	}
	return []hit{{anchor: f.tokenOK.id(), key: f.tokenOK.id() + "|bearer",
		detail:   fmt.Sprintf("The token endpoint issued an access token at %s and no MCP request carried it afterwards. Two sides can produce that absence: the client (it never sent one) or an edge in front of the tunnel that blocked the authenticated call (Claude's backend sends it with another User-Agent, Claude-User, than its discovery; Cloudflare's AI-bot rule blocks that one). What decides it: the tunnel's request log for a blocked POST to the MCP URL, and a control client (MCP Inspector, curl) with the same token.", f.tokenOKAt.Format("15:04:05")),
		evidence: []mcptap.Evidence{ev(f.tokenOK, "header.Authorization", "Bearer <the issued token>", "never sent", "")}}}
}

// ruleMCPForbidden: an MCP request answered 403 that is not a step-up
// (insufficient_scope). The Go SDK's DNS-rebinding protection answers
// "Forbidden: invalid Host header" to a request that came through a tunnel
// (Host is the tunnel's) while the server listens on loopback.
func ruleMCPForbidden(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.status() != 403 || !t.complete(x) {
		return nil
	}
	if strings.Contains(strings.ToLower(x.respH("WWW-Authenticate")), "insufficient_scope") {
		return nil
	}
	body := truncate(string(x.ex.RespBody), 160)
	detail := fmt.Sprintf("%s %s was answered 403 (%s).", x.method(), x.base, orNone(body))
	fix := "Find the check that refuses the request (Host allow-list, IP allow-list, WAF) and allow the client's traffic through it."
	lower := strings.ToLower(body)
	switch {
	case strings.Contains(lower, "invalid host header") || strings.Contains(lower, "host header"):
		detail += " This is a Host check: the MCP Go SDK (and similar DNS-rebinding protections) refuses requests whose Host is not loopback when the server listens on loopback, which is every request through a tunnel."
		fix = "Disable the loopback-Host protection for this deployment (Go SDK: StreamableHTTPOptions.DisableLocalhostProtection) or allow the tunnel's host; or run mcptap with --host-header upstream so the server sees its own Host."
	case x.bearer == "":
		detail += " The request carried no bearer, so this is not an authorization decision on a token."
	default:
		detail += " The request carried the bearer the token endpoint issued."
	}
	return []hit{{key: x.key + "|403", detail: detail, fix: fix,
		evidence: []mcptap.Evidence{ev(x, "status", "200 (or 401 with a challenge)", "403", body)}}}
}

// rpcMethod is the JSON-RPC method of a request body ("" when it is none).
func rpcMethod(b []byte) string {
	if !isJSONRPC(b) {
		return ""
	}
	return str(jsonObject(b), "method")
}

// negotiated is the protocolVersion an initialize answer chose ("" when
// x is not an answered initialize). An SSE answer carries it in a data line.
func negotiated(x *exInfo) string {
	if !bytes.Contains(x.ex.ReqBody, []byte(`"initialize"`)) || rpcMethod(x.ex.ReqBody) != "initialize" || x.status() < 200 || x.status() >= 300 {
		return ""
	}
	res, _ := rpcAnswer(x.ex.RespBody)["result"].(map[string]any)
	return str(res, "protocolVersion")
}

// rpcAnswer is the JSON-RPC message of an MCP answer: the body, or the
// first data line of an SSE answer.
func rpcAnswer(b []byte) map[string]any {
	if i := strings.Index(string(b), "data:"); i >= 0 && !isJSONBody(b) {
		line, _, _ := strings.Cut(string(b[i+5:]), "\n")
		b = []byte(strings.TrimSpace(line))
	}
	return jsonObject(b)
}

// headerMismatch is the 2026-07-28 Streamable HTTP transport's refusal of
// a request whose Mcp-Method, Mcp-Name or MCP-Protocol-Version headers are
// missing or differ from its body (SEP-2243).
const headerMismatch = -32020

// rpcErrorNote says, for a flow that stopped at x, what x's JSON-RPC error
// answer was ("" when it has none); for a header mismatch it compares the
// request's mirror headers with its body, so the detail says which is off.
func rpcErrorNote(x *exInfo) string {
	e, _ := rpcAnswer(x.ex.RespBody)["error"].(map[string]any)
	n, _ := e["code"].(json.Number) // parseJSON keeps numbers as written
	code, err := n.Int64()
	if err != nil {
		return ""
	}
	note := fmt.Sprintf(" Its answer was JSON-RPC error %d %q.", code, str(e, "message"))
	if code != headerMismatch {
		return note
	}
	body := jsonObject(x.ex.ReqBody)
	params, _ := body["params"].(map[string]any)
	name := str(params, "name")
	if name == "" {
		name = str(params, "uri")
	}
	h := x.ex.ReqHeader
	note += fmt.Sprintf(" That is the 2026-07-28 transport's HeaderMismatch: the Mcp-Method, Mcp-Name and MCP-Protocol-Version headers must be present and equal the body's method and name (SEP-2243). This request sent Mcp-Method %s (body: %q) and Mcp-Name %s (body: %s): an MCP transport disagreement, not OAuth.",
		quoteOrMissing(h.Get("Mcp-Method")), str(body, "method"), quoteOrMissing(h.Get("Mcp-Name")), quoteOrMissing(name))
	return note
}

func quoteOrMissing(v string) string {
	if v == "" {
		return "(missing)"
	}
	return fmt.Sprintf("%q", v)
}

// notAcceptableBody: the transport's refusal of an Accept header, as the
// TypeScript SDK ("Not Acceptable: Client must accept both …") and the Go
// SDK ("Accept must contain both 'application/json' and 'text/event-stream'",
// with 400) word it.
func notAcceptableBody(b []byte) bool {
	l := bytes.ToLower(b)
	return bytes.Contains(l, []byte("not acceptable")) ||
		(bytes.Contains(l, []byte("accept must contain")) && bytes.Contains(l, []byte("text/event-stream")))
}

func ruleMCPNotAcceptable(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopMCP && x.kind != mcptap.HopMCPUnauthenticated) || !t.complete(x) {
		return nil
	}
	if x.status() != 406 && (x.status() < 400 || !notAcceptableBody(x.ex.RespBody)) {
		return nil
	}
	body := string(x.ex.RespBody)
	acc := x.reqH("Accept")
	return []hit{{key: x.key + "|406",
		detail:   fmt.Sprintf("%s %s was refused as not acceptable (%d %s). The request's Accept is %q; Streamable HTTP requires both application/json and text/event-stream on every POST. This is the MCP transport, not OAuth.", x.method(), x.base, x.status(), truncate(body, 100), acc),
		evidence: []mcptap.Evidence{ev(x, "header.Accept", "application/json, text/event-stream", showAbsent(acc, acc != ""), "")}}}
}

func ruleMCPProtocolVersionHeaderMissing(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.flow == nil || x.flow.version < "2025-06-18" || x.method() != "POST" || x.reqH("Mcp-Protocol-Version") != "" {
		return nil
	}
	init := x.flow.initialize
	if init == nil || init.order > x.order || (bytes.Contains(x.ex.ReqBody, []byte(`"initialize"`)) && rpcMethod(x.ex.ReqBody) == "initialize") {
		return nil
	}
	v := x.flow.version
	return []hit{{key: x.flow.id + "|protocol-version-header",
		exchanges: ids(init, x),
		detail:    fmt.Sprintf("initialize negotiated protocol version %s, and the later %s request carries no MCP-Protocol-Version header, which that version requires on every request. Gateways that enforce it (AgentCore) refuse the request.", v, orNone(rpcMethod(x.ex.ReqBody))),
		evidence:  []mcptap.Evidence{ev(x, "header.MCP-Protocol-Version", v, "(absent)", "")}}}
}

func ruleMCPLegacyProtocolAnswered(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.method() != "GET" || (x.status() != 405 && x.status() != 404) || !t.complete(x) {
		return nil
	}
	init := t.legacyInit[x.key]
	if init == nil || init.order > x.order {
		return nil
	}
	params, _ := jsonObject(init.ex.ReqBody)["params"].(map[string]any)
	asked := str(params, "protocolVersion")
	return []hit{{key: x.key + "|legacy", exchanges: ids(init, x),
		detail:   fmt.Sprintf("The client asked initialize for protocol version %s and the server answered %s, the old HTTP+SSE transport's version; the client then fell back to that transport (GET %s) and the server answered %d. ChatGPT shows \"No app actions available yet\".", asked, negotiated(init), x.base, x.status()),
		evidence: []mcptap.Evidence{ev(init, "result.protocolVersion", asked, negotiated(init), "")}}}
}

// isLegacyAnswer: an initialize answered with an older protocol version than
// the one asked for, that of the HTTP+SSE transport.
func isLegacyAnswer(x *exInfo) bool {
	v := negotiated(x)
	if v == "" {
		return false
	}
	params, _ := jsonObject(x.ex.ReqBody)["params"].(map[string]any)
	asked := str(params, "protocolVersion")
	return v < "2025-03-26" && asked > v
}

// isOpenInitialize: an initialize (or 2026-07-28 server/discover) answered
// 2xx without any token.
func isOpenInitialize(x *exInfo) bool {
	if x.kind != mcptap.HopMCP || x.bearer != "" || !successful(x) || x.ex.Mode == mcptap.ModeHAR { // a sanitized HAR strips Authorization: absence proves nothing there
		return false
	}
	m := rpcMethod(x.ex.ReqBody)
	return m == "initialize" || m == "server/discover"
}

func ruleLazyAuth(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCPUnauthenticated || x.status() != 401 || !t.complete(x) {
		return nil
	}
	open := t.openInit[x.key]
	if open == nil || open.order > x.order {
		return nil
	}
	m := rpcMethod(x.ex.ReqBody)
	return []hit{{key: x.key + "|lazy", exchanges: ids(open, x),
		detail:   fmt.Sprintf("%s was answered %d without a token, then %s on the same endpoint was answered 401. Clients start OAuth only when the first request is refused; a server that lets initialize through and refuses a later call leaves them connected without tools.", rpcMethod(open.ex.ReqBody), open.status(), orNone(m)),
		evidence: []mcptap.Evidence{ev(open, "status", "401 with a challenge", fmt.Sprint(open.status()), "initialize without a token")}}}
}

// insufficientScope is the scope a 403 insufficient_scope challenge asks
// for, and whether x is one.
func insufficientScope(x *exInfo) (string, bool) {
	if x.status() != 403 {
		return "", false
	}
	w := x.respH("WWW-Authenticate")
	if !strings.Contains(strings.ToLower(w), "insufficient_scope") {
		return "", false
	}
	return ChallengeParam(w, "scope"), true
}

// ChallengeParam reads one auth-param of a WWW-Authenticate challenge
// (resource_metadata, scope, error), quoted or not; "" when it is absent.
func ChallengeParam(h, name string) string {
	l := strings.ToLower(h)
	i := strings.Index(l, name+"=")
	for i > 0 && l[i-1] != ' ' && l[i-1] != ',' {
		j := strings.Index(l[i+1:], name+"=")
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	if i < 0 {
		return ""
	}
	v := h[i+len(name)+1:]
	if strings.HasPrefix(v, `"`) {
		v, _, _ = strings.Cut(v[1:], `"`)
		return v
	}
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

func scopeSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, v := range strings.Fields(s) {
		m[v] = true
	}
	return m
}

func ruleStepupByRefresh(t *Tracker, f *flow) []hit {
	for _, m := range f.mcps {
		want, ok := insufficientScope(m)
		if !ok || want == "" {
			continue
		}
		for _, r := range f.refreshes {
			if r.order < m.order {
				continue
			}
			got := scopeSet(r.form.Get("scope"))
			missing := false
			for s := range scopeSet(want) {
				missing = missing || !got[s]
			}
			if !missing {
				continue
			}
			for _, again := range f.mcps {
				if _, ok := insufficientScope(again); ok && again.order > r.order {
					return []hit{{anchor: r.id(), key: f.id + "|stepup-refresh", exchanges: ids(m, r, again),
						detail:   fmt.Sprintf("The server asked for scope %q (403 insufficient_scope); the client refreshed its token without that scope (scope %q) and was refused again. A refresh cannot widen a grant: step-up needs a new authorization with the union of the scopes.", want, r.form.Get("scope")),
						evidence: []mcptap.Evidence{ev(r, "form.scope", want, showAbsent(r.form.Get("scope"), r.form.Get("scope") != ""), "")}}}
				}
			}
		}
	}
	return nil
}

// stepupFrom finds the earlier attempt of the same client whose MCP call
// was refused for insufficient scope: f is its step-up.
func (t *Tracker) stepupFrom(f *flow) (*flow, *exInfo, string) {
	if f.a == nil || f.clientID == "" {
		return nil, nil, ""
	}
	refused := t.scopeRefused[f.clientID]
	for i := len(refused) - 1; i >= 0; i-- {
		g := refused[i]
		if g == f || g.n > f.n || g.a == nil || g.clientID != f.clientID {
			continue
		}
		for _, m := range g.mcps {
			if want, ok := insufficientScope(m); ok && m.order < f.a.order {
				return g, m, want
			}
		}
	}
	return nil, nil, ""
}

func ruleScopeNotAccumulated(t *Tracker, f *flow) []hit {
	g, m, want := t.stepupFrom(f)
	if g == nil {
		return nil
	}
	granted := scopeSet(g.aq.Get("scope"))
	asked := scopeSet(f.aq.Get("scope"))
	var dropped []string
	for s := range granted {
		if !asked[s] {
			dropped = append(dropped, s)
		}
	}
	if len(dropped) == 0 {
		return nil
	}
	sort.Strings(dropped)
	return []hit{{anchor: f.a.id(), key: f.id + "|scope-union", exchanges: ids(m, f.a),
		detail:   fmt.Sprintf("After a 403 asking for %q, the new authorize asks for scope %q, dropping %v that the earlier grant had. Step-up must ask for the union of the granted and the required scopes (SEP-2350); otherwise the next call needs the dropped scope and the client loops.", want, f.aq.Get("scope"), dropped),
		evidence: []mcptap.Evidence{ev(f.a, "query.scope", g.aq.Get("scope")+" "+want, f.aq.Get("scope"), "granted + required vs asked")}}}
}

// ruleScopeLoop hits every round of the loop, not only the newest: each
// round is an attempt that stopped at the same 403, and the loop is why.
func ruleScopeLoop(t *Tracker, f *flow) []hit {
	g, m, want := t.stepupFrom(f)
	if g == nil {
		return nil
	}
	// The rounds: attempts of this client with this scope, each started
	// after a 403 insufficient_scope.
	var rounds []*flow
	for _, h := range t.byClient[f.clientID] {
		if h.n > f.n || h.a == nil || h.clientID != f.clientID || h.aq.Get("scope") != f.aq.Get("scope") {
			continue
		}
		if p, _, _ := t.stepupFrom(h); p != nil {
			rounds = append(rounds, h)
		}
	}
	if len(rounds) < 2 {
		return nil
	}
	as := make([]*exInfo, len(rounds))
	for i, h := range rounds {
		as[i] = h.a
	}
	out := make([]hit, 0, len(rounds))
	for _, h := range rounds {
		out = append(out, hit{anchor: h.a.id(), key: h.id + "|scope-loop", exchanges: append(ids(m), ids(as...)...),
			detail:   fmt.Sprintf("The server refused the token with 403 insufficient_scope (asking for %q) and the client authorized again with the same scope %q, %d times: the loop does not end. The authorization server grants less than the server requires, or the server asks for a scope the client cannot get.", want, f.aq.Get("scope"), len(rounds)),
			evidence: []mcptap.Evidence{ev(h.a, "query.scope", want, f.aq.Get("scope"), fmt.Sprintf("%d rounds", len(rounds)))}})
	}
	return out
}

func sessionReauthIgnored(t *Tracker) []hit {
	var out []hit
	// The last refresh, token request or authorize of each client (and of
	// the session, for a flow whose client is not known): a 401 before it
	// was answered by one. Found once, not per flow; another client's
	// renewal answers nothing.
	lastRenew, lastRenewOf := -1, map[string]int{}
	for _, x := range t.list {
		var cid string
		switch x.kind {
		case mcptap.HopRefresh, mcptap.HopToken:
			cid = tokenClientID(x)
		case mcptap.HopAuthorize:
			cid = x.q.Get("client_id")
		default:
			continue
		}
		lastRenew = max(lastRenew, x.order)
		if cid != "" {
			lastRenewOf[cid] = max(lastRenewOf[cid], x.order)
		}
	}
	for _, f := range t.flows {
		var ok, refused *exInfo
		for _, m := range f.mcps {
			if m.bearer == "" {
				continue
			}
			if successful(m) && refused == nil {
				ok = m
			}
			if m.status() == 401 && ok != nil && m.bearer == ok.bearer && refused == nil {
				refused = m
			}
		}
		if refused == nil {
			continue
		}
		renewed := lastRenew
		if f.clientID != "" {
			renewed = lastRenewOf[f.clientID]
		}
		if renewed > refused.order {
			continue
		}
		out = append(out, hit{anchor: refused.id(), key: f.id + "|reauth", exchanges: ids(ok, refused),
			detail:   fmt.Sprintf("The token worked (%s at %s), then the server refused it with 401 (%s) and the client neither refreshed nor authorized again before the recording ended: the connection is dead until someone clicks Connect.", orNone(rpcMethod(ok.ex.ReqBody)), ok.at().Format("15:04:05"), orNone(refused.respH("WWW-Authenticate"))),
			evidence: []mcptap.Evidence{ev(refused, "status", "a refresh or a new authorize after the 401", "nothing", "")}})
	}
	return out
}
