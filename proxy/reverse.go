package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/wire"
	"golang.org/x/net/netutil"
)

// Route is one reverse listener and the upstream it forwards to.
type Route struct {
	Listen   string   // "host:port"; an empty host means 127.0.0.1, port 0 picks a free one
	Upstream *url.URL // http or https base URL; a path prefix is prepended to every target
}

// Config configures a reverse proxy with one listener per route, all
// recording into the same session.
type Config struct {
	Routes  []Route
	Session string // session ID written into each exchange
	BodyCap int    // bytes recorded per body; 0 means DefaultBodyCap, negative records none
	// HostHeader is "client" (default: the upstream receives the Host the
	// tunnel sent) or "upstream" (the upstream's own host, for servers that
	// check it, such as go-sdk's DNS-rebinding protection).
	HostHeader string
	// ResponseHeaderTimeout bounds the wait for the upstream's response head.
	// Zero means no limit. Bodies and streams are never time-limited.
	ResponseHeaderTimeout time.Duration
	Publish               func(mcptap.Exchange) // must not block; nil records nothing
	Log                   *slog.Logger          // nil discards
	// AllowRemote permits listeners on non-loopback addresses. Without it
	// Start refuses them, so mcptap is never an open proxy by accident.
	AllowRemote bool
	// MaxConns bounds the client connections each listener serves at once;
	// beyond it new ones wait to be accepted. 0 means DefaultMaxConns,
	// negative no limit.
	MaxConns int
	// BodyIdleTimeout cuts a request whose body stops arriving for this long
	// (a client that sends its headers and then trickles or stalls). 0 means
	// DefaultBodyIdleTimeout, negative none. Responses and streams are
	// never time-limited.
	BodyIdleTimeout time.Duration
}

// Defaults of Config.MaxConns and Config.BodyIdleTimeout.
const (
	DefaultMaxConns        = 1024
	DefaultBodyIdleTimeout = time.Minute
)

// Proxy is a running reverse proxy.
type Proxy struct {
	cfg       Config
	transport *Transport
	base      *http.Transport
	servers   []*http.Server
	listeners []net.Listener
	addrs     []string
	own       ownConns      // connections dialed for reverse requests: a request from one is a loop
	stopping  chan struct{} // closed when Shutdown cuts what is still running
	stopOnce  sync.Once
	inflight  sync.WaitGroup
	// active counts the requests being handled: what Shutdown lets finish.
	// A connection that carries none (a client's spare connection that
	// has sent nothing yet) holds no exchange and does not hold the stop.
	active  atomic.Int64
	serving sync.WaitGroup
}

