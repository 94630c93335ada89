package lab

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Profile is the kind of client platform the lab client imitates.
type Profile string

const (
	// ProfileChatGPT: base64 JSON state {"csrf","s":"oauth_s_…"}, callback page
	// /connector/oauth/{id} plus the callback-completion POST, UA openai-mcp/1.0.0.
	ProfileChatGPT Profile = "chatgpt"
	// ProfileClaude: base64url state, server-side callback /api/mcp/auth_callback, UA Claude-User.
	ProfileClaude Profile = "claude"
	// ProfileVSCode: standard base64 state, loopback callback http://127.0.0.1:33418/.
	ProfileVSCode Profile = "vscode"
	// ProfileWorkload: an agent without a user (SEP-1046): dynamic
	// registration for client_credentials with a client secret, then a
	// DPoP-bound token (RFC 9449) and MCP calls with DPoP proofs. No
	// authorize, no state.
	ProfileWorkload Profile = "workload"
)

// User agents the profiles send from their backends (attribution in the analysis).
const (
	UserAgentChatGPT = "openai-mcp/1.0.0"
	UserAgentClaude  = "Claude-User"
	// UserAgentClaudeBackend is what Claude's backend sends on discovery,
	// registration and token calls (field-2026 §2.6).
	UserAgentClaudeBackend = "python-httpx/0.28.1"
	UserAgentVSCode        = "mcptap-lab-vscode-like/1.0"
	// UserAgentWorkload is the lab's agent without a user.
	UserAgentWorkload = "mcptap-lab-workload/1.0"
	userAgentBrowser  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"
)

// ChatGPT's callback-completion endpoint (an XHR from the web app).
const chatGPTCompletionPath = "/backend-api/aip/connectors/links/oauth/callback"

// ClientFaults are the client's switchable faults.
type ClientFaults struct {
	LoseState bool // the state store forgets the attempt: completion answers 404 (seed 000)
	// BrowserOrigin: the client is a web page at this origin (MCP
	// Inspector, BrowserOriginInspector): its calls are cross-origin
	// fetches, preflighted and refused as a browser does (CORS).
	BrowserOrigin string
	// RedeemAfter: the client waits this long between the callback and
	// the token request (a login page left open, a slow queue).
	RedeemAfter time.Duration
	// ScriptBlocked: ChatGPT's callback page loads and its script never
	// runs (a script blocker), so the code and state are never posted.
	ScriptBlocked bool
	// CallbackGone: the IDE's loopback listener is gone before the browser
	// comes back (the client exited or timed out): the callback is refused.
	CallbackGone     bool
	StaleAttempt     bool   // two authorizes; the user finishes the first
	WrongVerifier    bool   // token request carries a different code_verifier
	TokenRedirectURI bool   // token request carries another redirect_uri than authorize
	OmitResource     bool   // no RFC 8707 resource on authorize and token
	ResourceOrigin   bool   // resource = the origin instead of the PRM resource
	NoBearer         bool   // after the token, MCP requests go out without Authorization
	StateWithPlus    bool   // the state is drawn until it contains '+' (so a '+'-fault shows)
	StrictIss        bool   // refuses an authorization response without the iss the metadata promises (RFC 9207)
	RefreshRace      bool   // two refreshes with the same refresh token at once (two instances without a lock)
	ReRegister       bool   // registers again with the same metadata before authorizing (once per connect)
	JSONToken        bool   // sends the token request as JSON instead of a form
	AcceptJSONOnly   bool   // MCP requests accept application/json only, not text/event-stream
	DPoPAsBearer     bool   // the workload sends its DPoP-bound token with the Bearer scheme
	IDJAGAudience    string // the ID-JAG names this audience instead of the authorization server
	StepUpByRefresh  bool   // answers 403 insufficient_scope with a refresh (which cannot add the scope) and retries
	// StepUp answers 403 insufficient_scope with a new authorization: for
	// the union of the granted and the required scopes ("union", as
	// SEP-2350 says), or for the required scope alone ("replace"). While
	// the tool still answers 403 it tries again, up to maxStepUps times.
	StepUp           string
	NoProtocolHeader bool // MCP requests after initialize leave out MCP-Protocol-Version
	// AssertionAudience: the private_key_jwt assertion names this aud
	// instead of the token endpoint.
	AssertionAudience string
	RefreshNoResource bool // the refresh leaves out the resource the authorize sent
	RetryRefresh      bool // a refused refresh is retried with the same token, stormRetries times
	NoClientID        bool // the authorize request leaves out client_id
	DuplicateScope    bool // the authorize request carries scope twice
	// ExtraScope is added to the scope of every authorize: one that
	// neither the resource nor the authorization server offers.
	ExtraScope      string
	RootPRMFirst    bool // reads the root protected resource metadata first, whatever the challenge names
	IgnoreExpiry    bool // calls again after its token expired (Client.Expire) and, refused, neither refreshes nor authorizes
	RegisterOnMCP   bool // registers at the MCP server's origin (/register) instead of the metadata's registration_endpoint
	IgnoreDPoPNonce bool // retries a use_dpop_nonce refusal without the nonce it was given
}

