package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

// The real-peer tests put software nobody on the project wrote on both ends
// of mcptap: node oidc-provider (panva), a certified OpenID provider, as the
// authorization server, and the MCP Go SDK's OAuth client
// (auth.AuthorizationCodeHandler) as the MCP client, with the lab's go-sdk MCP
// server as the resource server. A browser stand-in answers oidc-provider's
// real login and consent pages. Each misconfiguration is one a user really
// makes with this software; each asserted verdict is what mcptap says about
// the traffic the real peers produced.

// rsaJWKSKeyID is the key ID of the key rsaJWKS makes.
const rsaJWKSKeyID = "peer-test"

// rsaJWKS returns a private JWK set for oidc-provider and the public key.
func rsaJWKS(t *testing.T) (string, *rsa.PublicKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k.Precompute()
	b := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	jwk := map[string]string{
		"kty": "RSA", "kid": rsaJWKSKeyID, "alg": "RS256", "use": "sig",
		"n": b(k.N), "e": b(big.NewInt(int64(k.E))), "d": b(k.D),
		"p": b(k.Primes[0]), "q": b(k.Primes[1]),
		"dp": b(k.Precomputed.Dp), "dq": b(k.Precomputed.Dq), "qi": b(k.Precomputed.Qinv),
	}
	out, err := json.Marshal(map[string]any{"keys": []any{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	return string(out), &k.PublicKey
}

// startOIDCProvider runs lab/interop/oidc-provider.mjs on port and waits for
// it to listen.
func startOIDCProvider(t *testing.T, port int, issuer, resource, jwks string) {
	t.Helper()
	dir := interopDir(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "oidc-provider.mjs"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "PORT="+strconv.Itoa(port), "ISSUER="+issuer, "RESOURCE="+resource, "JWKS="+jwks, "NODE_NO_WARNINGS=1")
	startLogged(t, cmd, "oidc-provider: ", `"listening"`)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// startOAuth2MockServer runs lab/interop/oauth2-mock-server.mjs on port and
// returns the public keys it signs with (from its own JWKS document), by key
// ID.
func startOAuth2MockServer(t *testing.T, port int, issuer, resource string) map[string]*rsa.PublicKey {
	t.Helper()
	dir := interopDir(t)
	cmd := exec.Command("node", filepath.Join(dir, "oauth2-mock-server.mjs"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "PORT="+strconv.Itoa(port), "ISSUER="+issuer, "RESOURCE="+resource, "NODE_NO_WARNINGS=1")
	startLogged(t, cmd, "oauth2-mock-server: ", `"listening"`)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return rsaKeys(t, "oauth2-mock-server", "http://127.0.0.1:"+strconv.Itoa(port)+"/jwks")
}

// rsaKeys reads the RSA keys of a JWK set at u, by key ID; an empty set
// fails the test.
func rsaKeys(t *testing.T, who, u string) map[string]*rsa.PublicKey {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, Kid, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("%s JWKS: %v", who, err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if k.Kty == "RSA" && err1 == nil && err2 == nil {
			keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	if len(keys) == 0 {
		t.Fatalf("%s's JWKS has no RSA key: %+v", who, set)
	}
	return keys
}

// startLogged starts cmd with its output in the test log and waits for a
// stdout line containing ready; it fails the test if the process ends first.
func startLogged(t *testing.T, cmd *exec.Cmd, prefix, ready string) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &logWriter{t: t, prefix: prefix}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	said := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			t.Log(prefix + sc.Text())
			if !seen && strings.Contains(sc.Text(), ready) {
				seen = true
				said <- true
			}
		}
		if !seen {
			said <- false
		}
	}()
	if !<-said {
		_ = cmd.Wait()
		t.Fatalf("%s exited before saying %q", cmd.Path, ready)
	}
}

// tunnelTransport stands in for a tunnel in front of mcptap: every request
// reaches mcptap's loopback listener with the public Host and the
// X-Forwarded-* headers ngrok adds.
type tunnelTransport struct {
	to   map[string]string // public host (abc.ngrok.example) -> mcptap's listener it forwards to
	base http.RoundTripper
}

func (tt *tunnelTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	local, ok := tt.to[r.URL.Host]
	if !ok {
		return tt.base.RoundTrip(r)
	}
	host := r.URL.Host
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = "http", local // the tunnel ends TLS and forwards plain HTTP
	r.Host = host
	r.Header.Set("X-Forwarded-Host", host)
	r.Header.Set("X-Forwarded-Proto", "https")
	return tt.base.RoundTrip(r)
}

// peerWorld is one run: oidc-provider and the lab's MCP server, both behind
// one mcptap capture (a route each), and the Go SDK client.
type peerWorld struct {
	mcpURL, issuer string
	mcpListen      string // mcptap's listener for the MCP server
	asListen       string // mcptap's listener for the authorization server
	tunnels        map[string]string
	rs             *ResourceServer
	capture        *live.Capture
	store          *recorder.Store
}

type peerOptions struct {
	issuerSlash     bool   // authorization_servers names the issuer with a trailing slash
	noChallenge     bool   // the MCP server answers 401 without WWW-Authenticate
	internalPRM     bool   // BASE_URL left at the server's own address: the PRM and challenge name it
	tunnelHost      string // the client comes through a tunnel with this public Host
	hostCheckOff    bool   // the go-sdk server's DNS-rebinding protection is disabled
	stopAtConsent   bool   // the user closes the consent page
	proxy           string // the client's HTTP proxy (mitmproxy recording a HAR), "" for none
	mockAS          bool   // oauth2-mock-server instead of oidc-provider (no registration: the client is pre-registered)
	cors            bool   // the MCP server answers CORS, as one that serves browser-based clients does
	hydraAS         bool   // Ory Hydra instead of oidc-provider
	hydraNoAudience bool   // Hydra's consent app grants no audience (the token has no aud)
	// The client registers with Hydra dynamically (else it is registered
	// ahead through Hydra's admin API, as mcptap-preregistered).
	hydraDCR bool
	// Hydra's registration is enabled and not named in its metadata.
	hydraNoRegistrationURL bool
}

func startPeerWorld(t *testing.T, o peerOptions) *peerWorld {
	t.Helper()
	asRoute, mcpRoute, asPort := freePort(t), freePort(t), freePort(t)
	w := &peerWorld{asListen: "127.0.0.1:" + strconv.Itoa(asRoute), mcpListen: "127.0.0.1:" + strconv.Itoa(mcpRoute)}
	w.mcpURL, w.issuer = "http://"+w.mcpListen+"/mcp", "http://"+w.asListen
	if o.tunnelHost != "" {
		// Two tunnels, as a user runs them: one for the MCP server, one
		// for the authorization server.
		w.mcpURL, w.issuer = "https://"+o.tunnelHost+"/mcp", "https://auth-"+o.tunnelHost
		w.tunnels = map[string]string{o.tunnelHost: w.mcpListen, "auth-" + o.tunnelHost: w.asListen}
	}
	var keys map[string]*rsa.PublicKey // the server's signing keys, by key ID
	switch {
	case o.hydraAS:
		keys = startHydra(t, asPort, w.issuer, !o.hydraNoAudience, !o.hydraNoRegistrationURL)
	case o.mockAS:
		keys = startOAuth2MockServer(t, asPort, w.issuer, w.mcpURL)
	default:
		jwks, pub := rsaJWKS(t)
		keys = map[string]*rsa.PublicKey{rsaJWKSKeyID: pub}
		startOIDCProvider(t, asPort, w.issuer, w.mcpURL, jwks)
	}

	mux := http.NewServeMux()
	var internal string
	mcpSrv := httptest.NewUnstartedServer(mux)
	internal = "http://" + mcpSrv.Listener.Addr().String()
	public := func() string { return strings.TrimSuffix(w.mcpURL, "/mcp") }
	if o.internalPRM {
		public = func() string { return internal }
	}
	advertised := w.issuer
	if o.issuerSlash {
		advertised += "/"
	}
	w.rs = NewResourceServer(public, func() string { return internal }, func() []string { return []string{advertised} }, nil)
	w.rs.Faults.NoChallenge = o.noChallenge
	w.rs.Verify = func(tok string) (jwt.MapClaims, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
			kid, _ := tk.Header["kid"].(string)
			if k := keys[kid]; k != nil {
				return k, nil
			}
			return nil, fmt.Errorf("no key %q", kid)
		},
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithAudience(w.mcpURL),
			jwt.WithIssuer(w.issuer), jwt.WithLeeway(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("token rejected: %w", err)
		}
		return claims, nil
	}
	if o.hostCheckOff {
		srv := mcp.NewServer(&mcp.Implementation{Name: "mcptap-lab", Version: "1.0.0"}, nil)
		addTools(srv)
		w.rs.mcp = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{DisableLocalhostProtection: true})
	}
	w.rs.Mount(mux)
	if o.cors {
		mcpSrv.Config.Handler = withCORS(mux, func(string) bool { return false })
	}
	mcpSrv.Start()
	t.Cleanup(mcpSrv.Close)

	store, serr := recorder.Open(filepath.Join(t.TempDir(), "peers.db"), nil)
	if serr != nil {
		t.Fatal(serr)
	}
	t.Cleanup(func() { _ = store.Close() })
	w.store = store
	up := func(s string) *url.URL { u, _ := url.Parse(s); return u }
	c, err := live.Start(live.Config{
		Store:   store,
		Session: mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceProxy},
		Proxy: proxy.Config{Routes: []proxy.Route{
			{Listen: "127.0.0.1:" + strconv.Itoa(mcpRoute), Upstream: up(internal)},
			{Listen: "127.0.0.1:" + strconv.Itoa(asRoute), Upstream: up("http://127.0.0.1:" + strconv.Itoa(asPort))},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.capture = c
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return w
}

var (
	formAction  = regexp.MustCompile(`(?s)<form[^>]*action="([^"]+)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// consent is the browser stand-in: it opens the authorization URL, logs in
// and consents on oidc-provider's own pages (cookies kept), and stops at the
// redirect to the client's callback, whose query it returns.
func consent(ctx context.Context, rt http.RoundTripper, authURL, callback string, stopAtConsent bool) (url.Values, error) {
	jar, _ := cookiejar.New(nil)
	var final *url.URL
	hc := &http.Client{Transport: rt, Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), callback) {
			final = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	// load sends req and returns the page it ends on (after redirects).
	load := func(req *http.Request) (string, *url.URL, error) {
		resp, err := hc.Do(req)
		if err != nil {
			return "", nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Request.URL, nil
	}
	get := func(u string) (string, *url.URL, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		return load(req)
	}
	post := func(action string, base *url.URL, form url.Values) (string, *url.URL, error) {
		ref, err := base.Parse(action)
		if err != nil {
			return "", nil, err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ref.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return load(req)
	}
	page, at, err := get(authURL)
	for step := 0; err == nil && final == nil && step < 4; step++ {
		m := formAction.FindStringSubmatch(page)
		if m == nil {
			return nil, fmt.Errorf("no form on %s: %.300s", at, page)
		}
		form := url.Values{}
		for _, h := range hiddenInput.FindAllStringSubmatch(page, -1) {
			form.Set(h[1], h[2])
		}
		if strings.Contains(page, `name="login"`) {
			form.Set("login", "alice")
			form.Set("password", "any")
		} else if stopAtConsent {
			return nil, errors.New("the user closed the consent page")
		}
		page, at, err = post(m[1], at, form)
	}
	if err != nil {
		return nil, err
	}
	if final == nil {
		return nil, fmt.Errorf("never redirected to %s; last page %s: %.300s", callback, at, page)
	}
	return final.Query(), nil
}

// connectGoSDK runs the MCP Go SDK's OAuth client against the world: dynamic
// client registration, authorization code with PKCE and resource, token, then
// initialize and a tool call.
func connectGoSDK(ctx context.Context, w *peerWorld, o peerOptions) error {
	callback := "http://127.0.0.1:" + strconv.Itoa(40000+int(time.Now().UnixNano()%20000)) + "/callback"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.proxy != "" {
		pu, err := url.Parse(o.proxy)
		if err != nil {
			return err
		}
		tr.Proxy = http.ProxyURL(pu) // loopback included: http.ProxyURL ignores NO_PROXY
	}
	var base http.RoundTripper = tr
	if o.tunnelHost != "" {
		base = &tunnelTransport{to: w.tunnels, base: base}
	}
	hc := &http.Client{Transport: base}
	cfg := &auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "mcptap peer test", RedirectURIs: []string{callback}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, Scope: "mcp:tools",
		}},
		RedirectURL: callback,
		Client:      hc,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, err := consent(ctx, base, args.URL, callback, o.stopAtConsent)
			if err != nil {
				return nil, err
			}
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	}
	if o.mockAS || o.hydraAS && !o.hydraDCR {
		cfg.PreregisteredClient = &oauthex.ClientCredentials{ClientID: "mcptap-preregistered"}
	}
	h, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		return err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "go-sdk-peer", Version: "1.0.0"}, nil)
	// mitmproxy holds a response until it is complete, so the standalone
	// SSE stream (open until the session ends) would never get through it.
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.mcpURL, HTTPClient: hc, OAuthHandler: h, MaxRetries: -1,
		DisableStandaloneSSE: o.proxy != ""}, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil {
		return err
	}
	if res.IsError {
		return errors.New("tool call failed")
	}
	return nil
}

// analyse stops the capture and analyses what it recorded.
func (w *peerWorld) analyse(t *testing.T) ([]mcptap.Flow, []mcptap.Finding) {
	t.Helper()
	if err := w.capture.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var exs []mcptap.Exchange
	if err := w.store.Exchanges(w.capture.Session().ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	return oauth.Analyze(exs, oauth.Options{})
}

// The second real authorization server: oauth2-mock-server, with a
// pre-registered client (it has no registration endpoint, so
// discovery.no-registration is a warning the healthy run carries: a client
// that needs registration would stop there).
func TestPeersGoSDKWithOAuth2MockServer(t *testing.T) {
	runGoSDKCases(t, []peerCase{
		{name: "healthy", opts: peerOptions{mockAS: true}, connect: true, verdict: mcptap.RuleOK, fault: mcptap.FaultNone,
			has: []mcptap.RuleID{mcptap.RuleDiscoveryNoRegistration}},
		{name: "DNS-rebinding Host check behind a tunnel", opts: peerOptions{mockAS: true, tunnelHost: "abc.ngrok.example"},
			verdict: mcptap.RuleMCPForbidden, fault: mcptap.FaultServer},
	})
}

func TestPeersGoSDKWithOIDCProvider(t *testing.T) {
	runGoSDKCases(t, []peerCase{
		{name: "healthy", connect: true, verdict: mcptap.RuleOK, fault: mcptap.FaultNone},
		{name: "healthy behind a tunnel", opts: peerOptions{tunnelHost: "abc.ngrok.example", hostCheckOff: true}, connect: true, verdict: mcptap.RuleOK, fault: mcptap.FaultNone},
		{name: "issuer with a trailing slash in authorization_servers", opts: peerOptions{issuerSlash: true}, connect: true,
			verdict: mcptap.RuleOK, fault: mcptap.FaultNone, has: []mcptap.RuleID{mcptap.RuleDiscoveryIssuerMismatch}},
		{name: "DNS-rebinding Host check behind a tunnel", opts: peerOptions{tunnelHost: "abc.ngrok.example"},
			verdict: mcptap.RuleMCPForbidden, fault: mcptap.FaultServer},
		{name: "BASE_URL left at the internal address", opts: peerOptions{tunnelHost: "abc.ngrok.example", hostCheckOff: true, internalPRM: true},
			verdict: mcptap.RuleDiscoveryChallengeInternal, fault: mcptap.FaultServer},
		// The Go SDK falls back to the well-known locations and connects:
		// the flow's own outcome outranks the prediction (a warning).
		{name: "401 without a challenge", opts: peerOptions{noChallenge: true}, connect: true,
			verdict: mcptap.RuleOK, fault: mcptap.FaultNone, has: []mcptap.RuleID{mcptap.RuleDiscoveryNoChallenge}},
		{name: "user closes the consent page", opts: peerOptions{stopAtConsent: true},
			verdict: mcptap.RuleFlowIncomplete, fault: mcptap.FaultUnknown},
	})
}

// peerCase is one run of a real client against a real authorization server:
// whether the client connects, and the verdict mcptap must give.
type peerCase struct {
	name    string
	opts    peerOptions
	connect bool
	verdict mcptap.RuleID
	fault   mcptap.Fault
	has     []mcptap.RuleID // also among the findings
}

// runGoSDKCases runs the MCP Go SDK's OAuth client once per case.
func runGoSDKCases(t *testing.T, cases []peerCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := startPeerWorld(t, c.opts)
			ctx, cancel := context.WithTimeout(context.Background(), labBound)
			defer cancel()
			err := connectGoSDK(ctx, w, c.opts)
			if (err == nil) != c.connect {
				t.Fatalf("Go SDK client connected: %v (err %v), want %v", err == nil, err, c.connect)
			}
			t.Logf("client: %v", err)
			flows, findings := w.analyse(t)
			checkPeerVerdict(t, flows, findings, c.verdict, c.fault, c.has)
		})
	}
}

// checkPeerVerdict asserts the verdict of the attempt that got furthest, and
// for a healthy run that no finding is a warning or an error.
func checkPeerVerdict(t *testing.T, flows []mcptap.Flow, findings []mcptap.Finding, verdict mcptap.RuleID, fault mcptap.Fault, has []mcptap.RuleID) {
	t.Helper()
	if len(flows) == 0 {
		t.Fatalf("no flow; findings %+v", findings)
	}
	main := flows[0]
	for _, f := range flows[1:] {
		if len(f.Hops) > len(main.Hops) {
			main = f
		}
	}
	dump := func() {
		for _, f := range flows {
			t.Logf("flow %s client=%s verdict=%v status=%s", f.ID, f.Client, f.Verdict, f.Status)
			for _, h := range f.Hops {
				t.Logf("   %s %d", h.Kind, h.Status)
			}
		}
		for _, fd := range findings {
			t.Logf("  finding %s %s %s: %s", fd.Rule, fd.Severity, fd.Fault, fd.Detail)
		}
	}
	if main.Verdict.Rule != verdict || main.Verdict.Fault != fault {
		t.Errorf("verdict %s/%s, want %s/%s", main.Verdict.Rule, main.Verdict.Fault, verdict, fault)
		dump()
	}
	for _, want := range has {
		found := false
		for _, fd := range findings {
			found = found || fd.Rule == want
		}
		if !found {
			t.Errorf("no %s finding", want)
			dump()
		}
	}
	if verdict == mcptap.RuleOK {
		for _, fd := range findings {
			if fd.Severity == mcptap.SevError || (fd.Severity == mcptap.SevWarning && !containsRule(has, fd.Rule)) {
				t.Errorf("healthy run has %s %s: %s", fd.Severity, fd.Rule, fd.Detail)
			}
		}
	}
}

func containsRule(list []mcptap.RuleID, r mcptap.RuleID) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}
