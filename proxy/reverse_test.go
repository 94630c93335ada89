package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/freeport"
)

const testCap = 1024

// TestTransparentBytes proves invariant 1 of ARCHITECTURE.md on the wire: a
// raw TCP upstream receives the request line byte for byte (odd queries that
// Rewrite would re-encode included), every end-to-end header value in order,
// the client's Host and X-Forwarded-* with nothing appended, and the body; the
// client receives the upstream's status, headers and body; and the recording
// holds the raw target and capped bodies with their true sizes.
func TestTransparentBytes(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 200) // 3200 bytes, above the cap
	bigResp := strings.Repeat("fedcba9876543210", 250)
	chunk := func(s string, size int) string {
		var b strings.Builder
		for len(s) > 0 {
			n := min(size, len(s))
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
			s = s[n:]
		}
		b.WriteString("0\r\n\r\n")
		return b.String()
	}
	cases := []struct {
		name       string
		method     string
		target     string
		headers    []string // raw header lines after Host
		body       string   // decoded request body
		chunked    bool
		resp       []byte // the upstream's raw response
		respBody   string // decoded response body
		wantScheme string
	}{
		{
			name:   "odd query, casing, duplicates, forwarding headers",
			method: "GET",
			target: "/authorize?response_type=code&state=a%2Bb%3D%3D&x=+&x=2" +
				"&redirect_uri=https://chatgpt.com/connector_platform_oauth_redirect?foo=1&bar=2" +
				"&bad=%zz&semi=a;b&empty=&flag",
			headers: []string{
				"x-lower-case: v1", "MiXeD-CaSe: v2", "X-Dup: first", "x-dup: second",
				"X-Forwarded-For: 203.0.113.7, 10.0.0.1", "X-Forwarded-Proto: https",
				"X-Forwarded-Host: abc.ngrok-free.app", "Forwarded: for=203.0.113.7;proto=https",
				"Accept: */*", "Connection: keep-alive", "Keep-Alive: timeout=5",
			},
			resp: httpResponse(302, []string{
				"Location: https://chatgpt.com/connector_platform_oauth_redirect?state=a%2Bb%3D%3D&code=c0de",
				"Content-Length: 0", "Set-Cookie: a=1; Path=/", "Set-Cookie: b=2", "X-Resp-Dup: 1", "x-resp-dup: 2",
			}, ""),
			wantScheme: "https",
		},
		{
			name:    "fixed-length bodies above the cap",
			method:  "POST",
			target:  "/mcp",
			headers: []string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(big)), "Mcp-Session-Id: s1"},
			body:    big,
			resp: httpResponse(200, []string{"Content-Type: application/json", "Content-Length: " + strconv.Itoa(len(bigResp)),
				"Date: Mon, 02 Jan 2006 15:04:05 GMT"}, bigResp),
			respBody: bigResp,
		},
		{
			name:     "chunked bodies above the cap",
			method:   "POST",
			target:   "/token",
			headers:  []string{"Content-Type: application/x-www-form-urlencoded", "Transfer-Encoding: chunked"},
			body:     big,
			chunked:  true,
			resp:     httpResponse(200, []string{"Content-Type: text/plain", "Transfer-Encoding: chunked"}, chunk(bigResp, 700)),
			respBody: bigResp,
		},
		{
			name:   "HEAD keeps Content-Length without a body",
			method: "HEAD",
			target: "/file.bin",
			resp:   httpResponse(200, []string{"Content-Type: application/octet-stream", "Content-Length: 5000"}, ""),
		},
		{
			name:   "204",
			method: "DELETE",
			target: "/mcp",
			resp:   httpResponse(204, []string{"X-Done: yes"}, ""),
		},
		{
			name:    "304",
			method:  "GET",
			target:  "/.well-known/oauth-protected-resource",
			headers: []string{`If-None-Match: "v1"`},
			resp:    httpResponse(304, []string{`ETag: "v1"`, "Cache-Control: max-age=60"}, ""),
		},
		{
			name:     "characters Go would escape",
			method:   "GET",
			target:   "/a/{x}|y/%2F/%7e?q=%zz&q=%41",
			resp:     httpResponse(200, []string{"Content-Length: 2"}, "ok"),
			respBody: "ok",
		},
		{
			name:     "leading double slash",
			method:   "GET",
			target:   "//double//slash/%2F?q=%zz",
			resp:     httpResponse(200, []string{"Content-Length: 2"}, "ok"),
			respBody: "ok",
		},
	}

	var mu sync.Mutex
	var next []byte
	up := newRawUpstream(t, func(rawRequest) []byte {
		mu.Lock()
		defer mu.Unlock()
		return next
	})
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up.URL()}}, BodyCap: testCap, Publish: col.Publish, Session: "s-test"})
	addr := p.Addrs()[0]

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			next = tc.resp
			mu.Unlock()
			var req strings.Builder
			req.WriteString(tc.method + " " + tc.target + " HTTP/1.1\r\nHost: abc.ngrok-free.app\r\n")
			for _, h := range tc.headers {
				req.WriteString(h + "\r\n")
			}
			req.WriteString("\r\n")
			if tc.chunked {
				req.WriteString(chunk(tc.body, 1000))
			} else {
				req.WriteString(tc.body)
			}
			clientHead := strings.SplitN(req.String(), "\r\n\r\n", 2)[0]

			respHead, resp, respBody := rawExchange(t, addr, req.String(), tc.method)

			// What the upstream received.
			got := up.requests()
			if len(got) != i+1 {
				t.Fatalf("upstream saw %d requests, want %d", len(got), i+1)
			}
			rr := got[i]
			wantLine := tc.method + " " + tc.target + " HTTP/1.1"
			if line := strings.SplitN(rr.Head, "\r\n", 2)[0]; line != wantLine {
				t.Errorf("request line\n got %q\nwant %q", line, wantLine)
			}
			if g, w := endToEndFields(rr.Head), endToEndFields(clientHead); !reflect.DeepEqual(g, w) {
				t.Errorf("upstream header fields\n got %q\nwant %q", g, w)
			}
			if string(rr.Body) != tc.body {
				t.Errorf("upstream body: got %d bytes, want %d", len(rr.Body), len(tc.body))
			}
			if rr.Chunked != tc.chunked {
				t.Errorf("upstream chunked = %v, want %v", rr.Chunked, tc.chunked)
			}

			// What the client received.
			upHead := strings.SplitN(string(tc.resp), "\r\n\r\n", 2)[0]
			if g, w := strings.SplitN(respHead, "\r\n", 2)[0], strings.SplitN(upHead, "\r\n", 2)[0]; g != w {
				t.Errorf("status line: got %q, want %q", g, w)
			}
			if g, w := endToEndFields(respHead), endToEndFields(upHead); !reflect.DeepEqual(g, w) {
				t.Errorf("client header fields\n got %q\nwant %q", g, w)
			}
			if string(respBody) != tc.respBody {
				t.Errorf("client body: got %d bytes, want %d", len(respBody), len(tc.respBody))
			}

			// What was recorded.
			exs := col.waitComplete(t, i+1)
			ex := exs[i]
			if ex.Target != tc.target || ex.Method != tc.method || ex.Host != "abc.ngrok-free.app" {
				t.Errorf("recorded %s %s host %s, want %s %s host abc.ngrok-free.app", ex.Method, ex.Target, ex.Host, tc.method, tc.target)
			}
			wantScheme := tc.wantScheme
			if wantScheme == "" {
				wantScheme = "http"
			}
			if ex.Scheme != wantScheme {
				t.Errorf("recorded scheme %q, want %q", ex.Scheme, wantScheme)
			}
			if ex.Status != resp.StatusCode || ex.Err != "" || ex.Session != "s-test" || ex.Mode != mcptap.ModeReverse {
				t.Errorf("recorded status %d err %q session %q mode %q", ex.Status, ex.Err, ex.Session, ex.Mode)
			}
			if ex.Listener != addr || ex.RemoteAddr == "" || ex.Upstream != up.URL().String() || ex.Proto != "HTTP/1.1" {
				t.Errorf("recorded listener %q remote %q upstream %q proto %q", ex.Listener, ex.RemoteAddr, ex.Upstream, ex.Proto)
			}
			checkBody(t, "request", ex.ReqBody, ex.ReqSize, ex.ReqTruncated, tc.body)
			checkBody(t, "response", ex.RespBody, ex.RespSize, ex.RespTruncated, tc.respBody)
			if ex.Start.IsZero() || ex.ResponseAt.Before(ex.Start) || ex.End.Before(ex.ResponseAt) {
				t.Errorf("times: start %v response %v end %v", ex.Start, ex.ResponseAt, ex.End)
			}
			if tc.name == "odd query, casing, duplicates, forwarding headers" {
				if loc := ex.RespHeader.Get("Location"); !strings.Contains(loc, "state=a%2Bb%3D%3D") {
					t.Errorf("recorded Location %q lost its raw bytes", loc)
				}
				if v := ex.ReqHeader.Values("X-Dup"); !reflect.DeepEqual(v, []string{"first", "second"}) {
					t.Errorf("recorded X-Dup %q", v)
				}
			}
		})
	}
}

