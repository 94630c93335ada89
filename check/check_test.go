package check_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/check"
	"github.com/mcptap/mcptap/lab"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

// world starts a lab world for sc behind https fronts (one TLS reverse
// proxy per listener, as a tunnel gives), and returns its MCP URL and a
// transport that trusts the fronts.
func world(t *testing.T, sc lab.Scenario) (string, http.RoundTripper) {
	t.Helper()
	w, err := lab.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	var rt http.RoundTripper
	for _, l := range w.Listeners() {
		target, _ := url.Parse("http://" + l.Addr)
		rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the lab builds its URLs from its public origin, not the Host
			r.Out.Header.Set("X-Forwarded-Proto", "https")
		}}
		front := httptest.NewTLSServer(rp)
		t.Cleanup(front.Close)
		w.SetPublic(l.Name, front.URL)
		rt = front.Client().Transport // every front uses the same test certificate
	}
	return w.Public(lab.ListenerMCP) + "/mcp", rt
}

func store(t *testing.T) *recorder.Store {
	t.Helper()
	s, err := recorder.Open(filepath.Join(t.TempDir(), "check.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func scenario(t *testing.T, name string) lab.Scenario {
	t.Helper()
	sc, ok := lab.Lookup(name)
	if !ok {
		t.Fatalf("no lab scenario %s", name)
	}
	return sc
}

func platforms(names ...string) []check.Platform {
	var out []check.Platform
	for _, n := range names {
		p, _ := check.Lookup(n)
		out = append(out, p)
	}
	return out
}

// lines maps "platform/line" to the line.
func lines(r *check.Result) map[string]check.Line {
	m := map[string]check.Line{}
	for _, p := range r.Platforms {
		for _, l := range p.Lines {
			m[p.Platform+"/"+l.ID] = l
		}
	}
	return m
}

func run(t *testing.T, sc lab.Scenario, opts check.Options) *check.Result {
	t.Helper()
	u, rt := world(t, sc)
	opts.URL, opts.Base = u, rt
	if opts.Store == nil {
		opts.Store = store(t)
	}
	res, err := check.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_ = check.Write(&buf, res, "text", mcptap.SevError)
	t.Logf("%s", buf.String())
	return res
}

// The healthy worlds pass every line that applies, for every platform; the
// probes are a session of the store like any other.
func TestHealthyPassesEveryLine(t *testing.T) {
	for _, name := range []string{"healthy-chatgpt", "healthy-claude"} {
		t.Run(name, func(t *testing.T) {
			st := store(t)
			res := run(t, scenario(t, name), check.Options{Platforms: check.Platforms, Register: true, Store: st})
			for key, l := range lines(res) {
				switch l.Status {
				case check.Pass:
				case check.NA:
					if strings.HasSuffix(key, "/authorize") || strings.HasSuffix(key, "/registration") {
						t.Errorf("%s: not applicable (%s)", key, l.Detail)
					}
				default:
					t.Errorf("%s: %s %s: %s", key, l.Status, l.Rule, l.Detail)
				}
			}
			for _, p := range res.Platforms {
				if p.Created == "" {
					t.Errorf("%s: --register created no client", p.Platform)
				}
				for _, fd := range p.Other {
					t.Errorf("%s: other finding %s: %s", p.Platform, fd.Rule, fd.Detail)
				}
			}
			if res.Failing(mcptap.SevWarning) {
				t.Error("a healthy world fails")
			}
			sess, err := st.Session(res.Session)
			if err != nil || sess.Source != mcptap.SourceCheck {
				t.Fatalf("session %s: %+v %v", res.Session, sess, err)
			}
			n := 0
			var exs []mcptap.Exchange
			_ = st.Exchanges(res.Session, func(ex mcptap.Exchange) error {
				n++
				exs = append(exs, ex)
				if ex.Mode != mcptap.ModeCheck {
					t.Errorf("exchange %s recorded as %s", ex.ID, ex.Mode)
				}
				return nil
			})
			if want := len(check.Platforms) * 5; n < want || n > len(check.Platforms)*14 {
				t.Errorf("%d requests recorded for %d platforms", n, len(check.Platforms))
			}
			// Opened as a session (report, replay), the probes that stopped
			// at the authorize's first answer by design read ok, not as an
			// abandoned attempt or a code never redeemed.
			flows, fds := oauth.Analyze(exs, oauth.Options{})
			for _, f := range flows {
				if f.Verdict.Rule != mcptap.RuleOK {
					t.Errorf("flow %s of the check session: verdict %s", f.ID, f.Verdict.Rule)
				}
			}
			for _, fd := range fds {
				if fd.Severity != mcptap.SevInfo {
					t.Errorf("finding %s on the check session: %s", fd.Rule, fd.Detail)
				}
			}
		})
	}
}

// Every discovery, registration and edge fault of the lab fails exactly the
// lines it should, with the rule the traffic analysis raises; a fault that
// is the client's (it re-registers, it never sends its bearer) fails none:
// the server is fine.
func TestFaultsFailTheirLines(t *testing.T) {
	cases := []struct {
		scenario string
		as       string
		fails    map[string]mcptap.RuleID // line -> rule ("" = not reached because of another line)
	}{
		{scenario: "no-challenge", as: "claude", fails: map[string]mcptap.RuleID{"challenge": mcptap.RuleDiscoveryNoChallenge}},
		{scenario: "lazy-auth", as: "claude", fails: map[string]mcptap.RuleID{"challenge": mcptap.RuleDiscoveryLazyAuth}},
		{scenario: "no-s256", as: "chatgpt", fails: map[string]mcptap.RuleID{"pkce": mcptap.RuleDiscoveryNoPKCES256}},
		{scenario: "issuer-trailing-slash", as: "claude", fails: map[string]mcptap.RuleID{"as-metadata": mcptap.RuleDiscoveryIssuerMismatch}},
		{scenario: "prm-internal-origin", as: "chatgpt", fails: map[string]mcptap.RuleID{"resource": mcptap.RuleDiscoveryResourceMismatch}},
		{scenario: "edge-blocks-claude-user", as: "claude", fails: map[string]mcptap.RuleID{"edge": mcptap.RuleEdgeBlocked}},
		{scenario: "tunnel-interstitial", as: "claude", fails: map[string]mcptap.RuleID{"resource-metadata": mcptap.RuleTunnelInterstitial}},
		{scenario: "edge-silent-after-token", as: "claude", fails: nil},
		{scenario: "register-web-default", as: "claude-code", fails: map[string]mcptap.RuleID{"registration": mcptap.RuleRegisterApplicationType, "authorize": ""}},
		{scenario: "registration-quota", as: "claude", fails: nil},
		// A per-app document with private_key_jwt refused: check cannot act
		// as it (its --cimd uses each platform's stable document, and
		// ChatGPT's accepts none too), and with --register the server is
		// healthy.
		{scenario: "cimd-private-key-refused", as: "chatgpt", fails: nil},
		// The same for a server that never fetches documents: with
		// --register it is healthy (and a --cimd probe of the lab, which
		// cannot reach vscode.dev, would fail whatever the server does).
		{scenario: "cimd-not-fetched", as: "vscode", fails: nil},
		{scenario: "challenge-internal", as: "claude", fails: map[string]mcptap.RuleID{"challenge-public": mcptap.RuleDiscoveryChallengeInternal}},
		{scenario: "register-200", as: "claude", fails: map[string]mcptap.RuleID{"registration": mcptap.RuleRegisterBadResponse}},
		// The client's mistake: check registers where the metadata says.
		{scenario: "register-on-mcp-origin", as: "claude", fails: nil},
		{scenario: "register-every-connect", as: "claude", fails: nil},
		{scenario: "cimd-fallback", as: "claude", fails: nil}, // an info, not a failure
		{scenario: "registered-redirect-refused", as: "vscode", fails: map[string]mcptap.RuleID{"authorize": mcptap.RuleAuthorizeRegisteredRedirectRefused}},
		// CORS matters to a web page only: check probes as a platform's
		// backend (no Origin), to which this server is healthy.
		{scenario: "token-endpoint-no-cors", as: "vscode", fails: nil},
		{scenario: "no-as-metadata", as: "claude", fails: map[string]mcptap.RuleID{"as-metadata": mcptap.RuleDiscoveryAsMetadataMissing,
			"pkce": "", "registration": "", "authorize": ""}},
	}
	listed := map[string]bool{}
	for _, c := range cases {
		listed[c.scenario] = true
	}
	for _, sc := range lab.Scenarios() {
		if p := sc.Phase(); (p == "discovery" || p == "registration" || p == "edge") && !listed[sc.Name] {
			t.Errorf("lab scenario %s (%s) has no expected checklist", sc.Name, p)
		}
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			res := run(t, scenario(t, c.scenario), check.Options{Platforms: platforms(c.as), Register: true})
			for key, l := range lines(res) {
				id := strings.TrimPrefix(key, c.as+"/")
				want, listed := c.fails[id]
				switch {
				case listed && want != "" && (l.Status != check.Fail || l.Rule != want):
					t.Errorf("%s: %s %s, want fail %s (%s)", key, l.Status, l.Rule, want, l.Detail)
				case listed && want == "":
					// Not reached because of the failure above: either
					// could not tell or not applicable, never pass.
					if l.Status == check.Pass {
						t.Errorf("%s: pass after the registration failed", key)
					}
				case !listed && l.Status == check.Fail:
					t.Errorf("%s: fails %s (%s), want no failure", key, l.Rule, l.Detail)
				}
			}
		})
	}
}

