package oauth

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

func tokenClientID(x *exInfo) string {
	if c := x.form.Get("client_id"); c != "" {
		return c
	}
	if a := x.reqH("Authorization"); len(a) > 6 && strings.EqualFold(a[:6], "basic ") {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a[6:])); err == nil {
			id, _, _ := strings.Cut(string(b), ":")
			return unescape(id, true)
		}
	}
	return ""
}

func tokenAuthMethod(x *exInfo) string {
	switch {
	case x.form.Get("client_assertion") != "":
		return "private_key_jwt"
	case len(x.reqH("Authorization")) > 6 && strings.EqualFold(x.reqH("Authorization")[:6], "basic "):
		return "client_secret_basic"
	case x.form.Get("client_secret") != "":
		return "client_secret_post"
	}
	return "none"
}

func tokenError(x *exInfo) string {
	if x.status() < 400 {
		return ""
	}
	return str(jsonObject(x.ex.RespBody), "error")
}

// codeTokens lists authorization_code token requests of the flow.
func codeTokens(f *flow) []*exInfo {
	var out []*exInfo
	for _, tk := range f.tokens {
		if tk.form.Get("grant_type") == "authorization_code" || tk.form.Get("code") != "" {
			out = append(out, tk)
		}
	}
	return out
}

func pkceBad(f *flow, tk *exInfo) (bool, string) {
	c, got := pkceCheck(f, tk)
	if c.Result == mcptap.CheckNotChecked && c.Detail == pkceRedacted {
		tk.noteUnchecked("the PKCE verifier is redacted in this recording: the PKCE proof was not checked")
	}
	return c.Result == mcptap.CheckFailed, got
}

// pkceCheck compares a token request's code_verifier with the code_challenge
// of the outer authorize that issued the code (never the inner leg's, which
// an OAuth proxy makes with its own verifier). got is what the verifier
// gives (its S256, or itself for plain), for the evidence.
func pkceCheck(f *flow, tk *exInfo) (c mcptap.Check, got string) {
	c = mcptap.Check{Name: "pkce", Exchange: tk.id()}
	v, has := tk.form.Lookup("code_verifier")
	method := f.method
	if method == "" {
		method = "plain"
	}
	switch {
	case f.a == nil || f.challenge == "":
		c.Result, c.Detail = mcptap.CheckNotChecked, "no authorize with a code_challenge in this flow to compare with"
	case !has || v == "":
		c.Result, c.Detail = mcptap.CheckFailed, "the token request has no code_verifier; the authorize sent code_challenge "+f.challenge
		got = "(no code_verifier)"
	case isRedacted(v) || isRedacted(f.challenge):
		c.Result, c.Detail = mcptap.CheckNotChecked, pkceRedacted
	case pkceMatches(v, f.challenge, method):
		c.Result, c.Detail = mcptap.CheckPassed, "BASE64URL(SHA256(code_verifier)) = "+S256(v)+" matches the authorize's code_challenge (method "+method+")"
	default:
		got = v
		if method == "S256" {
			got = S256(v)
		}
		c.Result, c.Detail = mcptap.CheckFailed, "BASE64URL(SHA256(code_verifier)) = "+S256(v)+"; the authorize's code_challenge is "+f.challenge+" (method "+method+")"
	}
	return c, got
}

func rulePKCEMismatch(t *Tracker, f *flow) []hit {
	for _, tk := range codeTokens(f) {
		if bad, got := pkceBad(f, tk); bad {
			return []hit{{anchor: tk.id(), exchanges: ids(f.a, tk),
				detail: fmt.Sprintf("BASE64URL(SHA256(code_verifier)) = %s, but the authorize that issued this code sent code_challenge %s. The client sent the verifier of another attempt (several instances or attempts overwriting one stored verifier).", got, f.challenge),
				evidence: []mcptap.Evidence{ev(f.a, "query.code_challenge", f.challenge, "", "from the authorize"),
					ev(tk, "form.code_verifier (S256)", f.challenge, got, "")}}}
		}
	}
	return nil
}

