package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// State alterations an authorization server can apply when it echoes state.
// The names are those of the state.altered rule's transformations.
const (
	AlterPlusToSpace      = "plus-to-space"
	AlterDoubleEncoded    = "double-encoded"
	AlterPaddingStripped  = "padding-stripped"
	AlterTruncated        = "truncated"
	truncatedStateLength  = 40 // what a too-narrow state column keeps
	authCodeLifetime      = 5 * time.Minute
	accessTokenLifetime   = time.Hour
	defaultScope          = "mcp:tools"
	proxyClientID         = "lab-oauth-proxy"
	labUserSubject        = "lab-user-1"
	consentFormMarker     = "lab-consent"
	userAgentLabAS        = "mcptap-lab-as/1.0"
	tokenEndpointPath     = "/oauth/token"
	authorizeEndpointPath = "/oauth/authorize"
)

// ASFaults are the authorization server's switchable faults.
type ASFaults struct {
	DropState           bool   // the code-bearing redirect carries no state (seed 001)
	AlterState          string // one of the Alter* names: state echoed changed
	NoS256              bool   // metadata lacks code_challenge_methods_supported
	IssuerTrailingSlash bool   // metadata issuer has a trailing slash the PRM entry lacks
	WebDefault          bool   // registration without application_type is a web client: only https redirects
	// ErrorRedirect: the authorize is refused with this error_description,
	// redirected with error=invalid_request (an Entra AADSTS code, say).
	ErrorRedirect string
	NoIss         bool // iss advertised in the metadata, left out of the authorization responses
	MaxClients    int  // registrations beyond this many answer 429 (a quota)
	DPoPNonce     bool // the token endpoint requires its DPoP-Nonce in proofs (RFC 9449 §8)
	// GrantOnly: the scopes the authorization server grants at most; others
	// asked for are dropped without a word (a policy the server's scope
	// requirement does not match).
	GrantOnly string
	// CIMDNoneOnly: client ID metadata documents are accepted only with
	// token_endpoint_auth_method none; a document client that authenticates
	// with private_key_jwt is refused invalid_client at the token endpoint.
	CIMDNoneOnly bool
	// NoRefresh: refresh_token stays advertised in grant_types_supported,
	// and a refresh is answered unsupported_grant_type.
	NoRefresh bool
	// RevokedRefresh: every refresh is refused invalid_grant (the grant
	// was revoked), with nothing that tells the client to stop retrying.
	RevokedRefresh bool
	// OpaqueTokens: access tokens are opaque random strings, which the
	// lab's MCP server (it validates JWTs) cannot accept.
	OpaqueTokens bool
	// CIMDNoFetch: client_id_metadata_document_supported is advertised,
	// and a URL client_id is never fetched: the client stays unknown.
	CIMDNoFetch bool
	NoMetadata  bool // neither RFC 8414 nor OIDC discovery is served (404)
	Register200 bool // a registration is answered 200 instead of 201 Created
	// RefuseRegisteredRedirect: the registration echoes the redirect URIs,
	// and the authorize refuses them all the same (a stale allow-list).
	RefuseRegisteredRedirect bool
	NoRefreshToken           bool // token responses carry no refresh_token
	// CIMDWithoutNone: CIMD is advertised, and the token endpoint auth
	// methods lack none (public clients then fall back to registration).
	CIMDWithoutNone bool
	// ConsentCSP is the consent page's Content-Security-Policy ("" for
	// none): form-action 'self' keeps a browser from following the
	// approval's redirect to the client.
	ConsentCSP string
	// LoseSession: the pending authorization is kept by another instance
	// (an in-memory store behind a load balancer): the consent answers 400
	// as oidc-provider does, "interaction session not found".
	LoseSession bool
	// NoTokenCORS: the token endpoint does not answer CORS (its preflight
	// gets 405) while the rest of the server does: a browser-based client
	// cannot redeem its code.
	NoTokenCORS bool
	// CodeTTL: codes expire this soon, and a late one is refused as Entra
	// ID words it (invalid_grant, AADSTS70008).
	CodeTTL time.Duration
	// StrictScopes: an authorize asking for a scope outside scopes_supported
	// is sent back with error=invalid_scope (RFC 6749 §4.1.2.1).
	StrictScopes bool
}

