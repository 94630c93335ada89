package oauth

import (
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

// catalogue is the Tier-1 catalogue of spec/FINDINGS.md, in the order that breaks
// ties between findings on the same hop (causes before symptoms).
var catalogue = []ruleDef{
	// Discovery.
	{ID: mcptap.RuleDiscoveryNoChallenge, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "401 without a usable WWW-Authenticate challenge",
		Fix:      `Answer every unauthenticated MCP request with 401 and WWW-Authenticate: Bearer resource_metadata="<absolute URL of your /.well-known/oauth-protected-resource document>".`,
		Exchange: ruleNoChallenge},
	{ID: mcptap.RuleDiscoveryChallengeInternal, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "401 challenge points at an internal or other origin",
		Fix:      "Build resource_metadata from the public URL the client uses (the tunnel's https origin), not from the address the server listens on.",
		Exchange: ruleChallengeInternal},
	{ID: mcptap.RuleDiscoveryNotJSON, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "metadata document is not public JSON",
		Fix:      "Exempt /.well-known/* from authentication and login redirects, and serve the documents as application/json.",
		Exchange: ruleNotJSON},
	{ID: mcptap.RuleDiscoveryPRMPathFallback, Severity: mcptap.SevInfo, Fault: mcptap.FaultServer,
		Title:    "path-suffixed protected resource metadata 404, root document used",
		Fix:      "Optional: also serve /.well-known/oauth-protected-resource/<mcp path> with resource set to the full MCP URL, and point the 401 resource_metadata at it.",
		Exchange: rulePRMFallback},
	{ID: mcptap.RuleDiscoveryResourceMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "protected resource metadata names another resource",
		Fix:      "Set resource in the protected resource metadata to the exact MCP URL the client connects to (public https origin and path), built from configuration rather than from the Host header.",
		Exchange: ruleResourceMismatch},
	{ID: mcptap.RuleDiscoveryNoAuthorizationServers, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "no authorization server named by the protected resource",
		Fix:      "Serve /.well-known/oauth-protected-resource with authorization_servers listing your authorization server's issuer URL.",
		Exchange: ruleNoAuthServers, Session: sessionNoPRM},
	{ID: mcptap.RuleDiscoveryIssuerMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title:    "authorization server issuer differs from the advertised one",
		Fix:      "Make the issuer in the authorization server metadata byte-for-byte equal to the entry in authorization_servers (trailing slash included), and serve the metadata at the URL derived from that exact string.",
		Exchange: ruleIssuerMismatch},
	{ID: mcptap.RuleDiscoveryNoPKCES256, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title:    "authorization server does not advertise PKCE S256",
		Fix:      `Add "code_challenge_methods_supported": ["S256"] to the authorization server metadata (wrap the IdP's metadata if you cannot change it).`,
		Exchange: ruleNoS256},
	{ID: mcptap.RuleDiscoveryNoRegistration, Severity: mcptap.SevWarning, Fault: mcptap.FaultAuthServer,
		Title:    "no way for the client to register",
		Fix:      "Offer dynamic client registration (registration_endpoint) or client ID metadata documents (client_id_metadata_document_supported: true), or pre-register the client and configure its client ID.",
		Exchange: ruleNoRegistration},
	{ID: mcptap.RuleDiscoveryInternalOrigin, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "metadata points at an internal origin",
		Fix:      "Configure the public https origin (the tunnel's URL) explicitly for issuer, endpoints and resource; do not build them from the Host the local server sees.",
		Exchange: ruleInternalOrigin},
	// Registration.
	{ID: mcptap.RuleRegisterRejected, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title:    "client registration refused",
		Fix:      "Allow the client's redirect URIs at registration: loopback http on any port, and the vendor callbacks (ChatGPT connector/oauth/…, claude.ai and claude.com auth_callback).",
		Exchange: ruleRegisterRejected},
	{ID: mcptap.RuleClientUnknown, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title:    "authorization server does not know the client_id",
		Fix:      "Persist registered clients across restarts; answer unknown clients at the token endpoint with HTTP 401 invalid_client so clients re-register; or remove and re-add the connector.",
		Exchange: ruleClientUnknown},
	// Authorize.
	{ID: mcptap.RuleStateTooLong, Severity: mcptap.SevWarning, Fault: mcptap.FaultAuthServer,
		Title: "state too long for the authorization server",
		Fix:   "Accept state values of at least 2,048 characters and store them whole; never truncate state.",
		Flow:  ruleStateTooLong},
	{ID: mcptap.RuleAuthorizePKCEMissing, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "authorize request without PKCE S256",
		Fix:   "The client must send code_challenge with code_challenge_method=S256; the authorization server should reject plain or missing PKCE.",
		Flow:  rulePKCEMissing},
	{ID: mcptap.RuleAuthorizeResourceMissing, Severity: mcptap.SevWarning, Fault: mcptap.FaultClient,
		Title: "resource parameter missing (RFC 8707)",
		Fix:   "The client should send resource=<the protected resource metadata's resource> on both the authorize and the token request; servers that need it should say so in their error.",
		Flow:  ruleResourceMissing},
	{ID: mcptap.RuleAuthorizeResourceMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "authorize resource differs from the protected resource metadata",
		Fix:   "Make resource in the authorize request equal to the resource in the protected resource metadata, and register that exact value as the API audience at the authorization server.",
		Flow:  ruleAuthorizeResourceMismatch},
	{ID: mcptap.RuleAuthorizeRedirectURIUnregistered, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "redirect_uri not among the registered redirect URIs",
		Fix:   "Register the exact redirect_uri the client uses (re-register when its port changes), or allow loopback redirects on any port.",
		Flow:  ruleRedirectUnregistered},
	{ID: mcptap.RuleAuthorizeErrorNotRedirected, Severity: mcptap.SevWarning, Fault: mcptap.FaultAuthServer,
		Title: "authorization error shown as a page instead of redirected",
		Fix:   "When the client and redirect_uri are valid, redirect errors to redirect_uri with error, error_description and state (RFC 6749 §4.1.2.1), so the client can show them.",
		Flow:  ruleErrorNotRedirected},
	{ID: mcptap.RuleAuthorizeWrongRedirectTarget, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "code sent somewhere other than the requested redirect_uri",
		Fix:   "Redirect to exactly the redirect_uri of the authorize request (after validating it), not to the first registered one or to your own callback.",
		Flow:  ruleWrongRedirectTarget},
	{ID: mcptap.RuleAuthorizeErrorReturned, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "authorization server returned an error instead of a code",
		Fix:   "Read error_description and fix the setting it names on the side named.",
		Flow:  ruleErrorReturned},
	// State.
	{ID: mcptap.RuleStateNotEchoed, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "state not returned with the code",
		Fix:   "Copy the state parameter of the authorize request, unchanged, into every redirect back to the client (success and error), percent-encoded exactly once.",
		Flow:  ruleStateNotEchoed},
	{ID: mcptap.RuleStateAltered, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "state came back altered",
		Fix:   "Treat state as opaque bytes: store exactly what arrived and percent-encode it exactly once with a URL query encoder when redirecting back.",
		Flow:  ruleStateAltered},
	{ID: mcptap.RuleStateStale, Severity: mcptap.SevWarning, Fault: mcptap.FaultClient,
		Title: "callback carries the state of a replaced attempt",
		Fix:   "Start one Connect at a time and finish it in the same tab; close older login popups. Clients should keep a map from state to verifier instead of one slot.",
		Flow:  ruleStateStale},
	// Client callback.
	{ID: mcptap.RuleCallbackStateNotFound, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "client platform could not find its own OAuth state",
		Fix:   "Nothing on your server explains it: report it to the client platform with this evidence (state chain intact, one attempt, timings). Meanwhile retry once with a fresh Connect in a single tab.",
		Flow:  ruleCallbackStateNotFound},
	{ID: mcptap.RuleCallbackRejected, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "client callback rejected a well-formed code and state",
		Fix:   "Check that the authorization server redirects with GET (no response_mode=form_post) to the exact callback; if it does, report it to the client platform with this evidence.",
		Flow:  ruleCallbackRejected},
	// Token.
	{ID: mcptap.RuleTokenPKCEMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "code_verifier does not match the code_challenge",
		Fix:   "The client must send the verifier of the same attempt that issued the code (one verifier per state); the authorization server must store the challenge it received.",
		Flow:  rulePKCEMismatch},
	{ID: mcptap.RuleTokenRedirectURIMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "token request redirect_uri differs from the authorize request",
		Fix:   "Send the same redirect_uri (byte for byte, same port) in the token request as in the authorize request.",
		Flow:  ruleTokenRedirectMismatch},
	{ID: mcptap.RuleTokenCodeReused, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "authorization code redeemed twice",
		Fix:   "Redeem each code once; a callback page loaded twice or two client processes racing for one flow cause this.",
		Flow:  ruleCodeReused},
	{ID: mcptap.RuleTokenClientMismatch, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "token request client_id differs from the authorize request",
		Fix:   "Use the same client_id for authorize and token; several client instances sharing one flow overwrite each other's registration.",
		Flow:  ruleTokenClientMismatch},
	{ID: mcptap.RuleTokenInvalidGrant, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "token endpoint answered invalid_grant",
		Fix:   "Compare the authorization server's code store with this evidence: the code, verifier, redirect_uri and client all match, so the server lost or expired the code.",
		Flow:  ruleInvalidGrant},
	{ID: mcptap.RuleTokenInvalidClient, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "token endpoint answered invalid_client",
		Fix:   "Align token_endpoint_auth_method across the registration response, the metadata's token_endpoint_auth_methods_supported and the actual token request.",
		Flow:  ruleInvalidClient},
	{ID: mcptap.RuleTokenInvalidTarget, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "resource rejected or changed at the token endpoint",
		Fix:   "Register the protected resource metadata's resource URI as an API/audience at the authorization server, and send the same resource on authorize and token.",
		Flow:  ruleInvalidTarget},
	{ID: mcptap.RuleTokenBadResponse, Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer,
		Title: "token response is not a usable JSON token",
		Fix:   `Answer the token request with 200 application/json {"access_token": …, "token_type": "Bearer", "expires_in": <number>} and errors with 400 JSON.`,
		Flow:  ruleBadTokenResponse},
	{ID: mcptap.RuleTokenAudienceMismatch, Severity: mcptap.SevWarning, Fault: mcptap.FaultAuthServer,
		Title: "access token not issued for this resource",
		Fix:   "Copy the resource parameter into the token's aud claim (an access-token hook if the IdP cannot).",
		Flow:  ruleAudienceMismatch},
	{ID: mcptap.RuleTokenNeverCalled, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "code issued but never redeemed",
		Fix:   "Your side did its part: the code and state went back to the client. Report it to the client platform with this evidence (code issued, state intact, no token request).",
		Timed: ruleTokenNeverCalled},
	// The attempt as a whole (raised at Finish by incompleteFlows).
	{ID: mcptap.RuleFlowIncomplete, Severity: mcptap.SevWarning, Fault: mcptap.FaultUnknown,
		Title: "the attempt ended before it succeeded",
		Fix:   "Look at the last hop reached and at what the detail says would decide it; run the connector setup again with the browser proxy to see the client's side."},
	// MCP.
	{ID: mcptap.RuleMCPRedirect, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "MCP endpoint answered with a redirect",
		Fix:      "Serve MCP at the exact registered URL without redirects (trailing slash, http→https, apex→www); clients drop the Authorization header on redirects.",
		Exchange: ruleMCPRedirect},
	{ID: mcptap.RuleMCPForbidden, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "MCP request refused with 403",
		Fix:      "Find the check that refuses the request (Host allow-list, IP allow-list, WAF) and allow the client's traffic through it.",
		Exchange: ruleMCPForbidden},
	{ID: mcptap.RuleMCPBearerRejected, Severity: mcptap.SevError, Fault: mcptap.FaultServer,
		Title:    "MCP server rejected the token it just got",
		Fix:      "Validate the token against the canonical resource URL (aud), the issuer and JWKS of the authorization server that issued it.",
		Exchange: ruleBearerRejected},
	{ID: mcptap.RuleMCPBearerNeverSent, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "token issued but never used",
		Fix:   "Rule out redirects on the MCP URL and unreachable protected resource metadata first; then report to the client platform with this timeline.",
		Timed: ruleBearerNeverSent},
}

func ev(x *exInfo, field, want, got, note string) mcptap.Evidence {
	e := mcptap.Evidence{Field: field, Want: want, Got: got, Note: note}
	if x != nil {
		e.Exchange = x.id()
	}
	return e
}

func ids(xs ...*exInfo) []string {
	var out []string
	for _, x := range xs {
		if x != nil {
			out = append(out, x.id())
		}
	}
	return out
}

func showAbsent(s string, present bool) string {
	if !present {
		return "(absent)"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// ---- discovery ----

func ruleNoChallenge(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCPUnauthenticated || x.status() != 401 {
		return nil
	}
	hdrs := x.ex.RespHeader.Values("Www-Authenticate")
	chs, err := oauthex.ParseWWWAuthenticate(hdrs)
	for _, c := range chs {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return nil
		}
	}
	got := strings.Join(hdrs, ", ")
	note := "no WWW-Authenticate header"
	if got != "" {
		note = "no Bearer challenge with resource_metadata"
		if err != nil {
			note = "unparseable: " + err.Error()
		}
	}
	return []hit{{key: hostPortOf(x.url) + "|" + got,
		detail:   fmt.Sprintf("%s %s answered 401 without pointing to protected resource metadata (%s). Strict clients (Claude, Claude Code, C# SDK) stop here: \"Couldn't reach the MCP server\".", x.method(), x.base, note),
		evidence: []mcptap.Evidence{ev(x, "header.WWW-Authenticate", `Bearer resource_metadata="https://…/.well-known/oauth-protected-resource"`, showAbsent(got, got != ""), note)}}}
}

func isMetadata(x *exInfo) bool {
	return x.kind == mcptap.HopDiscoveryResource || x.kind == mcptap.HopDiscoveryAuth
}

func ruleNotJSON(t *Tracker, x *exInfo) []hit {
	if !isMetadata(x) || !t.complete(x) {
		return nil
	}
	s := x.status()
	ct := x.respH("Content-Type")
	var why string
	switch {
	case isRedirectStatus(s):
		why = fmt.Sprintf("redirect %d to %s (a login page?)", s, x.loc)
	case s == 401 || s == 403:
		why = fmt.Sprintf("%d: the document is behind authentication or a bot challenge", s)
	case s >= 200 && s < 300 && !isJSONBody(x.ex.RespBody) && x.respBodyUnrecorded():
		x.noteUnchecked(fmt.Sprintf("the body of %s was not recorded (cut or left out by the capture): its JSON was not checked", x.base))
		return nil
	case s >= 200 && s < 300 && !isJSONBody(x.ex.RespBody):
		why = fmt.Sprintf("%d %s that does not parse as JSON", s, orNone(ct))
	case s >= 200 && s < 300 && !strings.Contains(strings.ToLower(ct), "json"):
		why = fmt.Sprintf("JSON body served as %s", orNone(ct))
	default:
		return nil
	}
	return []hit{{key: x.key + "|" + why,
		detail:   fmt.Sprintf("GET %s: %s. Clients read this document to find the authorization server and give up when it is not JSON.", x.base, why),
		evidence: []mcptap.Evidence{ev(x, "header.Content-Type", "application/json", orNone(ct), fmt.Sprintf("status %d", s))}}}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

const prmWellKnown = "/.well-known/oauth-protected-resource"

func rulePRMFallback(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || pathOf(x.base) != prmWellKnown {
		return nil
	}
	// The first failing path-suffixed fetch on the host, kept as it was
	// learned: scanning every fetch of the host here made a session of many
	// attempts quadratic.
	if p := t.prmFail[hostPortOf(x.url)]; p != nil {
		if p.order < x.order {
			suffix := strings.TrimPrefix(pathOf(p.base), prmWellKnown)
			return []hit{{key: hostPortOf(x.url),
				exchanges: ids(p, x),
				detail: fmt.Sprintf("%s answered %d, then the root document answered 200 with resource %q. That is the spec's normal fallback; it only matters if that resource is not the MCP URL (%s%s).",
					p.base, p.status(), x.prm.Resource, originOf(x.url), suffix),
				evidence: []mcptap.Evidence{ev(p, "status", "200", fmt.Sprint(p.status()), "path-suffixed metadata"), ev(x, "body.resource", "", x.prm.Resource, "root metadata used instead")}}}
		}
	}
	return nil
}

func originOf(u string) string {
	scheme, _, _ := strings.Cut(u, "://")
	return strings.ToLower(scheme) + "://" + hostPortOf(u)
}

// mcpURLFor is the MCP endpoint the client used on a host, as far as seen.
func (t *Tracker) mcpURLFor(host string, before int) string {
	for _, f := range [][]*exInfo{t.pending} {
		for i := len(f) - 1; i >= 0; i-- {
			p := f[i]
			if p.kind == mcptap.HopMCPUnauthenticated && hostPortOf(p.url) == host && p.order < before {
				return p.base
			}
		}
	}
	for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
		for _, p := range t.flows[i].pre {
			if p.kind == mcptap.HopMCPUnauthenticated && hostPortOf(p.url) == host && p.order < before {
				return p.base
			}
		}
	}
	return ""
}

func canonURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	hp := hostPortOf(u)
	path := rest[min(len(rest), len(strings.SplitN(rest, "/", 2)[0])):]
	hp = strings.TrimSuffix(strings.TrimSuffix(hp, ":443"), ":80")
	if path == "" || path[0] == '?' {
		path = "/" + path // RFC 3986 §6.2.3: an empty path is "/"
	}
	return strings.ToLower(scheme) + "://" + hp + path
}

// schemeUnknown: a reverse-proxied request over plain http from a public
// host without X-Forwarded-Proto. The tunnel in front may well have spoken
// https with the client; mcptap cannot tell.
func schemeUnknown(x *exInfo) bool {
	return x.ex.Mode == mcptap.ModeReverse && strings.HasPrefix(x.url, "http://") &&
		x.reqH("X-Forwarded-Proto") == "" && !internalHost(x.url)
}

// sameURL compares a URL derived from the request (want) with one a
// document names (got), ignoring the scheme when the request's is unknown.
func sameURL(x *exInfo, want, got string) bool {
	if canonURL(want) == canonURL(got) {
		return true
	}
	if !schemeUnknown(x) {
		return false
	}
	_, w, _ := strings.Cut(canonURL(want), "://")
	_, g, _ := strings.Cut(canonURL(got), "://")
	return w == g && strings.HasPrefix(got, "https://")
}

func ruleResourceMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || x.prm.Resource == "" {
		return nil
	}
	p := pathOf(x.base)
	want := ""
	if len(p) > len(prmWellKnown) && strings.HasPrefix(p, prmWellKnown) {
		want = originOf(x.url) + strings.TrimPrefix(p, prmWellKnown)
	} else if m := t.mcpURLFor(hostPortOf(x.url), x.order); m != "" {
		want = m
	}
	got := x.prm.Resource
	if want != "" {
		if sameURL(x, want, got) {
			return nil
		}
	} else {
		want = originOf(x.url)
		if sameURL(x, want, originOf(got)) {
			return nil
		}
	}
	return []hit{{key: x.key + "|" + got,
		detail:   fmt.Sprintf("The protected resource metadata at %s says resource %q, but the client reached the server as %q. RFC 9728 §3.3: the client MUST NOT use this document (strict clients stop; others carry the wrong resource into the token audience).", x.base, got, want),
		evidence: []mcptap.Evidence{ev(x, "body.resource", want, got, "URL the client used vs resource in the document")}}}
}

