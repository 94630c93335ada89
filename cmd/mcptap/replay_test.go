package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var updateScreens = flag.Bool("update-screens", false, "write the tmux captures to tui/testdata/screens/")

// seedsHAR holds a healthy flow and the seed reports' failures (state not
// echoed, code issued with no token call, ChatGPT callback 404).
const seedsHAR = "../../tui/testdata/seeds.har"

// tmuxSession is a detached tmux server of its own (own socket, no user
// config) running one command in a 160x48 pane.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func needTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is required for the TUI end-to-end test (.ci/run installs it)")
		}
		t.Skip("tmux not installed")
	}
}

func startTmux(t *testing.T, env []string, args ...string) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, socket: fmt.Sprintf("mcptap-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())}
	// the pane stays after the program exits, showing its exit status
	cmdline := "env " + strings.Join(env, " ") + " " + strings.Join(args, " ") + "; echo mcptap-exit=$?; sleep 30"
	s.run("-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "48", "-s", "e2e", cmdline)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		s.run("send-keys", "-t", "e2e", k)
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *tmuxSession) capture(escapes bool) string {
	s.t.Helper()
	args := []string{"capture-pane", "-p", "-t", "e2e"}
	if escapes {
		args = append(args, "-e")
	}
	return s.run(args...)
}

// waitFor polls the pane until every want is on screen.
func (s *tmuxSession) waitFor(wants ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var screen string
	for time.Now().Before(deadline) {
		screen = s.capture(false)
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(screen, w)
		}
		if ok {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("screen never showed %q:\n%s", wants, screen)
	return ""
}

func saveScreen(t *testing.T, name, screen string) {
	t.Helper()
	if !*updateScreens {
		return
	}
	dir := "../../tui/testdata/screens"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTUICommands runs the real binary (built once: a build takes seconds):
// replay in and out of a terminal, and proxy's live view.
func TestTUICommands(t *testing.T) {
	bin := buildMcptap(t)
	t.Run("proxy-live", func(t *testing.T) { proxyLiveTUIInTmux(t, bin) })
	t.Run("demo-live", func(t *testing.T) { demoTUIInTmux(t, bin) })
	t.Run("tmux", func(t *testing.T) { replayTUIInTmux(t, bin) })
	t.Run("no-color", func(t *testing.T) { replayTUINoColor(t, bin) })
	t.Run("no-tui", func(t *testing.T) { replayNoTUIPrintsLines(t, bin) })
	t.Run("errors", func(t *testing.T) { replayErrors(t, bin) })
}

// The real binary in a real terminal: open a recorded session, walk to the
// failed flows and check that each names its rule and the side at fault.
func replayTUIInTmux(t *testing.T, bin string) {
	needTmux(t)
	home := t.TempDir()
	imp := exec.Command(bin, "import", seedsHAR)
	imp.Env = append(os.Environ(), "MCPTAP_HOME="+home)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	env := []string{"MCPTAP_HOME=" + home, "TERM=xterm-256color", "COLORTERM=", "NO_COLOR="}
	s := startTmux(t, env, bin, "replay")

	screen := s.waitFor("Flows (4)", "replay", "session ")
	saveScreen(t, "flows", screen)
	for _, want := range []string{"! Claude", "ok with 1 warning", "✗ ChatGPT", "state.not-echoed · auth-server", "token.never-called · client", "callback.state-not-found · client"} {
		if !strings.Contains(screen, want) {
			t.Errorf("flows screen lacks %q:\n%s", want, screen)
		}
	}
	if !regexp.MustCompile(`\x1b\[[0-9;]*3[1-7](;[0-9;]*)?m`).MatchString(s.capture(true)) {
		t.Error("no colour on a colour terminal")
	}

	// Seed 001: state not echoed by the authorization server.
	s.keys("j", "Enter")
	screen = s.waitFor("Hop timeline", "verdict  state.not-echoed")
	saveScreen(t, "flow-state-not-echoed", screen)
	for _, want := range []string{"fault: auth-server (authorization server)", "◀ chain broke here", "(absent)", "Fix:"} {
		if !strings.Contains(screen, want) {
			t.Errorf("state.not-echoed flow lacks %q:\n%s", want, screen)
		}
	}

	// Seed 000: code issued, no token call.
	s.keys("Left", "j", "Enter")
	screen = s.waitFor("Hop timeline", "verdict  token.never-called")
	saveScreen(t, "flow-token-never-called", screen)
	for _, want := range []string{"fault: client (client platform)", "never called", "◀ chain broke here"} {
		if !strings.Contains(screen, want) {
			t.Errorf("token.never-called flow lacks %q:\n%s", want, screen)
		}
	}

	// Exchange detail of the authorize hop: the state peeled layer by layer.
	s.keys("Enter")
	screen = s.waitFor("Query parameters", "↳ json", "csrf")
	saveScreen(t, "exchange-authorize", screen)

	// ChatGPT's callback 404.
	s.keys("Left", "Left", "j", "Enter")
	screen = s.waitFor("verdict  callback.state-not-found", "fault: client")
	saveScreen(t, "flow-callback-state-not-found", screen)

	// All traffic, and help.
	s.keys("2")
	screen = s.waitFor("METHOD", "/healthz", "client-callback-completion")
	saveScreen(t, "traffic", screen)
	s.keys("?")
	screen = s.waitFor("Keys", "newest first")
	saveScreen(t, "help", screen)
	s.keys("q")
	s.waitFor("mcptap-exit=0")
}

// NO_COLOR turns colour off; the screen still says everything.
func replayTUINoColor(t *testing.T, bin string) {
	needTmux(t)
	s := startTmux(t, []string{"TERM=xterm-256color", "NO_COLOR=1"}, bin, "replay", seedsHAR)
	s.waitFor("Flows (4)", "token.never-called · client")
	if colour := regexp.MustCompile(`\x1b\[[0-9;]*3[1-7](;[0-9;]*)?m`).FindString(s.capture(true)); colour != "" {
		t.Errorf("NO_COLOR=1 but the screen has colour %q", colour)
	}
	s.keys("q")
	s.waitFor("mcptap-exit=0")
}

func replayNoTUIPrintsLines(t *testing.T, bin string) {
	out, err := exec.Command(bin, "replay", "--no-tui", seedsHAR).CombinedOutput()
	if err != nil {
		t.Fatalf("replay --no-tui: %v\n%s", err, out)
	}
	for _, want := range []string{
		"4 flows",
		"verdict=state.not-echoed fault=auth-server",
		"verdict=token.never-called fault=client",
		"verdict=callback.state-not-found fault=client",
		"! error state.not-echoed [auth-server]",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// stdout is a pipe here, so the viewer must not start even without --no-tui
	out, err = exec.Command(bin, "replay", seedsHAR).Output()
	if err != nil || !strings.Contains(string(out), "verdict=token.never-called") {
		t.Fatalf("replay to a pipe: %v\n%s", err, out)
	}
}

func replayErrors(t *testing.T, bin string) {
	home := t.TempDir()
	bad := filepath.Join(home, "bad.har")
	if err := os.WriteFile(bad, []byte(`{"log":{"entries":[{"request":{}}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", filepath.Join(home, "missing.har")}, "missing.har"},
		{[]string{"replay", bad}, "entry 0"},
		{[]string{"replay"}, "no database"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+home)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: %v, want exit 2 naming %q:\n%s", c.args, err, c.want, out)
		}
	}
}
