package proxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/mcptap/mcptap"
)

// DefaultForwardListen is where the browser proxy listens unless told otherwise.
const DefaultForwardListen = "127.0.0.1:8781"

// ForwardConfig configures the forward (browser) proxy.
type ForwardConfig struct {
	// Listen is the address StartForward binds: loopback only; an empty host
	// means 127.0.0.1 and "" means DefaultForwardListen. NewForward ignores it.
	Listen string
	// CA signs the per-host certificates shown to the browser. Required.
	CA *CA
	// Transport records every exchange. Pass the reverse proxy's
	// (Proxy.Transport) to record both modes into one session with one
	// sequence. When nil, a Transport is made from Session, BodyCap and Publish.
	Transport *Transport
	Session   string                // used only when Transport is nil
	BodyCap   int                   // used only when Transport is nil
	Publish   func(mcptap.Exchange) // used only when Transport is nil
	Log       *slog.Logger          // nil discards; goproxy's own log lines go here, never to stderr
	// Secret, when set, is the per-run password every client must present
	// (Proxy-Authorization: Basic, user ProxyUser); others get 407. Any local
	// process and user can reach a loopback port: the secret is what keeps
	// them from recording through, or browsing as, the user's session.
	Secret string
}

// ProxyUser is the user name of the browser proxy's credentials.
const ProxyUser = "mcptap"

// ProxyAuthorization is the Proxy-Authorization value for secret.
func ProxyAuthorization(secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(ProxyUser+":"+secret))
}

// NewForward returns an HTTP forward proxy handler for a browser: plain-HTTP
// proxy requests are forwarded, CONNECT tunnels are intercepted (MITM) with
// certificates signed by cfg.CA, and every request is sent through the
// recording Transport with Mode mcptap.ModeForward.
//
// It serves loopback clients only and answers anyone else 403, so it is never
// an open proxy even when bound to another address. Requests that are not
// proxy requests (GET /ca.pem) are answered by the proxy itself: /ca.pem is
// the CA certificate, / a short explanation.
//
// Bytes are forwarded unchanged: Accept-Encoding is kept (recorded bodies are
// then what the server sent, possibly compressed), upstream certificates are
// verified, and no proxy from the environment is used for the upstream leg.
func NewForward(cfg ForwardConfig) (http.Handler, error) {
	f, err := newForward(cfg)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// forward is the handler behind NewForward.
type forward struct {
	gp        *goproxy.ProxyHttpServer
	transport *Transport
	caPEM     []byte
	log       *slog.Logger
	auth      []byte // the Proxy-Authorization clients must send; nil: none

	// inflight counts requests between the start of their upstream round
	// trip and the end of their response body, so Shutdown can wait for
	// them even inside hijacked (MITM) connections.
	mu       sync.Mutex
	inflight int
	idle     chan struct{} // closed when inflight drops to 0; nil while idle

	stopCtx context.Context // cancelled by Shutdown once the grace period is over
	stop    context.CancelFunc
}

// connectInfo is what a CONNECT tells about the requests tunnelled inside
// it. goproxy copies ProxyCtx.UserData from the CONNECT to each of them.
type connectInfo struct {
	listener string
}

func newForward(cfg ForwardConfig) (*forward, error) {
	if cfg.CA == nil || cfg.CA.TLS.PrivateKey == nil || len(cfg.CA.TLS.Certificate) == 0 {
		return nil, errors.New("forward proxy: a CA is required (see LoadOrCreateCA)")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &Transport{Base: DefaultUpstreamTransport(0), BodyCap: cfg.BodyCap, Publish: cfg.Publish, Session: cfg.Session}
	}
	f := &forward{transport: tr, caPEM: cfg.CA.CertPEM, log: log}
	if cfg.Secret != "" {
		f.auth = []byte(ProxyAuthorization(cfg.Secret))
	}
	f.stopCtx, f.stop = context.WithCancel(context.Background())

	ca := cfg.CA.TLS // a copy: goproxy keeps a pointer to it
	if ca.Leaf == nil {
		ca.Leaf = cfg.CA.Cert
	}
	mitm := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(&ca)}

	gp := goproxy.NewProxyHttpServer()
	// goproxy's Warnf always logs, and its default Logger is stderr, which
	// would tear through a running TUI.
	gp.Logger = goproxyLogger{log}
	gp.Verbose = false
	gp.CertStore = newCertCache()
	gp.KeepAcceptEncoding = true
	gp.AllowHTTP2 = false // browsers fall back to HTTP/1.1 inside the tunnel; the streaming path measured is h1
	// Never the environment's proxy: HTTPS_PROXY may point at mcptap itself.
	// Upstream requests all go through ctx.RoundTripper (the recorder); Tr is
	// left only for goproxy's own dials (WebSocket), without env proxies.
	base := DefaultUpstreamTransport(0)
	gp.Tr = base
	gp.ConnectDial = nil
	gp.ConnectDialWithReq = nil
	gp.NonproxyHandler = http.HandlerFunc(f.serveLocal)

	rt := goproxy.RoundTripperFunc(f.roundTrip)
	gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		ctx.UserData = &connectInfo{listener: localAddr(ctx.Req)}
		ctx.RoundTripper = rt // inherited by every request inside the tunnel
		return mitm, host
	})
	gp.OnRequest().DoFunc(func(req *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		ctx.RoundTripper = rt
		info := &ClientInfo{
			Mode:       mcptap.ModeForward,
			Scheme:     req.URL.Scheme,
			Host:       req.Host,
			Target:     originForm(req.RequestURI), // goproxy clears it later (RemoveProxyHeaders); keep the raw bytes now
			Proto:      req.Proto,
			RemoteAddr: req.RemoteAddr,
			Upstream:   req.URL.Scheme + "://" + req.URL.Host,
		}
		if ci, ok := ctx.UserData.(*connectInfo); ok {
			info.Listener = ci.listener
		} else {
			info.Listener = localAddr(req)
		}
		if info.Host == "" {
			info.Host = req.URL.Host
		}
		if info.Target == "" {
			info.Target = req.URL.RequestURI()
		}
		return req.WithContext(WithClientInfo(req.Context(), info)), nil
	})
	gp.OnResponse().DoFunc(func(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
		// Plain-HTTP forward mode flushes only text/event-stream or a
		// response whose header map says chunked, and Go's client never
		// leaves Transfer-Encoding in the map: any other unknown-length body
		// (ndjson, a slow page) would be buffered to its end. Saying
		// chunked makes goproxy flush every write. The MITM path streams
		// on its own. The body is never swapped here: goproxy would reframe it.
		if resp == nil || ctx.UserData != nil || ctx.Req == nil || ctx.Req.ProtoMajor != 1 || !ctx.Req.ProtoAtLeast(1, 1) {
			return resp
		}
		if resp.ContentLength < 0 && bodyAllowed(ctx.Req.Method, resp.StatusCode) {
			resp.Header.Set("Transfer-Encoding", "chunked")
		}
		return resp
	})
	f.gp = gp
	return f, nil
}

