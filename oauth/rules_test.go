package oauth_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

type variant struct {
	name  string
	exs   func() []mcptap.Exchange
	fault mcptap.Fault    // "" = the rule's own fault side
	sev   mcptap.Severity // "" = the rule's own severity
	// notInHAR says why a HAR file of this traffic cannot show the rule
	// (a HAR drops what decides it); the HAR form must then stay silent.
	notInHAR string
}

// viaHAR writes exs as a HAR file (Chrome's shape) and reads it back: what a
// user exports must give the same findings.
func viaHAR(t *testing.T, exs []mcptap.Exchange) []mcptap.Exchange {
	t.Helper()
	var buf bytes.Buffer
	if err := har.Write(&buf, mcptap.Session{ID: "variant", Source: mcptap.SourceImport}, exs, nil); err != nil {
		t.Fatal(err)
	}
	back, err := har.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// cut builds s and keeps the exchanges up to and including the first that
// matches: the client stopped there.
func cut(s oauthtest.Scenario, match func(*mcptap.Exchange) bool) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		exs := sc(s)()
		for i := range exs {
			if match(&exs[i]) {
				return exs[:i+1]
			}
		}
		return exs
	}
}

func sc(s oauthtest.Scenario) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		b := oauthtest.NewBuilder()
		s.Build(b)
		return b.Exchanges()
	}
}

// mut builds s, then changes the exchanges matching match.
func mut(s oauthtest.Scenario, match func(*mcptap.Exchange) bool, change func(*mcptap.Exchange)) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		exs := sc(s)()
		for i := range exs {
			if match(&exs[i]) {
				change(&exs[i])
			}
		}
		return exs
	}
}

// drop builds s without the exchanges matching match.
func drop(s oauthtest.Scenario, match func(*mcptap.Exchange) bool) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		var out []mcptap.Exchange
		for _, ex := range sc(s)() {
			if !match(&ex) {
				out = append(out, ex)
			}
		}
		return out
	}
}

func path(p string) func(*mcptap.Exchange) bool {
	return func(ex *mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, p) }
}

func post(p string) func(*mcptap.Exchange) bool {
	return func(ex *mcptap.Exchange) bool { return ex.Method == "POST" && strings.HasPrefix(ex.Target, p) }
}

func body(ct, b string) func(*mcptap.Exchange) {
	return func(ex *mcptap.Exchange) {
		ex.RespHeader.Set("Content-Type", ct)
		ex.RespBody = []byte(b)
	}
}

func replaceBody(old, new string) func(*mcptap.Exchange) {
	return func(ex *mcptap.Exchange) { ex.RespBody = []byte(strings.ReplaceAll(string(ex.RespBody), old, new)) }
}

const (
	prmPath  = "/.well-known/oauth-protected-resource"
	metaPath = "/.well-known/oauth-authorization-server"
)

type S = oauthtest.Scenario

func alter(fn func(string) string) func(string) string {
	return func(raw string) string { u, _ := url.QueryUnescape(raw); return fn(u) }
}

