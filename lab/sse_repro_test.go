package lab

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/proxy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSSERepro reproduces a stream cut between a go-sdk client and server
// through a reverse proxy: about 1 call in 100 ends with "request terminated
// without response" and the proxy logs "use of closed network connection" on
// its upstream read. It is a manual experiment, not part of the suite:
//
//	LAB_SSE_REPRO=mcptap go test -run TestSSERepro -v ./lab   # mcptap's proxy
//	LAB_SSE_REPRO=plain  go test -run TestSSERepro -v ./lab   # bare httputil.ReverseProxy
//	LAB_SSE_FIX=1 LAB_SSE_REPRO=plain go test -run TestSSERepro -v ./lab
//
// The last one hands the proxy a request body that returns EOF at its
// Content-Length, so the outbound transport never reads the inbound body after
// the response head was flushed; it measured 0 failures in 400 calls.
func TestSSERepro(t *testing.T) {
	if os.Getenv("LAB_SSE_REPRO") == "" {
		t.Skip("manual experiment: set LAB_SSE_REPRO=mcptap or plain")
	}
	w, err := NewWorld(Scenario{Name: "x", Profile: ProfileChatGPT})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var mu sync.Mutex
	var errs []string
	var addr func() string
	px, err := proxy.Start(proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: &url.URL{Scheme: "http", Host: w.Listeners()[1].Addr}}}, Publish: func(ex mcptap.Exchange) {
		if ex.Complete && ex.Err != "" {
			mu.Lock()
			errs = append(errs, ex.Err)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	addr = func() string { return px.Addrs()[0] }
	defer px.Shutdown(context.Background())
	if os.Getenv("LAB_SSE_REPRO") == "plain" {
		up, _ := url.Parse("http://" + w.Listeners()[1].Addr)
		rp := httputil.NewSingleHostReverseProxy(up)
		rp.Transport = newTransport()
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if os.Getenv("LAB_SSE_FIX") != "" && r.ContentLength > 0 {
				r.Body = struct {
					io.Reader
					io.Closer
				}{io.LimitReader(r.Body, r.ContentLength), r.Body}
			}
			rp.ServeHTTP(w, r)
			if r.Context().Err() != nil {
				t.Logf("inbound %s ctx done: %v cause=%v", r.Method, r.Context().Err(), context.Cause(r.Context()))
			}
		}))
		defer hs.Close()
		px2 := hs.Listener.Addr().String()
		addr = func() string { return px2 }
	}
	t.Log(w.Listeners(), addr())
	ctx := context.Background()
	// A bearer straight from the AS's key.
	w.SetPublic(ListenerMCP, "http://"+addr())
	g := &grant{req: authRequest{Resource: w.rs.Resource(), ClientID: "c"}, subject: "u"}
	rec := httptest.NewRecorder()
	w.as.issueTokens(rec, g)
	var ts tokenSet
	_ = json.Unmarshal(rec.Body.Bytes(), &ts)
	tok := ts.AccessToken
	bt := &bearerTransport{base: newTransport(), token: tok}
	fails := 0
	for i := 0; i < 200; i++ {
		cl := mcp.NewClient(&mcp.Implementation{Name: "r", Version: "1"}, nil)
		cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr() + "/mcp", HTTPClient: &http.Client{Transport: bt}, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := &mcp.CallToolParams{Name: "count", Arguments: map[string]any{"to": 3}}
		p.SetProgressToken("x")
		if _, err := cs.CallTool(ctx, p); err != nil {
			fails++
			t.Logf("call %d: %v", i, err)
		}
		cs.Close()
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d/200 failed; proxy errors: %v", fails, errs)
}
