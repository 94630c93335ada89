// Package check probes a live MCP server as a client platform would (ChatGPT,
// Claude, Claude Code, VS Code, Cursor, mcp-remote): its discovery in its
// order with its User-Agents and Accept headers, optionally its
// registration, up to the authorize request's first answer (no login is
// attempted), and an edge probe that sends the same unauthenticated MCP
// request with the User-Agent of the platform's discovery calls and with
// that of its authenticated calls.
//
// Every probe goes out through the proxy's recording Transport into a
// session of the store (source "check"), so report, replay and export open
// it like any other; the findings come from the same analysis that judges
// proxied traffic (oauth.Analyze), and a checklist line fails when a
// catalogue rule fires on the requests it covers. What no traffic rule can
// say is a check.* rule of the catalogue.
//
// Network safety: only the requests listed in Requests are sent, about a
// dozen per platform; redirects are never followed (the answer is recorded);
// HTTPS_PROXY and NO_PROXY are honoured.
package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

// Requests says, for --help, every request check may send per platform.
const Requests = `Per platform, at most:
  POST <URL> initialize without a token (and, if that is answered 2xx,
       tools/list without a token), with the platform's User-Agent
  GET  the protected resource metadata: the URL the 401 names, else the
       path-suffixed and the root /.well-known/oauth-protected-resource
  GET  the authorization server metadata: RFC 8414 and OpenID locations
       for the issuer, in the order clients try them, until one answers
  GET  the registration endpoint (is it there?), or with --register one
       POST of the platform's client metadata (this creates a client)
  GET  the authorize URL with the registered client (or with --cimd the
       platform's metadata document URL), PKCE S256, resource and a fresh
       state: its first answer only, no login
  POST <URL> initialize again with the User-Agent of the platform's
       authenticated calls (--edge)
Redirects are recorded, never followed.`

// DefaultTimeout bounds each request.
const DefaultTimeout = 20 * time.Second

// Options configures a check.
type Options struct {
	URL       string // the MCP endpoint, e.g. https://host/mcp
	Platforms []Platform
	Register  bool // perform dynamic client registration with each platform's metadata
	CIMD      bool // check that each platform's client ID metadata document would be accepted
	// Edge forces the edge probe on or off; nil keeps each platform's default.
	Edge    *bool
	Store   *recorder.Store
	Base    http.RoundTripper // nil: the proxy's upstream transport with HTTPS_PROXY honoured
	Timeout time.Duration
	Log     *slog.Logger
}

// Status is one checklist line's outcome.
type Status string

const (
	Pass         Status = "pass"
	Fail         Status = "fail"
	NA           Status = "not applicable"
	CouldNotTell Status = "could not tell"
)

// Line is one requirement of a platform's checklist.
type Line struct {
	ID       string            `json:"id"`
	Title    string            `json:"title"`
	Status   Status            `json:"status"`
	Rule     mcptap.RuleID     `json:"rule,omitempty"`
	Severity mcptap.Severity   `json:"severity,omitempty"`
	Fault    mcptap.Fault      `json:"fault,omitempty"`
	Detail   string            `json:"detail,omitempty"`
	Fix      string            `json:"fix,omitempty"`
	Evidence []mcptap.Evidence `json:"evidence,omitempty"`
}

// PlatformResult is one platform's checklist.
type PlatformResult struct {
	Platform string           `json:"platform"`
	Title    string           `json:"title"`
	Lines    []Line           `json:"lines"`
	Created  string           `json:"created_client_id,omitempty"` // --register created this client
	Other    []mcptap.Finding `json:"other_findings,omitempty"`    // findings no line covers
	Requests int              `json:"requests"`
}

// Result is a whole check run.
type Result struct {
	URL       string           `json:"url"`
	Session   string           `json:"session"`
	Started   time.Time        `json:"started"`
	Platforms []PlatformResult `json:"platforms"`
}

// Failing reports whether a line failed at or above threshold ("" or
// "never": nothing fails).
func (r *Result) Failing(threshold mcptap.Severity) bool {
	if threshold == "" || threshold == "never" {
		return false
	}
	for _, p := range r.Platforms {
		for _, l := range p.Lines {
			if l.Status == Fail && l.Severity.Rank() >= threshold.Rank() {
				return true
			}
		}
	}
	return false
}

// tagged marks every request as sent by check before the recording
// Transport sees it.
type tagged struct{ rt http.RoundTripper }

func (t tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	info := &proxy.ClientInfo{Mode: mcptap.ModeCheck, Scheme: r.URL.Scheme, Host: r.URL.Host, Target: r.URL.RequestURI(), Proto: "HTTP/1.1"}
	return t.rt.RoundTrip(r.WithContext(proxy.WithClientInfo(r.Context(), info)))
}

