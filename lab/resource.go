package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ResourceFaults are the MCP server's switchable faults.
type ResourceFaults struct {
	NoChallenge       bool // 401 without WWW-Authenticate
	PRMRootOnly       bool // the path-suffixed metadata 404s; only the root document exists
	PRMInternalOrigin bool // PRM resource names the server's own (internal) address
	AudienceOrigin    bool // bearer check compares aud with the origin only (drops the /mcp path)
	RedirectMCP       bool // authenticated MCP requests get a 308 to /mcp/
	// EdgeBlockUA: an edge in front of the server (Cloudflare's AI-bot
	// rule) answers requests whose User-Agent contains it with its block page.
	EdgeBlockUA string
	// Interstitial: the tunnel in front shows its browser warning page
	// (ngrok's) to API clients on the metadata documents.
	Interstitial bool
	// AdminScope: a tools/call of the admin tool needs the scope "admin"
	// too; without it the server answers 403 insufficient_scope (step-up).
	AdminScope bool
	// LazyAuth: initialize is answered without a token (and a session
	// starts); only the later calls ask for one.
	LazyAuth bool
	// RootPRMOrigin: the root metadata document (without the path
	// suffix) names the origin as its resource, the path-suffixed one the
	// MCP URL.
	RootPRMOrigin bool
	// ChallengeInternal: the 401's resource_metadata names the server's
	// own (internal) address, BASE_URL left at localhost.
	ChallengeInternal bool
	// Expiring: tokens count as expired once Expire was called (the
	// user comes back after the token's lifetime, without waiting it out).
	Expiring bool
	// HostCheck: authenticated MCP requests get 403 "Invalid Host header",
	// the DNS-rebinding protection that refuses the tunnel's Host.
	HostCheck bool
	// LegacyProtocol: initialize is answered with 2024-11-05, the old
	// HTTP+SSE transport's version, whatever the client asked; a GET of
	// the endpoint (that transport's stream) is answered 405.
	LegacyProtocol bool
}

// ResourceServer is the MCP server as an OAuth resource server.
type ResourceServer struct {
	Public   func() string // public origin, e.g. http://127.0.0.1:8780
	Internal func() string // the lab's own origin, named by the internal-origin fault
	Issuers  func() []string
	Key      []byte
	Faults   ResourceFaults
	// Verify, when set, checks bearer tokens instead of the lab's own HS256
	// check: tokens of a third-party authorization server in the peer tests.
	Verify func(tok string) (jwt.MapClaims, error)
	mcp    http.Handler
	// expiredBefore: tokens issued before this Unix second are expired
	// (Faults.Expiring and Expire); 0: none.
	expiredBefore atomic.Int64
}

// Expire makes every token issued so far expired, as if its lifetime had
// passed (Faults.Expiring).
func (rs *ResourceServer) Expire() { rs.expiredBefore.Store(time.Now().Unix() + 1) }

// NewResourceServer builds the MCP server with its tools.
func NewResourceServer(public, internal func() string, issuers func() []string, key []byte) *ResourceServer {
	srv := mcp.NewServer(&mcp.Implementation{Name: "mcptap-lab", Version: "1.0.0"}, nil)
	addTools(srv)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	return &ResourceServer{Public: public, Internal: internal, Issuers: issuers, Key: key, mcp: h}
}

// Resource is the canonical resource identifier the server advertises.
func (rs *ResourceServer) Resource() string {
	if rs.Faults.PRMInternalOrigin {
		return rs.Internal() + "/mcp"
	}
	return rs.Public() + "/mcp"
}

// expectedAudience is what the bearer check compares aud with.
func (rs *ResourceServer) expectedAudience() string {
	if rs.Faults.AudienceOrigin {
		return strings.TrimSuffix(rs.Resource(), "/mcp")
	}
	return rs.Resource()
}

func (rs *ResourceServer) prmURL() string {
	base := rs.Public()
	if rs.Faults.ChallengeInternal {
		base = rs.Internal()
	}
	if rs.Faults.PRMRootOnly {
		return base + "/.well-known/oauth-protected-resource"
	}
	return base + "/.well-known/oauth-protected-resource/mcp"
}

// Mount adds the metadata documents and the protected MCP endpoint to mux.
func (rs *ResourceServer) Mount(mux *http.ServeMux) {
	prm := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		writeJSON(w, http.StatusOK, map[string]any{
			"resource":                 rs.Resource(),
			"authorization_servers":    rs.Issuers(),
			"scopes_supported":         []string{defaultScope},
			"bearer_methods_supported": []string{"header"},
			"resource_name":            "mcptap lab MCP server",
		})
	}
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", func(w http.ResponseWriter, r *http.Request) {
		if rs.Faults.RootPRMOrigin {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			writeJSON(w, http.StatusOK, map[string]any{
				"resource": origin(rs.Resource()), "authorization_servers": rs.Issuers(),
				"scopes_supported": []string{defaultScope}, "bearer_methods_supported": []string{"header"},
			})
			return
		}
		prm(w, r)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		if rs.Faults.PRMRootOnly {
			http.NotFound(w, r)
			return
		}
		prm(w, r)
	})
	var h http.Handler = rs.mcp
	if rs.Faults.LegacyProtocol {
		h = legacyAnswers(h)
	}
	protected := rs.requireBearer(h)
	mux.Handle("/mcp", protected)
	mux.Handle("/mcp/{$}", protected) // the redirect fault's target, nothing below it
}

type subjectKey struct{}

