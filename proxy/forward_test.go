package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcptap/mcptap/internal/syncbuf"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/chromium"
)

// fwdRecorder collects what the forward proxy publishes.
type fwdRecorder struct {
	mu  sync.Mutex
	all []mcptap.Exchange
}

func (r *fwdRecorder) publish(ex mcptap.Exchange) {
	r.mu.Lock()
	r.all = append(r.all, ex)
	r.mu.Unlock()
}

func (r *fwdRecorder) snapshot() []mcptap.Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mcptap.Exchange(nil), r.all...)
}

// complete returns the last published state of each exchange that completed.
func (r *fwdRecorder) complete() []mcptap.Exchange {
	var out []mcptap.Exchange
	for _, ex := range r.snapshot() {
		if ex.Complete {
			out = append(out, ex)
		}
	}
	return out
}

// waitFor waits until an exchange matching pred has completed and returns it.
func (r *fwdRecorder) waitFor(t *testing.T, what string, pred func(mcptap.Exchange) bool) mcptap.Exchange {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ex := range r.complete() {
			if pred(ex) {
				return ex
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	for _, ex := range r.snapshot() {
		got = append(got, fmt.Sprintf("%s %s %d complete=%v err=%q", ex.Method, ex.URL(), ex.Status, ex.Complete, ex.Err))
	}
	t.Fatalf("no complete exchange for %s; published: %q", what, got)
	return mcptap.Exchange{}
}

type fwdEnv struct {
	fw  *Forward
	ca  *CA
	rec *fwdRecorder
}

// startFwd starts a browser proxy on a free loopback port whose upstream leg
// trusts upstreamRoots (the httptest TLS servers' certificates).
func startFwd(t *testing.T, upstreamRoots *x509.CertPool, log *slog.Logger) *fwdEnv {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultUpstreamTransport(0)
	if upstreamRoots != nil {
		base.TLSClientConfig = &tls.Config{RootCAs: upstreamRoots}
	}
	rec := &fwdRecorder{}
	fw, err := StartForward(ForwardConfig{
		Listen:    "127.0.0.1:0",
		CA:        ca,
		Transport: &Transport{Base: base, Publish: rec.publish, Session: "fwd-test"},
		Log:       log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := fw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &fwdEnv{fw: fw, ca: ca, rec: rec}
}

// client is a Go HTTP client that uses the browser proxy and trusts only
// mcptap's CA for HTTPS, as a browser with the CA installed would.
func (e *fwdEnv) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: e.fw.Addr()}),
			TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool()},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func tlsPool(ts ...*httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	for _, s := range ts {
		p.AddCert(s.Certificate())
	}
	return p
}

func TestForwardPlainHTTPRecorded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Seen-Query", r.URL.RawQuery)
		fmt.Fprintf(w, "got %s %s", r.Method, body)
	}))
	defer up.Close()
	e := startFwd(t, nil, nil)

	target := up.URL + "/token?state=a%2Fb%3D&x"
	resp, err := e.client().Post(target, "application/x-www-form-urlencoded", strings.NewReader("grant_type=authorization_code&code=c1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "got POST grant_type=authorization_code&code=c1" {
		t.Fatalf("response %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Seen-Query"); got != "state=a%2Fb%3D&x" {
		t.Errorf("upstream saw query %q, want the raw bytes", got)
	}

	ex := e.rec.waitFor(t, "POST /token", func(ex mcptap.Exchange) bool { return ex.Method == "POST" })
	if ex.Mode != mcptap.ModeForward || ex.URL() != target || ex.Target != "/token?state=a%2Fb%3D&x" || ex.Scheme != "http" ||
		ex.Host != strings.TrimPrefix(up.URL, "http://") || ex.Upstream != up.URL {
		t.Errorf("mode %q url %q target %q scheme %q host %q upstream %q; want forward, %q in origin form", ex.Mode, ex.URL(), ex.Target, ex.Scheme, ex.Host, ex.Upstream, target)
	}
	if ex.Listener != e.fw.Addr() || ex.Session != "fwd-test" || !strings.HasPrefix(ex.RemoteAddr, "127.0.0.1:") {
		t.Errorf("listener %q session %q remote %q", ex.Listener, ex.Session, ex.RemoteAddr)
	}
	if ex.Status != 200 || string(ex.ReqBody) != "grant_type=authorization_code&code=c1" || string(ex.RespBody) != string(body) {
		t.Errorf("status %d req %q resp %q", ex.Status, ex.ReqBody, ex.RespBody)
	}
	if ex.ReqHeader.Get("Proxy-Connection") != "" {
		t.Errorf("proxy header recorded as sent upstream: %v", ex.ReqHeader)
	}
}

func TestForwardHTTPSMITMRecorded(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			// Location kept byte for byte: odd but legal encoding.
			w.Header().Set("Location", "https://client.example/cb?code=c%2B1&state="+r.URL.Query().Get("state"))
			w.WriteHeader(http.StatusFound)
		default:
			io.WriteString(w, "hello over tls")
		}
	}))
	defer up.Close()
	e := startFwd(t, tlsPool(up), nil)
	c := e.client()

	resp, err := c.Get(up.URL + "/authorize?state=s%7E1&client_id=abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The browser saw mcptap's leaf, issued by mcptap's CA, not the server's.
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("no TLS state")
	}
	leaf := resp.TLS.PeerCertificates[0]
	if leaf.Issuer.CommonName != e.ca.Cert.Subject.CommonName {
		t.Errorf("leaf issued by %q, want mcptap's CA %q", leaf.Issuer.CommonName, e.ca.Cert.Subject.CommonName)
	}
	if err := leaf.CheckSignatureFrom(e.ca.Cert); err != nil {
		t.Errorf("leaf not signed by mcptap's CA: %v", err)
	}

	resp, err = c.Get(up.URL + "/page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello over tls" {
		t.Fatalf("body %q", body)
	}

	host := strings.TrimPrefix(up.URL, "https://")
	auth := e.rec.waitFor(t, "authorize", func(ex mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, "/authorize") })
	if auth.Mode != mcptap.ModeForward || auth.Scheme != "https" || auth.Host != host ||
		auth.URL() != up.URL+"/authorize?state=s%7E1&client_id=abc" || auth.Status != http.StatusFound {
		t.Errorf("authorize: mode %q scheme %q host %q url %q status %d", auth.Mode, auth.Scheme, auth.Host, auth.URL(), auth.Status)
	}
	if loc := auth.RespHeader.Get("Location"); loc != "https://client.example/cb?code=c%2B1&state=s~1" {
		t.Errorf("Location recorded as %q", loc)
	}
	if auth.Listener != e.fw.Addr() || auth.Upstream != up.URL {
		t.Errorf("listener %q upstream %q", auth.Listener, auth.Upstream)
	}
	page := e.rec.waitFor(t, "page", func(ex mcptap.Exchange) bool { return ex.Target == "/page" })
	if string(page.RespBody) != "hello over tls" || page.Status != 200 || page.URL() != up.URL+"/page" {
		t.Errorf("page: %d %q %q", page.Status, page.RespBody, page.URL())
	}
	if auth.Seq == page.Seq || auth.ID == page.ID {
		t.Error("two exchanges share a Seq or ID")
	}
}

