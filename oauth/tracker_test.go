package oauth_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

func build(s oauthtest.Scenario) []mcptap.Exchange { return sc(s)() }

// live replays exs the way the proxy publishes them: each exchange first as a
// head (no body, Complete false), then complete, with Ticks in between.
func live(t *oauth.Tracker, exs []mcptap.Exchange) []mcptap.Finding {
	var out []mcptap.Finding
	for _, ex := range exs {
		ex.Mode = mcptap.ModeReverse
		head := ex
		head.Complete, head.RespBody, head.End = false, nil, time.Time{}
		out = append(out, t.Tick(ex.Start)...)
		out = append(out, t.Observe(head)...)
		out = append(out, t.Observe(ex)...)
	}
	return out
}

// The live form (heads, completes, Ticks) reaches the same flows and findings
// as the batch form for every fixture.
func TestLiveEqualsBatch(t *testing.T) {
	for _, fx := range oauthtest.Fixtures {
		exs := fx.Exchanges()
		bFlows, bFindings := oauth.Analyze(exs, oauth.Options{})
		tr := oauth.NewTracker(oauth.Options{})
		raised := live(tr, exs)
		raised = append(raised, tr.Finish()...)
		lFlows, lFindings := tr.Flows(), tr.Findings()
		if len(raised) != len(lFindings) {
			t.Errorf("%s: Observe/Tick/Finish returned %d findings, Findings() has %d", fx.Name, len(raised), len(lFindings))
		}
		if !sameVerdicts(bFlows, lFlows) || !sameRules(bFindings, lFindings) {
			t.Errorf("%s: live %v / %v, batch %v / %v", fx.Name, verdicts(lFlows), rules(lFindings), verdicts(bFlows), rules(bFindings))
		}
	}
}

func verdicts(fs []mcptap.Flow) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+":"+string(f.Verdict.Rule)+"/"+string(f.Verdict.Fault)+":"+string(rune('0'+len(f.Hops)%10)))
	}
	return out
}

func rules(fs []mcptap.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+":"+string(f.Rule))
	}
	return out
}

func sameVerdicts(a, b []mcptap.Flow) bool { return reflect.DeepEqual(verdicts(a), verdicts(b)) }
func sameRules(a, b []mcptap.Finding) bool {
	ra, rb := rules(a), rules(b)
	m := map[string]int{}
	for _, r := range ra {
		m[r]++
	}
	for _, r := range rb {
		m[r]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// token.never-called waits for the timeout measured on traffic time, fires
// on Tick once it passes, and shows WaitingSince while waiting.
func TestTokenTimeoutTick(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "claude", NoToken: true})
	tr := oauth.NewTracker(oauth.Options{TokenTimeout: 30 * time.Second})
	for _, ex := range exs {
		for _, f := range tr.Observe(ex) {
			t.Fatalf("finding before any timeout: %s", f.Rule)
		}
	}
	last := exs[len(exs)-1].Start
	flows := tr.Flows()
	if len(flows) != 1 || flows[0].WaitingSince.IsZero() || flows[0].Status != mcptap.FlowInProgress {
		t.Fatalf("flow while waiting: %+v", flows)
	}
	if got := tr.Tick(last.Add(29 * time.Second)); len(got) != 0 {
		t.Fatalf("fired early: %v", rules(got))
	}
	got := tr.Tick(last.Add(31 * time.Second))
	if len(got) != 1 || got[0].Rule != "token.never-called" || got[0].Fault != mcptap.FaultClient {
		t.Fatalf("Tick after timeout = %v", rules(got))
	}
	if !got[0].At.Equal(last.Add(31 * time.Second)) {
		t.Errorf("finding time %v, want the Tick time", got[0].At)
	}
	if more := tr.Tick(last.Add(time.Hour)); len(more) != 0 {
		t.Errorf("fired twice: %v", rules(more))
	}
	if f := tr.Flows()[0]; f.Verdict.Rule != "token.never-called" || !f.WaitingSince.IsZero() {
		t.Errorf("after firing: %+v", f)
	}
	// A Tick with a clock behind the traffic does not move time back.
	tr2 := oauth.NewTracker(oauth.Options{TokenTimeout: 30 * time.Second})
	for _, ex := range exs {
		tr2.Observe(ex)
	}
	if got := tr2.Tick(time.Time{}); len(got) != 0 {
		t.Errorf("zero Tick fired %v", rules(got))
	}
}

