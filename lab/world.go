package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcptap/mcptap/internal/freeport"
)

// Listener names inside a World.
const (
	ListenerMCP    = "mcp"    // the MCP server (and the authorization server when combined)
	ListenerAS     = "as"     // a separate authorization server
	ListenerIdP    = "idp"    // the inner identity provider behind an OAuth proxy
	ListenerClient = "client" // the client platform's callback host
)

// VSCodeCallbackListen is where the VS Code-like profile wants its loopback
// callback (VS Code's fixed port; like VS Code, another port is used when it is busy).
const VSCodeCallbackListen = "127.0.0.1:33418"

// Listener is one lab listener and how mcptap should front it.
type Listener struct {
	Name    string
	Addr    string // the lab's own host:port
	Proxied bool   // route it through mcptap (false: the client reaches it directly)
	// Listen is the address mcptap should listen on for it ("" = any free
	// loopback port); the VS Code callback prefers its fixed port.
	Listen string
}

// World is one scenario's complete lab: its servers, listeners and client.
type World struct {
	Scenario Scenario

	key    []byte
	rs     *ResourceServer
	as     *AuthServer
	idp    *AuthServer
	client *Client

	listeners []Listener
	servers   []*http.Server

	mu     sync.RWMutex
	public map[string]string // listener name -> public origin
}

