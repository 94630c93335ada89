package oauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func kinds(ls []Layer) string {
	var k []string
	for _, l := range ls {
		k = append(k, l.Path+l.Kind)
	}
	return strings.Join(k, " ")
}

func TestDecodeLayers(t *testing.T) {
	chatgpt := base64.StdEncoding.EncodeToString([]byte(`{"csrf":"d06387cf7d5ba96b92b2587474bcd4956","s":"oauth_s_69da6d33622081919e8b5e43c89ff601"}`))
	relay := "openai_platform_oauth_relay__" + base64.StdEncoding.EncodeToString([]byte(`{"oauth_id":"oauth_s_68fa41e1b5f081918374314614ad44c2","target_uri":"https://platform.openai.com/plugins/edit/x?section=MCP+Server"}`))
	jwt := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"https://x/mcp","exp":1}`)) + ".sig"
	jwe := "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"
	if !strings.HasSuffix(chatgpt, "=") {
		t.Fatalf("test state %q has no padding", chatgpt)
	}
	cases := []struct{ name, in, want string }{
		{"chatgpt state", chatgpt, "raw base64 json .csrfhex .sprefix"},
		{"percent-encoded once", strings.ReplaceAll(chatgpt, "=", "%3D"), "raw percent-decoded base64 json .csrfhex .sprefix"},
		{"percent-encoded twice", strings.ReplaceAll(chatgpt, "=", "%253D"), "raw percent-decoded percent-decoded-twice base64 json .csrfhex .sprefix"},
		{"unpadded url alphabet", base64.RawURLEncoding.EncodeToString([]byte(`{"n":"hello?>~"}`)), "raw base64url json"},
		{"padded url alphabet", base64.URLEncoding.EncodeToString([]byte(`{"n":"hello?>~~"}`)), "raw base64url-padded json"},
		{"standard unpadded", base64.RawStdEncoding.EncodeToString([]byte(`{"n":"hello?>~~"}`)), "raw base64-unpadded json"},
		{"platform relay", relay, "raw prefix base64 json .oauth_idprefix"},
		{"chatgpt id", "oauth_s_69da6d33622081919e8b5e43c89ff601", "raw prefix"},
		{"plugin uuid", "15014bf5-e45f-45d8-816f-ff1e4da87e81", "raw uuid"},
		{"jwt", jwt, "raw jwt"},
		{"jwe", jwe, "raw jwe"},
		{"opaque", "ya29", "raw"},
		{"plain json", `{"a":"b"}`, "raw json"},
	}
	for _, c := range cases {
		if got := kinds(Decode(c.in)); got != c.want {
			t.Errorf("%s: layers %q, want %q", c.name, got, c.want)
		}
	}
	if m := decodeState(chatgpt); m["s"] != "oauth_s_69da6d33622081919e8b5e43c89ff601" {
		t.Errorf("DecodeState = %v", m)
	}
	if decodeState("opaque") != nil {
		t.Error("DecodeState of an opaque value is not nil")
	}
}

// Deeply nested encodings stop at the depth and layer limits instead of
// recursing without end.
func TestDecodeBounded(t *testing.T) {
	v := "x"
	for i := 0; i < 40; i++ {
		v = base64.StdEncoding.EncodeToString([]byte(`{"a":"` + v + `","b":"` + v + `"}`))
		if len(v) > 1<<16 {
			break
		}
	}
	if n := len(Decode(v)); n > maxDecodeLayers {
		t.Errorf("%d layers, want at most %d", n, maxDecodeLayers)
	}
}

func TestDecodeJWT(t *testing.T) {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"aud":["https://a/mcp","b"],"exp":1773480413,"iss":"https://as"}`))
	tok := DecodeJWT("Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0." + claims + ".c2ln")
	if tok.Kind != "jwt" || tok.Header["kid"] != "k1" || tok.Claims["iss"] != "https://as" {
		t.Fatalf("DecodeJWT = %+v", tok)
	}
	if aud := tok.Audience(); len(aud) != 2 || aud[0] != "https://a/mcp" {
		t.Errorf("Audience = %v", aud)
	}
	exp := time.Unix(1773480413, 0)
	if got := tok.Expiry(exp.Add(-90 * time.Minute)); !strings.HasPrefix(got, "expires in 1h 30m") {
		t.Errorf("Expiry before = %q", got)
	}
	if got := tok.Expiry(exp.Add(42 * time.Second)); !strings.HasPrefix(got, "expired 42s ago") {
		t.Errorf("Expiry after = %q", got)
	}
	for _, c := range []struct{ in, kind string }{
		{"gho_16C7e42F292c6912E7710c838347Ae178B4a", "opaque"},
		{"a.b.c", "opaque"}, // dots, but no JSON header
		{"eyJhbGciOiJSU0EtT0FFUCJ9.x.y.z.w", "jwe"},
		{"eyJhbGciOiJub25lIn0.bm90IGpzb24.", "jwt"}, // readable header, unreadable claims
	} {
		if got := DecodeJWT(c.in); got.Kind != c.kind {
			t.Errorf("DecodeJWT(%q).Kind = %q, want %q", c.in, got.Kind, c.kind)
		}
	}
	if DecodeJWT("eyJhbGciOiJub25lIn0.bm90IGpzb24.").Err == "" {
		t.Error("unreadable claims: no Err")
	}
}

