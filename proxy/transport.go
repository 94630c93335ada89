package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/wire"
)

// headlessBody is the largest body of known length whose exchange is not
// published at its response head but only once, complete: such a body
// follows its head at once, and a second publication would cost the
// recorder and the live views as much again as the first.
const headlessBody = 64 << 10

// DefaultBodyCap is how many bytes of each body are recorded when no cap is set.
const DefaultBodyCap = 1 << 20

// ClientInfo is what the proxy knows about a request as its client sent it,
// before the request was rewritten for the upstream. The handler that accepted
// the request (reverse or forward) attaches it with WithClientInfo; Transport
// reads it when recording. Fields left empty are derived from the outgoing
// request where possible.
type ClientInfo struct {
	Listener   string      // local address of the listener, e.g. "127.0.0.1:8780"
	Mode       mcptap.Mode // reverse or forward
	Upstream   string      // base URL the request is forwarded to
	Scheme     string      // scheme the client used ("https" when a tunnel says X-Forwarded-Proto: https)
	Host       string      // Host header as the client sent it
	Target     string      // raw request target exactly as received (RequestURI)
	Proto      string      // client's protocol, e.g. "HTTP/1.1"
	RemoteAddr string      // client's address
}

type clientInfoKey struct{}

// WithClientInfo returns a context that carries info to Transport.RoundTrip.
// The Transport only reads *info; the caller must not change it afterwards.
func WithClientInfo(ctx context.Context, info *ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, info)
}

// ClientInfoFrom returns the ClientInfo attached by WithClientInfo, if any.
func ClientInfoFrom(ctx context.Context) (*ClientInfo, bool) {
	info, ok := ctx.Value(clientInfoKey{}).(*ClientInfo)
	return info, ok && info != nil
}

// InboundInfo builds the ClientInfo of a request received by an http.Server:
// raw target, client Host, remote address, the listener from the connection's
// local address, and the scheme from the first X-Forwarded-Proto value (the
// tunnel terminates TLS), else from r.TLS.
func InboundInfo(r *http.Request, mode mcptap.Mode, upstream string) *ClientInfo {
	info := &ClientInfo{}
	fillInbound(info, r, mode, upstream)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		info.Listener = a.String()
	}
	return info
}

// fillInbound is InboundInfo without the listener, into caller-owned memory.
func fillInbound(info *ClientInfo, r *http.Request, mode mcptap.Mode, upstream string) {
	*info = ClientInfo{
		Mode:       mode,
		Upstream:   upstream,
		Scheme:     "http",
		Host:       r.Host,
		Target:     r.RequestURI,
		Proto:      r.Proto,
		RemoteAddr: r.RemoteAddr,
	}
	if r.TLS != nil {
		info.Scheme = "https"
	}
	if v := r.Header["X-Forwarded-Proto"]; len(v) > 0 && v[0] != "" {
		info.Scheme = firstToken(v[0])
	}
}

// firstToken returns the first comma-separated element of v, trimmed.
func firstToken(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' {
			v = v[:i]
			break
		}
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// Transport is the recording http.RoundTripper shared by every proxy mode. It
// forwards each request to Base unchanged and records it as an mcptap.Exchange:
//
//   - published once when the response head arrives (Complete false) and once
//     more when the response body ends, fails or is closed (Complete true);
//     a response without a body (HEAD, 204, 304), one with a body of known
//     length up to 64 KiB (it follows its head at once) and a transport
//     error are published once, complete;
//   - request and response bodies are teed while they stream, at most BodyCap
//     bytes each, with their true sizes and Truncated flags; nothing is held
//     back, except that a request body of known length up to 64 KiB (and no
//     Expect) is read whole before it is sent on, with its head;
//   - a 101 Switching Protocols response is returned untouched (its body is the
//     upgraded connection) and recorded complete at the handshake.
//
// Publish must not block (mcptap.Broker.Publish does not). Each published
// Exchange owns its header maps and body slices; they are never written again.
//
// A Transport must not be copied after first use.
type Transport struct {
	Base    http.RoundTripper     // the upstream transport; nil means a new DefaultUpstreamTransport
	BodyCap int                   // bytes recorded per body; 0 means DefaultBodyCap, negative records none
	Publish func(mcptap.Exchange) // receives every recorded exchange; nil records nothing
	Session string                // session ID written into each exchange
	// ShareRequestHeader records each request's Header map itself instead of a
	// copy. Set it only when nothing writes to that map once RoundTrip has
	// it, as for the requests httputil.ReverseProxy builds (each has a
	// Header of its own, left alone after the round trip).
	ShareRequestHeader bool

	seq      atomic.Uint64
	baseOnce sync.Once
	base     http.RoundTripper
}