// Client imitates a connector platform: its backend (discovery, DCR, token,
// MCP), its callback host, and a scripted browser that walks the consent.
type Client struct {
	Profile Profile
	Faults  ClientFaults
	// Expire, when set, makes the server count every token so far as
	// expired (Faults.IgnoreExpiry's scenario).
	Expire       func()
	MCPURL       func() string // the MCP URL the user typed
	CallbackBase func() string // public origin of the callback host
	CallbackPath string        // path of the redirect_uri

	backend *http.Client
	browser *browser
	// scopeAsked, when set, is the scope of the next authorize (a step-up).
	scopeAsked string
	dpop       *dpopKey // the workload's DPoP key
	// CIMD: the client is identified by a client ID metadata document it
	// serves on its callback host (no registration), and authenticates at
	// the token endpoint with private_key_jwt, as ChatGPT's per-app
	// documents do.
	CIMD      bool
	assertKey *dpopKey
	// IDJAG signs the ID-JAG the workload presents (the enterprise identity
	// provider's key, handed to the client as if it had done the token
	// exchange at the provider); nil: the workload uses client_credentials.
	IDJAG       *ecdsa.PrivateKey
	IDJAGIssuer string

	mu       sync.Mutex
	attempts map[string]*attempt
	reg      *registration
	tok      *tokenSet
	tokErr   error
	steps    []string
}

type attempt struct {
	State, Verifier, Resource, RedirectURI string
}

type registration struct {
	ClientSecret                                           string
	ClientID, RedirectURI                                  string
	Resource                                               string
	AuthorizationEndpoint, TokenEndpoint, RegistrationEndp string
	Issuer                                                 string
	IssSupported                                           bool // authorization_response_iss_parameter_supported
}

type tokenSet struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// Result is what the client achieved, step by step.
type Result struct {
	Steps      []string
	Registered bool
	Token      bool
	Tools      []string
	CallText   string
	Progress   int
	Refreshed  bool
	Stopped    string // why the client gave up ("" when it connected)
}

// NewClient returns a client of the given profile.
func NewClient(p Profile, mcpURL, callbackBase func() string) *Client {
	c := &Client{Profile: p, MCPURL: mcpURL, CallbackBase: callbackBase, attempts: map[string]*attempt{}}
	switch p {
	case ProfileChatGPT:
		c.CallbackPath = "/connector/oauth/cb_" + randHex(6)
	case ProfileClaude:
		c.CallbackPath = "/api/mcp/auth_callback"
	default:
		c.CallbackPath = "/"
	}
	bt := uaTransport{ua: c.userAgent(), base: newTransport()}
	if p == ProfileClaude {
		bt = uaTransport{ua: UserAgentClaudeBackend, authUA: UserAgentClaude, base: newTransport()}
	}
	c.backend = &http.Client{Transport: bt, Timeout: 30 * time.Second}
	c.browser = &browser{hc: &http.Client{
		Transport:     uaTransport{ua: userAgentBrowser, base: newTransport()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
	return c
}

func (c *Client) userAgent() string {
	switch c.Profile {
	case ProfileChatGPT:
		return UserAgentChatGPT
	case ProfileClaude:
		return UserAgentClaude
	case ProfileWorkload:
		return UserAgentWorkload
	}
	return UserAgentVSCode
}

func (c *Client) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, fmt.Sprintf(format, args...))
}

// Handler serves the client's callback host: ChatGPT's link initiation,
// callback page and completion endpoint; Claude's server-side callback; the
// IDE's loopback callback.
func (c *Client) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cimdPath, func(w http.ResponseWriter, r *http.Request) {
		if !c.CIMD || c.assertKey == nil {
			http.NotFound(w, r)
			return
		}
		jwk := c.assertKey.jwk()
		jwk["kid"], jwk["alg"], jwk["use"] = "lab-cimd-1", "ES256", "sig"
		writeJSON(w, http.StatusOK, map[string]any{
			"client_id": c.CallbackBase() + cimdPath, "client_name": string(c.Profile) + " (mcptap lab, CIMD)",
			"redirect_uris": []string{c.CallbackBase() + c.CallbackPath}, "grant_types": []string{"authorization_code", "refresh_token"},
			"response_types": []string{"code"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks": map[string]any{"keys": []any{jwk}},
		})
	})
	switch c.Profile {
	case ProfileChatGPT:
		mux.HandleFunc("POST /backend-api/aip/connectors/links/oauth", func(w http.ResponseWriter, r *http.Request) {
			a, u, err := c.newAttempt()
			if err != nil {
				writeJSON(w, http.StatusBadGateway, map[string]string{"detail": err.Error()})
				return
			}
			_ = a
			writeJSON(w, http.StatusOK, map[string]string{"redirect_url": u})
		})
		mux.HandleFunc("GET /connector/oauth/{id}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html><head><meta name="lab-callback-complete" content="%s"><title>Connecting…</title></head>`+
				`<body><p>Finishing the connection…</p><script>fetch(%q,{method:"POST",headers:{"content-type":"application/json"},`+
				`body:JSON.stringify({full_redirect_url:location.href})})</script></body></html>`, chatGPTCompletionPath, chatGPTCompletionPath)
		})
		mux.HandleFunc("GET /backend-api/aip/connectors/links/oauth/state/{id}", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			for st := range c.attempts {
				if stateRecordIDOf(st) == r.PathValue("id") {
					writeJSON(w, http.StatusOK, map[string]string{"status": "pending"})
					return
				}
			}
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "OAuth state not found"})
		})
		mux.HandleFunc("POST "+chatGPTCompletionPath, func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				FullRedirectURL string `json:"full_redirect_url"`
			}
			if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || body.FullRedirectURL == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "Missing OAuth callback data"})
				return
			}
			u, err := url.Parse(body.FullRedirectURL)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "Missing OAuth callback data"})
				return
			}
			status, detail := c.complete(r.Context(), u.Query())
			if status == http.StatusOK {
				writeJSON(w, status, map[string]string{"status": "linked"})
				return
			}
			writeJSON(w, status, map[string]string{"detail": detail})
		})
	default:
		pattern := "GET " + c.CallbackPath
		if strings.HasSuffix(pattern, "/") {
			pattern += "{$}"
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, detail := c.complete(r.Context(), r.URL.Query())
			if status != http.StatusOK && c.Profile == ProfileClaude {
				// Claude's callback sends the browser back to its UI with the error.
				http.Redirect(w, r, "/settings/connectors?connect=failed", http.StatusFound)
				return
			}
			// An IDE's loopback listener shows a page either way.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if status == http.StatusOK {
				fmt.Fprint(w, "<!doctype html><p>Connected. You can close this window.</p>")
				return
			}
			fmt.Fprintf(w, "<!doctype html><p>Authorization failed: %s</p>", htmlEscape(detail))
		})
	}
	return mux
}

