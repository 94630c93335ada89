package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

// bigHAR writes a HAR of n authenticated MCP calls.
func bigHAR(t *testing.T, n int) string {
	t.Helper()
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	exs := make([]mcptap.Exchange, n)
	for i := range exs {
		at := start.Add(time.Duration(i) * time.Millisecond)
		exs[i] = mcptap.Exchange{ID: fmt.Sprintf("x%08d", i), Mode: mcptap.ModeReverse, Complete: true,
			Start: at, ResponseAt: at, End: at, Method: "POST", Scheme: "https", Host: "mcp.example.com", Target: "/mcp", Proto: "HTTP/1.1",
			ReqHeader:  http.Header{"Authorization": {"Bearer tok"}, "Content-Type": {"application/json"}},
			RespHeader: http.Header{"Content-Type": {"application/json"}}, Status: 200,
			ReqBody: []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call"}`), RespBody: []byte(`{"jsonrpc":"2.0","id":2,"result":{}}`)}
	}
	path := filepath.Join(t.TempDir(), "big.har")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := har.Write(f, mcptap.Session{ID: "big", Source: mcptap.SourceProxy}, exs, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// On a terminal, import, report and export keep a progress line on stderr
// and leave a one-line summary; into a pipe they print neither.
func TestProgressOnTerminalOnly(t *testing.T) {
	needTmux(t)
	bin := buildMcptap(t)
	src := bigHAR(t, 5000)
	home := t.TempDir()
	out := filepath.Join(t.TempDir(), "out.har")
	env := []string{"MCPTAP_HOME=" + home, progressEnv + "=1ms"}
	script := fmt.Sprintf("%s import %s >/dev/null && %s report --fail-on never >/dev/null && %s export --har %s", bin, src, bin, bin, out)
	s := startTmux(t, env, "sh", "-c", "'"+script+"'")
	screen := s.waitFor("mcptap-exit=")
	for _, want := range []string{"mcptap: imported 5000 exchanges in ", "mcptap: read and analysed 5000 exchanges (0 flows) in ", "mcptap: exported 5000 exchanges in ", "mcptap-exit=0"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q:\n%s", want, screen)
		}
	}

	// Not a terminal: nothing but what the commands always print.
	cmd := exec.Command(bin, "report", "--fail-on", "never", src)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("report into a pipe wrote to stderr: %q", stderr.String())
	}
}

// A phase names a file, whose name may carry control characters: the
// terminal gets them as escapes.
func TestProgressLineEscapesControls(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, began: time.Now(), stop: make(chan struct{})}
	p.Start("reading evil\x1b]0;pwned\x07.har", 100, "bytes")
	p.draw()
	if strings.Contains(b.String(), "\x1b]0") || strings.Contains(b.String(), "\x07") || !strings.Contains(b.String(), "evil") {
		t.Errorf("progress line %q", b.String())
	}
}
