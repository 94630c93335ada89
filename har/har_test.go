package har

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/redact"
)

func readFixture(t *testing.T, name string) []mcptap.Exchange {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exs, err := Read(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return exs
}

func TestReadHARChromeSanitized(t *testing.T) {
	exs := readFixture(t, "chrome-sanitized.har")
	if len(exs) != 5 {
		t.Fatalf("got %d exchanges, want 5", len(exs))
	}
	state := "oauth_s_eyJjc3JmIjoiYTFiMmMzIiwicyI6Im9hdXRoX3NfNjkxMjM0In0"
	auth := exs[0]
	if auth.Method != "GET" || auth.Scheme != "https" || auth.Host != "auth.example.test" || auth.Status != 302 {
		t.Errorf("authorize: %s %s://%s %d", auth.Method, auth.Scheme, auth.Host, auth.Status)
	}
	// The raw query survives: %2F stays encoded, + stays +, %zz stays.
	if !strings.HasPrefix(auth.Target, "/authorize?response_type=code&client_id=mcp-client-123&redirect_uri=https%3A%2F%2Fchatgpt.com%2F") ||
		!strings.HasSuffix(auth.Target, "&scope=openid+profile&x=%zz") {
		t.Errorf("target not raw: %s", auth.Target)
	}
	wantLoc := "https://chatgpt.com/connector_platform_oauth_redirect?code=SplxlOBeZQQYbYS6WxSbIA&state=" + state
	if got := auth.RespHeader.Get("Location"); got != wantLoc {
		t.Errorf("Location %q", got)
	}
	if _, ok := auth.ReqHeader[":authority"]; ok {
		t.Error("HTTP/2 pseudo-headers kept")
	}
	if auth.ReqHeader.Get("User-Agent") == "" || auth.ReqHeader.Get("Referer") != "https://chatgpt.com/" {
		t.Errorf("lower-case h2 headers not readable by canonical name: %v", auth.ReqHeader)
	}
	if want := time.Date(2026, 11, 24, 16, 30, 0, 123e6, time.UTC); !auth.Start.Equal(want) {
		t.Errorf("start %v", auth.Start)
	}
	if d := auth.End.Sub(auth.Start); d != 85500*time.Microsecond {
		t.Errorf("duration %v, want 85.5ms", d)
	}
	if d := auth.ResponseAt.Sub(auth.Start); d != 81500*time.Microsecond { // blocked+send+wait
		t.Errorf("response head after %v, want 81.5ms", d)
	}
	if auth.Mode != mcptap.ModeHAR || !auth.Complete || auth.Proto != "http/2.0" || auth.Err != "" {
		t.Errorf("authorize fields: %+v", auth)
	}
	cb := exs[2]
	if cb.Status != 404 || string(cb.RespBody) != `{"detail":"OAuth state not found"}` || cb.RespSize != 34 || cb.RespTruncated {
		t.Errorf("callback: %d %q size=%d trunc=%v", cb.Status, cb.RespBody, cb.RespSize, cb.RespTruncated)
	}
	png := exs[3]
	if !bytes.HasPrefix(png.RespBody, []byte{0x89, 'P', 'N', 'G'}) || len(png.RespBody) != 18 {
		t.Errorf("base64 content not decoded: %x", png.RespBody)
	}
	failed := exs[4]
	if failed.Status != 0 || failed.Err != "net::ERR_CONNECTION_REFUSED" || string(failed.ReqBody) != `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` {
		t.Errorf("failed entry: status=%d err=%q body=%q", failed.Status, failed.Err, failed.ReqBody)
	}
	if failed.Scheme != "http" || failed.Host != "localhost:3000" || failed.Target != "/mcp" {
		t.Errorf("failed entry URL: %s %s %s", failed.Scheme, failed.Host, failed.Target)
	}
	seen := map[string]bool{}
	for i, ex := range exs {
		if seen[ex.ID] {
			t.Errorf("duplicate ID %s", ex.ID)
		}
		seen[ex.ID] = true
		if i > 0 && ex.ID <= exs[i-1].ID {
			t.Errorf("IDs not in start order: %s after %s", ex.ID, exs[i-1].ID)
		}
	}
	// Deterministic: the same file gives the same IDs (golden reports rely on it).
	if again := readFixture(t, "chrome-sanitized.har"); again[0].ID != exs[0].ID {
		t.Errorf("IDs differ between reads")
	}
}

func TestReadHARFirefox(t *testing.T) {
	exs := readFixture(t, "firefox.har")
	if len(exs) != 3 {
		t.Fatalf("got %d exchanges", len(exs))
	}
	redir := exs[0]
	if !strings.Contains(redir.Target, "state=a%2Bb%3D%3D&redirect_uri=https://claude.ai/api/mcp/auth_callback") {
		t.Errorf("target %s", redir.Target)
	}
	if want := time.Date(2026, 11, 24, 16, 30, 0, 250e6, time.UTC); !redir.Start.Equal(want) {
		t.Errorf("start with +01:00 offset: %v", redir.Start)
	}
	if got := redir.RespHeader["Set-Cookie"]; len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2; Path=/" {
		t.Errorf("repeated Set-Cookie: %q", got)
	}
	if redir.ReqHeader.Get("Cookie") != "sid=s3cr3t" || redir.Status != 302 {
		t.Errorf("redirect: %+v", redir)
	}
	// A form body exported as params only is rebuilt.
	tok := exs[1]
	if string(tok.ReqBody) != "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback" {
		t.Errorf("form from params: %q", tok.ReqBody)
	}
	if string(tok.RespBody) != `{"access_token":"at-123","token_type":"Bearer"}` || tok.Status != 200 {
		t.Errorf("token response: %d %q", tok.Status, tok.RespBody)
	}
	// Firefox marks a request that got no response with status 0 and nothing else.
	if exs[2].Status != 0 || exs[2].Err == "" {
		t.Errorf("no-response entry: status=%d err=%q", exs[2].Status, exs[2].Err)
	}
}