// stateRecordID is the "s" record id (oauth_s_…) inside the state of a
// callback URL, "" when there is none.
func stateRecordID(callbackURL string) string {
	u, err := url.Parse(callbackURL)
	if err != nil {
		return ""
	}
	return stateRecordIDOf(u.Query().Get("state"))
}

func stateRecordIDOf(state string) string {
	raw, err := base64.StdEncoding.DecodeString(state)
	if err != nil {
		return ""
	}
	var v struct {
		S string `json:"s"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.S
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// complete handles the callback's query: finds the attempt by state and
// redeems the code. It returns an HTTP status and a detail for the page.
func (c *Client) complete(ctx context.Context, q url.Values) (int, string) {
	if e := q.Get("error"); e != "" {
		c.setToken(nil, fmt.Errorf("authorization server returned error %q", e))
		return http.StatusBadRequest, "OAuth provider returned error: " + e
	}
	c.mu.Lock()
	reg := c.reg
	c.mu.Unlock()
	if c.Faults.StrictIss && reg != nil && reg.IssSupported && q.Get("iss") != reg.Issuer {
		// As Codex and 2026-07-28 clients do (RFC 9207 §2.4).
		c.setToken(nil, fmt.Errorf("authorization response missing required issuer: expected %s", reg.Issuer))
		return http.StatusBadRequest, "Authorization server response missing required issuer: expected " + reg.Issuer
	}
	if !q.Has("state") || q.Get("state") == "" {
		c.setToken(nil, errors.New("callback has no state"))
		return http.StatusBadRequest, "Missing `state` param in response from OAuth provider"
	}
	c.mu.Lock()
	a := c.attempts[q.Get("state")]
	c.mu.Unlock()
	if a == nil {
		c.setToken(nil, errors.New("callback state unknown to the client's state store"))
		if c.Profile == ProfileChatGPT {
			return http.StatusNotFound, "OAuth state not found"
		}
		return http.StatusBadRequest, "State does not match"
	}
	if d := c.Faults.RedeemAfter; d > 0 {
		select { // the user left the page, a queue held the code
		case <-time.After(d):
		case <-ctx.Done():
			return http.StatusBadRequest, "Token exchange failed: " + ctx.Err().Error()
		}
	}
	tok, err := c.exchange(ctx, a, q.Get("code"))
	c.setToken(tok, err)
	if err != nil {
		return http.StatusBadRequest, "Token exchange failed: " + err.Error()
	}
	return http.StatusOK, ""
}

func (c *Client) setToken(t *tokenSet, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tok, c.tokErr = t, err
}

func (c *Client) exchange(ctx context.Context, a *attempt, code string) (*tokenSet, error) {
	c.mu.Lock()
	reg := c.reg
	c.mu.Unlock()
	f := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {reg.ClientID},
		"redirect_uri": {a.RedirectURI}, "code_verifier": {a.Verifier},
	}
	if c.Faults.TokenRedirectURI {
		f.Set("redirect_uri", c.otherRedirectURI())
	}
	if c.Faults.WrongVerifier {
		f.Set("code_verifier", randB64URL(32)) // the verifier of another attempt, say
	}
	if a.Resource != "" {
		f.Set("resource", a.Resource)
	}
	if err := c.assert(f, reg); err != nil {
		return nil, err
	}
	return c.tokenRequest(ctx, reg.TokenEndpoint, f)
}

// otherRedirectURI is the redirect URI a drifting client sends at the token
// endpoint: ChatGPT's legacy callback, or the IDE's port after a fallback.
func (c *Client) otherRedirectURI() string {
	if c.Profile == ProfileVSCode {
		return "http://127.0.0.1:33419/"
	}
	return c.CallbackBase() + "/connector_platform_oauth_redirect"
}

func (c *Client) tokenRequest(ctx context.Context, endpoint string, f url.Values) (*tokenSet, error) {
	payload, ct := f.Encode(), "application/x-www-form-urlencoded"
	if c.Faults.JSONToken {
		m := map[string]string{}
		for k := range f {
			m[k] = f.Get(k)
		}
		b, _ := json.Marshal(m)
		payload, ct = string(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Accept", "application/json")
	resp, err := c.backend.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token endpoint answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var t tokenSet
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("token response unusable: %s", body)
	}
	c.logf("token endpoint issued an access token")
	return &t, nil
}

// newAttempt creates a state, a PKCE pair and the authorize URL.
func (c *Client) newAttempt() (*attempt, string, error) {
	c.mu.Lock()
	reg := c.reg
	c.mu.Unlock()
	if reg == nil {
		return nil, "", errors.New("client is not registered yet")
	}
	a := &attempt{State: c.newState(), Verifier: randB64URL(32), Resource: reg.Resource, RedirectURI: reg.RedirectURI}
	switch {
	case c.Faults.OmitResource:
		a.Resource = ""
	case c.Faults.ResourceOrigin:
		a.Resource = origin(reg.Resource)
	}
	v := url.Values{
		"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {a.RedirectURI},
		"state": {a.State}, "code_challenge": {s256(a.Verifier)}, "code_challenge_method": {"S256"},
		"scope": {c.scope()},
	}
	if c.Faults.ExtraScope != "" {
		v.Set("scope", c.scope()+" "+c.Faults.ExtraScope)
	}
	if c.Faults.NoClientID {
		v.Del("client_id")
	}
	if c.Faults.DuplicateScope {
		v.Add("scope", "offline_access") // a second scope parameter, not a second scope
	}
	if a.Resource != "" {
		v.Set("resource", a.Resource)
	}
	c.mu.Lock()
	if !c.Faults.LoseState {
		c.attempts[a.State] = a
	}
	c.mu.Unlock()
	return a, reg.AuthorizationEndpoint + querySep(reg.AuthorizationEndpoint) + v.Encode(), nil
}

func (c *Client) newState() string {
	switch c.Profile {
	case ProfileChatGPT:
		j, _ := json.Marshal(struct {
			CSRF string `json:"csrf"`
			S    string `json:"s"`
		}{randHex(32), "oauth_s_" + randHex(16)})
		return base64.StdEncoding.EncodeToString(j)
	case ProfileClaude:
		return randB64URL(32)
	}
	for {
		s := base64.StdEncoding.EncodeToString(randBytes(32))
		if !c.Faults.StateWithPlus || strings.Contains(s, "+") {
			return s
		}
	}
}

// Run performs the whole connector setup and then uses the MCP server.
// OAuth problems end the run with Result.Stopped set; an error means the lab
// itself could not run.
func (c *Client) Run(ctx context.Context) (*Result, error) {
	res := &Result{}
	defer func() {
		c.mu.Lock()
		res.Steps = append([]string(nil), c.steps...)
		c.mu.Unlock()
	}()
	stop := func(format string, args ...any) (*Result, error) {
		res.Stopped = fmt.Sprintf(format, args...)
		c.logf("stopped: %s", res.Stopped)
		return res, nil
	}
	prmURL, err := c.probe(ctx)
	if err != nil {
		return stop("%v", err)
	}
	if err := c.discoverAndRegister(ctx, prmURL); err != nil {
		return stop("%v", err)
	}
	res.Registered = true
	if c.Profile == ProfileWorkload {
		return c.runWorkload(ctx, res, stop)
	}

	// The browser part.
	var authURL, second string
	switch c.Profile {
	case ProfileChatGPT:
		u, err := c.browser.linkOAuth(ctx, c.CallbackBase())
		if err != nil {
			return stop("%v", err)
		}
		authURL = u
		if c.Faults.StaleAttempt {
			// The user clicks Connect again before finishing; the second
			// popup is left at its consent page and the first is approved.
			u2, err := c.browser.linkOAuth(ctx, c.CallbackBase())
			if err != nil {
				return stop("%v", err)
			}
			second = u2
		}
	default:
		_, u, err := c.newAttempt()
		if err != nil {
			return nil, err
		}
		authURL = u
		if c.Faults.StaleAttempt {
			_, u2, err := c.newAttempt()
			if err != nil {
				return nil, err
			}
			second = u2
		}
	}
	pg, err := c.browser.open(ctx, authURL)
	if err != nil {
		return stop("%v", err)
	}
	if second != "" {
		if _, err := c.browser.open(ctx, second); err != nil {
			return stop("%v", err)
		}
		c.logf("a second authorization was started and left at the consent page")
	}
	if pg.isConsent() {
		if pg, err = c.browser.approve(ctx, pg); err != nil {
			return stop("%v", err)
		}
	}
	if pg.blocked != "" {
		return stop("the approval did nothing: %s", pg.blocked)
	}
	c.logf("browser landed on %s (%d)", pg.url, pg.status)
	if path := pg.completionPath(); path != "" && c.Faults.ScriptBlocked {
		c.logf("the callback page's script did not run: nothing posted")
	} else if path != "" {
		st, body, err := c.browser.postJSON(ctx, origin(pg.url)+path, map[string]string{"full_redirect_url": pg.url})
		if err != nil {
			return stop("%v", err)
		}
		c.logf("callback completion answered %d %s", st, strings.TrimSpace(body))
		if st == http.StatusNotFound {
			// As in seed 000: the web app then asks for the state record itself.
			if id := stateRecordID(pg.url); id != "" {
				st2, body2, err := c.browser.get(ctx, origin(pg.url)+"/backend-api/aip/connectors/links/oauth/state/"+id)
				if err != nil {
					return stop("%v", err)
				}
				c.logf("state lookup answered %d %s", st2, strings.TrimSpace(body2))
			}
		}
	}
	c.mu.Lock()
	tok, tokErr := c.tok, c.tokErr
	c.mu.Unlock()
	if tok == nil {
		if tokErr == nil {
			tokErr = errors.New("the callback never reached the client")
		}
		return stop("no token: %v", tokErr)
	}
	res.Token = true
	return c.useMCP(ctx, res, stop)
}

// probe sends the unauthenticated initialize and returns the PRM URL named by
// the challenge ("" when there is none).
func (c *Client) probe(ctx context.Context) (string, error) {
	st, hdr, _, err := c.rawInitialize(ctx, "")
	if err != nil {
		return "", err
	}
	c.logf("unauthenticated initialize answered %d", st)
	if st == http.StatusOK {
		// Let in without a token: the next call finds out (clients start
		// OAuth on the first 401, wherever it comes).
		st2, hdr2, err := c.rawCall(ctx, "", "echo")
		if err != nil {
			return "", err
		}
		c.logf("unauthenticated tools/call answered %d", st2)
		st, hdr = st2, hdr2
	}
	if st != http.StatusUnauthorized {
		return "", fmt.Errorf("expected 401 from the unauthenticated initialize, got %d", st)
	}
	return resourceMetadataParam(hdr.Get("WWW-Authenticate")), nil
}

func (c *Client) rawInitialize(ctx context.Context, bearer string) (int, http.Header, string, error) {
	st, h, b, err := c.rawPost(ctx, bearer, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"`+string(c.Profile)+`-lab","version":"1.0.0"}}}`)
	if err != nil {
		return 0, nil, "", fmt.Errorf("initialize: %w", err)
	}
	return st, h, b, nil
}