func redirectBad(f *flow, tk *exInfo) bool {
	ru, has := tk.form.Lookup("redirect_uri")
	return f.a != nil && has && f.redirectURI != "" && ru != f.redirectURI
}

func ruleTokenRedirectMismatch(t *Tracker, f *flow) []hit {
	for _, tk := range codeTokens(f) {
		if redirectBad(f, tk) {
			got := tk.form.Get("redirect_uri")
			return []hit{{anchor: tk.id(), exchanges: ids(f.a, tk),
				detail:   fmt.Sprintf("The authorize used redirect_uri %q; the token request sends %q. The authorization server must refuse the code (invalid_grant).", f.redirectURI, got),
				evidence: []mcptap.Evidence{ev(tk, "form.redirect_uri", f.redirectURI, got, "")}}}
		}
	}
	return nil
}

// redeemed indexes a flow's code token requests once, so that asking, for
// each of them, whether its code was redeemed before is linear in the flow,
// not quadratic: it returns the earlier request (in the flow's order) that
// redeemed the same code successfully, or nil.
func redeemed(f *flow) func(tk *exInfo) *exInfo {
	tokens := codeTokens(f)
	first := make(map[string]int, len(tokens))
	pos := make(map[*exInfo]int, len(tokens))
	for i, o := range tokens {
		pos[o] = i
		if c := o.form.Get("code"); c != "" && o.status() < 400 {
			if _, ok := first[c]; !ok {
				first[c] = i
			}
		}
	}
	return func(tk *exInfo) *exInfo {
		c := tk.form.Get("code")
		if c == "" {
			return nil
		}
		i, ok := first[c]
		if p, in := pos[tk]; !ok || !in || i >= p {
			return nil
		}
		return tokens[i]
	}
}

func ruleCodeReused(t *Tracker, f *flow) []hit {
	before := redeemed(f)
	for _, tk := range codeTokens(f) {
		if o := before(tk); o != nil {
			return []hit{{anchor: tk.id(), exchanges: ids(o, tk),
				detail:   fmt.Sprintf("This code was already redeemed at %s (answer %d). A code is good for one token request.", o.at().Format("15:04:05.000"), o.status()),
				evidence: []mcptap.Evidence{ev(tk, "form.code", "a fresh code", "the code redeemed by "+o.id(), "")}}}
		}
	}
	return nil
}

func clientBad(f *flow, tk *exInfo) bool {
	c := tokenClientID(tk)
	return f.a != nil && c != "" && f.clientID != "" && c != f.clientID
}

func ruleTokenClientMismatch(t *Tracker, f *flow) []hit {
	for _, tk := range codeTokens(f) {
		if clientBad(f, tk) {
			return []hit{{anchor: tk.id(), exchanges: ids(f.a, tk),
				detail:   fmt.Sprintf("The code was issued to client %q; the token request authenticates as %q.", f.clientID, tokenClientID(tk)),
				evidence: []mcptap.Evidence{ev(tk, "form.client_id", f.clientID, tokenClientID(tk), "")}}}
		}
	}
	return nil
}

func ruleInvalidGrant(t *Tracker, f *flow) []hit {
	var before func(*exInfo) *exInfo
	for _, tk := range append(codeTokens(f), f.refreshes...) {
		if tokenError(tk) != "invalid_grant" {
			continue
		}
		if before == nil {
			before = redeemed(f)
		}
		if bad, _ := pkceBad(f, tk); bad || redirectBad(f, tk) || before(tk) != nil || clientBad(f, tk) {
			continue // a more precise rule explains it
		}
		h := hit{anchor: tk.id(), exchanges: ids(f.a, tk),
			evidence: []mcptap.Evidence{ev(tk, "body.error", "", "invalid_grant", truncate(string(tk.ex.RespBody), 120))}}
		switch {
		case tk.kind == mcptap.HopRefresh:
			h.fault = mcptap.FaultUnknown
			h.detail = "The refresh token was refused (revoked, rotated already, or expired). The client should start a new authorization; if it hangs instead, that is the client's bug."
		case f.a == nil:
			h.fault = mcptap.FaultUnknown
			h.detail = "The token endpoint refused the code, and the authorize that issued it was not captured, so PKCE, redirect_uri and client cannot be compared. Route the authorization server through mcptap (--route) to decide."
		default:
			age := tk.at().Sub(f.codeAt)
			h.detail = fmt.Sprintf("Checked and consistent: code_verifier matches code_challenge, redirect_uri and client_id equal the authorize's, the code was not redeemed before; it was %s old. So the authorization server lost or expired the code (in-memory store, several instances, code lifetime).", words(age))
		}
		return []hit{withVendorReading(h, tk)}
	}
	return nil
}

