package report_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

// Problem: ChatGPT's link initiation (POST …/links/oauth) was counted as
// "not part of any OAuth or MCP step". It has no hop kind, but it belongs to
// the flow whose authorize URL it returned, so it is not unclassified.
func TestLinkInitiationIsNotUnclassified(t *testing.T) {
	b := oauthtest.NewBuilder()
	b.Do("POST", "https://chatgpt.com/backend-api/aip/connectors/links/oauth", 200).Body("application/json", "{}")
	oauthtest.Scenario{Client: "chatgpt", Browser: true}.Build(b)
	exs := b.Exchanges()
	for _, ex := range exs {
		if strings.HasPrefix(ex.Target, "/authorize?") {
			body, _ := json.Marshal(map[string]string{"redirect_url": ex.URL()})
			exs[0].RespHeader.Set("Content-Type", "application/json")
			exs[0].RespBody = body
		}
	}
	r := report.Build(mcptap.Session{ID: "s", Source: mcptap.SourceImport}, exs, report.Options{})
	if r.Unclassified != 0 {
		t.Errorf("%d unclassified exchanges, want 0", r.Unclassified)
	}
	if len(r.Flows) != 1 || r.Flows[0].Client != "chatgpt" {
		t.Errorf("flows %+v", r.Flows)
	}
}