// AuthServer is an OAuth 2.1 authorization server: RFC 8414 and OIDC
// metadata, RFC 7591 registration, authorize with a consent page, token with
// PKCE S256 and RFC 8707 resource, refresh with rotation, and JWT access
// tokens. With Upstream set it acts as an OAuth proxy: authorize hands the
// browser to the inner identity provider with its own state, PKCE and
// callback, and issues its own code when the provider's code comes back.
type AuthServer struct {
	Issuer          func() string // public issuer, no trailing slash
	DefaultResource func() string // audience when the client sends no resource
	Key             []byte
	Faults          ASFaults
	AutoApprove     bool // skip the consent page (an already consented user)
	Upstream        *Upstream
	// Client is used for the server-to-server token call to Upstream.
	Client *http.Client
	// IDJAG is the enterprise identity provider's key the authorization
	// server trusts for ID-JAG assertions (jwt-bearer grants); nil: none.
	IDJAG *ecdsa.PublicKey

	mu       sync.Mutex
	clients  map[string]*registeredClient
	pending  map[string]*authRequest // consent transaction id -> request
	inner    map[string]*authRequest // inner state -> the client's request (proxy mode)
	codes    map[string]*grant
	refreshT map[string]*grant
	nonce    string // the DPoP nonce (Faults.DPoPNonce)
}

// Upstream is the inner identity provider an OAuth proxy hands users to.
type Upstream struct {
	Issuer   func() string // public base of the provider (its /oauth/* endpoints)
	ClientID string
}

