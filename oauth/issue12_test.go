package oauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/redact"
)

// healthy are the fixtures whose flow must read ok however it was exported.
func healthy() []oauthtest.Fixture {
	var out []oauthtest.Fixture
	for _, fx := range oauthtest.Fixtures {
		if strings.HasPrefix(fx.Name, "healthy-") {
			out = append(out, fx)
		}
	}
	return out
}

// rewriteHAR writes exs with har.Write (redacted when red is set), lets edit
// change each entry as a producer would, and reads the file back.
func rewriteHAR(t *testing.T, exs []mcptap.Exchange, red *redact.Redactor, edit func(e map[string]any)) []mcptap.Exchange {
	t.Helper()
	var buf bytes.Buffer
	if err := har.Write(&buf, mcptap.Session{ID: "s", Source: mcptap.SourceImport}, exs, red); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	entries := doc["log"].(map[string]any)["entries"].([]any)
	for _, e := range entries {
		m := e.(map[string]any)
		delete(m, "_mcptap") // as another producer writes it
		if edit != nil {
			edit(m)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := har.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func noErrorFinding(t *testing.T, name string, exs []mcptap.Exchange) []mcptap.Flow {
	t.Helper()
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	for _, fd := range findings {
		if fd.Severity == mcptap.SevError {
			t.Errorf("%s: %s on a healthy flow: %s", name, fd.Rule, fd.Detail)
		}
	}
	return flows
}

func hasNote(flows []mcptap.Flow, part string) bool {
	for _, f := range flows {
		for _, n := range f.NotChecked {
			if strings.Contains(n, part) {
				return true
			}
		}
	}
	return false
}

// Regression (issue 12, absence read as a bad value): a redacted mcptap
// export read back gave token.pkce-mismatch on healthy flows, because the
// verifier is a placeholder and the challenge is not.
func TestRedactedExportIsNotCheckedNotFailed(t *testing.T) {
	for _, fx := range healthy() {
		exs := rewriteHAR(t, fx.Exchanges(), redact.New([]byte("k")), nil)
		flows := noErrorFinding(t, fx.Name, exs)
		if strings.Contains(fx.Name, "browser") {
			continue // the token call leaves from the platform's backend
		}
		if !hasNote(flows, "PKCE verifier is redacted") {
			t.Errorf("%s: no note that the PKCE proof was not checked: %+v", fx.Name, flows)
		}
	}
}

// Regression: Chrome's default (sanitized) export strips Authorization,
// Cookie and Set-Cookie, and a successful authenticated MCP call read as
// mcp.bearer-never-sent.
func TestSanitizedHARBearerNotBlamed(t *testing.T) {
	for _, fx := range healthy() {
		if strings.Contains(fx.Name, "browser") {
			continue
		}
		exs := rewriteHAR(t, fx.Exchanges(), nil, func(e map[string]any) {
			for _, side := range []string{"request", "response"} {
				m := e[side].(map[string]any)
				var kept []any
				for _, h := range m["headers"].([]any) {
					switch strings.ToLower(h.(map[string]any)["name"].(string)) {
					case "authorization", "cookie", "set-cookie":
						continue
					}
					kept = append(kept, h)
				}
				m["headers"] = kept
			}
		})
		flows := noErrorFinding(t, fx.Name, exs)
		if !hasNote(flows, "Authorization header is not in the recording") {
			t.Errorf("%s: no note that the bearer was not checked", fx.Name)
		}
	}
}

// Regression: Playwright and chrome-har-capturer leave content.text out when
// the page navigates first; the missing metadata and token bodies were judged
// discovery.not-json and token.bad-response.
func TestBodiesLeftOutAreNotChecked(t *testing.T) {
	for _, fx := range healthy() {
		exs := rewriteHAR(t, fx.Exchanges(), nil, func(e map[string]any) {
			c := e["response"].(map[string]any)["content"].(map[string]any)
			delete(c, "text")
		})
		flows := noErrorFinding(t, fx.Name, exs)
		if strings.Contains(fx.Name, "browser") {
			continue
		}
		if !hasNote(flows, "not recorded") {
			t.Errorf("%s: no not-checked note for the bodies left out", fx.Name)
		}
	}
}

// The analysis takes a HAR's entries in start-time order, whatever order the
// file lists them in: report FILE.har and import + report cannot disagree.
func TestEntryOrderDoesNotChangeVerdicts(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, fx := range oauthtest.Fixtures {
		exs := fx.Exchanges()
		want, _ := oauth.Analyze(exs, oauth.Options{})
		for range 3 {
			shuffled := append([]mcptap.Exchange(nil), exs...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got, _ := oauth.Analyze(shuffled, oauth.Options{})
			if len(got) != len(want) {
				t.Fatalf("%s: %d flows shuffled, %d in order", fx.Name, len(got), len(want))
			}
			for i := range want {
				if got[i].Verdict != want[i].Verdict || len(got[i].Hops) != len(want[i].Hops) {
					t.Errorf("%s flow %d: shuffled %v (%d hops), in order %v (%d hops)", fx.Name, i, got[i].Verdict, len(got[i].Hops), want[i].Verdict, len(want[i].Hops))
				}
			}
		}
	}
}

// Regression (issue 12, predictions contradicted by the same flow):
// authorize.redirect-uri-unregistered fired on a loopback port change that the
// authorization server accepted (RFC 8252 §7.3) and that went on to a code, a
// token and MCP 200.
func TestLoopbackPortChangeAcceptedIsNoFinding(t *testing.T) {
	exs := oauthtest.Fixture{Scenario: oauthtest.Scenario{Client: "vscode", RedirectURI: "http://127.0.0.1:51234/"}}.Exchanges()
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	for _, fd := range findings {
		if fd.Rule == mcptap.RuleAuthorizeRedirectURIUnregistered {
			t.Errorf("contradicted prediction raised: %s", fd.Detail)
		}
	}
	if len(flows) != 1 || flows[0].Verdict.Rule != mcptap.RuleOK || flows[0].Status != mcptap.FlowComplete {
		t.Errorf("flows: %+v", flows)
	}
	// The same port change refused by the authorization server is the finding.
	refused := oauthtest.Fixture{Scenario: oauthtest.Scenario{Client: "vscode", RedirectURI: "http://127.0.0.1:51234/", AuthorizeStatus: 400, AuthorizeBody: "Invalid redirect URI"}}.Exchanges()
	if flows, _ := oauth.Analyze(refused, oauth.Options{}); len(flows) == 0 || flows[0].Verdict.Rule != mcptap.RuleAuthorizeRedirectURIUnregistered {
		t.Errorf("refused port change: %+v", flows)
	}
}

// Regression (issue 12): the redirect hop was stamped at the authorize's
// start; it is the authorize's answer and exists from when that arrived.
func TestRedirectHopStampedAtResponse(t *testing.T) {
	exs := oauthtest.Fixtures[0].Exchanges()
	byID := map[string]mcptap.Exchange{}
	for _, ex := range exs {
		byID[ex.ID] = ex
	}
	flows, _ := oauth.Analyze(exs, oauth.Options{})
	n := 0
	for _, f := range flows {
		for _, h := range f.Hops {
			if h.Kind != mcptap.HopRedirect {
				continue
			}
			n++
			ex := byID[h.Exchange]
			if !h.At.Equal(ex.ResponseAt) || ex.ResponseAt.Equal(ex.Start) {
				t.Errorf("redirect hop at %v; the exchange started %v and its response came %v", h.At, ex.Start, ex.ResponseAt)
			}
		}
	}
	if n == 0 {
		t.Fatal("no redirect hop in the fixture")
	}
}

// Regression (issue 12, scale): a client with a constant state piled every
// attempt into one flow (and the rules went quadratic in it). An authorize
// the authorization server already answered is not reloaded by a later one
// with the same state: that is a new attempt. A reload before any answer
// (a login loop) stays the same attempt.
func TestConstantStateAttemptsAreSeparateFlows(t *testing.T) {
	t0 := oauthtest.T0
	mk := func(i int, target string, status int, loc string) mcptap.Exchange {
		ex := mcptap.Exchange{ID: fmt.Sprintf("%016x%06x", uint64(t0.UnixNano())+uint64(i), i), Start: t0.Add(time.Duration(i) * time.Second),
			Method: "GET", Scheme: "https", Host: "as.example", Target: target, Status: status, Complete: true,
			ReqHeader: http.Header{}, RespHeader: http.Header{}}
		if loc != "" {
			ex.RespHeader.Set("Location", loc)
		}
		return ex
	}
	az := "/authorize?response_type=code&client_id=c1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=same&code_challenge=x&code_challenge_method=S256"
	exs := []mcptap.Exchange{
		mk(0, az, 200, ""), // login page
		mk(1, az, 302, "http://127.0.0.1:9/cb?code=c1&state=same"),
		mk(2, az, 302, "http://127.0.0.1:9/cb?code=c2&state=same"),
		mk(3, az, 302, "http://127.0.0.1:9/cb?code=c3&state=same"),
	}
	flows, _ := oauth.Analyze(exs, oauth.Options{})
	if len(flows) != 3 {
		for _, f := range flows {
			t.Logf("flow %s hops %d", f.ID, len(f.Hops))
		}
		t.Fatalf("%d flows, want 3 (the reload joins the first attempt)", len(flows))
	}
}

// With only the authorization server behind mcptap (no MCP traffic recorded
// at all), a token issued is as far as the capture can see: the attempt
// succeeded, it is not flow.incomplete.
func TestAuthServerOnlyCaptureSucceedsAtTheToken(t *testing.T) {
	var exs []mcptap.Exchange
	for _, ex := range oauthtest.Fixtures[0].Exchanges() {
		if !strings.HasPrefix(ex.Target, "/mcp") {
			exs = append(exs, ex)
		}
	}
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	for _, f := range flows {
		if f.Verdict.Rule != mcptap.RuleOK {
			t.Errorf("flow %s: %v", f.ID, f.Verdict)
		}
	}
	for _, fd := range findings {
		if fd.Severity != mcptap.SevInfo {
			t.Errorf("%s: %s", fd.Rule, fd.Detail)
		}
	}
}

// readHARFile reads a HAR file as mcptap report does.
func readHARFile(t *testing.T, path string) []mcptap.Exchange {
	t.Helper()
	exs, err := har.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return exs
}

// loseStatus writes a response as Firefox's HAR writer does when its
// Network Monitor never got the response's status (a fetch that finished
// as the page navigated away, or an export made before the panel caught
// up): status 0, no status text or HTTP version, headers and body kept.
func loseStatus(e map[string]any) {
	r := e["response"].(map[string]any)
	r["status"], r["statusText"], r["httpVersion"] = 0, "", ""
}

// seriousRules are the error and warning rules the analysis raises.
func seriousRules(exs []mcptap.Exchange) (map[mcptap.RuleID]bool, []mcptap.Flow) {
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	out := map[mcptap.RuleID]bool{}
	for _, fd := range findings {
		if fd.Severity != mcptap.SevInfo {
			out[fd.Rule] = true
		}
	}
	return out, flows
}

// Regression (issue 12, a real Firefox 153 HAR): a response whose status
// the producer lost (status 0 with its headers and body recorded) was read
// as no answer at all: discovery.no-authorization-servers with the
// metadata's body in the file, flow.incomplete at a token response with its
// access token. Losing the status of any one exchange, or of every one, of
// a healthy capture adds no error or warning, fails no flow, and says what
// was not checked.
func TestStatusLostIsNotChecked(t *testing.T) {
	type capture struct {
		name string
		exs  []mcptap.Exchange
	}
	var cases []capture
	for _, fx := range healthy() {
		cases = append(cases, capture{fx.Name, fx.Exchanges()})
	}
	// A browser-based client's dance as Chromium's DevTools wrote it (lab's
	// TestHARFromDevTools, kept as written): cross-origin fetches and their
	// CORS preflights.
	cases = append(cases, capture{"chromium-156-devtools", readHARFile(t, "../har/testdata/chromium-156-devtools.har")})
	for _, fx := range cases {
		base, baseFlows := seriousRules(rewriteHAR(t, fx.exs, nil, nil))
		n := len(fx.exs)
		for i := -1; i < n; i++ {
			k := 0
			exs := rewriteHAR(t, fx.exs, nil, func(e map[string]any) {
				if i < 0 || k == i {
					loseStatus(e)
				}
				k++
			})
			what := fmt.Sprintf("%s, status of entry %d lost", fx.name, i)
			if i < 0 {
				what = fx.name + ", every status lost"
			}
			got, flows := seriousRules(exs)
			for r := range got {
				if !base[r] {
					t.Errorf("%s: %s", what, r)
				}
			}
			for _, f := range flows {
				if f.Status == mcptap.FlowFailed {
					t.Errorf("%s: flow %s failed: %s", what, f.ID, f.Verdict.Rule)
				}
			}
			if len(flows) != len(baseFlows) {
				t.Errorf("%s: %d flows, %d with every status", what, len(flows), len(baseFlows))
			}
		}
	}
}

// The same on a real file: Firefox 153's "Save All As HAR" (lab's
// TestHARFromFirefox, kept as written) lost the status of the fetches of
// the page it navigated away from: the 401 challenge, both metadata
// documents. Their headers and bodies are there; the flow is read whole
// and complete, with a note for each status, and nothing is blamed.
func TestFirefoxLostStatusesFile(t *testing.T) {
	exs := readHARFile(t, "../har/testdata/firefox-153-navigated.har")
	lost := 0
	for i := range exs {
		if exs[i].StatusUnrecorded() {
			lost++
		}
	}
	if lost < 3 {
		t.Fatalf("%d answers of unrecorded status in the file; it has the challenge's and both metadata documents'", lost)
	}
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	for _, fd := range findings {
		if fd.Severity != mcptap.SevInfo {
			t.Errorf("%s on a healthy capture: %s", fd.Rule, fd.Detail)
		}
	}
	if len(flows) != 1 || flows[0].State != "firefox-st-Zm9vYmFy" || flows[0].Status != mcptap.FlowComplete || flows[0].Client != oauth.ClientWebApp {
		t.Fatalf("want one complete web-app flow, got %+v", flows)
	}
	for _, k := range []mcptap.HopKind{mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth} {
		found := false
		for _, h := range flows[0].Hops {
			found = found || h.Kind == k
		}
		if !found {
			t.Errorf("no %s hop: the answer of unrecorded status was not read", k)
		}
	}
	if !hasNote(flows, "/.well-known/oauth-protected-resource/mcp was not recorded (its headers and body were)") {
		t.Errorf("no note for the metadata's lost status: %q", flows[0].NotChecked)
	}
}
