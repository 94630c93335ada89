package oauthtest

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// Fixture is one recorded situation with the verdict the analysis must reach.
type Fixture struct {
	Name     string
	About    string
	Scenario Scenario
	Custom   func(b *Builder) // instead of Scenario
	Verdict  mcptap.RuleID    // verdict rule of the flow under test ("ok" for healthy)
	Fault    mcptap.Fault
	Has      []mcptap.RuleID // rules that must be among the findings
	Flow     int             // index of the flow under test (default 0)
	// StopAfter, when set, ends the traffic after the first exchange whose
	// target starts with it: the client stopped there (a strict client at a
	// discovery flaw that a lenient one goes past).
	StopAfter string
}

// Exchanges builds the fixture's traffic.
func (f Fixture) Exchanges() []mcptap.Exchange {
	b := NewBuilder()
	if f.Custom != nil {
		f.Custom(b)
	} else {
		f.Scenario.Build(b)
	}
	exs := b.Exchanges()
	if f.StopAfter != "" {
		for i := range exs {
			if strings.HasPrefix(exs[i].Target, f.StopAfter) {
				return exs[:i+1]
			}
		}
	}
	return exs
}

func alterRaw(fn func(string) string) func(string) string {
	return func(raw string) string { u, _ := url.QueryUnescape(raw); return fn(u) }
}

