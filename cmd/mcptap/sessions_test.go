package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/recorder"
)

// runCmd runs the command line in-process, as main does, and returns stdout,
// stderr and the exit code. Other commands' tests use it too (report_test.go).
func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		code = 2
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// tempHome (used by other commands' tests as well) points MCPTAP_HOME (and HOME) at a fresh directory so the default
// database path is private to the test.
func tempHome(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "mcptap-home")
	t.Setenv("MCPTAP_HOME", home)
	t.Setenv("HOME", dir)
	return home
}

func harFixture(name string) string { return filepath.Join("..", "..", "har", "testdata", name) }

func TestImportSessionsExport(t *testing.T) {
	home := tempHome(t)

	out, _, code := runCmd(t, "sessions")
	if code != 0 || !strings.Contains(out, "no sessions") {
		t.Fatalf("sessions on no database: %d %q", code, out)
	}
	out, _, code = runCmd(t, "sessions", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("sessions --json on no database: %d %q", code, out)
	}

	out, errs, code := runCmd(t, "import", harFixture("chrome-sanitized.har"))
	if code != 0 {
		t.Fatalf("import chrome: %d %s", code, errs)
	}
	chromeID := strings.TrimSpace(out)
	out, errs, code = runCmd(t, "import", harFixture("firefox.har"))
	if code != 0 {
		t.Fatalf("import firefox: %d %s", code, errs)
	}
	firefoxID := strings.TrimSpace(out)
	if chromeID == "" || firefoxID == "" || chromeID == firefoxID {
		t.Fatalf("import IDs %q %q", chromeID, firefoxID)
	}

	db := filepath.Join(home, "mcptap.db")
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("default database: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("MCPTAP_HOME: %v %v", fi.Mode(), err)
	}

	out, _, code = runCmd(t, "sessions")
	if code != 0 {
		t.Fatalf("sessions: %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range []struct {
		id string
		n  string
	}{{chromeID, "5"}, {firefoxID, "3"}} {
		f := strings.Fields(lines[i+1])
		if f[0] != want.id || f[1] != "import" || f[len(f)-1] != want.n {
			t.Errorf("row %d: %q", i, lines[i+1])
		}
	}

	out, _, code = runCmd(t, "sessions", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 {
		t.Fatalf("sessions --json: %v %q", err, out)
	}
	if len(list) != 2 || list[0]["id"] != chromeID || list[0]["source"] != "import" || list[0]["exchanges"] != float64(5) || list[0]["started"] == "" {
		t.Errorf("sessions --json: %v", list)
	}

	// Default: the latest session, redacted.
	dir := t.TempDir()
	red := filepath.Join(dir, "latest.har")
	if _, errs, code := runCmd(t, "export", "--har", red); code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	if fi, err := os.Stat(red); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: %v %v", fi.Mode(), err)
	}
	exs := readExportedHAR(t, red)
	if len(exs) != 3 {
		t.Errorf("latest export has %d exchanges, want firefox's 3", len(exs))
	}
	b, _ := os.ReadFile(red)
	if bytes.Contains(b, []byte("s3cr3t")) || !bytes.Contains(b, []byte("redacted")) {
		t.Errorf("redacted export leaks the cookie")
	}

	// A named session, not redacted, over an existing file with a wider mode.
	plain := filepath.Join(dir, "plain.har")
	if err := os.WriteFile(plain, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "export", firefoxID[:len(firefoxID)-1], "--har", plain, "--no-redact"); code != 0 {
		t.Fatalf("export --no-redact: %d %s", code, errs)
	}
	b, _ = os.ReadFile(plain)
	if !bytes.Contains(b, []byte("s3cr3t")) {
		t.Errorf("--no-redact export lost the cookie")
	}
	if fi, _ := os.Stat(plain); fi.Mode().Perm() != 0o600 {
		t.Errorf("overwritten export mode %v, want 0600", fi.Mode().Perm())
	}
	if exs := readExportedHAR(t, plain); len(exs) != 3 || exs[0].ReqHeader.Get("Cookie") != "sid=s3cr3t" {
		t.Errorf("plain export read back: %d", len(exs))
	}

	// Export of a chrome import, to stdout, reads back with the raw target.
	out, _, code = runCmd(t, "export", chromeID, "--har", "-", "--no-redact")
	if code != 0 {
		t.Fatalf("export to stdout: %d", code)
	}
	back, err := har.Read(strings.NewReader(out))
	if err != nil || len(back) != 5 || !strings.HasSuffix(back[0].Target, "&x=%zz") {
		t.Errorf("stdout export: %v %d", err, len(back))
	}
}

func readExportedHAR(t *testing.T, path string) []mcptap.Exchange {
	t.Helper()
	exs, err := har.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return exs
}

func TestImportRefusesBadHAR(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "x", "m.db")
	bad := filepath.Join(t.TempDir(), "bad.har")
	err := os.WriteFile(bad, []byte(`{"log":{"version":"1.2","entries":[
 {"startedDateTime":"2026-11-24T16:30:00Z","request":{"method":"GET","url":"https://a.test/"},"response":{"status":200}},
 {"startedDateTime":"2026-11-24T16:30:01Z","request":{"method":"GET"},"response":{"status":200}}]}}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCmd(t, "--db", db, "import", bad)
	if code != 2 || !strings.Contains(errs, "entry 1: request.url: missing") || !strings.Contains(errs, bad) {
		t.Fatalf("bad HAR: code %d, %q", code, errs)
	}
	// Nothing half-imported: the database was not even created.
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("database touched by a failed import: %v", err)
	}
	_, errs, code = runCmd(t, "--db", db, "import", filepath.Join(t.TempDir(), "missing.har"))
	if code != 2 || !strings.Contains(errs, "missing.har") {
		t.Errorf("missing file: %d %q", code, errs)
	}
	if _, _, code := runCmd(t, "import"); code != 2 {
		t.Errorf("import without a file: %d", code)
	}
}

func TestExportErrors(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "m.db")
	out := filepath.Join(t.TempDir(), "o.har")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"export", "--har", out}, "no database"},
		{[]string{"export"}, "--har"},
	} {
		_, errs, code := runCmd(t, append([]string{"--db", db}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: %d %q", tc.args, code, errs)
		}
	}
	if _, errs, code := runCmd(t, "--db", db, "import", harFixture("mitmproxy.har")); code != 0 {
		t.Fatal(errs)
	}
	_, errs, code := runCmd(t, "--db", db, "export", "ffff", "--har", out)
	if code != 2 || !strings.Contains(errs, "not found") {
		t.Errorf("unknown session: %d %q", code, errs)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed export left a file: %v", err)
	}
}

func TestSessionsShowsCrashedAndDropped(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "m.db")
	s, err := recorder.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, sess := range []mcptap.Session{
		{ID: mcptap.NewID(now), Source: mcptap.SourceProxy, Name: "http://localhost:3000", Started: now},
		{ID: mcptap.NewID(now.Add(time.Second)), Source: mcptap.SourceProxy, Started: now},
	} {
		if err := s.CreateSession(sess); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := s.Sessions()
	if err := s.EndSession(list[1].ID, now.Add(time.Minute), 12); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, _, code := runCmd(t, "--db", db, "sessions")
	if code != 0 || !strings.Contains(out, "crashed?") || !strings.Contains(out, "(12 dropped)") {
		t.Errorf("sessions:\n%s", out)
	}
	out, _, _ = runCmd(t, "--db", db, "sessions", "--json")
	var js []map[string]any
	json.Unmarshal([]byte(out), &js)
	if len(js) != 2 || js[0]["state"] != "crashed?" || js[0]["ended"] != nil || js[1]["dropped"] != float64(12) {
		t.Errorf("json: %s", out)
	}
}

func TestSessionsDatabaseInUse(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "m.db")
	s, err := recorder.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, args := range [][]string{{"sessions"}, {"import", harFixture("firefox.har")}, {"export", "--har", filepath.Join(t.TempDir(), "x.har")}} {
		start := time.Now()
		_, errs, code := runCmd(t, append([]string{"--db", db}, args...)...)
		if code != 3 || !strings.Contains(errs, db) || !strings.Contains(errs, "another mcptap") {
			t.Errorf("%v while in use: %d %q", args, code, errs)
		}
		if took := time.Since(start); took > hangLimit {
			t.Errorf("%v took %v: it waited for the lock instead of refusing", args, took)
		}
	}
}

// TestRunExitCodes goes through run, as main does: a good import is 0, an
// unreadable HAR and a missing --har are 2.
func TestRunExitCodes(t *testing.T) {
	tempHome(t)
	db := filepath.Join(t.TempDir(), "m.db")
	bad := filepath.Join(t.TempDir(), "bad.har")
	if err := os.WriteFile(bad, []byte(`{"log":{"entries":[{"request":{}}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(harFixture("mitmproxy.har"))
	if err != nil {
		t.Fatal(err)
	}
	// Two HAR documents in one file (issue 12): half a file is never read silently.
	twice := filepath.Join(t.TempDir(), "twice.har")
	if err := os.WriteFile(twice, append(append(good, '\n'), good...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--db", db, "import", harFixture("mitmproxy.har")}, 0},
		{[]string{"--db", db, "import", bad}, 2},
		{[]string{"--db", db, "import", twice}, 2},
		{[]string{"--db", db, "report", twice}, 2},
		{[]string{"--db", db, "export"}, 2},
		{[]string{"--db", db, "sessions", "extra"}, 2},
		{[]string{"--db", db, "sessions", "--bogus"}, 2},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("run(%q) = %d, want %d", tc.args, got, tc.code)
		}
	}
}

// Issue 16, hostile bytes: an imported file's name (sessions) and a decoded
// value (decode) reached the terminal with their control characters raw.
func TestSessionsAndDecodeEscapeControlCharacters(t *testing.T) {
	tempHome(t)
	raw, err := os.ReadFile(harFixture("mitmproxy.har"))
	if err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(t.TempDir(), "evil\x1b]0;pwned\x07.har")
	if err := os.WriteFile(evil, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "import", evil); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	out, _, code := runCmd(t, "sessions")
	if code != 0 || strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `\x1b]0;pwned\x07`) {
		t.Errorf("sessions: %d %q", code, out)
	}
	out, _, code = runCmd(t, "decode", "state%1B%5B2Jx%3D1") // percent-encoded "state\x1b[2Jx=1"
	if code != 0 || strings.ContainsAny(out, "\x1b") || !strings.Contains(out, `\x1b[2J`) {
		t.Errorf("decode: %d %q", code, out)
	}
}

// export never replaces what is not a regular file: /dev/null stays the
// device (as root, a rename over it broke the machine), a directory and a
// symbolic link are refused with exit 2 and left as they were.
func TestExportTargets(t *testing.T) {
	tempHome(t)
	if _, errs, code := runCmd(t, "import", harFixture("firefox.har")); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	if _, errs, code := runCmd(t, "export", "--har", os.DevNull); code != 0 {
		t.Fatalf("export to %s: %d %s", os.DevNull, code, errs)
	}
	if fi, err := os.Lstat(os.DevNull); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is now %v (%v)", os.DevNull, fi.Mode(), err)
	}
	dir := t.TempDir()
	if _, errs, code := runCmd(t, "export", "--har", dir); code != 2 || !strings.Contains(errs, "directory") {
		t.Errorf("export to a directory: exit %d %q, want 2", code, errs)
	}
	target := filepath.Join(dir, "kept.har")
	os.WriteFile(target, []byte("kept"), 0o600)
	link := filepath.Join(dir, "link.har")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runCmd(t, "export", "--har", link); code != 2 || !strings.Contains(errs, "symbolic link") {
		t.Errorf("export to a symlink: exit %d %q, want 2", code, errs)
	}
	if b, _ := os.ReadFile(target); string(b) != "kept" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// A data directory that other users can enter gets a warning naming it.
func TestLooseDataDirWarns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	db := filepath.Join(dir, "m.db")
	if _, errs, code := runCmd(t, "--db", db, "import", harFixture("firefox.har")); code != 0 || !strings.Contains(errs, dir+" is mode 0755") {
		t.Errorf("import into a 0755 directory: exit %d, %q; want a warning naming it", code, errs)
	}
	os.Chmod(dir, 0o700)
	if _, errs, _ := runCmd(t, "--db", db, "sessions"); strings.Contains(errs, "warning") {
		t.Errorf("a 0700 directory warned: %q", errs)
	}
}
