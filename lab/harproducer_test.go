package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
)

// harCorpus, when set, is where the HAR tests also write the files the real
// producers made from the local world, as a corpus to read or import:
//
//	go test ./lab -run 'TestHARFrom' -args -har-corpus /tmp/corpus
var harCorpus = flag.String("har-corpus", "", "also write the real producers' HAR files to this directory")

// keepCorpus writes raw to the corpus directory as name, when one is set.
func keepCorpus(t *testing.T, name string, raw []byte) {
	t.Helper()
	if *harCorpus == "" {
		return
	}
	if err := os.MkdirAll(*harCorpus, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*harCorpus, strings.ReplaceAll(t.Name(), "/", "-")+"-"+name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chromiumPath is Debian's Chromium, which .ci/run installs.
func chromiumPath(t *testing.T) string {
	return toolPath(t, "MCPTAP_BROWSER", "chromium", "chromium-browser")
}

// firefoxPath is Debian's Firefox ESR, which .ci/run installs.
func firefoxPath(t *testing.T) string {
	return toolPath(t, "MCPTAP_FIREFOX", "firefox-esr", "firefox")
}

// toolPath finds a program .ci/run installs, by the variable env or its
// names; it is required under CI, and skips the test elsewhere.
func toolPath(t *testing.T, env string, names ...string) string {
	t.Helper()
	for _, p := range append([]string{os.Getenv(env)}, names...) {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI", names[0])
	}
	t.Skipf("%s not installed", names[0])
	return ""
}

// registerPublicClient registers a public client (no secret, PKCE) with
// oidc-provider for callback and returns its client_id.
func registerPublicClient(t *testing.T, issuer, callback, name string) string {
	t.Helper()
	reg, _ := json.Marshal(map[string]any{"redirect_uris": []string{callback}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}, "scope": "mcp:tools", "client_name": name})
	resp, err := http.Post(issuer+"/reg", "application/json", bytes.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var client struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(body, &client) != nil || client.ClientID == "" {
		t.Fatalf("registration: %d %s", resp.StatusCode, body)
	}
	return client.ClientID
}

// analyseHAR reads a producer's HAR as a user's file is read, analyses it,
// and returns the flow of the attempt with state.
func analyseHAR(t *testing.T, producer string, raw []byte, state string) (mcptap.Flow, []mcptap.Finding) {
	t.Helper()
	exs, err := har.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read %s's HAR: %v", producer, err)
	}
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	for _, f := range flows {
		if f.State == state {
			return f, findings
		}
	}
	t.Fatalf("no flow for the state in %d flows (%d exchanges of %s's HAR)", len(flows), len(exs), producer)
	return mcptap.Flow{}, nil
}

// requireHops fails unless the flow has a hop of each kind.
func requireHops(t *testing.T, f mcptap.Flow, kinds ...mcptap.HopKind) {
	t.Helper()
	for _, k := range kinds {
		if !slices.ContainsFunc(f.Hops, func(h mcptap.Hop) bool { return h.Kind == k }) {
			t.Errorf("no %s hop in the flow: %+v", k, f.Hops)
		}
	}
}

// requireInfoOnly fails on any error or warning finding: a healthy capture.
func requireInfoOnly(t *testing.T, findings []mcptap.Finding) {
	t.Helper()
	for _, fd := range findings {
		if fd.Severity != mcptap.SevInfo {
			t.Errorf("%s on a healthy browser capture: %s", fd.Rule, fd.Detail)
		}
	}
}

// Real HAR producers (issue 12): Playwright's recordHar in Debian's Chromium
// records a real browser signing in and consenting on oidc-provider's pages
// and landing on the client's callback page, once with bodies embedded and
// once with Playwright's "omit" (bodies left out). Each file is read and
// analysed as a user's HAR would be: the browser-side attempt succeeded, and
// what the producer left out is not judged.
func TestHARFromPlaywright(t *testing.T) {
	bin := chromiumPath(t)
	dir := interopDir(t)
	w := startPeerWorld(t, peerOptions{})
	cb := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(rw, "<html><body>Connected. You can close this window.</body></html>")
	}))
	defer cb.Close()
	callback := cb.URL + "/oauth/callback"

	// The client's registration, as its backend would make it.
	clientID := registerPublicClient(t, w.issuer, callback, "har producer test")

	for _, content := range []string{"embed", "omit"} {
		t.Run(content, func(t *testing.T) {
			verifier := "playwright-verifier-" + strings.Repeat("v", 30) + content
			q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {callback},
				"state": {"st-" + content + "-Zm9vYmFy"}, "code_challenge": {oauth.S256(verifier)}, "code_challenge_method": {"S256"},
				"scope": {"mcp:tools"}, "resource": {w.mcpURL}}
			harPath := filepath.Join(t.TempDir(), "playwright-"+content+".har")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "har-producer.mjs"))
			cmd.Dir = dir
			cmd.Env = append(cmd.Environ(), "URL="+w.issuer+"/auth?"+q.Encode(), "CALLBACK="+callback, "HAR="+harPath, "CONTENT="+content, "CHROMIUM="+bin, "NODE_NO_WARNINGS=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("har-producer: %v\n%s", err, out)
			}
			raw, err := os.ReadFile(harPath)
			if err != nil {
				t.Fatal(err)
			}
			keepCorpus(t, filepath.Base(harPath), raw)
			if content == "omit" {
				var doc struct {
					Log struct {
						Entries []struct {
							Response struct {
								Content map[string]any `json:"content"`
							} `json:"response"`
						} `json:"entries"`
					} `json:"log"`
				}
				if err := json.Unmarshal(raw, &doc); err != nil {
					t.Fatal(err)
				}
				left := 0
				for _, e := range doc.Log.Entries {
					if _, ok := e.Response.Content["text"]; !ok {
						left++
					}
				}
				if left == 0 {
					t.Fatalf("Playwright's omit mode kept every body; the test would not exercise what it claims")
				}
			}
			main, findings := analyseHAR(t, "Playwright", raw, q.Get("state"))
			if main.Verdict.Rule != mcptap.RuleOK || main.Status == mcptap.FlowFailed {
				t.Errorf("browser-side attempt that reached the callback page: %+v", main)
			}
			requireHops(t, main, mcptap.HopAuthorize, mcptap.HopRedirect, mcptap.HopCallback)
			requireInfoOnly(t, findings)
		})
	}
}

