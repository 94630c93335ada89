package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

// Secrets planted in every spelling a recording holds (issue 16) must not
// survive in anything mcptap exports or prints: every report format, the
// HAR export and the line view. Each secret is searched in every encoding
// it could take there: raw, percent-encoded, JSON-escaped (with "\/"), and
// base64 of the raw value.
func TestNoSecretSurvivesAnyOutput(t *testing.T) {
	tempHome(t)
	const (
		code     = "AC/code+with=chars-0123456789"                          // '/', '+', '=': percent- and JSON-escaped differently
		access   = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl/x+y" // JSON-escaped as \/ by some servers
		camel    = "camelCaseAccessToken-9f8e7d6c5b4a"                      // a JSON "accessToken" member
		refresh  = "refresh-in-a-form-without-content-type-42"
		secret   = "client secret with spaces & symbols"
		verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		gzipped  = "refresh-token-inside-a-gzip-body-77"
		cut      = "eyJ0cnVuY2F0ZWQiOnRydWV9.cut-off-by-the-body-cap-token"
		cookie   = "session-cookie-value-31337"
	)
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	n := 0
	ex := func(method, target string, reqH http.Header, reqB string, status int, respH http.Header, respB []byte) mcptap.Exchange {
		n++
		at := t0.Add(time.Duration(n) * time.Second)
		return mcptap.Exchange{ID: mcptap.NewID(at), Mode: mcptap.ModeReverse, Start: at, ResponseAt: at.Add(time.Millisecond), End: at.Add(2 * time.Millisecond),
			Method: method, Scheme: "https", Host: "mcp.example.com", Target: target, Proto: "HTTP/1.1",
			ReqHeader: reqH, ReqBody: []byte(reqB), ReqSize: int64(len(reqB)), Status: status, RespHeader: respH,
			RespBody: respB, RespSize: int64(len(respB)), Complete: true}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"access_token":"x-short-1","refresh_token":"` + gzipped + `"}`))
	zw.Close()
	escaped, _ := json.Marshal(access)
	truncatedBody := []byte(`{"token_type":"Bearer","access_token":"` + cut)[:64]
	exs := []mcptap.Exchange{
		ex("GET", "/authorize?response_type=code&client_id=c1&state=st4te-visible&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect",
			http.Header{}, "", 302, http.Header{"Location": {"https://chatgpt.com/connector_platform_oauth_redirect?code=" + url.QueryEscape(code) + "&state=st4te-visible"}}, nil),
		// no Content-Type: the form is still read for its secrets
		ex("POST", "/token", http.Header{"Cookie": {"sid=" + cookie}},
			"grant_type=authorization_code&code="+url.QueryEscape(code)+"&code_verifier="+verifier+"&client_secret="+url.QueryEscape(secret)+"&refresh_token="+refresh,
			200, http.Header{"Content-Type": {"application/json"}},
			[]byte(`{"access_token":"`+strings.Trim(strings.ReplaceAll(string(escaped), "/", `\/`), `"`)+`","accessToken":"`+camel+`","token_type":"Bearer"}`)),
		ex("POST", "/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "grant_type=refresh_token&refresh_token="+refresh,
			200, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, gz.Bytes()),
		ex("POST", "/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "grant_type=authorization_code&code="+url.QueryEscape(code),
			200, http.Header{"Content-Type": {"application/json"}}, truncatedBody),
		ex("POST", "/mcp", http.Header{"Authorization": {"Bearer " + access}, "Content-Type": {"application/json"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)),
		ex("GET", "/cb?accessToken="+url.QueryEscape(camel), http.Header{}, "", 200, http.Header{}, nil),
	}
	exs[3].RespTruncated, exs[3].RespSize = true, 300
	harPath := filepath.Join(t.TempDir(), "secrets.har")
	f, err := os.Create(harPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := har.Write(f, mcptap.Session{ID: "planted", Source: mcptap.SourceImport, Name: "secrets.har", Started: t0}, exs, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, errs, code := runCmd(t, "import", harPath); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}

	outputs := map[string]string{}
	for _, format := range []string{"text", "markdown", "json", "html", "junit", "sarif"} {
		out, errs, code := runCmd(t, "report", harPath, "--format", format, "--fail-on", "never")
		if code != 0 {
			t.Fatalf("report --format %s: exit %d: %s", format, code, errs)
		}
		outputs["report "+format] = out + errs
	}
	exported := filepath.Join(t.TempDir(), "out.har")
	if _, errs, code := runCmd(t, "export", "--har", exported); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	b, _ := os.ReadFile(exported)
	outputs["export"] = string(b)
	out, errs, _ := runCmd(t, "replay", "--no-tui")
	outputs["line view"] = out + errs

	for _, s := range []string{code, access, camel, refresh, secret, verifier, gzipped, cut[:40], cookie} {
		j, _ := json.Marshal(s)
		forms := map[string]string{"raw": s, "query-escaped": url.QueryEscape(s), "path-escaped": url.PathEscape(s),
			"json": strings.Trim(string(j), `"`), "json \\/": strings.ReplaceAll(strings.Trim(string(j), `"`), "/", `\/`),
			"base64": base64.StdEncoding.EncodeToString([]byte(s)), "base64url": base64.RawURLEncoding.EncodeToString([]byte(s))}
		for where, text := range outputs {
			for enc, form := range forms {
				if strings.Contains(text, form) {
					t.Errorf("%s shows the secret %q (%s)", where, s, enc)
				}
			}
		}
	}
	for where, text := range outputs {
		if where != "line view" && where != "report sarif" && !strings.Contains(text, "st4te-visible") {
			t.Errorf("%s hides the state, which must stay readable", where)
		}
	}
}