type registeredClient struct {
	ID           string   `json:"client_id"`
	Name         string   `json:"client_name,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
	Secret       string   `json:"-"` // client_secret_post clients (the workload profile)
	Workload     bool     `json:"-"` // registered for client_credentials only
	// AssertKey verifies the private_key_jwt assertions of a client known by
	// its client ID metadata document (from the document's jwks).
	AssertKey *ecdsa.PublicKey `json:"-"`
}

type authRequest struct {
	ClientID      string
	RedirectURI   string
	State         string
	HasState      bool
	Challenge     string
	Method        string
	Scope         string
	Resource      string
	InnerVerifier string // proxy mode: our own PKCE verifier towards the provider
}

type grant struct {
	req     authRequest
	issued  time.Time
	used    bool
	subject string
	jkt     string // the DPoP key the tokens are bound to ("" = Bearer)
}

// NewAuthServer returns an authorization server with an empty client store.
func NewAuthServer(issuer, defaultResource func() string, key []byte) *AuthServer {
	return &AuthServer{
		Issuer: issuer, DefaultResource: defaultResource, Key: key,
		clients: map[string]*registeredClient{}, pending: map[string]*authRequest{},
		inner: map[string]*authRequest{}, codes: map[string]*grant{}, refreshT: map[string]*grant{},
	}
}

// RegisterStatic adds a pre-registered client (used for the OAuth proxy's
// client at the inner provider).
func (as *AuthServer) RegisterStatic(id string, redirectURIs ...string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.clients[id] = &registeredClient{ID: id, Name: id, RedirectURIs: redirectURIs}
}

// Mount adds the server's endpoints to mux.
func (as *AuthServer) Mount(mux *http.ServeMux) {
	if !as.Faults.NoMetadata {
		mux.HandleFunc("GET /.well-known/oauth-authorization-server", as.metadata(false))
		mux.HandleFunc("GET /.well-known/openid-configuration", as.metadata(true))
	}
	mux.HandleFunc("POST /oauth/register", as.register)
	mux.HandleFunc("GET "+authorizeEndpointPath, as.authorize)
	mux.HandleFunc("POST /oauth/consent", as.consent)
	mux.HandleFunc("GET /oauth/idp/callback", as.upstreamCallback)
	mux.HandleFunc("POST "+tokenEndpointPath, as.token)
}

func (as *AuthServer) metadata(oidc bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		iss := as.Issuer()
		advertised := as.advertisedIssuer()
		m := map[string]any{
			"authorization_response_iss_parameter_supported": true,
			"issuer":                                advertised,
			"authorization_endpoint":                iss + authorizeEndpointPath,
			"token_endpoint":                        iss + tokenEndpointPath,
			"registration_endpoint":                 iss + "/oauth/register",
			"response_types_supported":              []string{"code"},
			"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"token_endpoint_auth_methods_supported": as.authMethods(),
			"client_id_metadata_document_supported": true,
			"dpop_signing_alg_values_supported":     []string{"ES256"},
			"scopes_supported":                      []string{defaultScope},
		}
		if !as.Faults.NoS256 {
			m["code_challenge_methods_supported"] = []string{"S256"}
		}
		if oidc {
			m["subject_types_supported"] = []string{"public"}
			m["id_token_signing_alg_values_supported"] = []string{"HS256"}
		}
		writeJSON(w, http.StatusOK, m)
	}
}

func (as *AuthServer) register(w http.ResponseWriter, r *http.Request) {
	var md struct {
		ClientName      string   `json:"client_name"`
		RedirectURIs    []string `json:"redirect_uris"`
		GrantTypes      []string `json:"grant_types"`
		AuthMethod      string   `json:"token_endpoint_auth_method"`
		ApplicationType string   `json:"application_type"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&md); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "body is not JSON: "+err.Error())
		return
	}
	workload := len(md.GrantTypes) == 1 && (md.GrantTypes[0] == "client_credentials" || md.GrantTypes[0] == "urn:ietf:params:oauth:grant-type:jwt-bearer")
	if len(md.RedirectURIs) == 0 && !workload {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, u := range md.RedirectURIs {
		if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
			oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "not an absolute URL: "+u)
			return
		}
	}
	if as.Faults.WebDefault && md.ApplicationType == "" {
		// OpenID Connect Registration §2: application_type defaults to web,
		// and web clients may not use http or custom-scheme redirects.
		for _, u := range md.RedirectURIs {
			if !strings.HasPrefix(u, "https://") {
				oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "web clients must use https redirect URIs: "+u)
				return
			}
		}
	}
	c := &registeredClient{ID: "lab_" + randHex(12), Name: md.ClientName, RedirectURIs: md.RedirectURIs, Workload: workload}
	method := "none"
	if md.AuthMethod == "client_secret_post" {
		c.Secret, method = randB64URL(24), md.AuthMethod
	}
	as.mu.Lock()
	if as.Faults.MaxClients > 0 && len(as.clients) >= as.Faults.MaxClients {
		as.mu.Unlock()
		w.Header().Set("Retry-After", "3600")
		oauthError(w, http.StatusTooManyRequests, "too_many_requests", "client registration quota reached")
		return
	}
	as.clients[c.ID] = c
	as.mu.Unlock()
	grants := md.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"}
	}
	resp := map[string]any{
		"client_id": c.ID, "client_id_issued_at": time.Now().Unix(), "client_name": c.Name,
		"redirect_uris": c.RedirectURIs, "grant_types": grants, "response_types": []string{"code"},
		"token_endpoint_auth_method": method,
	}
	if workload {
		resp["redirect_uris"], resp["response_types"] = []string{}, []string{}
	}
	if c.Secret != "" {
		resp["client_secret"] = c.Secret
	}
	status := http.StatusCreated
	if as.Faults.Register200 {
		status = http.StatusOK // RFC 7591 §3.2.1 says 201
	}
	writeJSON(w, status, resp)
}

func (as *AuthServer) client(id string) *registeredClient {
	as.mu.Lock()
	c := as.clients[id]
	as.mu.Unlock()
	if c == nil && !as.Faults.CIMDNoFetch && (strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://")) {
		c = as.fetchCIMD(id)
	}
	return c
}