// ruleVariants lists, per Tier-1 rule, the traffic signatures it must catch
// (reference §5), one row per variant.
var ruleVariants = map[mcptap.RuleID][]variant{
	"authorize.error-returned": {
		{name: "Entra AADSTS9010010", exs: sc(S{Client: "claude", AuthorizeError: "invalid_request", AuthorizeDesc: "AADSTS9010010: resource does not match scopes"}), fault: mcptap.FaultClient},
		{name: "access_denied", exs: sc(S{Client: "chatgpt", AuthorizeError: "access_denied"}), fault: mcptap.FaultUser},
		{name: "Hydra request_forbidden", exs: sc(S{Client: "vscode", AuthorizeError: "request_forbidden"})},
		{name: "server_error after a wait", exs: sc(S{Client: "mcp-remote", AuthorizeError: "server_error", EndWait: 2 * time.Minute})},
	},
	"flow.incomplete": {
		{name: "ends after the 401 challenge", exs: cut(S{Client: "claude"}, post("/mcp"))},
		{name: "ends after the metadata", exs: cut(S{Client: "chatgpt"}, path(metaPath))},
		{name: "ends after the registration", exs: cut(S{Client: "vscode"}, path("/register"))},
	},
	"mcp.forbidden": {
		{name: "Go SDK Host check", exs: sc(S{Client: "chatgpt", MCPStatus: 403, MCPBody: `Forbidden: invalid Host header "x.ngrok.app"`})},
		{name: "IP allow-list", exs: sc(S{Client: "claude", MCPStatus: 403, MCPBody: "IP not allowed"})},
	},
	"discovery.challenge-internal": {
		{name: "client stopped at the challenge", exs: cut(S{Client: "claude", ChallengeURL: "http://localhost:3000/.well-known/oauth-protected-resource"}, post("/mcp"))},
		{name: "localhost BASE_URL", exs: sc(S{Client: "claude", ChallengeURL: "http://localhost:3000/.well-known/oauth-protected-resource"}), sev: mcptap.SevWarning},
		{name: "private address", exs: sc(S{Client: "chatgpt", ChallengeURL: "https://10.0.0.5/.well-known/oauth-protected-resource/mcp"}), sev: mcptap.SevWarning},
		{name: "plain http of the public host", exs: sc(S{Client: "vscode", ChallengeURL: "http://mcp.example.com/.well-known/oauth-protected-resource/mcp"}), sev: mcptap.SevWarning},
	},
	"discovery.no-challenge": {
		{name: "client stopped at the bare 401", exs: cut(S{Client: "claude", NoChallenge: true}, post("/mcp"))},
		{name: "no WWW-Authenticate", exs: sc(S{Client: "claude", NoChallenge: true}), sev: mcptap.SevWarning},
		{name: "Bearer without resource_metadata", exs: mut(S{Client: "claude"}, post("/mcp"), func(ex *mcptap.Exchange) {
			if ex.Status == 401 {
				ex.RespHeader.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
		}), sev: mcptap.SevWarning},
	},
	"discovery.not-json": {
		{name: "HTML SPA catch-all", exs: sc(S{Client: "claude", PRMNotJSON: true})},
		{name: "redirect to login", exs: mut(S{Client: "claude"}, path(metaPath), func(ex *mcptap.Exchange) {
			ex.Status = 302
			ex.RespHeader.Set("Location", "https://mcp.example.com/login?next=%2F.well-known")
			ex.RespBody = nil
		})},
		{name: "401 behind auth", exs: mut(S{Client: "claude"}, path(prmPath), func(ex *mcptap.Exchange) {
			ex.Status = 401
			body("text/html", "<h1>Unauthorized</h1>")(ex)
		})},
		{name: "JSON served as text/html", exs: mut(S{Client: "claude"}, path(metaPath), func(ex *mcptap.Exchange) { ex.RespHeader.Set("Content-Type", "text/html") })},
	},
	"discovery.prm-path-fallback": {{name: "path 404 then root 200", exs: sc(S{Client: "chatgpt", PRMPathFallback: true})}},
	"discovery.resource-mismatch": {
		{name: "origin instead of /mcp", exs: sc(S{Client: "claude", PRMResource: "https://mcp.example.com"})},
		{name: "http instead of https", exs: sc(S{Client: "claude", PRMResource: "http://mcp.example.com/mcp"})},
		{name: "internal host behind the tunnel", exs: sc(S{Client: "claude", PRMResource: "https://10.0.3.7:8080/mcp"})},
		{name: "trailing slash", exs: sc(S{Client: "claude", PRMResource: "https://mcp.example.com/mcp/"})},
		{name: "root document names another host", exs: sc(S{Client: "claude", PRMPathFallback: true, PRMResource: "https://api.example.com/mcp"})},
	},
	"discovery.no-authorization-servers": {
		{name: "PRM without authorization_servers", exs: sc(S{Client: "chatgpt", PRMNoAS: true})},
		{name: "every PRM probe 404", exs: sc(S{Client: "claude", PRMAllMissing: true})},
		{name: "empty list", exs: mut(S{Client: "chatgpt"}, path(prmPath), replaceBody(`"authorization_servers":["https://mcp.example.com"]`, `"authorization_servers":[]`))},
	},
	"discovery.issuer-mismatch": {
		{name: "client stopped at the metadata", exs: cut(S{Client: "vscode", Issuer: "https://mcp.example.com/"}, path(metaPath))},
		{name: "trailing slash", exs: sc(S{Client: "vscode", Issuer: "https://mcp.example.com/"}), sev: mcptap.SevWarning},
		{name: "other host", exs: sc(S{Client: "vscode", Issuer: "https://cf.mcp.example.com"}), sev: mcptap.SevWarning},
		{name: "path dropped", exs: mut(S{Client: "vscode"}, path(prmPath), replaceBody(`"authorization_servers":["https://mcp.example.com"]`, `"authorization_servers":["https://mcp.example.com/tenant1"]`)), sev: mcptap.SevWarning},
	},
	"discovery.no-pkce-s256": {
		{name: "plain only", exs: sc(S{Client: "claude", NoS256: true})},
		{name: "field absent", exs: mut(S{Client: "claude"}, path(metaPath), replaceBody(`"code_challenge_methods_supported":["S256"],`, ""))},
	},
	"discovery.no-registration": {{name: "neither DCR nor CIMD", exs: sc(S{Client: "mcp-remote", NoRegistration: true})}},
	"discovery.internal-origin": {
		{name: "token endpoint on loopback", exs: sc(S{Client: "chatgpt", InternalToken: true}), fault: mcptap.FaultAuthServer},
		{name: "issuer over plain http", exs: mut(S{Client: "chatgpt"}, path(metaPath), replaceBody(`"issuer":"https://mcp.example.com"`, `"issuer":"http://127.0.0.1:8080"`)), fault: mcptap.FaultAuthServer},
		{name: "PRM resource on localhost", exs: sc(S{Client: "chatgpt", PRMResource: "http://localhost:3000/mcp"}), fault: mcptap.FaultServer},
	},
	"register.rejected": {
		{name: "invalid_redirect_uri 400", exs: sc(S{Client: "vscode", RegisterStatus: 400})},
		{name: "403", exs: sc(S{Client: "vscode", RegisterStatus: 403})},
	},
	"client.unknown": {
		{name: "authorize: Unrecognized client_id", exs: sc(S{Client: "claude", UnknownClient: true})},
		{name: "token: invalid_client client not found", exs: mut(S{Client: "claude"}, post("/token"), func(ex *mcptap.Exchange) {
			ex.Status = 401
			body("application/json", `{"error":"invalid_client","error_description":"Client not found"}`)(ex)
		})},
	},
	"state.too-long": {
		{name: "authorize refused", exs: sc(S{Client: "chatgpt", StateLen: 560, AuthorizeStatus: 400, AuthorizeBody: "querystring/state Too big"})},
		{name: "echoed truncated", exs: sc(S{Client: "chatgpt", StateLen: 560, AlterState: func(s string) string { return s[:255] }})},
	},
	"authorize.pkce-missing": {
		{name: "no challenge, refused", exs: sc(S{Client: "mcp-remote", NoPKCE: true, AuthorizeStatus: 400})},
		{name: "no challenge, accepted", exs: sc(S{Client: "mcp-remote", NoPKCE: true})},
		{name: "method plain", exs: mut(S{Client: "mcp-remote"}, path("/authorize"), func(ex *mcptap.Exchange) {
			ex.Target = strings.Replace(ex.Target, "code_challenge_method=S256", "code_challenge_method=plain", 1)
		})},
	},
	"authorize.resource-missing": {
		{name: "authorize without resource", exs: sc(S{Client: "claude", NoResource: true})},
		{name: "token without resource", exs: func() []mcptap.Exchange {
			exs := sc(S{Client: "claude"})()
			for i := range exs {
				if exs[i].Method == "POST" && exs[i].Target == "/token" {
					f := string(exs[i].ReqBody)
					exs[i].ReqBody = []byte(f[:strings.Index(f, "&resource=")])
				}
			}
			return exs
		}},
	},
	"authorize.resource-mismatch": {
		{name: "origin instead of /mcp", exs: sc(S{Client: "chatgpt", AuthResource: "https://mcp.example.com"})},
		{name: "trailing slash", exs: sc(S{Client: "chatgpt", AuthResource: "https://mcp.example.com/mcp/"})},
	},
	"authorize.redirect-uri-unregistered": {
		{name: "VS Code port fallback", exs: sc(S{Client: "vscode", RedirectURI: "http://127.0.0.1:51234/", AuthorizeStatus: 400})},
		{name: "claude.com vs claude.ai", exs: sc(S{Client: "claude", RedirectURI: "https://claude.com/api/mcp/auth_callback", AuthorizeStatus: 400})},
		{name: "server dropped the requested URI", exs: sc(S{Client: "claude", RegisterOther: "https://claude.ai/other", AuthorizeStatus: 400}), fault: mcptap.FaultAuthServer},
	},
	"authorize.wrong-redirect-target": {
		{name: "stale per-connector callback", exs: sc(S{Client: "chatgpt", LocationTarget: "https://chatgpt.com/connector/oauth/OLDconnector1"})},
		{name: "resource server root", exs: sc(S{Client: "claude", LocationTarget: "https://mcp.example.com/"})},
	},
	"authorize.error-not-redirected": {
		{name: "500 page", exs: sc(S{Client: "claude", AuthorizeStatus: 500})},
		{name: "400 access_denied page", exs: sc(S{Client: "claude", AuthorizeStatus: 400, AuthorizeBody: "<p>access_denied: the user cancelled</p>"})},
	},
	"state.not-echoed": {
		{name: "absent", exs: sc(S{Client: "claude", DropState: true})},
		{name: "empty", exs: sc(S{Client: "claude", AlterState: func(string) string { return "" }})},
	},
	"state.altered": {
		{name: "plus-to-space", exs: sc(S{Client: "vscode", AlterState: alter(func(s string) string { return url.QueryEscape(strings.ReplaceAll(s, "+", " ")) })})},
		{name: "double-encoded", exs: sc(S{Client: "vscode", AlterState: url.QueryEscape})},
		{name: "padding-stripped", exs: sc(S{Client: "vscode", AlterState: alter(func(s string) string { return url.QueryEscape(strings.TrimRight(s, "=")) })})},
		{name: "padding-added", exs: sc(S{Client: "claude", AlterState: func(s string) string { return s + "%3D" }})},
		{name: "truncated", exs: sc(S{Client: "claude", AlterState: func(s string) string { return s[:10] }})},
		{name: "base64-alphabet", exs: sc(S{Client: "vscode", AlterState: alter(func(s string) string { return strings.NewReplacer("+", "-", "/", "_").Replace(s) })})},
		{name: "case-or-whitespace", exs: sc(S{Client: "claude", AlterState: strings.ToLower})},
		{name: "other", exs: sc(S{Client: "claude", AlterState: func(string) string { return "totally-different" }})},
		{name: "client changed it after an intact redirect", fault: mcptap.FaultClient, exs: mut(S{Client: "claude", Browser: true}, func(ex *mcptap.Exchange) bool {
			return ex.Method == "GET" && strings.HasPrefix(ex.Target, "/api/mcp/auth_callback")
		}, func(ex *mcptap.Exchange) { ex.Target += "%20" })},
	},
	"state.stale": {{name: "second Connect, first tab completes", exs: sc(S{Client: "chatgpt", Stale: true})}},
	"callback.state-not-found": {
		{name: "ChatGPT 404, chain intact", exs: sc(S{Client: "chatgpt", Browser: true, CompletionStat: 404})},
		{name: "ChatGPT 404 after the AS altered state", fault: mcptap.FaultAuthServer, exs: sc(S{Client: "chatgpt", Browser: true, CompletionStat: 404, AlterState: func(s string) string { return s[:20] }})},
	},
	"callback.rejected": {
		{name: "Claude 405", exs: sc(S{Client: "claude", Browser: true, CallbackStatus: 405})},
		{name: "400", exs: sc(S{Client: "claude", Browser: true, CallbackStatus: 400})},
		{name: "ChatGPT completion 500", exs: sc(S{Client: "chatgpt", Browser: true, CompletionStat: 500})},
	},
	"token.pkce-mismatch": {
		{name: "verifier of another attempt", exs: sc(S{Client: "mcp-remote", Verifier: "another-attempts-verifier-0123456789abcdefghijk", TokenError: "invalid_grant"})},
		{name: "no verifier", exs: func() []mcptap.Exchange {
			exs := sc(S{Client: "mcp-remote", TokenError: "invalid_grant"})()
			for i := range exs {
				if exs[i].Target == "/token" {
					f := string(exs[i].ReqBody)
					a := strings.Index(f, "&code_verifier=")
					b := strings.Index(f, "&resource=")
					exs[i].ReqBody = []byte(f[:a] + f[b:])
				}
			}
			return exs
		}},
	},
	"token.redirect-uri-mismatch": {
		{name: "other port", exs: sc(S{Client: "mcp-remote", TokenRedirect: "http://localhost:21372/oauth/callback", TokenError: "invalid_grant"})},
		{name: "trailing slash", exs: sc(S{Client: "claude", TokenRedirect: "https://claude.ai/api/mcp/auth_callback/"})},
	},
	"token.code-reused":     {{name: "second redemption", exs: sc(S{Client: "claude", ReuseCode: true})}},
	"token.client-mismatch": {{name: "other instance's client", exs: sc(S{Client: "mcp-remote", TokenClientID: "cl_0000otherinstance", TokenError: "invalid_grant"})}},
	"token.invalid-grant": {
		{name: "everything consistent", exs: sc(S{Client: "claude", TokenError: "invalid_grant"})},
		{name: "authorize not captured", fault: mcptap.FaultUnknown, exs: drop(S{Client: "claude", TokenError: "invalid_grant"}, path("/authorize"))},
	},
	"token.invalid-client": {
		{name: "basic instead of none", exs: sc(S{Client: "claude", TokenError: "invalid_client", AuthMethodUsed: "client_secret_basic"})},
		{name: "as registered, still refused", fault: mcptap.FaultAuthServer, exs: sc(S{Client: "claude", TokenError: "invalid_client"})},
		{name: "registration not captured", fault: mcptap.FaultUnknown, exs: drop(S{Client: "claude", TokenError: "invalid_client"}, post("/register"))},
	},
	"token.invalid-target": {
		{name: "invalid_target", exs: sc(S{Client: "claude", TokenError: "invalid_target"})},
		{name: "resource changed between authorize and token", fault: mcptap.FaultClient, exs: sc(S{Client: "claude", TokenResource: "https://mcp.example.com"})},
	},
	"token.bad-response": {
		{name: "form-encoded", exs: sc(S{Client: "vscode", TokenBody: "access_token=abc123456&token_type=bearer", TokenCT: "application/x-www-form-urlencoded"})},
		{name: "error with 200", exs: sc(S{Client: "vscode", TokenBody: `{"error":"invalid_grant"}`})},
		{name: "no access_token", exs: sc(S{Client: "vscode", TokenBody: `{"token_type":"Bearer","expires_in":3600}`})},
		{name: "no token_type", exs: sc(S{Client: "vscode", TokenBody: `{"access_token":"abc123456","expires_in":3600}`})},
	},
	"token.audience-mismatch": {
		{name: "Supabase authenticated", exs: sc(S{Client: "chatgpt", TokenAud: "authenticated"})},
		{name: "origin instead of /mcp", exs: sc(S{Client: "chatgpt", TokenAud: "https://mcp.example.com"})},
	},
	"token.never-called": {
		{name: "timeout passes during the recording", exs: sc(S{Client: "claude", NoToken: true, EndWait: 2 * time.Minute})},
		{name: "recording ends first", exs: sc(S{Client: "claude", NoToken: true})},
		{name: "handed to an external provider", fault: mcptap.FaultUnknown, exs: sc(S{Client: "chatgpt", Upstream: "https://login.idp.example", UpstreamLost: true, EndWait: 2 * time.Minute})},
		{name: "explained by a dropped state", fault: mcptap.FaultAuthServer, exs: sc(S{Client: "claude", DropState: true})},
	},
	"mcp.redirect": {
		{name: "307 trailing slash", exs: sc(S{Client: "claude", MCPStatus: 307})},
		{name: "308", exs: sc(S{Client: "claude", MCPStatus: 308})},
	},
	"mcp.bearer-rejected": {
		{name: "401 to a fresh token", exs: sc(S{Client: "chatgpt", MCPStatus: 401})},
		{name: "wrong audience", fault: mcptap.FaultAuthServer, exs: sc(S{Client: "chatgpt", MCPStatus: 401, TokenAud: "authenticated"})},
	},
	"mcp.bearer-never-sent": {
		{name: "unauthenticated requests after the token", exs: sc(S{Client: "chatgpt", NoBearer: true})},
		{name: "no MCP request at all", exs: drop(S{Client: "vscode"}, func(ex *mcptap.Exchange) bool {
			return ex.Method == "POST" && ex.Target == "/mcp" && ex.ReqHeader.Get("Authorization") != ""
		})},
	},
}

// Each Tier-1 rule catches each of its variants, with evidence and a fix.
func TestRules(t *testing.T) {
	for _, r := range oauth.Catalogue() {
		vs := ruleVariants[r.ID]
		if len(vs) == 0 {
			t.Errorf("rule %s has no test variant", r.ID)
		}
		for _, v := range vs {
			t.Run(string(r.ID)+"/"+v.name, func(t *testing.T) {
				exs := v.exs()
				_, fds := oauth.Analyze(viaHAR(t, exs), oauth.Options{})
				raised := false
				for _, fd := range fds {
					raised = raised || fd.Rule == r.ID
				}
				if raised == (v.notInHAR != "") {
					t.Errorf("through a HAR file: %s raised %v, want %v (%s)", r.ID, raised, v.notInHAR == "", v.notInHAR)
				}
				_, fds = oauth.Analyze(exs, oauth.Options{})
				for _, fd := range fds {
					if fd.Rule != r.ID {
						continue
					}
					want := r.Fault
					if v.fault != "" {
						want = v.fault
					}
					if fd.Fault != want {
						t.Errorf("fault %s, want %s (%s)", fd.Fault, want, fd.Detail)
					}
					wantSev := r.Severity
					if v.sev != "" {
						wantSev = v.sev
					}
					if fd.Severity != wantSev || fd.Title == "" || fd.Detail == "" || fd.Fix == "" || len(fd.Evidence) == 0 || len(fd.Exchanges) == 0 {
						t.Errorf("incomplete finding: %+v", fd)
					}
					return
				}
				var got []mcptap.RuleID
				for _, fd := range fds {
					got = append(got, fd.Rule)
				}
				t.Errorf("no %s finding; got %v", r.ID, got)
			})
		}
	}
	for id := range ruleVariants {
		found := false
		for _, r := range oauth.Catalogue() {
			found = found || r.ID == id
		}
		if !found {
			t.Errorf("variants for unknown rule %s", id)
		}
	}
}

// Every rule stays silent on healthy flows of every client.
func TestRulesSilentOnHealthy(t *testing.T) {
	for _, fx := range oauthtest.Fixtures {
		if !strings.HasPrefix(fx.Name, "healthy-") {
			continue
		}
		_, fds := oauth.Analyze(fx.Exchanges(), oauth.Options{})
		for _, fd := range fds {
			t.Errorf("%s: rule %s fired on a healthy flow: %s", fx.Name, fd.Rule, fd.Detail)
		}
	}
}

// Behind a tunnel that does not say X-Forwarded-Proto, mcptap sees plain
// http; an https resource or issuer for the same host and path is not a
// mismatch then (regression: false discovery.resource-mismatch).
func TestUnknownSchemeBehindTunnel(t *testing.T) {
	exs := sc(S{Client: "claude"})()
	for i := range exs {
		exs[i].Mode = mcptap.ModeReverse
		if exs[i].Host == "mcp.example.com" {
			exs[i].Scheme = "http"
		}
	}
	_, fds := oauth.Analyze(exs, oauth.Options{})
	for _, fd := range fds {
		t.Errorf("finding %s: %s", fd.Rule, fd.Detail)
	}
	// With X-Forwarded-Proto: http the scheme is known, and the mismatch real.
	for i := range exs {
		if exs[i].Host == "mcp.example.com" {
			exs[i].ReqHeader.Set("X-Forwarded-Proto", "http")
		}
	}
	_, fds = oauth.Analyze(exs, oauth.Options{})
	found := false
	for _, fd := range fds {
		found = found || fd.Rule == "discovery.resource-mismatch"
	}
	if !found {
		t.Error("known http scheme vs https resource: no discovery.resource-mismatch")
	}
}