// NewWorld binds the scenario's listeners on loopback and starts serving.
// Until SetPublic is called, every URL names the lab's own addresses.
func NewWorld(sc Scenario) (*World, error) {
	w := &World{Scenario: sc, key: randBytes(32), public: map[string]string{}}
	asName := ListenerMCP
	if sc.SeparateAS || sc.OAuthProxy {
		asName = ListenerAS
	}
	issuer := func() string { return w.Public(asName) }
	w.rs = NewResourceServer(
		func() string { return w.Public(ListenerMCP) },
		func() string { return w.Internal(ListenerMCP) },
		func() []string { return []string{issuer()} }, w.key)
	w.rs.Faults = sc.Server
	w.as = NewAuthServer(issuer, w.rs.Resource, w.key)
	w.as.Faults = sc.AS
	w.as.AutoApprove = sc.AutoApprove
	if sc.OAuthProxy {
		idpKey := randBytes(32)
		w.idp = NewAuthServer(func() string { return w.Public(ListenerIdP) }, func() string { return w.Public(ListenerIdP) }, idpKey)
		w.as.Upstream = &Upstream{Issuer: func() string { return w.Public(ListenerIdP) }, ClientID: proxyClientID}
		w.as.Client = &http.Client{Transport: uaTransport{ua: userAgentLabAS, base: newTransport()}, Timeout: 30 * time.Second}
	}
	w.client = NewClient(sc.Profile, func() string { return w.Public(ListenerMCP) + "/mcp" }, func() string { return w.Public(ListenerClient) })
	w.client.Faults = sc.Client
	if o := sc.Client.BrowserOrigin; o != "" {
		w.client.backend.Transport = corsTransport{origin: o, base: w.client.backend.Transport}
	}
	if sc.Server.Expiring {
		w.client.Expire = w.rs.Expire
	}
	w.client.CIMD = sc.CIMD
	if sc.IDJAG {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		w.client.IDJAG, w.client.IDJAGIssuer = k, "https://idp.enterprise.example"
		w.as.IDJAG = &k.PublicKey
	}

	mcpMux := http.NewServeMux()
	w.rs.Mount(mcpMux)
	if asName == ListenerMCP {
		w.as.Mount(mcpMux)
	}
	var mcpHandler http.Handler = mcpMux
	refuse := func(p string) bool { return sc.AS.NoTokenCORS && p == tokenEndpointPath }
	mcpHandler = withCORS(mcpHandler, refuse)
	if ua := sc.Server.EdgeBlockUA; ua != "" {
		mcpHandler = edgeBlock(ua, mcpHandler)
	}
	if sc.Server.Interstitial {
		mcpHandler = interstitial(mcpHandler)
	}
	if err := w.serve(ListenerMCP, mcpHandler, true, ""); err != nil {
		return nil, err
	}
	if asName == ListenerAS {
		asMux := http.NewServeMux()
		w.as.Mount(asMux)
		if err := w.serve(ListenerAS, withCORS(asMux, refuse), true, ""); err != nil {
			w.Close()
			return nil, err
		}
	}
	if w.idp != nil {
		idpMux := http.NewServeMux()
		w.idp.Mount(idpMux)
		// The inner provider is someone else's service (Auth0, Entra…): a
		// user fronts only their own server with mcptap, so it is not proxied.
		if err := w.serve(ListenerIdP, idpMux, false, ""); err != nil {
			w.Close()
			return nil, err
		}
	}
	listen := ""
	if sc.Profile == ProfileVSCode {
		listen = VSCodeCallbackListen
	}
	if err := w.serve(ListenerClient, w.client.Handler(), !sc.CallbackDirect, listen); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *World) serve(name string, h http.Handler, proxied bool, listen string) error {
	addr := "127.0.0.1:0"
	if !proxied && listen != "" {
		addr = listen // the direct listener itself takes the fixed port
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr != "127.0.0.1:0" {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // busy: fall back like VS Code does
	}
	if err != nil {
		return fmt.Errorf("lab %s listener: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	addrOf := ln.Addr().String()
	if name == ListenerClient && w.Scenario.Client.CallbackGone {
		// The client is gone: its route's upstream refuses. Not the
		// ephemeral port just closed, which any listen(:0) (mcptap's own
		// listeners) may take next and turn into a loop: a port below the
		// ephemeral range that nothing listens on.
		ln.Close()
		p, err := freeport.Find()
		if err != nil {
			return fmt.Errorf("lab %s listener: %w", name, err)
		}
		addrOf = "127.0.0.1:" + strconv.Itoa(p)
	} else {
		go func() { _ = srv.Serve(ln) }()
	}
	w.servers = append(w.servers, srv)
	l := Listener{Name: name, Addr: addrOf, Proxied: proxied}
	if proxied {
		l.Listen = listen
	}
	w.mu.Lock() // handlers already serving read the listeners
	w.listeners = append(w.listeners, l)
	w.mu.Unlock()
	return nil
}

// Listeners lists the world's listeners, in a stable order.
func (w *World) Listeners() []Listener {
	w.mu.RLock()
	out := append([]Listener(nil), w.listeners...)
	w.mu.RUnlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetPublic says which origin (e.g. "http://127.0.0.1:8780", mcptap's
// listener) fronts the named listener. Metadata documents, redirect URIs and
// the client all use public origins.
func (w *World) SetPublic(name, origin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.public[name] = origin
}

// Public is the origin clients use for the named listener.
func (w *World) Public(name string) string {
	w.mu.RLock()
	p := w.public[name]
	w.mu.RUnlock()
	if p != "" {
		return p
	}
	return w.Internal(name)
}

// Internal is the lab's own origin for the named listener.
func (w *World) Internal(name string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, l := range w.listeners {
		if l.Name == name {
			return "http://" + l.Addr
		}
	}
	return ""
}

// PublicHosts are the host:port values of every public origin, the keys by
// which recorded exchanges are attributed to this world.
func (w *World) PublicHosts() []string {
	var out []string
	for _, l := range w.Listeners() {
		out = append(out, hostOf(w.Public(l.Name)))
	}
	return out
}

func hostOf(origin string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(origin) > len(p) && origin[:len(p)] == p {
			return origin[len(p):]
		}
	}
	return origin
}

// Run lets the client perform the connector setup and use the server.
func (w *World) Run(ctx context.Context) (*Result, error) {
	if w.idp != nil {
		w.idp.RegisterStatic(proxyClientID, w.as.Issuer()+"/oauth/idp/callback")
	}
	defer w.closeIdle()
	return w.client.Run(ctx)
}

// closeIdle drops the lab's idle client connections. A connection a client
// dialled but never used is, on the server side, a new connection that
// http.Server.Shutdown waits up to 5 s for; closing it lets mcptap's proxy
// stop at once after a run.
func (w *World) closeIdle() {
	w.client.backend.CloseIdleConnections()
	w.client.browser.hc.CloseIdleConnections()
	if w.as.Client != nil {
		w.as.Client.CloseIdleConnections()
	}
}

// Close stops every listener of the world.
func (w *World) Close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range w.servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// portFree reports whether addr can be bound right now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// edgeBlock is an edge in front of the server that answers requests whose
// User-Agent contains ua the way Cloudflare's WAF does, before they reach it.
func edgeBlock(ua string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("User-Agent"), ua) {
			rw.Header().Set("Server", "cloudflare")
			rw.Header().Set("Cf-Ray", "8f1e2d3c4b5a6978-SJC")
			rw.Header().Set("Content-Type", "text/plain; charset=UTF-8")
			rw.WriteHeader(http.StatusForbidden)
			_, _ = rw.Write([]byte("Your request was blocked."))
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// interstitial is a tunnel that answers API clients' metadata requests
// with its browser warning page (ngrok's free-tier interstitial) unless
// they send ngrok-skip-browser-warning.
func interstitial(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") && r.Header.Get("ngrok-skip-browser-warning") == "" {
			rw.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = rw.Write([]byte(`<!DOCTYPE html><html><head><title>ngrok</title></head><body><h1>You are about to visit ` + r.Host +
				`</h1><p>To remove this page, send the ngrok-skip-browser-warning request header.</p><a href="#">Visit Site</a></body></html>`))
			return
		}
		next.ServeHTTP(rw, r)
	})
}
