package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var goldenKey = []byte("mcptap golden test key, not a secret")

func fixture(t *testing.T, name string) oauthtest.Fixture {
	t.Helper()
	for _, fx := range oauthtest.Fixtures {
		if fx.Name == name {
			return fx
		}
	}
	t.Fatalf("no fixture %q", name)
	return oauthtest.Fixture{}
}

func session(name string) mcptap.Session {
	return mcptap.Session{ID: "0188f1c2a3b4c5d6000001", Source: mcptap.SourceImport, Name: name + ".har", Started: oauthtest.T0}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the output (run go test ./report -update and review the diff):\n%s", path, got)
	}
}

// Golden files of every format for the seeds, a healthy flow and a state
// alteration, with a fixed redaction key so hashes are stable.
func TestGolden(t *testing.T) {
	for _, name := range []string{"healthy-chatgpt", "seed000-browser", "seed000-server", "seed001-plugin", "state-altered-plus-to-space", "healthy-upstream-idp"} {
		fx := fixture(t, name)
		r := report.Build(session(name), fx.Exchanges(), report.Options{Redact: true, Key: goldenKey, Detail: true})
		for _, format := range report.Formats {
			var buf bytes.Buffer
			if err := r.Write(&buf, format); err != nil {
				t.Fatal(err)
			}
			ext := map[string]string{"text": ".txt", "markdown": ".md", "json": ".json", "html": ".html", "junit": ".junit.xml", "sarif": ".sarif"}[format]
			golden(t, filepath.Join("testdata", name+ext), buf.Bytes())
		}
	}
}

// The JSON report carries every field CLI.md guarantees.
func TestJSONShape(t *testing.T) {
	fx := fixture(t, "seed000-server")
	r := report.Build(session(fx.Name), fx.Exchanges(), report.Options{Redact: true, Key: goldenKey})
	var buf bytes.Buffer
	if err := r.Write(&buf, "json"); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	sess := m["session"].(map[string]any)
	for _, k := range []string{"id", "source", "exchanges"} {
		if _, ok := sess[k]; !ok {
			t.Errorf("session.%s missing", k)
		}
	}
	flow := m["flows"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "client", "state", "hops", "verdict", "findings"} {
		if _, ok := flow[k]; !ok {
			t.Errorf("flows[0].%s missing", k)
		}
	}
	st := flow["state"].(map[string]any)
	if _, ok := st["raw"]; !ok {
		t.Error("flows[0].state.raw missing")
	}
	if d, ok := st["decoded"].(map[string]any); !ok || !strings.HasPrefix(d["s"].(string), "oauth_s_") {
		t.Errorf("flows[0].state.decoded = %v, want the ChatGPT csrf/s object", st["decoded"])
	}
	hop := flow["hops"].([]any)[0].(map[string]any)
	for _, k := range []string{"kind", "exchange", "status"} {
		if _, ok := hop[k]; !ok {
			t.Errorf("hops[0].%s missing", k)
		}
	}
	v := flow["verdict"].(map[string]any)
	if v["rule"] != "token.never-called" || v["severity"] != "error" || v["fault"] != "client" {
		t.Errorf("verdict = %v", v)
	}
	fd := m["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "rule", "severity", "fault", "title", "detail", "fix", "flow", "exchanges"} {
		if _, ok := fd[k]; !ok {
			t.Errorf("findings[0].%s missing", k)
		}
	}
	healthy := report.Build(session("h"), fixture(t, "healthy-claude").Exchanges(), report.Options{})
	if v := healthy.Flows[0].Verdict; v.Rule != "ok" || v.Severity != "info" || v.Fault != "none" {
		t.Errorf("healthy verdict = %+v, want ok/info/none", v)
	}
	if healthy.Worst() != "" {
		t.Errorf("healthy Worst() = %q, want none", healthy.Worst())
	}
	if r.Worst() != mcptap.SevError {
		t.Errorf("Worst() = %q, want error", r.Worst())
	}
}

