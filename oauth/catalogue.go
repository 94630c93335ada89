package oauth

import (
	"strings"

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
		Flow:  ruleErrorNotRedirected, YieldsTo: []mcptap.RuleID{mcptap.RuleAuthorizeRedirectURIUnregistered, mcptap.RuleStateTooLong}},
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
		Flow:  ruleCallbackStateNotFound, CausedBy: brokenChain},
	{ID: mcptap.RuleCallbackRejected, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "client callback rejected a well-formed code and state",
		Fix:   "Check that the authorization server redirects with GET (no response_mode=form_post) to the exact callback; if it does, report it to the client platform with this evidence.",
		Flow:  ruleCallbackRejected, CausedBy: brokenChain},
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
		Timed: ruleTokenNeverCalled, Awaits: awaitToken, CausedBy: brokenChain},
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
		Exchange: ruleBearerRejected, SidedBy: []mcptap.RuleID{mcptap.RuleTokenAudienceMismatch}},
	{ID: mcptap.RuleMCPBearerNeverSent, Severity: mcptap.SevError, Fault: mcptap.FaultClient,
		Title: "token issued but never used",
		Fix:   "Rule out redirects on the MCP URL and unreachable protected resource metadata first; then report to the client platform with this timeline.",
		Timed: ruleBearerNeverSent, Awaits: awaitBearer},
}

// brokenChain are the hops that break the code's way back to the client:
// the cause of any failure further down (callback, token).
var brokenChain = []mcptap.RuleID{
	mcptap.RuleStateNotEchoed, mcptap.RuleStateAltered, mcptap.RuleStateStale, mcptap.RuleAuthorizeWrongRedirectTarget,
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

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