func ruleInvalidClient(t *Tracker, f *flow) []hit {
	for _, tk := range append(codeTokens(f), f.refreshes...) {
		if tokenError(tk) != "invalid_client" {
			continue
		}
		used := tokenAuthMethod(tk)
		cid := tokenClientID(tk)
		r := t.regs[cid]
		h := hit{anchor: tk.id(), exchanges: ids(r, tk)}
		switch {
		case r == nil:
			h.fault = mcptap.FaultUnknown
			h.detail = fmt.Sprintf("The token endpoint refused client %q (authenticated with %s). No registration of this client was captured, so the registered method is unknown; capture the registration (or check the AS's client settings) to decide.", cid, used)
			h.evidence = []mcptap.Evidence{ev(tk, "token_endpoint_auth_method", "(unknown)", used, "")}
		default:
			reg := r.reg.TokenEndpointAuthMethod
			if reg == "" {
				reg = "client_secret_basic"
			}
			h.evidence = []mcptap.Evidence{ev(tk, "token_endpoint_auth_method", reg, used, "registered vs used")}
			if reg == used {
				h.fault = mcptap.FaultAuthServer
				h.detail = fmt.Sprintf("The client authenticated with %s, which is what it registered, and was still refused: the authorization server forgot or mis-stored the client.", used)
			} else {
				h.detail = fmt.Sprintf("The client registered token_endpoint_auth_method %s but authenticated with %s.", reg, used)
			}
		}
		return []hit{withVendorReading(h, tk)}
	}
	return nil
}

func ruleInvalidTarget(t *Tracker, f *flow) []hit {
	for _, tk := range codeTokens(f) {
		if tokenError(tk) == "invalid_target" {
			return []hit{{anchor: tk.id(), exchanges: ids(f.a, tk),
				detail:   fmt.Sprintf("The token endpoint refused resource %q (invalid_target): it is not registered as an audience/API at the authorization server.", tk.form.Get("resource")),
				evidence: []mcptap.Evidence{ev(tk, "form.resource", "a registered audience", tk.form.Get("resource"), "invalid_target")}}}
		}
		got, has := tk.form.Lookup("resource")
		if has && f.hasResource && got != f.resource {
			return []hit{{anchor: tk.id(), exchanges: ids(f.a, tk), fault: mcptap.FaultClient,
				detail:   fmt.Sprintf("The authorize asked for resource %q; the token request asks for %q.", f.resource, got),
				evidence: []mcptap.Evidence{ev(tk, "form.resource", f.resource, got, "")}}}
		}
	}
	return nil
}

func ruleBadTokenResponse(t *Tracker, f *flow) []hit {
	for _, tk := range append(codeTokens(f), f.refreshes...) {
		if tk.status() != 200 || !t.complete(tk) {
			continue
		}
		ct := tk.respH("Content-Type")
		var why, want, got string
		switch {
		case tk.tokenResp == nil && tk.respBodyUnrecorded():
			tk.noteUnchecked("the token response body was not recorded (cut or left out by the capture): its shape was not checked")
			continue
		case tk.tokenResp == nil:
			why, want, got = "a body that is not JSON", "application/json", orNone(ct)+": "+truncate(string(tk.ex.RespBody), 60)
		case str(tk.tokenResp, "error") != "":
			why, want, got = "an error body", "status 400", "200 error="+str(tk.tokenResp, "error")
		case str(tk.tokenResp, "access_token") == "":
			why, want, got = "no access_token", "access_token", "(absent)"
		case str(tk.tokenResp, "token_type") == "":
			why, want, got = "no token_type", "token_type: Bearer", "(absent)"
		default:
			continue
		}
		return []hit{{anchor: tk.id(),
			detail:   fmt.Sprintf("The token response is 200 but has %s. Clients fail with \"Unexpected token\" or \"Unknown error\".", why),
			evidence: []mcptap.Evidence{ev(tk, "response", want, got, why)}}}
	}
	return nil
}