// fetchCIMD fetches a client ID metadata document and, when it names
// itself and carries an EC P-256 key, knows the client by it.
func (as *AuthServer) fetchCIMD(id string) *registeredClient {
	hc := as.Client
	if hc == nil {
		hc = &http.Client{Transport: uaTransport{ua: userAgentLabAS, base: newTransport()}, Timeout: 30 * time.Second}
	}
	resp, err := hc.Get(id)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var doc struct {
		ClientID     string   `json:"client_id"`
		ClientName   string   `json:"client_name"`
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
		JWKS         struct {
			Keys []map[string]any `json:"keys"`
		} `json:"jwks"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) != nil || doc.ClientID != id {
		return nil
	}
	c := &registeredClient{ID: id, Name: doc.ClientName, RedirectURIs: doc.RedirectURIs}
	if doc.AuthMethod == "private_key_jwt" {
		for _, k := range doc.JWKS.Keys {
			x, _ := k["x"].(string)
			y, _ := k["y"].(string)
			xb, err1 := base64.RawURLEncoding.DecodeString(x)
			yb, err2 := base64.RawURLEncoding.DecodeString(y)
			if k["kty"] == "EC" && k["crv"] == "P-256" && err1 == nil && err2 == nil && len(xb) == 32 && len(yb) == 32 {
				if pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...)); err == nil {
					c.AssertKey = pub
				}
			}
		}
		if c.AssertKey == nil {
			return nil
		}
	}
	as.mu.Lock()
	as.clients[id] = c
	as.mu.Unlock()
	return c
}

// authMethods are the token endpoint auth methods the metadata advertises.
func (as *AuthServer) authMethods() []string {
	switch {
	case as.Faults.CIMDNoneOnly:
		return []string{"none"}
	case as.Faults.CIMDWithoutNone:
		return []string{"client_secret_post", "private_key_jwt"}
	}
	return []string{"none", "client_secret_post", "private_key_jwt"}
}

// clientAuthenticated checks a private_key_jwt client's assertion (RFC 7523
// §3: iss and sub the client, aud the token endpoint, not expired); clients
// without a key pass.
func (as *AuthServer) clientAuthenticated(f url.Values) error {
	c := as.client(f.Get("client_id"))
	if c == nil || c.AssertKey == nil {
		return nil
	}
	if as.Faults.CIMDNoneOnly {
		return errors.New("client metadata documents must use token_endpoint_auth_method none")
	}
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("private_key_jwt client without a client assertion")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(f.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return c.AssertKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID),
		jwt.WithAudience(as.Issuer()+tokenEndpointPath))
	return err
}

func (as *AuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := as.client(q.Get("client_id"))
	if c == nil {
		// Not redirectable: the client is unknown, so the redirect URI cannot be trusted.
		oauthError(w, http.StatusBadRequest, "invalid_client", "unknown client_id")
		return
	}
	ru := q.Get("redirect_uri")
	if !contains(c.RedirectURIs, ru) || as.Faults.RefuseRegisteredRedirect {
		oauthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is not registered for this client")
		return
	}
	req := &authRequest{
		ClientID: c.ID, RedirectURI: ru, Challenge: q.Get("code_challenge"),
		Method: q.Get("code_challenge_method"), Scope: q.Get("scope"), Resource: q.Get("resource"),
	}
	req.State, req.HasState = q.Get("state"), q.Has("state")
	if q.Get("response_type") != "code" {
		as.redirectError(w, r, req, "unsupported_response_type")
		return
	}
	if req.Challenge == "" || req.Method != "S256" {
		as.redirectError(w, r, req, "invalid_request")
		return
	}
	if as.Faults.StrictScopes {
		for _, sc := range strings.Fields(req.Scope) {
			if sc != defaultScope {
				as.redirectError(w, r, req, "invalid_scope")
				return
			}
		}
	}
	if as.Faults.ErrorRedirect != "" {
		loc := req.RedirectURI + querySep(req.RedirectURI) + "error=invalid_request&error_description=" + url.QueryEscape(as.Faults.ErrorRedirect) + as.stateParam(req) + as.issParam()
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusFound)
		return
	}
	if as.Upstream != nil {
		as.handToUpstream(w, r, req)
		return
	}
	if as.AutoApprove {
		as.issueCode(w, r, req)
		return
	}
	tx := randHex(16)
	as.mu.Lock()
	as.pending[tx] = req
	as.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if as.Faults.ConsentCSP != "" {
		w.Header().Set("Content-Security-Policy", as.Faults.ConsentCSP)
	}
	_ = consentPage.Execute(w, map[string]string{
		"Client": c.Name, "Resource": req.Resource, "Scope": req.Scope, "Tx": tx, "Marker": consentFormMarker,
	})
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>mcptap lab: authorize</title></head>
<body><h1>Allow {{.Client}} to use the lab MCP server?</h1>
<p>Resource: <code>{{.Resource}}</code> Scope: <code>{{.Scope}}</code></p>
<form method="post" action="/oauth/consent" class="{{.Marker}}">
<input type="hidden" name="tx" value="{{.Tx}}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>
`))