func checkBody(t *testing.T, what string, rec []byte, size int64, truncated bool, want string) {
	t.Helper()
	if size != int64(len(want)) {
		t.Errorf("%s size %d, want %d", what, size, len(want))
	}
	wantRec := want[:min(len(want), testCap)]
	if string(rec) != wantRec {
		t.Errorf("%s recorded %d bytes, want the first %d", what, len(rec), len(wantRec))
	}
	if truncated != (len(want) > testCap) {
		t.Errorf("%s truncated = %v for %d bytes with cap %d", what, truncated, len(want), testCap)
	}
}

// TestHostHeaderUpstream: --host-header=upstream sends the upstream's host
// (servers with DNS-rebinding protection reject a public Host) and keeps the
// forwarding headers; the recording still holds the client's Host.
func TestHostHeaderUpstream(t *testing.T) {
	up := newRawUpstream(t, func(rawRequest) []byte { return httpResponse(200, []string{"Content-Length: 0"}, "") })
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up.URL()}}, HostHeader: "upstream", Publish: col.Publish})
	rawExchange(t, p.Addrs()[0], "GET /mcp HTTP/1.1\r\nHost: public.example\r\nX-Forwarded-Host: public.example\r\n\r\n", "GET")
	head := up.requests()[0].Head
	if !strings.Contains(head, "\r\nHost: "+up.URL().Host+"\r\n") {
		t.Errorf("upstream head has no upstream Host:\n%s", head)
	}
	if !strings.Contains(head, "\r\nX-Forwarded-Host: public.example") {
		t.Errorf("upstream head lost X-Forwarded-Host:\n%s", head)
	}
	if strings.Contains(head, "X-Forwarded-For") || strings.Contains(head, "X-Forwarded-Proto") {
		t.Errorf("proxy appended forwarding headers the client never sent:\n%s", head)
	}
	if ex := col.waitComplete(t, 1)[0]; ex.Host != "public.example" {
		t.Errorf("recorded Host %q, want the client's", ex.Host)
	}
}