// DefaultUpstreamTransport is the http.Transport mcptap uses toward upstreams:
// no proxy from the environment (it could point at mcptap itself), no added
// Accept-Encoding (the wire stays what the client sent), HTTP/1.1 (what came
// in goes out), generous idle pools, and no overall timeout so streams live as
// long as they need.
func DefaultUpstreamTransport(responseHeaderTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no overall limit
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		DisableCompression:    true,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// Start binds every route's listener and serves. See Listen and Serve.
func Start(cfg Config) (*Proxy, error) {
	p, err := Listen(cfg)
	if err != nil {
		return nil, err
	}
	p.Serve()
	return p, nil
}

// Listen validates cfg and binds every route's listener without serving yet,
// so a caller can fail early (port in use) before creating anything else.
func Listen(cfg Config) (*Proxy, error) {
	if len(cfg.Routes) == 0 {
		return nil, errors.New("proxy: no routes")
	}
	switch cfg.HostHeader {
	case "", "client", "upstream":
	default:
		return nil, fmt.Errorf("proxy: host header mode %q: want client or upstream", cfg.HostHeader)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{cfg: cfg, base: DefaultUpstreamTransport(cfg.ResponseHeaderTimeout), stopping: make(chan struct{})}
	p.base.DialContext = p.own.dial(p.base.DialContext)
	// ReverseProxy gives each outgoing request a Header of its own.
	p.transport = &Transport{Base: p.base, BodyCap: cfg.BodyCap, Publish: cfg.Publish, Session: cfg.Session, ShareRequestHeader: true}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	for i, rt := range cfg.Routes {
		if rt.Upstream == nil || (rt.Upstream.Scheme != "http" && rt.Upstream.Scheme != "https") || rt.Upstream.Host == "" {
			p.closeListeners()
			return nil, fmt.Errorf("proxy: route %d: upstream must be an http or https URL with a host", i+1)
		}
		addr, err := listenAddr(rt.Listen, cfg.AllowRemote)
		if err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("proxy: route %d: %w", i+1, err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			p.closeListeners()
			return nil, fmt.Errorf("proxy: listen %s: %w", addr, err)
		}
		p.addrs = append(p.addrs, ln.Addr().String())
		switch {
		case cfg.MaxConns == 0:
			ln = netutil.LimitListener(ln, DefaultMaxConns)
		case cfg.MaxConns > 0:
			ln = netutil.LimitListener(ln, cfg.MaxConns)
		}
		ln = &sniffListener{Listener: ln, p: p, listener: p.addrs[len(p.addrs)-1]}
		p.listeners = append(p.listeners, ln)
		h := newRouteHandler(p, rt.Upstream, cfg.HostHeader == "upstream", errLog)
		h.listener = ln.Addr().String()
		p.servers = append(p.servers, &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
			ConnContext:       withSniffConn,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          errLog,
		})
	}
	return p, nil
}

// listenAddr fills in the loopback default and refuses a non-loopback host
// unless allowed.
func listenAddr(listen string, allowRemote bool) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if !allowRemote && !IsLoopback(host) {
		return "", fmt.Errorf("listen address %q is not loopback; anyone who can reach it could use the proxy (allow it explicitly to bind it)", listen)
	}
	return net.JoinHostPort(host, port), nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve starts serving every bound listener in the background. Call it once.
func (p *Proxy) Serve() {
	for i, srv := range p.servers {
		p.serving.Add(1)
		go func(srv *http.Server, ln net.Listener) {
			defer p.serving.Done()
			_ = srv.Serve(ln) // returns ErrServerClosed on Shutdown; accept errors are fatal to this listener only
		}(srv, p.listeners[i])
	}
}

// Addrs returns the actual listen addresses, in the order of Config.Routes.
func (p *Proxy) Addrs() []string { return append([]string(nil), p.addrs...) }

// Transport returns the recording transport this proxy uses, so another mode
// (the browser proxy) can share its session sequence.
func (p *Proxy) Transport() *Transport { return p.transport }

// Shutdown stops accepting, lets in-flight exchanges finish until ctx is done,
// then closes what is left (open streams) and waits for their handlers to
// record their end, at most two more seconds. Every Publish the proxy will
// ever make has happened when Shutdown returns nil.
func (p *Proxy) Shutdown(ctx context.Context) error {
	var errs []error
	var wg sync.WaitGroup
	graceErr := make([]error, len(p.servers))
	for i, srv := range p.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			graceErr[i] = srv.Shutdown(ctx)
		}()
	}
	graced := make(chan struct{})
	go func() { wg.Wait(); close(graced) }()
	// net/http's Shutdown also waits for connections that have sent nothing
	// yet (for up to 5s): once no request is being handled, nothing is in
	// flight, and the rest are closed.
	tick := time.NewTicker(20 * time.Millisecond)
wait:
	for {
		select {
		case <-graced:
			break wait
		case <-tick.C:
			if p.active.Load() == 0 {
				for _, srv := range p.servers {
					_ = srv.Close()
				}
				<-graced
				break wait
			}
		}
	}
	tick.Stop()
	// Cut is what was being handled when the drain ran out; a Shutdown
	// that ran out on spare connections alone cut nothing.
	forced := false
	for _, err := range graceErr {
		if err != nil && p.active.Load() > 0 {
			forced = true
		}
	}
	if forced {
		p.stopOnce.Do(func() { close(p.stopping) })
		errs = append(errs, fmt.Errorf("proxy: in-flight exchanges cut at shutdown: %w", ctx.Err()))
	}
	// Cut what is left: the requests the drain ran out on, or connections
	// that carry no exchange (a client's spare connection).
	for _, srv := range p.servers {
		_ = srv.Close()
	}
	p.closeListeners()
	p.serving.Wait()
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		errs = append(errs, errors.New("proxy: handlers still running 2s after close"))
	}
	p.base.CloseIdleConnections()
	return errors.Join(errs...)
}

func (p *Proxy) closeListeners() {
	for _, ln := range p.listeners {
		_ = ln.Close()
	}
}

// routeHandler serves one route: it attaches the client's view of the request
// and hands it to a ReverseProxy that rewrites only scheme and authority.
type routeHandler struct {
	p        *Proxy
	listener string // this route's listen address, as recorded
	rp       *httputil.ReverseProxy
	upstream string // base URL as recorded
	prefix   string // upstream path prefix without trailing slash, "" for none
}

