package lab

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// BrowserOriginInspector is where MCP Inspector's web app runs: a client
// whose every call to the server and the authorization server is a
// cross-origin fetch from this page.
const BrowserOriginInspector = "http://localhost:6274"

// withCORS answers CORS as a server that serves browser-based clients does:
// preflights get 204 with what MCP and OAuth send (Authorization,
// Content-Type, Mcp-Protocol-Version, Mcp-Session-Id, DPoP), answers carry
// Access-Control-Allow-Origin and expose WWW-Authenticate and
// Mcp-Session-Id. Paths for which refuse says so are left to h, which
// then answers the preflight as a server without CORS does (405).
func withCORS(h http.Handler, refuse func(path string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || refuse(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Mcp-Protocol-Version, Mcp-Session-Id, Last-Event-ID, DPoP")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// corsTransport is a web page's fetch: requests to another origin carry
// Origin, a request that is not CORS-simple is preflighted first (OPTIONS
// with Access-Control-Request-Method and -Headers), and an answer the
// server did not allow for this origin is an error, as the browser makes it.
type corsTransport struct {
	origin string
	base   http.RoundTripper
}

// headers the browser sets itself, never named in a preflight.
var browserOwned = []string{"user-agent", "accept-encoding", "content-length", "host", "origin", "connection"}

func (c corsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme+"://"+r.URL.Host == c.origin {
		return c.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Origin", c.origin)
	var named []string
	for k := range r.Header {
		k = strings.ToLower(k)
		if slices.Contains(browserOwned, k) || k == "accept" || k == "accept-language" || k == "content-language" {
			continue
		}
		if k == "content-type" && isSimpleContentType(r.Header.Get("Content-Type")) {
			continue
		}
		named = append(named, k)
	}
	slices.Sort(named)
	simpleMethod := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodPost
	if !simpleMethod || len(named) > 0 {
		pre, err := http.NewRequestWithContext(r.Context(), http.MethodOptions, r.URL.String(), nil)
		if err != nil {
			return nil, err
		}
		pre.Header.Set("Origin", c.origin)
		pre.Header.Set("Access-Control-Request-Method", r.Method)
		if len(named) > 0 {
			pre.Header.Set("Access-Control-Request-Headers", strings.Join(named, ","))
		}
		resp, err := c.base.RoundTrip(pre)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if why := preflightRefused(resp, c.origin, r.Method, named); why != "" {
			return nil, fmt.Errorf("CORS: the preflight for %s %s from %s was refused: %s", r.Method, r.URL, c.origin, why)
		}
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "*" && acao != c.origin {
		resp.Body.Close()
		return nil, fmt.Errorf("CORS: %s %s answered without Access-Control-Allow-Origin for %s", r.Method, r.URL, c.origin)
	}
	return resp, nil
}

func isSimpleContentType(ct string) bool {
	ct, _, _ = strings.Cut(strings.ToLower(ct), ";")
	switch strings.TrimSpace(ct) {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

// preflightRefused says why a preflight answer does not allow the request.
func preflightRefused(resp *http.Response, origin, method string, headers []string) string {
	if resp.StatusCode/100 != 2 {
		return fmt.Sprintf("it was answered %d", resp.StatusCode)
	}
	if acao := resp.Header.Get("Access-Control-Allow-Origin"); acao != "*" && acao != origin {
		return "no Access-Control-Allow-Origin for " + origin
	}
	methods := strings.ToUpper(resp.Header.Get("Access-Control-Allow-Methods"))
	if method != http.MethodGet && method != http.MethodHead && method != http.MethodPost && !strings.Contains(methods, method) && methods != "*" {
		return "method " + method + " not allowed"
	}
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range headers {
		if allowed != "*" && !slices.Contains(strings.Split(strings.ReplaceAll(allowed, " ", ""), ","), h) {
			return "header " + h + " not allowed"
		}
	}
	return ""
}