// TestUpstreamPathPrefix: an upstream URL with a path puts that prefix before
// the raw target, which stays otherwise untouched.
func TestUpstreamPathPrefix(t *testing.T) {
	up := newRawUpstream(t, func(rawRequest) []byte { return httpResponse(200, []string{"Content-Length: 0"}, "") })
	u := up.URL()
	u.Path = "/base/"
	p := startProxy(t, Config{Routes: []Route{{Upstream: u}}, Publish: newCollector().Publish})
	rawExchange(t, p.Addrs()[0], "GET /mcp?x=%zz HTTP/1.1\r\nHost: h\r\n\r\n", "GET")
	if line := strings.SplitN(up.requests()[0].Head, "\r\n", 2)[0]; line != "GET /base/mcp?x=%zz HTTP/1.1" {
		t.Errorf("request line %q", line)
	}
}

// TestSSEStreams: events written 300 ms apart each reach the client before
// the next one is written, the exchange is published at the response head
// while the stream is still open, and the recorded body holds every event.
func TestSSEStreams(t *testing.T) {
	const events = 4
	var written [events]time.Time
	var mu sync.Mutex
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for i := range events {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			mu.Lock()
			written[i] = time.Now()
			mu.Unlock()
			fmt.Fprintf(w, "event: message\ndata: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	up := startHTTPUpstream(t, upstream)
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: col.Publish})

	resp, err := http.Get("http://" + p.Addrs()[0] + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var arrived [events]time.Time
	var sawHeadWhileOpen bool
	for i := range events {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				arrived[i] = time.Now()
				break
			}
		}
		if i == 0 {
			for _, ex := range col.all() {
				if !ex.Complete && ex.Status == 200 && ex.Target == "/mcp" {
					sawHeadWhileOpen = true
				}
			}
		}
	}
	if !sawHeadWhileOpen {
		t.Error("no head publication (Complete=false) while the stream was open")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i+1 < events; i++ {
		if !arrived[i].Before(written[i+1]) {
			t.Errorf("event %d arrived at +%v, after event %d was written at +%v: buffered",
				i, arrived[i].Sub(written[0]), i+1, written[i+1].Sub(written[0]))
		}
	}
	io.Copy(io.Discard, br)
	ex := col.waitComplete(t, 1)[0]
	for i := range events {
		if !bytes.Contains(ex.RespBody, fmt.Appendf(nil, "data: {\"n\":%d}", i)) {
			t.Errorf("recorded body lacks event %d: %q", i, ex.RespBody)
		}
	}
	if ex.RespTruncated || ex.RespSize != int64(len(ex.RespBody)) || ex.Err != "" {
		t.Errorf("recorded size %d truncated %v err %q", ex.RespSize, ex.RespTruncated, ex.Err)
	}
}

