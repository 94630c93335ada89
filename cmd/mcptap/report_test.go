package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func oauthFixture(name string) string {
	return filepath.Join("..", "..", "oauth", "testdata", name+".har")
}

type jsonReport struct {
	Session struct {
		ID        string `json:"id"`
		Source    string `json:"source"`
		Exchanges int    `json:"exchanges"`
	} `json:"session"`
	Flows []struct {
		ID      string `json:"id"`
		Client  string `json:"client"`
		Verdict struct{ Rule, Severity, Fault string }
	} `json:"flows"`
	Findings []struct{ ID, Rule, Severity, Fault, Detail, Fix, Flow string } `json:"findings"`
}

func parseReport(t *testing.T, out string) jsonReport {
	t.Helper()
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, out)
	}
	return r
}

// The seed reports, fed as HAR files, name the cause and the side at fault,
// and the exit code follows --fail-on.
func TestReportSeeds(t *testing.T) {
	tempHome(t)
	cases := []struct {
		har, rule, fault, client string
	}{
		{"seed000-browser", "callback.state-not-found", "client", "chatgpt"},
		{"seed000-server", "token.never-called", "client", "chatgpt"},
		{"seed001-plugin", "state.not-echoed", "auth-server", "chatgpt"},
	}
	for _, c := range cases {
		out, errOut, code := runCmd(t, "report", oauthFixture(c.har), "--format", "json")
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (stderr %s)", c.har, code, errOut)
		}
		r := parseReport(t, out)
		if len(r.Flows) == 0 {
			t.Fatalf("%s: no flows", c.har)
		}
		v := r.Flows[0].Verdict
		if v.Rule != c.rule || v.Fault != c.fault || r.Flows[0].Client != c.client {
			t.Errorf("%s: verdict %s/%s client %s, want %s/%s %s", c.har, v.Rule, v.Fault, r.Flows[0].Client, c.rule, c.fault, c.client)
		}
		if r.Session.Source != "import" || r.Session.Exchanges == 0 {
			t.Errorf("%s: session %+v", c.har, r.Session)
		}
		if _, _, code := runCmd(t, "report", oauthFixture(c.har), "--fail-on", "never"); code != 0 {
			t.Errorf("%s --fail-on never: exit %d, want 0", c.har, code)
		}
	}
}

func TestReportFailOnAndFormats(t *testing.T) {
	tempHome(t)
	// A warning-only flow: exit 0 with --fail-on error, 1 with warning.
	if _, errOut, code := runCmd(t, "report", oauthFixture("authorize-resource-missing")); code != 0 {
		t.Errorf("warning-only, --fail-on error: exit %d (%s)", code, errOut)
	}
	if _, _, code := runCmd(t, "report", oauthFixture("authorize-resource-missing"), "--fail-on", "warning"); code != 1 {
		t.Errorf("warning-only, --fail-on warning: exit %d, want 1", code)
	}
	out, _, code := runCmd(t, "report", oauthFixture("healthy-claude"), "--format", "text")
	if code != 0 || !strings.Contains(out, "VERDICTS") || !strings.Contains(out, "✓ ok") {
		t.Errorf("healthy text report: exit %d\n%s", code, out)
	}
	out, _, _ = runCmd(t, "report", oauthFixture("seed000-server"), "--format", "markdown")
	if !strings.Contains(out, "## mcptap report") || !strings.Contains(out, "`token.never-called`") {
		t.Errorf("markdown report:\n%s", out)
	}
	// Redaction: the code is hidden by default and shown with --no-redact.
	out, _, _ = runCmd(t, "report", oauthFixture("healthy-claude"), "--format", "json")
	outRaw, _, _ := runCmd(t, "report", oauthFixture("healthy-claude"), "--format", "json", "--no-redact")
	if !strings.Contains(out, "‹redacted:") || strings.Contains(outRaw, "‹redacted:") {
		t.Error("redaction markers: want them by default and none with --no-redact")
	}
	// --token-timeout moves the deadline: the token 1 s after the code is late with 500ms.
	out, _, _ = runCmd(t, "report", oauthFixture("healthy-claude"), "--format", "json", "--token-timeout", "500ms")
	if r := parseReport(t, out); r.Flows[0].Verdict.Rule != "token.never-called" {
		t.Errorf("--token-timeout 500ms: verdict %s, want token.never-called", r.Flows[0].Verdict.Rule)
	}
}

