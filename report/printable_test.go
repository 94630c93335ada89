package report_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

// hostile holds what a client, a server or a HAR can put in a state, a
// header or a body: an OSC title change, a screen clear, a carriage return
// that hides a line, a bell, C1 CSI, DEL and a byte that is not UTF-8.
const hostile = "\x1b]0;pwned\x07\x1b[2J\rfake line\x9b31m\x7f\xff"

func rawControls(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			out = append(out, s[i:i+n])
		}
		i += n
	}
	return out
}

// Regression (issue 12, HAR reading; issue 16, hostile bytes): control
// characters from recorded traffic reached the terminal raw in the text and
// markdown reports.
func TestReportsEscapeControlCharacters(t *testing.T) {
	exs := oauthtest.Fixtures[0].Exchanges()
	for i := range exs {
		exs[i].Target += "&x=" + hostile
		exs[i].RespHeader.Set("X-Evil", hostile)
		if exs[i].Status == 302 {
			exs[i].RespHeader.Set("Location", exs[i].RespHeader.Get("Location")+hostile)
		}
	}
	exs = append(exs, mcptap.Exchange{ID: "zz", Start: exs[len(exs)-1].Start, Method: "GET", Host: "mcp.example.com", Target: "/authorize?response_type=code&state=" + hostile, Status: 404, Complete: true})
	for _, redact := range []bool{true, false} {
		r := report.Build(mcptap.Session{ID: "s", Source: mcptap.SourceImport, Name: "evil" + hostile}, exs, report.Options{Redact: redact})
		for _, format := range []string{"text", "markdown"} {
			var buf bytes.Buffer
			if err := r.Write(&buf, format); err != nil {
				t.Fatal(err)
			}
			if bad := rawControls(buf.String()); len(bad) > 0 {
				t.Errorf("%s (redact %v): %d raw control sequences, first %q", format, redact, len(bad), bad[0])
			}
			if !strings.Contains(buf.String(), `\x1b`) {
				t.Errorf("%s: the escape is not shown: %.300s", format, buf.String())
			}
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add(hostile)
	f.Add("plain\ttext\n")
	f.Fuzz(func(t *testing.T, s string) {
		out := report.Printable(s)
		if bad := rawControls(out); len(bad) > 0 {
			t.Fatalf("Printable(%q) = %q keeps %q", s, out, bad[0])
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) is not UTF-8", s)
		}
	})
}

// Issue 12: the text and markdown reports say what was not checked because
// it was not recorded (here: a sanitized export without Authorization and
// the token response body left out).
func TestReportsSayWhatWasNotChecked(t *testing.T) {
	exs := oauthtest.Fixtures[0].Exchanges()
	for i := range exs {
		exs[i].Mode = mcptap.ModeHAR
		exs[i].ReqHeader.Del("Authorization")
		if strings.HasSuffix(exs[i].Target, "/token") {
			exs[i].RespBody, exs[i].RespTruncated = nil, true
		}
	}
	r := report.Build(mcptap.Session{ID: "s", Source: mcptap.SourceImport}, exs, report.Options{Redact: true})
	for _, format := range []string{"text", "markdown", "json"} {
		var buf bytes.Buffer
		if err := r.Write(&buf, format); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"token response body was not recorded", "Authorization header is not in the recording"} {
			if !strings.Contains(buf.String(), want) {
				t.Errorf("%s report does not say %q:\n%.3000s", format, want, buf.String())
			}
		}
	}
	if r.Worst() == mcptap.SevError {
		t.Errorf("what was not recorded was judged as a failure: %+v", r.Findings)
	}
}
