package oauth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

func rulePKCEMissing(t *Tracker, f *flow) []hit {
	if f.a == nil || (f.challenge != "" && f.method == "S256") {
		return nil
	}
	got := "no code_challenge"
	if f.challenge != "" {
		got = "code_challenge_method=" + showAbsent(f.method, f.method != "") + " (plain)"
	}
	accepted := isRedirectStatus(f.a.status()) || f.a.status() == 200
	return []hit{{anchor: f.a.id(), secondary: accepted,
		detail:   "The authorize request has " + got + ". MCP requires PKCE with S256; many authorization servers refuse the request, others accept it and lose the protection.",
		evidence: []mcptap.Evidence{ev(f.a, "query.code_challenge_method", "S256", got, "")}}}
}

func ruleResourceMissing(t *Tracker, f *flow) []hit {
	if f.a != nil && !f.hasResource {
		return []hit{{anchor: f.a.id(),
			detail:   "The authorize request has no resource parameter (RFC 8707; required by MCP since 2025-06-18). Authorization servers that scope tokens by audience (WorkOS, Cloudflare Access, Windmill) refuse it or mint a token for the wrong audience.",
			evidence: []mcptap.Evidence{ev(f.a, "query.resource", "the MCP server's resource URL", "(absent)", "")}}}
	}
	for _, tk := range f.tokens {
		if _, ok := tk.form.Lookup("resource"); !ok && f.hasResource {
			return []hit{{anchor: tk.id(),
				detail:   "The token request has no resource parameter although the authorize request had one.",
				evidence: []mcptap.Evidence{ev(tk, "form.resource", f.resource, "(absent)", "")}}}
		}
	}
	return nil
}

// flowPRM is the protected resource metadata that led to this flow, or the
// latest one seen on any host the flow touched.
func (t *Tracker) flowPRM(f *flow) *exInfo {
	for i := len(f.pre) - 1; i >= 0; i-- {
		if f.pre[i].prm != nil {
			return f.pre[i]
		}
	}
	if f.a != nil && f.hasResource {
		for _, p := range t.prmByHost[hostPortOf(f.resource)] {
			if p.prm != nil {
				return p
			}
		}
	}
	return nil
}

func ruleAuthorizeResourceMismatch(t *Tracker, f *flow) []hit {
	if f.a == nil || !f.hasResource {
		return nil
	}
	p := t.flowPRM(f)
	if p == nil || p.prm.Resource == "" || p.prm.Resource == f.resource {
		return nil
	}
	return []hit{{anchor: f.a.id(), exchanges: ids(p, f.a),
		detail:   fmt.Sprintf("The protected resource metadata says resource %q; the authorize request sent %q. The token will be minted for the wrong audience, or the authorization server answers invalid_target.", p.prm.Resource, f.resource),
		evidence: []mcptap.Evidence{ev(f.a, "query.resource", p.prm.Resource, f.resource, "protected resource metadata vs authorize")}}}
}

func ruleRedirectUnregistered(t *Tracker, f *flow) []hit {
	if f.a == nil || f.redirectURI == "" || f.clientID == "" {
		return nil
	}
	var list []string
	var from *exInfo
	fault := mcptap.FaultClient
	if r := t.regs[f.clientID]; r != nil && r.order < f.a.order {
		list, from = r.reg.RedirectURIs, r
		var req oauthex.ClientRegistrationMetadata
		_ = jsonUnmarshal(r.ex.ReqBody, &req)
		if contains(req.RedirectURIs, f.redirectURI) && !contains(list, f.redirectURI) {
			fault = mcptap.FaultAuthServer // the client asked for it; the server dropped it
		}
	} else if strings.HasPrefix(f.clientID, "https://") {
		for i := len(f.pre) - 1; i >= 0; i-- {
			if f.pre[i].url == f.clientID {
				var doc oauthex.ClientRegistrationMetadata
				if jsonUnmarshal(f.pre[i].ex.RespBody, &doc) == nil {
					list, from = doc.RedirectURIs, f.pre[i]
				}
			}
		}
	}
	if from == nil || contains(list, f.redirectURI) {
		return nil
	}
	if f.codeEx != nil && sameRedirectTarget(f.codeEx.loc, f.redirectURI) {
		// The authorization server issued a code to this redirect_uri: it
		// accepted it (RFC 8252 §7.3 makes loopback ports match any port).
		// A prediction the flow contradicts is no finding.
		return nil
	}
	return []hit{{anchor: f.a.id(), exchanges: ids(from, f.a), fault: fault,
		detail:   fmt.Sprintf("The authorize request uses redirect_uri %q, but client %q registered only %v. The authorization server will show an error page instead of logging in (port or path drift, localhost vs 127.0.0.1, claude.ai vs claude.com).", f.redirectURI, f.clientID, list),
		evidence: []mcptap.Evidence{ev(f.a, "query.redirect_uri", strings.Join(list, " "), f.redirectURI, "registered vs used")}}}
}