var bufPool = wire.CopyBuffers()

func newRouteHandler(p *Proxy, up *url.URL, hostUpstream bool, errLog *log.Logger) *routeHandler {
	h := &routeHandler{p: p, upstream: up.Scheme + "://" + up.Host}
	if prefix := strings.TrimSuffix(up.EscapedPath(), "/"); prefix != "" {
		h.prefix = prefix
		h.upstream += prefix
	}
	scheme, host := up.Scheme, up.Host
	h.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme = scheme
			out.URL.Host = host
			setRawTarget(out.URL, pr.In, h.prefix)
			if hostUpstream {
				out.Host = "" // the transport then sends the upstream's host
			}
			// Rewrite strips the forwarding headers and would derive new ones
			// from our own connection; the tunnel's are the truth. Put them
			// back as they came, appending nothing.
			for _, k := range forwardingHeaders {
				if v, ok := pr.In.Header[k]; ok {
					out.Header[k] = v
				}
			}
		},
		Transport: p.transport,
		// Zero, not -1: the route handler's flushWriter already flushes after
		// every body write, and ReverseProxy itself flushes SSE and
		// unknown-length bodies immediately. With -1 ReverseProxy would also
		// start a timer goroutine per response and flush the head in a write
		// of its own, which costs a tenth of the proxy's CPU for small JSON.
		FlushInterval: 0,
		BufferPool:    bufPool,
		ErrorLog:      errLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				select {
				case <-p.stopping:
					return // mcptap is stopping and closes the connection
				default:
				}
				// the client's side ended and the upstream did not answer in
				// time: say so (a client that is gone never reads it)
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusGatewayTimeout)
				_, _ = io.WriteString(w, "mcptap: the client closed its side of the connection and the upstream "+h.upstream+" did not answer in time\n")
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if errors.Is(err, errBodyIdle) {
				// the client's fault, and its connection is done for
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusRequestTimeout)
				_, _ = io.WriteString(w, "mcptap: "+err.Error()+"\n")
				return
			}
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "mcptap: upstream "+h.upstream+" failed: "+shortReason(err)+"\n")
		},
	}
	return h
}

// forwardingHeaders are the proxy-chain headers a tunnel sets; passed through untouched.
var forwardingHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// setRawTarget makes u's request target the client's raw target: the path
// bytes and query bytes exactly as received, behind the upstream's prefix.
// url.URL.RequestURI returns Opaque verbatim, so the path goes there. A path
// starting with "//" would then read as an authority, so it goes into
// Path/RawPath instead, which keeps it byte for byte unless it holds
// characters outside RFC 3986 (such as "{" or "|"); those alone get escaped.
func setRawTarget(u *url.URL, in *http.Request, prefix string) {
	target := in.RequestURI
	if target == "" || (target[0] != '/' && target != "*") {
		// Absolute-form (or a request built in-process): no raw bytes beyond the URL's own.
		target = in.URL.EscapedPath()
		if in.URL.ForceQuery || in.URL.RawQuery != "" {
			target += "?" + in.URL.RawQuery
		}
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "*" {
		prefix = ""
	}
	path = prefix + path
	u.RawQuery = query
	u.ForceQuery = hasQuery && query == ""
	u.Fragment, u.RawFragment = "", ""
	if strings.HasPrefix(path, "//") {
		u.Opaque = ""
		u.RawPath = path
		if p, err := url.PathUnescape(path); err == nil {
			u.Path = p
		} else {
			u.Path = path
		}
		return
	}
	u.Opaque = path
	u.Path, u.RawPath = "", ""
}

// shortReason is the upstream error as one short line for the 502 body.
func shortReason(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.p.inflight.Add(1)
	defer h.p.inflight.Done()
	h.p.active.Add(1)
	defer h.p.active.Add(-1)
	defer handling(r)()
	if h.p.own.from(r) {
		refuseLoop(w, h.listener, h.upstream)
		return
	}
	if d := h.p.bodyIdle(); d > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: d}
	}
	// Without full duplex, the HTTP/1 server discards and closes the unread rest of the request
	// body when the response head is written. The outbound transport reads the
	// inbound body until EOF even after the upstream has answered (it checks
	// for bytes beyond Content-Length), so an upstream that answers before that
	// last read, as an SSE tools/call does, had its stream cut about once in a
	// hundred; and a client that streams its body while reading the response
	// deadlocked. Full duplex passes both through as the upstream sees them.
	if r.ProtoMajor == 1 {
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	// The server adds Date and sniffs a Content-Type when the handler sets
	// none; a nil entry suppresses both, and ReverseProxy's copy appends the
	// upstream's own values to it, so the client sees only what the upstream sent.
	hdr := w.Header()
	hdr["Date"] = nil
	hdr["Content-Type"] = nil
	// One allocation for everything per request the handler adds.
	in := &inbound{fw: flushWriter{ResponseWriter: w}}
	fillInbound(&in.info, r, mcptap.ModeReverse, h.upstream)
	in.info.Listener = h.listener
	if f, ok := w.(errFlusher); ok {
		in.fw.flusher = f
	}
	// The upstream request does not end when the client's side does: a
	// client that half-closes after a complete request (shutdown(SHUT_WR))
	// still reads the answer, and net/http cancels the request's context
	// on that EOF just as on a closed connection. clientEnded decides.
	ctx, cancel := context.WithCancel(context.WithoutCancel(WithClientInfo(r.Context(), &in.info)))
	defer cancel()
	defer context.AfterFunc(r.Context(), func() { h.clientEnded(ctx, &in.fw, cancel) })()
	h.rp.ServeHTTP(&in.fw, r.WithContext(ctx))
}

