package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

// rawRequest is one request exactly as a raw TCP upstream read it off the wire.
type rawRequest struct {
	Head    string // request line and header lines, up to and excluding the blank line
	Body    []byte // decoded body bytes (de-chunked if chunked)
	Chunked bool
}

// rawUpstream is an HTTP/1.1 server written on net.Listen so that tests see
// the bytes the proxy sent, not net/http's parsed view of them. For each
// request it answers with the bytes respond returns.
type rawUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	reqs    []rawRequest
	respond func(rawRequest) []byte
	after   func(net.Conn, *bufio.Reader) // optional: runs after the response, owning the conn (101 tests)
}

func newRawUpstream(t *testing.T, respond func(rawRequest) []byte) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, respond: respond}
	t.Cleanup(func() { ln.Close() })
	go u.serve()
	return u
}

func (u *rawUpstream) URL() *url.URL { return &url.URL{Scheme: "http", Host: u.ln.Addr().String()} }

func (u *rawUpstream) requests() []rawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawRequest(nil), u.reqs...)
}

func (u *rawUpstream) serve() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		go u.conn(c)
	}
}

func (u *rawUpstream) conn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
			head.WriteString(line)
		}
		rr := rawRequest{Head: strings.TrimSuffix(head.String(), "\r\n")}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String() + "\r\n")))
		if err != nil {
			return
		}
		switch {
		case len(req.TransferEncoding) > 0:
			rr.Chunked = true
			rr.Body, err = io.ReadAll(httputil.NewChunkedReader(br))
			if err != nil {
				return
			}
			// trailer section: read up to the blank line
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
		case req.ContentLength > 0:
			rr.Body = make([]byte, req.ContentLength)
			if _, err := io.ReadFull(br, rr.Body); err != nil {
				return
			}
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, rr)
		u.mu.Unlock()
		if _, err := c.Write(u.respond(rr)); err != nil {
			return
		}
		if u.after != nil {
			u.after(c, br)
			return
		}
	}
}

// collector is a Publish func that keeps every exchange it is handed.
type collector struct {
	mu  sync.Mutex
	exs []mcptap.Exchange
	ch  chan mcptap.Exchange
}

func newCollector() *collector { return &collector{ch: make(chan mcptap.Exchange, 1024)} }

func (c *collector) Publish(ex mcptap.Exchange) {
	c.mu.Lock()
	c.exs = append(c.exs, ex)
	c.mu.Unlock()
	select {
	case c.ch <- ex:
	default:
	}
}

func (c *collector) all() []mcptap.Exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]mcptap.Exchange(nil), c.exs...)
}

// complete returns the last complete publication of each exchange, in the
// order they completed.
func (c *collector) complete() []mcptap.Exchange {
	var out []mcptap.Exchange
	for _, ex := range c.all() {
		if ex.Complete {
			out = append(out, ex)
		}
	}
	return out
}

// waitComplete waits until n exchanges have been published complete.
func (c *collector) waitComplete(t *testing.T, n int) []mcptap.Exchange {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := c.complete(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("waited for %d complete exchanges, have %d", n, len(c.complete()))
	return nil
}

// startProxy runs a reverse proxy to upstream and shuts it down at cleanup.
func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	for i := range cfg.Routes {
		if cfg.Routes[i].Listen == "" {
			cfg.Routes[i].Listen = "127.0.0.1:0"
		}
	}
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

// dialRaw opens a TCP connection to addr that closes when the test ends and
// fails any read or write after 10s.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawExchange sends req (raw bytes) to addr on a fresh connection and reads
// one response: its raw head (status line and header lines) and decoded body.
func rawExchange(t *testing.T, addr, req, method string) (string, *http.Response, []byte) {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read response head: %v", err)
		}
		if line == "\r\n" {
			break
		}
		head.WriteString(line)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head.String()+"\r\n"), br)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return strings.TrimSuffix(head.String(), "\r\n"), resp, body
}

// field is one header line: name (lowercased for comparison) and raw value.
type field struct{ name, value string }

var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
}

// endToEndFields parses the header lines of a raw head (skipping the start
// line) into fields, dropping hop-by-hop ones, sorted by name with the order
// of repeated fields kept.
func endToEndFields(head string) []field {
	lines := strings.Split(head, "\r\n")[1:]
	var out []field
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n := strings.ToLower(name)
		if hopByHop[n] {
			continue
		}
		out = append(out, field{n, strings.TrimLeft(value, " \t")})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func httpResponse(status int, headers []string, body string) []byte {
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}
