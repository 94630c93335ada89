package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
)

// Run on demand: go test -run x -bench . -benchmem ./proxy
// Compares one request through a bare ReverseProxy with the same transport
// and buffer pool to one through mcptap's recording route (publishing to a
// channel like the broker does); allocations per request are the steady figure.

func benchUpstream(b *testing.B) *url.URL {
	payload := []byte(`{"jsonrpc":"2.0","id":1,"result":{"pad":"` + strings.Repeat("y", 980) + `"}}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(payload)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

func benchDrive(b *testing.B, addr string) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	body := strings.Repeat("x", 200)
	target := "http://" + addr + "/mcp?bench=1"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(target, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.Out.Host = pr.In.Host },
		Transport:  DefaultUpstreamTransport(0),
		BufferPool: bufPool,
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	benchDrive(b, ln.Addr().String())
}

func BenchmarkRecordingProxy(b *testing.B) {
	up := benchUpstream(b)
	c := make(chan mcptap.Exchange, 1<<16)
	done := make(chan struct{})
	go func() {
		for range c {
		}
		close(done)
	}()
	p, err := Start(Config{Routes: []Route{{Listen: "127.0.0.1:0", Upstream: up}}, Publish: func(ex mcptap.Exchange) {
		select {
		case c <- ex:
		default:
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Shutdown(b.Context()); close(c); <-done })
	benchDrive(b, p.Addrs()[0])
}
