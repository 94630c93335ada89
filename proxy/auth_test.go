package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// With a Secret, the browser proxy serves only clients that present its
// credentials: others, plain requests and CONNECT alike, get 407 and a
// Proxy-Authenticate challenge; the credentials go no further than the proxy.
func TestForwardRequiresItsCredentials(t *testing.T) {
	var seen http.Header
	up := startHTTPUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		io.WriteString(w, "upstream")
	}))
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	const secret = "per-run-secret-0123456789"
	fw, err := ListenForward(ForwardConfig{Listen: "127.0.0.1:0", CA: ca, Publish: col.Publish, Session: "s", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	fw.Serve()
	defer fw.Shutdown(t.Context())
	proxyURL, _ := url.Parse("http://" + fw.Addr())
	get := func(auth string) *http.Response {
		t.Helper()
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
		if auth != "" {
			tr.ProxyConnectHeader = http.Header{"Proxy-Authorization": {auth}}
		}
		req, _ := http.NewRequest("GET", up.String()+"/page?code=AC_secret", nil)
		if auth != "" {
			req.Header.Set("Proxy-Authorization", auth)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, auth := range []string{"", ProxyAuthorization("wrong"), "Basic " + secret} {
		if resp := get(auth); resp.StatusCode != http.StatusProxyAuthRequired || !strings.Contains(resp.Header.Get("Proxy-Authenticate"), "Basic") {
			t.Errorf("credentials %q: %d, want 407 with a Basic challenge", auth, resp.StatusCode)
		}
	}
	if resp := get(ProxyAuthorization(secret)); resp.StatusCode != 200 {
		t.Fatalf("with the credentials: %d", resp.StatusCode)
	}
	if seen.Get("Proxy-Authorization") != "" {
		t.Errorf("the upstream saw the proxy's credentials: %q", seen.Get("Proxy-Authorization"))
	}
	for _, ex := range col.waitComplete(t, 1) {
		if ex.ReqHeader.Get("Proxy-Authorization") != "" {
			t.Errorf("the recording holds the proxy's credentials")
		}
	}

	// CONNECT (HTTPS through the MITM proxy) without credentials: 407 before any tunnel.
	c, err := net.Dial("tcp", fw.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("CONNECT without credentials: %v %v, want 407", resp, err)
	}
}