func TestReadHARMitmproxy(t *testing.T) {
	exs := readFixture(t, "mitmproxy.har")
	if len(exs) != 2 {
		t.Fatalf("got %d exchanges", len(exs))
	}
	if exs[0].Host != "127.0.0.1:8780" || exs[0].ReqHeader.Get("X-Forwarded-Proto") != "https" || exs[0].RespSize != 83 {
		t.Errorf("mitmproxy entry 0: %+v", exs[0])
	}
	if want := time.Date(2026, 11, 24, 16, 30, 0, 123456e3, time.UTC); !exs[0].Start.Equal(want) {
		t.Errorf("microsecond start: %v", exs[0].Start)
	}
	if !bytes.Equal(exs[1].RespBody, []byte("\x1f\x8b\x08\x00binary\xff")) {
		t.Errorf("binary body: %q", exs[1].RespBody)
	}
	if string(exs[1].ReqBody) != "abc\u00ffde" || exs[1].ReqSize != 7 || exs[1].ReqTruncated {
		t.Errorf("request body: %q size=%d", exs[1].ReqBody, exs[1].ReqSize)
	}
}

func TestReadHARRedirectChainStaysSeparate(t *testing.T) {
	har := `{"log":{"version":"1.2","creator":{"name":"x","version":"1"},"entries":[
{"startedDateTime":"2026-11-24T16:30:00Z","time":1,"request":{"method":"GET","url":"https://a.test/start","headers":[]},"response":{"status":302,"headers":[],"content":{"size":0,"mimeType":""},"redirectURL":"https://a.test/next?code=1&state=s%2B"}},
{"startedDateTime":"2026-11-24T16:30:00.001Z","time":1,"request":{"method":"GET","url":"https://a.test/next?code=1&state=s%2B","headers":[]},"response":{"status":200,"headers":[],"content":{"size":2,"mimeType":"text/plain","text":"ok"}}}]}}`
	exs, err := Read(strings.NewReader(har))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[0].Status != 302 || exs[1].Status != 200 {
		t.Fatalf("redirect chain: %+v", exs)
	}
	// The Location header was sanitized away; redirectURL stands in, raw.
	if exs[0].RespHeader.Get("Location") != "https://a.test/next?code=1&state=s%2B" {
		t.Errorf("Location from redirectURL: %v", exs[0].RespHeader)
	}
}