// rawPost sends one JSON-RPC message to the MCP endpoint outside the SDK
// (with bearer, when set) and reads the answer.
func (c *Client) rawPost(ctx context.Context, bearer, body string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.MCPURL(), strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.backend.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header, string(b), nil
}

// resourceMetadataParam pulls resource_metadata out of a Bearer challenge.
func resourceMetadataParam(h string) string { return challengeParam(h, "resource_metadata") }

func (c *Client) getJSON(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := c.backend.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: not JSON: %w", u, err)
	}
	return resp.StatusCode, nil
}

// discoverAndRegister: PRM (challenge URL, else path-suffixed then root), AS
// metadata (RFC 8414 then OIDC, both fetched as ChatGPT does), then DCR.
func (c *Client) discoverAndRegister(ctx context.Context, prmURL string) error {
	mcpU, err := url.Parse(c.MCPURL())
	if err != nil {
		return err
	}
	base := mcpU.Scheme + "://" + mcpU.Host
	pathSuffixed, root := base+"/.well-known/oauth-protected-resource"+mcpU.Path, base+"/.well-known/oauth-protected-resource"
	candidates := []string{pathSuffixed, root}
	if c.Profile == ProfileChatGPT {
		// The order seed 000's scaffold log shows: path-inserted, path-appended, root.
		candidates = []string{pathSuffixed, c.MCPURL() + "/.well-known/oauth-protected-resource", prmURL, root}
	} else if prmURL != "" {
		candidates = []string{prmURL, pathSuffixed, root}
	}
	if c.Faults.RootPRMFirst {
		// It fetches what the challenge names, then takes the root
		// document's values (an old-spec client that knows only the root).
		candidates = []string{prmURL, root}
	}
	candidates = dedupe(candidates)
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	found := false
	for _, u := range candidates {
		st, err := c.getJSON(ctx, u, &prm)
		if err != nil {
			return err
		}
		c.logf("GET %s → %d", u, st)
		if st == http.StatusOK {
			found = true
			if !c.Faults.RootPRMFirst {
				break
			}
		}
	}
	if !found || len(prm.AuthorizationServers) == 0 {
		return errors.New("no protected resource metadata with authorization_servers")
	}
	// Lenient like the platform clients: a resource that differs from the URL
	// used is still sent as the resource parameter.
	issuer := prm.AuthorizationServers[0]
	var meta struct {
		Issuer                 string   `json:"issuer"`
		AuthorizationEndpoint  string   `json:"authorization_endpoint"`
		TokenEndpoint          string   `json:"token_endpoint"`
		RegistrationEndpoint   string   `json:"registration_endpoint"`
		CodeChallengeMethods   []string `json:"code_challenge_methods_supported"`
		TokenEndpointAuthMetho []string `json:"token_endpoint_auth_methods_supported"`
		IssSupported           bool     `json:"authorization_response_iss_parameter_supported"`
		CIMDSupported          bool     `json:"client_id_metadata_document_supported"`
	}
	isu, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("authorization server %q: %w", issuer, err)
	}
	isBase := isu.Scheme + "://" + isu.Host
	p := strings.TrimSuffix(isu.Path, "/")
	got := false
	for _, u := range []string{isBase + "/.well-known/oauth-authorization-server" + p, isBase + "/.well-known/openid-configuration" + p} {
		var m = meta
		st, err := c.getJSON(ctx, u, &m)
		if err != nil {
			return err
		}
		c.logf("GET %s → %d", u, st)
		if st == http.StatusOK && !got {
			meta, got = m, true
		}
	}
	if !got || meta.AuthorizationEndpoint == "" || meta.TokenEndpoint == "" {
		return errors.New("no usable authorization server metadata")
	}
	if meta.Issuer != issuer {
		c.logf("issuer %q differs from %q; continuing like a lenient client", meta.Issuer, issuer)
	}
	if !contains(meta.CodeChallengeMethods, "S256") {
		c.logf("S256 not advertised; using it anyway like a lenient client")
	}
	if c.CIMD && meta.CIMDSupported {
		key, err := newDPoPKey()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.assertKey = key
		c.reg = &registration{
			ClientID: c.CallbackBase() + cimdPath, RedirectURI: c.CallbackBase() + c.CallbackPath, Resource: prm.Resource,
			AuthorizationEndpoint: meta.AuthorizationEndpoint, TokenEndpoint: meta.TokenEndpoint,
			Issuer: meta.Issuer, IssSupported: meta.IssSupported,
		}
		c.mu.Unlock()
		c.logf("identified by its client ID metadata document %s (no registration)", c.CallbackBase()+cimdPath)
		return nil
	}
	if meta.RegistrationEndpoint == "" {
		return errors.New("no registration endpoint")
	}
	redirect := c.CallbackBase() + c.CallbackPath
	md := map[string]any{
		"client_name": string(c.Profile) + " (mcptap lab)", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	if c.Profile == ProfileWorkload {
		redirect = ""
		grant := "client_credentials"
		if c.IDJAG != nil {
			grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
		}
		md = map[string]any{"client_name": "workload (mcptap lab)", "grant_types": []string{grant}, "token_endpoint_auth_method": "client_secret_post"}
	}
	body, _ := json.Marshal(md)
	var secret string
	regURL := meta.RegistrationEndpoint
	if c.Faults.RegisterOnMCP {
		// The endpoint guessed on the MCP server's origin, as clients
		// written for the 2025-03-26 spec do.
		regURL = origin(c.MCPURL()) + "/register"
	}
	register := func() (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, regURL, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.backend.Do(req)
		if err != nil {
			return "", fmt.Errorf("register: %w", err)
		}
		defer resp.Body.Close()
		var rr struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&rr) != nil || rr.ClientID == "" {
			return "", fmt.Errorf("registration answered %d", resp.StatusCode)
		}
		secret = rr.ClientSecret
		return rr.ClientID, nil
	}
	id, err := register()
	if err == nil && c.Faults.ReRegister {
		// A client that does not keep its registration registers on every
		// connect; the second connect is this one.
		id, err = register()
	}
	if err != nil {
		return err
	}
	rr := struct{ ClientID string }{id}
	c.logf("registered as %s", rr.ClientID)
	c.mu.Lock()
	c.reg = &registration{
		ClientID: rr.ClientID, RedirectURI: redirect, Resource: prm.Resource,
		AuthorizationEndpoint: meta.AuthorizationEndpoint, TokenEndpoint: meta.TokenEndpoint,
		RegistrationEndp: meta.RegistrationEndpoint, Issuer: meta.Issuer, IssSupported: meta.IssSupported,
		ClientSecret: secret,
	}
	c.mu.Unlock()
	return nil
}