func (rs *ResourceServer) requireBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if (scheme != "Bearer" && scheme != "DPoP") || tok == "" {
			if rs.Faults.LazyAuth && r.Method == http.MethodPost {
				b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				r.Body = io.NopCloser(bytes.NewReader(b))
				if bytes.Contains(b, []byte(`"method":"initialize"`)) {
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"mcptap-lab","version":"1.0.0"}}}`)
					return
				}
			}
			rs.challenge(w, "")
			return
		}
		claims, err := rs.verify(tok)
		if err != nil {
			rs.challenge(w, err.Error())
			return
		}
		// A DPoP-bound token (cnf.jkt) goes with the DPoP scheme and a proof
		// by its key for this request (RFC 9449 §7.1); a Bearer token with Bearer.
		cnf, _ := claims["cnf"].(map[string]any)
		jkt, _ := cnf["jkt"].(string)
		switch {
		case jkt == "" && scheme == "DPoP", jkt != "" && scheme != "DPoP":
			rs.challenge(w, "token sent with the wrong scheme for its binding")
			return
		case jkt != "":
			got, err := verifyDPoP(r.Header.Get("DPoP"), r.Method, rs.Public()+r.URL.Path, tok)
			if err != nil || got != jkt {
				rs.challenge(w, fmt.Sprintf("DPoP proof does not match the token's key: %v", err))
				return
			}
		}
		if rs.Faults.HostCheck {
			http.Error(w, "Forbidden: Invalid Host header", http.StatusForbidden)
			return
		}
		if rs.Faults.RedirectMCP && r.URL.Path == "/mcp" {
			// An edge that insists on a trailing slash; 308 keeps method and body.
			http.Redirect(w, r, "/mcp/", http.StatusPermanentRedirect)
			return
		}
		if rs.Faults.AdminScope && r.Method == http.MethodPost {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(b))
			var call struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
				} `json:"params"`
			}
			scope, _ := claims["scope"].(string)
			if json.Unmarshal(b, &call) == nil && call.Method == "tools/call" && call.Params.Name == adminTool && !slices.Contains(strings.Fields(scope), "admin") {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q, resource_metadata=%q, error_description="the admin tool needs the admin scope"`, defaultScope+" admin", rs.prmURL()))
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope"})
				return
			}
		}
		sub, _ := claims.GetSubject()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), subjectKey{}, sub)))
	})
}

func (rs *ResourceServer) verify(tok string) (jwt.MapClaims, error) {
	if rs.Verify != nil {
		return rs.Verify(tok)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return rs.Key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
		jwt.WithAudience(rs.expectedAudience()), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("token rejected: %w", err)
	}
	iss, _ := claims.GetIssuer()
	if !contains(rs.Issuers(), iss) {
		return nil, errors.New("token rejected: unknown issuer")
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil && rs.Faults.Expiring && iat.Unix() < rs.expiredBefore.Load() {
		return nil, errors.New("token rejected: token is expired")
	}
	return claims, nil
}

func (rs *ResourceServer) challenge(w http.ResponseWriter, reason string) {
	if !rs.Faults.NoChallenge {
		v := fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, rs.prmURL(), defaultScope)
		if reason != "" {
			v = fmt.Sprintf(`Bearer error="invalid_token", error_description=%q, resource_metadata=%q`, reason, rs.prmURL())
		}
		w.Header().Set("WWW-Authenticate", v)
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
}

type echoIn struct {
	Text string `json:"text" jsonschema:"text to echo back"`
}
type addIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}
type countIn struct {
	To int `json:"to" jsonschema:"count from 1 to this number, one progress notification each"`
}
type textOut struct {
	Text string `json:"text"`
}

func addTools(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "Echo the text back."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, textOut, error) {
			return text(in.Text), textOut(in), nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "add", Description: "Add two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, textOut, error) {
			return text(fmt.Sprint(in.A + in.B)), textOut{Text: fmt.Sprint(in.A + in.B)}, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "whoami", Description: "Say which user the bearer token belongs to."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, textOut, error) {
			sub, _ := ctx.Value(subjectKey{}).(string)
			return text(sub), textOut{Text: sub}, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "count", Description: "Count slowly, streaming a progress notification per step over SSE."},
		func(ctx context.Context, req *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, textOut, error) {
			n := min(max(in.To, 1), 20)
			tokenValue := req.Params.GetProgressToken()
			for i := 1; i <= n; i++ {
				if tokenValue != nil {
					if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: tokenValue, Progress: float64(i), Total: float64(n), Message: fmt.Sprintf("step %d of %d", i, n),
					}); err != nil {
						return nil, textOut{}, fmt.Errorf("notify progress: %w", err)
					}
				}
				select {
				case <-ctx.Done():
					return nil, textOut{}, ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
			return text(fmt.Sprintf("counted to %d", n)), textOut{Text: fmt.Sprintf("counted to %d", n)}, nil
		})
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// origin returns scheme://host of u.
func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Scheme + "://" + p.Host
}

// adminTool is the tool the AdminScope fault guards.
const adminTool = "admin_report"

var protocolVersionRE = regexp.MustCompile(`"protocolVersion":"[0-9-]+"`)

// legacyAnswers makes the MCP server answer initialize with the HTTP+SSE
// transport's protocol version and refuse a GET of the endpoint, as a
// server that did not move to Streamable HTTP's versions does.
func legacyAnswers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Allow", "POST, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte(`"initialize"`)) {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		out := protocolVersionRE.ReplaceAll(rec.Body.Bytes(), []byte(`"protocolVersion":"2024-11-05"`))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(out)
	})
}
