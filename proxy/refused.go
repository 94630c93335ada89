package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcptap/mcptap"
)

// net/http answers some requests itself, before any handler runs: a request
// line it cannot parse (400), headers past MaxHeaderBytes (431), a bad Host
// (400). Those exchanges never reach the recording Transport, yet they are
// exactly the ones a user debugging a tunnel needs to see. A sniffConn keeps
// the bytes a connection reads while no handler is running on it, and when
// the server writes a response outside any handler, it records that response
// with the request line and Host it can still make out.

// sniffCap bounds what a connection keeps of an unhandled request.
const sniffCap = 8 << 10

type sniffKey struct{}

type sniffListener struct {
	net.Listener
	p        *Proxy
	listener string
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, p: l.p, listener: l.listener}, nil
}

type sniffConn struct {
	net.Conn
	p        *Proxy
	listener string

	mu sync.Mutex
	// inRequest: a handler took the current request; its response (which
	// net/http may write after the handler returns) is not the server's
	// own. It ends when the connection reads again after the handler ended.
	inRequest, ended bool
	buf              []byte
	start            time.Time
}

// withSniffConn is the server's ConnContext: handlers find their connection.
func withSniffConn(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*sniffConn); ok {
		return context.WithValue(ctx, sniffKey{}, sc)
	}
	return ctx
}

// handling marks a handler running on the request's connection; the
// returned function unmarks it.
func handling(r *http.Request) func() {
	sc, ok := r.Context().Value(sniffKey{}).(*sniffConn)
	if !ok {
		return func() {}
	}
	sc.mu.Lock()
	sc.inRequest, sc.ended = true, false
	sc.buf = sc.buf[:0]
	sc.mu.Unlock()
	return func() {
		sc.mu.Lock()
		sc.ended = true
		sc.mu.Unlock()
	}
}

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		if c.inRequest && c.ended { // the next request on a kept-alive connection
			c.inRequest, c.ended = false, false
		}
		if !c.inRequest && len(c.buf) < sniffCap {
			if len(c.buf) == 0 {
				c.start = time.Now()
			}
			c.buf = append(c.buf, b[:min(n, sniffCap-len(c.buf))]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *sniffConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	own := !c.inRequest && bytes.HasPrefix(b, []byte("HTTP/1."))
	var req []byte
	var start time.Time
	if own {
		req, start = bytes.Clone(c.buf), c.start
		c.buf = c.buf[:0]
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if own && c.p.cfg.Publish != nil {
		c.p.cfg.Publish(refusedExchange(c.p.cfg.Session, c.listener, c.RemoteAddr().String(), req, b, start))
	}
	return n, err
}

// refusedExchange builds the record of a request net/http refused, from the
// bytes it read (req) and the response it wrote (resp).
func refusedExchange(session, listener, remote string, req, resp []byte, start time.Time) mcptap.Exchange {
	now := time.Now()
	if start.IsZero() {
		start = now
	}
	ex := mcptap.Exchange{ID: mcptap.NewID(start), Session: session, Listener: listener, Mode: mcptap.ModeReverse,
		Start: start, ResponseAt: now, End: now, RemoteAddr: remote, Scheme: "http", ReqSize: -1, Complete: true,
		ReqHeader: http.Header{}, RespHeader: http.Header{}}
	line, rest, _ := bytes.Cut(req, []byte("\r\n"))
	if f := strings.Fields(string(line)); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		ex.Method, ex.Target, ex.Proto = f[0], f[1], f[2]
	} else {
		ex.Target = strings.ToValidUTF8(string(line), "\uFFFD")
	}
	for _, h := range bytes.Split(rest, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(k), "Host") {
			ex.Host = strings.TrimSpace(string(v))
		}
	}
	if r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(resp)), nil); err == nil {
		ex.Status, ex.RespProto, ex.RespHeader = r.StatusCode, r.Proto, r.Header
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		ex.RespBody, ex.RespSize = body.Bytes(), int64(body.Len())
	} else if f := strings.Fields(string(resp)); len(f) > 1 {
		ex.Status, _ = strconv.Atoi(f[1])
	}
	ex.Err = "refused by mcptap's HTTP server before it was proxied (" + http.StatusText(ex.Status) + "): the upstream never saw it"
	return ex
}
