package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/chromium"
	"github.com/mcptap/mcptap/internal/syncbuf"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/proxy"
)

// execRoot runs the mcptap command line in-process and returns its output
// and exit code (0, 1 or 2 as main would).
func execRoot(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			code = 2
		}
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func TestCACommand(t *testing.T) {
	home := t.TempDir()
	t.Setenv("MCPTAP_HOME", home)

	out, errOut, code := execRoot(t, "ca")
	if code != 0 {
		t.Fatalf("mcptap ca: exit %d: %s", code, errOut)
	}
	ca, err := proxy.LoadCA(home)
	if err != nil {
		t.Fatalf("mcptap ca did not create the CA in MCPTAP_HOME: %v", err)
	}
	for _, want := range []string{filepath.Join(home, "ca.pem"), filepath.Join(home, "ca-key.pem"), ca.SPKIHash(), ca.Fingerprint(), "created now", "mcptap browser"} {
		if !strings.Contains(out, want) {
			t.Errorf("mcptap ca output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = execRoot(t, "ca")
	if code != 0 || !strings.Contains(out, "(existing)") {
		t.Errorf("second run: exit %d, output %q", code, out)
	}
	out, _, code = execRoot(t, "ca", "--pem")
	if code != 0 || out != string(ca.CertPEM) {
		t.Errorf("mcptap ca --pem: exit %d, printed %q", code, out)
	}
}

func TestBrowserCommandErrors(t *testing.T) {
	home := t.TempDir()
	t.Setenv("MCPTAP_HOME", home)
	if _, errOut, code := execRoot(t, "browser", "--proxy", "0.0.0.0:8781"); code != 2 || !strings.Contains(errOut, "loopback") {
		t.Errorf("non-loopback --proxy: exit %d %q, want 2 naming loopback", code, errOut)
	}
	// Nothing listens on a port we just freed.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	if _, errOut, code := execRoot(t, "browser", "--proxy", addr); code != 3 || !strings.Contains(errOut, "--browser-proxy") {
		t.Errorf("no proxy running: exit %d %q, want 3 saying how to start one", code, errOut)
	}

	// A browser proxy signing with another CA (another MCPTAP_HOME).
	other, err := proxy.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fw, err := proxy.StartForward(proxy.ForwardConfig{Listen: "127.0.0.1:0", CA: other})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Shutdown(context.Background())
	// A proxy of no run of this MCPTAP_HOME: no credentials to give it.
	if _, errOut, code := execRoot(t, "browser", "--proxy", fw.Addr()); code != 3 || !strings.Contains(errOut, "no credentials") {
		t.Errorf("proxy of another home: exit %d %q", code, errOut)
	}
	if _, err := proxy.WriteSecret(home, fw.Addr(), "stale"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := execRoot(t, "browser", "--proxy", fw.Addr()); code != 3 || !strings.Contains(errOut, "different CA") {
		t.Errorf("proxy with another CA: exit %d %q", code, errOut)
	}
	// A proxy that wants other credentials than the ones on file.
	own, err := proxy.LoadOrCreateCA(home)
	if err != nil {
		t.Fatal(err)
	}
	fw2, err := proxy.StartForward(proxy.ForwardConfig{Listen: "127.0.0.1:0", CA: own, Secret: "the-real-one"})
	if err != nil {
		t.Fatal(err)
	}
	defer fw2.Shutdown(context.Background())
	if _, err := proxy.WriteSecret(home, fw2.Addr(), "an-old-one"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := execRoot(t, "browser", "--proxy", fw2.Addr()); code != 3 || !strings.Contains(errOut, "refused this run's credentials") {
		t.Errorf("proxy with other credentials: exit %d %q", code, errOut)
	}
}

var browserProxyRE = regexp.MustCompile(`browser proxy on http://(\S+?);`)
var reverseRE = regexp.MustCompile(`listening on http://(\S+) ->`)

// TestProxyBrowserProxyEndToEnd runs the real binary twice, as a user would:
// `mcptap proxy --browser-proxy` records, `mcptap browser` (the real Chromium,
// made headless by a wrapper) goes through it, and after SIGINT the database
// holds the browser's HTTPS exchanges (MITM, mode forward) and the tunnel's
// (mode reverse) in one session.
func TestProxyBrowserProxyEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SSL_CERT_FILE, which lets the child trust the test server, is honoured on Linux only")
	}
	real, err := chromium.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Chromium: %v (install the Debian package chromium)", err)
		}
		t.Skipf("no Chromium: %v", err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mcptap")
	buildStart := time.Now()
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("go build took %v", time.Since(buildStart).Round(time.Millisecond))
	home := filepath.Join(tmp, "home")
	db := filepath.Join(tmp, "mcptap.db")

	as := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			http.Redirect(w, r, "/callback?code=c-9&state="+url.QueryEscape(r.URL.Query().Get("state")), http.StatusFound)
		case "/callback":
			fmt.Fprint(w, "<p>linked</p>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer as.Close()
	mcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{}") }))
	defer mcp.Close()
	// The browser proxy verifies upstream certificates with the system's
	// roots; SSL_CERT_FILE makes the test server's certificate one of them.
	certFile := filepath.Join(tmp, "as.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: as.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPTAP_HOME="+home, "SSL_CERT_FILE="+certFile)

	p := exec.Command(bin, "proxy", "--no-tui", "--db", db, "--listen", "127.0.0.1:0", "--upstream", mcp.URL, "--browser-proxy", "127.0.0.1:0")
	p.Env = env
	var stdout syncbuf.Buffer
	p.Stdout = &stdout
	pr, pw := io.Pipe()
	var stderr syncbuf.Buffer
	p.Stderr = io.MultiWriter(&stderr, pw)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.Wait(); pw.Close() }()
	defer func() {
		select {
		case <-exited:
		default:
			p.Process.Kill()
		}
	}()
	addrs := make(chan [2]string, 1)
	go func() {
		var rev, fwd string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := reverseRE.FindStringSubmatch(sc.Text()); m != nil {
				rev = m[1]
			}
			if m := browserProxyRE.FindStringSubmatch(sc.Text()); m != nil {
				fwd = m[1]
			}
			if rev != "" && fwd != "" {
				addrs <- [2]string{rev, fwd}
				rev = ""
			}
		}
	}()
	var rev, fwd string
	select {
	case a := <-addrs:
		rev, fwd = a[0], a[1]
	case err := <-exited:
		t.Fatalf("mcptap proxy exited: %v\n%s", err, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("mcptap proxy did not report both addresses:\n%s", stderr.String())
	}

	resp, err := http.Post("http://"+rev+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	wrapper := filepath.Join(tmp, "headless-chromium")
	argsFile := filepath.Join(tmp, "args")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %q\nexec %q --headless --disable-gpu --disable-dev-shm-usage \"$@\"\n", argsFile, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// The browser stays open, as for a user, until the flow's callback is
	// recorded (read through the running proxy); then Ctrl-C closes it.
	b := exec.Command(bin, "browser", "--proxy", fwd, "--browser", wrapper, "--url", as.URL+"/authorize?state=e2e")
	b.Env = env
	var bOut syncbuf.Buffer
	b.Stdout, b.Stderr = &bOut, &bOut
	bStart := time.Now()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { bDone <- b.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for !recordedThroughProxy(db, "/callback") {
		select {
		case err := <-bDone:
			t.Fatalf("mcptap browser exited before the callback was recorded: %v\n%s\n%s", err, bOut.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			b.Process.Kill()
			t.Fatalf("the browser's callback was never recorded:\n%s\n%s", bOut.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("mcptap browser after Ctrl-C: %v\n%s", err, bOut.String())
		}
	case <-time.After(time.Minute):
		b.Process.Kill()
		t.Fatalf("mcptap browser did not end after Ctrl-C:\n%s", bOut.String())
	}

	t.Logf("mcptap browser ran %v", time.Since(bStart).Round(time.Millisecond))
	checkBrowserArgs(t, argsFile, home, fwd)
	time.Sleep(200 * time.Millisecond)
	stopStart := time.Now()
	if err := p.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("mcptap proxy stopped in %v", time.Since(stopStart).Round(time.Millisecond)) }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mcptap proxy exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("mcptap proxy did not stop:\n%s", stderr.String())
	}

	store, sess := latestSession(t, db)
	defer store.Close()
	if sess.Settings["browser_proxy"] != fwd {
		t.Errorf("session settings %v lack browser_proxy=%s", sess.Settings, fwd)
	}
	got := map[string]mcptap.Exchange{}
	err = store.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		got[string(ex.Mode)+" "+ex.Method+" "+strings.SplitN(ex.Target, "?", 2)[0]] = ex
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, okA := got["forward GET /authorize"]
	cb, okC := got["forward GET /callback"]
	_, okR := got["reverse POST /mcp"]
	if !okA || !okC || !okR {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		t.Fatalf("stored %v; want forward /authorize, /callback and reverse /mcp\n%s", keys, stderr.String())
	}
	if auth.Status != 302 || auth.URL() != as.URL+"/authorize?state=e2e" || cb.Status != 200 || !strings.Contains(string(cb.RespBody), "linked") {
		t.Errorf("authorize %d %s; callback %d %q", auth.Status, auth.URL(), cb.Status, cb.RespBody)
	}
}

// checkBrowserArgs checks what `mcptap browser` passed to the browser: the
// proxy, the SPKI of the CA in home, a profile directory that is gone now.
func checkBrowserArgs(t *testing.T, argsFile, home, proxyAddr string) {
	t.Helper()
	ca, err := proxy.LoadCA(home)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var profile string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--user-data-dir="); ok {
			profile = p
		}
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "--ignore-certificate-errors-spki-list="+ca.SPKIHash()) ||
		!strings.Contains(joined, "--proxy-server=http://"+proxyAddr) || profile == "" ||
		!strings.Contains(joined, "--load-extension="+filepath.Join(profile, "mcptap-proxy-credentials")) {
		t.Errorf("browser started with %q", args)
	}
	if _, err := os.Stat(profile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary profile %q still exists (%v)", profile, err)
	}
}

// recordedThroughProxy reports whether the session a running mcptap records
// into db holds a forward (browser) exchange whose path is path, read through
// the proxy's read API.
func recordedThroughProxy(db, path string) bool {
	r, err := live.DialReads(db)
	if err != nil {
		return false
	}
	defer r.Close()
	sess, err := r.Latest()
	if err != nil {
		return false
	}
	found := false
	_ = r.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		if ex.Mode == mcptap.ModeForward && strings.SplitN(ex.Target, "?", 2)[0] == path && ex.Complete {
			found = true
		}
		return nil
	})
	return found
}