func startHTTPUpstream(t *testing.T, h http.Handler) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestDeadUpstream502: an upstream that refuses connections gives the client
// a short plain-text 502, and the exchange is recorded complete with the error.
func TestDeadUpstream502(t *testing.T) {
	dead := &url.URL{Scheme: "http", Host: freeport.Addr(t)} // nothing listens there
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: dead}}, Publish: col.Publish})
	resp, err := http.Post("http://"+p.Addrs()[0]+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=authorization_code&code=abc"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	if !strings.Contains(string(body), "connection refused") || strings.Count(string(body), "\n") != 1 {
		t.Errorf("body %q: want one line naming the reason", body)
	}
	ex := col.waitComplete(t, 1)[0]
	if !strings.Contains(ex.Err, "connection refused") || ex.Status != 0 || ex.Target != "/token" {
		t.Errorf("recorded err %q status %d target %q", ex.Err, ex.Status, ex.Target)
	}
	// The upstream never read the form, but a failed token call needs it recorded.
	if string(ex.ReqBody) != "grant_type=authorization_code&code=abc" || ex.ReqSize != 38 || ex.ReqTruncated {
		t.Errorf("recorded request body %q size %d truncated %v", ex.ReqBody, ex.ReqSize, ex.ReqTruncated)
	}
	if len(col.all()) != 1 {
		t.Errorf("a failed exchange is published once, got %d publications", len(col.all()))
	}
}

