package oauth_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// benchTraffic is n exchanges of about flows attempts: the scenarios first,
// then authenticated MCP calls spread over the attempts that got a token (a
// long live session), and a builder positioned after them for more.
func benchTraffic(n, flows int) ([]mcptap.Exchange, *oauthtest.Builder) {
	b := oauthtest.NewBuilder()
	b.Step = 10 * time.Millisecond
	for i := 0; i < flows && b.Len() < n; i++ {
		s := oauthtest.Mix[i%len(oauthtest.Mix)]
		s.Seed = fmt.Sprint(i)
		s.Build(b)
	}
	var tokens []string
	for _, ex := range b.Exchanges() {
		if ex.Status == 200 && ex.Method == "POST" && strings.HasPrefix(string(ex.ReqBody), "grant_type=authorization_code") {
			var r struct {
				AccessToken string `json:"access_token"`
			}
			if json.Unmarshal(ex.RespBody, &r) == nil && r.AccessToken != "" {
				tokens = append(tokens, r.AccessToken)
			}
		}
	}
	for i := 0; b.Len() < n; i++ {
		b.Do("POST", "https://mcp.example.com/mcp", 200).H("Authorization", "Bearer "+tokens[i%len(tokens)], "Mcp-Protocol-Version", "2025-11-25").
			Body("application/json", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search"}}`).
			JSON(`{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`)
	}
	return b.Exchanges(), b
}

// BenchmarkFlowsAfterOneHop is the live view's cost per batch: at 100,000
// exchanges (1,000 flows, most of the traffic authenticated MCP calls) one new OAuth hop arrives (a new attempt's
// authorize), then Flows() is called. The Observe is included.
//
//	go test -run '^$' -bench FlowsAfterOneHop -benchtime 20x ./oauth
func BenchmarkFlowsAfterOneHop(b *testing.B) {
	exs, bld := benchTraffic(100_000, 1_000)
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	n0 := len(tr.Flows())
	next := make([]mcptap.Exchange, 0, b.N)
	for i := 0; i < b.N; i++ {
		u := fmt.Sprintf("https://mcp.example.com/authorize?response_type=code&client_id=bench&redirect_uri=https%%3A%%2F%%2Fclaude.ai%%2Fapi%%2Fmcp%%2Fauth_callback&state=bench%d&code_challenge=c%d&code_challenge_method=S256", i, i)
		bld.Do("GET", u, 200).Resp("text/html", "<form>Allow?</form>")
	}
	all := bld.Exchanges()
	next = append(next, all[len(all)-b.N:]...)
	runtime.GC() // the setup's garbage is not the measured call's
	b.ReportAllocs()
	b.ResetTimer()
	var flows []mcptap.Flow
	for i := 0; i < b.N; i++ {
		tr.Observe(next[i])
		flows = tr.Flows()
	}
	b.StopTimer()
	if len(flows) != n0+b.N {
		b.Fatalf("%d flows, want %d", len(flows), n0+b.N)
	}
	b.ReportMetric(float64(n0), "flows")
}

// BenchmarkFlowsUnchanged is Flows() called again with nothing new.
func BenchmarkFlowsUnchanged(b *testing.B) {
	exs, _ := benchTraffic(100_000, 1_000)
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	tr.Flows()
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Flows()
	}
}

// BenchmarkAnalyzeManyWaitingAttempts guards against the timed rules'
// quadratic sweep: every Observe past the earliest deadline used to walk and
// sort every flow still waiting for its token call, so a HAR of 100,000
// authorize redirects a millisecond apart, none redeemed, took a minute to
// analyse. Here: 20,000 such redirects with a 5 s timeout, so about 5,000
// flows wait at any time. Now each flow's timer is popped from a heap once.
//
//	go test -run '^$' -bench ManyWaitingAttempts -benchtime 3x ./oauth
func BenchmarkAnalyzeManyWaitingAttempts(b *testing.B) {
	const attempts = 20000
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	exs := make([]mcptap.Exchange, attempts)
	for i := range exs {
		at := start.Add(time.Duration(i) * time.Millisecond)
		state := fmt.Sprintf("st%08d", i)
		exs[i] = mcptap.Exchange{
			ID: fmt.Sprintf("%016x", i), Mode: mcptap.ModeReverse, Complete: true,
			Start: at, ResponseAt: at, End: at, Method: "GET", Scheme: "https", Host: "auth.example.test",
			Target: "/authorize?response_type=code&client_id=c1&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect&state=" + state +
				"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM&code_challenge_method=S256",
			Status:     302,
			RespHeader: map[string][]string{"Location": {"https://chatgpt.com/connector_platform_oauth_redirect?code=c" + state + "&state=" + state}},
		}
	}
	b.ResetTimer()
	for range b.N {
		_, findings := oauth.Analyze(exs, oauth.Options{TokenTimeout: 5 * time.Second})
		n := 0
		for _, f := range findings {
			if f.Rule == "token.never-called" {
				n++
			}
		}
		if n != attempts {
			b.Fatalf("%d token.never-called findings for %d unredeemed codes", n, attempts)
		}
	}
}