func (as *AuthServer) consent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	tx := r.PostForm.Get("tx")
	as.mu.Lock()
	req := as.pending[tx]
	delete(as.pending, tx)
	as.mu.Unlock()
	if as.Faults.LoseSession {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "<!doctype html><h1>oops! something went wrong</h1><p>invalid_request: interaction session not found</p>")
		return
	}
	if req == nil {
		http.Error(w, "no pending authorization for this consent", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("decision") != "approve" {
		as.redirectError(w, r, req, "access_denied")
		return
	}
	as.issueCode(w, r, req)
}

// handToUpstream starts the inner leg: our own state, PKCE and callback.
func (as *AuthServer) handToUpstream(w http.ResponseWriter, r *http.Request, req *authRequest) {
	innerState := randB64URL(24)
	req.InnerVerifier = randB64URL(32)
	as.mu.Lock()
	as.inner[innerState] = req
	as.mu.Unlock()
	v := url.Values{
		"response_type":         {"code"},
		"client_id":             {as.Upstream.ClientID},
		"redirect_uri":          {as.Issuer() + "/oauth/idp/callback"},
		"state":                 {innerState},
		"code_challenge":        {s256(req.InnerVerifier)},
		"code_challenge_method": {"S256"},
		"scope":                 {"openid"},
	}
	http.Redirect(w, r, as.Upstream.Issuer()+authorizeEndpointPath+"?"+v.Encode(), http.StatusFound)
}

func (as *AuthServer) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	as.mu.Lock()
	req := as.inner[q.Get("state")]
	delete(as.inner, q.Get("state"))
	as.mu.Unlock()
	if req == nil || as.Upstream == nil {
		http.Error(w, "unknown inner state", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		as.redirectError(w, r, req, e)
		return
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "client_id": {as.Upstream.ClientID},
		"redirect_uri": {as.Issuer() + "/oauth/idp/callback"}, "code_verifier": {req.InnerVerifier},
	}
	hreq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, as.Upstream.Issuer()+tokenEndpointPath, strings.NewReader(form.Encode()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", userAgentLabAS)
	hc := as.Client
	if hc == nil {
		hc = newHTTPClient(false)
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		http.Error(w, "upstream token call: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		as.redirectError(w, r, req, "server_error")
		return
	}
	as.issueCode(w, r, req)
}

// issueCode answers with the code-bearing redirect, echoing state (or not,
// or altered, as the faults say).
func (as *AuthServer) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest) {
	code := randB64URL(32)
	as.mu.Lock()
	as.codes[code] = &grant{req: *req, issued: time.Now(), subject: labUserSubject}
	as.mu.Unlock()
	loc := req.RedirectURI + querySep(req.RedirectURI) + "code=" + url.QueryEscape(code) + as.stateParam(req) + as.issParam()
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func (as *AuthServer) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, code string) {
	loc := req.RedirectURI + querySep(req.RedirectURI) + "error=" + url.QueryEscape(code) + as.stateParam(req) + as.issParam()
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusFound)
}

// advertisedIssuer is the issuer the metadata names (RFC 9207: the iss of
// every authorization response equals it).
func (as *AuthServer) advertisedIssuer() string {
	if as.Faults.IssuerTrailingSlash {
		return as.Issuer() + "/"
	}
	return as.Issuer()
}

// issParam is the RFC 9207 iss of an authorization response ("" under NoIss).
func (as *AuthServer) issParam() string {
	if as.Faults.NoIss {
		return ""
	}
	return "&iss=" + url.QueryEscape(as.advertisedIssuer())
}

func (as *AuthServer) stateParam(req *authRequest) string {
	if !req.HasState || as.Faults.DropState {
		return ""
	}
	s := req.State
	enc := url.QueryEscape(s)
	switch as.Faults.AlterState {
	case AlterPlusToSpace:
		// A framework decoded '+' as a space and re-encoded the space.
		enc = strings.ReplaceAll(enc, "%2B", "%20")
	case AlterDoubleEncoded:
		enc = url.QueryEscape(enc)
	case AlterPaddingStripped:
		enc = url.QueryEscape(strings.TrimRight(s, "="))
	case AlterTruncated:
		if len(s) > truncatedStateLength {
			enc = url.QueryEscape(s[:truncatedStateLength])
		}
	}
	return "&state=" + enc
}

func (as *AuthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "body is not form-encoded")
		return
	}
	f := r.PostForm
	if err := as.clientAuthenticated(f); err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client assertion: "+err.Error())
		return
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		as.mu.Lock()
		g := as.codes[f.Get("code")]
		if g != nil && g.used {
			as.mu.Unlock()
			oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code already used")
			return
		}
		if g != nil {
			g.used = true
		}
		as.mu.Unlock()
		switch {
		case g != nil && as.Faults.CodeTTL > 0 && time.Since(g.issued) > as.Faults.CodeTTL:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		case g == nil || time.Since(g.issued) > authCodeLifetime:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or expired authorization code")
		case f.Get("client_id") != g.req.ClientID:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code was issued to another client")
		case f.Get("redirect_uri") != g.req.RedirectURI:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		case s256(f.Get("code_verifier")) != g.req.Challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
		case f.Has("resource") && g.req.Resource != "" && f.Get("resource") != g.req.Resource:
			oauthError(w, http.StatusBadRequest, "invalid_target", "resource differs from the authorization request")
		default:
			as.issueTokens(w, g)
		}
	case "refresh_token":
		if as.Faults.NoRefresh {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "refresh_token is not supported")
			return
		}
		if as.Faults.RevokedRefresh {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token revoked")
			return
		}
		as.mu.Lock()
		g := as.refreshT[f.Get("refresh_token")]
		delete(as.refreshT, f.Get("refresh_token")) // rotation: a refresh token works once
		as.mu.Unlock()
		if g == nil || f.Get("client_id") != g.req.ClientID {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			return
		}
		as.issueTokens(w, g)
	case "client_credentials":
		c := as.client(f.Get("client_id"))
		if c == nil || c.Secret == "" || f.Get("client_secret") != c.Secret {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
			oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong client_secret")
			return
		}
		g := &grant{req: authRequest{ClientID: c.ID, Scope: f.Get("scope"), Resource: f.Get("resource")}, issued: time.Now(), subject: c.ID}
		if as.bindDPoP(w, r, g) {
			as.issueTokens(w, g)
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		// An ID-JAG (Enterprise-Managed Authorization, SEP-990): a JWT of the
		// enterprise identity provider for this authorization server, this
		// client and this resource.
		c := as.client(f.Get("client_id"))
		if c == nil || c.Secret == "" || f.Get("client_secret") != c.Secret {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong client_secret")
			return
		}
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(f.Get("assertion"), claims, func(*jwt.Token) (any, error) {
			if as.IDJAG == nil {
				return nil, errors.New("no trusted identity provider")
			}
			return as.IDJAG, nil
		}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithAudience(as.Issuer()))
		switch {
		case err != nil:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion: "+err.Error())
			return
		case tok.Header["typ"] != "oauth-id-jag+jwt":
			oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion is not an ID-JAG")
			return
		case claims["client_id"] != c.ID:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the assertion's client_id is another client")
			return
		case f.Get("resource") != "" && claims["resource"] != f.Get("resource"):
			oauthError(w, http.StatusBadRequest, "invalid_target", "the assertion's resource differs from the request's")
			return
		}
		sub, _ := claims.GetSubject()
		g := &grant{req: authRequest{ClientID: c.ID, Scope: f.Get("scope"), Resource: f.Get("resource")}, issued: time.Now(), subject: sub}
		if as.bindDPoP(w, r, g) {
			as.issueTokens(w, g)
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code, refresh_token, client_credentials or jwt-bearer")
	}
}

