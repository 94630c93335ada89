package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/lab"
)

// labServer starts a lab world for sc (its faults as given) answering under
// the public MCP origin a recording used.
func labServer(t *testing.T, sc lab.Scenario, mcpHost string) string {
	t.Helper()
	w, err := lab.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	w.SetPublic(lab.ListenerMCP, "http://"+mcpHost)
	return w.Internal(lab.ListenerMCP)
}

// recordedMCPHost is the Host the recorded MCP requests of the only session in db carried.
func recordedMCPHost(t *testing.T, db string) (string, string) {
	t.Helper()
	store, sess := latestSession(t, db)
	defer store.Close()
	host := ""
	_ = store.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		if host == "" && strings.HasPrefix(ex.Target, "/mcp") {
			host = ex.Host
		}
		return nil
	})
	if host == "" {
		t.Fatal("the recording has no /mcp request")
	}
	return sess.ID, host
}

// The command end to end: record the no-s256 fault with `mcptap demo`, then
// re-send it to the fixed server (exit 0, the rule fixed), to a HAR export of
// it (the same), and to the still-broken server (exit 1, the rule stayed).
func TestReplaySend(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "mcptap.db")
	if out, errOut, code := runCmd(t, "demo", "--db", db, "--scenario", "no-s256", "--no-tui"); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	orig, host := recordedMCPHost(t, db)
	broken, _ := lab.Lookup("no-s256")
	healthy := broken
	healthy.AS = lab.ASFaults{}
	fixedURL := labServer(t, healthy, host)

	out, errOut, code := runCmd(t, "replay", "--db", db, orig[:12], "--send", "--upstream", fixedURL)
	if code != 0 {
		t.Fatalf("replay --send to the fixed server: exit %d\n%s\n%s", code, out, errOut)
	}
	fixedLine := regexp.MustCompile(`(?m)^fixed \(1\)\n  - error +discovery\.no-pkce-s256 \[auth-server\] before \d+, after 0$`)
	if !fixedLine.MatchString(out) || !strings.Contains(out, "the new session has no error finding") {
		t.Errorf("output does not report discovery.no-pkce-s256 as fixed:\n%s", out)
	}
	m := regexp.MustCompile(`as session (\w+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output names no new session:\n%s", out)
	}
	list, _, code := runCmd(t, "sessions", "--db", db, "--json")
	if code != 0 || !strings.Contains(list, `"id": "`+m[1]+`"`) && !strings.Contains(list, `"id":"`+m[1]+`"`) || !strings.Contains(list, `"replay"`) {
		t.Errorf("sessions does not list the new replay session %s:\n%s", m[1], list)
	}

	har := filepath.Join(t.TempDir(), "orig.har")
	if _, errOut, code := runCmd(t, "export", "--db", db, orig, "--har", har, "--no-redact"); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	out, errOut, code = runCmd(t, "replay", "--db", db, har, "--send", "--upstream", fixedURL)
	if code != 0 || !fixedLine.MatchString(out) {
		t.Errorf("replay FILE.har --send: exit %d\n%s\n%s", code, out, errOut)
	}

	t.Logf("HAR:\n%s", out)
	if _, errOut, code := runCmd(t, "replay", "--db", db, orig, "--send", "--upstream", fixedURL, "--from", "http://127.0.0.1:1"); code != 2 || !strings.Contains(errOut, "no recorded request went to http://127.0.0.1:1") {
		t.Errorf("--from naming no recorded upstream: exit %d, %q; want 2 and a message naming it", code, errOut)
	}
	// A redacted export is refused (exit 2); an upstream that is down is
	// exit 3 and nothing is reported as fixed.
	redacted := filepath.Join(t.TempDir(), "redacted.har")
	if _, errOut, code := runCmd(t, "export", "--db", db, orig, "--har", redacted); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runCmd(t, "replay", "--db", db, redacted, "--send", "--upstream", fixedURL); code != 2 || !strings.Contains(errOut, "redact") {
		t.Errorf("replay --send of a redacted export: exit %d %q, want 2 naming the redaction", code, errOut)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	out, errOut, code = runCmd(t, "replay", "--db", db, orig, "--send", "--upstream", downURL)
	if code != 3 || !strings.Contains(out, "nothing was checked") || strings.Contains(out, "fixed (") || !strings.Contains(errOut, "no response") {
		t.Errorf("replay --send to a stopped server: exit %d, want 3 saying nothing was checked\n%s\n%s", code, out, errOut)
	}
	brokenURL := labServer(t, broken, host)
	out, errOut, code = runCmd(t, "replay", "--db", db, orig, "--send", "--upstream", brokenURL)
	t.Logf("broken:\n%s", out)
	if code != 1 || !strings.Contains(out, "stayed (1)") || !strings.Contains(out, "= error    discovery.no-pkce-s256") {
		t.Errorf("replay --send to the broken server: exit %d, want 1 with the rule stayed\n%s\n%s", code, out, errOut)
	}
}

func TestReplaySendUsage(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "mcptap.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--db", db, "--send"}, "--send needs --upstream"},
		{[]string{"replay", "--db", db, "--upstream", "http://127.0.0.1:1"}, "only apply with --send"},
		{[]string{"replay", "--db", db, "--from", "http://127.0.0.1:1"}, "only apply with --send"},
		{[]string{"replay", "--db", db, "--send", "--upstream", "ftp://x"}, "--upstream"},
		{[]string{"replay", "--db", db, "--send", "--upstream", "http://127.0.0.1:1"}, "latest session"},
	} {
		_, errOut, code := runCmd(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}
