package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcptap/mcptap/internal/syncbuf"
	"github.com/mcptap/mcptap/lab"
)

func labWorld(t *testing.T, name string) string {
	t.Helper()
	sc, ok := lab.Lookup(name)
	if !ok {
		t.Fatalf("no lab scenario %s", name)
	}
	w, err := lab.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w.Public(lab.ListenerMCP) + "/mcp"
}

// The real binary checks a live lab server as two IDE platforms, records
// the probes as a session that report opens, and exits by --fail-on.
func TestCheckCommand(t *testing.T) {
	bin := buildMcptap(t)
	db := filepath.Join(t.TempDir(), "check.db")
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
		var out, errb syncbuf.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	healthy := labWorld(t, "healthy-vscode")
	out, errOut, code := run("check", healthy, "--as", "vscode,mcp-remote", "--register", "--format", "json")
	if code != 0 {
		t.Fatalf("healthy: exit %d\n%s\n%s", code, out, errOut)
	}
	var res struct {
		Session   string
		Platforms []struct {
			Platform string
			Created  string `json:"created_client_id"`
			Lines    []struct{ ID, Status, Rule string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Platforms) != 2 || res.Platforms[0].Created == "" {
		t.Fatalf("platforms %+v", res.Platforms)
	}
	for _, p := range res.Platforms {
		for _, l := range p.Lines {
			if l.Status == "fail" {
				t.Errorf("%s/%s fails %s", p.Platform, l.ID, l.Rule)
			}
		}
	}
	// The probes are a session like any other.
	rep, errOut, code := run("report", res.Session, "--format", "json")
	if code != 0 || !strings.Contains(rep, `"source": "check"`) {
		t.Errorf("report of the check session: exit %d %s\n%s", code, errOut, rep)
	}

	// A fault fails its line, in JUnit too, and the exit code says so.
	broken := labWorld(t, "no-s256")
	out, _, code = run("check", broken, "--as", "vscode", "--format", "junit")
	if code != 1 || !strings.Contains(out, `type="discovery.no-pkce-s256"`) {
		t.Errorf("no-s256: exit %d\n%s", code, out)
	}
	if xmllint, err := exec.LookPath("xmllint"); err == nil {
		f := filepath.Join(t.TempDir(), "check.xml")
		_ = os.WriteFile(f, []byte(out), 0o600)
		if b, err := exec.Command(xmllint, "--noout", "--schema", filepath.Join("..", "..", "report", "testdata", "schema", "junit-10.xsd"), f).CombinedOutput(); err != nil {
			t.Errorf("xmllint: %v\n%s", err, b)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("xmllint not installed")
	}
	if _, _, code := run("check", broken, "--as", "vscode", "--fail-on", "never"); code != 0 {
		t.Errorf("--fail-on never: exit %d", code)
	}
	if _, errOut, code := run("check", "ftp://x", "--as", "vscode"); code != 2 || !strings.Contains(errOut, "not an http(s) URL") {
		t.Errorf("bad URL: exit %d %s", code, errOut)
	}
	if _, errOut, code := run("check", healthy, "--as", "netscape"); code != 2 || !strings.Contains(errOut, "--as") {
		t.Errorf("bad platform: exit %d %s", code, errOut)
	}
}

// watching is a running `mcptap check URL --as vscode --watch 50ms`.
type watching struct {
	out  syncbuf.Buffer
	cmd  *exec.Cmd
	done chan error
}

func startWatch(t *testing.T, bin, u string) *watching {
	t.Helper()
	w := &watching{done: make(chan error, 1)}
	w.cmd = exec.Command(bin, "--db", filepath.Join(t.TempDir(), "w.db"), "check", u, "--as", "vscode", "--watch", "50ms")
	w.cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	return w
}

// waitFor waits until the output says s (it fails if the process ends first).
func (w *watching) waitFor(t *testing.T, s string) {
	t.Helper()
	for !strings.Contains(w.out.String(), s) {
		select {
		case err := <-w.done:
			t.Fatalf("exited while waiting for %q: %v\n%s", s, err, w.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop interrupts it and returns how it ended.
func (w *watching) stop() error {
	_ = w.cmd.Process.Signal(syscall.SIGINT)
	return <-w.done
}

// --watch re-runs and prints what changed until interrupted.
func TestCheckWatch(t *testing.T) {
	w := startWatch(t, buildMcptap(t), labWorld(t, "healthy-vscode"))
	w.waitFor(t, "no change")
	out := &w.out
	if err := w.stop(); err != nil {
		t.Fatalf("after SIGINT: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "✓ pass") {
		t.Errorf("the first run's checklist is missing:\n%s", out.String())
	}
}

// The probes go through the proxy the environment names (HTTP_PROXY for an
// http URL, HTTPS_PROXY for https: the same http.ProxyFromEnvironment), and
// nothing goes around it.
func TestCheckHonoursProxyEnvironment(t *testing.T) {
	bin := buildMcptap(t)
	sc, _ := lab.Lookup("healthy-vscode")
	w, err := lab.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const public = "http://mcp.example.test"
	w.SetPublic(lab.ListenerMCP, public)
	internal, _ := url.Parse(w.Internal(lab.ListenerMCP))
	var seen atomic.Int64
	fwd := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		// A forward proxy gets absolute-form requests for mcp.example.test.
		if r.In.URL.Host == "mcp.example.test" {
			seen.Add(1)
		}
		r.SetURL(internal)
		r.Out.Host = "mcp.example.test"
	}})
	defer fwd.Close()
	cmd := exec.Command(bin, "--db", filepath.Join(t.TempDir(), "p.db"), "check", public+"/mcp", "--as", "vscode", "--register", "--format", "json")
	cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir(), "HTTP_PROXY="+fwd.URL, "http_proxy="+fwd.URL, "NO_PROXY=", "no_proxy=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"status": "pass"`) || strings.Contains(string(out), `"status": "fail"`) {
		t.Errorf("through the proxy:\n%s", out)
	}
	if seen.Load() < 5 {
		t.Errorf("the proxy saw %d requests for mcp.example.test, want every probe", seen.Load())
	}
}

// --watch prints the lines whose status changed: a server that starts
// answering with its challenge between two runs.
func TestCheckWatchPrintsWhatChanged(t *testing.T) {
	bin := buildMcptap(t)
	var fixed atomic.Bool
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/mcp" && r.Header.Get("Authorization") == "":
			if fixed.Load() {
				w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
			}
			w.WriteHeader(http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	w := startWatch(t, bin, srv.URL+"/mcp")
	w.waitFor(t, "discovery.no-challenge") // the first run's checklist
	fixed.Store(true)
	// The next run's change: the challenge line now passes.
	w.waitFor(t, "Unauthenticated requests get 401 with a WWW-Authenticate challenge: fail → pass")
	err := w.stop()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("after SIGINT: %v, want exit 1 (a line still fails: no protected resource metadata)\n%s", err, w.out.String())
	}
}