// originForm turns an absolute-form request target ("http://host/p?q", what
// a browser sends a proxy for plain HTTP) into its origin form ("/p?q"),
// keeping the path and query bytes exactly. Scheme and host are recorded
// separately, so every exchange reads the same whichever way it arrived
// (plain proxy request, MITM tunnel, reverse proxy, HAR import).
func originForm(target string) string {
	if target == "" || target[0] == '/' || target == "*" {
		return target
	}
	i := strings.Index(target, "://")
	if i < 0 {
		return target // authority-form or something odd: keep it as it came
	}
	rest := target[i+3:]
	j := strings.IndexAny(rest, "/?")
	if j < 0 {
		return "/"
	}
	if rest[j] == '?' {
		return "/" + rest[j:]
	}
	return rest[j:]
}

// bodyAllowed reports whether a response to method with status carries a body.
func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status >= 200 && status != http.StatusNoContent &&
		status != http.StatusNotModified && status != http.StatusSwitchingProtocols
}

func (f *forward) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackClient(r.RemoteAddr) {
		// Never an open proxy: whatever address it is bound to, only this
		// machine may use it.
		http.Error(w, "mcptap browser proxy: only clients on this machine (loopback) may use it", http.StatusForbidden)
		f.log.Warn("browser proxy refused a non-loopback client", "remote", r.RemoteAddr, "method", r.Method, "host", hostOnly(r))
		return
	}
	if f.auth != nil {
		got := r.Header.Get("Proxy-Authorization")
		if subtle.ConstantTimeCompare([]byte(got), f.auth) != 1 {
			w.Header().Set("Proxy-Authenticate", `Basic realm="mcptap browser proxy"`)
			http.Error(w, "mcptap browser proxy: this proxy needs the credentials of its run; start the browser with `mcptap browser`", http.StatusProxyAuthRequired)
			f.log.Warn("browser proxy refused a client without its credentials", "remote", r.RemoteAddr, "method", r.Method, "host", hostOnly(r))
			return
		}
		r.Header.Del("Proxy-Authorization") // for this hop only: never forwarded, never recorded
	}
	f.gp.ServeHTTP(w, r)
}