// dpopNonce is the token endpoint's current DPoP nonce (one per server).
func (as *AuthServer) dpopNonce() string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.nonce == "" {
		as.nonce = randB64URL(16)
	}
	return as.nonce
}

// bindDPoP binds g's tokens to the key of the request's DPoP proof, if it
// carries one; false (answered) when the proof is bad.
func (as *AuthServer) bindDPoP(w http.ResponseWriter, r *http.Request, g *grant) bool {
	proof := r.Header.Get("DPoP")
	if proof == "" {
		return true
	}
	jkt, nonce, err := verifyDPoPNonce(proof, http.MethodPost, as.Issuer()+tokenEndpointPath, "")
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", err.Error())
		return false
	}
	if as.Faults.DPoPNonce && nonce != as.dpopNonce() {
		w.Header().Set("DPoP-Nonce", as.dpopNonce())
		oauthError(w, http.StatusBadRequest, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
		return false
	}
	g.jkt = jkt
	return true
}

func (as *AuthServer) issueTokens(w http.ResponseWriter, g *grant) {
	aud := g.req.Resource
	if aud == "" && as.DefaultResource != nil {
		aud = as.DefaultResource()
	}
	scope := g.req.Scope
	if scope == "" {
		scope = defaultScope
	}
	if as.Faults.GrantOnly != "" {
		var kept []string
		for _, sc := range strings.Fields(scope) {
			if slices.Contains(strings.Fields(as.Faults.GrantOnly), sc) {
				kept = append(kept, sc)
			}
		}
		scope = strings.Join(kept, " ")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": as.Issuer(), "sub": g.subject, "aud": aud, "client_id": g.req.ClientID,
		"scope": scope, "iat": now.Unix(), "exp": now.Add(accessTokenLifetime).Unix(), "jti": randHex(8),
	}
	tokenType := "Bearer"
	if g.jkt != "" {
		claims["cnf"] = map[string]any{"jkt": g.jkt} // RFC 9449 §6.1
		tokenType = "DPoP"
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(as.Key)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	if as.Faults.OpaqueTokens {
		tok = randHex(24) // a reference token only the AS could introspect
	}
	body := map[string]any{
		"access_token": tok, "token_type": tokenType, "expires_in": int(accessTokenLifetime.Seconds()), "scope": scope,
	}
	if g.req.RedirectURI != "" && !as.Faults.NoRefreshToken {
		// An authorization-code grant gets a refresh token; client_credentials
		// does not (RFC 6749 §4.4.3).
		rt := randB64URL(32)
		as.mu.Lock()
		as.refreshT[rt] = &grant{req: g.req, issued: now, subject: g.subject, jkt: g.jkt}
		as.mu.Unlock()
		body["refresh_token"] = rt
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func querySep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return b
}

func randHex(n int) string    { return hex.EncodeToString(randBytes(n)) }
func randB64URL(n int) string { return base64.RawURLEncoding.EncodeToString(randBytes(n)) }
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