// sseUpstream writes three events 300 ms apart, flushing each.
func sseUpstream(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	for i := range 3 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "data: event %d\n\n", i)
		w.(http.Flusher).Flush()
	}
}

// arrivals reads lines starting with prefix and returns when each arrived,
// relative to the first.
func arrivals(t *testing.T, body io.Reader, prefix string, n int) []time.Duration {
	t.Helper()
	var at []time.Duration
	var first time.Time
	sc := bufio.NewScanner(body)
	for sc.Scan() && len(at) < n {
		if !strings.HasPrefix(sc.Text(), prefix) {
			continue
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		at = append(at, now.Sub(first))
	}
	if len(at) != n {
		t.Fatalf("read %d %q lines, want %d (err %v)", len(at), prefix, n, sc.Err())
	}
	return at
}

func checkApart(t *testing.T, what string, at []time.Duration) {
	t.Helper()
	for i := 1; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap < 200*time.Millisecond {
			t.Errorf("%s: events arrived together (%v); the proxy buffered the stream", what, at)
			return
		}
	}
	t.Logf("%s arrivals: %v", what, at)
}

// Regression guard: goproxy v1.8.5 buffered MITM response bodies to their end
// (PR #787), so SSE through HTTPS MITM arrived all at once.
func TestForwardSSEThroughMITMNotBuffered(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(sseUpstream))
	defer up.Close()
	e := startFwd(t, tlsPool(up), nil)

	resp, err := e.client().Get(up.URL + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The head is published before the stream ends.
	head := false
	for _, ex := range e.rec.snapshot() {
		if ex.Target == "/sse" && !ex.Complete && ex.Status == 200 {
			head = true
		}
	}
	if !head {
		t.Error("no head-only exchange published while the stream was open")
	}
	checkApart(t, "SSE via HTTPS MITM", arrivals(t, resp.Body, "data:", 3))
	io.Copy(io.Discard, resp.Body)
	ex := e.rec.waitFor(t, "sse", func(ex mcptap.Exchange) bool { return ex.Target == "/sse" })
	if want := "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n"; string(ex.RespBody) != want {
		t.Errorf("recorded body %q", ex.RespBody)
	}
}

