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
	t.Helper()
	for _, p := range []string{os.Getenv("MCPTAP_BROWSER"), "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required under CI")
	}
	t.Skip("chromium not installed")
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

// devtoolsClientPage is a browser-based MCP client, as MCP Inspector's web
// app is: every call to the MCP server and the authorization server is a
// cross-origin fetch from this page. /start sends initialize, reads the 401
// challenge, fetches the protected resource metadata and the authorization
// server metadata, and navigates to the authorization endpoint;
// /oauth/callback redeems the code and sends initialize with the token,
// then sets the title to "DONE <status>".
const devtoolsClientPage = `<!doctype html><html><head><title>client</title></head><body><pre id="out"></pre><script>
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
	dir := interopDir(t)
	w := startPeerWorld(t, peerOptions{cors: true})
	verifier := "devtools-verifier-" + strings.Repeat("d", 40)
	var cfg []byte
	client := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/start" && r.URL.Path != "/oauth/callback" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, devtoolsClientPage, cfg)
	}))
	defer client.Close()
	callback := client.URL + "/oauth/callback"

	// The client's registration, made once as the web app's operator does.
	clientID := registerPublicClient(t, w.issuer, callback, "devtools har test")
	state := "devtools-st-Zm9vYmFy"
	cfg, _ = json.Marshal(map[string]string{"mcp": w.mcpURL, "client_id": clientID, "redirect_uri": callback,
		"state": state, "verifier": verifier, "code_challenge": oauth.S256(verifier)})

	tmp := t.TempDir()
	plain, sanitized := filepath.Join(tmp, "devtools.har"), filepath.Join(tmp, "devtools-sanitized.har")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--experimental-websocket", filepath.Join(dir, "devtools-har.mjs"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "URL="+client.URL+"/start", "DONE=DONE", "HAR="+plain, "SANITIZED="+sanitized, "CHROMIUM="+bin, "NODE_NO_WARNINGS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("devtools-har: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"title":"DONE 200"`) {
		t.Fatalf("the browser-based client did not connect: %s", out)
	}

	for _, f := range []struct {
		name, path string
		sanitized  bool
	}{{"plain", plain, false}, {"sanitized", sanitized, true}} {
		t.Run(f.name, func(t *testing.T) {
			raw, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			keepCorpus(t, filepath.Base(f.path), raw)
			var doc struct {
				Log struct {
					Creator struct{ Name string } `json:"creator"`
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
			if doc.Log.Creator.Name != "WebInspector" {
				t.Errorf("creator %q: not DevTools' writer", doc.Log.Creator.Name)
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
			if f.sanitized != (authz == 0) {
				t.Fatalf("%d requests with Authorization in the %s export", authz, f.name)
			}
			main, findings := analyseHAR(t, "DevTools", raw, state)
			if main.Verdict.Rule != mcptap.RuleOK || main.Status != mcptap.FlowComplete {
				t.Errorf("a browser-based client that connected (%d preflights in the file): %s %s %+v", preflights, main.Status, main.Verdict.Rule, main.Verdict)
			}
			if main.Client != oauth.ClientWebApp {
				t.Errorf("client %q: its token request and MCP calls are a page's fetches (a loopback callback is not mcp-remote)", main.Client)
			}
			if f.sanitized && !slices.ContainsFunc(main.NotChecked, func(s string) bool { return strings.Contains(s, "Authorization header is not in the recording") }) {
				t.Errorf("the sanitized export's missing Authorization is not said to be unrecorded: %q", main.NotChecked)
			}
			requireHops(t, main, mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopAuthorize,
				mcptap.HopRedirect, mcptap.HopCallback, mcptap.HopToken, mcptap.HopMCP)
			requireInfoOnly(t, findings)
		})
	}
}