// webClientPage is a browser-based MCP client, as MCP Inspector's web
// app is: every call to the MCP server and the authorization server is a
// cross-origin fetch from this page. /start sends initialize, reads the 401
// challenge, fetches the protected resource metadata and the authorization
// server metadata, and navigates to the authorization endpoint;
// /oauth/callback redeems the code and sends initialize with the token,
// then sets the title to "DONE <status>".
const webClientPage = `<!doctype html><html><head><title>client</title></head><body><pre id="out"></pre><script>
const cfg = %s;
const out = (s) => { document.getElementById('out').textContent += s + '\n'; };
const initialize = (token) => fetch(cfg.mcp, { method: 'POST',
  headers: Object.assign({ 'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream', 'Mcp-Protocol-Version': '2025-06-18' },
    token ? { 'Authorization': 'Bearer ' + token } : {}),
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'devtools-har-test', version: '1.0.0' } } }) });
(async () => {
  try {
    if (location.pathname === '/start') {
      const r = await initialize();
      const challenge = r.headers.get('WWW-Authenticate') || '';
      const prm = await (await fetch(/resource_metadata="([^"]+)"/.exec(challenge)[1])).json();
      const as = prm.authorization_servers[0].replace(/\/$/, '');
      const meta = await (await fetch(as + '/.well-known/oauth-authorization-server')).json();
      sessionStorage.setItem('token_endpoint', meta.token_endpoint);
      const q = new URLSearchParams({ response_type: 'code', client_id: cfg.client_id, redirect_uri: cfg.redirect_uri,
        state: cfg.state, code_challenge: cfg.code_challenge, code_challenge_method: 'S256', scope: 'mcp:tools', resource: cfg.mcp });
      location.href = meta.authorization_endpoint + '?' + q;
      return;
    }
    const p = new URLSearchParams(location.search);
    if (p.get('state') !== cfg.state) throw new Error('state came back as ' + p.get('state'));
    const t = await fetch(sessionStorage.getItem('token_endpoint'), { method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code: p.get('code'), redirect_uri: cfg.redirect_uri,
        client_id: cfg.client_id, code_verifier: cfg.verifier, resource: cfg.mcp }) });
    const tok = await t.json();
    if (!tok.access_token) throw new Error('token: ' + t.status + ' ' + JSON.stringify(tok));
    const r = await initialize(tok.access_token);
    await r.text();
    document.title = 'DONE ' + r.status;
  } catch (e) {
    out(String(e));
    document.title = 'DONE failed: ' + e;
  }
})();
</script></body></html>`