// Plain-HTTP forward mode buffered unknown-length bodies that are not
// text/event-stream until the Transfer-Encoding workaround (dependencies §1.5).
func TestForwardPlainHTTPUnknownLengthNotBuffered(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := range 3 {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			fmt.Fprintf(w, "{\"n\":%d}\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	e := startFwd(t, nil, nil)
	resp, err := e.client().Get(up.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	checkApart(t, "ndjson via plain HTTP", arrivals(t, resp.Body, "{", 3))
	// and plain-HTTP SSE too
	up2 := httptest.NewServer(http.HandlerFunc(sseUpstream))
	defer up2.Close()
	resp2, err := e.client().Get(up2.URL + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	checkApart(t, "SSE via plain HTTP", arrivals(t, resp2.Body, "data:", 3))
}

func TestForwardRefusesNonLoopbackClients(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer up.Close()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &fwdRecorder{}
	h, err := NewForward(ForwardConfig{CA: ca, Publish: rec.publish})
	if err != nil {
		t.Fatal(err)
	}
	for _, remote := range []string{"192.0.2.10:5555", "[2001:db8::1]:443", "10.0.0.1:1", "garbage"} {
		for _, method := range []string{"GET", "CONNECT"} {
			req := httptest.NewRequest(method, up.URL+"/x", nil)
			if method == "CONNECT" {
				req = httptest.NewRequest("CONNECT", "http://"+strings.TrimPrefix(up.URL, "http://"), nil)
			}
			req.RemoteAddr = remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s from %s: status %d, want 403", method, remote, w.Code)
			}
		}
	}
	if hits.Load() != 0 || len(rec.snapshot()) != 0 {
		t.Errorf("refused requests reached the upstream (%d) or were recorded (%d)", hits.Load(), len(rec.snapshot()))
	}

	// The same handler serves a loopback client.
	req := httptest.NewRequest("GET", up.URL+"/x", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 || hits.Load() != 1 {
		t.Errorf("loopback client: status %d, upstream hits %d", w.Code, hits.Load())
	}

	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:1", true}, {"127.9.9.9:1", true}, {"[::1]:80", true}, {"::1", true},
		{"192.168.1.2:1", false}, {"[::ffff:10.0.0.1]:1", false}, {"localhost:80", false}, {"", false},
	} {
		if got := loopbackClient(tc.remote); got != tc.want {
			t.Errorf("loopbackClient(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
}

func TestStartForwardRefusesNonLoopbackListen(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:0", ":0x", "192.0.2.1:0", "[::]:0"} {
		if fw, err := StartForward(ForwardConfig{Listen: addr, CA: ca}); err == nil {
			fw.Shutdown(context.Background())
			t.Errorf("StartForward(%q) succeeded", addr)
		}
	}
	if _, err := StartForward(ForwardConfig{Listen: "127.0.0.1:0"}); err == nil {
		t.Error("StartForward without a CA succeeded")
	}
	// Bound but never served: Shutdown still returns and frees the port.
	fw, err := ListenForward(ForwardConfig{Listen: "127.0.0.1:0", CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of an unserved proxy: %v", err)
	}
	if ln, err := net.Listen("tcp", fw.Addr()); err != nil {
		t.Errorf("port still held after Shutdown: %v", err)
	} else {
		ln.Close()
	}
}

func TestForwardServesCAPEM(t *testing.T) {
	e := startFwd(t, nil, nil)
	resp, err := http.Get("http://" + e.fw.Addr() + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, e.ca.CertPEM) {
		t.Errorf("GET /ca.pem: %d, %d bytes, want the CA's %d", resp.StatusCode, len(body), len(e.ca.CertPEM))
	}
	if len(e.rec.snapshot()) != 0 {
		t.Error("the proxy's own page was recorded as an exchange")
	}
}

// An upstream whose certificate does not verify is reported to the browser
// (502 with the reason) and recorded with its error; goproxy alone would drop
// the tunnel silently. The upstream leg never skips verification.
func TestForwardUpstreamTLSErrorIs502(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer up.Close()
	e := startFwd(t, nil, nil) // trusts only the system roots upstream
	resp, err := e.client().Get(up.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "certificate") {
		t.Errorf("got %d %q, want 502 naming the certificate problem", resp.StatusCode, body)
	}
	ex := e.rec.waitFor(t, "failed exchange", func(ex mcptap.Exchange) bool { return ex.Target == "/x" })
	if ex.Err == "" || ex.Status != 0 {
		t.Errorf("recorded status %d err %q, want the transport error", ex.Status, ex.Err)
	}
}

// goproxy logs handshake failures with Warnf, which always prints; they must
// reach mcptap's logger, never stderr (it would tear through the TUI).
func TestForwardLogsNothingToStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	var logBuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := startFwd(t, nil, log) // constructed while stderr is the pipe
	// A client that does not trust mcptap's CA: the MITM handshake fails.
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: e.fw.Addr()})}}
	if _, err := c.Get("https://127.0.0.1:1/"); err == nil {
		t.Error("untrusted MITM handshake succeeded")
	}
	time.Sleep(100 * time.Millisecond)
	os.Stderr = saved
	w.Close()
	stderr, _ := io.ReadAll(r)
	if len(stderr) != 0 {
		t.Errorf("wrote to stderr: %q", stderr)
	}
	if !strings.Contains(logBuf.String(), "handshake") {
		t.Errorf("handshake failure not in mcptap's log: %q", logBuf.String())
	}
}

// A browser keeps MITM tunnels open; Shutdown must still end, cut open
// streams and record how they ended.
func TestForwardShutdownCutsOpenMITMStream(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer up.Close()
	defer close(release)
	e := startFwd(t, tlsPool(up), nil)
	resp, err := e.client().Get(up.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	arrivals(t, resp.Body, "data:", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.fw.Shutdown(ctx)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Shutdown took %v: it waited for the open stream instead of cutting it", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want it to report the cut stream", err)
	}
	ex := e.rec.waitFor(t, "cut stream", func(ex mcptap.Exchange) bool { return ex.Target == "/stream" })
	if ex.Err == "" || string(ex.RespBody) != "data: hello\n\n" {
		t.Errorf("cut stream recorded as err %q body %q", ex.Err, ex.RespBody)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("client stream still open after Shutdown")
	}
}

func TestCertCacheSignsOncePerHost(t *testing.T) {
	c := newCertCache()
	var calls atomic.Int32
	gen := func() (*tls.Certificate, error) {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond)
		return &tls.Certificate{}, nil
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := c.Fetch("a.example", gen); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("signed %d times for one host", calls.Load())
	}
	// A failed signing is not cached.
	fail := errors.New("boom")
	if _, err := c.Fetch("b.example", func() (*tls.Certificate, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Fatal(err)
	}
	if _, err := c.Fetch("b.example", gen); err != nil || calls.Load() != 2 {
		t.Errorf("after a failure: err %v, calls %d", err, calls.Load())
	}
}

// TestChromiumThroughBrowserProxy drives a real headless Chromium through
// the browser proxy against a local HTTPS server that answers like an
// authorization server: /authorize redirects to /callback with code and
// state. The profile trusts mcptap's CA only through the SPKI flag that
// `mcptap browser` uses; the run without it proves nothing else made the
// certificate acceptable.
func TestChromiumThroughBrowserProxy(t *testing.T) {
	bin, err := chromium.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Chromium: %v (install the Debian package chromium)", err)
		}
		t.Skipf("no Chromium: %v", err)
	}
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			http.Redirect(w, r, "/callback?code=code-123&state="+url.QueryEscape(r.URL.Query().Get("state")), http.StatusFound)
		case "/callback":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<html><body><p id=done>callback ok state=%s</p></body></html>", r.URL.Query().Get("state"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	e := startFwd(t, tlsPool(up), nil)

	run := func(trustCA bool) string {
		t.Helper()
		opts := chromium.Options{ProxyAddr: e.fw.Addr(), ProfileDir: t.TempDir(), NoSandbox: true}
		if trustCA {
			opts.SPKI = e.ca.SPKIHash()
		}
		args := append([]string{"--headless", "--disable-gpu", "--disable-dev-shm-usage", "--dump-dom"},
			chromium.Args(opts)...)
		args = append(args, up.URL+"/authorize?state=st-%C3%A9x")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstderr: %s", bin, err, stderr.String())
		}
		t.Logf("chromium (trust=%v) ran %v", trustCA, time.Since(start).Round(time.Millisecond))
		return stdout.String()
	}

	dom := run(true)
	if !strings.Contains(dom, "callback ok state=st-éx") {
		t.Fatalf("Chromium did not reach the callback through the proxy; DOM:\n%s", dom)
	}
	auth := e.rec.waitFor(t, "authorize", func(ex mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, "/authorize") })
	cb := e.rec.waitFor(t, "callback", func(ex mcptap.Exchange) bool { return strings.HasPrefix(ex.Target, "/callback") })
	if auth.Status != http.StatusFound || auth.RespHeader.Get("Location") != "/callback?code=code-123&state=st-%C3%A9x" {
		t.Errorf("authorize recorded as %d Location %q", auth.Status, auth.RespHeader.Get("Location"))
	}
	if auth.Target != "/authorize?state=st-%C3%A9x" || auth.Scheme != "https" || auth.Mode != mcptap.ModeForward {
		t.Errorf("authorize target %q scheme %q mode %q", auth.Target, auth.Scheme, auth.Mode)
	}
	if cb.Status != 200 || !strings.Contains(string(cb.RespBody), "callback ok") || cb.URL() != up.URL+"/callback?code=code-123&state=st-%C3%A9x" {
		t.Errorf("callback recorded as %d %q body %q", cb.Status, cb.URL(), cb.RespBody)
	}
	if ua := auth.ReqHeader.Get("User-Agent"); !strings.Contains(ua, "Chrome") {
		t.Errorf("authorize User-Agent %q is not Chromium's", ua)
	}

	before := len(e.rec.complete())
	dom = run(false)
	if strings.Contains(dom, "callback ok") {
		t.Error("Chromium accepted mcptap's certificate without the SPKI flag: something else trusts the CA")
	}
	for _, ex := range e.rec.complete()[before:] {
		if strings.HasPrefix(ex.Target, "/authorize") || strings.HasPrefix(ex.Target, "/callback") {
			t.Errorf("without the SPKI flag an exchange still went through: %s", ex.URL())
		}
	}
}