func ruleAudienceMismatch(t *Tracker, f *flow) []hit {
	tk := f.tokenOK
	if tk == nil || tk.tokenResp == nil {
		return nil
	}
	if tk.accessJWT == nil {
		d := DecodeJWT(str(tk.tokenResp, "access_token"))
		tk.accessJWT = &d
	}
	jt := *tk.accessJWT
	if jt.Kind != "jwt" {
		return nil
	}
	want, from := "", "protected resource metadata"
	if p := t.flowPRM(f); p != nil {
		want = p.prm.Resource
	} else if f.hasResource {
		want, from = f.resource, "authorize resource parameter (no protected resource metadata captured)"
	}
	aud := jt.Audience()
	if want == "" || contains(aud, want) {
		return nil
	}
	return []hit{{anchor: tk.id(),
		detail:   fmt.Sprintf("The access token's aud is %v; the resource is %q (%s). The MCP server must reject it.", aud, want, from),
		evidence: []mcptap.Evidence{ev(tk, "access_token.aud", want, strings.Join(aud, " "), from)}}}
}

func ruleTokenNeverCalled(t *Tracker, f *flow, final bool) []hit {
	if f.probed() {
		return nil // mcptap check never redeems the code it asked for
	}
	at, x := f.codeAt, f.codeEx
	handoff := at.IsZero() || x == nil
	if handoff {
		at, x = f.handoffAt, f.handoffEx
	}
	for _, tk := range f.tokens {
		if tk.form.Get("code") == f.code && f.code != "" {
			return nil
		}
	}
	for _, h := range f.hops {
		if (h.kind == mcptap.HopCallbackCompletion || h.kind == mcptap.HopCallback) && !h.inner && h.x.status() >= 400 {
			return nil // the client's callback failed: that finding explains it
		}
	}
	if !t.sawToken {
		browserSide := true
		for _, h := range f.hops {
			browserSide = browserSide && h.x.ex.Mode == mcptap.ModeForward
			// The client's own callback shows a browser-side capture; the
			// inner callback (the MCP server's /oauth/callback from an
			// upstream identity provider) is the server's, seen by the
			// reverse proxy, and says nothing of the kind (issue 12: it was
			// taken for the client's callback and the flow read ok).
			if !h.inner && (h.kind == mcptap.HopCallback || h.kind == mcptap.HopCallbackCompletion) {
				browserSide = true
				break
			}
		}
		if browserSide {
			// A browser-side capture: the token request goes from the client's
			// backend and is never visible here.
			return nil
		}
	}
	waited := t.now.Sub(at)
	h := hit{anchor: x.id(), key: x.id() + "|" + f.id, exchanges: ids(f.a, x)}
	if handoff {
		h.fault = mcptap.FaultUnknown
		h.title = "authorization handed to an external provider; no code came back"
		h.detail = fmt.Sprintf("The authorize was redirected to %s at %s and nothing came back within %s. The authorization happened at an external provider; run with the browser proxy to see the callback.", hostOf(x.loc), at.Format("15:04:05"), words(waited))
		h.evidence = []mcptap.Evidence{ev(x, "header.Location", "", x.loc, "handed to the upstream provider")}
		return []hit{h}
	}
	h.detail = fmt.Sprintf("A code was issued at %s (redirect to %s) and no token request for it arrived", at.Format("15:04:05"), x.locBase)
	if final && waited < t.opts.TokenTimeout {
		h.detail += fmt.Sprintf(" before the recording ended (%s later).", words(waited))
	} else {
		h.detail += fmt.Sprintf(" within %s.", words(t.opts.TokenTimeout))
	}
	{
		_, checked := chainIntact(f)
		h.aloneFrom = len(h.detail)
		h.detail += " Checked: " + strings.Join(checked, "; ") + ". The client received what it needs and no token request reached this proxy. Two sides can produce that absence: the client platform (it never sent it) or an edge in front of the tunnel (a WAF or bot rule that blocked it before it arrived). What decides it: the tunnel's own request log (ngrok's inspector, cloudflared's logs) shows whether the token request reached the edge; with the browser proxy, the client's own callback shows why it stopped."
	}
	h.evidence = []mcptap.Evidence{ev(x, "header.Location code", "a token request with this code", "none", "")}
	return []hit{h}
}