// Fixtures is every generated fixture: healthy flows of four clients, one per
// Tier-1 rule (state.altered once per transformation) and the seed reports.
var Fixtures = []Fixture{
	{Name: "healthy-chatgpt", About: "ChatGPT connector, DCR, PKCE, resource, token, MCP calls", Scenario: Scenario{Client: "chatgpt"}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-claude", Scenario: Scenario{Client: "claude"}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-vscode", Scenario: Scenario{Client: "vscode"}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-mcp-remote", Scenario: Scenario{Client: "mcp-remote"}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-refresh", About: "token refreshed after the first MCP calls; the new token is used", Scenario: Scenario{Client: "claude", Refresh: true}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-chatgpt-browser", About: "ChatGPT seen from the browser: callback page and callback completion 200", Scenario: Scenario{Client: "chatgpt", Browser: true}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-upstream-idp", About: "MCP server as OAuth proxy in front of an upstream IdP: one flow with an inner leg", Scenario: Scenario{Client: "claude", Upstream: "https://idp.example.org"}, Verdict: "ok", Fault: mcptap.FaultNone},
	{Name: "healthy-upstream-idp-routed", About: "OAuth proxy whose upstream IdP is routed through mcptap too: the server's token call to the IdP is an inner hop, not a second flow", Scenario: Scenario{Client: "claude", Upstream: "https://idp.example.org", UpstreamRouted: true}, Verdict: "ok", Fault: mcptap.FaultNone},

	// Seeds.
	{Name: "seed000-browser", About: "report 000 from the browser: ChatGPT callback completion 404 OAuth state not found", Scenario: Scenario{Client: "chatgpt", Origin: "https://mcp.auto.dev", Upstream: "https://id.org.ai", Passthrough: true, Browser: true, CompletionStat: 404},
		Verdict: mcptap.RuleCallbackStateNotFound, Fault: mcptap.FaultClient},
	{Name: "seed000-server", About: "report 000 from the server: code and state echoed, no token request", Scenario: Scenario{Client: "chatgpt", Origin: "https://mcp.auto.dev", MCPPath: "/", NoToken: true, EndWait: 90 * time.Second},
		Verdict: mcptap.RuleTokenNeverCalled, Fault: mcptap.FaultClient},
	{Name: "seed000-scaffold", About: "report 000 with the mcpkit scaffold: PRM path fallback, no token request", Scenario: Scenario{Client: "chatgpt", PRMPathFallback: true, NoToken: true, EndWait: 90 * time.Second},
		Verdict: mcptap.RuleTokenNeverCalled, Fault: mcptap.FaultClient, Has: []mcptap.RuleID{mcptap.RuleDiscoveryPRMPathFallback}},
	{Name: "seed001-plugin", About: "report 001: plugin OAuth provider drops state", Custom: seed001, Verdict: mcptap.RuleStateNotEchoed, Fault: mcptap.FaultAuthServer},

	// Discovery.
	{Name: "discovery-no-challenge", About: "a strict client stops at the bare 401", Scenario: Scenario{Client: "claude", NoChallenge: true}, StopAfter: "/mcp", Verdict: mcptap.RuleDiscoveryNoChallenge, Fault: mcptap.FaultServer},
	{Name: "discovery-not-json", Scenario: Scenario{Client: "claude", PRMNotJSON: true}, Verdict: mcptap.RuleDiscoveryNotJSON, Fault: mcptap.FaultServer},
	{Name: "discovery-prm-path-fallback", Scenario: Scenario{Client: "chatgpt", PRMPathFallback: true}, Verdict: "ok", Fault: mcptap.FaultNone, Has: []mcptap.RuleID{mcptap.RuleDiscoveryPRMPathFallback}},
	{Name: "discovery-resource-mismatch", Scenario: Scenario{Client: "claude", PRMResource: "https://mcp.example.com", AuthResource: "https://mcp.example.com", TokenAud: "https://mcp.example.com"}, Verdict: mcptap.RuleDiscoveryResourceMismatch, Fault: mcptap.FaultServer},
	{Name: "discovery-no-authorization-servers", Scenario: Scenario{Client: "chatgpt", PRMNoAS: true}, Verdict: mcptap.RuleDiscoveryNoAuthorizationServers, Fault: mcptap.FaultServer},
	{Name: "discovery-prm-missing", Scenario: Scenario{Client: "claude", PRMAllMissing: true}, Verdict: mcptap.RuleDiscoveryNoAuthorizationServers, Fault: mcptap.FaultServer},
	{Name: "discovery-issuer-mismatch", About: "a strict client stops at the metadata", Scenario: Scenario{Client: "vscode", Issuer: "https://mcp.example.com/"}, StopAfter: "/.well-known/oauth-authorization-server", Verdict: mcptap.RuleDiscoveryIssuerMismatch, Fault: mcptap.FaultAuthServer},
	{Name: "discovery-no-pkce-s256", Scenario: Scenario{Client: "claude", NoS256: true}, Verdict: mcptap.RuleDiscoveryNoPKCES256, Fault: mcptap.FaultAuthServer},
	{Name: "discovery-no-registration", Scenario: Scenario{Client: "mcp-remote", NoRegistration: true}, Verdict: mcptap.RuleDiscoveryNoRegistration, Fault: mcptap.FaultAuthServer, Has: []mcptap.RuleID{mcptap.RuleDiscoveryNoRegistration}},
	{Name: "discovery-internal-origin", Scenario: Scenario{Client: "chatgpt", InternalToken: true}, Verdict: mcptap.RuleDiscoveryInternalOrigin, Fault: mcptap.FaultAuthServer},

	// Registration and clients.
	{Name: "register-rejected", Scenario: Scenario{Client: "vscode", RegisterStatus: 400}, Verdict: mcptap.RuleRegisterRejected, Fault: mcptap.FaultAuthServer},
	{Name: "client-unknown", Scenario: Scenario{Client: "claude", UnknownClient: true}, Verdict: mcptap.RuleClientUnknown, Fault: mcptap.FaultAuthServer},

	// Authorize.
	{Name: "authorize-pkce-missing", Scenario: Scenario{Client: "mcp-remote", NoPKCE: true, AuthorizeStatus: 400, AuthorizeBody: `{"error":"invalid_request","error_description":"code_challenge required"}`}, Verdict: mcptap.RuleAuthorizePKCEMissing, Fault: mcptap.FaultClient},
	{Name: "authorize-resource-missing", Scenario: Scenario{Client: "claude", NoResource: true}, Verdict: "ok", Fault: mcptap.FaultNone, Has: []mcptap.RuleID{mcptap.RuleAuthorizeResourceMissing}},
	{Name: "authorize-resource-mismatch", Scenario: Scenario{Client: "chatgpt", AuthResource: "https://mcp.example.com/"}, Verdict: mcptap.RuleAuthorizeResourceMismatch, Fault: mcptap.FaultClient},
	{Name: "authorize-redirect-uri-unregistered", Scenario: Scenario{Client: "vscode", RedirectURI: "http://127.0.0.1:51234/", AuthorizeStatus: 400, AuthorizeBody: "<html>Invalid redirect URI. The redirect URI provided does not match any registered URI for this client.</html>"}, Verdict: mcptap.RuleAuthorizeRedirectURIUnregistered, Fault: mcptap.FaultClient},
	{Name: "authorize-wrong-redirect-target", Scenario: Scenario{Client: "chatgpt", LocationTarget: "https://chatgpt.com/connector/oauth/OLDconnector1"}, Verdict: mcptap.RuleAuthorizeWrongRedirectTarget, Fault: mcptap.FaultAuthServer},
	{Name: "authorize-error-not-redirected", Scenario: Scenario{Client: "claude", AuthorizeStatus: 500}, Verdict: mcptap.RuleAuthorizeErrorNotRedirected, Fault: mcptap.FaultAuthServer, Has: []mcptap.RuleID{mcptap.RuleAuthorizeErrorNotRedirected}},

	// State.
	{Name: "authorize-error-returned", About: "Entra refuses the resource parameter and redirects with error and state", Scenario: Scenario{Client: "claude", AuthorizeError: "invalid_request", AuthorizeDesc: "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."}, Verdict: mcptap.RuleAuthorizeErrorReturned, Fault: mcptap.FaultClient},
	{Name: "mcp-forbidden-host-check", About: "Go SDK DNS-rebinding protection refuses the tunnel's Host on the authenticated call", Scenario: Scenario{Client: "chatgpt", MCPStatus: 403, MCPBody: "Forbidden: invalid Host header \"abc.ngrok.app\"\n"}, Verdict: mcptap.RuleMCPForbidden, Fault: mcptap.FaultServer},
	{Name: "discovery-issuer-slash-passed", About: "a lenient client goes past an issuer trailing slash and connects: a warning, not the verdict", Scenario: Scenario{Client: "vscode", Issuer: "https://mcp.example.com/"}, Verdict: mcptap.RuleOK, Fault: mcptap.FaultNone, Has: []mcptap.RuleID{mcptap.RuleDiscoveryIssuerMismatch}},
	{Name: "flow-incomplete-after-register", About: "the session ends right after a 201 registration: the attempt started and went nowhere", Scenario: Scenario{Client: "claude"}, StopAfter: "/register", Verdict: mcptap.RuleFlowIncomplete, Fault: mcptap.FaultUnknown},
	{Name: "token-never-called-upstream-returned", About: "seed 000 from the server's side behind an upstream IdP: the server's own /oauth/callback sends code and state to the client, no token call follows", Scenario: Scenario{Client: "chatgpt", Upstream: "https://login.idp.example", NoToken: true, EndWait: 2 * time.Minute}, Verdict: mcptap.RuleTokenNeverCalled, Fault: mcptap.FaultClient},
	{Name: "discovery-challenge-internal", About: "BASE_URL left at localhost: the 401 names http://localhost:3000", Scenario: Scenario{Client: "claude", ChallengeURL: "http://localhost:3000/.well-known/oauth-protected-resource/mcp"}, StopAfter: "/mcp", Verdict: mcptap.RuleDiscoveryChallengeInternal, Fault: mcptap.FaultServer},
	{Name: "state-not-echoed", Scenario: Scenario{Client: "claude", DropState: true}, Verdict: mcptap.RuleStateNotEchoed, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-plus-to-space", Scenario: Scenario{Client: "vscode", AlterState: alterRaw(func(s string) string { return url.QueryEscape(strings.ReplaceAll(s, "+", " ")) })}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-double-encoded", Scenario: Scenario{Client: "vscode", AlterState: url.QueryEscape}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-padding-stripped", Scenario: Scenario{Client: "vscode", AlterState: alterRaw(func(s string) string { return url.QueryEscape(strings.TrimRight(s, "=")) })}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-padding-added", Scenario: Scenario{Client: "claude", AlterState: func(s string) string { return s + "%3D" }}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-truncated", Scenario: Scenario{Client: "claude", AlterState: func(s string) string { return s[:len(s)/2] }}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-base64-alphabet", Scenario: Scenario{Client: "vscode", AlterState: alterRaw(func(s string) string {
		return url.QueryEscape(strings.NewReplacer("+", "-", "/", "_").Replace(s))
	})}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-json-reserialized", Scenario: Scenario{Client: "chatgpt", AlterState: alterRaw(func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		var csrf, sid string
		fmt.Sscanf(strings.NewReplacer(`{"csrf":"`, "", `","s":"`, " ", `"}`, "").Replace(string(b)), "%s %s", &csrf, &sid)
		j := fmt.Sprintf(`{"s": "%s", "csrf": "%s"}`, sid, csrf)
		return url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(j)))
	})}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-case-or-whitespace", Scenario: Scenario{Client: "claude", AlterState: func(s string) string { return strings.ToUpper(s) }}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-altered-other", Scenario: Scenario{Client: "claude", AlterState: func(string) string { return "f00dfeedf00dfeed" }}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer},
	{Name: "state-stale", Scenario: Scenario{Client: "chatgpt", Stale: true}, Verdict: mcptap.RuleStateStale, Fault: mcptap.FaultClient, Has: []mcptap.RuleID{mcptap.RuleTokenNeverCalled}},
	{Name: "state-too-long", Scenario: Scenario{Client: "chatgpt", StateLen: 560, AuthorizeStatus: 400, AuthorizeBody: `{"statusCode":400,"code":"FST_ERR_VALIDATION","error":"Bad Request","message":"querystring/state Too big"}`}, Verdict: mcptap.RuleStateTooLong, Fault: mcptap.FaultAuthServer, Has: []mcptap.RuleID{mcptap.RuleStateTooLong}},
	{Name: "state-too-long-truncated", Scenario: Scenario{Client: "chatgpt", StateLen: 560, AlterState: func(s string) string { return s[:255] }}, Verdict: mcptap.RuleStateAltered, Fault: mcptap.FaultAuthServer, Has: []mcptap.RuleID{mcptap.RuleStateTooLong}},

	// Client callback.
	{Name: "callback-rejected", Scenario: Scenario{Client: "claude", Browser: true, CallbackStatus: 405, CallbackBody: `{"type":"error","error":{"type":"invalid_request_error","message":"Method Not Allowed"}}`}, Verdict: mcptap.RuleCallbackRejected, Fault: mcptap.FaultClient},
	{Name: "callback-state-not-found", Scenario: Scenario{Client: "chatgpt", Browser: true, CompletionStat: 404}, Verdict: mcptap.RuleCallbackStateNotFound, Fault: mcptap.FaultClient},

	// Token.
	{Name: "token-never-called", Scenario: Scenario{Client: "claude", NoToken: true, EndWait: 2 * time.Minute}, Verdict: mcptap.RuleTokenNeverCalled, Fault: mcptap.FaultClient},
	{Name: "token-never-called-upstream", About: "authorize handed to an external provider, nothing came back", Scenario: Scenario{Client: "chatgpt", Upstream: "https://login.idp.example", UpstreamLost: true, EndWait: 2 * time.Minute}, Verdict: mcptap.RuleTokenNeverCalled, Fault: mcptap.FaultUnknown},
	{Name: "token-pkce-mismatch", Scenario: Scenario{Client: "mcp-remote", Verifier: "verifier-of-another-attempt-0123456789abcdefghijkl", TokenError: "invalid_grant"}, Verdict: mcptap.RuleTokenPKCEMismatch, Fault: mcptap.FaultClient},
	{Name: "token-redirect-uri-mismatch", Scenario: Scenario{Client: "mcp-remote", TokenRedirect: "http://localhost:21372/oauth/callback", TokenError: "invalid_grant"}, Verdict: mcptap.RuleTokenRedirectURIMismatch, Fault: mcptap.FaultClient},
	{Name: "token-code-reused", Scenario: Scenario{Client: "claude", ReuseCode: true}, Verdict: mcptap.RuleTokenCodeReused, Fault: mcptap.FaultClient},
	{Name: "token-client-mismatch", Scenario: Scenario{Client: "mcp-remote", TokenClientID: "cl_0000otherinstance", TokenError: "invalid_grant"}, Verdict: mcptap.RuleTokenClientMismatch, Fault: mcptap.FaultClient},
	{Name: "token-invalid-grant", Scenario: Scenario{Client: "claude", TokenError: "invalid_grant"}, Verdict: mcptap.RuleTokenInvalidGrant, Fault: mcptap.FaultAuthServer},
	{Name: "token-invalid-client", Scenario: Scenario{Client: "claude", TokenError: "invalid_client", AuthMethodUsed: "client_secret_basic"}, Verdict: mcptap.RuleTokenInvalidClient, Fault: mcptap.FaultClient},
	{Name: "token-invalid-target", Scenario: Scenario{Client: "claude", TokenError: "invalid_target"}, Verdict: mcptap.RuleTokenInvalidTarget, Fault: mcptap.FaultAuthServer},
	{Name: "token-bad-response", Scenario: Scenario{Client: "vscode", TokenBody: "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=mcp&token_type=bearer", TokenCT: "application/x-www-form-urlencoded"}, Verdict: mcptap.RuleTokenBadResponse, Fault: mcptap.FaultAuthServer},
	{Name: "token-audience-mismatch", Scenario: Scenario{Client: "chatgpt", TokenAud: "authenticated"}, Verdict: "ok", Fault: mcptap.FaultNone, Has: []mcptap.RuleID{mcptap.RuleTokenAudienceMismatch}},

	// MCP.
	{Name: "mcp-bearer-rejected", Scenario: Scenario{Client: "chatgpt", MCPStatus: 401}, Verdict: mcptap.RuleMCPBearerRejected, Fault: mcptap.FaultServer},
	{Name: "mcp-bearer-rejected-audience", Scenario: Scenario{Client: "chatgpt", MCPStatus: 401, TokenAud: "authenticated"}, Verdict: mcptap.RuleMCPBearerRejected, Fault: mcptap.FaultAuthServer, Has: []mcptap.RuleID{mcptap.RuleTokenAudienceMismatch}},
	{Name: "edge-silent-after-token", About: "Claude got its token and nothing came: an edge's AI-bot rule is the first suspect", Scenario: Scenario{Client: "claude", NoBearer: true}, Verdict: mcptap.RuleEdgeSilentAfterToken, Fault: mcptap.FaultUser},
	{Name: "mcp-bearer-never-sent", Scenario: Scenario{Client: "chatgpt", NoBearer: true}, Verdict: mcptap.RuleMCPBearerNeverSent, Fault: mcptap.FaultClient},
	{Name: "mcp-redirect", Scenario: Scenario{Client: "claude", MCPStatus: 307}, Verdict: mcptap.RuleMCPRedirect, Fault: mcptap.FaultServer},
}

