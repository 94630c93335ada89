package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// then builds s and goes on with more on the same builder (same clock):
// more gets what was built so far.
func then(s S, more func(b *oauthtest.Builder, so sofar)) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		b := oauthtest.NewBuilder()
		s.Build(b)
		more(b, learn(b.Exchanges()))
		return b.Exchanges()
	}
}

// custom builds traffic by hand.
func custom(mode mcptap.Mode, build func(b *oauthtest.Builder)) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		b := oauthtest.NewBuilder()
		if mode != "" {
			b.Mode = mode
		}
		build(b)
		return b.Exchanges()
	}
}

// chain applies several changes to what s builds, in order.
func chain(s S, changes ...func([]mcptap.Exchange) []mcptap.Exchange) func() []mcptap.Exchange {
	return func() []mcptap.Exchange {
		exs := sc(s)()
		for _, c := range changes {
			exs = c(exs)
		}
		return exs
	}
}

// at changes the exchanges that match.
func at(match func(*mcptap.Exchange) bool, change func(*mcptap.Exchange)) func([]mcptap.Exchange) []mcptap.Exchange {
	return func(exs []mcptap.Exchange) []mcptap.Exchange {
		for i := range exs {
			if match(&exs[i]) {
				change(&exs[i])
			}
		}
		return exs
	}
}

// copies inserts n changed copies of the first exchange that matches, each
// a second after the one before.
func copies(match func(*mcptap.Exchange) bool, n int, change func(*mcptap.Exchange)) func([]mcptap.Exchange) []mcptap.Exchange {
	return func(exs []mcptap.Exchange) []mcptap.Exchange {
		for i := range exs {
			if !match(&exs[i]) {
				continue
			}
			var add []mcptap.Exchange
			for k := 1; k <= n; k++ {
				c := exs[i]
				c.ReqHeader, c.RespHeader = c.ReqHeader.Clone(), c.RespHeader.Clone()
				d := time.Duration(k) * 100 * time.Millisecond
				c.Start, c.ResponseAt, c.End = c.Start.Add(d), c.ResponseAt.Add(d), c.End.Add(d)
				c.ID = fmt.Sprintf("%s-%d", c.ID, k)
				change(&c)
				add = append(add, c)
			}
			out := append(append(append([]mcptap.Exchange(nil), exs[:i+1]...), add...), exs[i+1:]...)
			return out
		}
		return exs
	}
}

// tokenErrorBody sets an invalid_grant answer's error_description.
func tokenErrorBody(desc string) func(*mcptap.Exchange) {
	return func(ex *mcptap.Exchange) {
		b, _ := json.Marshal(map[string]string{"error": "invalid_grant", "error_description": desc})
		ex.RespBody = b
	}
}

// consentRefused turns a copy of the authorize into the consent page's
// POST, answered 400 with body.
func consentRefused(body string) func(*mcptap.Exchange) {
	return func(ex *mcptap.Exchange) {
		ex.Method, ex.Target = "POST", "/consent"
		ex.ReqHeader.Set("Content-Type", "application/x-www-form-urlencoded")
		ex.ReqBody = []byte("tx=abc&decision=approve")
		ex.Status, ex.RespBody = 400, []byte(body)
		ex.RespHeader = http.Header{"Content-Type": {"text/html"}}
	}
}

// sofar is what a healthy flow issued: the next hops reuse it.
type sofar struct {
	access, refresh, clientID, resource string
	end                                 time.Time
}

func learn(exs []mcptap.Exchange) sofar {
	var s sofar
	for _, ex := range exs {
		if ex.Method == "POST" && ex.Target == "/token" && ex.Status == 200 {
			var r struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			}
			if json.Unmarshal(ex.RespBody, &r) == nil && r.AccessToken != "" {
				s.access, s.refresh = r.AccessToken, r.RefreshToken
			}
		}
		if strings.HasPrefix(ex.Target, "/authorize?") {
			u, _ := url.Parse(ex.Target)
			s.clientID, s.resource = u.Query().Get("client_id"), u.Query().Get("resource")
		}
		s.end = ex.End
	}
	return s
}

func isAuthMCP(ex *mcptap.Exchange) bool {
	return ex.Method == "POST" && ex.Target == "/mcp" && ex.ReqHeader.Get("Authorization") != ""
}

func firstAuthMCP() func(*mcptap.Exchange) bool {
	n := 0
	return func(ex *mcptap.Exchange) bool {
		if isAuthMCP(ex) {
			n++
			return n == 1
		}
		return false
	}
}

func isRefresh(ex *mcptap.Exchange) bool {
	return ex.Method == "POST" && strings.Contains(string(ex.ReqBody), "grant_type=refresh_token")
}

func isCodeToken(ex *mcptap.Exchange) bool {
	return ex.Method == "POST" && strings.Contains(string(ex.ReqBody), "grant_type=authorization_code")
}

func rmParam(name string) func(*mcptap.Exchange) {
	re := regexp.MustCompile(`([?&])` + name + `=[^&]*&?`)
	return func(ex *mcptap.Exchange) {
		ex.Target = strings.TrimSuffix(re.ReplaceAllString(ex.Target, "$1"), "&")
		ex.ReqBody = []byte(strings.TrimSuffix(strings.TrimPrefix(re.ReplaceAllString("?"+string(ex.ReqBody), "$1"), "?"), "&"))
	}
}

func status(code int) func(*mcptap.Exchange) { return func(ex *mcptap.Exchange) { ex.Status = code } }

func both(cs ...func(*mcptap.Exchange)) func(*mcptap.Exchange) {
	return func(ex *mcptap.Exchange) {
		for _, c := range cs {
			c(ex)
		}
	}
}

func jwtOf(claims string) string {
	b := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return b(`{"alg":"RS256","kid":"k1"}`) + "." + b(claims) + "." + b("sig")
}

// mcpCall is one more JSON-RPC call with a token.
func mcpCall(b *oauthtest.Builder, scheme, tok string, st int, method string) oauthtest.Ex {
	return b.Do("POST", "https://mcp.example.com/mcp", st).H("Authorization", scheme+" "+tok, "Mcp-Protocol-Version", "2025-11-25", "Accept", "application/json, text/event-stream").
		Body("application/json", `{"jsonrpc":"2.0","id":9,"method":"`+method+`","params":{"name":"search"}}`)
}

const asMeta = `{"issuer":"https://mcp.example.com","authorization_endpoint":"https://mcp.example.com/authorize","token_endpoint":"https://mcp.example.com/token","registration_endpoint":"https://mcp.example.com/register","code_challenge_methods_supported":["S256"],"grant_types_supported":["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:jwt-bearer","client_credentials"],"token_endpoint_auth_methods_supported":["none","private_key_jwt"],"scopes_supported":["mcp"]}`