// TestResponseHeaderTimeout: a silent upstream trips the configured timeout
// and yields a recorded 502; a slow stream whose head came in time does not.
func TestResponseHeaderTimeout(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			time.Sleep(600 * time.Millisecond)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(500 * time.Millisecond)
		io.WriteString(w, "data: late\n\n")
	}))
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: col.Publish, ResponseHeaderTimeout: 200 * time.Millisecond})
	resp, err := http.Get("http://" + p.Addrs()[0] + "/silent")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("silent upstream: status %d, want 502", resp.StatusCode)
	}
	resp, err = http.Get("http://" + p.Addrs()[0] + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "data: late\n\n" {
		t.Errorf("slow stream body %q", b)
	}
	exs := col.waitComplete(t, 2)
	if !strings.Contains(exs[0].Err, "timeout") {
		t.Errorf("recorded err %q, want a timeout", exs[0].Err)
	}
}

// TestWebSocketUpgrade: a 101 passes through and the upgraded connection
// carries bytes both ways; the handshake is recorded.
func TestWebSocketUpgrade(t *testing.T) {
	up := newRawUpstream(t, func(rawRequest) []byte {
		return httpResponse(101, []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, "")
	})
	up.after = func(c net.Conn, br *bufio.Reader) {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err == nil {
			c.Write(append([]byte("echo:"), buf...))
		}
	}
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up.URL()}}, Publish: col.Publish})
	c := dialRaw(t, p.Addrs()[0])
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(c, "ping")
	got := make([]byte, 9)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "echo:ping" {
		t.Fatalf("upgraded stream: %q %v", got, err)
	}
	if h := up.requests()[0].Head; !strings.Contains(h, "Upgrade: websocket") || !strings.Contains(h, "Sec-Websocket-Key: dGhlIHNhbXBsZSBub25jZQ==") {
		t.Errorf("upstream handshake:\n%s", h)
	}
	ex := col.waitComplete(t, 1)[0]
	if ex.Status != 101 || ex.Target != "/ws" {
		t.Errorf("recorded status %d target %q", ex.Status, ex.Target)
	}
}

// TestShutdownLetsInFlightFinish: Shutdown stops accepting at once but the
// response already in progress completes and is recorded before it returns.
func TestShutdownLetsInFlightFinish(t *testing.T) {
	started := make(chan struct{})
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addrs()[0]
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if len(col.complete()) != 1 {
		t.Errorf("after Shutdown, %d complete exchanges recorded, want 1", len(col.complete()))
	}
	if r := <-res; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: %q %v", r.body, r.err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts after Shutdown")
	}
}

// TestListenRefusesRemote: a non-loopback listener needs AllowRemote.
func TestListenRefusesRemote(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:80"} {
		if _, err := Listen(Config{Routes: []Route{{Listen: addr, Upstream: u}}}); err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Errorf("%s: err %v, want a refusal", addr, err)
		}
	}
	p, err := Listen(Config{Routes: []Route{{Listen: ":0", Upstream: u}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	if host, _, _ := net.SplitHostPort(p.Addrs()[0]); host != "127.0.0.1" {
		t.Errorf("empty host bound %s, want loopback", p.Addrs()[0])
	}
}

// TestFixedLengthBodyNotHeldBack: a body with a Content-Length that arrives in
// parts reaches the client part by part (flushWriter), not when the server's
// buffer fills or the response ends.
func TestFixedLengthBodyNotHeldBack(t *testing.T) {
	const part = "first part;"
	var secondWritten time.Time
	var mu sync.Mutex
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(2*len(part)))
		w.WriteHeader(200)
		io.WriteString(w, part)
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond)
		mu.Lock()
		secondWritten = time.Now()
		mu.Unlock()
		io.WriteString(w, part)
	}))
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: newCollector().Publish})
	resp, err := http.Get("http://" + p.Addrs()[0] + "/slow.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != int64(2*len(part)) {
		t.Fatalf("content length %d", resp.ContentLength)
	}
	buf := make([]byte, len(part))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	firstArrived := time.Now()
	rest, _ := io.ReadAll(resp.Body)
	mu.Lock()
	defer mu.Unlock()
	if !firstArrived.Before(secondWritten) {
		t.Errorf("first part arrived %v after the second was written: held back", firstArrived.Sub(secondWritten))
	}
	if string(buf)+string(rest) != part+part {
		t.Errorf("body %q%q", buf, rest)
	}
}