// Seq returns the sequence number of the last exchange started.
func (t *Transport) Seq() uint64 { return t.seq.Load() }

func (t *Transport) bodyCap() int {
	switch {
	case t.BodyCap == 0:
		return DefaultBodyCap
	case t.BodyCap < 0:
		return 0
	}
	return t.BodyCap
}

func (t *Transport) baseRT() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	t.baseOnce.Do(func() { t.base = DefaultUpstreamTransport(0) })
	return t.base
}

// RoundTrip forwards req to Base and records the exchange. It never modifies
// req; the request it hands to Base differs only in a teeing Body.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Publish == nil {
		return t.baseRT().RoundTrip(req)
	}
	start := time.Now()
	rec := &recording{t: t, cap: t.bodyCap(), ctx: req.Context()}
	ex := &rec.ex
	ex.ID = mcptap.NewID(start)
	ex.Session = t.Session
	ex.Seq = t.seq.Add(1)
	ex.Start = start
	ex.Method = req.Method
	if t.ShareRequestHeader {
		ex.ReqHeader = req.Header
	} else {
		ex.ReqHeader = req.Header.Clone()
	}
	ex.ReqSize = -1
	ex.RespSize = 0
	fillClient(ex, req)

	if short, body, ok, err := wire.ReadShortBody(req); ok {
		// Read whole before it is sent on, the body leaves with the request
		// head: one write and one wakeup less per request for mcptap and
		// for the upstream. The record needs no tee.
		ex.ReqSize = req.ContentLength
		ex.ReqBody, ex.ReqTruncated = capBody(body, rec.cap, req.ContentLength)
		if err != nil {
			ex.End = time.Now()
			ex.Err = err.Error()
			ex.Complete = true
			t.Publish(*ex)
			return nil, err
		}
		req = short
	} else if req.Body != nil && req.Body != http.NoBody {
		rec.tee = reqTee{rc: req.Body, cap: rec.cap, declared: req.ContentLength, hold: true}
		rec.reqBody = &rec.tee
		out := *req // shallow copy: a RoundTripper must not modify the caller's request
		out.Body = rec.reqBody
		req = &out
	} else {
		ex.ReqSize = 0
	}

	resp, err := t.baseRT().RoundTrip(req)
	now := time.Now()
	if err != nil {
		if rec.reqBody != nil && req.ContentLength > 0 && req.ContentLength <= int64(rec.cap) && req.Header.Get("Expect") == "" {
			// The upstream never took the body (dial refused, say), but a
			// failed token call is exactly what needs its form recorded. A
			// client that sent a small Content-Length body without Expect has
			// already sent it, so this read does not wait on the client.
			rec.tee.drain()
		}
		if rec.reqBody != nil {
			rec.tee.release()
		}
		rec.snapshotReq()
		ex.End = now
		ex.Err = err.Error()
		ex.Complete = true
		t.Publish(*ex)
		return nil, err
	}
	if rec.reqBody != nil {
		rec.tee.release()
	}
	ex.ResponseAt = now
	ex.Status = resp.StatusCode
	ex.RespProto = resp.Proto
	ex.RespHeader = resp.Header.Clone()

	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		// 101: the body is the upgraded connection (an io.ReadWriteCloser that
		// ReverseProxy and goproxy type-assert); wrapping it would break the upgrade.
		rec.snapshotReq()
		ex.End = now
		ex.Complete = true
		t.Publish(*ex)
		return resp, nil
	}

	rec.snapshotReq()
	if resp.ContentLength < 0 || resp.ContentLength > headlessBody {
		// A stream, or a body long enough to take a while: visible now,
		// while it is still open. A short body of known length is
		// published once, complete, a moment later.
		t.Publish(*ex)
	}
	if rec.cap > 0 {
		initial := rec.cap
		if resp.ContentLength >= 0 && resp.ContentLength < int64(initial) {
			initial = int(resp.ContentLength)
		} else if initial > 4096 {
			initial = 4096
		}
		rec.resp = make([]byte, 0, initial)
	}
	// The response is ours to hand back (only the request is the caller's),
	// so the body is swapped in place: a copy would miss the trailers the
	// base transport stores into the original after the body ends.
	rec.rc = resp.Body
	resp.Body = rec
	return resp, nil
}