func ruleErrorNotRedirected(t *Tracker, f *flow) []hit {
	for _, a := range f.authz {
		if a.status() < 400 || !t.complete(a) {
			continue
		}
		if unknownClientRE.MatchString(string(a.ex.RespBody)) || strings.Contains(strings.ToLower(string(a.ex.RespBody)), "redirect_uri") {
			continue // a page is right when the client or redirect_uri is invalid (and see YieldsTo)
		}
		return []hit{{anchor: a.id(),
			detail:   fmt.Sprintf("The authorize request was answered %d %s with a page (%s) instead of a redirect to %s with error and state, so the client waits forever.", a.status(), orNone(a.respH("Content-Type")), truncate(string(a.ex.RespBody), 100), f.redirectURI),
			evidence: []mcptap.Evidence{ev(a, "status", "302 to redirect_uri?error=…&state=…", fmt.Sprint(a.status()), "")}}}
	}
	return nil
}

func ruleWrongRedirectTarget(t *Tracker, f *flow) []hit {
	if f.redirectURI == "" {
		return nil
	}
	for _, r := range f.redirects {
		if sameRedirectTarget(r.loc, f.redirectURI) {
			continue
		}
		return []hit{{anchor: r.id(), exchanges: ids(f.a, r),
			detail:   fmt.Sprintf("The authorize request asked to be sent back to %q; the code went to %q. The client never receives it.", f.redirectURI, r.locBase),
			evidence: []mcptap.Evidence{ev(r, "header.Location", f.redirectURI, r.locBase, "")}}}
	}
	return nil
}

// vendorErrors decode the vendor codes that appear in error_description,
// most specific first. Each reading names its source.
var vendorErrors = []vendorError{
	{"AADSTS9010010", "Entra ID v2: the resource parameter does not match the requested scopes (send scopes of that resource, or no resource)", mcptap.FaultClient, "anthropics/claude-code#73460; punkpeye/mcp-remote#217 (--disable-resource-parameter)"},
	{"AADSTS901002", "Entra ID: the resource parameter is not supported by this endpoint (v2 takes scopes, not resource)", mcptap.FaultClient, "modelcontextprotocol/csharp-sdk#741"},
	{"AADSTS650053", "Entra ID: a requested scope does not exist on the resource; on reconnect the scope lost its api:// prefix and resolved against Microsoft Graph", mcptap.FaultClient, "microsoft/powerbi-modeling-mcp#68"},
	{"AADSTS500011", "Entra ID: the resource principal was not found; the protected resource metadata's scopes_supported names the app's https URL instead of its api:// application ID URI", mcptap.FaultServer, "modelcontextprotocol/csharp-sdk#648"},
	{"AADSTS50011", "Entra ID: the redirect URI is not registered for the application", mcptap.FaultAuthServer, "Microsoft Entra error codes reference"},
	{"AADSTS700016", "Entra ID: the application (client_id) is not found in the tenant", mcptap.FaultAuthServer, "Microsoft Entra error codes reference"},
	{"AADSTS65001", "Entra ID: the user or an administrator has not consented to the application", mcptap.FaultUser, "Microsoft Entra error codes reference"},
	{"AADSTS", "Entra ID error (see the AADSTS code in error_description)", mcptap.FaultAuthServer, "Microsoft Entra error codes reference"},
	{"User is not assigned to the client application", "Okta: the user is not assigned to the application", mcptap.FaultAuthServer, "Okta error codes reference"},
	{"Service not found", "Auth0: the resource/audience is not registered as an API in the tenant", mcptap.FaultAuthServer, "Auth0 community reports; field-2026 A4"},
	{"request_forbidden", "Ory Hydra: the request was refused by the login or consent app", mcptap.FaultAuthServer, "Ory Hydra error reference"},
}