// Run probes opts.URL as each platform, records it as one session and
// judges it. It fails only when nothing could be recorded.
func Run(ctx context.Context, opts Options) (*Result, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("check: %q is not an http(s) URL of an MCP endpoint", opts.URL)
	}
	if opts.Store == nil || len(opts.Platforms) == 0 {
		return nil, errors.New("check: no store or no platform")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	var names []string
	for _, p := range opts.Platforms {
		names = append(names, p.Name)
	}
	now := time.Now()
	sess := mcptap.Session{ID: mcptap.NewID(now), Source: mcptap.SourceCheck, Started: now,
		Name:     fmt.Sprintf("check %s as %s", opts.URL, strings.Join(names, ", ")),
		Settings: map[string]string{"check_url": opts.URL, "check_as": strings.Join(names, ",")}}
	capture, tr, err := live.StartClient(live.ClientConfig{Store: opts.Store, Session: sess, Base: opts.Base, Log: opts.Log})
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	hc := &http.Client{Transport: tagged{tr}, Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	type span struct{ from, to uint64 }
	var spans []span
	var probes []*prober
	for _, p := range opts.Platforms {
		pr := &prober{ctx: ctx, hc: hc, p: p, url: u, opts: opts}
		from := tr.Seq()
		pr.run()
		spans = append(spans, span{from, tr.Seq()})
		probes = append(probes, pr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := capture.Stop(sctx); err != nil {
		return nil, fmt.Errorf("check: recording: %w", err)
	}
	var exs []mcptap.Exchange
	if err := opts.Store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		return nil, fmt.Errorf("check: read session %s: %w", sess.ID, err)
	}
	res := &Result{URL: opts.URL, Session: sess.ID, Started: now}
	for i, pr := range probes {
		var mine []mcptap.Exchange
		for _, ex := range exs {
			if ex.Seq > spans[i].from && ex.Seq <= spans[i].to {
				mine = append(mine, ex)
			}
		}
		res.Platforms = append(res.Platforms, pr.judge(mine))
	}
	return res, nil
}

// prober sends one platform's requests and keeps what they taught.
type prober struct {
	ctx  context.Context
	hc   *http.Client
	p    Platform
	url  *url.URL
	opts Options

	first     *answer // the unauthenticated initialize
	tools     *answer // tools/list without a token, when initialize was let through
	challenge string  // resource_metadata of the 401
	prm       map[string]any
	prmURL    string
	asm       map[string]any
	reg       *answer // registration: the reachability GET or the POST
	clientID  string
	created   string
	authz     *answer
	edge      *answer // initialize with AuthUA
	stopped   string  // why the probe could not go on ("" = it did not stop)
}

// answer is what came back for one request (err when nothing did).
type answer struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
	err         error
}

func (a *answer) ok() bool { return a != nil && a.err == nil && a.status >= 200 && a.status < 300 }

func (pr *prober) send(method, u, ua string, h map[string]string, body []byte) *answer {
	a := &answer{method: method, url: u}
	req, err := http.NewRequestWithContext(pr.ctx, method, u, bytes.NewReader(body))
	if err != nil {
		a.err = err
		return a
	}
	if body == nil {
		req.Body = http.NoBody
	}
	req.Header.Set("User-Agent", ua)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := pr.hc.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer resp.Body.Close()
	a.status, a.header = resp.StatusCode, resp.Header
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// Streamable HTTP may answer a POST with an event stream: its first
		// event holds the answer.
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	} else {
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	return a
}

func (pr *prober) rpc(ua, method, session string) *answer {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":{}}`, method)
	if method == "initialize" {
		body = fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":%q,"version":"mcptap-check"}}}`, pr.p.RegisterName)
	}
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
	if method != "initialize" {
		h["Mcp-Protocol-Version"] = "2025-11-25"
	}
	if session != "" {
		h["Mcp-Session-Id"] = session
	}
	return pr.send("POST", pr.url.String(), ua, h, []byte(body))
}

func (pr *prober) getJSON(u string) (*answer, map[string]any) {
	a := pr.send("GET", u, pr.p.DiscoveryUA, map[string]string{"Accept": "application/json"}, nil)
	var m map[string]any
	if a.ok() && json.Unmarshal(a.body, &m) == nil {
		return a, m
	}
	return a, nil
}

func (pr *prober) run() {
	pr.first = pr.rpc(pr.p.DiscoveryUA, "initialize", "")
	switch {
	case pr.first.err != nil:
		pr.stopped = "the MCP endpoint could not be reached: " + pr.first.err.Error()
		return
	case pr.first.ok():
		pr.tools = pr.rpc(pr.p.DiscoveryUA, "tools/list", pr.first.header.Get("Mcp-Session-Id"))
		if pr.tools.status != 401 {
			pr.stopped = "the server answered without asking for a token: it is not OAuth-protected"
			return
		}
		pr.challenge = oauth.ChallengeParam(pr.tools.header.Get("WWW-Authenticate"), "resource_metadata")
	case pr.first.status == 401:
		pr.challenge = oauth.ChallengeParam(pr.first.header.Get("WWW-Authenticate"), "resource_metadata")
	}
	if pr.edgeOn() {
		pr.edge = pr.rpc(pr.p.AuthUA, "initialize", "")
	}
	if pr.first.status != 401 && pr.tools == nil {
		pr.stopped = fmt.Sprintf("the MCP endpoint answered %d instead of 401", pr.first.status)
		return
	}
	// Protected resource metadata: the challenge's URL, else the
	// path-suffixed location, then the root (RFC 9728 §3.1, MCP 2025-11-25).
	cands := prmLocations(pr.p, pr.url, pr.challenge)
	for _, c := range cands {
		if _, m := pr.getJSON(c); m != nil {
			pr.prm, pr.prmURL = m, c
			break
		}
	}
	if pr.prm == nil {
		pr.stopped = "no protected resource metadata"
		return
	}
	issuer := firstString(pr.prm["authorization_servers"])
	if issuer == "" {
		pr.stopped = "the protected resource metadata names no authorization server"
		return
	}
	for _, c := range asLocations(issuer) {
		if _, m := pr.getJSON(c); m != nil {
			pr.asm = m
			break
		}
	}
	if pr.asm == nil {
		pr.stopped = "no authorization server metadata"
		return
	}
	if regEP, _ := pr.asm["registration_endpoint"].(string); regEP != "" {
		if pr.opts.Register {
			pr.reg = pr.register(regEP)
			if pr.reg.ok() {
				var r map[string]any
				_ = json.Unmarshal(pr.reg.body, &r)
				pr.clientID, _ = r["client_id"].(string)
				pr.created = pr.clientID
			}
		} else {
			pr.reg = pr.send("GET", regEP, pr.p.DiscoveryUA, map[string]string{"Accept": "application/json"}, nil)
		}
	}
	if pr.opts.CIMD && pr.p.CIMD != "" {
		pr.clientID = pr.p.CIMD
	}
	if authEP, _ := pr.asm["authorization_endpoint"].(string); authEP != "" && pr.clientID != "" {
		pr.authz = pr.send("GET", pr.authorizeURL(authEP), browserUA, map[string]string{"Accept": "text/html"}, nil)
	}
}

// browserUA opens the authorize URL: the user's browser does.
const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"

func (pr *prober) edgeOn() bool {
	if pr.opts.Edge != nil {
		return *pr.opts.Edge
	}
	return pr.p.Edge
}

func (pr *prober) register(ep string) *answer {
	m := map[string]any{
		"client_name":                pr.p.RegisterName + " (mcptap check)",
		"redirect_uris":              pr.p.RedirectURIs,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	if pr.p.ApplicationType != "" {
		m["application_type"] = pr.p.ApplicationType
	}
	if s := scopes(pr.prm); s != "" {
		m["scope"] = s
	}
	b, _ := json.Marshal(m)
	return pr.send("POST", ep, pr.p.DiscoveryUA, map[string]string{"Content-Type": "application/json", "Accept": "application/json"}, b)
}

func (pr *prober) authorizeURL(ep string) string {
	verifier := random(32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {pr.clientID},
		"redirect_uri":          {pr.p.RedirectURIs[0]},
		"state":                 {random(24)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if r, _ := pr.prm["resource"].(string); r != "" {
		q.Set("resource", r)
	}
	if s := scopes(pr.prm); s != "" {
		q.Set("scope", s)
	}
	sep := "?"
	if strings.Contains(ep, "?") {
		sep = "&"
	}
	return ep + sep + q.Encode()
}

// prmLocations are the protected resource metadata URLs the platform
// tries, in its order, until one answers: ChatGPT's as seed 000's log shows
// (path-inserted, path-appended, the challenge's, root), the others the
// challenge's first, then path-inserted and root (RFC 9728 §3.1). A
// challenge URL on an internal address is skipped when the MCP URL is not
// internal: a platform on another machine cannot reach it.
func prmLocations(p Platform, u *url.URL, challenge string) []string {
	if challenge != "" && oauth.InternalHost(challenge) && !oauth.InternalHost(u.String()) {
		challenge = ""
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.Path, "/")
	inserted, root := origin+"/.well-known/oauth-protected-resource"+path, origin+"/.well-known/oauth-protected-resource"
	var out []string
	if p.Name == "chatgpt" {
		out = []string{inserted, origin + path + "/.well-known/oauth-protected-resource", challenge, root}
	} else {
		out = []string{challenge, inserted, root}
	}
	seen := map[string]bool{"": true}
	keep := out[:0]
	for _, c := range out {
		if !seen[c] {
			seen[c] = true
			keep = append(keep, c)
		}
	}
	return keep
}

// asLocations are the authorization server metadata URLs for an issuer,
// in the order of the MCP spec (2025-11-25, "Authorization Server Metadata
// Discovery").
func asLocations(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.Path, "/")
	if p == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}
	}
	return []string{origin + "/.well-known/oauth-authorization-server" + p, origin + "/.well-known/openid-configuration" + p, origin + p + "/.well-known/openid-configuration"}
}

func scopes(prm map[string]any) string {
	var out []string
	if l, ok := prm["scopes_supported"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	return strings.Join(out, " ")
}

func firstString(v any) string {
	if l, ok := v.([]any); ok && len(l) > 0 {
		s, _ := l[0].(string)
		return s
	}
	return ""
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// analyse judges the platform's exchanges with the traffic rules.
func analyse(exs []mcptap.Exchange) (*oauth.Tracker, []mcptap.Finding) {
	t := oauth.Batch(exs, oauth.Options{})
	return t, t.Findings()
}