// assertionGrant is a complete jwt-bearer (ID-JAG) or client_credentials
// flow: metadata, token, authenticated calls. No authorize, no state.
func assertionGrant(grant string, tokStatus int, tokBody, aud string, dpop bool) func(b *oauthtest.Builder) {
	return func(b *oauthtest.Builder) {
		b.Mode = mcptap.ModeReverse
		b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).H("User-Agent", "agent/1.0").JSON(asMeta)
		form := []string{"grant_type=" + url.QueryEscape(grant), "client_id=svc-1", "resource=" + url.QueryEscape("https://mcp.example.com/mcp")}
		if strings.HasSuffix(grant, "jwt-bearer") {
			form = append(form, "assertion="+jwtOf(fmt.Sprintf(`{"iss":"https://idp.example.org","sub":"ada","aud":"%s","client_id":"svc-1","resource":"https://mcp.example.com/mcp","exp":%d}`, aud, oauthtest.T0.Add(5*time.Minute).Unix())))
		} else {
			form = append(form, "client_secret=s3cret")
		}
		tk := b.Do("POST", "https://mcp.example.com/token", tokStatus).H("User-Agent", "agent/1.0").Form(form...)
		if dpop {
			tk.H("DPoP", jwtOf(`{"htm":"POST","htu":"https://mcp.example.com/token","jti":"1"}`))
		}
		tk.JSON(tokBody)
		if tokStatus != 200 {
			return
		}
		var r struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
		}
		_ = json.Unmarshal([]byte(tokBody), &r)
		scheme := "Bearer"
		if dpop {
			scheme = "DPoP"
		}
		for i, m := range []string{"initialize", "tools/list"} {
			e := mcpCall(b, scheme, r.AccessToken, 200, m)
			if dpop {
				e.H("DPoP", jwtOf(fmt.Sprintf(`{"htm":"POST","htu":"https://mcp.example.com/mcp","jti":"%d","ath":"x"}`, i+2)))
			}
			e.JSON(`{"jsonrpc":"2.0","id":9,"result":{"protocolVersion":"2025-11-25"}}`)
		}
	}
}

var accessJWT = jwtOf(`{"iss":"https://mcp.example.com","aud":"https://mcp.example.com/mcp","sub":"svc-1","exp":1900000000}`)

func okToken(tokenType string) string {
	return fmt.Sprintf(`{"access_token":"%s","token_type":"%s","expires_in":300}`, accessJWT, tokenType)
}

// swapAccess replaces the access token of a scenario everywhere it goes.
func swapAccess(newTok string) func([]mcptap.Exchange) []mcptap.Exchange {
	return func(exs []mcptap.Exchange) []mcptap.Exchange {
		old := learn(exs).access
		for i := range exs {
			exs[i].RespBody = []byte(strings.ReplaceAll(string(exs[i].RespBody), old, newTok))
			if a := exs[i].ReqHeader.Get("Authorization"); strings.Contains(a, old) {
				exs[i].ReqHeader.Set("Authorization", strings.ReplaceAll(a, old, newTok))
			}
		}
		return exs
	}
}

