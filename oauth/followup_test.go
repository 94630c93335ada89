package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

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
	exs := build(s)
	rewriteRedirect(exs, s.Client, cb)
	return exs
}

func rewriteRedirect(exs []mcptap.Exchange, client, cb string) {
	old := oauthtest.Clients[client].RedirectURI
	r := strings.NewReplacer(old, cb, url.QueryEscape(old), url.QueryEscape(cb))
	for i := range exs {
		ex := &exs[i]
		ex.Target = r.Replace(ex.Target)
		ex.ReqBody = []byte(r.Replace(string(ex.ReqBody)))
		ex.RespBody = []byte(r.Replace(string(ex.RespBody)))
		if l := ex.RespHeader.Get("Location"); l != "" {
			ex.RespHeader.Set("Location", r.Replace(l))
		}
	}
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

// linkInitiated builds s (a ChatGPT browser capture) preceded by the web
// app's link initiation, whose answer is the authorize URL, sent under the
// given ChatGPT account. It returns the exchanges and the initiation's ID.
func linkInitiated(t *testing.T, s oauthtest.Scenario, cb, account string) ([]mcptap.Exchange, string) {
	t.Helper()
	b := oauthtest.NewBuilder()
	link := b.Do("POST", "https://chatgpt.com/backend-api/aip/connectors/links/oauth", 200).
		H("User-Agent", "Mozilla/5.0", "ChatGPT-Account-ID", account, "Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.chatgpt-session").
		Body("application/json", `{"connector_id":"c_1"}`).ID
	s.Build(b)
	exs := b.Exchanges()
	rewriteRedirect(exs, s.Client, cb)
	for _, ex := range exs {
		if strings.HasPrefix(ex.Target, "/authorize?") {
			body, _ := json.Marshal(map[string]string{"redirect_url": ex.URL()})
			exs[0].RespHeader.Set("Content-Type", "application/json")
			exs[0].RespBody = body
			return exs, link
		}
	}
	t.Fatal("no authorize in the fixture")
	return nil, ""
}

// Problem: ChatGPT's link initiation (POST …/backend-api/aip/connectors/
// links/oauth, answering {"redirect_url": "<authorize URL>"}) was left
// unclassified. No public hop kind fits it, so it is no hop; it is
// correlated with the flow whose authorize URL it returned: FlowOf names that
// flow, it names the client, and its ChatGPT-Account-ID is compared with the
// callback completion's.
func TestLinkInitiationJoinsItsFlow(t *testing.T) {
	s := oauthtest.Scenario{Client: "chatgpt", Browser: true, CompletionStat: 404}
	const cb = "http://127.0.0.1:41237/cb" // a callback that names no platform
	exs, link := linkInitiated(t, s, cb, "acc-other-workspace")
	tr := oauth.NewTracker(oauth.Options{})
	live(tr, exs)
	tr.Finish()
	flows := tr.Flows()
	if len(flows) != 1 {
		t.Fatalf("%d flows, want 1: %v", len(flows), verdicts(flows))
	}
	f := flows[0]
	if id, ok := tr.FlowOf(link); !ok || id != f.ID {
		t.Errorf("FlowOf(link initiation) = %q %v, want %s", id, ok, f.ID)
	}
	if k, ok := tr.Hop(link); ok {
		t.Errorf("link initiation has hop kind %s; no public kind fits it", k)
	}
	for _, h := range f.Hops {
		if h.Exchange == link {
			t.Errorf("link initiation listed as a hop (%s)", h.Kind)
		}
	}
	if f.Client != oauth.ClientChatGPT {
		t.Errorf("client %q, want chatgpt (named by the link initiation)", f.Client)
	}
	var nf *mcptap.Finding
	fds := tr.Findings()
	for i := range fds {
		if fds[i].Rule == "callback.state-not-found" {
			nf = &fds[i]
		}
	}
	if nf == nil {
		t.Fatalf("no callback.state-not-found: %v", rules(fds))
	}
	if nf.Fault != mcptap.FaultUser || !strings.Contains(nf.Detail, "acc-other-workspace") || len(nf.Exchanges) == 0 || nf.Exchanges[0] != link {
		t.Errorf("account mismatch not shown: fault %s exchanges %v detail %s", nf.Fault, nf.Exchanges, nf.Detail)
	}

	// The same account on both: no mismatch, still correlated; and the
	// initiation published after its authorize (a HAR in another order) joins too.
	exs, link = linkInitiated(t, s, cb, "727a535d-e95d-4bb6-9f54-9961cca52582")
	exs = append(exs[1:], exs[0])
	tr = oauth.NewTracker(oauth.Options{})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	tr.Finish()
	if id, ok := tr.FlowOf(link); !ok || id != tr.Flows()[0].ID {
		t.Errorf("late link initiation: FlowOf = %q %v", id, ok)
	}
	for _, fd := range tr.Findings() {
		if fd.Rule == "callback.state-not-found" && fd.Fault == mcptap.FaultUser {
			t.Errorf("same account blamed on the user: %s", fd.Detail)
		}
	}
}

// Problem: Findings() (and the findings Observe returns) shared their
// Evidence and Exchanges slices with the tracker, which the TUI reads on
// another goroutine. The caller now owns what it gets: changing it leaves
// the tracker's next answer unchanged.
func TestFindingsAreCopiesTheCallerOwns(t *testing.T) {
	exs := build(oauthtest.Scenario{Client: "claude", DropState: true})
	tr := oauth.NewTracker(oauth.Options{})
	var raised []mcptap.Finding
	for _, ex := range exs {
		raised = append(raised, tr.Observe(ex)...)
	}
	raised = append(raised, tr.Finish()...)
	want := tr.Findings()
	if len(want) == 0 || len(raised) == 0 {
		t.Fatal("fixture raised no findings")
	}
	deep := func(fs []mcptap.Finding) string { b, _ := json.Marshal(fs); return string(b) }
	before := deep(want)
	scribble := func(fs []mcptap.Finding) {
		for i := range fs {
			for j := range fs[i].Exchanges {
				fs[i].Exchanges[j] = "scribbled"
			}
			for j := range fs[i].Evidence {
				fs[i].Evidence[j].Got = "scribbled"
				fs[i].Evidence[j].Exchange = "scribbled"
			}
			fs[i].Exchanges = append(fs[i].Exchanges[:0], "x")
		}
	}
	scribble(want)
	scribble(raised)
	if got := deep(tr.Findings()); got != before {
		t.Errorf("the tracker's findings changed with the caller's copy:\nbefore %s\nafter  %s", before, got)
	}
	if strings.Contains(deep(tr.Findings()), "scribbled") {
		t.Error("scribbled values leaked into the tracker")
	}
}

// Problem: Flows() rebuilt every flow on every call (~150 ms at 100,000
// exchanges), and the live view calls it after each batch. It now keeps
// each flow's value and rebuilds the flows that changed. This checks that
// the kept values always equal a rebuild from scratch: every fixture (and the
// follow-up scenarios), fed live (heads, completes, Ticks), with Flows
// called after every step or only every few steps, then Finish.
func TestFlowsCacheEqualsRebuild(t *testing.T) {
	type traffic struct {
		name string
		exs  []mcptap.Exchange
	}
	var all []traffic
	for _, fx := range oauthtest.Fixtures {
		all = append(all, traffic{fx.Name, fx.Exchanges()})
	}
	mixed, _ := benchTraffic(400, 22)
	all = append(all, traffic{"mixed", mixed})
	linked, _ := linkInitiated(t, oauthtest.Scenario{Client: "chatgpt", Browser: true, CompletionStat: 404}, "http://127.0.0.1:1/cb", "a")
	all = append(all, traffic{"link", linked})
	all = append(all, traffic{"stale", withRedirect(oauthtest.Scenario{Client: "chatgpt", Stale: true}, "http://127.0.0.1:2/cb")})
	for _, tc := range all {
		for _, every := range []int{1, 3} {
			tr := oauth.NewTracker(oauth.Options{TokenTimeout: 5 * time.Second})
			step := 0
			check := func(what string) {
				step++
				if step%every != 0 {
					return
				}
				got, want := tr.Flows(), tr.FlowsRebuilt()
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s (every %d), after %s: kept flows differ from a rebuild:\nkept    %+v\nrebuilt %+v", tc.name, every, what, got, want)
				}
			}
			for _, ex := range tc.exs {
				ex.Mode = mcptap.ModeReverse
				head := ex
				head.Complete, head.RespBody, head.End = false, nil, time.Time{}
				tr.Tick(ex.Start)
				check("Tick")
				tr.Observe(head)
				check("head of " + ex.ID)
				tr.Observe(ex)
				check(ex.ID)
			}
			tr.Finish()
			step = every - 1
			check("Finish")
		}
	}
}