func ruleNoAuthServers(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || len(x.prm.AuthorizationServers) > 0 {
		return nil
	}
	return []hit{{key: x.key,
		detail:   fmt.Sprintf("%s has no authorization_servers, so the client cannot find where to log in (ChatGPT treats this as \"no auth\").", x.base),
		evidence: []mcptap.Evidence{ev(x, "body.authorization_servers", `["https://<your issuer>"]`, "(absent or empty)", "")}}}
}

// sessionNoPRM fires at the end for hosts whose every protected resource
// metadata probe failed.
func sessionNoPRM(t *Tracker) []hit {
	var out []hit
	for _, x := range t.prms {
		h := hostPortOf(x.url)
		all := t.prmByHost[h]
		if all[0] != x {
			continue
		}
		ok := false
		for _, p := range all {
			ok = ok || (p.status() >= 200 && p.status() < 300)
		}
		if ok {
			continue
		}
		var got []string
		for _, p := range all {
			got = append(got, fmt.Sprintf("%s → %d", pathOf(p.base), p.status()))
		}
		out = append(out, hit{key: "no-prm|" + h, anchor: x.id(), exchanges: ids(all...),
			detail:   fmt.Sprintf("Every protected resource metadata probe on %s failed (%s). Without it the client cannot find the authorization server.", h, strings.Join(got, ", ")),
			evidence: []mcptap.Evidence{ev(x, "status", "200", strings.Join(got, ", "), "")}})
	}
	return out
}

