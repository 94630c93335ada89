package oauth_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// accessToken is the access token of the first successful token response.
func accessToken(t *testing.T, exs []mcptap.Exchange) string {
	t.Helper()
	for _, ex := range exs {
		if ex.Method == "POST" && ex.Target == "/token" && ex.Status == 200 {
			var r struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(ex.RespBody, &r) == nil && r.AccessToken != "" {
				return r.AccessToken
			}
		}
	}
	t.Fatal("no token response in the fixture")
	return ""
}

func flowOfHop(flows []mcptap.Flow, id string) (mcptap.Flow, mcptap.Hop, bool) {
	for _, f := range flows {
		for _, h := range f.Hops {
			if h.Exchange == id {
				return f, h, true
			}
		}
	}
	return mcptap.Flow{}, mcptap.Hop{}, false
}

// Problem: GET and DELETE on the MCP endpoint were not classified as mcp
// hops (the TS SDK client's standalone-SSE GET, answered 405 by a stateless
// server; the go-sdk client's session DELETE). Unrelated GETs, and a browser
// opening the MCP URL, stay unclassified.
func TestMCPEndpointGETAndDELETEAreMCPHops(t *testing.T) {
	b := oauthtest.NewBuilder()
	oauthtest.Scenario{Client: "claude"}.Build(b)
	access := accessToken(t, b.Exchanges())
	sse := b.Do("GET", "https://mcp.example.com/mcp", 405).H("Authorization", "Bearer "+access, "Accept", "text/event-stream",
		"Mcp-Protocol-Version", "2025-11-25").Resp("text/plain", "Method Not Allowed").ID
	del := b.Do("DELETE", "https://mcp.example.com/mcp", 204).H("Authorization", "Bearer "+access, "Mcp-Session-Id", "sess-1").ID
	page := b.Do("GET", "https://mcp.example.com/mcp", 200).H("Accept", "text/html").Resp("text/html", "<h1>MCP server</h1>").ID
	other := b.Do("GET", "https://mcp.example.com/events", 200).H("Accept", "text/event-stream").ID
	exs := b.Exchanges()

	tr := oauth.NewTracker(oauth.Options{})
	live(tr, exs)
	tr.Finish()
	flows := tr.Flows()
	for _, id := range []string{sse, del} {
		if k, ok := tr.Hop(id); !ok || k != mcptap.HopMCP {
			t.Errorf("Hop(%s) = %q %v, want mcp", id, k, ok)
		}
		f, h, ok := flowOfHop(flows, id)
		if !ok || h.Kind != mcptap.HopMCP || f.Verdict.Rule != "ok" {
			t.Errorf("exchange %s: in flow %v as %q, verdict %v", id, ok, h.Kind, f.Verdict)
		}
	}
	for _, id := range []string{page, other} {
		if k, ok := tr.Hop(id); ok {
			t.Errorf("unrelated GET %s classified as %s", id, k)
		}
	}
	for _, fd := range tr.Findings() {
		if fd.Severity == mcptap.SevError {
			t.Errorf("finding %s: %s", fd.Rule, fd.Detail)
		}
	}
}

// withRedirect builds s with the client's callback replaced by cb (raw and
// percent-encoded, in every URL, header and body).
func withRedirect(s oauthtest.Scenario, cb string) []mcptap.Exchange {
	old := oauthtest.Clients[s.Client].RedirectURI
	r := strings.NewReplacer(old, cb, url.QueryEscape(old), url.QueryEscape(cb))
	exs := build(s)
	for i := range exs {
		ex := &exs[i]
		ex.Target = r.Replace(ex.Target)
		ex.ReqBody = []byte(r.Replace(string(ex.ReqBody)))
		ex.RespBody = []byte(r.Replace(string(ex.RespBody)))
		if l := ex.RespHeader.Get("Location"); l != "" {
			ex.RespHeader.Set("Location", r.Replace(l))
		}
	}
	return exs
}

// Problem: a flow that only reached the authorize (the abandoned second
// attempt of state-stale) was listed as client "unknown" although its
// redirect_uri's path shape, or the client's registration of the same
// client_id, names the client.
func TestAuthorizeOnlyFlowNamesItsClient(t *testing.T) {
	cases := []struct {
		name, client, cb, want string
	}{
		{"ChatGPT callback path on a loopback host", "chatgpt", "http://127.0.0.1:41234/connector/oauth/cb_c142384e09c3", oauth.ClientChatGPT},
		{"Claude callback path on a loopback host", "claude", "http://127.0.0.1:41235/api/mcp/auth_callback", oauth.ClientClaude},
		{"shapeless callback, registration by openai-mcp", "chatgpt", "http://127.0.0.1:41236/cb", oauth.ClientChatGPT},
		{"shapeless callback, registration by Claude-User", "claude", "https://example.net/cb", oauth.ClientClaude},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			flows, _ := oauth.Analyze(withRedirect(oauthtest.Scenario{Client: c.client, Stale: true}, c.cb), oauth.Options{})
			if len(flows) != 2 {
				t.Fatalf("%d flows, want 2: %v", len(flows), verdicts(flows))
			}
			for i, f := range flows {
				if f.Client != c.want {
					t.Errorf("flow %d (%d hops) client %q, want %q", i, len(f.Hops), f.Client, c.want)
				}
			}
		})
	}
}
