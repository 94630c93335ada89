package redact

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
)

var redactedRE = regexp.MustCompile(`‹redacted:len=(\d+):([a-z0-9]+):([0-9a-f]{6})›`)

func TestRedactorKeepsLengthClassAndEquality(t *testing.T) {
	r := New([]byte("k"))
	code := "SplxlOBeZQQYbYS6WxSbIA-_abc" // b64url
	a, b := r.Secret(code), r.Secret(code)
	if a != b {
		t.Fatalf("same value, different hashes: %s %s", a, b)
	}
	m := redactedRE.FindStringSubmatch(a)
	if m == nil || m[1] != "27" || m[2] != "b64url" {
		t.Fatalf("Secret(%q) = %s, want len=27 class b64url", code, a)
	}
	if r.Secret("other-value") == a {
		t.Fatal("different values share a hash")
	}
	if New([]byte("k2")).Secret(code) == a {
		t.Fatal("hash does not depend on the key")
	}
	for v, class := range map[string]string{
		"123456": "digits", "deadbeef": "hex", "abcXYZ1": "alnum", "eyJh.eyJz.c2ln": "jwt",
		"a+b/c==": "b64", "has space": "text",
	} {
		if got := redactedRE.FindStringSubmatch(New(nil).Secret(v))[2]; got != class {
			t.Errorf("class of %q = %s, want %s", v, got, class)
		}
	}
}

func TestRedactorExchangeHidesEverySecretAndCorrelates(t *testing.T) {
	const (
		code     = "c0de-VALUE-1234567890"
		verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		access   = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig-nature_xyz"
		refresh  = "refresh-token-secret-99"
		cookie   = "sessioncookievalue42"
		secret   = "client-secret-shh"
	)
	redirect := mcptap.Exchange{
		Target: "/authorize?response_type=code&state=abc123state",
		RespHeader: http.Header{
			"Location":   {"https://chatgpt.com/connector/oauth/cb1?code=" + code + "&state=abc123state"},
			"Set-Cookie": {"sid=" + cookie + "; Path=/; HttpOnly"},
		},
	}
	token := mcptap.Exchange{
		Target:    "/token",
		ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"sid=" + cookie}},
		ReqBody:   []byte("grant_type=authorization_code&code=" + code + "&code_verifier=" + verifier + "&client_secret=" + secret),
		RespHeader: http.Header{
			"Content-Type": {"application/json"},
		},
		RespBody: []byte(`{"access_token":"` + access + `","token_type":"Bearer","refresh_token":"` + refresh + `"}`),
	}
	mcp := mcptap.Exchange{Target: "/mcp", ReqHeader: http.Header{"Authorization": {"Bearer " + access}}}

	r := New([]byte("key"))
	for _, ex := range []mcptap.Exchange{redirect, token, mcp} {
		r.Learn(ex)
	}
	var all strings.Builder
	for _, ex := range []mcptap.Exchange{redirect, token, mcp} {
		red := r.Exchange(ex)
		all.WriteString(red.Target)
		for _, h := range []http.Header{red.ReqHeader, red.RespHeader} {
			for k, v := range h {
				all.WriteString(k + ": " + strings.Join(v, ",") + "\n")
			}
		}
		all.Write(red.ReqBody)
		all.Write(red.RespBody)
	}
	out := all.String()
	for _, s := range []string{code, verifier, access, refresh, cookie, secret} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q survives redaction", s)
		}
	}
	if !strings.Contains(out, "abc123state") {
		t.Error("state was redacted; it must stay visible so hops can be compared")
	}
	if !strings.Contains(out, "Bearer ‹redacted:") {
		t.Error("Authorization scheme should stay readable")
	}
	// The code in the redirect and in the token request get the same replacement.
	codeHash := r.Secret(code)
	if strings.Count(out, codeHash) != 2 {
		t.Errorf("code hash %s appears %d times, want 2 (redirect and token request)", codeHash, strings.Count(out, codeHash))
	}
	if ex := r.Exchange(token); string(token.ReqBody) == string(ex.ReqBody) || !strings.Contains(string(token.ReqBody), code) {
		t.Error("Exchange must return a copy and leave the original untouched")
	}
}

func TestRedactorChatGPTCallbackCompletion(t *testing.T) {
	ex := mcptap.Exchange{
		Target:    "/backend-api/aip/connectors/links/oauth/callback",
		ReqHeader: http.Header{"Content-Type": {"application/json"}},
		ReqBody:   []byte(`{"full_redirect_url":"https://chatgpt.com/connector/oauth/x?code=secretcode99&state=st"}`),
	}
	r := New(nil)
	if got := string(r.Exchange(ex).ReqBody); strings.Contains(got, "secretcode99") || !strings.Contains(got, "state=st") {
		t.Fatalf("callback body not redacted as expected: %s", got)
	}
}

func FuzzRedactorText(f *testing.F) {
	f.Add("code=abcd1234&state=x", "?code=abcd1234")
	f.Fuzz(func(t *testing.T, target, text string) {
		r := New([]byte("k"))
		r.Learn(mcptap.Exchange{Target: target})
		_ = r.Text(text)
	})
}