// Without https a cloud platform's line fails with the check rule; an IDE
// has no such requirement.
func TestHTTPSForCloudPlatforms(t *testing.T) {
	w, err := lab.NewWorld(scenario(t, "healthy-chatgpt"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	res, err := check.Run(context.Background(), check.Options{URL: w.Public(lab.ListenerMCP) + "/mcp", Platforms: platforms("chatgpt", "vscode"), Store: store(t)})
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(res)
	if l := ls["chatgpt/https"]; l.Status != check.Fail || l.Rule != mcptap.RuleCheckHTTPS {
		t.Errorf("chatgpt/https: %+v", l)
	}
	if l := ls["vscode/https"]; l.Status != check.NA {
		t.Errorf("vscode/https: %+v", l)
	}
	// Without --register or --cimd the authorize cannot be tried.
	if l := ls["vscode/authorize"]; l.Status != check.CouldNotTell || !strings.Contains(l.Detail, "--register") {
		t.Errorf("vscode/authorize: %+v", l)
	}
}

// The analysis' client fingerprints (oauth) and the probe profiles agree:
// each platform's probe flow is named after that platform.
func TestProbesNamedByTheAnalysis(t *testing.T) {
	st := store(t)
	res := run(t, scenario(t, "healthy-chatgpt"), check.Options{Platforms: check.Platforms, Register: true, Store: st})
	var exs []mcptap.Exchange
	_ = st.Exchanges(res.Session, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil })
	named := map[string]bool{}
	flows, _ := oauth.Analyze(exs, oauth.Options{})
	for _, f := range flows {
		named[f.Client] = true
	}
	for _, p := range check.Platforms {
		if !named[p.Name] {
			t.Errorf("no flow of the check session is named %s (flows: %v)", p.Name, named)
		}
	}
}

// A registration endpoint that gives no HTTP answer fails its line; one that
// answers a GET with 404 (a POST-only route) is "could not tell".
func TestRegistrationReachability(t *testing.T) {
	for _, c := range []struct {
		name, ep string
		want     check.Status
	}{
		{"connection refused", "http://127.0.0.1:1/register", check.Fail},
		{"404 to a GET", "/register-post-only", check.CouldNotTell},
	} {
		t.Run(c.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				ep := c.ep
				if strings.HasPrefix(ep, "/") {
					ep = srv.URL + ep
				}
				switch r.URL.Path {
				case "/mcp":
					w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
					w.WriteHeader(http.StatusUnauthorized)
				case "/.well-known/oauth-protected-resource/mcp":
					_, _ = w.Write([]byte(`{"resource":"` + srv.URL + `/mcp","authorization_servers":["` + srv.URL + `"]}`))
				case "/.well-known/oauth-authorization-server":
					_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `","authorization_endpoint":"` + srv.URL + `/authorize","token_endpoint":"` + srv.URL + `/token","registration_endpoint":"` + ep + `","code_challenge_methods_supported":["S256"]}`))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			res, err := check.Run(context.Background(), check.Options{URL: srv.URL + "/mcp", Platforms: platforms("vscode"), Store: store(t)})
			if err != nil {
				t.Fatal(err)
			}
			l := lines(res)["vscode/registration"]
			if l.Status != c.want || (c.want == check.Fail && l.Rule != mcptap.RuleCheckRegistrationUnreachable) {
				t.Errorf("registration line: %s %s: %s", l.Status, l.Rule, l.Detail)
			}
		})
	}
}

// Every platform check acts as is a row of oauth.Clients with what acting
// as it takes: its User-Agents, redirect URIs and registration name.
func TestPlatformsComeFromTheClientTable(t *testing.T) {
	for _, p := range check.Platforms {
		c, ok := oauth.Client(p.Name)
		if !ok || p.DiscoveryUA == "" || p.AuthUA == "" || len(p.RedirectURIs) == 0 || p.RegisterName == "" {
			t.Errorf("platform %q: not a complete row of oauth.Clients (%+v)", p.Name, p.ClientInfo)
		}
		if ok && c.DiscoveryUA != p.DiscoveryUA {
			t.Errorf("platform %q acts with another User-Agent than its table row", p.Name)
		}
	}
}
