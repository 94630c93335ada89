package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/mcptap/mcptap"
)

// ownConns remembers the local addresses of the connections the reverse
// proxy dialed toward its upstreams. A request whose remote address is one of
// them came from mcptap itself: --upstream points back at one of its own
// listeners (directly, or through a local forward), and forwarding it again
// would loop until the machine gave out. The check looks at the TCP socket
// pair only, so the forwarded bytes stay what the client sent (no marker
// header), and it catches only loops on this machine's loopback or
// interfaces, which is where the misconfiguration happens.
type ownConns struct{ m sync.Map } // "local|remote" of an outbound connection → struct{}

// pairKey names a TCP connection by both ends. Both are needed: Linux gives
// the same ephemeral port to connections to different destinations, so a
// client's connection to mcptap can share its port number with one of
// mcptap's own connections to an upstream without being it.
func pairKey(local, remote string) string { return local + "|" + remote }

// dial wraps a DialContext so that connections dialed for requests that came
// in on a reverse route are remembered until they close. Forward (browser)
// requests are not: a browser may legitimately go through the browser proxy
// to a reverse listener.
func (o *ownConns) dial(next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if info, ok := ClientInfoFrom(ctx); ok && info.Mode == mcptap.ModeReverse {
			key := pairKey(c.LocalAddr().String(), c.RemoteAddr().String())
			o.m.Store(key, struct{}{})
			return &ownConn{Conn: c, o: o, key: key}, nil
		}
		return c, nil
	}
}

// from reports whether a request arrived on one of our own dials: its
// remote end is the dial's local end and its local end the dial's remote.
func (o *ownConns) from(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	_, ok = o.m.Load(pairKey(r.RemoteAddr, local.String()))
	return ok
}

type ownConn struct {
	net.Conn
	o    *ownConns
	key  string
	once sync.Once
}

func (c *ownConn) Close() error {
	c.once.Do(func() { c.o.m.Delete(c.key) })
	return c.Conn.Close()
}

// refuseLoop answers a request that mcptap sent to itself with 508 Loop
// Detected and says what to change; it is not forwarded again.
func refuseLoop(w http.ResponseWriter, listener, upstream string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusLoopDetected)
	fmt.Fprintf(w, "mcptap: loop detected: the upstream %s leads back to mcptap's own listener %s, so this request came from mcptap itself. "+
		"Point --upstream at your MCP server (e.g. http://localhost:3000), not at mcptap.\n", upstream, listener)
}
