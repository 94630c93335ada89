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
type ownConns struct{ m sync.Map } // local address → struct{}

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
			local := c.LocalAddr().String()
			o.m.Store(local, struct{}{})
			return &ownConn{Conn: c, o: o, local: local}, nil
		}
		return c, nil
	}
}

// from reports whether a request's remote address is one of our own dials.
func (o *ownConns) from(remoteAddr string) bool {
	_, ok := o.m.Load(remoteAddr)
	return ok
}

type ownConn struct {
	net.Conn
	o     *ownConns
	local string
	once  sync.Once
}

func (c *ownConn) Close() error {
	c.once.Do(func() { c.o.m.Delete(c.local) })
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
