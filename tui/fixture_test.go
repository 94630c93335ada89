package tui

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // goldens show wall-clock times
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

type exOpt func(*mcptap.Exchange)

func reqH(kv ...string) exOpt {
	return func(e *mcptap.Exchange) {
		for i := 0; i+1 < len(kv); i += 2 {
			e.ReqHeader.Add(kv[i], kv[i+1])
		}
	}
}

func respH(kv ...string) exOpt {
	return func(e *mcptap.Exchange) {
		for i := 0; i+1 < len(kv); i += 2 {
			e.RespHeader.Add(kv[i], kv[i+1])
		}
	}
}

func reqBody(s string) exOpt {
	return func(e *mcptap.Exchange) { e.ReqBody = []byte(s); e.ReqSize = int64(len(s)) }
}

func respBody(s string) exOpt {
	return func(e *mcptap.Exchange) { e.RespBody = []byte(s); e.RespSize = int64(len(s)) }
}

// mkex builds one complete exchange at t0+at.
func mkex(id string, at time.Duration, method, host, target string, status int, opts ...exOpt) mcptap.Exchange {
	start := t0.Add(at)
	e := mcptap.Exchange{
		ID: id, Session: "s1", Mode: mcptap.ModeReverse,
		Listener: "127.0.0.1:8780", Upstream: "http://localhost:3000",
		Start: start, ResponseAt: start.Add(20 * time.Millisecond), End: start.Add(25 * time.Millisecond),
		Method: method, Scheme: "https", Host: host, Target: target, Proto: "HTTP/1.1",
		ReqHeader: http.Header{}, RespHeader: http.Header{}, Status: status, RespProto: "HTTP/1.1",
		Complete: true,
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

const (
	mcpHost  = "mcp.example.com"
	cgptHost = "chatgpt.com"
	// ChatGPT's state: base64 JSON with csrf and s (seed 000).
	cgptStateJSON = `{"csrf":"d06387cf7d5ba96b92b2587474bcd495691b2d14b059d584dca621669df3ed06","s":"oauth_s_69da6d33622081919e8b5e43c89ff601"}`
	verifier      = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge     = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

var cgptState = base64.RawURLEncoding.EncodeToString([]byte(cgptStateJSON))

// jwt makes an unsigned-looking JWT with the given claims.
func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJl"
}

func authorizeTarget(client, state, redirect string) string {
	return "/oauth/authorize?response_type=code&client_id=" + client + "&redirect_uri=" + redirect +
		"&state=" + state + "&code_challenge=" + challenge + "&code_challenge_method=S256&resource=https%3A%2F%2Fmcp.example.com%2Fmcp"
}

// fixtureExchanges is one session: a healthy Claude flow, seed 001 (state
// not echoed), seed 000 (code issued, no token call) and a ChatGPT callback
// 404, plus non-OAuth traffic and an SSE stream still open.
func fixtureExchanges() []mcptap.Exchange {
	tok := jwt(`{"iss":"https://mcp.example.com","aud":"https://mcp.example.com/mcp","sub":"u1","exp":1795690800,"iat":1795687200}`)
	claudeCB := "https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback"
	cgptCB := "https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect"
	exs := []mcptap.Exchange{
		// Healthy flow (Claude), starting at 0s.
		mkex("e01", 0, "POST", mcpHost, "/mcp", 401, respH("WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`),
			reqBody(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`)),
		mkex("e02", 100*time.Millisecond, "GET", mcpHost, "/.well-known/oauth-protected-resource", 200, respH("Content-Type", "application/json"),
			respBody(`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com"]}`)),
		mkex("e03", 200*time.Millisecond, "GET", mcpHost, "/.well-known/oauth-authorization-server", 200, respH("Content-Type", "application/json"),
			respBody(`{"issuer":"https://mcp.example.com","authorization_endpoint":"https://mcp.example.com/oauth/authorize","token_endpoint":"https://mcp.example.com/oauth/token","registration_endpoint":"https://mcp.example.com/oauth/register","code_challenge_methods_supported":["S256"]}`)),
		mkex("e04", 300*time.Millisecond, "POST", mcpHost, "/oauth/register", 201, reqH("Content-Type", "application/json"), respH("Content-Type", "application/json"),
			reqBody(`{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"client_name":"Claude"}`), respBody(`{"client_id":"cl_123"}`)),
		mkex("e05", 2*time.Second, "GET", mcpHost, authorizeTarget("cl_123", "c1aude-st4te-0001", claudeCB), 302,
			respH("Location", "https://claude.ai/api/mcp/auth_callback?code=AC_good&state=c1aude-st4te-0001")),
		mkex("e06", 3500*time.Millisecond, "POST", mcpHost, "/oauth/token", 200,
			reqH("Content-Type", "application/x-www-form-urlencoded"), respH("Content-Type", "application/json"),
			reqBody("grant_type=authorization_code&code=AC_good&redirect_uri="+claudeCB+"&client_id=cl_123&code_verifier="+verifier),
			respBody(`{"access_token":"`+tok+`","token_type":"Bearer","expires_in":3600}`)),
		mkex("e07", 3700*time.Millisecond, "POST", mcpHost, "/mcp", 200, reqH("Authorization", "Bearer "+tok, "Content-Type", "application/json"),
			respH("Content-Type", "application/json"), reqBody(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`), respBody(`{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}`)),

		// ChatGPT registers its redirect URI.
		mkex("e09", 59*time.Second, "POST", mcpHost, "/oauth/register", 201, reqH("Content-Type", "application/json"), respH("Content-Type", "application/json"),
			reqBody(`{"redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],"client_name":"ChatGPT"}`), respBody(`{"client_id":"cl_cgpt"}`)),

		// Seed 001: the authorization server drops state on the way back.
		mkex("e10", 60*time.Second, "GET", mcpHost, authorizeTarget("cl_cgpt", "8f14e45f-ceea-467f-a0e6-3b2c1d4e5f60", cgptCB), 302,
			respH("Location", "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_nostate")),

		// Seed 000: code issued with state echoed; no token call ever comes.
		mkex("e20", 120*time.Second, "GET", mcpHost, authorizeTarget("cl_cgpt", cgptState, cgptCB), 302,
			respH("Location", "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_lost&state="+cgptState)),

		// ChatGPT's own callback answers 404 "OAuth state not found" (browser proxy).
		mkex("e30", 200*time.Second, "GET", mcpHost, authorizeTarget("cl_cgpt", cgptState+"x", cgptCB), 302,
			respH("Location", "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_cb&state="+cgptState+"x")),
		mkex("e31", 201*time.Second, "POST", cgptHost, "/backend-api/aip/connectors/links/oauth/callback", 404,
			reqH("Content-Type", "application/json"), respH("Content-Type", "application/json"),
			reqBody(`{"full_redirect_url":"https://chatgpt.com/connector_platform_oauth_redirect?code=AC_cb&state=`+cgptState+`x"}`), respBody(`{"detail":"OAuth state not found"}`)),

		// Not OAuth: a health check and an SSE stream that is still open.
		mkex("e40", 30*time.Second, "GET", mcpHost, "/healthz", 200, respBody("ok")),
	}
	sse := mkex("e41", 250*time.Second, "GET", mcpHost, "/mcp", 200, reqH("Accept", "text/event-stream", "Authorization", "Bearer "+tok),
		respH("Content-Type", "text/event-stream"), respBody("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"))
	sse.Complete, sse.End = false, time.Time{}
	return append(exs, sse)
}

// fixedAnalysis is the analysis result for fixtureExchanges written out by
// hand, so the goldens test the TUI's rendering, not the rules' wording. A
// flow waiting for its token call fails by itself on Tick, like the Tracker.
type fixedAnalysis struct {
	flows    []mcptap.Flow
	findings []mcptap.Finding
	hops     map[string]mcptap.HopKind
	timeout  time.Duration
}

func (a *fixedAnalysis) Observe(mcptap.Exchange) []mcptap.Finding { return nil }
func (a *fixedAnalysis) Finish() []mcptap.Finding {
	return a.Tick(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
}
func (a *fixedAnalysis) Flows() []mcptap.Flow { return append([]mcptap.Flow(nil), a.flows...) }
func (a *fixedAnalysis) Findings() []mcptap.Finding {
	return append([]mcptap.Finding(nil), a.findings...)
}
func (a *fixedAnalysis) Hop(id string) (mcptap.HopKind, bool) { k, ok := a.hops[id]; return k, ok }

func (a *fixedAnalysis) Tick(now time.Time) []mcptap.Finding {
	var out []mcptap.Finding
	for i := range a.flows {
		f := &a.flows[i]
		if f.Status != mcptap.FlowInProgress || f.WaitingSince.IsZero() || now.Sub(f.WaitingSince) < a.timeout {
			continue
		}
		last := f.Hops[len(f.Hops)-1]
		fd := mcptap.Finding{ID: "fd-" + f.ID, Rule: "token.never-called", Severity: mcptap.SevError, Fault: mcptap.FaultClient,
			Flow: f.ID, Exchanges: []string{last.Exchange}, At: f.WaitingSince.Add(a.timeout),
			Title:  "The code was issued but no token request came within 60s",
			Detail: "The authorization server redirected to the client's redirect_uri with a code and the state echoed byte for byte, and the client never exchanged the code. The failure is on the client platform's side, before the token call.",
			Fix:    "Nothing to change on the server: report it to the client platform with this evidence; retry the connection.",
			Evidence: []mcptap.Evidence{{Exchange: last.Exchange, Field: "query.state", Want: f.State, Got: f.State,
				Note: "the state came back unchanged"}}}
		f.Status, f.Verdict = mcptap.FlowFailed, mcptap.Verdict{Rule: fd.Rule, Severity: fd.Severity, Fault: fd.Fault}
		f.Findings = append(f.Findings, fd.ID)
		f.WaitingSince, f.Updated = time.Time{}, fd.At
		a.findings = append(a.findings, fd)
		out = append(out, fd)
	}
	return out
}

func hops(kinds ...any) []mcptap.Hop {
	var hs []mcptap.Hop
	for i := 0; i+2 < len(kinds); i += 3 {
		hs = append(hs, mcptap.Hop{Kind: kinds[i].(mcptap.HopKind), Exchange: kinds[i+1].(string), Status: kinds[i+2].(int)})
	}
	return hs
}

func newFixedAnalysis(exs []mcptap.Exchange) *fixedAnalysis {
	at := map[string]time.Time{}
	for _, e := range exs {
		at[e.ID] = e.Start
	}
	fill := func(hs []mcptap.Hop) []mcptap.Hop {
		for i := range hs {
			hs[i].At = at[hs[i].Exchange]
		}
		return hs
	}
	ok := mcptap.Verdict{Rule: "ok", Severity: mcptap.SevInfo, Fault: mcptap.FaultNone}
	a := &fixedAnalysis{timeout: 60 * time.Second, hops: map[string]mcptap.HopKind{}}
	a.flows = []mcptap.Flow{
		{ID: "flow-claude-1", Client: "claude", State: "c1aude-st4te-0001", Status: mcptap.FlowComplete, Verdict: ok,
			Hops: fill(hops(mcptap.HopMCPUnauthenticated, "e01", 401, mcptap.HopDiscoveryResource, "e02", 200, mcptap.HopDiscoveryAuth, "e03", 200,
				mcptap.HopRegister, "e04", 201, mcptap.HopAuthorize, "e05", 302, mcptap.HopToken, "e06", 200, mcptap.HopMCP, "e07", 200)),
			Checks:  []mcptap.Check{{Name: "pkce", Exchange: "e06", Result: mcptap.CheckPassed, Detail: "BASE64URL(SHA256(code_verifier)) = E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM matches the authorize's code_challenge (method S256)"}},
			Started: at["e01"], Updated: at["e07"]},
		{ID: "flow-cgpt-nostate", Client: "chatgpt", State: "8f14e45f-ceea-467f-a0e6-3b2c1d4e5f60", Status: mcptap.FlowFailed,
			Verdict:  mcptap.Verdict{Rule: "state.not-echoed", Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer},
			Findings: []string{"fd-nostate"}, Hops: fill(hops(mcptap.HopAuthorize, "e10", 302)), Started: at["e10"], Updated: at["e10"]},
		{ID: "flow-cgpt-lost", Client: "chatgpt", State: cgptState,
			StateDecoded: map[string]any{"csrf": "d06387cf7d5ba96b92b2587474bcd495691b2d14b059d584dca621669df3ed06", "s": "oauth_s_69da6d33622081919e8b5e43c89ff601"},
			Status:       mcptap.FlowInProgress, Hops: fill(hops(mcptap.HopAuthorize, "e20", 302)), Started: at["e20"], Updated: at["e20"], WaitingSince: at["e20"]},
		{ID: "flow-cgpt-cb404", Client: "chatgpt", State: cgptState + "x", Status: mcptap.FlowFailed,
			Verdict:  mcptap.Verdict{Rule: "callback.state-not-found", Severity: mcptap.SevError, Fault: mcptap.FaultClient},
			Findings: []string{"fd-cb404"}, Hops: fill(hops(mcptap.HopAuthorize, "e30", 302, mcptap.HopCallbackCompletion, "e31", 404)),
			Started: at["e30"], Updated: at["e31"]},
	}
	a.findings = []mcptap.Finding{
		{ID: "fd-nostate", Rule: "state.not-echoed", Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer, Flow: "flow-cgpt-nostate",
			Exchanges: []string{"e10"}, At: at["e10"],
			Title:  "The authorization server did not send state back",
			Detail: "The authorize request carried state=8f14e45f-ceea-467f-a0e6-3b2c1d4e5f60; the redirect to the client's redirect_uri carries a code but no state, so ChatGPT rejects the callback (\"Missing `state` param in response from OAuth provider\").",
			Fix:    "Return the state parameter unchanged in the redirect to redirect_uri, next to code (RFC 6749 §4.1.2).",
			Evidence: []mcptap.Evidence{{Exchange: "e10", Field: "header.Location query.state",
				Want: "8f14e45f-ceea-467f-a0e6-3b2c1d4e5f60", Got: ""}}},
		{ID: "fd-cb404", Rule: "callback.state-not-found", Severity: mcptap.SevError, Fault: mcptap.FaultClient, Flow: "flow-cgpt-cb404",
			Exchanges: []string{"e31"}, At: at["e31"],
			Title:  "ChatGPT's callback answered 404 OAuth state not found",
			Detail: "The state chain is intact: the authorization server echoed the state byte for byte, and ChatGPT's own callback endpoint could not find the state it created.",
			Fix:    "Nothing to fix on your server: report it to OpenAI with the connector ID and this evidence.",
			Evidence: []mcptap.Evidence{{Exchange: "e30", Field: "query.state", Want: cgptState + "x", Got: cgptState + "x"},
				{Exchange: "e31", Field: "response.body", Got: `{"detail":"OAuth state not found"}`}}},
	}
	for _, f := range a.flows {
		for _, h := range f.Hops {
			a.hops[h.Exchange] = h.Kind
		}
	}
	a.hops["e41"] = mcptap.HopMCP
	return a
}

// syncBuf is a goroutine-safe writer for a program's output.
type syncBuf struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
