package live

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/redact"
)

// compress encodes b as coding (gzip or br).
func compress(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Regression (issue 12, "bodies as they crossed the wire"): a token response
// and metadata sent with Content-Encoding were analysed compressed (a gzip'd
// token response read as token.bad-response), and a redacted export kept the
// tokens inside the compressed bytes in clear. A real server on loopback
// answers every body compressed, a client walks the OAuth flow through the
// real proxy, and the recording is analysed and exported.
func TestCompressedBodiesAnalysedAndRedacted(t *testing.T) {
	for _, coding := range []string{"gzip", "br"} {
		t.Run(coding, func(t *testing.T) {
			const access = "at-SECRET-0123456789abcdefghijklmnop"
			const refresh = "rt-SECRET-9876543210zyxwvutsrqponm"
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				send := func(status int, ctype, body string) {
					w.Header().Set("Content-Type", ctype)
					w.Header().Set("Content-Encoding", coding)
					w.WriteHeader(status)
					w.Write(compress(t, coding, []byte(body)))
				}
				switch r.URL.Path {
				case "/mcp":
					if r.Header.Get("Authorization") != "Bearer "+access {
						w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource"`)
						send(401, "application/json", `{"error":"unauthorized"}`)
						return
					}
					send(200, "application/json", `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x","version":"1"}}}`)
				case "/.well-known/oauth-protected-resource":
					send(200, "application/json", fmt.Sprintf(`{"resource":%q,"authorization_servers":[%q]}`, base+"/mcp", base))
				case "/.well-known/oauth-authorization-server":
					send(200, "application/json", fmt.Sprintf(`{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"registration_endpoint":%q,"response_types_supported":["code"],"code_challenge_methods_supported":["S256"]}`,
						base, base+"/authorize", base+"/token", base+"/register"))
				case "/authorize":
					q := r.URL.Query()
					http.Redirect(w, r, q.Get("redirect_uri")+"?code=c0de-1234567890&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
				case "/token":
					send(200, "application/json", fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":%q}`, access, refresh))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			up, _ := url.Parse(srv.URL)
			s, _ := openStore(t)
			defer s.Close()
			c := start(t, s, up, nil)
			base = "http://" + c.Addrs()[0]
			cl := &http.Client{
				Transport:     &http.Transport{DisableCompression: true},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			do := func(method, path, ctype, body, bearer string) {
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				req.Header.Set("User-Agent", "node")
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`
			verifier := "v3rifier-v3rifier-v3rifier-v3rifier-v3rifier"
			do("POST", "/mcp", "application/json", init, "")
			do("GET", "/.well-known/oauth-protected-resource", "", "", "")
			do("GET", "/.well-known/oauth-authorization-server", "", "", "")
			do("GET", "/authorize?response_type=code&client_id=c1&redirect_uri="+url.QueryEscape("http://127.0.0.1:33418/callback")+
				"&state=st4te-abc&code_challenge="+oauth.S256(verifier)+"&code_challenge_method=S256&resource="+url.QueryEscape(base+"/mcp"), "", "", "")
			do("POST", "/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=c0de-1234567890&client_id=c1&redirect_uri="+
				url.QueryEscape("http://127.0.0.1:33418/callback")+"&code_verifier="+verifier+"&resource="+url.QueryEscape(base+"/mcp"), "")
			do("POST", "/mcp", "application/json", init, access)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			var exs []mcptap.Exchange
			if err := s.Exchanges(c.Session().ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
				t.Fatal(err)
			}
			// The recording keeps the bytes as they crossed the wire.
			for _, ex := range exs {
				if strings.HasSuffix(ex.Target, "/token") && bytes.Contains(ex.RespBody, []byte(access)) {
					t.Fatalf("the recorded token response is not the compressed bytes")
				}
			}
			flows, findings := oauth.Analyze(exs, oauth.Options{})
			for _, fd := range findings {
				if fd.Severity != mcptap.SevInfo {
					t.Errorf("finding on a healthy compressed flow: %s %s", fd.Rule, fd.Detail)
				}
			}
			if len(flows) != 1 || flows[0].Verdict.Rule != mcptap.RuleOK || flows[0].Status != mcptap.FlowComplete {
				t.Errorf("flows: %+v", flows)
			}
			var out bytes.Buffer
			if err := har.Write(&out, c.Session(), exs, redact.New(nil)); err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{access, refresh, "c0de-1234567890", verifier} {
				if bytes.Contains(out.Bytes(), []byte(secret)) {
					t.Errorf("redacted export holds %q in clear", secret)
				}
			}
			if !bytes.Contains(out.Bytes(), []byte("‹redacted:len=")) || !bytes.Contains(out.Bytes(), []byte("X-Mcptap-Decoded")) {
				t.Errorf("export did not write the decoded, redacted token body:\n%.2000s", out.String())
			}
		})
	}
}
