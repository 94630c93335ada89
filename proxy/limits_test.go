package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

// A request whose body stalls is cut after BodyIdleTimeout; one whose body
// keeps coming, however slowly in total, is not.
func TestBodyIdleTimeout(t *testing.T) {
	got := make(chan string, 2)
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%d %v", len(b), err)
		io.WriteString(w, "ok")
	}))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish, BodyIdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	addr := p.Addrs()[0]

	// Stalled: 10 of 100 bytes, then nothing. The proxy hangs up.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	c.SetReadDeadline(time.Now().Add(hangLimit))
	rest, err := io.ReadAll(c) // the answer, then the proxy hangs up
	if err != nil {
		t.Fatalf("the stalled request was not cut: %v", err)
	}
	if !strings.HasPrefix(string(rest), "HTTP/1.1 408") || !strings.Contains(string(rest), "no request body bytes") {
		t.Errorf("the stalled request was answered %q, want 408 saying why", rest)
	}
	exs := col.waitComplete(t, 1)
	if !strings.Contains(exs[0].Err, "no request body bytes") {
		t.Errorf("the cut request is recorded without its error: %+v", exs[0])
	}

	// Steady: 20 chunks 100 ms apart (2 s in all, each gap a tenth of the limit).
	pr, pw := io.Pipe()
	go func() {
		for range 20 {
			pw.Write([]byte("x"))
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("a slow but steady body: %d %q", resp.StatusCode, body)
	}
	select {
	case s := <-got:
		if s != "20 <nil>" {
			t.Errorf("the upstream read %s, want the 20 bytes", s)
		}
	case <-time.After(hangLimit):
		t.Fatal("the upstream never got the steady body")
	}
}

// MaxConns: beyond the limit a new connection waits until one closes.
func TestMaxConns(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	addr := p.Addrs()[0]
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	done := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/x")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	select {
	case s := <-done:
		t.Fatalf("a third connection was served while two were held: %q", s)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	select {
	case s := <-done:
		if !strings.Contains(s, "ok") {
			t.Fatalf("after a slot freed: %q", s)
		}
	case <-time.After(hangLimit):
		t.Fatal("the waiting connection was never served")
	}
	held[1].Close()
}

// hangLimit tells a hang from a slow machine.
const hangLimit = 30 * time.Second

// A client that half-closes after a complete request (it is done sending,
// not reading) gets the upstream's own answer, not a made-up empty 200.
func TestHalfCloseGetsTheRealAnswer(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // answered after the client's FIN
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"real":"answer"}`)
	}))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	c, err := net.Dial("tcp", p.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(hangLimit))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 201") || !strings.Contains(string(got), `{"real":"answer"}`) {
		t.Fatalf("half-closed client got %q, want the upstream's 201 and body", got)
	}
	exs := col.waitComplete(t, 1)
	if exs[0].Status != 201 || string(exs[0].RespBody) != `{"real":"answer"}` {
		t.Errorf("recorded %d %q", exs[0].Status, exs[0].RespBody)
	}
}

// Requests net/http refuses before any handler (a request line it cannot
// parse, headers past the limit) are recorded with what was refused and why.
func TestRefusedRequestsAreRecorded(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	send := func(raw string) string {
		c, err := net.Dial("tcp", p.Addrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, raw)
		c.SetReadDeadline(time.Now().Add(hangLimit))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	// a served request first: a later refusal on a fresh connection is still seen
	if got := send("GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.Contains(got, "ok") {
		t.Fatalf("normal request: %q", got)
	}
	if got := send("GET /huge HTTP/1.1\r\nHost: tunnel.example\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Fatalf("huge headers: %q", got[:min(len(got), 80)])
	}
	if got := send("NOT A REQUEST\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Fatalf("bad request line: %q", got)
	}
	exs := col.waitComplete(t, 3)
	byStatus := map[int]mcptap.Exchange{}
	for _, ex := range exs {
		byStatus[ex.Status] = ex
	}
	if ex, ok := byStatus[431]; !ok || ex.Target != "/huge" || ex.Host != "tunnel.example" || !strings.Contains(ex.Err, "never saw it") {
		t.Errorf("431 recorded as %+v", ex)
	}
	if ex, ok := byStatus[400]; !ok || ex.Target != "NOT A REQUEST" {
		t.Errorf("400 recorded as %+v", ex)
	}
	if ex := byStatus[200]; ex.Target != "/fine" || ex.Err != "" {
		t.Errorf("the served request: %+v", ex)
	}
}