// Exchanges published twice (head, then complete) are one hop, and the body
// rules wait for the complete copy.
func TestUpsertHeadThenComplete(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "vscode", TokenBody: `{"token_type":"Bearer"}`})
	tr := oauth.NewTracker(oauth.Options{})
	var tokenID string
	for _, ex := range exs {
		ex.Mode = mcptap.ModeReverse
		head := ex
		head.Complete, head.RespBody = false, nil
		for _, f := range tr.Observe(head) {
			if f.Rule == "token.bad-response" {
				t.Fatal("token.bad-response judged on a head without body")
			}
		}
		if ex.Target == "/token" {
			tokenID = ex.ID
		}
		tr.Observe(ex)
	}
	if k, ok := tr.Hop(tokenID); !ok || k != mcptap.HopToken {
		t.Errorf("Hop(token) = %v %v", k, ok)
	}
	flows := tr.Flows()
	n := 0
	for _, h := range flows[0].Hops {
		if h.Exchange == tokenID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("token exchange appears %d times in the flow", n)
	}
	found := false
	for _, f := range tr.Findings() {
		found = found || f.Rule == "token.bad-response"
	}
	if !found {
		t.Error("token.bad-response missing after the complete copy")
	}
}

// Two attempts in one session stay two flows; the discovery hops join the
// first, and unrelated traffic stays unclassified.
func TestSeveralAttemptsAndUnknownTraffic(t *testing.T) {
	b := oauthtest.NewBuilder()
	oauthtest.Scenario{Client: "claude", Seed: "one"}.Build(b)
	fav := b.Do("GET", "https://mcp.example.com/favicon.ico", 404).ID
	health := b.Do("GET", "https://mcp.example.com/healthz?code=x", 200).ID
	b.Wait(time.Minute)
	oauthtest.Scenario{Client: "claude", Seed: "two"}.Build(b)
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range b.Exchanges() {
		tr.Observe(ex)
	}
	tr.Finish()
	flows := tr.Flows()
	if len(flows) != 2 {
		t.Fatalf("%d flows, want 2: %v", len(flows), verdicts(flows))
	}
	for _, f := range flows {
		if f.Verdict.Rule != "ok" || f.Status != mcptap.FlowComplete || f.Client != "claude" || len(f.Hops) != 9 {
			t.Errorf("flow %s: %v %s %s hops=%d", f.ID, f.Verdict, f.Status, f.Client, len(f.Hops))
		}
	}
	if flows[0].State == flows[1].State {
		t.Error("both flows have the same state")
	}
	for _, id := range []string{fav, health} {
		if k, ok := tr.Hop(id); ok {
			t.Errorf("unrelated exchange %s classified as %s", id, k)
		}
	}
}

// An MCP server and a separate authorization server (two listeners, two
// hosts) give one flow.
func TestSeparateAuthorizationServerJoinsOneFlow(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "chatgpt"})
	asPaths := []string{"/authorize", "/token", "/register", "/.well-known/oauth-authorization-server"}
	for i := range exs {
		ex := &exs[i]
		ex.RespBody = []byte(strings.NewReplacer(
			`"authorization_servers":["https://mcp.example.com"]`, `"authorization_servers":["https://auth.example.com"]`,
			`"issuer":"https://mcp.example.com"`, `"issuer":"https://auth.example.com"`,
			"https://mcp.example.com/authorize", "https://auth.example.com/authorize",
			"https://mcp.example.com/token", "https://auth.example.com/token",
			"https://mcp.example.com/register", "https://auth.example.com/register",
		).Replace(string(ex.RespBody)))
		ex.Listener = "127.0.0.1:8780"
		for _, p := range asPaths {
			if strings.HasPrefix(ex.Target, p) {
				ex.Host, ex.Listener = "auth.example.com", "127.0.0.1:8781"
			}
		}
	}
	flows, fds := oauth.Analyze(exs, oauth.Options{})
	if len(flows) != 1 || len(flows[0].Hops) != 9 || flows[0].Verdict.Rule != "ok" {
		t.Fatalf("flows %v, findings %v", verdicts(flows), rules(fds))
	}
	hosts := map[string]bool{}
	for _, ex := range exs {
		hosts[ex.Host] = true
	}
	if len(hosts) != 2 {
		t.Fatalf("fixture has hosts %v", hosts)
	}
}

// An MCP server that is an OAuth proxy in front of an upstream IdP is one
// flow with an inner leg, not two broken flows.
func TestUpstreamIdPIsOneFlowWithInnerLeg(t *testing.T) {
	flows, fds := oauth.Analyze(build(oauthtest.Scenario{Client: "claude", Upstream: "https://idp.example.org"}), oauth.Options{})
	if len(flows) != 1 || len(fds) != 0 {
		t.Fatalf("flows %v findings %v", verdicts(flows), rules(fds))
	}
	var inner []mcptap.HopKind
	for _, h := range flows[0].Hops {
		if h.Inner {
			inner = append(inner, h.Kind)
		}
	}
	want := []mcptap.HopKind{mcptap.HopAuthorize, mcptap.HopRedirect, mcptap.HopCallback}
	if !reflect.DeepEqual(inner, want) {
		t.Errorf("inner hops %v, want %v", inner, want)
	}
	if flows[0].Status != mcptap.FlowComplete {
		t.Errorf("status %s", flows[0].Status)
	}
}

