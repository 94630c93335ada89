package oauthtest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// Planted secrets: values that grant access, written the ways real traffic
// writes them, for tests that search every output for any of them.
const (
	SecretCode     = "AC/code+with=chars-0123456789"                          // '/', '+', '=': percent- and JSON-escaped differently
	SecretAccess   = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl/x+y" // JSON-escaped as \/ by some servers
	SecretCamel    = "camelCaseAccessToken-9f8e7d6c5b4a"                      // a JSON "accessToken" member
	SecretRefresh  = "refresh-in-a-form-without-content-type-42"
	SecretClient   = "client secret with spaces & symbols"
	SecretVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	SecretGzipped  = "refresh-token-inside-a-gzip-body-77"
	SecretCut      = "eyJ0cnVuY2F0ZWQiOnRydWV9.cut-off-by-the-body-cap-token"
	SecretCookie   = "session-cookie-value-31337"
)

// PlantedState is the state of the planted flow: it must stay readable.
const PlantedState = "st4te-visible"

// PlantedSecrets is what PlantedExchanges carry that no output may show
// (Cut only as far as a 64-byte body cap keeps it).
var PlantedSecrets = []string{SecretCode, SecretAccess, SecretCamel, SecretRefresh, SecretClient, SecretVerifier, SecretGzipped, SecretCut[:40], SecretCookie}

// PlantedExchanges are an authorization-code flow and a refresh whose
// secrets sit in every place and encoding the lab and the HAR corpus
// produce: a query, a Location header, a form without a Content-Type, JSON
// with escaped slashes and a camelCase member, a gzip'd body, a body cut by
// the body cap, a cookie and an Authorization header.
func PlantedExchanges() []mcptap.Exchange {
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
	zw.Write([]byte(`{"access_token":"x-short-1","refresh_token":"` + SecretGzipped + `"}`))
	zw.Close()
	escaped, _ := json.Marshal(SecretAccess)
	truncatedBody := []byte(`{"token_type":"Bearer","access_token":"` + SecretCut)[:64]
	exs := []mcptap.Exchange{
		ex("GET", "/authorize?response_type=code&client_id=c1&state=st4te-visible&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect",
			http.Header{}, "", 302, http.Header{"Location": {"https://chatgpt.com/connector_platform_oauth_redirect?code=" + url.QueryEscape(SecretCode) + "&state=st4te-visible"}}, nil),
		// no Content-Type: the form is still read for its secrets
		ex("POST", "/token", http.Header{"Cookie": {"sid=" + SecretCookie}},
			"grant_type=authorization_code&code="+url.QueryEscape(SecretCode)+"&code_verifier="+SecretVerifier+"&client_secret="+url.QueryEscape(SecretClient)+"&refresh_token="+SecretRefresh,
			200, http.Header{"Content-Type": {"application/json"}},
			[]byte(`{"access_token":"`+strings.Trim(strings.ReplaceAll(string(escaped), "/", `\/`), `"`)+`","accessToken":"`+SecretCamel+`","token_type":"Bearer"}`)),
		ex("POST", "/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "grant_type=refresh_token&refresh_token="+SecretRefresh,
			200, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, gz.Bytes()),
		ex("POST", "/token", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "grant_type=authorization_code&code="+url.QueryEscape(SecretCode),
			200, http.Header{"Content-Type": {"application/json"}}, truncatedBody),
		ex("POST", "/mcp", http.Header{"Authorization": {"Bearer " + SecretAccess}, "Content-Type": {"application/json"}}, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
			200, http.Header{"Content-Type": {"application/json"}}, []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)),
		ex("GET", "/cb?accessToken="+url.QueryEscape(SecretCamel), http.Header{}, "", 200, http.Header{}, nil),
	}
	exs[3].RespTruncated, exs[3].RespSize = true, 300
	return exs
}

// SecretForms are the spellings of s an output could hold it in.
func SecretForms(s string) map[string]string {
	j, _ := json.Marshal(s)
	return map[string]string{"raw": s, "query-escaped": url.QueryEscape(s), "path-escaped": url.PathEscape(s),
		"json": strings.Trim(string(j), `"`), "json \\/": strings.ReplaceAll(strings.Trim(string(j), `"`), "/", `\/`),
		"base64": base64.StdEncoding.EncodeToString([]byte(s)), "base64url": base64.RawURLEncoding.EncodeToString([]byte(s))}
}
