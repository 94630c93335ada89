package live

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap/internal/syncbuf"
	"github.com/mcptap/mcptap/oauth/oauthtest"

	"github.com/mcptap/mcptap"
)

// TestPrintLinesExchangesAndFindings: the line view prints one line per
// complete exchange (not for head-only publications) and one "! severity
// rule [fault] title" line per finding of its oauth.Tracker.
func TestPrintLinesExchangesAndFindings(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("lines", 64)
	var out syncbuf.Buffer
	done := Lines(&out, sub, time.Minute)
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	authz := mcptap.Exchange{
		ID: "a1", Session: "s", Seq: 1, Listener: "127.0.0.1:8780", Mode: mcptap.ModeReverse,
		Start: t0, ResponseAt: t0.Add(5 * time.Millisecond), End: t0.Add(6 * time.Millisecond),
		Method: "GET", Scheme: "https", Host: "mcp.example.com",
		Target: "/authorize?response_type=code&client_id=c1&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect&state=abc123&code_challenge=xyz&code_challenge_method=S256",
		Status: 302, RespHeader: http.Header{"Location": {"https://chatgpt.com/connector_platform_oauth_redirect?code=c0de"}},
	}
	head := authz
	head.End = time.Time{}
	b.Publish(head) // head only: no line
	authz.Complete = true
	b.Publish(authz)
	b.Close()
	<-done
	got := out.String()
	t.Logf("\n%s", got)
	if n := strings.Count(got, " GET /authorize?"); n != 1 {
		t.Errorf("%d exchange lines for one exchange published twice", n)
	}
	if !strings.Contains(got, "127.0.0.1:8780 GET /authorize?response_type=code") || !strings.Contains(got, " 302 0B 6.0ms") {
		t.Errorf("exchange line format:\n%s", got)
	}
	if !strings.Contains(got, "! error state.not-echoed [auth-server] ") {
		t.Errorf("no state.not-echoed finding line:\n%s", got)
	}
}

// TestExchangeLineForms: the parts of an exchange line that vary.
func TestExchangeLineForms(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.Local)
	base := mcptap.Exchange{Listener: "127.0.0.1:8780", Method: "POST", Target: "/mcp", Start: t0, End: t0.Add(2500 * time.Microsecond), Status: 200, RespSize: 512}
	cases := []struct {
		name string
		edit func(*mcptap.Exchange)
		want string
	}{
		{"ok", func(*mcptap.Exchange) {}, "07:00:00.000 127.0.0.1:8780 POST /mcp 200 512B 2.5ms"},
		{"transport error", func(ex *mcptap.Exchange) { ex.Status, ex.Err, ex.RespSize = 0, "dial tcp: refused", 0 }, "07:00:00.000 127.0.0.1:8780 POST /mcp ERR(dial tcp: refused) 0B 2.5ms"},
		{"cut body", func(ex *mcptap.Exchange) { ex.Err = "unexpected EOF" }, "07:00:00.000 127.0.0.1:8780 POST /mcp 200 (unexpected EOF) 512B 2.5ms"},
		{"KiB, seconds", func(ex *mcptap.Exchange) { ex.RespSize, ex.End = 1536, t0.Add(1234567*time.Microsecond) }, "07:00:00.000 127.0.0.1:8780 POST /mcp 200 1.5KiB 1.235s"},
		{"MiB", func(ex *mcptap.Exchange) { ex.RespSize = 3 << 20 }, "07:00:00.000 127.0.0.1:8780 POST /mcp 200 3.0MiB 2.5ms"},
		{"size unknown", func(ex *mcptap.Exchange) { ex.RespSize = -1 }, "07:00:00.000 127.0.0.1:8780 POST /mcp 200 ? 2.5ms"},
		{"long target", func(ex *mcptap.Exchange) { ex.Target = "/" + strings.Repeat("a", 400) }, "07:00:00.000 127.0.0.1:8780 POST /" + strings.Repeat("a", 299) + "… 200 512B 2.5ms"},
	}
	for _, tc := range cases {
		ex := base
		tc.edit(&ex)
		if got := string(appendExchangeLine(nil, &ex)); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	// Appending reuses the buffer it is given.
	buf := make([]byte, 0, 256)
	if got := appendExchangeLine(buf, &base); &got[0] != &buf[:1][0] {
		t.Errorf("appendExchangeLine did not append into the buffer it was given")
	}
}

