package lab

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/proxy"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestSDKCallsThroughProxyUncut guards the stream cut the lab once hit:
// about 1 go-sdk tools/call in 100 through the reverse proxy ended with
// "request terminated without response", because the HTTP/1 server closed the
// inbound request body when the response head went out, under the outbound
// transport's final read of it (fixed by full duplex in proxy/reverse.go;
// proxy.TestFullDuplexBody is the deterministic form). Here the real SDK client
// and server make 100 streaming calls through mcptap's proxy: none may fail and
// no exchange may be recorded with an error.
func TestSDKCallsThroughProxyUncut(t *testing.T) {
	w, err := NewWorld(Scenario{Name: "x", Profile: ProfileChatGPT})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var mu sync.Mutex
	var errs []string
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
	addr := func() string { return px.Addrs()[0] }
	defer px.Shutdown(context.Background())
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
	for i := 0; i < 100; i++ {
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
	if fails > 0 || len(errs) > 0 {
		t.Fatalf("%d/100 calls failed; exchanges recorded with errors: %v", fails, errs)
	}
}
