package oauth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// stoppedAtRegistration is an attempt that ended at its registration, with
// the MCP server and the authorization server on two origins, as the MCP Go
// SDK v1.8.0 leaves it against Ory Hydra (lab's TestPeersGoSDKWithHydra):
// challenge, protected resource metadata, authorization server metadata,
// registration answered 201 with regBody. ua is the client's User-Agent.
func stoppedAtRegistration(ua, regBody string) []mcptap.Exchange {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var exs []mcptap.Exchange
	add := func(method, origin, target, reqBody string, status int, respH http.Header, respBody string) {
		at := t0.Add(time.Duration(len(exs)) * time.Second)
		scheme, host, _ := strings.Cut(origin, "://")
		exs = append(exs, mcptap.Exchange{ID: mcptap.NewID(at), Mode: mcptap.ModeHAR, Start: at, ResponseAt: at.Add(10 * time.Millisecond),
			End: at.Add(20 * time.Millisecond), Method: method, Scheme: scheme, Host: host, Target: target,
			ReqHeader: http.Header{"User-Agent": {ua}, "Content-Type": {"application/json"}}, ReqBody: []byte(reqBody), ReqSize: int64(len(reqBody)),
			Status: status, RespHeader: respH, RespBody: []byte(respBody), RespSize: int64(len(respBody)), Complete: true})
	}
	js := http.Header{"Content-Type": {"application/json"}}
	add("POST", "https://mcp.example.com", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, 401,
		http.Header{"Www-Authenticate": {`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`}}, "")
	add("GET", "https://mcp.example.com", "/.well-known/oauth-protected-resource/mcp", "", 200, js,
		`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://auth.example.com"]}`)
	add("GET", "https://auth.example.com", "/.well-known/openid-configuration", "", 200, js,
		`{"issuer":"https://auth.example.com","authorization_endpoint":"https://auth.example.com/oauth2/auth","token_endpoint":"https://auth.example.com/oauth2/token","registration_endpoint":"https://auth.example.com/oauth2/register","code_challenge_methods_supported":["S256"],"token_endpoint_auth_methods_supported":["none"],"response_types_supported":["code"]}`)
	add("POST", "https://auth.example.com", "/oauth2/register",
		`{"redirect_uris":["http://127.0.0.1:40000/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"],"client_name":"mcptap peer test"}`,
		201, js, regBody)
	return exs
}

// Hops before any authorize, on two origins that the hops' own documents
// link (the metadata names the authorization server, whose metadata names
// the registration endpoint), are one attempt: one flow, not one per origin.
// A registration answer the identified client is known not to decode names
// the client; the same stop without it, or by another client, stays
// unexplained.
func TestStoppedAtRegistrationOneFlowAndTheClientsDecoding(t *testing.T) {
	hydra := `{"client_id":"6fd5ce9d","client_name":"mcptap peer test","redirect_uris":["http://127.0.0.1:40000/callback"],"jwks":{},"token_endpoint_auth_method":"none"}`
	plain := `{"client_id":"6fd5ce9d","client_name":"mcptap peer test","redirect_uris":["http://127.0.0.1:40000/callback"],"token_endpoint_auth_method":"none"}`
	for _, c := range []struct {
		name, ua, body string
		fault          mcptap.Fault
	}{
		{"Go SDK, Hydra's jwks object", "Go-http-client/1.1", hydra, mcptap.FaultClient},
		{"Go SDK, no jwks", "Go-http-client/1.1", plain, mcptap.FaultUnknown},
		{"another client, jwks object", "node", hydra, mcptap.FaultUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			flows, findings := oauth.Analyze(stoppedAtRegistration(c.ua, c.body), oauth.Options{})
			if len(flows) != 1 || len(flows[0].Hops) != 4 {
				t.Fatalf("want one flow of the 4 hops, got %d flows: %+v", len(flows), flows)
			}
			v := flows[0].Verdict
			if v.Rule != mcptap.RuleFlowIncomplete || v.Fault != c.fault {
				t.Fatalf("verdict %s/%s, want flow.incomplete/%s", v.Rule, v.Fault, c.fault)
			}
			for _, fd := range findings {
				if fd.Rule == mcptap.RuleFlowIncomplete && (c.fault == mcptap.FaultClient) != strings.Contains(fd.Detail, "MCP Go SDK (v1.8.0") {
					t.Errorf("detail: %s", fd.Detail)
				}
			}
		})
	}
}
