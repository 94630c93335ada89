package oauth

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// authzError is what an authorization error code says: the cause in the
// user's terms, the side that produces it, and where that reading comes from.
type authzError struct {
	prefix string // matched against error_description (vendor codes) or error
	cause  string
	fault  mcptap.Fault
	source string
}

// vendorErrors decode the vendor codes that appear in error_description,
// most specific first. Each reading names its source.
var vendorErrors = []authzError{
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
var oauthErrors = map[string]authzError{
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
func explainAuthzError(code, desc string) authzError {
	for _, v := range vendorErrors {
		if strings.Contains(desc, v.prefix) || code == v.prefix {
			return v
		}
	}
	if e, ok := oauthErrors[code]; ok {
		return e
	}
	return authzError{cause: "the authorization server returned an error the catalogue does not know", fault: mcptap.FaultAuthServer, source: "RFC 6749 §4.1.2.1"}
}

// ruleErrorReturned: the authorization response carries error (no code).
// The attempt failed there; nothing later can succeed.
func ruleErrorReturned(t *Tracker, f *flow) []hit {
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
	return nil
}

// ruleMCPForbidden: an MCP request answered 403 that is not a step-up
// (insufficient_scope). The Go SDK's DNS-rebinding protection answers
// "Forbidden: invalid Host header" to a request that came through a tunnel
// (Host is the tunnel's) while the server listens on loopback.
func ruleMCPForbidden(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.status() != 403 || !t.complete(x) {
		return nil
	}
	if strings.Contains(strings.ToLower(x.respH("WWW-Authenticate")), "insufficient_scope") || isEdgeResponse(x) {
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

// isEdgeResponse says the answer was produced by an edge in front of the
// server (Cloudflare and similar), not by the server itself.
func isEdgeResponse(x *exInfo) bool {
	h := x.ex.RespHeader
	return h.Get("Cf-Mitigated") != "" || (strings.EqualFold(h.Get("Server"), "cloudflare") && h.Get("Cf-Ray") != "" && x.status() == 403 &&
		strings.Contains(strings.ToLower(h.Get("Content-Type")), "text/html"))
}

// ruleChallengeInternal: the 401's resource_metadata names an origin the
// client cannot reach (loopback, a private address, plain http while the
// client came over https) or another host than the one the client used.
// BASE_URL left at localhost behind a tunnel is the usual cause.
func ruleChallengeInternal(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCPUnauthenticated || x.status() != 401 {
		return nil
	}
	rm := resourceMetadataParam(x.ex.RespHeader.Values("Www-Authenticate"))
	if rm == "" {
		return nil
	}
	u, err := url.Parse(rm)
	if err != nil || u.Host == "" {
		return nil
	}
	cu, err := url.Parse(x.url)
	if err != nil {
		return nil
	}
	host := u.Hostname()
	var why string
	switch {
	case isInternalHost(host) && !isInternalHost(cu.Hostname()):
		why = fmt.Sprintf("it names %s, an address only the server's own machine or network can reach", u.Host)
	case u.Scheme == "http" && cu.Scheme == "https":
		why = "it is plain http while the client came over https"
	case !strings.EqualFold(u.Host, cu.Host):
		why = fmt.Sprintf("it names %s while the client connected to %s", u.Host, cu.Host)
	default:
		return nil
	}
	return []hit{{key: x.key + "|" + rm,
		detail:   fmt.Sprintf("The 401 challenge's resource_metadata is %q: %s. The client cannot fetch the protected resource metadata from there and stops before discovery.", rm, why),
		fix:      "Build resource_metadata from the public URL the client uses (configure BASE_URL / the issuer to the tunnel's https origin), not from the address the server listens on.",
		evidence: []mcptap.Evidence{ev(x, "header.WWW-Authenticate", cu.Scheme+"://"+cu.Host+"/.well-known/oauth-protected-resource…", rm, "")}}}
}

// resourceMetadataParam reads resource_metadata from the Bearer challenge,
// with the same parser the no-challenge rule uses.
func resourceMetadataParam(hdrs []string) string {
	chs, _ := oauthex.ParseWWWAuthenticate(hdrs)
	for _, c := range chs {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return c.Params["resource_metadata"]
		}
	}
	return ""
}

// isInternalHost: loopback, private, link-local, or a name that only
// resolves inside a machine or a container network.
func isInternalHost(h string) bool {
	h = strings.ToLower(strings.Trim(h, "[]"))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal") || h == "host.docker.internal" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}