// Redaction hides codes and tokens everywhere, keeps equal values equal and
// leaves the state visible; --no-redact shows the values.
func TestRedaction(t *testing.T) {
	fx := fixture(t, "healthy-chatgpt")
	exs := fx.Exchanges()
	var code, access string
	for _, ex := range exs {
		if loc := ex.RespHeader.Get("Location"); strings.Contains(loc, "code=") {
			code = strings.Split(strings.Split(loc, "code=")[1], "&")[0]
		}
		if strings.Contains(string(ex.RespBody), "access_token") {
			var m map[string]any
			_ = json.Unmarshal(ex.RespBody, &m)
			access, _ = m["access_token"].(string)
		}
	}
	if code == "" || access == "" {
		t.Fatal("fixture lacks code or token")
	}
	for _, redact := range []bool{true, false} {
		r := report.Build(session(fx.Name), exs, report.Options{Redact: redact, Key: goldenKey})
		for _, format := range []string{"text", "markdown", "json"} {
			var buf bytes.Buffer
			if err := r.Write(&buf, format); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if redact && (strings.Contains(out, code) || strings.Contains(out, access)) {
				t.Errorf("%s report (redacted) shows the code or the access token", format)
			}
			if !redact && !strings.Contains(out, code) {
				t.Errorf("%s report (--no-redact) hides the code", format)
			}
			if st := r.Flows[0].State.Raw; st == "" || !strings.Contains(out, st[:60]) {
				t.Errorf("%s report hides the state", format)
			}
		}
		if redact {
			var buf bytes.Buffer
			_ = r.Write(&buf, "text")
			// The code appears in the redirect and the token request's hop URL? Only in
			// the redirect; but the same hash must appear for each occurrence.
			if strings.Count(buf.String(), "‹redacted:len=") == 0 {
				t.Error("no redaction marker in the redacted report")
			}
		}
	}
	if err := (report.Report{}).Write(&bytes.Buffer{}, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

// Runs of identical MCP calls are one line in text and Markdown; JSON keeps
// every hop.
func TestCollapsedMCPRuns(t *testing.T) {
	fx := fixture(t, "healthy-claude")
	r := report.Build(session(fx.Name), fx.Exchanges(), report.Options{})
	var mcp int
	for _, h := range r.Flows[0].Hops {
		if h.Kind == mcptap.HopMCP {
			mcp++
		}
	}
	if mcp != 2 {
		t.Fatalf("%d mcp hops in JSON, want 2", mcp)
	}
	var buf bytes.Buffer
	if err := r.Write(&buf, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "mcp ×2") {
		t.Errorf("text does not collapse the two MCP calls:\n%s", buf.String())
	}
}

// A flow that connected with warnings reads "! ok (complete) with N
// warning(s)" in text and markdown, never "✓": the live view marks it so too.
func TestOkWithWarningsIsNotTicked(t *testing.T) {
	seen := 0
	for _, fx := range oauthtest.Fixtures {
		r := report.Build(session(fx.Name), fx.Exchanges(), report.Options{})
		text, md := render(t, r, "text"), render(t, r, "markdown")
		for _, f := range r.Flows {
			if f.Verdict.Rule != "ok" {
				continue
			}
			n := 0
			for _, fd := range r.Findings {
				if fd.Flow == f.ID && fd.Severity == mcptap.SevWarning {
					n++
				}
			}
			line := fmt.Sprintf("%s  ✓ ok (%s)\n", f.ID, f.Status)
			if n > 0 {
				seen++
				line = fmt.Sprintf("%s  ! ok (%s) with %d warning", f.ID, f.Status, n)
				if !bytes.Contains(md, []byte(fmt.Sprintf("| `%s` | ! `ok`", f.ID))) {
					t.Errorf("%s: markdown does not mark flow %s with warnings '!'", fx.Name, f.ID)
				}
			}
			if !bytes.Contains(text, []byte(line)) {
				t.Errorf("%s: text lacks %q", fx.Name, line)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no fixture has a flow that connected with warnings")
	}
}