// useMCP connects with the bearer and calls tools; the ChatGPT profile then
// refreshes its token and lists the tools once more.
func (c *Client) useMCP(ctx context.Context, res *Result, stop func(string, ...any) (*Result, error)) (*Result, error) {
	if c.Faults.NoBearer {
		st, _, _, err := c.rawInitialize(ctx, "")
		if err != nil {
			return nil, err
		}
		return stop("initialize without the bearer answered %d", st)
	}
	bt := &bearerTransport{base: c.backend.Transport, dpop: c.dpop, acceptJSONOnly: c.Faults.AcceptJSONOnly, dpopAsBearer: c.Faults.DPoPAsBearer, noVersion: c.Faults.NoProtocolHeader}
	c.mu.Lock()
	bt.token = c.tok.AccessToken
	c.mu.Unlock()
	hc := &http.Client{Transport: bt, Timeout: 30 * time.Second}
	// Progress notifications are handled on the SDK's own goroutines, possibly
	// after CallTool returned: count them on a channel.
	progress := make(chan struct{}, 64)
	cl := mcp.NewClient(&mcp.Implementation{Name: string(c.Profile) + "-lab", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case progress <- struct{}{}:
			default:
			}
		},
	})
	cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: c.MCPURL(), HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		return stop("MCP connect with the bearer failed: %v", err)
	}
	defer cs.Close()
	c.logf("initialize with the bearer succeeded")
	if v := cs.InitializeResult().ProtocolVersion; v == "2024-11-05" && c.Profile == ProfileChatGPT {
		// The server chose the HTTP+SSE transport's version: ChatGPT falls
		// back to that transport and opens its stream with a GET.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.MCPURL(), nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return stop("the server answered initialize with protocol version %s; the HTTP+SSE fallback's GET was answered %d", v, resp.StatusCode)
	}
	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		return stop("tools/list failed: %v", err)
	}
	for _, t := range lt.Tools {
		res.Tools = append(res.Tools, t.Name)
	}
	const steps = 3
	params := &mcp.CallToolParams{Name: "count", Arguments: map[string]any{"to": steps}}
	params.SetProgressToken("lab-progress-1")
	r, err := cs.CallTool(ctx, params)
	if err != nil {
		return stop("tools/call failed: %v", err)
	}
	for _, ct := range r.Content {
		if tc, ok := ct.(*mcp.TextContent); ok {
			res.CallText += tc.Text
		}
	}
	deadline := time.After(2 * time.Second)
