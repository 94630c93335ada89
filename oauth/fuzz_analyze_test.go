package oauth_test

import (
	"net/http"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// FuzzAnalyze: hostile traffic (any target, Location, bodies, status) never
// panics the analysis, live or batch.
func FuzzAnalyze(f *testing.F) {
	ex := oauthtest.Fixtures[0].Exchanges()
	f.Add("GET", ex[4].Target, ex[4].RespHeader.Get("Location"), "", "", 302)
	f.Add("POST", "/token", "", string(ex[5].ReqBody), string(ex[5].RespBody), 200)
	f.Add("POST", "/backend-api/aip/connectors/links/oauth/callback", "", `{"full_redirect_url":"https://x/cb?state=%zz&code="}`, `{"detail":"OAuth state not found"}`, 404)
	f.Add("GET", "/.well-known/oauth-protected-resource/mcp", "", "", `{"resource":1,"authorization_servers":"x"}`, 200)
	f.Fuzz(func(t *testing.T, method, target, loc, reqBody, respBody string, status int) {
		b := oauthtest.NewBuilder()
		oauthtest.Scenario{Client: "chatgpt", NoToken: true}.Build(b)
		exs := b.Exchanges()
		for i := 0; i < 3; i++ {
			e := mcptap.Exchange{ID: "fz" + string(rune('a'+i)), Method: method, Scheme: "https", Host: "mcp.example.com", Target: target,
				ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, RespHeader: http.Header{"Location": {loc}, "Content-Type": {"application/json"}},
				ReqBody: []byte(reqBody), RespBody: []byte(respBody), Status: status, Start: b.Now, Complete: i != 1}
			if i == 2 {
				e.ReqHeader.Set("Content-Type", "application/json")
				e.ReqHeader.Set("Authorization", "Bearer "+reqBody)
			}
			exs = append(exs, e)
		}
		flows, _ := oauth.Analyze(exs, oauth.Options{})
		for _, fl := range flows {
			if fl.Verdict.Rule == "" {
				t.Fatal("flow without verdict")
			}
		}
		tr := oauth.NewTracker(oauth.Options{})
		for _, e := range exs {
			tr.Observe(e)
			tr.Tick(e.Start)
		}
		tr.Finish()
	})
}