func TestOriginForm(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://h:1/p?q=%2F&x", "/p?q=%2F&x"},
		{"http://h", "/"},
		{"http://h?x=1", "/?x=1"},
		{"http://user@h/a//b", "/a//b"},
		{"/already?x", "/already?x"},
		{"*", "*"},
		{"h:443", "h:443"},
		{"", ""},
	} {
		if got := originForm(tc.in); got != tc.want {
			t.Errorf("originForm(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A WebSocket upgrade inside a MITM tunnel: the 101 body is the upgraded
// connection, which the recorder must hand through untouched.
func TestForwardWebSocketThroughMITM(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(brw, buf); err != nil {
			return
		}
		conn.Write(bytes.ToUpper(buf))
	}))
	defer up.Close()
	e := startFwd(t, tlsPool(up), nil)
	host := strings.TrimPrefix(up.URL, "https://")

	raw := dialRaw(t, e.fw.Addr())
	fmt.Fprintf(raw, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	fmt.Fprintf(tc, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host)
	tbr := bufio.NewReader(tc)
	resp, err = http.ReadResponse(tbr, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	tc.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(tbr, got); err != nil || string(got) != "PING" {
		t.Fatalf("echo through the upgraded tunnel: %q %v", got, err)
	}
	ex := e.rec.waitFor(t, "upgrade", func(ex mcptap.Exchange) bool { return ex.Target == "/ws" })
	if ex.Status != http.StatusSwitchingProtocols || ex.Scheme != "https" || ex.Err != "" {
		t.Errorf("recorded %d %s err %q", ex.Status, ex.Scheme, ex.Err)
	}
}