// seed001 is report 001: a 2023 ChatGPT plugin's OAuth provider redirects
// back with the code but without the state ChatGPT sent.
func seed001(b *Builder) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36"
	cb := "https://chat.openai.com/aip/plugin-4e5a3b2c-1d0f-4a8b-9c7d-6e5f4a3b2c1d/oauth/callback"
	state := "15014bf5-e45f-45d8-816f-ff1e4da87e81"
	auth := "https://auth.pluginlab.example/oauth/authorize?response_type=code&client_id=plugin_7f3a&scope=openid%20profile&redirect_uri=" + url.QueryEscape(cb) + "&state=" + state
	b.Do("GET", auth, 200).H("User-Agent", ua).Resp("text/html", "<html><form method=post action=/oauth/login>Sign in</form></html>")
	b.Wait(12 * time.Second)
	b.Do("POST", "https://auth.pluginlab.example/oauth/login", 302).H("User-Agent", ua).
		Form("email=ada%40example.com", "password=%E2%80%A2%E2%80%A2%E2%80%A2", "response_type=code", "client_id=plugin_7f3a", "redirect_uri="+url.QueryEscape(cb), "state="+state).
		Loc(cb + "?code=pl_code_8d0b1f2e3a4c")
	b.Do("GET", cb+"?code=pl_code_8d0b1f2e3a4c", 200).H("User-Agent", ua).Resp("text/html", "<html>…</html>")
	b.Do("POST", "https://chat.openai.com/backend-api/aip/plugins/oauth/callback", 400).H("User-Agent", ua).
		Body("application/json", `{"code":"pl_code_8d0b1f2e3a4c"}`).JSON(`{"message":"Missing ` + "`state`" + ` param in response from OAuth provider"}`)
}