var (
	edge403 = func(ex *mcptap.Exchange) {
		ex.Status = 403
		ex.RespHeader.Set("Server", "cloudflare")
		ex.RespHeader.Set("Cf-Ray", "8f1e2d3c4b5a6978-SJC")
		ex.RespHeader.Set("Content-Type", "text/plain; charset=UTF-8")
		ex.RespBody = []byte("Your request was blocked.")
	}
	ngrokPage = body("text/html", `<!DOCTYPE html><html><body>You are about to visit mcp.example.com … add the ngrok-skip-browser-warning header</body></html>`)
	stream    = func(b *oauthtest.Builder, so sofar, d time.Duration, err string) {
		e := b.Do("GET", "https://mcp.example.com/mcp", 200).H("Authorization", "Bearer "+so.access, "Accept", "text/event-stream", "Mcp-Session-Id", "sess-1").
			Resp("text/event-stream", ": ping\n\n")
		e.End = e.Start.Add(d)
		e.Err = err
		e.Mode = mcptap.ModeReverse
		b.Wait(d)
	}
	insufficient = func(scope string) func(*mcptap.Exchange) {
		return func(ex *mcptap.Exchange) {
			ex.Status = 403
			ex.RespHeader.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`)
		}
	}
	stepup = func(b *oauthtest.Builder, so sofar, scope string, st int) {
		u := fmt.Sprintf("https://mcp.example.com/authorize?response_type=code&client_id=%s&redirect_uri=%s&state=st%d&code_challenge=abc&code_challenge_method=S256&resource=%s&scope=%s",
			url.QueryEscape(so.clientID), url.QueryEscape("https://claude.ai/api/mcp/auth_callback"), b.Len(), url.QueryEscape(so.resource), url.QueryEscape(scope))
		b.Do("GET", u, st).H("User-Agent", "Mozilla/5.0").Resp("text/html", "<html>consent</html>")
	}
)

func init() {
	add := map[mcptap.RuleID][]variant{
		mcptap.RuleEdgeBlocked: {
			{name: "Claude-User blocked by Cloudflare's AI-bot rule", exs: mut(S{Client: "claude"}, firstAuthMCP(), edge403)},
			{name: "registration behind a managed challenge", exs: mut(S{Client: "chatgpt"}, post("/register"), func(ex *mcptap.Exchange) {
				ex.Status = 403
				ex.RespHeader.Set("Cf-Mitigated", "challenge")
				ex.RespHeader.Set("Content-Type", "text/html")
				ex.RespBody = []byte("<title>Just a moment...</title>")
			})},
		},
		mcptap.RuleTunnelInterstitial: {
			{name: "ngrok warning page instead of the metadata", exs: mut(S{Client: "claude"}, path(prmPath), ngrokPage)},
		},
		mcptap.RuleTransportStreamCut: {
			{name: "three streams cut at ~125 s", exs: then(S{Client: "vscode", Mode: mcptap.ModeReverse}, func(b *oauthtest.Builder, so sofar) {
				for _, d := range []time.Duration{124 * time.Second, 126 * time.Second, 125 * time.Second} {
					stream(b, so, d, "context canceled")
				}
			})},
		},
		mcptap.RuleDiscoveryLazyAuth: {
			{name: "initialize 200 without a token, tools/call 401", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
				b.Do("POST", "https://mcp.example.com/mcp", 200).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}`).
					JSON(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}`)
				b.Do("POST", "https://mcp.example.com/mcp", 401).Body("application/json", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`).
					RH("WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`).JSON(`{"error":"invalid_token"}`)
			})},
		},
		mcptap.RuleDiscoveryAsMetadataMissing: {
			{name: "RFC 8414 and OIDC locations 404", exs: chain(S{Client: "claude"},
				at(path(metaPath), both(status(404), body("text/plain", "Not Found"))),
				copies(path(metaPath), 1, func(ex *mcptap.Exchange) { ex.Target = "/.well-known/openid-configuration" }),
				func(exs []mcptap.Exchange) []mcptap.Exchange { return exs[:4] })},
		},
		mcptap.RuleCORSPreflight: {
			{name: "OPTIONS on the token endpoint 404", fault: mcptap.FaultAuthServer, exs: then(S{Client: "vscode"}, func(b *oauthtest.Builder, so sofar) {
				b.Do("OPTIONS", "https://mcp.example.com/token", 404).H("Origin", "http://localhost:6274", "Access-Control-Request-Method", "POST").Resp("text/plain", "Not Found")
			})},
			{name: "protected resource metadata without Access-Control-Allow-Origin", exs: then(S{Client: "vscode"}, func(b *oauthtest.Builder, so sofar) {
				b.Do("OPTIONS", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", 204).H("Origin", "http://localhost:6274", "Access-Control-Request-Method", "GET")
			})},
			// A form-encoded token request is CORS-simple: no preflight,
			// the code redeemed, and an answer the page cannot read.
			{name: "token answer without Access-Control-Allow-Origin", fault: mcptap.FaultAuthServer, exs: mut(S{Client: "vscode"}, path("/token"), func(ex *mcptap.Exchange) {
				ex.ReqHeader.Set("Origin", "http://localhost:6274")
			})},
		},
		mcptap.RuleRegisterCIMDFallback: {
			{name: "CIMD without none", exs: mut(S{Client: "claude"}, path(metaPath), replaceBody(`"token_endpoint_auth_methods_supported":["none","client_secret_post"]`, `"token_endpoint_auth_methods_supported":["private_key_jwt"],"client_id_metadata_document_supported":true`))},
		},
		mcptap.RuleRegisterThrottled: {
			{name: "429 with Retry-After", exs: cut(S{Client: "claude"}, path("/register")), sev: "", fault: ""},
		},
		mcptap.RuleRegisterApplicationType: {
			{name: "loopback redirect, OIDC web default", exs: mut(S{Client: "vscode", RegisterStatus: 400}, path("/register"),
				body("application/json", `{"error":"invalid_redirect_uri","error_description":"web clients must use https redirect URIs"}`))},
		},
		mcptap.RuleRegisterBadResponse: {
			{name: "200 instead of 201", exs: mut(S{Client: "chatgpt"}, path("/register"), status(200))},
			{name: "no client_id", exs: mut(S{Client: "chatgpt"}, path("/register"), replaceBody(`"client_id":`, `"id":`))},
		},
		mcptap.RuleRegisterChurn: {
			{name: "registers on every connect", exs: chain(S{Client: "claude"}, copies(path("/register"), 2, func(*mcptap.Exchange) {}))},
		},
		mcptap.RuleRegisterWrongHost: {
			{name: "registration on the MCP path", exs: mut(S{Client: "chatgpt"}, path("/register"), func(ex *mcptap.Exchange) { ex.Target = "/mcp/register" })},
		},
		mcptap.RuleRegisterCIMDAuthMethod: {
			{name: "ChatGPT private_key_jwt refused", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
				b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(strings.Replace(asMeta, `"none","private_key_jwt"`, `"none"`, 1))
				b.Do("POST", "https://mcp.example.com/token", 401).Form("grant_type=authorization_code", "code=abc", "client_id="+url.QueryEscape("https://chatgpt.com/oauth/app1/client.json"),
					"client_assertion_type="+url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), "client_assertion="+jwtOf(`{"iss":"https://chatgpt.com/oauth/app1/client.json","sub":"https://chatgpt.com/oauth/app1/client.json","aud":"https://mcp.example.com/token","exp":1900000000}`)).
					JSON(`{"error":"invalid_client","error_description":"unknown OAuth client"}`)
			})},
		},
		mcptap.RuleRegisterCIMDFailed: {
			{name: "metadata document URL as unknown client", exs: custom(mcptap.ModeHAR, func(b *oauthtest.Builder) {
				b.Do("GET", "https://mcp.example.com/authorize?response_type=code&client_id="+url.QueryEscape("https://claude.ai/oauth/mcp-oauth-client-metadata")+"&redirect_uri="+url.QueryEscape("https://claude.ai/api/mcp/auth_callback")+"&state=s1&code_challenge=abc&code_challenge_method=S256", 401).
					JSON(`{"error":"invalid_client","error_description":"Client not found"}`)
			})},
		},
		mcptap.RuleAuthorizeNoClientID: {
			{name: "authorize after a failed registration", exs: mut(S{Client: "chatgpt"}, path("/authorize"), rmParam("client_id"))},
		},
		mcptap.RuleAuthorizeMalformed: {
			{name: "state twice, refused", exs: mut(S{Client: "claude", AuthorizeStatus: 400, AuthorizeBody: "invalid_request"}, path("/authorize"), func(ex *mcptap.Exchange) { ex.Target += "&state=again" })},
			// The server took a value and issued a code: the flow went on,
			// so a warning.
			{name: "state twice, code issued", sev: mcptap.SevWarning, exs: mut(S{Client: "claude"}, path("/authorize"), func(ex *mcptap.Exchange) { ex.Target += "&state=again" })},
			{name: "redirect_uri not encoded", sev: mcptap.SevWarning, exs: mut(S{Client: "vscode"}, path("/authorize"), func(ex *mcptap.Exchange) {
				ex.Target = regexp.MustCompile(`redirect_uri=[^&]*`).ReplaceAllString(ex.Target, "redirect_uri=callback")
			})},
		},
		mcptap.RuleAuthorizeScope: {
			{name: "scope not offered, attempt stopped", exs: mut(S{Client: "claude", AuthorizeStatus: 400, AuthorizeBody: "invalid_scope"}, path("/authorize"), func(ex *mcptap.Exchange) {
				ex.Target = strings.Replace(ex.Target, "scope=mcp", "scope=admin", 1)
			})},
			// RFC 6749's way: redirected back with invalid_scope. The
			// error redirect is this rule's consequence.
			{name: "scope not offered, sent back with invalid_scope", exs: mut(S{Client: "claude", AuthorizeError: "invalid_scope"}, path("/authorize"), func(ex *mcptap.Exchange) {
				ex.Target = strings.Replace(ex.Target, "scope=mcp", "scope=admin", 1)
			})},
		},
		mcptap.RuleAuthorizeRegisteredRedirectRefused: {
			{name: "Copilot Studio-style refusal", exs: sc(S{Client: "chatgpt", AuthorizeStatus: 400, AuthorizeBody: `{"error":"invalid_request","error_description":"Invalid redirect URI"}`})},
		},
		mcptap.RuleAuthorizeResourceFromWrongPRM: {
			{name: "root metadata's resource", exs: chain(S{Client: "claude", AuthResource: "https://mcp.example.com/"},
				copies(path(prmPath+"/mcp"), 1, func(ex *mcptap.Exchange) {
					ex.Target = prmPath
					ex.RespBody = []byte(`{"resource":"https://mcp.example.com/","authorization_servers":["https://mcp.example.com"]}`)
				}))},
		},
		mcptap.RuleAuthorizeCSPBlocksRedirect: {
			{name: "form-action 'self'", exs: mut(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form method=post>Allow</form>"}, path("/authorize"), func(ex *mcptap.Exchange) {
				ex.RespHeader.Set("Content-Security-Policy", "default-src 'self'; form-action 'self'")
			})},
			// F-28's own signature: the approval's 302 to the client was
			// recorded, and neither a callback nor a token request followed.
			{name: "approval redirect recorded, nothing after it", exs: mut(S{Client: "claude", NoToken: true, EndWait: 2 * time.Minute}, path("/authorize"), func(ex *mcptap.Exchange) {
				ex.RespHeader.Set("Content-Security-Policy", "form-action 'self'")
			})},
		},
		mcptap.RuleAuthorizeIss: {
			{name: "client went on", sev: mcptap.SevWarning, exs: mut(S{Client: "vscode"}, path(metaPath), replaceBody(`"scopes_supported"`, `"authorization_response_iss_parameter_supported":true,"scopes_supported"`))},
			{name: "strict client stopped before the token", exs: mut(S{Client: "vscode", NoToken: true, EndWait: 2 * time.Minute}, path(metaPath), replaceBody(`"scopes_supported"`, `"authorization_response_iss_parameter_supported":true,"scopes_supported"`))},
		},
		mcptap.RuleCallbackUnreachable: {
			{name: "loopback callback refused", exs: mut(S{Client: "vscode", Browser: true}, func(ex *mcptap.Exchange) bool { return ex.Host == "127.0.0.1:33418" }, func(ex *mcptap.Exchange) {
				ex.Status, ex.Err = 0, "net::ERR_CONNECTION_REFUSED"
			})},
		},
		mcptap.RuleCallbackMissingData: {
			{name: "callback page loaded, nothing posted", exs: drop(S{Client: "chatgpt", Browser: true}, path("/backend-api/aip/connectors/links/oauth/callback"))},
		},
		mcptap.RuleTokenTransport: {
			{name: "JSON token request", exs: mut(S{Client: "chatgpt"}, isCodeToken, func(ex *mcptap.Exchange) {
				ex.ReqHeader.Set("Content-Type", "application/json")
				ex.ReqBody = []byte(`{"grant_type":"authorization_code","code":"x"}`)
				ex.Status = 400
				ex.RespBody = []byte(`{"error":"invalid_request"}`)
			})},
			{name: "405", fault: mcptap.FaultAuthServer, exs: mut(S{Client: "chatgpt"}, isCodeToken, both(status(405), body("text/html", "Method Not Allowed")))},
		},
		mcptap.RuleTokenNoRefresh: {
			{name: "no refresh_token", exs: mut(S{Client: "claude"}, isCodeToken, func(ex *mcptap.Exchange) {
				ex.RespBody = regexp.MustCompile(`,"refresh_token":"[^"]*"`).ReplaceAll(ex.RespBody, nil)
			})},
		},
		mcptap.RuleCodeExpired: {
			{name: "redeemed after 15 minutes", exs: sc(S{Client: "claude", TokenDelay: 15 * time.Minute, TokenError: "invalid_grant"})},
			// The authorization server's own lifetime, shorter than the usual.
			{name: "Entra says the code expired (AADSTS70008)", exs: mut(S{Client: "vscode", TokenDelay: 2 * time.Second, TokenError: "invalid_grant"}, path("/token"), tokenErrorBody("AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."))},
		},
		mcptap.RuleTokenEncryptedOrOpaque: {
			{name: "Auth0-style JWE", exs: chain(S{Client: "vscode", MCPStatus: 401}, swapAccess("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv.cipher.tag"))},
			{name: "opaque token", exs: chain(S{Client: "claude", MCPStatus: 401}, swapAccess("opaque-7f3e9a"))},
		},
		mcptap.RuleTokenClientAssertionInvalid: {
			{name: "aud is not the token endpoint", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
				b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
				b.Do("POST", "https://mcp.example.com/token", 401).Form("grant_type=authorization_code", "code=abc", "client_id=svc-1",
					"client_assertion_type="+url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), "client_assertion="+jwtOf(`{"iss":"svc-1","sub":"svc-1","aud":"https://other.example/token","exp":1900000000}`)).
					JSON(`{"error":"invalid_client"}`)
			})},
		},
		mcptap.RuleAssertionRejected: {
			{name: "ID-JAG for another audience", fault: mcptap.FaultClient, exs: custom("", assertionGrant("urn:ietf:params:oauth:grant-type:jwt-bearer", 400, `{"error":"invalid_grant","error_description":"Audience validation failed"}`, "https://other-as.example", false))},
			{name: "client_credentials refused", exs: custom("", assertionGrant("client_credentials", 401, `{"error":"unauthorized_client"}`, "", false))},
		},
		mcptap.RuleRefreshUnsupported: {
			{name: "unsupported_grant_type", exs: mut(S{Client: "claude", Refresh: true}, isRefresh, both(status(400), body("application/json", `{"error":"unsupported_grant_type"}`)))},
		},
		mcptap.RuleRefreshReuseRace: {
			{name: "two refreshes of one token", exs: chain(S{Client: "claude", Refresh: true}, copies(isRefresh, 1, both(status(400), body("application/json", `{"error":"invalid_grant","error_description":"Grant not found"}`))))},
		},
		mcptap.RuleRefreshRetryStorm: {
			{name: "five refusals", exs: chain(S{Client: "mcp-remote", Refresh: true},
				at(isRefresh, both(status(400), body("application/json", `{"error":"invalid_grant"}`))),
				copies(isRefresh, 4, func(*mcptap.Exchange) {}))},
		},
		mcptap.RuleRefreshResourceDrift: {
			{name: "refresh without resource", exs: mut(S{Client: "claude", Refresh: true}, isRefresh, rmParam("resource"))},
		},
		mcptap.RuleMCPNotAcceptable: {
			{name: "406 for a missing text/event-stream", exs: mut(S{Client: "vscode"}, firstAuthMCP(), func(ex *mcptap.Exchange) {
				ex.ReqHeader.Set("Accept", "application/json")
				ex.Status = 406
				ex.RespBody = []byte(`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Not Acceptable: Client must accept both application/json and text/event-stream"},"id":null}`)
			})},
			{name: "Go SDK: 400 Accept must contain both", exs: mut(S{Client: "chatgpt"}, firstAuthMCP(), func(ex *mcptap.Exchange) {
				ex.ReqHeader.Set("Accept", "application/json")
				ex.Status = 400
				ex.RespHeader.Set("Content-Type", "text/plain; charset=utf-8")
				ex.RespBody = []byte("Accept must contain both 'application/json' and 'text/event-stream'\n")
			})},
		},
		mcptap.RuleMCPProtocolVersionHeaderMissing: {
			{name: "tools/list without the header", exs: mut(S{Client: "chatgpt"}, func(ex *mcptap.Exchange) bool { return strings.Contains(string(ex.ReqBody), "tools/list") },
				func(ex *mcptap.Exchange) { ex.ReqHeader.Del("Mcp-Protocol-Version") })},
		},
		mcptap.RuleMCPLegacyProtocolAnswered: {
			{name: "2024-11-05 answer, GET fallback 405", exs: func() []mcptap.Exchange {
				return then(S{Client: "chatgpt"}, func(b *oauthtest.Builder, so sofar) {
					b.Do("GET", "https://mcp.example.com/mcp", 405).H("Authorization", "Bearer "+so.access, "Accept", "text/event-stream")
				})()
			}},
		},
		mcptap.RuleDPoPSchemeMismatch: {
			{name: "DPoP token sent as Bearer", exs: custom("", func(b *oauthtest.Builder) {
				assertionGrant("client_credentials", 200, okToken("DPoP"), "", false)(b)
			})},
		},
		mcptap.RuleDPoPNonceLoop: {
			{name: "three nonce challenges at the token endpoint", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
				b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
				for i := range 3 {
					b.Do("POST", "https://mcp.example.com/token", 400).H("DPoP", jwtOf(`{"jti":"`+fmt.Sprint(i)+`"}`)).Form("grant_type=client_credentials", "client_id=svc-1", "client_secret=x").
						RH("DPoP-Nonce", fmt.Sprintf("n-%d", i)).JSON(`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
				}
			})},
		},
		mcptap.RuleMCPStepupByRefresh: {
			{name: "refresh without the new scope", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
				mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="mcp admin"`).JSON(`{"error":"insufficient_scope"}`)
				b.Do("POST", "https://mcp.example.com/token", 200).Form("grant_type=refresh_token", "refresh_token="+so.refresh, "client_id="+url.QueryEscape(so.clientID), "resource="+url.QueryEscape(so.resource)).
					JSON(`{"access_token":"` + accessJWT + `","token_type":"Bearer","refresh_token":"rt2","scope":"mcp"}`)
				mcpCall(b, "Bearer", accessJWT, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="mcp admin"`).JSON(`{"error":"insufficient_scope"}`)
			})},
		},
		mcptap.RuleMCPScopeNotAccumulated: {
			{name: "step-up asks for the new scope only", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
				mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`).JSON(`{"error":"insufficient_scope"}`)
				stepup(b, so, "admin", 200)
			})},
		},
		mcptap.RuleMCPScopeLoop: {
			{name: "three rounds of the same scope", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
				for range 2 {
					mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`).JSON(`{"error":"insufficient_scope"}`)
					stepup(b, so, "mcp", 200)
				}
				mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`).JSON(`{"error":"insufficient_scope"}`)
			})},
		},
		mcptap.RuleMCPReauthIgnored: {
			{name: "401 after expiry, nothing after", exs: then(S{Client: "chatgpt"}, func(b *oauthtest.Builder, so sofar) {
				b.Wait(time.Hour)
				mcpCall(b, "Bearer", so.access, 401, "tools/call").RH("WWW-Authenticate", `Bearer error="invalid_token", error_description="expired"`).JSON(`{"error":"invalid_token"}`)
				b.Wait(5 * time.Minute)
				b.Do("GET", "https://mcp.example.com/healthz", 200)
			})},
		},
		mcptap.RuleEdgeSilentAfterToken: {
			{name: "Claude, token then silence", exs: sc(S{Client: "claude", NoBearer: true})},
		},
		mcptap.RuleAuthorizeSessionLost: {
			{name: "oidc-provider SessionNotFound", exs: sc(S{Client: "chatgpt", AuthorizeStatus: 400, AuthorizeBody: `<h1>oops! something went wrong</h1><pre>SessionNotFound: invalid_request: interaction session not found</pre>`})},
			{name: "loop back to the login", exs: chain(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form action=/login>Sign in</form>"},
				copies(path("/authorize"), 2, func(*mcptap.Exchange) {}))},
			// The consent page's POST, on the authorization server's origin
			// after the authorize, is refused: no hop kind, part of the attempt.
			{name: "the consent POST finds no pending authorization", exs: chain(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form method=post action=/consent>Allow</form>"},
				copies(path("/authorize"), 1, consentRefused("invalid_request: interaction session not found")))},
		},
	}
	// Applied by hand where the generic scenario knob does not exist.
	add[mcptap.RuleRegisterThrottled][0].exs = mut(S{Client: "claude"}, path("/register"), func(ex *mcptap.Exchange) {
		ex.Status = 429
		ex.RespHeader.Set("Retry-After", "3600")
		ex.RespBody = []byte(`{"error":"too_many_requests"}`)
	})
	add[mcptap.RuleMCPLegacyProtocolAnswered][0].exs = chain(S{Client: "chatgpt"},
		at(firstAuthMCP(), replaceBody(`"protocolVersion":"2025-11-25","capabilities":{"tools":{}}`, `"protocolVersion":"2024-11-05","capabilities":{"tools":{}}`)),
		func(exs []mcptap.Exchange) []mcptap.Exchange {
			last := exs[len(exs)-1]
			g := last
			g.ID, g.Method, g.ReqBody, g.Status = last.ID+"-get", "GET", nil, 405
			g.Start, g.ResponseAt, g.End = last.Start.Add(time.Second), last.ResponseAt.Add(time.Second), last.End.Add(time.Second)
			g.ReqHeader = last.ReqHeader.Clone()
			g.ReqHeader.Set("Accept", "text/event-stream")
			g.RespHeader = last.RespHeader.Clone()
			g.RespBody = nil
			return append(exs, g)
		})
	for id, vs := range add {
		if _, dup := ruleVariants[id]; dup {
			panic("variants twice for " + id)
		}
		ruleVariants[id] = vs
	}
}