wait:
	for res.Progress < steps {
		select {
		case <-progress:
			res.Progress++
		case <-deadline:
			break wait
		}
	}
	c.logf("tools/call count answered %q with %d progress notifications", res.CallText, res.Progress)
	if c.Faults.StepUpByRefresh {
		return c.stepUpByRefresh(ctx, res, bt, stop)
	}
	if c.Faults.StepUp != "" {
		return c.stepUp(ctx, res, stop)
	}
	if c.Faults.IgnoreExpiry {
		// The user comes back after the token's lifetime: the world
		// expires it at the server instead of waiting it out.
		if c.Expire != nil {
			c.Expire()
		}
		c.mu.Lock()
		tok := c.tok
		c.mu.Unlock()
		st, _, err := c.rawCall(ctx, tok.AccessToken, "echo")
		if err != nil {
			return nil, err
		}
		return stop("the expired token was refused (%d) and the client does nothing about it", st)
	}
	if c.Profile == ProfileChatGPT {
		c.mu.Lock()
		reg, rt := c.reg, c.tok.RefreshToken
		c.mu.Unlock()
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {reg.ClientID}}
		if reg.Resource != "" && !c.Faults.OmitResource && !c.Faults.RefreshNoResource {
			f.Set("resource", c.resourceSent(reg.Resource))
		}
		if err := c.assert(f, reg); err != nil {
			return nil, err
		}
		nt, err := c.tokenRequest(ctx, reg.TokenEndpoint, f)
		for i := 0; err != nil && c.Faults.RetryRefresh && i < stormRetries; i++ {
			c.logf("refresh refused (%v); retrying with the same token", err)
			nt, err = c.tokenRequest(ctx, reg.TokenEndpoint, f)
		}
		if err != nil {
			return stop("refresh failed: %v", err)
		}
		if c.Faults.RefreshRace {
			// A second instance refreshed with the same token a moment
			// later (no lock shared between them): rotation refuses it.
			if _, err2 := c.tokenRequest(ctx, reg.TokenEndpoint, f); err2 != nil {
				c.logf("the second refresh with the same token failed: %v", err2)
			}
		}
		bt.set(nt.AccessToken)
		if _, err := cs.ListTools(ctx, nil); err != nil {
			return stop("tools/list after refresh failed: %v", err)
		}
		res.Refreshed = true
	}
	return res, nil
}