const pkceRedacted = "the verifier or the challenge is redacted in this recording"

func ruleTokenTransport(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopToken && x.kind != mcptap.HopRefresh) || !t.complete(x) {
		return nil
	}
	ct := strings.ToLower(x.reqH("Content-Type"))
	switch {
	case strings.Contains(ct, "json") && x.status() >= 400:
		return []hit{{key: x.key + "|json", fault: mcptap.FaultClient,
			detail:   fmt.Sprintf("The token request was sent as %s and answered %d. RFC 6749 §4.1.3 requires application/x-www-form-urlencoded.", x.reqH("Content-Type"), x.status()),
			evidence: []mcptap.Evidence{ev(x, "header.Content-Type", "application/x-www-form-urlencoded", x.reqH("Content-Type"), "")}}}
	case x.status() == 405:
		return []hit{{key: x.key + "|405", fault: mcptap.FaultAuthServer,
			detail:   fmt.Sprintf("The token endpoint answered %s %s with 405 Method Not Allowed (Allow: %s): the URL the metadata names does not take a POST (a wrong path, or a page served there).", x.method(), x.base, orNone(x.respH("Allow"))),
			evidence: []mcptap.Evidence{ev(x, "status", "200 (or 400 with a JSON error)", "405", x.respH("Allow"))}}}
	}
	return nil
}

// isAssertionGrant: a token request that needs no authorize (RFC 7523
// jwt-bearer, ID-JAG, client_credentials).
func isAssertionGrant(x *exInfo) bool {
	gt := x.form.Get("grant_type")
	return gt == "client_credentials" || gt == "urn:ietf:params:oauth:grant-type:jwt-bearer"
}

func ruleTokenNoRefresh(t *Tracker, f *flow) []hit {
	tk := f.tokenOK
	if tk == nil || tk.kind != mcptap.HopToken || isAssertionGrant(tk) || tk.tokenResp == nil || str(tk.tokenResp, "refresh_token") != "" {
		return nil
	}
	return []hit{{anchor: tk.id(), key: tk.id() + "|no-refresh",
		detail:   fmt.Sprintf("The token response has no refresh_token (expires_in %v): when the access token expires, the user has to connect again.", tk.tokenResp["expires_in"]),
		evidence: []mcptap.Evidence{ev(tk, "body.refresh_token", "a refresh token", "(absent)", "")}}}
}

// codeLifetime is the longest a code should live (RFC 6749 §4.1.2: "A
// maximum authorization code lifetime of 10 minutes is RECOMMENDED").
const codeLifetime = 10 * time.Minute