// webClient is a browser-based client's world: oidc-provider and the go-sdk
// server behind mcptap (the server answering CORS) and the client's page,
// registered with oidc-provider; start is the page that begins the dance.
type webClient struct {
	start, state string
	final        string // the URL of the page's last request (the MCP endpoint)
}

func startWebClient(t *testing.T, name string) webClient {
	t.Helper()
	w := startPeerWorld(t, peerOptions{cors: true})
	verifier := name + "-verifier-" + strings.Repeat("d", 40)
	var cfg []byte // written before the server starts: its handlers only read it
	client := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/start" && r.URL.Path != "/oauth/callback" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, webClientPage, cfg)
	}))
	t.Cleanup(client.Close)
	origin := "http://" + client.Listener.Addr().String()
	callback := origin + "/oauth/callback"
	// The client's registration, made once as the web app's operator does.
	clientID := registerPublicClient(t, w.issuer, callback, name+" har test")
	state := name + "-st-Zm9vYmFy"
	cfg, _ = json.Marshal(map[string]string{"mcp": w.mcpURL, "client_id": clientID, "redirect_uri": callback,
		"state": state, "verifier": verifier, "code_challenge": oauth.S256(verifier)})
	client.Start()
	return webClient{start: origin + "/start", state: state, final: w.mcpURL}
}

