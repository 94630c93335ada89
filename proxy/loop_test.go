package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mcptap/mcptap/internal/freeport"
)

// --upstream pointing at mcptap's own listener: the request comes back from
// mcptap itself and is answered 508 with what to change, instead of being
// forwarded again and again (once 9,995 recorded exchanges for one request).
func TestUpstreamLoopAnswered508(t *testing.T) {
	addr := freeport.Addr(t)
	self, _ := url.Parse("http://" + addr)
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: addr, Upstream: self}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())

	resp, err := http.Post("http://"+addr+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusLoopDetected || !strings.Contains(string(body), "loop detected") || !strings.Contains(string(body), "--upstream") {
		t.Fatalf("self-upstream: %d %q, want 508 saying what to change", resp.StatusCode, body)
	}
	exs := col.waitComplete(t, 1)
	if len(exs) != 1 || exs[0].Status != http.StatusLoopDetected {
		t.Fatalf("recorded %d exchanges (first status %d), want the one request answered 508", len(exs), exs[0].Status)
	}
}

// A browser that goes through the browser proxy to a reverse listener is no
// loop: only connections dialed for reverse requests count.
func TestBrowserThroughForwardToReverseIsNoLoop(t *testing.T) {
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	col := newCollector()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: col.Publish})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fw, err := ListenForward(ForwardConfig{Listen: "127.0.0.1:0", CA: ca, Transport: p.Transport()})
	if err != nil {
		t.Fatal(err)
	}
	fw.Serve()
	defer fw.Shutdown(t.Context())
	fwURL, _ := url.Parse("http://" + fw.Addr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(fwURL)}}
	for range 2 { // the second reuses the forward proxy's pooled connection
		resp, err := client.Get("http://" + p.Addrs()[0] + "/page")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "upstream" {
			t.Fatalf("browser → forward → reverse: %d %q, want the upstream's answer", resp.StatusCode, body)
		}
	}
	for _, ex := range col.all() {
		if ex.Status == http.StatusLoopDetected {
			t.Errorf("%s %s was taken for a loop", ex.Mode, ex.Target)
		}
	}
}

// Linux gives one ephemeral port to connections to different destinations:
// a client's connection to mcptap may share its port with one of mcptap's
// own upstream connections. Only the same connection (both ends) is a loop.
func TestLoopNeedsBothEnds(t *testing.T) {
	var o ownConns
	o.m.Store(pairKey("127.0.0.1:50000", "127.0.0.1:8780"), struct{}{}) // mcptap → its own listener 8780
	req := func(remote, local string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		addr, _ := net.ResolveTCPAddr("tcp", local)
		return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
	}
	if !o.from(req("127.0.0.1:50000", "127.0.0.1:8780")) {
		t.Error("the connection mcptap dialed to itself is not seen as a loop")
	}
	if o.from(req("127.0.0.1:50000", "127.0.0.1:8781")) {
		t.Error("a client that shares the port number on another listener is taken for a loop")
	}
}