// IDs are derived from the traffic, so two analyses agree (golden files).
func TestDeterministicIDs(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "claude", DropState: true})
	f1, d1 := oauth.Analyze(exs, oauth.Options{})
	f2, d2 := oauth.Analyze(exs, oauth.Options{})
	if !reflect.DeepEqual(f1, f2) || !reflect.DeepEqual(d1, d2) {
		t.Error("two analyses of the same traffic differ")
	}
	if !strings.HasPrefix(f1[0].ID, "flow-") || len(d1) == 0 || !strings.HasPrefix(d1[0].ID, "F") {
		t.Errorf("IDs %s %v", f1[0].ID, rules(d1))
	}
}

// The verdict is the earliest error: a downstream symptom (the callback
// completion 404) never hides its cause (state altered by the AS).
func TestVerdictIsEarliestCause(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "chatgpt", Browser: true, CompletionStat: 404, AlterState: func(s string) string { return s[:30] }})
	flows, fds := oauth.Analyze(exs, oauth.Options{})
	if flows[0].Verdict.Rule != "state.altered" || flows[0].Verdict.Fault != mcptap.FaultAuthServer {
		t.Errorf("verdict %v, want state.altered/auth-server (findings %v)", flows[0].Verdict, rules(fds))
	}
	var symptom bool
	for _, f := range fds {
		symptom = symptom || f.Rule == "callback.state-not-found"
	}
	if !symptom {
		t.Error("the callback failure is not listed as a finding")
	}
}

// Options.Forget changes no finding and no verdict on any fixture, in the
// live form the line view feeds it, with traffic it will forget mixed in:
// unrelated requests and flowless MCP calls between every two exchanges, and
// a dozen more calls with a flow's access token after it.
func TestForgetKeepsFindings(t *testing.T) {
	forgotten := 0
	for _, fx := range oauthtest.Fixtures {
		exs := withNoise(fx.Exchanges())
		full := oauth.NewTracker(oauth.Options{})
		want := append(live(full, exs), full.Finish()...)
		lean := oauth.NewTracker(oauth.Options{Forget: true})
		got := append(live(lean, exs), lean.Finish()...)
		// Hop counts differ by design (a flow keeps KeptMCPCalls calls).
		if !sameRules(want, got) || !reflect.DeepEqual(verdictRules(full.Flows()), verdictRules(lean.Flows())) {
			t.Errorf("%s: with Forget %v / %v, without %v / %v", fx.Name, verdictRules(lean.Flows()), rules(got), verdictRules(full.Flows()), rules(want))
		}
		for _, ex := range exs {
			if _, ok := full.Hop(ex.ID); ok {
				if _, kept := lean.Hop(ex.ID); !kept {
					forgotten++
				}
			}
		}
	}
	if forgotten == 0 {
		t.Fatal("no classified exchange was forgotten: the test does not exercise Forget")
	}
}

func verdictRules(fs []mcptap.Flow) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+":"+string(f.Verdict.Rule)+"/"+string(f.Verdict.Fault)+":"+string(f.Status))
	}
	return out
}

// withNoise interleaves exs with traffic a tracker can forget.
func withNoise(exs []mcptap.Exchange) []mcptap.Exchange {
	var out []mcptap.Exchange
	var call *mcptap.Exchange
	for i, ex := range exs {
		out = append(out, ex)
		if ex.Method == "POST" && strings.HasPrefix(ex.ReqHeader.Get("Authorization"), "Bearer ") && ex.Status == 200 && strings.Contains(string(ex.ReqBody), `"jsonrpc"`) {
			call = &exs[i]
		}
		at := ex.Start.Add(time.Microsecond)
		n := ex
		n.ID, n.Seq, n.Start, n.ResponseAt, n.End = fmt.Sprintf("%s-noise-get", ex.ID), 0, at, at, at
		n.Method, n.Target, n.Status = "GET", "/favicon.ico", 404
		n.ReqHeader, n.RespHeader, n.ReqBody, n.RespBody = http.Header{"Accept": {"image/*"}}, http.Header{"Content-Type": {"text/plain"}}, nil, []byte("not found")
		out = append(out, n)
		m := n
		m.ID, m.Method, m.Target, m.Status = fmt.Sprintf("%s-noise-mcp", ex.ID), "POST", "/mcp", 200
		m.ReqHeader = http.Header{"Authorization": {"Bearer not-from-this-capture"}, "Content-Type": {"application/json"}}
		m.ReqBody, m.RespBody = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), []byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`)
		out = append(out, m)
	}
	if call != nil {
		last := exs[len(exs)-1].End
		for i := range 12 {
			c := *call
			at := last.Add(time.Duration(i+1) * time.Millisecond)
			c.ID, c.Start, c.ResponseAt, c.End = fmt.Sprintf("%s-again-%d", call.ID, i), at, at, at
			out = append(out, c)
		}
	}
	return out
}