func sampleExchanges() []mcptap.Exchange {
	t0 := time.Date(2026, 11, 24, 16, 30, 0, 123456789, time.UTC)
	mk := func(i int) mcptap.Exchange {
		ex := oauthtest.TokenExchange("s", i, true)
		ex.Start = t0.Add(time.Duration(i) * time.Second)
		ex.ResponseAt = ex.Start.Add(1234567 * time.Nanosecond)
		ex.End = ex.Start.Add(7654321 * time.Nanosecond)
		ex.ID = mcptap.NewID(ex.Start)
		ex.Session = ""
		ex.RespProto = "HTTP/1.1"
		return ex
	}
	a := mk(0) // token call with an odd raw query
	b := mk(1) // truncated binary response from the forward proxy, absolute-form target
	b.Mode = mcptap.ModeForward
	b.Method = "GET"
	b.Target = "http://idp.test/cb?code=x&state=a%2Bb%3D%3D&x=+"
	b.Host = "idp.test"
	b.Scheme = "http"
	b.ReqBody, b.ReqSize = nil, 0
	b.ReqHeader = http.Header{"Cookie": {"sid=1"}, "X-Multi": {"one", "two"}}
	b.RespBody = []byte{0xff, 0x00, 0x10, 'a'}
	b.RespSize, b.RespTruncated = 1<<20, true
	b.RespHeader = http.Header{"Location": {"https://chatgpt.com/connector_platform_oauth_redirect?code=x&state=a%2Bb%3D%3D"}}
	b.Status = 302
	c := mk(2) // upstream failure
	c.Status, c.RespBody, c.RespSize, c.RespHeader, c.RespProto = 0, nil, -1, nil, ""
	c.ResponseAt = time.Time{}
	c.Err = "dial tcp 127.0.0.1:3000: connect: connection refused"
	d := mk(3) // an SSE stream still open at export
	d.Complete, d.End = false, time.Time{}
	d.RespHeader = http.Header{"Content-Type": {"text/event-stream"}}
	d.RespBody = []byte("event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n")
	d.RespSize = int64(len(d.RespBody))
	d.ReqTruncated, d.ReqSize = true, 5000
	e := mk(4) // HTTP/1.0 without a Host header
	e.Host, e.Proto = "", "HTTP/1.0"
	f := mk(5) // CONNECT from the browser proxy: authority-form target
	f.Method, f.Target, f.Host, f.Mode = "CONNECT", "idp.test:443", "idp.test:443", mcptap.ModeForward
	g := mk(6) // OPTIONS *
	g.Method, g.Target = "OPTIONS", "*"
	return []mcptap.Exchange{a, b, c, d, e, f, g}
}

func TestHARRoundTrip(t *testing.T) {
	want := sampleExchanges()
	var buf bytes.Buffer
	sess := mcptap.Session{ID: "sess1", Source: mcptap.SourceProxy, Name: "http://localhost:3000"}
	if err := Write(&buf, sess, want, nil); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatalf("WriteHAR output is not JSON: %v", err)
	}
	log := generic["log"].(map[string]any)
	if log["version"] != "1.2" || log["creator"].(map[string]any)["name"] != "mcptap" {
		t.Errorf("log header: %v %v", log["version"], log["creator"])
	}
	entries := log["entries"].([]any)
	e1 := entries[1].(map[string]any)
	content := e1["response"].(map[string]any)["content"].(map[string]any)
	if content["encoding"] != "base64" || !strings.Contains(content["comment"].(string), "truncated") {
		t.Errorf("binary truncated content: %v", content)
	}
	if !strings.Contains(e1["comment"].(string), "truncated") {
		t.Errorf("entry comment: %v", e1["comment"])
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("exchange %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestWriteHARRedacts(t *testing.T) {
	exs := sampleExchanges()
	exs[0].ReqHeader.Set("Authorization", "Bearer sekrit-token-value-1234567890")
	exs[1].ReqHeader.Set("Authorization", "Bearer sekrit-token-value-1234567890")
	exs[0].ReqBody = []byte("grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA")
	exs[0].RespBody = []byte(`{"access_token":"eyJhbGciOiJIUzI1NiJ9.e30.abcdefghijklmnop","token_type":"Bearer"}`)
	var buf bytes.Buffer
	if err := Write(&buf, mcptap.Session{ID: "s"}, exs, redact.New([]byte("k"))); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"sekrit-token-value-1234567890", "SplxlOBeZQQYbYS6WxSbIA", "eyJhbGciOiJIUzI1NiJ9.e30.abcdefghijklmnop"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted HAR still contains %q", secret)
		}
	}
	if !strings.Contains(out, "redacted") {
		t.Error("no redaction marker")
	}
	var plain bytes.Buffer
	if err := Write(&plain, mcptap.Session{ID: "s"}, exs, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain.String(), "sekrit-token-value-1234567890") {
		t.Error("--no-redact output lost the value")
	}
}