func ruleCodeExpired(t *Tracker, f *flow) []hit {
	if f.codeAt.IsZero() {
		return nil
	}
	for _, tk := range codeTokens(f) {
		age := tk.at().Sub(f.codeAt)
		if tk.form.Get("code") != f.code || tokenError(tk) != "invalid_grant" {
			continue
		}
		if said := codeExpiredSaid(tk); said != "" {
			// The authorization server says so: its lifetime, whatever it is.
			return []hit{{anchor: tk.id(), exchanges: ids(f.codeEx, tk),
				detail:   fmt.Sprintf("The code was issued at %s and redeemed %s later; the token endpoint refused it as expired (%s). Something held the code past the authorization server's lifetime for it: a login page left open, a slow client, a retry queue.", f.codeAt.Format("15:04:05"), words(age), truncate(said, 120)),
				evidence: []mcptap.Evidence{ev(tk, "error_description", "a token", truncate(said, 80), "redeemed "+words(age)+" after the code was issued")}}}
		}
		if age <= codeLifetime {
			continue
		}
		return []hit{{anchor: tk.id(), exchanges: ids(f.codeEx, tk),
			detail:   fmt.Sprintf("The code was issued at %s and redeemed %s later, past the usual lifetime of %s; the token endpoint answered invalid_grant. Something held the code: a login page left open, a slow client, a retry queue.", f.codeAt.Format("15:04:05"), words(age), words(codeLifetime)),
			evidence: []mcptap.Evidence{ev(tk, "age", "under "+words(codeLifetime), words(age), "")}}}
	}
	return nil
}

// codeExpiredRE is an error_description that says the code itself expired
// (not "invalid or expired", which is also a reused or unknown code).
var codeExpiredRE = regexp.MustCompile(`(?i)\bAADSTS70008\b|\bcode\b[^.]*\b(has|is) expired\b|\bexpired (authorization )?code\b`)

// codeExpiredSaid is the token error's error_description when it says the
// code expired ("" otherwise).
func codeExpiredSaid(tk *exInfo) string {
	desc := str(jsonObject(tk.ex.RespBody), "error_description")
	if desc == "" || strings.Contains(strings.ToLower(desc), "invalid or") || !codeExpiredRE.MatchString(desc) {
		return ""
	}
	return desc
}

func ruleEncryptedOrOpaque(t *Tracker, f *flow) []hit {
	if f.tokenOK == nil || f.access == "" {
		return nil
	}
	kind := DecodeJWT(f.access).Kind
	if kind == "jwt" {
		return nil
	}
	for _, m := range f.mcps {
		if m.status() != 401 || m.bearer != f.access {
			continue
		}
		d := fmt.Sprintf("The access token is %s, and the MCP server answered 401 to it (%s): the server expects a JWT it can validate.", map[string]string{"jwe": "encrypted (a JWE, five segments)", "opaque": "opaque (not a JWT)"}[kind], orNone(m.respH("WWW-Authenticate")))
		if strings.Contains(strings.ToLower(f.tokenOK.base), "auth0.com") {
			d += " Auth0 issues such tokens when the authorize has no audience: it ignores resource unless the tenant enables the Resource Parameter Compatibility Profile."
		}
		return []hit{{anchor: f.tokenOK.id(), exchanges: ids(f.tokenOK, m), detail: d,
			evidence: []mcptap.Evidence{ev(f.tokenOK, "access_token", "a JWT (three segments) for this resource", kind, "")}}}
	}
	return nil
}

func ruleClientAssertionInvalid(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopToken && x.kind != mcptap.HopRefresh) || x.form.Get("client_assertion") == "" || !t.complete(x) {
		return nil
	}
	jt := DecodeJWT(x.form.Get("client_assertion"))
	if jt.Kind != "jwt" || jt.Claims == nil {
		return nil
	}
	cid := x.form.Get("client_id")
	iss, sub := fmt.Sprint(jt.Claims["iss"]), fmt.Sprint(jt.Claims["sub"])
	if cid == "" {
		cid = iss
	}
	var why []string
	var evs []mcptap.Evidence
	if iss != cid || sub != cid {
		why = append(why, fmt.Sprintf("iss %q and sub %q must both be the client_id %q", iss, sub, cid))
		evs = append(evs, ev(x, "client_assertion.iss/sub", cid, iss+" / "+sub, ""))
	}
	aud := jt.Audience()
	okAud := contains(aud, x.base) || contains(aud, x.url)
	for _, a := range t.asms {
		if a.asm != nil && contains(aud, a.asm.Issuer) {
			okAud = true
		}
	}
	if !okAud {
		why = append(why, fmt.Sprintf("aud %v is neither the token endpoint %s nor the issuer", aud, x.base))
		evs = append(evs, ev(x, "client_assertion.aud", x.base, strings.Join(aud, " "), ""))
	}
	if exp, ok := jt.Time("exp"); ok && exp.Before(x.at()) {
		why = append(why, fmt.Sprintf("exp %s is before the request (%s)", exp.Format("15:04:05"), x.at().Format("15:04:05")))
		evs = append(evs, ev(x, "client_assertion.exp", "after "+x.at().Format("15:04:05"), exp.Format("15:04:05"), ""))
	}
	if len(why) == 0 {
		return nil
	}
	return []hit{{detail: "The private_key_jwt client assertion is not valid for this request: " + strings.Join(why, "; ") + fmt.Sprintf(". The token endpoint answered %d.", x.status()), evidence: evs}}
}

func ruleAssertionRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopToken || !isAssertionGrant(x) || x.status() < 400 || !t.complete(x) || isNonceChallenge(x) {
		return nil // a DPoP nonce challenge is the protocol, not a refusal (dpop.nonce-loop judges repeats)
	}
	gt := x.form.Get("grant_type")
	e := tokenError(x)
	d := fmt.Sprintf("The %s token request was refused: %d %s.", gt, x.status(), truncate(string(x.ex.RespBody), 120))
	fault := mcptap.FaultAuthServer
	var evs []mcptap.Evidence
	if a := x.form.Get("assertion"); a != "" {
		jt := DecodeJWT(a)
		if jt.Kind == "jwt" && jt.Claims != nil {
			aud := jt.Audience()
			var issuers []string
			for _, m := range t.asms {
				if m.asm != nil {
					issuers = append(issuers, m.asm.Issuer)
				}
			}
			audOK := len(issuers) == 0
			for _, i := range issuers {
				audOK = audOK || contains(aud, i)
			}
			if !audOK {
				d += fmt.Sprintf(" The assertion's aud %v is not this authorization server's issuer %v.", aud, issuers)
				evs = append(evs, ev(x, "assertion.aud", fmt.Sprint(issuers), fmt.Sprint(aud), ""))
				fault = mcptap.FaultClient
			}
			if c, ok := jt.Claims["client_id"].(string); ok && c != "" && x.form.Get("client_id") != "" && c != x.form.Get("client_id") {
				d += fmt.Sprintf(" Its client_id claim %q is not the authenticated client %q.", c, x.form.Get("client_id"))
				evs = append(evs, ev(x, "assertion.client_id", x.form.Get("client_id"), c, ""))
				fault = mcptap.FaultClient
			}
			if exp, ok := jt.Time("exp"); ok && exp.Before(x.at()) {
				d += fmt.Sprintf(" It expired at %s, before the request.", exp.Format("15:04:05"))
				evs = append(evs, ev(x, "assertion.exp", "after "+x.at().Format("15:04:05"), exp.Format("15:04:05"), ""))
				fault = mcptap.FaultClient
			}
			if r, ok := jt.Claims["resource"].(string); ok && x.form.Get("resource") != "" && r != x.form.Get("resource") {
				d += fmt.Sprintf(" Its resource claim %q differs from the request's resource %q.", r, x.form.Get("resource"))
				evs = append(evs, ev(x, "assertion.resource", x.form.Get("resource"), r, ""))
				fault = mcptap.FaultClient
			}
		} else if isRedacted(a) {
			d += " The assertion is redacted in this recording: its claims were not checked."
		}
	}
	if len(evs) == 0 {
		evs = append(evs, ev(x, "body.error", "an access token", orNone(e), ""))
		if e == "invalid_client" || e == "unauthorized_client" {
			d += " The claims that can be read are consistent: the authorization server does not accept this client for this grant (its policy or its trust in the identity provider)."
		}
	}
	return []hit{{fault: fault, detail: d, evidence: evs}}
}
