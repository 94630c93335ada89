package lab

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
)

// Ory Hydra (v2.3.0, built by .ci/run from tools/hydra) as the third real
// authorization server: OpenID Connect dynamic client registration, PKCE,
// JWT access tokens, and a login and consent app of the operator's, as
// every Hydra deployment has (here: it signs in "alice" and grants what the
// client asked for).

// hydraPath is the hydra binary .ci/run builds from tools/hydra (build it
// with the command in CONTRIBUTING.md).
func hydraPath(t *testing.T) string { return toolPath(t, "MCPTAP_HYDRA", "hydra") }

// startHydra runs Hydra with its public API on port and its admin API on a
// port of its own, naming issuer (mcptap's route in front of it) in its
// metadata and tokens, and the login and consent app below. With
// grantAudience the consent app grants the MCP resource (the authorize
// request's RFC 8707 resource) as the access token's audience; Hydra does
// not read resource itself, so without it its tokens carry no audience.
// It returns the access-token signing keys by key ID.
//
// Hydra serves registration at /oauth2/register once it is enabled, and
// names it in its metadata only when webfinger.oidc_discovery
// .client_registration_url is set too: advertiseRegistration sets it.
func startHydra(t *testing.T, port int, issuer string, grantAudience, advertiseRegistration bool) map[string]*rsa.PublicKey {
	t.Helper()
	bin := hydraPath(t)
	admin := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	app := httptest.NewServer(hydraLoginConsent(admin, grantAudience))
	t.Cleanup(app.Close)

	au, _ := url.Parse(admin)
	cfg := fmt.Sprintf(`dsn: memory
serve:
  public: {host: 127.0.0.1, port: %d}
  admin: {host: 127.0.0.1, port: %s}
  cookies: {same_site_mode: Lax}
urls:
  self: {issuer: %q}
  login: %q
  consent: %q
secrets:
  system: [%q]
strategies:
  access_token: jwt
oidc:
  dynamic_client_registration:
    enabled: true
log:
  level: warn
`, port, au.Port(), issuer, app.URL+"/login", app.URL+"/consent", "mcptap-hydra-test-system-secret-0123456789")
	if advertiseRegistration {
		cfg += fmt.Sprintf("webfinger:\n  oidc_discovery:\n    client_registration_url: %q\n", issuer+"/oauth2/register")
	}
	path := filepath.Join(t.TempDir(), "hydra.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", path)
	cmd.Stdout = &logWriter{t: t, prefix: "hydra: "}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// Ready when both APIs answer; the first JWKS read makes the signing
	// keys.
	public := "http://127.0.0.1:" + strconv.Itoa(port)
	hang := time.Now().Add(labBound) // a hang reaches it; a loaded machine does not
	for _, u := range []string{admin + "/health/ready", public + "/health/ready"} {
		for {
			select {
			case <-exited:
				t.Fatalf("hydra exited before it was ready: %v", waitErr)
			default:
			}
			if time.Now().After(hang) {
				t.Fatalf("hydra not ready at %s after %v", u, labBound)
			}
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	keys := rsaKeys(t, "hydra", public+"/.well-known/jwks.json")
	// The client registered ahead, as an operator does with Hydra's admin
	// API: a public client on a loopback callback, any port (RFC 8252 §7.3).
	reg, _ := json.Marshal(map[string]any{"client_id": "mcptap-preregistered", "redirect_uris": []string{"http://127.0.0.1/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "mcp:tools"})
	cr, err := http.Post(admin+"/admin/clients", "application/json", bytes.NewReader(reg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cr.Body)
	cr.Body.Close()
	if cr.StatusCode != http.StatusCreated {
		t.Fatalf("hydra admin: create client: %d %s", cr.StatusCode, body)
	}
	return keys
}

// hydraLoginConsent is the operator's login and consent app: a login page
// (user name and password, any password), a consent page, each accepted
// through Hydra's admin API. The pages are the shapes the browser stand-in
// and the Playwright producer fill in (a form, hidden fields, login and
// password inputs, a submit button).
func hydraLoginConsent(admin string, grantAudience bool) http.Handler {
	// call is one admin API call on the request that challenge names
	// (kind: "login" or "consent").
	call := func(method, kind, action, challenge string, body any) (map[string]any, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		path := "/admin/oauth2/auth/requests/" + kind + action
		req, _ := http.NewRequest(method, admin+path+"?"+url.Values{kind + "_challenge": {challenge}}.Encode(), rd)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out := map[string]any{}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
			return nil, fmt.Errorf("hydra admin %s %s: %d %v %v", method, path, resp.StatusCode, err, out)
		}
		return out, nil
	}
	page := func(w http.ResponseWriter, title, action, field, challenge, inputs string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>%s</title></head><body><form method="post" action="%s"><input type="hidden" name="%s" value="%s">%s<button type="submit">Continue</button></form></body></html>`,
			title, action, field, html.EscapeString(challenge), inputs)
	}
	redirect := func(w http.ResponseWriter, r *http.Request, out map[string]any, err error) {
		to, _ := out["redirect_to"].(string)
		if err != nil || to == "" {
			http.Error(w, fmt.Sprint(err), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("login_challenge")
		page(w, "Sign in", "/login", "login_challenge", c, `<input name="login"><input type="password" name="password">`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		out, err := call(http.MethodPut, "login", "/accept", r.FormValue("login_challenge"), map[string]any{"subject": r.FormValue("login")})
		redirect(w, r, out, err)
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Allow access", "/consent", "consent_challenge", r.URL.Query().Get("consent_challenge"), "")
	})
	mux.HandleFunc("POST /consent", func(w http.ResponseWriter, r *http.Request) {
		c := r.FormValue("consent_challenge")
		req, err := call(http.MethodGet, "consent", "", c, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		aud := []any{}
		if a, ok := req["requested_access_token_audience"].([]any); ok {
			aud = a
		}
		if grantAudience {
			if u, err := url.Parse(fmt.Sprint(req["request_url"])); err == nil && u.Query().Get("resource") != "" {
				aud = append(aud, u.Query().Get("resource"))
			}
		}
		out, err := call(http.MethodPut, "consent", "/accept", c,
			map[string]any{"grant_scope": req["requested_scope"], "grant_access_token_audience": aud})
		redirect(w, r, out, err)
	})
	return mux
}

// Hydra behind mcptap with the MCP Go SDK's OAuth client (v1.8.0):
// healthy with a client registered ahead, and what goes wrong with this
// pair in practice. The consent app grants no audience: Hydra does not read
// RFC 8707's resource, so its JWT access tokens carry no aud and the MCP
// server refuses them. Registration is enabled and not advertised (no
// client_registration_url): the client cannot register. Registration is
// advertised: Hydra answers it with "jwks": {} (a JWK Set is an object,
// RFC 7591 §2), which the Go SDK declares a string and fails to decode,
// so it registers again and gives up.
func TestPeersGoSDKWithHydra(t *testing.T) {
	runGoSDKCases(t, []peerCase{
		{name: "healthy", opts: peerOptions{hydraAS: true}, connect: true, verdict: mcptap.RuleOK, fault: mcptap.FaultNone},
		{name: "consent grants no audience", opts: peerOptions{hydraAS: true, hydraNoAudience: true},
			verdict: mcptap.RuleMCPBearerRejected, fault: mcptap.FaultAuthServer, has: []mcptap.RuleID{mcptap.RuleTokenAudienceMismatch}},
		{name: "registration not advertised", opts: peerOptions{hydraAS: true, hydraDCR: true, hydraNoRegistrationURL: true},
			verdict: mcptap.RuleDiscoveryNoRegistration, fault: mcptap.FaultAuthServer},
		{name: "registration answer the Go SDK cannot decode", opts: peerOptions{hydraAS: true, hydraDCR: true},
			verdict: mcptap.RuleFlowIncomplete, fault: mcptap.FaultClient},
	})
}