// TestTrailersPassThrough: announced and unannounced trailers of a chunked
// response reach the client (regression guard: copying the *http.Response in
// RoundTrip lost trailers when none was announced).
func TestTrailersPassThrough(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/announced" {
			w.Header().Set("Trailer", "X-Announced")
		}
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/announced" {
			w.Header().Set("X-Announced", "a")
		}
		w.Header().Set(http.TrailerPrefix+"X-Unannounced", "u")
	}))
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: col.Publish})
	for i, path := range []string{"/announced", "/unannounced"} {
		resp, err := http.Get("http://" + p.Addrs()[0] + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "body" || resp.Trailer.Get("X-Unannounced") != "u" || (i == 0 && resp.Trailer.Get("X-Announced") != "a") {
			t.Errorf("%s: body %q trailers %v", path, b, resp.Trailer)
		}
		if ex := col.waitComplete(t, i+1)[i]; string(ex.RespBody) != "body" {
			t.Errorf("%s: recorded %q", path, ex.RespBody)
		}
	}
}

// TestShutdownCutsOpenStream: a stream still open when the drain deadline
// passes is cut, and its exchange is published complete, with the error,
// before Shutdown returns.
func TestShutdownCutsOpenStream(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.Addrs()[0] + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: first\n" {
		t.Fatalf("first line %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = p.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "cut") {
		t.Errorf("Shutdown with an open stream: %v, want a cut error", err)
	}
	done := col.complete()
	if len(done) != 1 || done[0].Err == "" || !bytes.Contains(done[0].RespBody, []byte("data: first")) {
		t.Fatalf("after Shutdown: %d complete exchanges %+v", len(done), done)
	}
}

// TestRecordedRequestHeaderNotWrittenLater: the reverse proxy records each
// outgoing request's Header map itself (Transport.ShareRequestHeader), so
// nothing may write to it after the round trip. A consumer here reads every
// recorded header map on a goroutine of its own while the proxy answers a
// success, a 502 and a stream; under -race, any later write to one of them
// (by ReverseProxy, an error handler or a response hook) fails the test.
func TestRecordedRequestHeaderNotWrittenLater(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	dead := &url.URL{Scheme: "http", Host: freeport.Addr(t)} // nothing listens there
	var readers sync.WaitGroup
	var mu sync.Mutex
	var keys int
	publish := func(ex mcptap.Exchange) {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 50 {
				for k, v := range ex.ReqHeader {
					mu.Lock()
					keys += len(k) + len(v)
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}, {Upstream: dead}}, Publish: publish})
	for _, target := range []string{"http://" + p.Addrs()[0] + "/mcp", "http://" + p.Addrs()[0] + "/stream", "http://" + p.Addrs()[1] + "/token"} {
		resp, err := http.Post(target, "application/json", strings.NewReader(`{"jsonrpc":"2.0"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	readers.Wait()
	if keys == 0 {
		t.Fatal("the consumer saw no recorded request headers")
	}
}

// TestShutdownIgnoresSpareConnections: a client's spare connection that has
// sent nothing (HTTP clients dial ahead) holds no exchange: a stop with
// nothing in flight is clean, where net/http's Shutdown alone waited 5s
// for such a connection and the stop reported exchanges cut.
func TestShutdownIgnoresSpareConnections(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: func(mcptap.Exchange) {}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.Addrs()[0] + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	spare, err := net.Dial("tcp", p.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // a --drain shorter than net/http's 5s
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("stop with only a spare connection open: %v; want a clean stop", err)
	}
}