func (c *Client) resourceSent(prmResource string) string {
	if c.Faults.ResourceOrigin {
		return origin(prmResource)
	}
	return prmResource
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

type bearerTransport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	token string
	dpop  *dpopKey // set: the token is DPoP-bound; each request carries a proof
	// Faults: Accept without text/event-stream; a DPoP-bound token as Bearer.
	acceptJSONOnly, dpopAsBearer, noVersion bool
}

func (b *bearerTransport) set(t string) { b.mu.Lock(); b.token = t; b.mu.Unlock() }

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	t := b.token
	b.mu.Unlock()
	r = r.Clone(r.Context())
	if b.acceptJSONOnly && r.Method == http.MethodPost {
		r.Header.Set("Accept", "application/json")
	}
	if b.noVersion {
		r.Header.Del("Mcp-Protocol-Version")
	}
	if b.dpop == nil || b.dpopAsBearer {
		r.Header.Set("Authorization", "Bearer "+t)
		return b.base.RoundTrip(r)
	}
	u := *r.URL
	u.RawQuery, u.Fragment = "", ""
	proof, err := b.dpop.proof(r.Method, u.String(), t)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "DPoP "+t)
	r.Header.Set("DPoP", proof)
	return b.base.RoundTrip(r)
}

type uaTransport struct {
	ua   string
	base http.RoundTripper
	// authUA, when set, is the User-Agent of requests that carry a bearer
	// (Claude's backend: python-httpx for discovery and token, Claude-User
	// for its authenticated MCP calls).
	authUA string
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the base.
func (u uaTransport) CloseIdleConnections() {
	if c, ok := u.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	ua := u.ua
	if u.authUA != "" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		ua = u.authUA
	}
	r.Header.Set("User-Agent", ua)
	return u.base.RoundTrip(r)
}

// newTransport ignores HTTP(S)_PROXY: the lab talks to loopback only.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
}