func TestPKCE(t *testing.T) {
	// RFC 7636 Appendix B.
	v := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	if got := S256(v); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 = %s", got)
	}
	if !pkceMatches(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256") || pkceMatches("other", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256") {
		t.Error("S256 comparison wrong")
	}
	if !pkceMatches("plain-value", "plain-value", "") || pkceMatches("a", "b", "plain") {
		t.Error("plain comparison wrong")
	}
}

func TestParseQuery(t *testing.T) {
	q := ParseQuery("state=a%2Bb+c&code=x&code=y&bad=%zz&flag&empty=&redirect_uri=https%3A%2F%2Fh%2Fcb%3Fa%3D1")
	if v, _ := q.Lookup("state"); v != "a+b c" {
		t.Errorf("state = %q", v)
	}
	if raw, _ := q.Raw("state"); raw != "a%2Bb+c" {
		t.Errorf("raw state = %q", raw)
	}
	if q.Count("code") != 2 || q.Get("code") != "x" {
		t.Errorf("duplicates: count %d first %q", q.Count("code"), q.Get("code"))
	}
	if q.Get("bad") != "%zz" {
		t.Errorf("malformed escape = %q, want kept as is", q.Get("bad"))
	}
	if v, ok := q.Lookup("flag"); !ok || v != "" {
		t.Error("bare key lost")
	}
	if v, ok := q.Lookup("empty"); !ok || v != "" {
		t.Error("empty value lost")
	}
	if _, ok := q.Lookup("missing"); ok {
		t.Error("missing key found")
	}
	if q.Get("redirect_uri") != "https://h/cb?a=1" {
		t.Errorf("redirect_uri = %q", q.Get("redirect_uri"))
	}
	if ParseQuery("") != nil || len(ParseQuery("&&")) != 0 {
		t.Error("empty query not empty")
	}
	if unescape("%4", false) != "%4" || unescape("a+b", false) != "a+b" || unescape("a+b", true) != "a b" {
		t.Error("Unescape edge cases")
	}
}