func TestReadHARErrors(t *testing.T) {
	entry := func(s string) string {
		return `{"log":{"version":"1.2","entries":[{"startedDateTime":"2026-11-24T16:30:00Z","time":1,"request":{"method":"GET","url":"https://a.test/","headers":[]},"response":{"status":200,"content":{"size":0}}},` + s + `]}}`
	}
	for _, tc := range []struct {
		name, in string
		entry    int
		field    string
		msg      string
	}{
		{"empty", "", -1, "", "empty file"},
		{"not an object", `[1,2]`, -1, "", "not a HAR file"},
		{"no log", `{"foo":1}`, -1, "log", "missing"},
		{"log not object", `{"log":[]}`, -1, "log", "not an object"},
		{"no entries", `{"log":{"version":"1.2","creator":{"name":"x"}}}`, -1, "log.entries", "missing"},
		{"null entries", `{"log":{"entries":null}}`, -1, "log.entries", "missing"},
		{"entries not array", `{"log":{"entries":{}}}`, -1, "log.entries", "not an array"},
		{"syntax error with line", "{\"log\":{\"entries\":[\n{\"startedDateTime\":\"2026-11-24T16:30:00Z\",\n\"request\": {\"method\" \"GET\"}}]}}", 0, "", "line 3, column 22"},
		{"syntax error in a later entry", "{\"log\":{\"entries\":[\n{\"startedDateTime\":\"2026-11-24T16:30:00Z\",\"request\":{\"method\":\"GET\",\"url\":\"https://a.test/\"}},\n  {\"request\": tru}]}}", 1, "", "line 3, column 18"},
		{"truncated file", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"htt`), 1, "", "ends early"},
		{"cut after the log", `{"log":{"entries":[]}`, -1, "", "ends early"},
		{"entry missing request", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","response":{"status":200}}`), 1, "request", "missing"},
		{"entry missing url", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET"}}`), 1, "request.url", "missing"},
		{"entry not an object", entry(`7`), 1, "", "is number, want an object"},
		{"relative url", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"/x"}}`), 1, "request.url", "not an absolute URL"},
		{"no host", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https:///x"}}`), 1, "request.url", "no host"},
		{"missing method", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"url":"https://a.test/"}}`), 1, "request.method", "missing"},
		{"missing startedDateTime", entry(`{"request":{"method":"GET","url":"https://a.test/"}}`), 1, "startedDateTime", "missing"},
		{"bad startedDateTime", entry(`{"startedDateTime":"yesterday","request":{"method":"GET","url":"https://a.test/"}}`), 1, "startedDateTime", "not an RFC 3339 time"},
		{"bad base64", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/"},"response":{"status":200,"content":{"size":3,"text":"!!!","encoding":"base64"}}}`), 1, "response.content.text", "bad base64"},
		{"status wrong type", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/"},"response":{"status":"abc"}}`), 1, "response.status", "want a number"},
		{"status fractional", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/"},"response":{"status":200.5}}`), 1, "response.status", "not an HTTP status"},
		{"headers wrong type", entry(`{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/","headers":{"a":"b"}}}`), 1, "request.headers", "is object, want an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exs, err := Read(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error; got %d exchanges", len(exs))
			}
			if exs != nil {
				t.Errorf("half-imported: %d exchanges returned with the error", len(exs))
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("error %T %v is not a *Error", err, err)
			}
			if he.Entry != tc.entry || he.Field != tc.field {
				t.Errorf("entry %d field %q, want entry %d field %q (%v)", he.Entry, he.Field, tc.entry, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			if tc.entry >= 0 && !strings.HasPrefix(err.Error(), "entry ") {
				t.Errorf("message %q does not start with the entry", err)
			}
		})
	}
}

// A reader that cannot seek still gets a position: the byte offset.
func TestReadHARSyntaxErrorWithoutSeek(t *testing.T) {
	_, err := Read(io.MultiReader(strings.NewReader(`{"log":{"entries":[{"a" 1}]}}`)))
	if err == nil || !strings.Contains(err.Error(), "byte ") || !strings.HasPrefix(err.Error(), "entry 0: ") {
		t.Fatalf("got %v", err)
	}
}

