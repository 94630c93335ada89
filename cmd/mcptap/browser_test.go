package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
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
	t.Setenv("MCPTAP_HOME", t.TempDir())
	if _, errOut, code := execRoot(t, "browser", "--proxy", "0.0.0.0:8781"); code != 2 || !strings.Contains(errOut, "loopback") {
		t.Errorf("non-loopback --proxy: exit %d %q, want 2 naming loopback", code, errOut)
	}
	// Nothing listens on a port we just freed.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	if _, errOut, code := execRoot(t, "browser", "--proxy", addr); code != 1 || !strings.Contains(errOut, "--browser-proxy") {
		t.Errorf("no proxy running: exit %d %q, want 1 saying how to start one", code, errOut)
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
	if _, errOut, code := execRoot(t, "browser", "--proxy", fw.Addr()); code != 1 || !strings.Contains(errOut, "different CA") {
		t.Errorf("proxy with another CA: exit %d %q", code, errOut)
	}
}

type exRecorder struct {
	mu  sync.Mutex
	all []mcptap.Exchange
}

func (r *exRecorder) publish(ex mcptap.Exchange) {
	r.mu.Lock()
	r.all = append(r.all, ex)
	r.mu.Unlock()
}

func (r *exRecorder) find(pred func(mcptap.Exchange) bool) (mcptap.Exchange, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ex := range r.all {
		if ex.Complete && pred(ex) {
			return ex, true
		}
	}
	return mcptap.Exchange{}, false
}

// TestBrowserCommandDrivesChromium runs `mcptap browser` with the real
// Chromium, made headless by a wrapper script (no display in CI), against a
// running browser proxy, and checks that an OAuth-like redirect over HTTPS
// was recorded through MITM and that the temporary profile is gone after.
func TestBrowserCommandDrivesChromium(t *testing.T) {
	real, err := proxy.FindBrowser()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Chromium: %v (install the Debian package chromium)", err)
		}
		t.Skipf("no Chromium: %v", err)
	}
	home := t.TempDir()
	t.Setenv("MCPTAP_HOME", home)
	ca, err := proxy.LoadOrCreateCA(home)
	if err != nil {
		t.Fatal(err)
	}

	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			http.Redirect(w, r, "/callback?code=xyz&state="+url.QueryEscape(r.URL.Query().Get("state")), http.StatusFound)
		case "/callback":
			fmt.Fprint(w, "<p>done</p>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	base := proxy.DefaultUpstreamTransport(0)
	base.TLSClientConfig = &tls.Config{RootCAs: roots}
	rec := &exRecorder{}
	fw, err := proxy.StartForward(proxy.ForwardConfig{
		Listen: "127.0.0.1:0", CA: ca,
		Transport: &proxy.Transport{Base: base, Publish: rec.publish, Session: "cli"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Shutdown(context.Background())

	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	wrapper := filepath.Join(dir, "headless-chromium")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %q\nexec %q --headless --disable-gpu --disable-dev-shm-usage --virtual-time-budget=5000 --dump-dom \"$@\"\n", argsFile, real)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}

	_, errOut, code := execRoot(t, "browser", "--proxy", fw.Addr(), "--browser", wrapper, "--url", up.URL+"/authorize?state=s1")
	if code != 0 {
		t.Fatalf("mcptap browser: exit %d\n%s", code, errOut)
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
		!strings.Contains(joined, "--proxy-server=http://"+fw.Addr()) || profile == "" {
		t.Errorf("browser started with %q", args)
	}
	if _, err := os.Stat(profile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary profile %q still exists (%v)", profile, err)
	}

	deadline := time.Now().Add(5 * time.Second)
	var auth, cb mcptap.Exchange
	var okA, okC bool
	for time.Now().Before(deadline) && !(okA && okC) {
		auth, okA = rec.find(func(ex mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, "/authorize") })
		cb, okC = rec.find(func(ex mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, "/callback") })
		time.Sleep(20 * time.Millisecond)
	}
	if !okA || !okC {
		t.Fatalf("not recorded through the proxy: authorize %v callback %v\n%s", okA, okC, errOut)
	}
	if auth.Status != 302 || auth.Scheme != "https" || auth.Mode != mcptap.ModeForward || cb.Status != 200 {
		t.Errorf("authorize %d %s %s; callback %d", auth.Status, auth.Scheme, auth.Mode, cb.Status)
	}
}