func newHTTPClient(follow bool) *http.Client {
	c := &http.Client{Transport: newTransport(), Timeout: 30 * time.Second}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// runWorkload is the workload profile after registration: a DPoP-bound
// client_credentials token, then the MCP calls.
func (c *Client) runWorkload(ctx context.Context, res *Result, stop func(string, ...any) (*Result, error)) (*Result, error) {
	key, err := newDPoPKey()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	reg := c.reg
	c.dpop = key
	c.mu.Unlock()
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {reg.ClientID}, "client_secret": {reg.ClientSecret}}
	if reg.Resource != "" {
		f.Set("resource", reg.Resource)
	}
	if c.IDJAG != nil {
		now := time.Now()
		t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": c.IDJAGIssuer, "sub": "ada@example.com", "aud": reg.Issuer, "client_id": reg.ClientID,
			"resource": reg.Resource, "scope": defaultScope, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": randHex(12),
		})
		if c.Faults.IDJAGAudience != "" {
			t.Claims.(jwt.MapClaims)["aud"] = c.Faults.IDJAGAudience
		}
		t.Header["typ"] = "oauth-id-jag+jwt"
		jag, err := t.SignedString(c.IDJAG)
		if err != nil {
			return nil, err
		}
		f.Set("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
		f.Set("assertion", jag)
	}
	// A server may answer use_dpop_nonce with the nonce to put in the next
	// proof: a client tries again with it (three tries in all).
	var t tokenSet
	nonce := ""
	for try := 0; ; try++ {
		proof, err := key.proofWithNonce(http.MethodPost, reg.TokenEndpoint, "", nonce)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, reg.TokenEndpoint, strings.NewReader(f.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("DPoP", proof)
		resp, err := c.backend.Do(req)
		if err != nil {
			return stop("token endpoint: %v", err)
		}
		var e struct {
			Error string `json:"error"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest && json.Unmarshal(body, &e) == nil && e.Error == "use_dpop_nonce" && try < 2 {
			if !c.Faults.IgnoreDPoPNonce {
				nonce = resp.Header.Get("DPoP-Nonce")
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &t) != nil || t.AccessToken == "" || t.TokenType != "DPoP" {
			return stop("no DPoP-bound token: token endpoint answered %d (token_type %q)", resp.StatusCode, t.TokenType)
		}
		break
	}
	c.logf("token endpoint issued a DPoP-bound access token")
	c.setToken(&t, nil)
	res.Token = true
	return c.useMCP(ctx, res, stop)
}

// cimdPath is where the client serves its client ID metadata document.
const cimdPath = "/oauth/client.json"

// assert adds a private_key_jwt client assertion (RFC 7523 §2.2) to a token
// request of a CIMD client.
func (c *Client) assert(f url.Values, reg *registration) error {
	c.mu.Lock()
	key := c.assertKey
	c.mu.Unlock()
	if key == nil {
		return nil
	}
	now := time.Now()
	aud := reg.TokenEndpoint
	if c.Faults.AssertionAudience != "" {
		aud = c.Faults.AssertionAudience
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": reg.ClientID, "sub": reg.ClientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randHex(12),
	})
	t.Header["kid"] = "lab-cimd-1"
	s, err := t.SignedString(key.priv)
	if err != nil {
		return err
	}
	f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	f.Set("client_assertion", s)
	return nil
}

// rawCall POSTs one tools/call with token, outside the SDK session (the
// server's scope check answers before the session matters).
func (c *Client) rawCall(ctx context.Context, token, tool string) (int, http.Header, error) {
	st, h, _, err := c.rawPost(ctx, token, `{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"`+tool+`","arguments":{}}}`)
	return st, h, err
}

// stepUpByRefresh calls the admin tool, gets 403 insufficient_scope, and
// answers it the wrong way: a refresh (which keeps the granted scope), then
// the same call again.
func (c *Client) stepUpByRefresh(ctx context.Context, res *Result, bt *bearerTransport, stop func(string, ...any) (*Result, error)) (*Result, error) {
	c.mu.Lock()
	reg, tok := c.reg, c.tok
	c.mu.Unlock()
	st, _, err := c.rawCall(ctx, tok.AccessToken, adminTool)
	if err != nil {
		return nil, err
	}
	if st != http.StatusForbidden {
		return stop("the admin tool answered %d, not 403", st)
	}
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {reg.ClientID}}
	if reg.Resource != "" {
		f.Set("resource", reg.Resource)
	}
	nt, err := c.tokenRequest(ctx, reg.TokenEndpoint, f)
	if err != nil {
		return stop("refresh failed: %v", err)
	}
	bt.set(nt.AccessToken)
	st, _, err = c.rawCall(ctx, nt.AccessToken, adminTool)
	if err != nil {
		return nil, err
	}
	return stop("the admin tool answered %d after a refresh: a refresh cannot add the scope", st)
}

// scope is what the next authorize asks for.
func (c *Client) scope() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scopeAsked != "" {
		return c.scopeAsked
	}
	return defaultScope
}

// stormRetries is how many times a RetryRefresh client retries a refused
// refresh: with the first, more than a storm (oauth's stormCount, 5).
const stormRetries = 5

// maxStepUps is how many authorizations a step-up client tries while the
// server still answers 403 insufficient_scope.
const maxStepUps = 3

// stepUp calls the admin tool, reads the scope the 403 asks for and
// authorizes again (the IDE's consent is given already: AutoApprove), then
// calls the tool with the new token; while it is still refused, again.
func (c *Client) stepUp(ctx context.Context, res *Result, stop func(string, ...any) (*Result, error)) (*Result, error) {
	c.mu.Lock()
	tok := c.tok
	c.mu.Unlock()
	st, hdr, err := c.rawCall(ctx, tok.AccessToken, adminTool)
	if err != nil {
		return nil, err
	}
	if st != http.StatusForbidden {
		return stop("the admin tool answered %d, not 403", st)
	}
	for round := 1; ; round++ {
		required := challengeParam(hdr.Get("WWW-Authenticate"), "scope")
		asked := required
		if c.Faults.StepUp == "replace" {
			// Only what the server asks for beyond what was granted.
			asked = strings.TrimSpace(strings.ReplaceAll(" "+required+" ", " "+defaultScope+" ", " "))
		}
		c.mu.Lock()
		c.scopeAsked = asked
		c.mu.Unlock()
		_, u, err := c.newAttempt()
		if err != nil {
			return nil, err
		}
		if _, err := c.browser.open(ctx, u); err != nil {
			return stop("step-up authorize: %v", err)
		}
		c.mu.Lock()
		nt, ntErr := c.tok, c.tokErr
		c.mu.Unlock()
		if nt == nil || nt == tok {
			return stop("step-up: no new token: %v", ntErr)
		}
		tok = nt
		if st, hdr, err = c.rawCall(ctx, nt.AccessToken, adminTool); err != nil {
			return nil, err
		}
		c.logf("after step-up %d (scope %q) the admin tool answered %d", round, asked, st)
		switch {
		case st == http.StatusOK:
			return res, nil
		case st != http.StatusForbidden || round == maxStepUps:
			return stop("the admin tool answered %d after %d step-up(s)", st, round)
		}
	}
}

// challengeParam reads one auth-param of a WWW-Authenticate challenge.
func challengeParam(h, name string) string {
	i := strings.Index(h, name+"=")
	if i < 0 {
		return ""
	}
	v := h[i+len(name)+1:]
	if strings.HasPrefix(v, `"`) {
		v, _, ok := strings.Cut(v[1:], `"`)
		if !ok {
			return "" // unterminated: no value
		}
		return v
	}
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}
