package report_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/report"
)

// FuzzTextAndMarkdownWriters: whatever a request target, a state, a Location
// or a body holds (anyone who reaches the tunnel writes them), the text and
// markdown reports that a person reads in a terminal carry no raw control
// character other than newline and tab.
func FuzzTextAndMarkdownWriters(f *testing.F) {
	f.Add("st\x1b]0;pwned\x07ate", "/authorize", "\x1b[2Jbody", "https://c.example/cb?code=x&state=")
	f.Add("a\x9bb", "/cb\x00?x", "\r\x7f", "\x1b")
	f.Fuzz(func(t *testing.T, state, path, body, location string) {
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		exs := []mcptap.Exchange{
			{ID: mcptap.NewID(t0), Mode: mcptap.ModeReverse, Start: t0, Method: "GET", Scheme: "https", Host: "as.example",
				Target: path + "?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fc.example%2Fcb&state=" + state,
				Status: 302, RespHeader: http.Header{"Location": {location + state}}, Complete: true},
			{ID: mcptap.NewID(t0.Add(time.Second)), Mode: mcptap.ModeReverse, Start: t0.Add(time.Second), Method: "POST", Scheme: "https",
				Host: "as.example", Target: "/token", ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				ReqBody: []byte("grant_type=authorization_code&code=x"), Status: 400, RespBody: []byte(body), Complete: true},
		}
		r := report.Build(mcptap.Session{ID: "s\x1b[31m", Source: mcptap.SourceImport, Name: state}, exs, report.Options{Redact: true, Key: []byte("k")})
		for _, format := range []string{"text", "markdown"} {
			var buf bytes.Buffer
			if err := r.Write(&buf, format); err != nil {
				t.Fatal(err)
			}
			if i := strings.IndexFunc(buf.String(), func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }); i >= 0 {
				t.Fatalf("%s report holds control character %U at %d:\n%q", format, []rune(buf.String()[i:])[0], i, buf.String())
			}
		}
	})
}