func TestIdentifyClient(t *testing.T) {
	cases := []struct{ redirect, clientID, ua, want string }{
		{"https://chatgpt.com/connector/oauth/eRvU93QmvGwc", "", "", ClientChatGPT},
		{"https://chatgpt.com/connector_platform_oauth_redirect", "", "", ClientChatGPT},
		{"https://chat.openai.com/aip/plugin-x/oauth/callback", "", "", ClientChatGPT},
		{"https://claude.ai/api/mcp/auth_callback", "", "", ClientClaude},
		{"https://claude.com/api/mcp/auth_callback", "", "", ClientClaude},
		{"http://localhost:54545/callback", "", "", ClientClaudeCode},
		{"", "https://claude.ai/oauth/claude-code-client-metadata", "", ClientClaudeCode},
		{"", "https://chatgpt.com/oauth/codex/client.json", "", ClientCodex},
		// Regression (issue 12): the Go SDK's client was labelled mcp-remote
		// because it uses the same loopback /oauth/callback shape.
		{"http://localhost:8000/oauth/callback", "", "Go-http-client/1.1", ClientGo},
		{"http://localhost:21371/oauth/callback", "", "mcp-remote/0.15.1 node/22", ClientMCPRemote},
		{"https://global.consent.azure-apim.net/redirect/cr938-5fsmartbear-20zephyr-20mcp-5f43bcb8573bc3e84", "", "", ClientCopilotStudio},
		{"https://teams.microsoft.com/api/platform/v1.0/oAuthRedirect", "", "", ClientM365Copilot},
		{"http://127.0.0.1:49152/", "", "", ClientCopilotCLI},
		{"https://www.perplexity.ai/rest/connections/oauth_callback", "", "", ClientPerplexity},
		{"https://webui.example/oauth/clients/mcp:notes/callback", "", "", ClientOpenWebUI},
		{"http://127.0.0.1:6276/oauth/callback", "", "", ClientInspector},
		{"https://claude.ai/api/mcp/auth_callback", "", "python-httpx/0.28.1", ClientClaude},
		{"https://app.example/cb", "", "python-httpx/0.28.1", ClientUnknown},
		{"cursor://anysphere.cursor-mcp/oauth/callback", "", "", ClientCursor},
		{"https://www.cursor.com/agents/mcp/oauth/callback", "", "", ClientCursor},
		{"http://127.0.0.1:33418/", "", "", ClientVSCode},
		{"https://vscode.dev/redirect", "", "", ClientVSCode},
		{"http://localhost:6274/oauth/callback/debug", "", "", ClientInspector},
		{"http://localhost:21371/oauth/callback", "", "", ClientMCPRemote},
		{"", "https://chatgpt.com/oauth/client.json", "", ClientChatGPT},
		{"", "https://claude.ai/oauth/mcp-oauth-client-metadata", "", ClientClaude},
		{"", "https://vscode.dev/oauth/client-metadata.json", "", ClientVSCode},
		{"https://app.example/cb", "", "openai-mcp/1.0.0", ClientChatGPT},
		{"https://app.example/cb", "", "Claude-User", ClientClaude},
		{"https://app.example/cb", "", "mcp-remote/0.1.29", ClientMCPRemote},
		{"https://app.example/cb", "cl_1", "curl/8.5.0", ClientUnknown},
	}
	for _, c := range cases {
		if got := identifyClient(c.redirect, c.clientID, false, c.ua); got != c.want {
			t.Errorf("IdentifyClient(%q, %q, %q) = %q, want %q", c.redirect, c.clientID, c.ua, got, c.want)
		}
	}
	// A web app (its own calls are a page's fetches) on a loopback callback
	// is not mcp-remote (issue 12: a browser-based client through Chromium's
	// DevTools HAR); a specific signal still names its platform.
	chrome := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	for _, c := range []struct{ redirect, ua, want string }{
		{"http://127.0.0.1:35209/oauth/callback", chrome, ClientWebApp},
		{"http://127.0.0.1:49152/", chrome, ClientWebApp},
		{"http://localhost:6274/oauth/callback", chrome, ClientInspector},
		{"https://claude.ai/api/mcp/auth_callback", chrome, ClientClaude},
		{"http://localhost:21371/oauth/callback", "mcp-remote/0.15.1 node/22", ClientMCPRemote},
	} {
		if got := identifyClient(c.redirect, "", true, c.ua); got != c.want {
			t.Errorf("IdentifyClient(%q, web, %q) = %q, want %q", c.redirect, c.ua, got, c.want)
		}
	}
}