// What Flows returns is the caller's: changing a flow's fields, or appending
// to its slices, leaves the next call's answer alone (the slices' elements
// and the state map are shared read-only: see Flows).
func TestFlowsAreCopiesTheCallerOwns(t *testing.T) {
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range build(oauthtest.Scenario{Client: "chatgpt", DropState: true}) {
		tr.Observe(ex)
	}
	tr.Finish()
	first := tr.Flows()
	b, _ := json.Marshal(first)
	for i := range first {
		first[i].Hops = append(first[i].Hops, mcptap.Hop{Kind: "scribbled"})
		first[i].Findings = append(first[i].Findings, "scribbled")
		first[i].NotChecked = append(first[i].NotChecked, "scribbled")
		first[i].Checks = append(first[i].Checks, mcptap.Check{})
		first[i].Client, first[i].Verdict.Rule = "scribbled", "scribbled"
	}
	if a, _ := json.Marshal(tr.Flows()); string(a) != string(b) {
		t.Errorf("the kept flows changed with the caller's copy:\n%s\n%s", b, a)
	}
	// Two callers appending to the same flow's slices do not write into
	// each other's (over every fixture, so that slices with spare capacity
	// come up).
	for _, fx := range oauthtest.Fixtures {
		tr := oauth.NewTracker(oauth.Options{})
		for _, ex := range fx.Exchanges() {
			tr.Observe(ex)
		}
		tr.Finish()
		twoCallers(t, fx.Name, tr)
	}
}

