package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testDamagedDatabase: a database damaged on disk (truncated, a zeroed or
// scrambled page, flipped headers) never makes a command panic or die on a
// signal: each either works or exits 3 naming the file and what to do, and
// `sessions --salvage` copies what is readable into a new file that works.
func testDamagedDatabase(t *testing.T, bin string) {
	home := t.TempDir()
	good := filepath.Join(t.TempDir(), "good.db")
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+home)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), errb.String(), 0
		case errors.As(err, &ee) && ee.Exited():
			return out.String(), errb.String(), ee.ExitCode()
		}
		t.Fatalf("%v: %v (killed by a signal?)\n%s", args, err, errb.String())
		return "", "", -1
	}
	for _, h := range []string{"firefox.har", "chrome-sanitized.har", "mitmproxy.har", "charles.har"} {
		if _, errs, code := run("--db", good, "import", harFixture(h)); code != 0 {
			t.Fatalf("import %s: %d %s", h, code, errs)
		}
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 16 << 10
	var used []int // pages that hold something
	for off := 2 * page; off+page <= len(orig); off += page {
		if bytes.ContainsFunc(orig[off:off+page], func(r rune) bool { return r != 0 }) {
			used = append(used, off/page)
		}
	}
	if len(used) < 3 {
		t.Fatalf("only %d used pages: the database is too small to damage meaningfully", len(used))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	damages := map[string]func([]byte) []byte{
		"truncated":      func(b []byte) []byte { return b[:used[len(used)/2]*page+page/2] },
		"zeroed-page":    func(b []byte) []byte { clear(b[used[len(used)/2]*page : used[len(used)/2]*page+page]); return b },
		"scrambled-page": func(b []byte) []byte { p := used[len(used)-1] * page; rngFill(rng, b[p+64:p+page]); return b },
		"scrambled-pages": func(b []byte) []byte {
			for _, u := range used {
				rngFill(rng, b[u*page+16:u*page+page/2])
			}
			return b
		},
		"first-meta": func(b []byte) []byte { rngFill(rng, b[16:64]); return b },
		"both-metas": func(b []byte) []byte { rngFill(rng, b[16:64]); rngFill(rng, b[page+16:page+64]); return b },
		"tiny":       func(b []byte) []byte { return b[:100] },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), name+".db")
			if err := os.WriteFile(db, damage(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"sessions"}, {"sessions", "--json"}, {"report", "--fail-on", "never"}, {"report", "--format", "json", "--fail-on", "never"},
				{"export", "--har", filepath.Join(t.TempDir(), "x.har")}, {"replay", "--no-tui"},
			} {
				_, errs, code := run(append([]string{"--db", db}, args...)...)
				if strings.Contains(errs, "panic") || strings.Contains(errs, "goroutine ") {
					t.Errorf("%v crashed:\n%s", args, errs)
					continue
				}
				if code != 0 && (code != 3 || !strings.Contains(errs, db)) {
					t.Errorf("%v: exit %d %q; want 0, or 3 naming the file", args, code, errs)
				}
				if code == 3 && !strings.Contains(errs, "--salvage") && !strings.Contains(errs, "move it aside") {
					t.Errorf("%v: exit 3 without saying what to do: %q", args, errs)
				}
			}
			out := filepath.Join(t.TempDir(), "salvaged.db")
			sout, errs, code := run("--db", db, "sessions", "--salvage", out)
			if strings.Contains(errs, "panic") {
				t.Fatalf("salvage crashed:\n%s", errs)
			}
			switch {
			case code == 0:
				if _, errs, c := run("--db", out, "sessions", "--json"); c != 0 {
					t.Errorf("the salvaged file does not open: %d %s", c, errs)
				}
				t.Logf("salvage: %s", strings.TrimSpace(sout))
			case code == 3 && strings.Contains(errs, db):
				t.Logf("nothing to salvage: %s", strings.TrimSpace(errs))
			default:
				t.Errorf("salvage: exit %d %q", code, errs)
			}
		})
	}
	// Undamaged, salvage copies everything.
	out := filepath.Join(t.TempDir(), "copy.db")
	sout, errs, code := run("--db", good, "sessions", "--salvage", out)
	if code != 0 || !strings.Contains(sout, "copied 4 session(s)") {
		t.Errorf("salvage of a sound file: %d %q %q", code, sout, errs)
	}
	a, _, _ := run("--db", good, "report", "--format", "json", "--fail-on", "never", "--no-redact")
	b, _, _ := run("--db", out, "report", "--format", "json", "--fail-on", "never", "--no-redact")
	if a == "" || a != b {
		t.Errorf("the salvaged copy reports differently from the original")
	}
}

func rngFill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