// hostOnly names where a refused request was going without its path and
// query, which may carry codes or tokens.
func hostOnly(r *http.Request) string {
	if r.Method == http.MethodConnect || r.URL.Host == "" {
		return r.Host
	}
	return r.URL.Host
}

// roundTrip sends one request through the recording Transport. An upstream
// failure becomes a 502 that says what failed: inside a MITM tunnel goproxy
// would otherwise just drop the connection, and the browser would show an
// empty response instead of the reason (an untrusted certificate, say).
func (f *forward) roundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	f.begin()
	// Inside a MITM tunnel the request's context never ends on its own
	// (goproxy parsed it off a hijacked connection), so Shutdown could not
	// stop an open stream. Tie every upstream request to the proxy's life.
	ctx, cancel := context.WithCancel(req.Context())
	unhook := context.AfterFunc(f.stopCtx, cancel)
	req = req.WithContext(ctx)
	resp, err := f.transport.RoundTrip(req)
	if err != nil {
		gone := ctx.Err() != nil
		unhook()
		cancel()
		f.end()
		if gone {
			return nil, err // the client went away or mcptap is stopping; nobody to tell
		}
		msg := "mcptap: upstream " + req.URL.Scheme + "://" + req.URL.Host + " failed: " + shortReason(err) + "\n"
		return &http.Response{
			Status:        "502 Bad Gateway",
			StatusCode:    http.StatusBadGateway,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "X-Content-Type-Options": {"nosniff"}},
			Body:          io.NopCloser(strings.NewReader(msg)),
			ContentLength: int64(len(msg)),
			Request:       req,
		}, nil
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection, which goproxy type-asserts;
		// cancelling the request now could tear it down. Shutdown closes the
		// client side instead.
		unhook()
		f.end()
		return resp, nil
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		unhook()
		cancel()
		f.end()
		return resp, nil
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: func() { unhook(); cancel(); f.end() }}
	return resp, nil
}