func twoCallers(t *testing.T, name string, tr *oauth.Tracker) {
	t.Helper()
	one, two := tr.Flows(), tr.Flows()
	for i := range one {
		one[i].Findings = append(one[i].Findings, "one")
		two[i].Findings = append(two[i].Findings, "two")
		one[i].NotChecked = append(one[i].NotChecked, "one")
		two[i].NotChecked = append(two[i].NotChecked, "two")
		one[i].Hops = append(one[i].Hops, mcptap.Hop{Kind: "one"})
		two[i].Hops = append(two[i].Hops, mcptap.Hop{Kind: "two"})
		one[i].Checks = append(one[i].Checks, mcptap.Check{Detail: "one"})
		two[i].Checks = append(two[i].Checks, mcptap.Check{Detail: "two"})
		if one[i].Findings[len(one[i].Findings)-1] != "one" || one[i].NotChecked[len(one[i].NotChecked)-1] != "one" ||
			one[i].Hops[len(one[i].Hops)-1].Kind != "one" || one[i].Checks[len(one[i].Checks)-1].Detail != "one" {
			t.Errorf("%s flow %d: one caller's append overwrote another's", name, i)
		}
	}
}

// Problem: when the inner identity provider behind an OAuth proxy is routed
// through mcptap too, the server's token call to it became a second flow
// that raised a false mcp.bearer-never-sent (that token is never meant for
// the MCP server). It is now the inner leg's token hop. Both publication
// orders: as stored (the callback started first) and live (the token call
// ends before the callback's answer, so it is published first).
func TestRoutedInnerIdPTokenIsInnerLeg(t *testing.T) {
	for _, pkce := range []bool{true, false} {
		exs := build(oauthtest.Scenario{Client: "claude", Upstream: "https://idp.example.org", UpstreamRouted: true})
		var tok, cb int
		for i, ex := range exs {
			switch {
			case ex.Host == "idp.example.org" && ex.Target == "/token":
				tok = i
			case strings.HasPrefix(ex.Target, "/oauth/callback?"):
				cb = i
			}
		}
		if tok == 0 || cb == 0 || cb > tok {
			t.Fatalf("fixture: inner callback %d, upstream token %d", cb, tok)
		}
		if !pkce {
			// A provider without PKCE: only the inner redirect_uri ties the call to the leg.
			re := regexp.MustCompile(`&code_challenge=[^&]*&code_challenge_method=S256`)
			for i := range exs {
				if exs[i].Host == "idp.example.org" {
					exs[i].Target = re.ReplaceAllString(exs[i].Target, "")
				}
				if l := exs[i].RespHeader.Get("Location"); strings.Contains(l, "client_id=mcp-proxy") {
					exs[i].RespHeader.Set("Location", re.ReplaceAllString(l, ""))
				}
			}
			exs[tok].ReqBody = regexp.MustCompile(`&code_verifier=[^&]*`).ReplaceAll(exs[tok].ReqBody, nil)
		}
		tokID := exs[tok].ID
		liveOrder := append([]mcptap.Exchange(nil), exs...)
		liveOrder[cb], liveOrder[tok] = liveOrder[tok], liveOrder[cb]
		for name, order := range map[string][]mcptap.Exchange{"stored": exs, "live": liveOrder} {
			tr := oauth.NewTracker(oauth.Options{})
			live(tr, order)
			tr.Finish()
			flows, fds := tr.Flows(), tr.Findings()
			if len(flows) != 1 || len(fds) != 0 {
				t.Errorf("pkce=%v %s order: flows %v findings %v", pkce, name, verdicts(flows), rules(fds))
				continue
			}
			f := flows[0]
			var inner []string
			for _, h := range f.Hops {
				if h.Inner {
					inner = append(inner, string(h.Kind))
				}
				if h.Exchange == tokID && (!h.Inner || h.Kind != mcptap.HopToken) {
					t.Errorf("pkce=%v %s order: upstream token call is hop %s inner=%v", pkce, name, h.Kind, h.Inner)
				}
			}
			if got := strings.Join(inner, " "); !strings.Contains(got, "token") || !strings.Contains(got, "callback") {
				t.Errorf("pkce=%v %s order: inner hops %s", pkce, name, got)
			}
			if f.Verdict.Rule != "ok" || f.Status != mcptap.FlowComplete || f.Client != oauth.ClientClaude {
				t.Errorf("pkce=%v %s order: %v %s %s", pkce, name, f.Verdict, f.Status, f.Client)
			}
		}
	}
}