func TestReadHARByteOrderMark(t *testing.T) {
	in := "\xef\xbb\xbf{\"log\":{\"entries\":[\n{\"startedDateTime\":\"2026-11-24T16:30:00Z\",\"request\":{\"method\":\"GET\",\"url\":\"https://a.test/\"}}]}}"
	if exs, err := Read(strings.NewReader(in)); err != nil || len(exs) != 1 {
		t.Fatalf("HAR with a BOM: %v", err)
	}
	// Positions still count from the first character after the BOM.
	_, err := Read(strings.NewReader("\xef\xbb\xbf{\"log\":{\"entries\":[\n{\"a\" 1}]}}"))
	if err == nil || !strings.Contains(err.Error(), "line 2, column 6") {
		t.Fatalf("got %v", err)
	}
}

func TestReadHAREmptyEntries(t *testing.T) {
	exs, err := Read(strings.NewReader(`{"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},"pages":[],"entries":[]}}`))
	if err != nil || len(exs) != 0 {
		t.Fatalf("%v %d", err, len(exs))
	}
}

func TestSplitURL(t *testing.T) {
	for _, tc := range []struct{ in, scheme, host, target string }{
		{"https://a.test", "https", "a.test", "/"},
		{"https://a.test?x=1", "https", "a.test", "/?x=1"},
		{"HTTPS://user:pw@a.test:8443/p%zz?q=a+b&q=%2B#frag", "https", "a.test:8443", "/p%zz?q=a+b&q=%2B"},
		{"http://[::1]:3000/mcp", "http", "[::1]:3000", "/mcp"},
		{"data:image/png;base64,iVBOR", "data", "", "data:image/png;base64,iVBOR"},
	} {
		s, h, tg, err := splitURL(tc.in)
		if err != nil || s != tc.scheme || h != tc.host || tg != tc.target {
			t.Errorf("splitURL(%q) = %q %q %q %v", tc.in, s, h, tg, err)
		}
	}
}

