package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// Client profiles: callback URL, user agent and the state format each client
// uses (reference §1).
type Client struct {
	Name        string
	RedirectURI string
	UserAgent   string
	State       func(seed string) string
}

// Clients known to the generator.
var Clients = map[string]Client{
	"chatgpt": {"chatgpt", "https://chatgpt.com/connector/oauth/eRvU93QmvGwc", "openai-mcp/1.0.0", chatgptState},
	"claude":  {"claude", "https://claude.ai/api/mcp/auth_callback", "Claude-User", func(s string) string { return b64url(hash(s)[:24]) }},
	"vscode":  {"vscode", "http://127.0.0.1:33418/", "Visual Studio Code/1.105.0", vscodeState},
	"mcp-remote": {"mcp-remote", "http://localhost:21371/oauth/callback", "mcp-remote/0.1.29 node/22.11.0",
		func(s string) string { return hex.EncodeToString(hash(s)[:16]) }},
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
func b64url(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// chatgptState is base64 of {"csrf":"<hex>","s":"oauth_s_<hex>"} (seed report 000).
func chatgptState(seed string) string {
	j := fmt.Sprintf(`{"csrf":"%s","s":"oauth_s_%s"}`, hex.EncodeToString(hash(seed+"csrf")), hex.EncodeToString(hash(seed + "s")[:16]))
	return base64.StdEncoding.EncodeToString([]byte(j))
}

// vscodeState is standard base64 with '+', '/' and padding (reference §1.3).
func vscodeState(seed string) string {
	b := hash(seed)[:20]
	b[2] |= 0xf8 // make '+' or '/' likely
	s := base64.StdEncoding.EncodeToString(b[:19])
	if !strings.ContainsAny(s, "+/") {
		s = "+" + s[1:]
	}
	return s
}

// Scenario is one connector setup as the proxy sees it, with knobs that break
// exactly one thing each. The zero knobs give a healthy flow.
type Scenario struct {
	Client  string // key of Clients
	Origin  string // MCP server and authorization server origin (default https://mcp.example.com)
	MCPPath string // default /mcp
	Seed    string // makes states, codes and tokens unique per scenario
	Mode    mcptap.Mode
	Browser bool // the browser's view: callback page and (ChatGPT) callback completion captured

	// discovery
	NoChallenge     bool   // 401 without WWW-Authenticate
	ChallengeURL    string // resource_metadata in the 401 challenge instead of the public PRM URL
	PRMNotJSON      bool   // PRM served as HTML
	PRMPathFallback bool   // path-suffixed PRM 404, root 200
	PRMResource     string // override resource in the PRM
	PRMNoAS         bool
	PRMAllMissing   bool   // every PRM probe 404
	Issuer          string // override issuer in AS metadata
	NoS256          bool
	NoRegistration  bool
	InternalToken   bool // token_endpoint on http://127.0.0.1
	// registration
	RegisterStatus int // 400: invalid_redirect_uri
	RegisterOther  string
	// authorize
	StateLen        int // pad the state to this length
	AuthorizeStatus int // answer the authorize with this status instead of 302
	AuthorizeBody   string
	AuthorizeError  string // redirect to redirect_uri with error=<this>&error_description=…&state=… (no code)
	AuthorizeDesc   string
	NoPKCE          bool
	NoResource      bool
	AuthResource    string // resource sent on authorize
	RedirectURI     string // redirect_uri sent on authorize (vs registered)
	LocationTarget  string // where the AS sends the code
	AlterState      func(raw string) string
	DropState       bool
	Stale           bool   // a second attempt starts; the callback returns the first one's state
	CallbackStatus  int    // browser: client callback page status
	CallbackBody    string // browser: client callback page body
	CompletionStat  int    // browser (ChatGPT): callback completion status
	// token
	NoToken        bool
	TokenDelay     time.Duration
	Verifier       string // verifier sent instead of the right one
	TokenRedirect  string
	TokenClientID  string
	TokenResource  string
	ReuseCode      bool
	TokenError     string // invalid_grant, invalid_client, invalid_target
	TokenStatus    int
	TokenBody      string // raw 200 body
	TokenCT        string
	TokenAud       string
	UnknownClient  bool // authorize answered "Unrecognized client_id"
	AuthMethodUsed string
	// MCP
	MCPStatus    int // status of the first authenticated MCP call (401 rejected, 307 redirect, 403 with MCPBody)
	MCPBody      string
	NoBearer     bool
	Upstream     string // the server proxies to this upstream IdP origin (inner leg)
	Passthrough  bool   // with Upstream: state and redirect_uri passed through unchanged
	UpstreamLost bool   // with Upstream: nothing comes back from the provider
	// UpstreamRouted (with Upstream): the provider is routed through mcptap
	// too, so the server's own PKCE on the inner authorize and its token call
	// to the provider (made while the browser waits on the inner callback)
	// are captured.
	UpstreamRouted bool
	Refresh        bool // after the MCP calls, refresh the token once
	EndWait        time.Duration
}

func (s Scenario) origin() string {
	if s.Origin != "" {
		return s.Origin
	}
	return "https://mcp.example.com"
}

func (s Scenario) mcpURL() string {
	p := s.MCPPath
	if p == "" {
		p = "/mcp"
	}
	if p == "/" {
		return s.origin()
	}
	return s.origin() + p
}

func q(v string) string { return url.QueryEscape(v) }

// JWT makes an unsigned-looking but well-formed JWS with the given claims.
func JWT(claims string) string {
	h := b64url([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`))
	return h + "." + b64url([]byte(claims)) + "." + b64url(hash(claims))
}

// Build appends the scenario's exchanges to b.
func (s Scenario) Build(b *Builder) {
	if s.Mode != "" {
		b.Mode = s.Mode
	}
	cl, ok := Clients[s.Client]
	if !ok {
		cl = Clients["chatgpt"]
	}
	o := s.origin()
	mcp := s.mcpURL()
	ua := cl.UserAgent
	seed := s.Seed + cl.Name
	state := cl.State(seed)
	for len(state) < s.StateLen {
		state += hex.EncodeToString(hash(state))
	}
	if s.StateLen > 0 {
		state = state[:s.StateLen]
	}
	redirect := cl.RedirectURI
	clientID := "cl_" + hex.EncodeToString(hash(seed + "client"))[:12]
	verifier := b64url(hash(seed + "verifier"))
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	code := "ac_" + b64url(hash(seed + "code"))[:22]
	access := JWT(fmt.Sprintf(`{"iss":"%s","sub":"user_42","aud":"%s","exp":%d,"iat":%d,"scope":"mcp","client_id":"%s"}`,
		o, firstNonEmpty(s.TokenAud, mcp), T0.Add(time.Hour).Unix(), T0.Unix(), clientID))
	refresh := "rt_" + b64url(hash(seed + "refresh"))[:30]
	api := func(e Ex) Ex { return e.H("User-Agent", ua, "Accept", "application/json") }
	browserUA := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"
	browser := func(e Ex) Ex { return e.H("User-Agent", browserUA, "Accept", "text/html") }
	prmURL := o + "/.well-known/oauth-protected-resource" + strings.TrimPrefix(mcp, o)

	if !s.Browser {
		// M0: unauthenticated initialize.
		e := api(b.Do("POST", mcp, 401)).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"`+cl.Name+`","version":"1.0.0"}}}`).
			JSON(`{"error":"invalid_token","error_description":"Missing or invalid access token"}`)
		if !s.NoChallenge {
			e.RH("WWW-Authenticate", `Bearer resource_metadata="`+firstNonEmpty(s.ChallengeURL, prmURL)+`"`)
		}
		// D1.
		prm := fmt.Sprintf(`{"resource":"%s","authorization_servers":["%s"],"scopes_supported":["mcp"],"bearer_methods_supported":["header"]}`, firstNonEmpty(s.PRMResource, mcp), o)
		if s.PRMNoAS {
			prm = fmt.Sprintf(`{"resource":"%s","scopes_supported":["mcp"]}`, firstNonEmpty(s.PRMResource, mcp))
		}
		switch {
		case s.PRMAllMissing:
			api(b.Do("GET", prmURL, 404)).Resp("text/plain", "Not Found")
			api(b.Do("GET", o+"/.well-known/oauth-protected-resource", 404)).Resp("text/plain", "Not Found")
			return // the client gives up
		case s.PRMNotJSON:
			api(b.Do("GET", prmURL, 200)).Resp("text/html; charset=utf-8", "<!doctype html><html><head><title>App</title></head><body><div id=root></div></body></html>")
			return
		case s.PRMPathFallback:
			api(b.Do("GET", prmURL, 404)).Resp("text/plain", "Not Found")
			api(b.Do("GET", o+strings.TrimPrefix(mcp, o)+"/.well-known/oauth-protected-resource", 404)).Resp("text/plain", "Not Found")
			api(b.Do("GET", o+"/.well-known/oauth-protected-resource", 200)).JSON(prm)
		default:
			api(b.Do("GET", prmURL, 200)).JSON(prm)
		}
		if s.PRMNoAS {
			return
		}
		// D2.
		tokenEP := o + "/token"
		if s.InternalToken {
			tokenEP = "http://127.0.0.1:3000/token"
		}
		meta := fmt.Sprintf(`{"issuer":"%s","authorization_endpoint":"%s/authorize","token_endpoint":"%s",`, firstNonEmpty(s.Issuer, o), o, tokenEP)
		if !s.NoRegistration {
			meta += fmt.Sprintf(`"registration_endpoint":"%s/register",`, o)
		}
		meta += `"response_types_supported":["code"],"grant_types_supported":["authorization_code","refresh_token"],"token_endpoint_auth_methods_supported":["none","client_secret_post"],`
		if s.NoS256 {
			meta += `"code_challenge_methods_supported":["plain"],`
		} else {
			meta += `"code_challenge_methods_supported":["S256"],`
		}
		meta += `"scopes_supported":["mcp"]}`
		api(b.Do("GET", o+"/.well-known/oauth-authorization-server", 200)).JSON(meta)
		if s.NoS256 || s.NoRegistration {
			return // strict clients stop here
		}
		// R.
		reg := fmt.Sprintf(`{"client_name":"%s","redirect_uris":["%s"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`, cl.Name, redirect)
		if s.RegisterStatus != 0 {
			api(b.Do("POST", o+"/register", s.RegisterStatus)).Body("application/json", reg).
				JSON(fmt.Sprintf(`{"error":"invalid_redirect_uri","error_description":"redirect_uri %s is not in the allowlist"}`, redirect))
			return
		}
		regRedirects := redirect
		if s.RegisterOther != "" {
			regRedirects = s.RegisterOther
		}
		api(b.Do("POST", o+"/register", 201)).Body("application/json", reg).
			JSON(fmt.Sprintf(`{"client_id":"%s","client_id_issued_at":%d,"redirect_uris":["%s"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","client_name":"%s"}`, clientID, T0.Unix(), regRedirects, cl.Name))
	}

	// A: the browser opens the authorize URL.
	authRedirect := firstNonEmpty(s.RedirectURI, redirect)
	authorize := func(st string) string {
		u := fmt.Sprintf("%s/authorize?response_type=code&client_id=%s&redirect_uri=%s&state=%s", o, q(clientID), q(authRedirect), q(st))
		if !s.NoPKCE {
			u += "&code_challenge=" + challenge + "&code_challenge_method=S256"
		}
		if !s.NoResource {
			u += "&resource=" + q(firstNonEmpty(s.AuthResource, mcp))
		}
		return u + "&scope=mcp"
	}
	authURL := authorize(state)
	sentState := q(state)
	retState := sentState
	if s.AlterState != nil {
		retState = s.AlterState(sentState)
	}
	target := firstNonEmpty(s.LocationTarget, authRedirect)
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	loc := target + sep + "code=" + code
	if !s.DropState {
		loc += "&state=" + retState
	}
	var codeLoc string
	switch {
	case s.UnknownClient:
		browser(b.Do("GET", authURL, 400)).Resp("application/json", `{"message":"Unrecognized client_id"}`)
		return
	case s.AuthorizeError != "":
		errLoc := target + sep + "error=" + q(s.AuthorizeError)
		if s.AuthorizeDesc != "" {
			errLoc += "&error_description=" + q(s.AuthorizeDesc)
		}
		browser(b.Do("GET", authURL, 302)).Loc(errLoc + "&state=" + retState)
		if s.EndWait > 0 {
			b.Wait(s.EndWait)
			api(b.Do("GET", o+"/healthz", 200)).Resp("text/plain", "ok")
		}
		return
	case s.AuthorizeStatus != 0:
		browser(b.Do("GET", authURL, s.AuthorizeStatus)).Resp("text/html; charset=utf-8", firstNonEmpty(s.AuthorizeBody, "<html><body><h1>Something went wrong</h1><p>access_denied</p></body></html>"))
		return
	case s.Upstream != "":
		up := s.Upstream
		innerState, innerRedirect := "up_"+hex.EncodeToString(hash(seed + "inner"))[:20], o+"/oauth/callback"
		if s.Passthrough {
			innerState, innerRedirect = state, authRedirect
		}
		upURL := fmt.Sprintf("%s/authorize?response_type=code&client_id=mcp-proxy&redirect_uri=%s&state=%s&scope=openid", up, q(innerRedirect), q(innerState))
		innerVerifier := b64url(hash(seed + "inner-verifier"))
		if s.UpstreamRouted {
			ic := sha256.Sum256([]byte(innerVerifier))
			upURL += "&code_challenge=" + base64.RawURLEncoding.EncodeToString(ic[:]) + "&code_challenge_method=S256"
		}
		browser(b.Do("GET", authURL, 302)).Loc(upURL)
		if s.UpstreamLost {
			b.Wait(s.EndWait)
			api(b.Do("GET", o+"/healthz", 200)).Resp("text/plain", "ok")
			return
		}
		browser(b.Do("GET", upURL, 200)).Resp("text/html", "<html><form method=post action=/login>…</form></html>")
		b.Wait(8 * time.Second)
		if s.Passthrough {
			browser(b.Do("POST", up+"/login", 302)).Body("application/x-www-form-urlencoded", "username=ada&password=%E2%80%A2%E2%80%A2%E2%80%A2").Loc(loc)
			codeLoc = loc
			break
		}
		innerCode := "upc_" + b64url(hash(seed + "upcode"))[:16]
		innerLoc := innerRedirect + "?code=" + innerCode + "&state=" + q(innerState)
		browser(b.Do("POST", up+"/login", 302)).Body("application/x-www-form-urlencoded", "username=ada&password=%E2%80%A2%E2%80%A2%E2%80%A2").Loc(innerLoc)
		browser(b.Do("GET", innerLoc, 302)).Loc(loc)
		if s.UpstreamRouted {
			// The server redeems the provider's code while the browser waits
			// on its callback (so the token call starts after the callback).
			upAccess := JWT(fmt.Sprintf(`{"iss":"%s","sub":"ada","aud":"mcp-proxy","exp":%d}`, up, T0.Add(time.Hour).Unix()))
			b.Do("POST", up+"/token", 200).H("User-Agent", "mcp-oauth-proxy/1.0", "Accept", "application/json").
				Form("grant_type=authorization_code", "code="+innerCode, "client_id=mcp-proxy", "redirect_uri="+q(innerRedirect), "code_verifier="+innerVerifier).
				JSON(fmt.Sprintf(`{"access_token":"%s","token_type":"Bearer","expires_in":3600,"id_token":"%s"}`, upAccess, upAccess))
		}
		codeLoc = loc
	case s.Stale:
		// First attempt: consent page; the user clicks Connect again.
		browser(b.Do("GET", authURL, 200)).Resp("text/html", "<html><form method=post>Allow?</form></html>")
		state2 := cl.State(seed + "second")
		b.Wait(5 * time.Second)
		browser(b.Do("GET", authorize(state2), 200)).Resp("text/html", "<html><form method=post>Allow?</form></html>")
		b.Wait(3 * time.Second)
		// The first tab's consent is submitted: code with the first state.
		browser(b.Do("POST", o+"/authorize/consent", 302)).Body("application/x-www-form-urlencoded", "approve=1&state="+sentState).Loc(loc)
		codeLoc = loc
	default:
		browser(b.Do("GET", authURL, 302)).Loc(loc)
		codeLoc = loc
	}

	if s.Browser {
		cb := browser(b.Do("GET", codeLoc, firstNonZero(s.CallbackStatus, 200)))
		cb.Resp("text/html; charset=utf-8", firstNonEmpty(s.CallbackBody, "<!doctype html><html><body>Connecting…</body></html>"))
		if cl.Name == "chatgpt" {
			xhr := func(e Ex) Ex {
				return e.H("User-Agent", browserUA, "Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.chatgpt-session", "ChatGPT-Account-ID", "727a535d-e95d-4bb6-9f54-9961cca52582", "Origin", "https://chatgpt.com")
			}
			st := firstNonZero(s.CompletionStat, 200)
			body := `{"status":"linked"}`
			if st == 404 {
				body = `{"detail":"OAuth state not found"}`
			}
			xhr(b.Do("POST", "https://chatgpt.com/backend-api/aip/connectors/links/oauth/callback", st)).
				Body("application/json", fmt.Sprintf(`{"full_redirect_url":"%s"}`, codeLoc)).JSON(body)
			if st == 404 {
				sid := "oauth_s_" + hex.EncodeToString(hash(seed + "s")[:16])
				xhr(b.Do("GET", "https://chatgpt.com/backend-api/aip/connectors/links/oauth/state/"+sid, 404)).JSON(`{"detail":"OAuth state not found"}`)
			}
		}
		return // the token call goes from the client's backend: not visible in the browser
	}
	if s.NoToken || s.DropState || s.AlterState != nil || s.LocationTarget != "" || s.Stale {
		if s.EndWait > 0 {
			b.Wait(s.EndWait)
			// Something unrelated keeps the recording going.
			api(b.Do("GET", o+"/healthz", 200)).Resp("text/plain", "ok")
		}
		return
	}
	// T.
	b.Wait(s.TokenDelay)
	form := []string{"grant_type=authorization_code", "code=" + code, "redirect_uri=" + q(firstNonEmpty(s.TokenRedirect, authRedirect)),
		"client_id=" + q(firstNonEmpty(s.TokenClientID, clientID)), "code_verifier=" + firstNonEmpty(s.Verifier, verifier)}
	if !s.NoResource {
		form = append(form, "resource="+q(firstNonEmpty(s.TokenResource, s.AuthResource, mcp)))
	}
	tokURL := o + "/token"
	if s.InternalToken {
		tokURL = "https://mcp.example.com/token"
	}
	tokenOK := fmt.Sprintf(`{"access_token":"%s","token_type":"Bearer","expires_in":3600,"refresh_token":"%s","scope":"mcp"}`, access, refresh)
	tk := api(b.Do("POST", tokURL, firstNonZero(s.TokenStatus, 200))).Form(form...)
	if s.AuthMethodUsed == "client_secret_basic" {
		tk.H("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(clientID+":s3cret")))
	}
	switch {
	case s.TokenError != "":
		tk.Status = 400
		if s.TokenError == "invalid_client" {
			tk.Status = 401
		}
		tk.JSON(fmt.Sprintf(`{"error":"%s","error_description":"%s"}`, s.TokenError, strings.ReplaceAll(s.TokenError, "_", " ")))
		return
	case s.TokenBody != "":
		tk.Resp(firstNonEmpty(s.TokenCT, "application/json"), s.TokenBody)
		return
	default:
		tk.JSON(tokenOK).RH("Cache-Control", "no-store")
	}
	if s.ReuseCode {
		api(b.Do("POST", tokURL, 400)).Form(form...).JSON(`{"error":"invalid_grant","error_description":"authorization code already used"}`)
	}
	// M1.
	if s.NoBearer {
		b.Wait(2 * time.Minute)
		api(b.Do("POST", mcp, 401)).Body("application/json", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`).
			RH("WWW-Authenticate", `Bearer resource_metadata="`+prmURL+`"`).JSON(`{"error":"invalid_token"}`)
		return
	}
	m := api(b.Do("POST", mcp, firstNonZero(s.MCPStatus, 200))).H("Authorization", "Bearer "+access, "Mcp-Protocol-Version", "2025-11-25").
		Body("application/json", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"`+cl.Name+`","version":"1.0.0"}}}`)
	switch s.MCPStatus {
	case 401:
		m.RH("WWW-Authenticate", `Bearer error="invalid_token", error_description="audience mismatch", resource_metadata="`+prmURL+`"`).JSON(`{"error":"invalid_token"}`)
		return
	case 307, 308, 301, 302:
		m.Loc(mcp + "/")
		return
	case 403:
		m.Resp("text/plain; charset=utf-8", firstNonEmpty(s.MCPBody, "Forbidden"))
		return
	}
	m.JSON(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"example","version":"0.1.0"}}}`).RH("Mcp-Session-Id", "sess-"+hex.EncodeToString(hash(seed))[:8])
	api(b.Do("POST", mcp, 200)).H("Authorization", "Bearer "+access, "Mcp-Protocol-Version", "2025-11-25").Body("application/json", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`).
		JSON(`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search","inputSchema":{"type":"object"}}]}}`)
	if s.Refresh {
		access2 := JWT(fmt.Sprintf(`{"iss":"%s","sub":"user_42","aud":"%s","exp":%d,"client_id":"%s","n":2}`, o, mcp, T0.Add(2*time.Hour).Unix(), clientID))
		rf := []string{"grant_type=refresh_token", "refresh_token=" + refresh, "client_id=" + q(clientID)}
		if !s.NoResource {
			rf = append(rf, "resource="+q(firstNonEmpty(s.TokenResource, s.AuthResource, mcp)))
		}
		api(b.Do("POST", tokURL, 200)).Form(rf...).
			JSON(fmt.Sprintf(`{"access_token":"%s","token_type":"Bearer","expires_in":3600,"refresh_token":"%s2"}`, access2, refresh))
		api(b.Do("POST", mcp, 200)).H("Authorization", "Bearer "+access2, "Mcp-Protocol-Version", "2025-11-25").Body("application/json", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}}`).
			JSON(`{"jsonrpc":"2.0","id":3,"result":{"content":[]}}`)
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func firstNonZero(v ...int) int {
	for _, n := range v {
		if n != 0 {
			return n
		}
	}
	return 0
}

// Mix is a set of scenarios that together cover every hop kind (discovery,
// registration, authorize, redirect, browser callback and ChatGPT callback
// completion, inner legs, token, refresh, MCP with and without a bearer) and
// some broken flows. Benchmarks cycle through it, giving each copy its own Seed.
var Mix = []Scenario{
	{Client: "chatgpt"},
	{Client: "claude", Refresh: true},
	{Client: "vscode"},
	{Client: "mcp-remote", Refresh: true},
	{Client: "chatgpt", Browser: true},
	{Client: "claude", Upstream: "https://idp.example.org"},
	{Client: "chatgpt", Browser: true, CompletionStat: 404},
	{Client: "vscode", AlterState: func(s string) string { return s + "%20" }},
	{Client: "claude", MCPStatus: 401},
	{Client: "claude", NoChallenge: true, TokenError: "invalid_grant"},
	{Client: "chatgpt", NoToken: true},
}