// fillClient copies the client's view of the request into ex, from the
// ClientInfo in the context or, missing that, from the request itself.
func fillClient(ex *mcptap.Exchange, req *http.Request) {
	info, ok := ClientInfoFrom(req.Context())
	if ok {
		ex.Listener = info.Listener
		ex.Mode = info.Mode
		ex.Upstream = info.Upstream
		ex.Scheme = info.Scheme
		ex.Host = info.Host
		ex.Target = info.Target
		ex.Proto = info.Proto
		ex.RemoteAddr = info.RemoteAddr
	}
	if ex.Mode == "" {
		ex.Mode = mcptap.ModeReverse
	}
	if req.URL != nil {
		if ex.Upstream == "" {
			ex.Upstream = req.URL.Scheme + "://" + req.URL.Host
		}
		if ex.Target == "" {
			if req.RequestURI != "" {
				ex.Target = req.RequestURI
			} else {
				ex.Target = req.URL.RequestURI()
			}
		}
		if ex.Scheme == "" {
			ex.Scheme = req.URL.Scheme
		}
	}
	if ex.Host == "" {
		ex.Host = req.Host
		if ex.Host == "" && req.URL != nil {
			ex.Host = req.URL.Host
		}
	}
	if ex.Proto == "" {
		ex.Proto = req.Proto
	}
	if ex.RemoteAddr == "" {
		ex.RemoteAddr = req.RemoteAddr
	}
}

// capBody returns the part of a body of true size n that is recorded under
// limit (the body cap), and whether that is less than n. A prefix is copied
// so that the record does not pin the whole body.
func capBody(body []byte, limit int, n int64) ([]byte, bool) {
	if len(body) > limit {
		body = bytes.Clone(body[:limit])
	}
	if len(body) == 0 {
		body = nil
	}
	return body, int64(len(body)) < n
}

// recording is one exchange in flight. It is also the response body handed
// back to the caller, so a response costs one allocation for both.
type recording struct {
	t       *Transport
	cap     int
	ctx     context.Context // the request's: once it is done, a clean end is not trusted
	ex      mcptap.Exchange
	reqBody *reqTee // nil without a request body, else &tee
	tee     reqTee

	mu   sync.Mutex
	rc   io.ReadCloser
	resp []byte
	done bool
}

// errBodyClosed is recorded when the reader of a response stops before its end
// (the client went away, or the proxy is shutting down).
var errBodyClosed = errors.New("response body closed before its end")

// snapshotReq records the request body as far as it has been read.
func (r *recording) snapshotReq() {
	if r.reqBody == nil {
		return
	}
	r.ex.ReqBody, r.ex.ReqSize, r.ex.ReqTruncated = r.reqBody.snapshot()
}