func FuzzReadHAR(f *testing.F) {
	for _, name := range []string{"chrome-sanitized.har", "firefox.har", "mitmproxy.har", "charles.har"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var own bytes.Buffer
	if err := Write(&own, mcptap.Session{ID: "s"}, sampleExchanges(), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(own.Bytes())
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/?%zz"},"response":{"status":302,"redirectURL":"x"}}]}}`))
	// Small seeds: the mutator gets far more executions out of them.
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2026-11-24T16:30:00+01:00","time":1.5,"request":{"method":"POST","url":"http://h/t","postData":{"params":[{"name":"a b","value":"c&d"}]}},"response":{"status":200,"content":{"size":9,"text":"AAEC","encoding":"base64"}},"timings":{"wait":1,"receive":0.5}}]}}`))
	f.Add([]byte(`{"log":{"entries":[{"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"data:x"},"response":{"status":0,"_error":"net::ERR_FAILED"},"_mcptap":{"id":"x","target":"/a","host":"","scheme":"http","complete":false,"end":"2026-11-24T16:30:01Z"}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		exs, err := Read(bytes.NewReader(data))
		if err != nil {
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("error is not a *Error: %T %v", err, err)
			}
			if exs != nil {
				t.Fatal("exchanges returned with an error")
			}
			return
		}
		// Whatever reads must write, and read back to the same number of
		// exchanges with the same IDs and raw targets.
		var buf bytes.Buffer
		if err := Write(&buf, mcptap.Session{ID: "fuzz"}, exs, nil); err != nil {
			t.Fatalf("WriteHAR: %v", err)
		}
		again, err := Read(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("re-read own output: %v", err)
		}
		if len(again) != len(exs) {
			t.Fatalf("re-read %d, want %d", len(again), len(exs))
		}
		for i := range exs {
			if again[i].ID != exs[i].ID || again[i].Target != exs[i].Target || again[i].Host != exs[i].Host || !bytes.Equal(again[i].RespBody, exs[i].RespBody) {
				t.Fatalf("exchange %d changed in a round trip:\n%+v\n%+v", i, exs[i], again[i])
			}
		}
	})
}

// Charles writes no pages, null for an empty redirectURL, and its own
// _charlesStatus/_clientAddress members.
func TestReadHARCharles(t *testing.T) {
	exs := readFixture(t, "charles.har")
	if len(exs) != 1 {
		t.Fatalf("got %d exchanges", len(exs))
	}
	ex := exs[0]
	if ex.Status != 400 || ex.Method != "POST" || !strings.Contains(string(ex.ReqBody), "code_verifier=dBjftJeZ4CVP") ||
		!strings.Contains(string(ex.RespBody), "invalid_grant") || ex.RespHeader.Get("Location") != "" || ex.Err != "" {
		t.Errorf("charles entry: %+v", ex)
	}
	if d := ex.End.Sub(ex.Start); d != 61*time.Millisecond {
		t.Errorf("duration %v", d)
	}
}

func harWith(entry string) string {
	return `{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[` + entry + `]}}`
}

const entryHead = `{"startedDateTime":"2026-11-24T16:30:00.000Z","time":5,`

// Regression (issue 12, HAR reading): a second JSON document after the HAR
// object was ignored silently.
func TestReadHARTrailingDocument(t *testing.T) {
	doc := harWith("")
	for _, tail := range []string{doc, `{"log":{}}`, `x`, `,`} {
		_, err := Read(strings.NewReader(doc + "\n" + tail))
		if err == nil || !strings.Contains(err.Error(), "after the HAR object") {
			t.Errorf("tail %q: err %v, want an error about data after the HAR object", tail, err)
		}
	}
	if _, err := Read(strings.NewReader(doc + "\n \t\n")); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
}

// Regression: postData.params without text. A JSON body written as params
// (chrome-har) was joined as a form; DevTools' raw, still percent-encoded
// params were encoded a second time; decoded params (Firefox) are encoded.
func TestReadHARPostDataParams(t *testing.T) {
	cases := []struct {
		name, post string
		body       string
		truncated  bool
	}{
		{"firefox decoded", `{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"redirect_uri","value":"https://a.test/cb?x=1"},{"name":"code","value":"a b"}]}`,
			"redirect_uri=https%3A%2F%2Fa.test%2Fcb%3Fx%3D1&code=a+b", false},
		{"devtools raw", `{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"redirect_uri","value":"https%3A%2F%2Fa.test%2Fcb"},{"name":"code_verifier","value":"abc"}]}`,
			"redirect_uri=https%3A%2F%2Fa.test%2Fcb&code_verifier=abc", false},
		{"json as params", `{"mimeType":"application/json","params":[{"name":"client_name","value":"x"}]}`, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exs, err := Read(strings.NewReader(harWith(entryHead + `"request":{"method":"POST","url":"https://a.test/token","headers":[],"postData":` + c.post + `},"response":{"status":200,"headers":[],"content":{"size":0}}}`)))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(exs[0].ReqBody); got != c.body || exs[0].ReqTruncated != c.truncated {
				t.Errorf("body %q truncated %v, want %q %v", got, exs[0].ReqTruncated, c.body, c.truncated)
			}
		})
	}
}

// Regression: a response whose content has no text (Playwright's
// content "omit", chrome-har-capturer after a navigation) is a body not
// recorded, not an empty body; a redirect or a 204 without text is empty.
func TestReadHARContentWithoutText(t *testing.T) {
	for _, c := range []struct {
		status    int
		content   string
		truncated bool
	}{
		{200, `{"size":-1,"mimeType":"application/json"}`, true},
		{200, `{"mimeType":"application/json"}`, true},
		{200, `{"size":120,"mimeType":"application/json"}`, true},
		{200, `{"size":0,"mimeType":"application/json"}`, false},
		{200, `{"size":2,"mimeType":"application/json","text":"{}"}`, false},
		{302, `{"size":-1,"mimeType":""}`, false},
		{204, `{"mimeType":""}`, false},
	} {
		exs, err := Read(strings.NewReader(harWith(entryHead + fmt.Sprintf(`"request":{"method":"GET","url":"https://a.test/x","headers":[]},"response":{"status":%d,"headers":[],"content":%s}}`, c.status, c.content))))
		if err != nil {
			t.Fatal(err)
		}
		if exs[0].RespTruncated != c.truncated {
			t.Errorf("%d %s: truncated %v, want %v", c.status, c.content, exs[0].RespTruncated, c.truncated)
		}
	}
}

func TestReadFileNamesTheFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "cut.har")
	if err := os.WriteFile(bad, []byte(`{"log":{"entries":[{`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadFile of a cut file: %v", err)
	}
	exs, err := ReadFile("testdata/firefox-153-navigated.har")
	if err != nil || len(exs) != 22 {
		t.Errorf("ReadFile: %d exchanges, %v", len(exs), err)
	}
}