// issuerFor is the issuer a metadata URL was built from (RFC 8414 §3.1 path
// insertion, or OIDC path appending).
func issuerFor(u string) string {
	o := originOf(u)
	p := pathOf(u)
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		if strings.HasPrefix(p, wk) {
			return o + strings.TrimPrefix(p, wk)
		}
		if i := strings.Index(p, wk); i > 0 {
			return o + p[:i]
		}
	}
	return o
}

// issuerClients says which clients refuse this difference, from their
// comparison code: the MCP Go SDK v1.8.0 (oauthex.GetAuthServerMeta via
// authutil.IssuersEqual) compares with one trailing slash trimmed from both
// sides; mcp-remote 0.15.1 (its bundled TypeScript SDK,
// discoverAuthorizationServerMetadata) accepts the issuer equal to the
// advertised entry, or equal to it without its trailing slash, and nothing
// else. RFC 8414 §3.3 itself wants them identical.
func issuerClients(want, got string) string {
	switch {
	case strings.TrimSuffix(want, "/") != strings.TrimSuffix(got, "/"):
		return "They differ beyond a trailing slash: every client that checks (RFC 8414 §3.3; the MCP Go SDK v1.8.0; mcp-remote 0.15.1) refuses the server."
	case strings.HasSuffix(want, "/"):
		return "They differ only by the advertised entry's trailing slash: the MCP Go SDK v1.8.0 and mcp-remote 0.15.1 accept this; clients that compare byte for byte as RFC 8414 §3.3 says refuse it (GitHub Copilot CLI was reported to: github/copilot-cli#4606)."
	default:
		return "The issuer has a trailing slash the advertised entry lacks: the MCP Go SDK v1.8.0 accepts this, mcp-remote 0.15.1 refuses it (it trims a slash only from the advertised entry), and so do clients that compare byte for byte as RFC 8414 §3.3 says."
	}
}

func ruleIssuerMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil {
		return nil
	}
	got := x.asm.Issuer
	var want string
	var from *exInfo
	// t.prms is in traffic order: start at the last one before x.
	last := sort.Search(len(t.prms), func(i int) bool { return t.prms[i].order > x.order })
	for i := last - 1; i >= 0 && i >= last-fuzzyWindow; i-- {
		p := t.prms[i]
		if p.prm == nil {
			continue
		}
		for _, as := range p.prm.AuthorizationServers {
			if as == got {
				return nil
			}
			if issuerFor(x.url) == strings.TrimSuffix(as, "/") || hostPortOf(as) == hostPortOf(x.url) {
				want, from = as, p
			}
		}
		if want != "" {
			break
		}
	}
	note := "entry in authorization_servers"
	if want == "" {
		want = issuerFor(x.url)
		note = "issuer implied by the metadata URL (RFC 8414 §3.3)"
		if got == want || (schemeUnknown(x) && strings.TrimPrefix(got, "https://") == strings.TrimPrefix(want, "http://")) {
			return nil
		}
	}
	return []hit{{key: x.key + "|" + got + "|" + want, exchanges: ids(from, x),
		detail:   fmt.Sprintf("The authorization server metadata at %s says issuer %q, but %q was expected (%s). %s", x.base, got, want, note, issuerClients(want, got)),
		evidence: []mcptap.Evidence{ev(x, "body.issuer", want, got, note)}}}
}