// nearMiss are traffic close to each rule's signature that must not raise
// it: the healthy counterpart of every rule added after Tier 1. (Tier-1
// rules are held silent by every healthy fixture, TestRulesSilentOnHealthy.)
var nearMiss = map[mcptap.RuleID][]variant{
	// A browser-based client's preflight on a metadata path: its empty 204
	// is not the document (it once read as discovery.not-json).
	mcptap.RuleDiscoveryNotJSON: {{name: "a browser's CORS preflight on the metadata path", exs: then(S{Client: "vscode"}, func(b *oauthtest.Builder, so sofar) {
		b.Do("OPTIONS", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", 204).
			H("Origin", "http://localhost:6274", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "mcp-protocol-version").
			RH("Access-Control-Allow-Origin", "http://localhost:6274", "Access-Control-Allow-Headers", "mcp-protocol-version")
	})}},
	// A page is the right answer to a client the server does not know (here
	// a client ID metadata document it does not accept; oidc-provider's shape).
	mcptap.RuleAuthorizeErrorNotRedirected: {{name: "page for an unaccepted client ID metadata document", exs: custom(mcptap.ModeHAR, func(b *oauthtest.Builder) {
		b.Do("GET", "https://mcp.example.com/authorize?response_type=code&client_id="+url.QueryEscape("https://vscode.dev/oauth/client-metadata.json")+"&redirect_uri="+url.QueryEscape("http://127.0.0.1:33418/")+"&state=s1&code_challenge=abc&code_challenge_method=S256", 400).
			Resp("text/html", "<h1>oops! something went wrong</h1><pre>invalid_client: client is invalid</pre>")
	})}},
	// A token request sent as JSON still redeems its code: token.transport
	// judges the encoding, the code is not "never redeemed".
	mcptap.RuleTokenNeverCalled: {{name: "token request sent as JSON", exs: mut(S{Client: "vscode"}, isCodeToken, func(ex *mcptap.Exchange) {
		f, _ := url.ParseQuery(string(ex.ReqBody))
		m := map[string]string{}
		for k := range f {
			m[k] = f.Get(k)
		}
		b, _ := json.Marshal(m)
		ex.ReqHeader.Set("Content-Type", "application/json")
		ex.ReqBody = b
		ex.Status = 400
		ex.RespBody = []byte(`{"error":"invalid_request","error_description":"body must be form-encoded"}`)
	})}},
	mcptap.RuleFlowIncomplete:         {{name: "complete flow", exs: sc(S{Client: "claude"})}},
	mcptap.RuleAuthorizeErrorReturned: {{name: "code returned", exs: sc(S{Client: "chatgpt"})}},
	mcptap.RuleMCPForbidden: {
		{name: "403 insufficient_scope", exs: mut(S{Client: "claude"}, firstAuthMCP(), insufficient("admin"))},
		{name: "edge block", exs: mut(S{Client: "claude"}, firstAuthMCP(), edge403)},
	},
	mcptap.RuleDiscoveryChallengeInternal: {{name: "public challenge", exs: sc(S{Client: "claude"})}},
	mcptap.RuleEdgeBlocked: {
		{name: "origin's own 403 passed on by Cloudflare", exs: mut(S{Client: "claude"}, firstAuthMCP(), both(edge403, body("text/plain", `Forbidden: invalid Host header "x.ngrok.app"`)))},
	},
	mcptap.RuleTunnelInterstitial: {{name: "an app's HTML page", exs: sc(S{Client: "claude", PRMNotJSON: true})}},
	mcptap.RuleTransportStreamCut: {
		{name: "streams of different lengths", exs: then(S{Client: "vscode", Mode: mcptap.ModeReverse}, func(b *oauthtest.Builder, so sofar) {
			for _, d := range []time.Duration{70 * time.Second, 200 * time.Second, 400 * time.Second} {
				stream(b, so, d, "context canceled")
			}
		})},
		{name: "streams the server ended", exs: then(S{Client: "vscode", Mode: mcptap.ModeReverse}, func(b *oauthtest.Builder, so sofar) {
			for range 3 {
				stream(b, so, 125*time.Second, "")
			}
		})},
	},
	mcptap.RuleDiscoveryLazyAuth: {{name: "initialize refused first", exs: sc(S{Client: "claude", Mode: mcptap.ModeReverse})}},
	mcptap.RuleDiscoveryAsMetadataMissing: {
		{name: "RFC 8414 404, OIDC 200", exs: chain(S{Client: "claude"}, copies(path(metaPath), 1, func(ex *mcptap.Exchange) { ex.Target = "/.well-known/openid-configuration" }),
			at(func(ex *mcptap.Exchange) bool { return ex.Target == metaPath }, both(status(404), body("text/plain", "Not Found"))))},
	},
	mcptap.RuleCORSPreflight: {
		{name: "preflight allowed", exs: then(S{Client: "vscode"}, func(b *oauthtest.Builder, so sofar) {
			b.Do("OPTIONS", "https://mcp.example.com/token", 204).H("Origin", "http://localhost:6274", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type").
				RH("Access-Control-Allow-Origin", "*", "Access-Control-Allow-Headers", "Content-Type, Authorization")
		})},
		{name: "token answer readable by the page", exs: mut(S{Client: "vscode"}, path("/token"), func(ex *mcptap.Exchange) {
			ex.ReqHeader.Set("Origin", "http://localhost:6274")
			ex.RespHeader.Set("Access-Control-Allow-Origin", "http://localhost:6274")
		})},
		// A form submitted from another origin navigates: no CORS.
		{name: "a form POST navigation from another origin", exs: mut(S{Client: "vscode"}, path("/token"), func(ex *mcptap.Exchange) {
			ex.ReqHeader.Set("Origin", "http://localhost:6274")
			ex.ReqHeader.Set("Sec-Fetch-Mode", "navigate")
		})},
		// Chrome sends Origin on every POST, same-origin ones too.
		{name: "same-origin POST with Origin", exs: mut(S{Client: "vscode"}, path("/token"), func(ex *mcptap.Exchange) {
			ex.ReqHeader.Set("Origin", "https://mcp.example.com")
		})},
	},
	mcptap.RuleRegisterCIMDFallback: {
		{name: "CIMD with none", exs: mut(S{Client: "claude"}, path(metaPath), replaceBody(`"scopes_supported"`, `"client_id_metadata_document_supported":true,"scopes_supported"`))},
	},
	mcptap.RuleRegisterThrottled: {{name: "registration 201", exs: sc(S{Client: "claude"})}},
	mcptap.RuleRegisterApplicationType: {
		{name: "refused by an allow-list", exs: sc(S{Client: "vscode", RegisterStatus: 400})},
		{name: "native declared", exs: mut(S{Client: "vscode", RegisterStatus: 400}, path("/register"), func(ex *mcptap.Exchange) {
			ex.ReqBody = []byte(strings.Replace(string(ex.ReqBody), `{`, `{"application_type":"native",`, 1))
			ex.RespBody = []byte(`{"error":"invalid_redirect_uri","error_description":"web clients must use https"}`)
		})},
	},
	mcptap.RuleRegisterBadResponse: {{name: "201 with the metadata echoed", exs: sc(S{Client: "chatgpt"})}},
	mcptap.RuleRegisterChurn: {
		{name: "two clients", exs: chain(S{Client: "claude"}, copies(path("/register"), 1, func(ex *mcptap.Exchange) {
			ex.ReqBody = []byte(strings.Replace(string(ex.ReqBody), "claude", "other", 1))
		}))},
		{name: "the same metadata at two authorization servers", exs: chain(S{Client: "claude"}, copies(path("/register"), 1, func(ex *mcptap.Exchange) {
			ex.Host = "auth.other.example"
		}))},
	},
	mcptap.RuleRegisterWrongHost: {{name: "the metadata's endpoint", exs: sc(S{Client: "chatgpt"})}},
	// A registration refused at a host the metadata does not name is the
	// client's mistake (register.wrong-host), not a rejection.
	mcptap.RuleRegisterRejected: {{name: "refused at the wrong host", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
		b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
		b.Do("POST", "https://mcp.example.com/mcp/register", 404).Body("application/json", `{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"]}`).Resp("text/plain", "404 page not found")
	})}},
	// RFC 9728 §3.3: metadata fetched from the challenge's resource_metadata
	// names the URL that was challenged, wherever it is served from.
	mcptap.RuleDiscoveryResourceMismatch: {{name: "the root document names the origin (RFC 9728 §3.3)", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
		b.Do("POST", "https://mcp.example.com/mcp", 401).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`).
			RH("WWW-Authenticate", `Bearer realm="mcp"`).JSON(`{"error":"unauthorized"}`)
		b.Do("GET", "https://mcp.example.com/.well-known/oauth-protected-resource", 200).
			JSON(`{"resource":"https://mcp.example.com","authorization_servers":["https://mcp.example.com"]}`)
	})}, {name: "metadata named by the challenge, served elsewhere", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
		b.Do("POST", "https://mcp.example.com/mcp", 401).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`).
			RH("WWW-Authenticate", `Bearer resource_metadata="http://10.0.0.5:3000/.well-known/oauth-protected-resource/mcp"`).JSON(`{"error":"unauthorized"}`)
		b.Do("GET", "http://10.0.0.5:3000/.well-known/oauth-protected-resource/mcp", 200).
			JSON(`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com"]}`)
	})}},
	// An authorize without client_id has no client to be unknown.
	mcptap.RuleClientUnknown: {{name: "authorize without client_id", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
		b.Do("GET", "https://mcp.example.com/authorize?response_type=code&redirect_uri="+url.QueryEscape("http://127.0.0.1:33418/")+"&state=s1&code_challenge=abc&code_challenge_method=S256", 400).
			JSON(`{"error":"invalid_client","error_description":"unknown client_id"}`)
	})}},
	mcptap.RuleRegisterCIMDAuthMethod: {
		{name: "private_key_jwt accepted", exs: custom("", assertionGrant("client_credentials", 200, okToken("Bearer"), "", false))},
		// The metadata lists private_key_jwt: the refusal is of this
		// assertion or document, not of the method.
		{name: "refused by a server that takes private_key_jwt", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
			b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
			b.Do("POST", "https://mcp.example.com/token", 401).Form("grant_type=authorization_code", "code=abc", "client_id="+url.QueryEscape("https://chatgpt.com/oauth/app1/client.json"),
				"client_assertion_type="+url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), "client_assertion="+jwtOf(`{"iss":"https://chatgpt.com/oauth/app1/client.json","sub":"https://chatgpt.com/oauth/app1/client.json","aud":"https://mcp.example.com/token","exp":1900000000}`)).
				JSON(`{"error":"invalid_client","error_description":"unknown OAuth client"}`)
		})},
	},
	mcptap.RuleRegisterCIMDFailed: {
		{name: "metadata document accepted", exs: mut(S{Client: "claude"}, path("/authorize"), func(ex *mcptap.Exchange) {
			ex.Target = regexp.MustCompile(`client_id=[^&]*`).ReplaceAllString(ex.Target, "client_id="+url.QueryEscape("https://claude.ai/oauth/mcp-oauth-client-metadata"))
		})},
	},
	mcptap.RuleAuthorizeNoClientID: {{name: "client_id sent", exs: sc(S{Client: "chatgpt"})}},
	mcptap.RuleAuthorizeMalformed: {{name: "two resources (RFC 8707 allows it)", exs: mut(S{Client: "claude"}, path("/authorize"), func(ex *mcptap.Exchange) {
		ex.Target += "&resource=" + url.QueryEscape("https://mcp.example.com/other")
	})}},
	mcptap.RuleAuthorizeScope: {{name: "unlisted scope, token issued", exs: mut(S{Client: "claude"}, path("/authorize"), func(ex *mcptap.Exchange) {
		ex.Target = strings.Replace(ex.Target, "scope=mcp", "scope=mcp+offline_access", 1)
	})}, {name: "unlisted scope, the user declined", exs: mut(S{Client: "claude", AuthorizeError: "access_denied"}, path("/authorize"), func(ex *mcptap.Exchange) {
		ex.Target = strings.Replace(ex.Target, "scope=mcp", "scope=mcp+offline_access", 1)
	})}},
	mcptap.RuleAuthorizeRegisteredRedirectRefused: {{name: "unregistered redirect refused", exs: sc(S{Client: "chatgpt", RegisterOther: "https://chatgpt.com/connector/oauth/other", AuthorizeStatus: 400, AuthorizeBody: "Invalid redirect URI"})}},
	mcptap.RuleAuthorizeResourceFromWrongPRM: {
		{name: "root metadata fetched, challenged resource used", exs: chain(S{Client: "claude"},
			copies(path(prmPath+"/mcp"), 1, func(ex *mcptap.Exchange) {
				ex.Target = prmPath
				ex.RespBody = []byte(`{"resource":"https://mcp.example.com/","authorization_servers":["https://mcp.example.com"]}`)
			}))},
	},
	mcptap.RuleAuthorizeCSPBlocksRedirect: {
		{name: "form-action allows the client", exs: mut(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form method=post>Allow</form>"}, path("/authorize"), func(ex *mcptap.Exchange) {
			ex.RespHeader.Set("Content-Security-Policy", "form-action 'self' https://claude.ai")
		})},
		// Firefox does not check form-action on redirects: the token came.
		{name: "form-action 'self', the client went on", exs: mut(S{Client: "claude"}, path("/authorize"), func(ex *mcptap.Exchange) {
			ex.RespHeader.Set("Content-Security-Policy", "form-action 'self'")
		})},
	},
	mcptap.RuleAuthorizeIss: {
		{name: "iss sent", exs: chain(S{Client: "vscode"}, at(path(metaPath), replaceBody(`"scopes_supported"`, `"authorization_response_iss_parameter_supported":true,"scopes_supported"`)),
			at(path("/authorize"), func(ex *mcptap.Exchange) {
				ex.RespHeader.Set("Location", ex.RespHeader.Get("Location")+"&iss="+url.QueryEscape("https://mcp.example.com"))
			}))},
	},
	mcptap.RuleCallbackUnreachable: {{name: "callback reached", exs: sc(S{Client: "vscode", Browser: true})}},
	mcptap.RuleCallbackMissingData: {{name: "completion posted", exs: sc(S{Client: "chatgpt", Browser: true})}},
	mcptap.RuleTokenTransport:      {{name: "form-encoded", exs: sc(S{Client: "chatgpt"})}},
	mcptap.RuleTokenNoRefresh: {
		{name: "client_credentials (no refresh token by RFC 6749 §4.4.3)", exs: custom("", assertionGrant("client_credentials", 200, okToken("Bearer"), "", false))},
	},
	mcptap.RuleCodeExpired: {{name: "slow but redeemed", exs: sc(S{Client: "claude", TokenDelay: 15 * time.Minute})},
		// Okta's wording covers a reused or unknown code too.
		{name: "invalid or expired, a second after", exs: mut(S{Client: "vscode", TokenDelay: time.Second, TokenError: "invalid_grant"}, path("/token"), tokenErrorBody("The authorization code is invalid or has expired."))}},
	mcptap.RuleTokenEncryptedOrOpaque: {{name: "JWE the server accepts", exs: chain(S{Client: "vscode"}, swapAccess("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..iv.cipher.tag"))}},
	mcptap.RuleTokenClientAssertionInvalid: {
		{name: "valid assertion", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
			b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
			b.Do("POST", "https://mcp.example.com/token", 200).Form("grant_type=client_credentials", "client_id=svc-1",
				"client_assertion_type="+url.QueryEscape("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), "client_assertion="+jwtOf(`{"iss":"svc-1","sub":"svc-1","aud":"https://mcp.example.com/token","exp":1900000000}`)).
				JSON(okToken("Bearer"))
		})},
	},
	mcptap.RuleAssertionRejected: {
		{name: "healthy ID-JAG grant", exs: custom("", assertionGrant("urn:ietf:params:oauth:grant-type:jwt-bearer", 200, okToken("Bearer"), "https://mcp.example.com", false))},
	},
	mcptap.RuleRefreshUnsupported: {{name: "refresh works", exs: sc(S{Client: "claude", Refresh: true})}},
	mcptap.RuleRefreshReuseRace: {
		{name: "rotation: each token once", exs: then(S{Client: "claude", Refresh: true}, func(b *oauthtest.Builder, so sofar) {
			b.Do("POST", "https://mcp.example.com/token", 200).Form("grant_type=refresh_token", "refresh_token="+so.refresh+"2", "client_id="+url.QueryEscape(so.clientID), "resource="+url.QueryEscape(so.resource)).
				JSON(`{"access_token":"` + accessJWT + `","token_type":"Bearer","refresh_token":"rt3"}`)
		})},
	},
	mcptap.RuleRefreshRetryStorm: {
		{name: "two refusals", exs: chain(S{Client: "mcp-remote", Refresh: true}, at(isRefresh, both(status(400), body("application/json", `{"error":"invalid_grant"}`))), copies(isRefresh, 1, func(*mcptap.Exchange) {}))},
	},
	mcptap.RuleRefreshResourceDrift:            {{name: "resource kept", exs: sc(S{Client: "claude", Refresh: true})}},
	mcptap.RuleMCPNotAcceptable:                {{name: "both accepted", exs: sc(S{Client: "vscode"})}},
	mcptap.RuleMCPProtocolVersionHeaderMissing: {{name: "header sent", exs: sc(S{Client: "chatgpt"})}},
	mcptap.RuleMCPLegacyProtocolAnswered: {
		{name: "stateless server: GET 405 after a current initialize", exs: then(S{Client: "chatgpt"}, func(b *oauthtest.Builder, so sofar) {
			b.Do("GET", "https://mcp.example.com/mcp", 405).H("Authorization", "Bearer "+so.access, "Accept", "text/event-stream")
		})},
	},
	mcptap.RuleDPoPSchemeMismatch: {
		{name: "healthy DPoP client and server", exs: custom("", assertionGrant("client_credentials", 200, okToken("DPoP"), "", true))},
	},
	mcptap.RuleDPoPNonceLoop: {
		{name: "one nonce challenge, then a token", exs: custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
			b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
			b.Do("POST", "https://mcp.example.com/token", 400).H("DPoP", jwtOf(`{"jti":"1"}`)).Form("grant_type=client_credentials", "client_id=svc-1", "client_secret=x").
				RH("DPoP-Nonce", "n-1").JSON(`{"error":"use_dpop_nonce"}`)
			b.Do("POST", "https://mcp.example.com/token", 200).H("DPoP", jwtOf(`{"jti":"2","nonce":"n-1"}`)).Form("grant_type=client_credentials", "client_id=svc-1", "client_secret=x").
				JSON(okToken("DPoP"))
		})},
	},
	mcptap.RuleMCPStepupByRefresh: {
		{name: "step-up by a new authorize", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
			mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="mcp admin"`).JSON(`{"error":"insufficient_scope"}`)
			stepup(b, so, "mcp admin", 200)
		})},
	},
	mcptap.RuleMCPScopeNotAccumulated: {
		{name: "union asked", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
			mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`).JSON(`{"error":"insufficient_scope"}`)
			stepup(b, so, "mcp admin", 200)
		})},
	},
	mcptap.RuleMCPScopeLoop: {
		{name: "one round", exs: then(S{Client: "claude"}, func(b *oauthtest.Builder, so sofar) {
			mcpCall(b, "Bearer", so.access, 403, "tools/call").RH("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin"`).JSON(`{"error":"insufficient_scope"}`)
			stepup(b, so, "mcp admin", 200)
		})},
	},
	mcptap.RuleMCPReauthIgnored: {
		{name: "401, then a refresh", exs: then(S{Client: "chatgpt"}, func(b *oauthtest.Builder, so sofar) {
			b.Wait(time.Hour)
			mcpCall(b, "Bearer", so.access, 401, "tools/call").RH("WWW-Authenticate", `Bearer error="invalid_token"`).JSON(`{"error":"invalid_token"}`)
			b.Do("POST", "https://mcp.example.com/token", 200).Form("grant_type=refresh_token", "refresh_token="+so.refresh, "client_id="+url.QueryEscape(so.clientID), "resource="+url.QueryEscape(so.resource)).
				JSON(`{"access_token":"` + accessJWT + `","token_type":"Bearer","refresh_token":"rt2"}`)
		})},
	},
	mcptap.RuleEdgeSilentAfterToken: {{name: "another client's silence", exs: sc(S{Client: "chatgpt", NoBearer: true})}},
	mcptap.RuleAuthorizeSessionLost: {
		{name: "a consent page, then the code", exs: sc(S{Client: "chatgpt", Stale: true})},
		{name: "the consent POST refused for another reason", exs: chain(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form method=post action=/consent>Allow</form>"},
			copies(path("/authorize"), 1, consentRefused("bad form")))},
		{name: "a session-lost page on another origin", exs: chain(S{Client: "claude", AuthorizeStatus: 200, AuthorizeBody: "<form method=post action=/consent>Allow</form>"},
			copies(path("/authorize"), 1, func(ex *mcptap.Exchange) {
				consentRefused("interaction session not found")(ex)
				ex.Host = "other.example.com"
			}))},
		{name: "a page reloaded twice, then the code", exs: chain(S{Client: "claude"}, copies(path("/authorize"), 1, func(ex *mcptap.Exchange) {
			ex.Status = 200
			ex.RespHeader.Del("Location")
		}))},
	},
}

// notYetBuilt are the catalogue's rules without an implementation. The
// list may only shrink: a rule built while still listed fails the test.
var notYetBuilt = map[mcptap.RuleID]bool{}

// Every rule of the catalogue (docs/FINDINGS.md, which the root package's
// test ties to mcptap.Catalogue) is built, has table variants with its
// signature (TestRules runs them), and, from Tier 2 on, a near miss that
// must stay silent.
func TestCatalogueCovered(t *testing.T) {
	built := map[mcptap.RuleID]bool{}
	for _, r := range oauth.Catalogue() {
		built[r.ID] = true
	}
	tier1 := true
	for _, id := range mcptap.Catalogue {
		if strings.HasPrefix(string(id), "check.") {
			continue // package check draws these; its tests cover them
		}
		if id == mcptap.RuleDiscoveryLazyAuth {
			tier1 = false // the first rule of Tier 2
		}
		switch {
		case notYetBuilt[id] && built[id]:
			t.Errorf("%s is built: take it off notYetBuilt", id)
		case notYetBuilt[id]:
			t.Logf("not built yet: %s", id)
			continue
		case !built[id]:
			t.Errorf("%s: no rule", id)
		}
		if len(ruleVariants[id]) == 0 {
			t.Errorf("%s: no table variant", id)
		}
		if !tier1 && len(nearMiss[id]) == 0 {
			t.Errorf("%s: no near miss", id)
		}
	}
	for id, vs := range nearMiss {
		for _, v := range vs {
			t.Run(string(id)+"/near-miss/"+v.name, func(t *testing.T) {
				_, fds := oauth.Analyze(v.exs(), oauth.Options{})
				for _, fd := range fds {
					if fd.Rule == id {
						t.Errorf("%s fired on a near miss: %s", id, fd.Detail)
					}
				}
			})
		}
	}
}

// Healthy shapes that are not the authorization-code dance raise nothing
// at all: an assertion grant, client_credentials, a DPoP-bound client.
func TestHealthyGrantsWithoutState(t *testing.T) {
	for name, exs := range map[string]func() []mcptap.Exchange{
		"jwt-bearer (ID-JAG)": custom("", assertionGrant("urn:ietf:params:oauth:grant-type:jwt-bearer", 200, okToken("Bearer"), "https://mcp.example.com", false)),
		"client_credentials":  custom("", assertionGrant("client_credentials", 200, okToken("Bearer"), "", false)),
		"DPoP":                custom("", assertionGrant("client_credentials", 200, okToken("DPoP"), "", true)),
		"a DPoP nonce challenge, then the token (one attempt)": custom(mcptap.ModeReverse, func(b *oauthtest.Builder) {
			b.Do("GET", "https://mcp.example.com/.well-known/oauth-authorization-server", 200).JSON(asMeta)
			b.Do("POST", "https://mcp.example.com/token", 400).H("DPoP", jwtOf(`{"jti":"1"}`)).Form("grant_type=client_credentials", "client_id=svc-1", "client_secret=x").
				RH("DPoP-Nonce", "n-1").JSON(`{"error":"use_dpop_nonce"}`)
			b.Do("POST", "https://mcp.example.com/token", 200).H("DPoP", jwtOf(`{"jti":"2","nonce":"n-1"}`)).Form("grant_type=client_credentials", "client_id=svc-1", "client_secret=x").
				JSON(okToken("DPoP"))
			e := mcpCall(b, "DPoP", accessJWT, 200, "tools/list")
			e.H("DPoP", jwtOf(`{"jti":"3","ath":"x"}`))
			e.JSON(`{"jsonrpc":"2.0","id":9,"result":{"tools":[]}}`)
		}),
		"client_credentials after discovery and registration": custom("", func(b *oauthtest.Builder) {
			b.Mode = mcptap.ModeReverse
			b.Do("POST", "https://mcp.example.com/mcp", 401).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`).
				RH("WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`)
			b.Do("GET", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", 200).JSON(`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com"]}`)
			b.Do("POST", "https://mcp.example.com/register", 201).Body("application/json", `{"client_name":"svc","grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post","redirect_uris":[]}`).
				JSON(`{"client_id":"svc-1","client_secret":"s3cret","grant_types":["client_credentials"],"redirect_uris":[]}`)
			assertionGrant("client_credentials", 200, okToken("DPoP"), "", true)(b)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			flows, fds := oauth.Analyze(exs(), oauth.Options{})
			for _, fd := range fds {
				t.Errorf("finding %s: %s", fd.Rule, fd.Detail)
			}
			if len(flows) != 1 || flows[0].Verdict.Rule != mcptap.RuleOK {
				t.Errorf("flows %+v", flows)
			}
		})
	}
}