func TestReportUsageErrors(t *testing.T) {
	home := tempHome(t)
	bad := filepath.Join(home, "bad.har")
	_ = os.MkdirAll(home, 0o700)
	if err := os.WriteFile(bad, []byte(`{"log":{"version":"1.2","entries":[{"startedDateTime":"2026-01-01T00:00:00Z","request":{"method":"GET"}}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"report", oauthFixture("healthy-claude"), "--format", "yaml"},
		{"report", oauthFixture("healthy-claude"), "--fail-on", "sometimes"},
		{"report", filepath.Join(home, "missing.har")},
		{"report", bad},
		{"report", "a", "b"},
		{"report"}, // no database yet
		{"decode"},
	} {
		_, errOut, code := runCmd(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
		if errOut == "" {
			t.Errorf("%v: no message", args)
		}
	}
	_, errOut, _ := runCmd(t, "report", bad)
	if !strings.Contains(errOut, "entry 0") || !strings.Contains(errOut, "request.url") {
		t.Errorf("bad HAR message %q does not name the entry and field", errOut)
	}
}

// A stored session (import, then report the latest and by ID prefix).
func TestReportStoredSession(t *testing.T) {
	tempHome(t)
	id, errOut, code := runCmd(t, "import", oauthFixture("state-altered-plus-to-space"))
	if code != 0 {
		t.Fatalf("import: exit %d %s", code, errOut)
	}
	id = strings.TrimSpace(id)
	for _, args := range [][]string{{"report", "--format", "json"}, {"report", id[:10], "--format", "json"}} {
		out, errOut, code := runCmd(t, args...)
		if code != 1 {
			t.Fatalf("%v: exit %d (%s)", args, code, errOut)
		}
		r := parseReport(t, out)
		if r.Session.ID != id || r.Flows[0].Verdict.Rule != "state.altered" || r.Flows[0].Verdict.Fault != "auth-server" {
			t.Errorf("%v: session %s verdict %+v", args, r.Session.ID, r.Flows[0].Verdict)
		}
		var altered bool
		for _, f := range r.Findings {
			altered = altered || (f.Rule == "state.altered" && strings.Contains(f.Detail, "'+' became a space"))
		}
		if !altered {
			t.Errorf("%v: no state.altered finding naming plus-to-space", args)
		}
	}
}

func TestDecodeCommand(t *testing.T) {
	state := "eyJjc3JmIjoiZDA2Mzg3Y2Y3ZDViYTk2YiIsInMiOiJvYXV0aF9zXzY5ZGE2ZDMzNjIyMDgxOTE5ZThiNWU0M2M4OWZmNjAxIn0%3D"
	out, _, code := runCmd(t, "decode", state)
	for _, want := range []string{"percent-decoded", "base64", `"csrf": "d06387cf7d5ba96b"`, "oauth_s_69da6d33622081919e8b5e43c89ff601", "ChatGPT connector OAuth state"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("decode state: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	out, _, _ = runCmd(t, "decode", "https://chatgpt.com/connector/oauth/x?code=abc&state="+state)
	if !strings.Contains(out, "state:") || !strings.Contains(out, "code:") || !strings.Contains(out, "oauth_s_") {
		t.Errorf("decode URL:\n%s", out)
	}
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3guZXhhbXBsZS9tY3AiLCJleHAiOjE3OTAwMDAwMDB9.c2ln"
	out, _, _ = runCmd(t, "decode", jwt)
	if !strings.Contains(out, `"aud": "https://x.example/mcp"`) || !strings.Contains(out, "expire") {
		t.Errorf("decode JWT:\n%s", out)
	}
	out, _, _ = runCmd(t, "decode", "--json", "opaque-token-value")
	var m map[string][]map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["value"][0]["kind"] != "raw" {
		t.Errorf("decode --json: %v\n%s", err, out)
	}
}

// The real binary: exit codes as CLI.md says.
func TestReportBinaryExitCodes(t *testing.T) {
	bin := buildMcptap(t)
	home := t.TempDir()
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"report", oauthFixture("healthy-chatgpt")}, 0},
		{[]string{"report", oauthFixture("seed000-browser")}, 1},
		{[]string{"report", oauthFixture("seed000-browser"), "--format", "nope"}, 2},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+home)
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != c.want {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, got, c.want, out)
		}
	}
}