func ruleNoS256(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil {
		return nil
	}
	for _, m := range x.asm.CodeChallengeMethodsSupported {
		if m == "S256" {
			return nil
		}
	}
	got := strings.Join(x.asm.CodeChallengeMethodsSupported, ",")
	return []hit{{key: x.key + "|" + got,
		detail:   fmt.Sprintf("%s does not list S256 in code_challenge_methods_supported (%s). MCP clients MUST refuse such a server (common with Entra ID and Cognito OIDC documents).", x.base, orNone(got)),
		evidence: []mcptap.Evidence{ev(x, "body.code_challenge_methods_supported", `["S256"]`, showAbsent(got, got != ""), "")}}}
}

func ruleNoRegistration(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil || x.asm.RegistrationEndpoint != "" || x.asm.ClientIDMetadataDocumentSupported {
		return nil
	}
	return []hit{{key: x.key,
		detail:   fmt.Sprintf("%s has neither registration_endpoint nor client_id_metadata_document_supported: clients without a pre-configured client ID cannot register (\"does not support dynamic client registration\").", x.base),
		evidence: []mcptap.Evidence{ev(x, "body.registration_endpoint", "https://…/register", "(absent)", "client_id_metadata_document_supported also absent")}}}
}

func internalHost(u string) bool {
	h := strings.Trim(hostOf(u), "[]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".internal") || strings.HasSuffix(h, ".local") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast())
}

func ruleInternalOrigin(t *Tracker, x *exInfo) []hit {
	if !isMetadata(x) || (x.prm == nil && x.asm == nil) {
		return nil
	}
	if !strings.HasPrefix(strings.ToLower(x.url), "https://") || internalHost(x.url) {
		return nil
	}
	type field struct{ name, val string }
	var fs []field
	if x.prm != nil {
		fs = append(fs, field{"resource", x.prm.Resource})
		for _, a := range x.prm.AuthorizationServers {
			fs = append(fs, field{"authorization_servers", a})
		}
	}
	if x.asm != nil {
		fs = append(fs, field{"issuer", x.asm.Issuer}, field{"authorization_endpoint", x.asm.AuthorizationEndpoint},
			field{"token_endpoint", x.asm.TokenEndpoint}, field{"registration_endpoint", x.asm.RegistrationEndpoint})
	}
	for _, f := range fs {
		if f.val == "" {
			continue
		}
		if internalHost(f.val) || strings.HasPrefix(strings.ToLower(f.val), "http://") {
			fault := mcptap.FaultServer
			if x.asm != nil {
				fault = mcptap.FaultAuthServer
			}
			return []hit{{key: x.key + "|" + f.name + "|" + f.val, fault: fault,
				detail:   fmt.Sprintf("The client reached %s over public https, but the document's %s is %q: the client (in ChatGPT's or Claude's cloud) cannot reach that.", x.base, f.name, f.val),
				evidence: []mcptap.Evidence{ev(x, "body."+f.name, originOf(x.url)+"/…", f.val, "")}}}
		}
	}
	return nil
}

// ---- registration and clients ----

func ruleRegisterRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 400 || x.status() >= 500 || !t.complete(x) {
		return nil
	}
	var e oauthex.ClientRegistrationError
	m := jsonObject(x.ex.RespBody)
	e.ErrorCode, e.ErrorDescription = str(m, "error"), str(m, "error_description")
	var req oauthex.ClientRegistrationMetadata
	_ = jsonUnmarshal(x.ex.ReqBody, &req)
	refused := ""
	for _, u := range req.RedirectURIs {
		if strings.Contains(e.ErrorDescription, u) {
			refused = u
		}
	}
	got := strings.TrimSpace(e.ErrorCode + " " + e.ErrorDescription)
	if got == "" {
		got = fmt.Sprintf("%d %s", x.status(), truncate(string(x.ex.RespBody), 120))
	}
	d := fmt.Sprintf("Registration answered %d (%s). The client asked for redirect_uris %v.", x.status(), got, req.RedirectURIs)
	if refused != "" {
		d += fmt.Sprintf(" Refused URI: %s.", refused)
	}
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "body.redirect_uris", "accepted", strings.Join(req.RedirectURIs, " "), got)}}}
}