func (r *recording) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return n, err
	}
	if n > 0 {
		r.ex.RespSize += int64(n)
		if room := r.cap - len(r.resp); room > 0 {
			r.resp = append(r.resp, p[:min(n, room)]...)
		}
		if int64(len(r.resp)) < r.ex.RespSize {
			r.ex.RespTruncated = true
		}
	}
	if err != nil {
		if err == io.EOF {
			// A body can still end cleanly after its request was cancelled:
			// cancelling closes a TLS connection with a close_notify alert
			// first, and an upstream that takes that as the end of its
			// request may finish the response before the socket closes.
			// The stream was cut all the same, by the proxy or its client.
			r.finishLocked(context.Cause(r.ctx))
		} else {
			r.finishLocked(err)
		}
	}
	r.mu.Unlock()
	return n, err
}

func (r *recording) Close() error {
	err := r.rc.Close()
	r.mu.Lock()
	if !r.done {
		r.finishLocked(errBodyClosed)
	}
	r.mu.Unlock()
	return err
}

// finishLocked publishes the complete exchange once. r.mu is held.
func (r *recording) finishLocked(err error) {
	r.done = true
	r.ex.End = time.Now()
	if err != nil {
		r.ex.Err = err.Error()
	}
	if len(r.resp) > 0 {
		r.ex.RespBody = r.resp
	}
	r.snapshotReq()
	r.ex.Complete = true
	r.t.Publish(r.ex)
	r.resp = nil
}

// reqTee passes a request body through while copying its first cap bytes
// aside. The upstream transport reads it on its own goroutine, so snapshot
// may run concurrently with Read.
type reqTee struct {
	rc       io.ReadCloser
	cap      int
	declared int64 // Content-Length, -1 unknown

	mu   sync.Mutex
	buf  []byte
	n    int64
	eof  bool
	snap bool // buf has been handed out; copy before appending again
	// While RoundTrip runs (hold), a Close from the base transport is only
	// noted, so that after a failed round trip the rest of the body can
	// still be read for the record; release then closes for real.
	hold, closeReq, closed bool
}

func (b *reqTee) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	if n > 0 {
		b.n += int64(n)
		if room := b.cap - len(b.buf); room > 0 {
			if b.snap {
				b.buf = append([]byte(nil), b.buf...)
				b.snap = false
			}
			b.buf = append(b.buf, p[:min(n, room)]...)
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	b.mu.Unlock()
	return n, err
}

func (b *reqTee) Close() error {
	b.mu.Lock()
	if b.hold {
		b.closeReq = true
		b.mu.Unlock()
		return nil
	}
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if already {
		return nil
	}
	return b.rc.Close()
}

// release ends the hold on Close, closing the body if a Close came meanwhile.
func (b *reqTee) release() {
	b.mu.Lock()
	b.hold = false
	closeNow := b.closeReq && !b.closed
	if closeNow {
		b.closed = true
	}
	b.mu.Unlock()
	if closeNow {
		_ = b.rc.Close()
	}
}

// drain reads what is left of the body into the record, up to the cap.
func (b *reqTee) drain() {
	buf := make([]byte, 4096)
	for {
		b.mu.Lock()
		done := b.eof || len(b.buf) >= b.cap
		b.mu.Unlock()
		if done {
			return
		}
		if _, err := b.Read(buf); err != nil {
			return
		}
	}
}

// snapshot returns the body recorded so far, its size (the true size once the
// body was read to its end, else the declared Content-Length, else -1) and
// whether the recorded bytes are fewer than that size.
func (b *reqTee) snapshot() ([]byte, int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	size := b.n
	if !b.eof {
		size = b.declared
		if size < 0 {
			size = -1
		}
	}
	var body []byte
	if len(b.buf) > 0 {
		body = b.buf[:len(b.buf):len(b.buf)]
		b.snap = true
	}
	truncated := int64(len(b.buf)) < size || (size < 0 && b.n > int64(len(b.buf)))
	return body, size, truncated
}