// clientEnded runs when net/http saw the client's side end. Once the
// response is under way, the client is taken as gone and the upstream
// request ends (a stream stops). Before that it may only have half-closed:
// the upstream gets until its response head is due (ResponseHeaderTimeout,
// or halfCloseWait) to answer, and writing the answer tells a closed client
// from a half-closed one. A stopping proxy ends it at once.
func (h *routeHandler) clientEnded(ctx context.Context, fw *flushWriter, cancel context.CancelFunc) {
	if fw.wrote.Load() {
		cancel()
		return
	}
	wait := h.p.cfg.ResponseHeaderTimeout
	if wait <= 0 {
		wait = halfCloseWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		cancel()
	case <-h.p.stopping:
		cancel()
	case <-ctx.Done(): // answered, or the handler ended
	}
}

// halfCloseWait bounds the wait for the answer to a half-closed client when
// no ResponseHeaderTimeout is set.
const halfCloseWait = 2 * time.Minute

// inbound is the per-request state of the route handler.
type inbound struct {
	info ClientInfo
	fw   flushWriter
}

// flushWriter passes every body write to the client at once, so no body,
// whatever its framing or content type, is held back in the server's buffer.
// The response head goes out with the first body bytes (or at the end, for a
// response without a body) rather than in a write of its own.
// http.ResponseController reaches the server's Hijack through Unwrap, so
// upgrades still work.
type flushWriter struct {
	http.ResponseWriter
	flusher errFlusher  // nil if the server's writer cannot flush
	wrote   atomic.Bool // the response head went out
}

func (w *flushWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote.Store(true)
	}
	w.ResponseWriter.WriteHeader(code)
}

// errFlusher is what net/http's server ResponseWriter implements (an
// interface, not a method value, so keeping it allocates nothing).
type errFlusher interface{ FlushError() error }

func (w *flushWriter) Write(p []byte) (int, error) {
	w.wrote.Store(true)
	n, err := w.ResponseWriter.Write(p)
	if err == nil && w.flusher != nil {
		err = w.flusher.FlushError()
	}
	return n, err
}

// FlushError lets http.ResponseController flush through the wrapper.
func (w *flushWriter) FlushError() error {
	if w.flusher == nil {
		return http.ErrNotSupported
	}
	return w.flusher.FlushError()
}

// Unwrap gives http.ResponseController the server's own writer (Hijack for upgrades).
func (w *flushWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *Proxy) bodyIdle() time.Duration {
	switch d := p.cfg.BodyIdleTimeout; {
	case d == 0:
		return DefaultBodyIdleTimeout
	case d < 0:
		return 0
	default:
		return d
	}
}

// idleBody is a request body whose every read must make progress within idle:
// each read pushes the connection's read deadline, and the end of the body
// clears it, so the server's own reads (for the next request, or to see the
// client go) are not limited. A body that stalled leaves the deadline passed,
// so the server closes the connection after answering.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.done {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if err == io.EOF {
			_ = b.rc.SetReadDeadline(time.Time{})
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			err = fmt.Errorf("%w: no request body bytes from the client for %v", errBodyIdle, b.idle)
		}
	}
	return n, err
}

// errBodyIdle is the error of a request whose body stopped arriving.
var errBodyIdle = errors.New("client stalled")