var unknownClientRE = regexp.MustCompile(`(?i)(unknown|unrecognized|unrecognised|no such)[ _-]?client|client[ _-]?(id )?(not found|unknown|does not exist|is not registered)`)

func ruleClientUnknown(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopAuthorize && x.kind != mcptap.HopToken) || x.status() < 400 || !t.complete(x) {
		return nil
	}
	body := string(x.ex.RespBody)
	if x.kind == mcptap.HopToken && !strings.Contains(body, "invalid_client") {
		return nil
	}
	if !unknownClientRE.MatchString(body) {
		return nil
	}
	cid := x.q.Get("client_id")
	if x.kind == mcptap.HopToken {
		cid = tokenClientID(x)
	}
	reg := "no registration of it was seen in this session"
	if r := t.regs[cid]; r != nil {
		reg = "it was registered at " + r.at().Format("15:04:05") + " in this session (the server forgot it: restart, in-memory store?)"
	}
	return []hit{{detail: fmt.Sprintf("The authorization server answered %d to client_id %q: %s. %s.", x.status(), cid, truncate(body, 160), reg),
		evidence: []mcptap.Evidence{ev(x, "query.client_id", "a registered client", cid, truncate(body, 160))}}}
}

// ---- authorize ----

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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func ruleErrorNotRedirected(t *Tracker, f *flow) []hit {
	for _, a := range f.authz {
		if a.status() < 400 || !t.complete(a) {
			continue
		}
		if unknownClientRE.MatchString(string(a.ex.RespBody)) || strings.Contains(strings.ToLower(string(a.ex.RespBody)), "redirect_uri") ||
			len(ruleRedirectUnregistered(t, f)) > 0 || len(ruleStateTooLong(t, f)) > 0 {
			continue // a page is right when the client or redirect_uri is invalid
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

// sameRedirectTarget: Location = redirect_uri plus the response parameters.
func sameRedirectTarget(loc, redirectURI string) bool {
	lb, lq := splitURL(loc)
	rb, rq := splitURL(redirectURI)
	if canonURL(lb) != canonURL(rb) {
		return false
	}
	have := ParseQuery(lq)
	for _, p := range ParseQuery(rq) {
		if have.Get(p.Key) != p.Value {
			return false
		}
	}
	return true
}

// ---- state ----

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

// ---- client callback ----

func isStateNotFound(x *exInfo) bool {
	return x.status() == 404 || strings.Contains(strings.ToLower(string(x.ex.RespBody)), "state not found")
}

// cause finds the earlier hop that explains a failure further down the
// chain: its fault side, title and rule (for hit.cause).
func (t *Tracker) cause(f *flow) (mcptap.Fault, string, mcptap.RuleID) {
	causes := []struct {
		rule  mcptap.RuleID
		check func(*Tracker, *flow) []hit
		fault mcptap.Fault
		title string
	}{
		{mcptap.RuleStateNotEchoed, ruleStateNotEchoed, mcptap.FaultAuthServer, "state not returned with the code"},
		{mcptap.RuleStateAltered, ruleStateAltered, mcptap.FaultAuthServer, "state came back altered"},
		{mcptap.RuleStateStale, ruleStateStale, mcptap.FaultClient, "callback carries the state of a replaced attempt"},
		{mcptap.RuleAuthorizeWrongRedirectTarget, ruleWrongRedirectTarget, mcptap.FaultAuthServer, "code sent somewhere other than the requested redirect_uri"},
	}
	for _, c := range causes {
		if hs := c.check(t, f); len(hs) > 0 {
			fault, title := c.fault, c.title
			if hs[0].fault != "" {
				fault = hs[0].fault
			}
			if hs[0].title != "" {
				title = hs[0].title
			}
			return fault, title, c.rule
		}
	}
	return "", "", ""
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
			fault, cause, rule := t.cause(f)
			h.fault, h.cause = fault, rule
			h.detail += " This is a consequence of an earlier hop: " + cause + "."
			h.fix = "Fix the earlier hop first (see the flow's verdict)."
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
		if ok, _ := chainIntact(f); !ok {
			fault, cause, rule := t.cause(f)
			h.fault, h.cause = fault, rule
			h.detail += " This is a consequence of an earlier hop: " + cause + "."
			h.fix = "Fix the earlier hop first (see the flow's verdict)."
		} else {
			h.detail += " The code and state it received were intact."
		}
		return []hit{h}
	}
	return nil
}

// ---- token ----

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

const pkceRedacted = "the verifier or the challenge is redacted in this recording"

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
		return []hit{h}
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
		return []hit{h}
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
	if !t.waitCode[f] {
		return nil
	}
	at, x := f.codeAt, f.codeEx
	handoff := at.IsZero()
	if handoff {
		at, x = f.handoffAt, f.handoffEx
	}
	if x == nil {
		t.unwait(t.waitCode, f)
		return nil
	}
	for _, tk := range f.tokens {
		if tk.form.Get("code") == f.code && f.code != "" {
			t.unwait(t.waitCode, f)
			return nil
		}
	}
	if !final && t.now.Sub(at) < t.opts.TokenTimeout {
		return nil
	}
	t.unwait(t.waitCode, f)
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
	if fault, cause, rule := t.cause(f); fault != "" {
		h.fault, h.cause = fault, rule
		h.detail += " An earlier hop explains it: " + cause + "."
		h.fix = "Fix the earlier hop first (see the flow's verdict)."
	} else {
		intact, checked := chainIntact(f)
		_ = intact
		h.detail += " Checked: " + strings.Join(checked, "; ") + ". The client received what it needs and no token request reached this proxy. Two sides can produce that absence: the client platform (it never sent it) or an edge in front of the tunnel (a WAF or bot rule that blocked it before it arrived). What decides it: the tunnel's own request log (ngrok's inspector, cloudflared's logs) shows whether the token request reached the edge; with the browser proxy, the client's own callback shows why it stopped."
	}
	h.evidence = []mcptap.Evidence{ev(x, "header.Location code", "a token request with this code", "none", "")}
	return []hit{h}
}

// ---- MCP ----

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
	h := hit{key: f.id, exchanges: ids(f.tokenOK, x),
		detail:   fmt.Sprintf("The token endpoint issued a token at %s; the MCP server answered 401 to it (%s).", f.tokenOKAt.Format("15:04:05"), orNone(x.respH("WWW-Authenticate"))),
		evidence: []mcptap.Evidence{ev(x, "status", "200", "401", x.respH("WWW-Authenticate"))}}
	if hs := ruleAudienceMismatch(t, f); len(hs) > 0 {
		h.fault = mcptap.FaultAuthServer
		h.detail += " The token's audience is wrong: " + hs[0].detail
	}
	return []hit{h}
}