// The protected resource names the MCP endpoint too: an event-stream GET
// there is mcp before any JSON-RPC was POSTed to it (the older SSE
// transport's GET /sse).
func TestMCPEndpointFromProtectedResource(t *testing.T) {
	b := oauthtest.NewBuilder()
	oauthtest.Scenario{Client: "claude", MCPPath: "/sse"}.Build(b)
	access := accessToken(t, b.Exchanges())
	exs := b.Exchanges()
	for i := range exs {
		if exs[i].Method == "POST" && exs[i].Target == "/sse" {
			exs[i].Target = "/messages?sessionId=s1" // JSON-RPC goes elsewhere
		}
	}
	b2 := oauthtest.NewBuilder()
	b2.Now = exs[len(exs)-1].Start.Add(time.Second)
	sse := b2.Do("GET", "https://mcp.example.com/sse", 200).H("Authorization", "Bearer "+access, "Accept", "text/event-stream").
		Resp("text/event-stream", "event: endpoint\ndata: /messages?sessionId=s1\n\n").ID
	exs = append(exs, b2.Exchanges()...)
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	tr.Finish()
	if k, ok := tr.Hop(sse); !ok || k != mcptap.HopMCP {
		t.Errorf("GET /sse: Hop = %q %v, want mcp", k, ok)
	}
}