// TestPrintLinesWritesEachLineWhenIdle: the line view buffers only while more
// publications wait; one exchange on a quiet proxy is printed at once, while
// the subscription is still open, and a burst is printed whole.
func TestPrintLinesWritesEachLineWhenIdle(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("lines", 4096)
	var out syncbuf.Buffer
	done := Lines(&out, sub, time.Minute)
	t0 := time.Now()
	ex := func(i int) mcptap.Exchange {
		return mcptap.Exchange{
			ID: fmt.Sprintf("x%04d", i), Session: "s", Seq: uint64(i), Listener: "127.0.0.1:8780", Mode: mcptap.ModeReverse,
			Start: t0, ResponseAt: t0, End: t0, Method: "POST", Scheme: "http", Host: "h",
			Target: fmt.Sprintf("/mcp?n=%d", i), Status: 200, Complete: true,
		}
	}
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		// No deadline: the condition either comes or go test's -timeout
		// reports the hang with every goroutine's stack.
		for !ok(out.String()) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.Publish(ex(0))
	waitFor("a lone exchange", func(s string) bool { return strings.Contains(s, "POST /mcp?n=0 200") })
	for i := 1; i <= 2000; i++ {
		b.Publish(ex(i))
	}
	waitFor("a burst of 2000", func(s string) bool { return strings.Count(s, "POST /mcp?n=") == 2001 })
	b.Close()
	<-done
}

// Issue 16 (and the standards): the --no-tui line view printed request
// targets verbatim (/callback?code=…, ?access_token=…) and recorded control
// characters raw. Secrets are now keyed hashes and control characters
// escapes.
func TestLinesRedactTargetsAndEscapeControls(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("lines", 64)
	var out syncbuf.Buffer
	done := Lines(&out, sub, time.Minute)
	t0 := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	for i, target := range []string{
		"/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz",
		"/mcp?access_token=eyJhbGciOiJIUzI1NiJ9.e30.sig&x=1",
		"/path\x1b]0;pwned\x07?refresh_token=rt-secret-value#frag",
	} {
		b.Publish(mcptap.Exchange{ID: fmt.Sprintf("x%d", i), Start: t0, End: t0, Method: "GET", Target: target, Status: 200, Complete: true, Listener: "127.0.0.1:8780"})
	}
	b.Close()
	<-done
	got := out.String()
	for _, secret := range []string{"SplxlOBeZQQYbYS6WxSbIA", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "rt-secret-value", "\x1b", "\x07"} {
		if strings.Contains(got, secret) {
			t.Errorf("line view shows %q:\n%s", secret, got)
		}
	}
	for _, want := range []string{"code=‹redacted:len=22:", "state=xyz", "&x=1", `\x1b]0;pwned\x07`} {
		if !strings.Contains(got, want) {
			t.Errorf("line view lacks %q:\n%s", want, got)
		}
	}
}

// A discovery flaw that the client went past is an error while it might stop
// there and a warning once it went on (the fourth principle). The line view
// printed it once, as raised; it now also prints the correction.
func TestLinesCorrectSettledFindings(t *testing.T) {
	var fx oauthtest.Fixture
	for _, f := range oauthtest.Fixtures {
		if f.Name == "discovery-issuer-slash-passed" {
			fx = f
		}
	}
	b := mcptap.NewBroker()
	sub := b.Subscribe("lines", 1024)
	var out syncbuf.Buffer
	done := Lines(&out, sub, time.Minute)
	for _, ex := range fx.Exchanges() {
		b.Publish(ex)
	}
	b.Close()
	<-done
	got := out.String()
	raised := strings.Index(got, "! error discovery.issuer-mismatch")
	fixed := strings.Index(got, "! now warning: discovery.issuer-mismatch")
	if raised < 0 || fixed < raised {
		t.Fatalf("want the finding raised as an error, then corrected to a warning:\n%s", got)
	}
}