func ruleBearerNeverSent(t *Tracker, f *flow, final bool) []hit {
	if !t.waitBearer[f] {
		return nil
	}
	if f.bearerSeen || f.tokenOK == nil {
		t.unwait(t.waitBearer, f)
		return nil
	}
	if !final && t.now.Sub(f.tokenOKAt) < t.opts.TokenTimeout {
		return nil
	}
	t.unwait(t.waitBearer, f)
	if !t.sawMCP {
		return nil // no MCP traffic captured at all: the MCP server is not behind this proxy
	}
	return []hit{{anchor: f.tokenOK.id(), key: f.tokenOK.id() + "|bearer",
		detail:   fmt.Sprintf("The token endpoint issued an access token at %s and no MCP request carried it afterwards. Two sides can produce that absence: the client (it never sent one) or an edge in front of the tunnel that blocked the authenticated call (Claude's backend sends it with another User-Agent, Claude-User, than its discovery; Cloudflare's AI-bot rule blocks that one). What decides it: the tunnel's request log for a blocked POST to the MCP URL, and a control client (MCP Inspector, curl) with the same token.", f.tokenOKAt.Format("15:04:05")),
		evidence: []mcptap.Evidence{ev(f.tokenOK, "header.Authorization", "Bearer <the issued token>", "never sent", "")}}}
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
