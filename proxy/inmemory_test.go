package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// segmentUpstream answers every request 204 and hands the first read of each
// connection (what one segment brought) to a channel.
func segmentUpstream(t *testing.T) (net.Listener, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	first := make(chan []byte, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 256<<10)
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				first <- buf[:n:n]
				// Read the rest of the request (up to its body's end, marked by the test), then answer.
				got := buf[:n]
				for !bytes.HasSuffix(got, []byte("END")) {
					m, err := c.Read(buf[len(got):])
					if err != nil {
						return
					}
					got = buf[:len(got)+m]
				}
				io.WriteString(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n") // one request per connection
			}()
		}
	}()
	return ln, first
}

// sendSlowly writes a request head and, delay later, its body, on a fresh
// connection to addr, and returns the response's status line.
func sendSlowly(t *testing.T, addr, head, body string, delay time.Duration) string {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(head, "100-continue") {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 100") {
			t.Fatalf("waiting for 100 Continue: %q, %v", buf[:n], err)
		}
	}
	time.Sleep(delay)
	if _, err := io.WriteString(c, body); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

// A short body of known length reaches the upstream in the same segment as
// its request head, even when the client sent the two apart; and it is
// recorded whole. A body the client sends only after 100 Continue, or one
// too long to hold, still streams: its head goes first.
func TestShortBodyForwardedWithItsHead(t *testing.T) {
	ln, first := segmentUpstream(t)
	col := newCollector()
	up := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: col.Publish})
	addr := p.Addrs()[0]

	cases := []struct {
		name, expect string
		size         int
		together     bool
	}{
		{"short", "", 200, true},
		{"64KiB", "", 64 << 10, true},
		{"100-continue", "Expect: 100-continue\r\n", 200, false},
		{"longer than 64KiB", "", 64<<10 + 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size-3) + "END"
			head := fmt.Sprintf("POST /mcp HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n%s\r\n", len(body), tc.expect)
			if status := sendSlowly(t, addr, head, body, 100*time.Millisecond); status != "HTTP/1.1 204 No Content" {
				t.Fatalf("status %q", status)
			}
			seg := <-first
			gotBody := bytes.Contains(seg, []byte("\r\n\r\nxxx"))
			if gotBody != tc.together {
				t.Errorf("first segment at the upstream: %d bytes, body with the head: %v, want %v", len(seg), gotBody, tc.together)
			}
		})
	}
	exs := col.waitComplete(t, len(cases))
	for i, ex := range exs {
		want := cases[i].size
		if ex.Err != "" || ex.ReqSize != int64(want) || len(ex.ReqBody) != want || ex.ReqTruncated || ex.Status != 204 {
			t.Errorf("%s: recorded err %q, size %d, body %d bytes, truncated %v, status %d; want the whole %d-byte body",
				cases[i].name, ex.Err, ex.ReqSize, len(ex.ReqBody), ex.ReqTruncated, ex.Status, want)
		}
	}
}

// A short body the client cuts off is recorded with what arrived and why,
// and never reaches the upstream.
func TestShortBodyCutRecorded(t *testing.T) {
	ln, first := segmentUpstream(t)
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: &url.URL{Scheme: "http", Host: ln.Addr().String()}}}, Publish: col.Publish, BodyCap: 4})
	c := dialRaw(t, p.Addrs()[0])
	io.WriteString(c, "POST /token HTTP/1.1\r\nHost: example.test\r\nContent-Length: 100\r\n\r\ngrant_type=authorization_code")
	time.Sleep(50 * time.Millisecond)
	c.Close()
	ex := col.waitComplete(t, 1)[0]
	if !strings.Contains(ex.Err, "read request body") || !strings.Contains(ex.Err, "unexpected EOF") ||
		string(ex.ReqBody) != "gran" || ex.ReqSize != 100 || !ex.ReqTruncated {
		t.Errorf("recorded err %q, body %q, size %d, truncated %v", ex.Err, ex.ReqBody, ex.ReqSize, ex.ReqTruncated)
	}
	select {
	case seg := <-first:
		t.Errorf("upstream received %q", seg)
	case <-time.After(100 * time.Millisecond):
	}
}
