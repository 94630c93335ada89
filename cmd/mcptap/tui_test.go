package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcptap/mcptap/internal/freeport"
)

// The live view of `mcptap proxy` in a real terminal: an authorize whose code
// is never redeemed shows a running timer, then turns into
// token.never-called at the timeout with no further traffic.
func proxyLiveTUIInTmux(t *testing.T, bin string) {
	needTmux(t)
	state := "live-state-0001"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/register":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"client_id":"cl_live"}`)
		case "/oauth/authorize":
			http.Redirect(w, r, "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_live&state="+r.URL.Query().Get("state"), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()

	addr := freeport.Addr(t)

	s := startTmux(t, []string{"MCPTAP_HOME=" + t.TempDir(), "TERM=xterm-256color"},
		bin, "proxy", "--upstream", up.URL, "--listen", addr, "--token-timeout", "8s")
	s.waitFor("Flows (0)", "listen "+addr, "live")

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	reg, err := client.Post("http://"+addr+"/oauth/register", "application/json",
		strings.NewReader(`{"redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"]}`))
	if err != nil {
		t.Fatal(err)
	}
	reg.Body.Close()
	resp, err := client.Get("http://" + addr + "/oauth/authorize?response_type=code&client_id=cl_live&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect&state=" +
		state + "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize through the proxy: %s", resp.Status)
	}

	screen := s.waitFor("Flows (1)", "waiting for the token call", "/ 0:08")
	saveScreen(t, "live-waiting", screen)
	if !strings.Contains(screen, "…") {
		t.Errorf("a waiting flow shows …:\n%s", screen)
	}
	screen = s.waitFor("token.never-called · client")
	saveScreen(t, "live-token-never-called", screen)
	if !strings.Contains(screen, "✗") || strings.Contains(screen, "waiting for the token call") {
		t.Errorf("the flow did not turn ✗ by itself:\n%s", screen)
	}
	s.keys("Enter")
	s.waitFor("verdict  token.never-called", "◀ chain broke here")
	// The live view keeps rows only: an exchange opened from the traffic
	// list is read back from the recording, headers and body.
	s.keys("Escape", "2", "/", "path:register", "Enter", "Enter")
	screen = s.waitFor(`"client_id": "cl_live"`, "Content-Type")
	if strings.Contains(screen, "could not load") {
		t.Errorf("the exchange did not load from the recording:\n%s", screen)
	}
	s.keys("q")
	screen = s.waitFor("mcptap-exit=0")
	if !strings.Contains(screen, "mcptap: session ") {
		t.Errorf("proxy did not end its session cleanly after the TUI quit:\n%s", screen)
	}
}

// The demo's live view labels each flow with the scenario that made it.
func demoTUIInTmux(t *testing.T, bin string) {
	needTmux(t)
	s := startTmux(t, []string{"MCPTAP_HOME=" + t.TempDir(), "TERM=xterm-256color"},
		bin, "demo", "--scenario", "state-dropped")
	screen := s.waitFor("SCENARIO", "state-dropped", "state.not-echoed · auth-server")
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, "state.not-echoed") && !strings.Contains(l, "state-dropped") {
			t.Errorf("the state.not-echoed flow is not labelled state-dropped: %q", l)
		}
	}
	s.keys("q")
	s.waitFor("mcptap-exit=")
}