func (f *forward) begin() {
	f.mu.Lock()
	f.inflight++
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *forward) end() {
	f.mu.Lock()
	f.inflight--
	if f.inflight == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// wait returns when no request is in flight or ctx is done.
func (f *forward) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doneBody calls done once, when the body is closed (goproxy always closes it).
type doneBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// serveLocal answers requests addressed to the proxy itself.
func (f *forward) serveLocal(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ca.pem":
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="mcptap-ca.pem"`)
		w.Header().Set("Cache-Control", "no-store")
		http.ServeContent(w, r, "mcptap-ca.pem", time.Time{}, bytes.NewReader(f.caPEM))
	case "/":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "This is mcptap's browser proxy. Point a browser's HTTP and HTTPS proxy here\n"+
			"(or run `mcptap browser`). The CA certificate it signs with: /ca.pem\n")
	default:
		http.Error(w, "mcptap browser proxy: not a proxy request (use this address as the browser's proxy); the CA is at /ca.pem", http.StatusNotFound)
	}
}

// loopbackClient reports whether a RemoteAddr ("ip:port") is on this machine.
func loopbackClient(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // zone of a link-local address; never loopback anyway
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func localAddr(r *http.Request) string {
	if r == nil {
		return ""
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

// goproxyLogger sends goproxy's printf lines to slog. A client TLS handshake
// that failed (a browser that does not trust mcptap's CA) is a warning worth
// showing; goproxy's other warnings are mostly clients going away mid-copy
// and go to Debug with everything else.
type goproxyLogger struct{ log *slog.Logger }

func (l goproxyLogger) Printf(format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if strings.Contains(msg, "WARN:") && strings.Contains(msg, "handshake") {
		l.log.Warn("browser proxy: TLS handshake with the browser failed; does it trust mcptap's CA? (see `mcptap ca`, or use `mcptap browser`)", "detail", msg)
		return
	}
	l.log.Debug("browser proxy: " + msg)
}

// certCache is goproxy's CertStorage: one leaf per host name, signed once.
// Concurrent first requests for a host share one signing.
type certCache struct {
	mu sync.Mutex
	m  map[string]*certEntry
}

type certEntry struct {
	once sync.Once
	cert *tls.Certificate
	err  error
}

// maxCachedCerts bounds the cache; a browsing session touches far fewer hosts.
const maxCachedCerts = 4096

func newCertCache() *certCache { return &certCache{m: make(map[string]*certEntry)} }

func (c *certCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	e := c.m[host]
	if e == nil {
		if len(c.m) >= maxCachedCerts {
			clear(c.m)
		}
		e = &certEntry{}
		c.m[host] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.cert, e.err = gen() })
	if e.err != nil {
		c.mu.Lock()
		if c.m[host] == e {
			delete(c.m, host) // try again next time
		}
		c.mu.Unlock()
	}
	return e.cert, e.err
}

// Forward is a running browser proxy.
type Forward struct {
	f       *forward
	srv     *http.Server
	ln      net.Listener
	conns   *connSet
	done    chan struct{} // closed when Serve's goroutine returns
	serving atomic.Bool
}

// StartForward binds cfg.Listen (loopback only) and serves the browser proxy
// in the background. See ListenForward and Serve.
func StartForward(cfg ForwardConfig) (*Forward, error) {
	fw, err := ListenForward(cfg)
	if err != nil {
		return nil, err
	}
	fw.Serve()
	return fw, nil
}

// ListenForward validates cfg and binds cfg.Listen without serving yet, so a
// caller can fail early (port in use) before creating anything else. Only
// loopback addresses are accepted: the browser proxy serves this machine only.
func ListenForward(cfg ForwardConfig) (*Forward, error) {
	f, err := newForward(cfg)
	if err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = DefaultForwardListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("browser proxy: listen address %q: %w", listen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if !IsLoopback(host) {
		return nil, fmt.Errorf("browser proxy: listen address %q is not loopback; the browser proxy only serves this machine", listen)
	}
	addr := net.JoinHostPort(host, port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("browser proxy: listen %s: %w", addr, err)
	}
	errLog := slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)
	return &Forward{
		f:     f,
		ln:    ln,
		conns: &connSet{m: make(map[*trackedConn]struct{})},
		done:  make(chan struct{}),
		srv: &http.Server{
			Handler:           f,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          errLog,
		},
	}, nil
}

// Serve starts serving in the background. Call it once.
func (fw *Forward) Serve() {
	fw.serving.Store(true)
	go func() {
		defer close(fw.done)
		_ = fw.srv.Serve(&trackingListener{Listener: fw.ln, set: fw.conns})
	}()
}

// Addr is the address the browser proxy listens on.
func (fw *Forward) Addr() string { return fw.ln.Addr().String() }

// Shutdown stops accepting, lets requests in flight finish until ctx is
// done, then closes every connection, including the MITM tunnels the HTTP
// server no longer tracks (browsers keep them open), and waits up to two
// more seconds for the cut exchanges to be recorded.
func (fw *Forward) Shutdown(ctx context.Context) error {
	var errs []error
	if err := fw.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("browser proxy: shutdown: %w", err))
	}
	if err := fw.f.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("browser proxy: requests cut at shutdown: %w", err))
	}
	fw.f.stop()
	_ = fw.srv.Close()
	fw.conns.closeAll()
	_ = fw.ln.Close() // in case Serve was never called
	if fw.serving.Load() {
		<-fw.done
	}
	wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := fw.f.wait(wctx); err != nil {
		errs = append(errs, errors.New("browser proxy: requests still running 2s after close"))
	}
	if b, ok := fw.f.transport.Base.(interface{ CloseIdleConnections() }); ok {
		b.CloseIdleConnections()
	}
	fw.f.gp.Tr.CloseIdleConnections()
	return errors.Join(errs...)
}

// trackingListener remembers every accepted connection so Shutdown can close
// the ones http.Server forgot when goproxy hijacked them.
type trackingListener struct {
	net.Listener
	set *connSet
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	if !l.set.add(tc) {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

type connSet struct {
	mu     sync.Mutex
	m      map[*trackedConn]struct{}
	closed bool
}

func (s *connSet) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}
