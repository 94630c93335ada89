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
	reg, _ := json.Marshal(map[string]any{"redirect_uris": []string{callback}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}, "scope": "mcp:tools", "client_name": "har producer test"})
	resp, err := http.Post(w.issuer+"/reg", "application/json", bytes.NewReader(reg))
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

	for _, content := range []string{"embed", "omit"} {
		t.Run(content, func(t *testing.T) {
			verifier := "playwright-verifier-" + strings.Repeat("v", 30) + content
			q := url.Values{"response_type": {"code"}, "client_id": {client.ClientID}, "redirect_uri": {callback},
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
			exs, err := har.Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("read Playwright's HAR: %v", err)
			}
			flows, findings := oauth.Analyze(exs, oauth.Options{})
			var main *mcptap.Flow
			for i := range flows {
				if flows[i].State == q.Get("state") {
					main = &flows[i]
				}
			}
			if main == nil {
				t.Fatalf("no flow for the state in %d flows (%d exchanges)", len(flows), len(exs))
			}
			if main.Verdict.Rule != mcptap.RuleOK || main.Status == mcptap.FlowFailed {
				t.Errorf("browser-side attempt that reached the callback page: %+v", *main)
			}
			kinds := map[mcptap.HopKind]bool{}
			for _, h := range main.Hops {
				kinds[h.Kind] = true
			}
			for _, k := range []mcptap.HopKind{mcptap.HopAuthorize, mcptap.HopRedirect, mcptap.HopCallback} {
				if !kinds[k] {
					t.Errorf("no %s hop in the flow: %+v", k, main.Hops)
				}
			}
			for _, fd := range findings {
				if fd.Severity != mcptap.SevInfo {
					t.Errorf("%s on a healthy browser capture: %s", fd.Rule, fd.Detail)
				}
			}
		})
	}
}
