package oauth_test

import (
	"encoding/json"
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