// A 2026-07-28 server refuses a request whose Mcp-Method/Mcp-Name headers do
// not mirror its body (-32020 HeaderMismatch). Right after the token that
// reads as an OAuth failure; flow.incomplete quotes the JSON-RPC error and
// says which header was off, an MCP transport disagreement.
func TestHeaderMismatchNamedWhereTheFlowStopped(t *testing.T) {
	all := build(oauthtest.Scenario{Client: "claude"})
	var exs []mcptap.Exchange
	var call mcptap.Exchange
	for _, ex := range all {
		if strings.HasPrefix(ex.ReqHeader.Get("Authorization"), "Bearer ") {
			call = ex
			break
		}
		exs = append(exs, ex)
	}
	if call.ID == "" {
		t.Fatal("no authenticated MCP call in the scenario")
	}
	call.ReqHeader = call.ReqHeader.Clone()
	call.ReqHeader.Set("Mcp-Method", "tools/call") // and no Mcp-Name
	call.ReqBody = []byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{}}}`)
	call.Status, call.RespHeader = 400, http.Header{"Content-Type": {"application/json"}}
	call.RespBody = []byte(`{"jsonrpc":"2.0","id":3,"error":{"code":-32020,"message":"HeaderMismatch: missing required header Mcp-Name"}}`)
	exs = append(exs, call)
	flows, fds := oauth.Analyze(exs, oauth.Options{})
	if len(flows) != 1 || flows[0].Verdict.Rule != mcptap.RuleFlowIncomplete {
		t.Fatalf("flows %+v", flows)
	}
	var detail string
	for _, fd := range fds {
		if fd.Rule == mcptap.RuleFlowIncomplete {
			detail = fd.Detail
		}
	}
	for _, want := range []string{`JSON-RPC error -32020 "HeaderMismatch: missing required header Mcp-Name"`, `Mcp-Method "tools/call"`, `Mcp-Name (missing) (body: "search")`, "not OAuth"} {
		if !strings.Contains(detail, want) {
			t.Errorf("flow.incomplete detail lacks %q:\n%s", want, detail)
		}
	}
}

// A token error whose cause the traffic cannot decide (the authorize or the
// registration was not captured) is read through the authorization server's
// own wording: the vendor table names the cause, its source, and the side.
func TestVendorTokenErrorsDecideTheSide(t *testing.T) {
	cases := []struct {
		name, form, answer string
		rule               mcptap.RuleID
		fault              mcptap.Fault
		says               string
	}{
		{"entra-code-redeemed", "grant_type=authorization_code&code=c1&redirect_uri=https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback&client_id=cl1&code_verifier=v",
			`{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code."}`,
			mcptap.RuleTokenInvalidGrant, mcptap.FaultClient, "already redeemed"},
		{"keycloak-client", "grant_type=authorization_code&code=c1&redirect_uri=https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback&client_id=cl1&code_verifier=v",
			`{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`,
			mcptap.RuleTokenInvalidClient, mcptap.FaultAuthServer, "Keycloak client authentication"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := oauthtest.NewBuilder()
			status := 400
			if c.rule == mcptap.RuleTokenInvalidClient {
				status = 401
			}
			b.Do("POST", "https://auth.example.com/token", status).Body("application/x-www-form-urlencoded", c.form).JSON(c.answer)
			_, fds := oauth.Analyze(b.Exchanges(), oauth.Options{})
			var got *mcptap.Finding
			for i := range fds {
				if fds[i].Rule == c.rule {
					got = &fds[i]
				}
			}
			if got == nil {
				t.Fatalf("no %s among %+v", c.rule, fds)
			}
			if got.Fault != c.fault || !strings.Contains(got.Detail, c.says) || !strings.Contains(got.Detail, "Source: ") {
				t.Errorf("%s: fault %s (want %s), detail:\n%s", c.rule, got.Fault, c.fault, got.Detail)
			}
		})
	}
}

// SEP-2352: a client_id registered at one authorization server and sent to
// another (after a migration) is the client's mistake, and client.unknown
// says so; one the same server forgot is the server's.
func TestClientIDFromAnotherIssuer(t *testing.T) {
	for _, c := range []struct {
		host  string
		fault mcptap.Fault
		says  string
	}{
		{"auth.new.example", mcptap.FaultClient, "SEP-2352"},
		{"auth.old.example", mcptap.FaultAuthServer, "the server forgot it"},
	} {
		b := oauthtest.NewBuilder()
		b.Do("POST", "https://auth.old.example/register", 201).Body("application/json", `{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"]}`).
			JSON(`{"client_id":"cl_old","redirect_uris":["https://claude.ai/api/mcp/auth_callback"]}`)
		b.Do("GET", "https://"+c.host+"/authorize?response_type=code&client_id=cl_old&redirect_uri="+url.QueryEscape("https://claude.ai/api/mcp/auth_callback")+"&state=s1&code_challenge=abc&code_challenge_method=S256", 400).
			JSON(`{"error":"invalid_client","error_description":"unknown client_id"}`)
		_, fds := oauth.Analyze(b.Exchanges(), oauth.Options{})
		var got *mcptap.Finding
		for i := range fds {
			if fds[i].Rule == mcptap.RuleClientUnknown {
				got = &fds[i]
			}
		}
		if got == nil || got.Fault != c.fault || !strings.Contains(got.Detail, c.says) {
			t.Errorf("authorize at %s: %+v", c.host, got)
		}
	}
}