// runProducer runs a producer script of lab/interop with env and fails
// unless the web client connected (its page's title "DONE 200").
func runProducer(t *testing.T, script string, env ...string) {
	t.Helper()
	dir := interopDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--experimental-websocket", filepath.Join(dir, script))
	cmd.Dir = dir
	cmd.Env = append(append(cmd.Environ(), "DONE=DONE", "NODE_NO_WARNINGS=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if !strings.Contains(string(out), `"title":"DONE 200"`) {
		t.Fatalf("the browser-based client did not connect: %s", out)
	}
}

// checkWebClientHAR reads a producer's HAR of the web client's dance and
// requires one complete flow named web-app, every hop of the dance, no
// error or warning, and (when the producer strips it) the missing
// Authorization said to be unrecorded.
func checkWebClientHAR(t *testing.T, producer, path, state string, stripped bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keepCorpus(t, filepath.Base(path), raw)
	var doc struct {
		Log struct {
			Entries []struct {
				Request struct {
					Method  string                  `json:"method"`
					Headers []struct{ Name string } `json:"headers"`
				} `json:"request"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	authz, preflights := 0, 0
	for _, e := range doc.Log.Entries {
		if e.Request.Method == http.MethodOptions {
			preflights++
		}
		for _, h := range e.Request.Headers {
			if strings.EqualFold(h.Name, "Authorization") {
				authz++
			}
		}
	}
	if stripped != (authz == 0) {
		t.Fatalf("%d requests with Authorization in %s's file (stripped: %v)", authz, producer, stripped)
	}
	main, findings := analyseHAR(t, producer, raw, state)
	if main.Verdict.Rule != mcptap.RuleOK || main.Status != mcptap.FlowComplete {
		t.Errorf("a browser-based client that connected (%d preflights in the file): %s %s %+v", preflights, main.Status, main.Verdict.Rule, main.Verdict)
	}
	if main.Client != oauth.ClientWebApp {
		t.Errorf("client %q: its token request and MCP calls are a page's fetches (a loopback callback is not mcp-remote)", main.Client)
	}
	if lost := statusesLost(raw, main); lost > 0 && !slices.ContainsFunc(main.NotChecked, func(s string) bool { return strings.Contains(s, "was not recorded (its headers and body were)") }) {
		t.Errorf("%d hops of unrecorded status in %s's file and no note says so: %q", lost, producer, main.NotChecked)
	}
	if stripped && !slices.ContainsFunc(main.NotChecked, func(s string) bool { return strings.Contains(s, "Authorization header is not in the recording") }) {
		t.Errorf("the missing Authorization is not said to be unrecorded: %q", main.NotChecked)
	}
	requireHops(t, main, mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopAuthorize,
		mcptap.HopRedirect, mcptap.HopCallback, mcptap.HopToken, mcptap.HopMCP)
	requireInfoOnly(t, findings)
}

// statusesLost counts the hops of f whose status the producer lost in raw
// (Firefox: a fetch of a page that navigated away). Other answers can lose
// theirs too (a favicon): they are no hop and carry no note.
func statusesLost(raw []byte, f mcptap.Flow) int {
	exs, err := har.Read(bytes.NewReader(raw))
	if err != nil {
		return 0
	}
	lost := map[string]bool{}
	for i := range exs {
		lost[exs[i].ID] = exs[i].StatusUnrecorded()
	}
	n := 0
	for _, h := range f.Hops {
		if lost[h.Exchange] {
			n++
		}
	}
	return n
}

// Chromium's own DevTools HAR writer (issue 12), plain and sanitized (the
// Chrome 130+ default: no Authorization, Cookie or Set-Cookie), on a real
// browser-based client's whole dance: the 401 challenge, both metadata
// documents, the authorization on oidc-provider's login and consent
// pages, the redirect to the client's page, the token request and the
// authenticated initialize, every cross-origin call with its preflight.
// Both files are read and analysed as a user's HAR would be: one complete
// flow with no error or warning, and the sanitized file's missing
// Authorization is "not recorded", not a bearer that was never sent.
func TestHARFromDevTools(t *testing.T) {
	bin := chromiumPath(t)
	c := startWebClient(t, "devtools")
	tmp := t.TempDir()
	plain, sanitized := filepath.Join(tmp, "devtools.har"), filepath.Join(tmp, "devtools-sanitized.har")
	runProducer(t, "devtools-har.mjs", "URL="+c.start, "FINAL="+c.final, "HAR="+plain, "SANITIZED="+sanitized, "CHROMIUM="+bin)
	t.Run("plain", func(t *testing.T) { checkWebClientHAR(t, "DevTools", plain, c.state, false) })
	t.Run("sanitized", func(t *testing.T) { checkWebClientHAR(t, "DevTools", sanitized, c.state, true) })
}

// Firefox's own HAR writer (issue 12): the Network Monitor's "Save All As
// HAR" in Debian's Firefox ESR, on the same browser-based client's dance.
// Firefox loses the status of fetches whose page navigated away (here the
// challenge and the metadata fetches before the authorize): their answers
// are read, their statuses are not checked, nothing is blamed on them.
func TestHARFromFirefox(t *testing.T) {
	bin := firefoxPath(t)
	c := startWebClient(t, "firefox")
	path := filepath.Join(t.TempDir(), "firefox.har")
	runProducer(t, "firefox-har.mjs", "URL="+c.start, "FINAL="+c.final, "HAR="+path, "FIREFOX="+bin)
	checkWebClientHAR(t, "Firefox", path, c.state, false)
}