// oauthErrors read the RFC 6749 §4.1.2.1 codes when no vendor code decides.
var oauthErrors = map[string]vendorError{
	"access_denied":             {cause: "the user (or a policy) declined the authorization", fault: mcptap.FaultUser, source: "RFC 6749 §4.1.2.1"},
	"invalid_request":           {cause: "the authorization server refused a malformed or unsupported authorize request", fault: mcptap.FaultClient, source: "RFC 6749 §4.1.2.1"},
	"unauthorized_client":       {cause: "the client is not allowed this grant or redirect at the authorization server", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"},
	"unsupported_response_type": {cause: "the authorization server does not support response_type=code for this client", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"},
	"invalid_scope":             {cause: "a requested scope is unknown or not allowed", fault: mcptap.FaultClient, source: "RFC 6749 §4.1.2.1"},
	"invalid_target":            {cause: "the resource parameter names a resource the authorization server does not know", fault: mcptap.FaultAuthServer, source: "RFC 8707 §2"},
	"server_error":              {cause: "the authorization server failed internally", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"},
	"temporarily_unavailable":   {cause: "the authorization server is overloaded or down", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"},
	"login_required":            {cause: "the user has to log in (prompt=none was refused)", fault: mcptap.FaultUser, source: "OpenID Connect Core §3.1.2.6"},
	"consent_required":          {cause: "the user has to consent (prompt=none was refused)", fault: mcptap.FaultUser, source: "OpenID Connect Core §3.1.2.6"},
}

// explainAuthzError reads an error redirect's error and error_description.
func explainAuthzError(code, desc string) vendorError {
	for _, v := range vendorErrors {
		if strings.Contains(desc, v.match) || code == v.match {
			return v
		}
	}
	if e, ok := oauthErrors[code]; ok {
		return e
	}
	return vendorError{cause: "the authorization server returned an error the catalogue does not know", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"}
}

// ruleErrorReturned: the authorization response carries error (no code).
// The attempt failed there; nothing later can succeed.
func ruleErrorReturned(t *Tracker, f *flow) []hit {
	r, q, code := authzError(f)
	if r == nil {
		return nil
	}
	desc := q.Get("error_description")
	e := explainAuthzError(code, desc)
	detail := fmt.Sprintf("The authorization server sent the user back with error=%s", code)
	if desc != "" {
		detail += fmt.Sprintf(" (%s)", truncate(desc, 160))
	}
	detail += fmt.Sprintf(" and no code: %s. Source: %s.", e.cause, e.source)
	return []hit{{anchor: r.id(), exchanges: ids(f.a, r), fault: e.fault, detail: detail,
		fix:      "Read error_description: " + e.cause + ". Fix that setting on the side named, then connect again.",
		evidence: []mcptap.Evidence{ev(r, "query.error", "code=…", "error="+code, truncate(desc, 120))}}}
}

// authzError is the flow's authorization response that carries an error
// and no code (the redirect, or the callback page the browser proxy saw),
// its parameters and the error; r is nil when there is none.
func authzError(f *flow) (r *exInfo, q Query, code string) {
	for _, r := range append(append([]*exInfo(nil), f.redirects...), f.callbacks...) {
		q := r.locQ
		if r.kind == mcptap.HopCallback && !r.redirect {
			q = r.q // the callback page itself, seen by the browser proxy
		}
		code, ok := q.Lookup("error")
		if !ok {
			continue
		}
		if _, hasCode := q.Lookup("code"); hasCode {
			continue
		}
		return r, q, code
	}
	return nil, nil, ""
}

func ruleNoClientID(t *Tracker, f *flow) []hit {
	if f.a == nil {
		return nil
	}
	if _, ok := f.aq.Lookup("client_id"); ok {
		return nil
	}
	d := fmt.Sprintf("The authorize request %s carries no client_id; the authorization server cannot know which client asks.", f.a.base)
	for _, p := range f.pre {
		if p.kind == mcptap.HopRegister && p.status() >= 400 {
			d += fmt.Sprintf(" The registration before it failed (%d at %s): the client went on without a client_id.", p.status(), p.at().Format("15:04:05"))
		}
	}
	return []hit{{anchor: f.a.id(), detail: d, evidence: []mcptap.Evidence{ev(f.a, "query.client_id", "the registered client_id", "(absent)", "")}}}
}

// singleParams are the authorize parameters that must not repeat (RFC 6749
// §3.1); resource may (RFC 8707 §2).
var singleParams = []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"}

func ruleAuthorizeMalformed(t *Tracker, f *flow) []hit {
	if f.a == nil {
		return nil
	}
	var why []string
	var evs []mcptap.Evidence
	for _, p := range singleParams {
		if n := f.aq.Count(p); n > 1 {
			why = append(why, fmt.Sprintf("%s appears %d times", p, n))
			evs = append(evs, ev(f.a, "query."+p, "once", fmt.Sprintf("%d times", n), ""))
		}
	}
	if ru, ok := f.aq.Lookup("redirect_uri"); ok && ru != "" && !strings.Contains(ru, ":") {
		why = append(why, fmt.Sprintf("redirect_uri %q is not an absolute URI (an unencoded redirect_uri split into parameters?)", ru))
		evs = append(evs, ev(f.a, "query.redirect_uri", "an absolute, percent-encoded URI", ru, ""))
	}
	if len(why) == 0 {
		return nil
	}
	return []hit{{anchor: f.a.id(), key: f.a.id() + "|malformed", detail: "The authorize request is malformed: " + strings.Join(why, "; ") + ". Authorization servers refuse it or take the wrong value.", evidence: evs}}
}

// flowASM is the authorization server metadata of the attempt: the one
// whose authorization_endpoint the authorize went to.
func (t *Tracker) flowASM(f *flow) *exInfo {
	if f.a == nil {
		return nil
	}
	return t.asmByAuthEP[f.a.key]
}

func ruleAuthorizeIss(t *Tracker, f *flow) []hit {
	m := t.flowASM(f)
	if m == nil || !m.asm.AuthorizationResponseIssParameterSupported {
		return nil
	}
	for _, r := range f.redirects {
		if r.inner || r.redirInner {
			continue
		}
		if _, hasCode := r.locQ.Lookup("code"); !hasCode {
			continue
		}
		iss, ok := r.locQ.Lookup("iss")
		if ok && iss == m.asm.Issuer {
			continue
		}
		got := showAbsent(iss, ok)
		d := fmt.Sprintf("The metadata says authorization_response_iss_parameter_supported: true, and the redirect with the code carries iss %s instead of the issuer %q. Clients that check it (Codex, 2026-07-28 clients; compared as plain strings) refuse the response and never call the token endpoint.", got, m.asm.Issuer)
		return []hit{{anchor: r.id(), key: r.id() + "|iss", exchanges: ids(m, r), detail: d,
			evidence: []mcptap.Evidence{ev(r, "header.Location iss", m.asm.Issuer, got, "RFC 9207")}}}
	}
	return nil
}

// reachedToken: the client went on to the token endpoint.
func reachedToken(f *flow) bool { return len(f.tokens) > 0 || f.tokenOK != nil }

// codeIssued: the authorization server answered the authorize with a code.
func codeIssued(f *flow) bool { return f.code != "" || f.tokenOK != nil }

// sessionAuthorizeScope judges, once the recording ended, the attempts
// that stopped before a token without the server saying why: a scope the
// metadata does not list is a prediction that a flow which went on
// contradicts, so a live view does not raise it while a consent page is
// open. One the server refused with invalid_scope is judged as it happens
// (ruleScopeRefused); one it refused for another reason (the user
// declined, say) was not stopped by the scope.
func sessionAuthorizeScope(t *Tracker) []hit {
	var out []hit
	for _, f := range t.flows {
		if r, _, _ := authzError(f); r == nil {
			out = append(out, ruleAuthorizeScope(t, f)...)
		}
	}
	return out
}

// ruleScopeRefused: the authorization server sent the attempt back with
// invalid_scope, and the scope asked for is not offered: the cause of the
// error redirect (authorize.error-returned names it).
func ruleScopeRefused(t *Tracker, f *flow) []hit {
	if r, _, code := authzError(f); r == nil || code != "invalid_scope" {
		return nil
	}
	return ruleAuthorizeScope(t, f)
}

// ruleAuthorizeScope: an attempt that got no token asked for a scope that
// neither the authorization server nor the protected resource offers.
func ruleAuthorizeScope(t *Tracker, f *flow) []hit {
	if f.a == nil || f.tokenOK != nil {
		return nil // a token was issued: the scope was good enough for this flow
	}
	asked := f.aq.Get("scope")
	if asked == "" {
		return nil
	}
	var lists [][]string
	var from []string
	if m := t.flowASM(f); m != nil && len(m.asm.ScopesSupported) > 0 {
		lists, from = append(lists, m.asm.ScopesSupported), append(from, "the authorization server's scopes_supported")
	}
	if p := t.flowPRM(f); p != nil && len(p.prm.ScopesSupported) > 0 {
		lists, from = append(lists, p.prm.ScopesSupported), append(from, "the protected resource's scopes_supported")
	}
	if len(lists) == 0 {
		return nil
	}
	var unknown []string
	for _, s := range strings.Fields(asked) {
		known := false
		for _, l := range lists {
			known = known || contains(l, s)
		}
		if !known {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return []hit{{anchor: f.a.id(), key: f.a.id() + "|scope",
		detail:   fmt.Sprintf("The authorize asks for scope %q; %v are in neither %s, and the attempt went no further than the authorize.", asked, unknown, strings.Join(from, " nor ")),
		evidence: []mcptap.Evidence{ev(f.a, "query.scope", strings.Join(lists[0], " "), asked, "")}}}
}

func ruleRegisteredRedirectRefused(t *Tracker, f *flow) []hit {
	r := t.regs[f.clientID]
	if f.a == nil || r == nil || r.reg == nil || !contains(r.reg.RedirectURIs, f.redirectURI) {
		return nil
	}
	for _, a := range f.authz {
		body := strings.ToLower(string(a.ex.RespBody))
		if a.status() < 400 || !t.complete(a) || !strings.Contains(body, "redirect") {
			continue
		}
		return []hit{{anchor: a.id(), exchanges: ids(r, a),
			detail:   fmt.Sprintf("The registration at %s accepted and echoed redirect_uri %s, and the authorize with exactly that redirect_uri was answered %d (%s). The authorization server's two checks disagree.", r.at().Format("15:04:05"), f.redirectURI, a.status(), truncate(string(a.ex.RespBody), 100)),
			evidence: []mcptap.Evidence{ev(a, "query.redirect_uri", "accepted (registered)", f.redirectURI, truncate(string(a.ex.RespBody), 80))}}}
	}
	return nil
}

// challengedPRM is the protected resource metadata the attempt's 401
// challenge named, when it was fetched.
func (t *Tracker) challengedPRM(f *flow) *exInfo {
	for _, p := range f.pre {
		if p.kind != mcptap.HopMCPUnauthenticated {
			continue
		}
		u := resourceMetadataParam(p.ex.RespHeader.Values("WWW-Authenticate"))
		if u == "" {
			continue
		}
		for _, d := range t.prms {
			if d.prm != nil && canonURL(d.url) == canonURL(u) {
				return d
			}
		}
	}
	return nil
}

func ruleResourceFromWrongPRM(t *Tracker, f *flow) []hit {
	if f.a == nil || !f.hasResource {
		return nil
	}
	c := t.challengedPRM(f)
	if c == nil || c.prm.Resource == f.resource {
		return nil
	}
	for _, d := range t.prms {
		if d.prm != nil && d != c && d.prm.Resource == f.resource {
			return []hit{{anchor: f.a.id(), exchanges: ids(c, d, f.a),
				detail:   fmt.Sprintf("The 401 challenge named the protected resource metadata at %s (resource %q), but the authorize sends resource %q from another document (%s). The client must use the metadata the challenge points to.", c.url, c.prm.Resource, f.resource, d.url),
				evidence: []mcptap.Evidence{ev(f.a, "query.resource", c.prm.Resource, f.resource, "from "+d.url)}}}
		}
	}
	return nil
}

// formActionAllows says whether a CSP form-action source list lets a form on
// page send the browser on to target (CSP3 §6.3.2.3, enough of it).
func formActionAllows(sources []string, page, target string) bool {
	to := strings.ToLower(originOf(target))
	scheme, _, _ := strings.Cut(to, "://")
	for _, s := range sources {
		s = strings.ToLower(strings.Trim(s, " "))
		switch {
		case s == "'self'":
			if to == strings.ToLower(originOf(page)) {
				return true
			}
		case s == "*":
			return true
		case strings.HasSuffix(s, ":") && !strings.Contains(s, "/"):
			if strings.TrimSuffix(s, ":") == scheme {
				return true
			}
		case s == "'none'":
		default:
			host := s
			if _, rest, ok := strings.Cut(s, "://"); ok {
				host = rest
			}
			host, _, _ = strings.Cut(host, "/")
			th := strings.ToLower(hostPortOf(target))
			if host == th || (strings.HasPrefix(host, "*.") && strings.HasSuffix(th, host[1:])) {
				return true
			}
		}
	}
	return false
}

// sessionCSPBlocksRedirect judges, once the recording ended, the attempts
// that never came back from the consent page.
// ruleCSPBlocksRedirect (F-28): the consent page's form-action excludes
// the redirect target, and no callback and no token request followed.
// Chromium and Safari check form-action on every redirect of the form's
// submission, so the approval's 302 to the client (recorded when the
// authorization server is behind mcptap) goes nowhere; in Firefox, which
// does not, the callback comes and this says nothing. Judged at the end
// (or when token.never-called's wait ran out): a callback may still come.
func ruleCSPBlocksRedirect(t *Tracker, f *flow) []hit {
	if f.a == nil || len(f.callbacks) > 0 || f.tokenOK != nil || len(codeTokens(f)) > 0 || f.redirectURI == "" {
		return nil
	}
	for _, a := range f.authz {
		for _, csp := range a.ex.RespHeader.Values("Content-Security-Policy") {
			for _, dir := range strings.Split(csp, ";") {
				fields := strings.Fields(dir)
				if len(fields) == 0 || !strings.EqualFold(fields[0], "form-action") {
					continue
				}
				if formActionAllows(fields[1:], a.url, f.redirectURI) {
					continue
				}
				return []hit{{anchor: a.id(), key: a.id() + "|csp",
					detail:   fmt.Sprintf("The consent page's Content-Security-Policy says %q, which does not allow the redirect to %s: the browser refuses to follow the form's redirect, and no callback came.", strings.TrimSpace(dir), originOf(f.redirectURI)),
					evidence: []mcptap.Evidence{ev(a, "header.Content-Security-Policy", "form-action allowing "+originOf(f.redirectURI), strings.TrimSpace(dir), "")}}}
			}
		}
	}
	return nil
}

// sessionLostRE is how authorization servers say that the attempt being
// logged in to is gone (oidc-provider's SessionNotFound, "no pending
// authorization", expired interaction or login sessions).
var sessionLostRE = regexp.MustCompile(`(?i)(no|missing|lost|expired|unknown|invalid)\s+(pending\s+)?(authori[sz]ation|interaction|login|auth)\s+(request|session|transaction)|(interaction|login|authori[sz]ation)\s+session\s+(not found|expired|lost)|sessionnotfound|session (not found|expired)`)

// sessionLostLoops: this many loads of the same attempt's authorize without
// an answer is a loop back to the login.
const sessionLostLoops = 3

func ruleSessionLost(t *Tracker, f *flow) []hit {
	if f.a == nil || f.code != "" || len(f.redirects) > 0 {
		return nil
	}
	for _, a := range append(f.authz[:len(f.authz):len(f.authz)], f.interactions...) {
		if a.status() >= 400 && t.complete(a) && sessionLostRE.Match(a.ex.RespBody) {
			return []hit{{anchor: a.id(), key: f.id + "|session-lost",
				detail:   fmt.Sprintf("The authorization server answered %d %s: the pending authorization was lost between the authorize and the login (a session cookie that did not survive the login's redirects, an in-memory store behind several instances, a SameSite cookie dropped by the browser).", a.status(), truncate(string(a.ex.RespBody), 120)),
				evidence: []mcptap.Evidence{ev(a, "body", "the login continues the authorization", truncate(string(a.ex.RespBody), 80), "")}}}
		}
	}
	if len(f.authz) >= sessionLostLoops && f.hasState {
		last := f.authz[len(f.authz)-1]
		return []hit{{anchor: last.id(), key: f.id + "|session-lost",
			detail:   fmt.Sprintf("The same authorization (state unchanged) was loaded %d times without ever redirecting back with a code or an error: the login sends the user back to the start, so the pending authorization is lost across the login.", len(f.authz)),
			evidence: []mcptap.Evidence{ev(last, "authorize loads", "one, then a redirect to the client", fmt.Sprint(len(f.authz)), "")}}}
	}
	return nil
}
