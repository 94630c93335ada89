package oauth

import (
	"net"
	"strings"

	"github.com/mcptap/mcptap"
)

func originOf(u string) string {
	scheme, _, _ := strings.Cut(u, "://")
	return strings.ToLower(scheme) + "://" + hostPortOf(u)
}

func canonURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	hp := hostPortOf(u)
	path := rest[min(len(rest), len(strings.SplitN(rest, "/", 2)[0])):]
	hp = strings.TrimSuffix(strings.TrimSuffix(hp, ":443"), ":80")
	if path == "" || path[0] == '?' {
		path = "/" + path // RFC 3986 §6.2.3: an empty path is "/"
	}
	return strings.ToLower(scheme) + "://" + hp + path
}

// schemeUnknown: a reverse-proxied request over plain http from a public
// host without X-Forwarded-Proto. The tunnel in front may well have spoken
// https with the client; mcptap cannot tell.
func schemeUnknown(x *exInfo) bool {
	return x.ex.Mode == mcptap.ModeReverse && strings.HasPrefix(x.url, "http://") &&
		x.reqH("X-Forwarded-Proto") == "" && !InternalHost(x.url)
}

// sameURL compares a URL derived from the request (want) with one a
// document names (got), ignoring the scheme when the request's is unknown.
func sameURL(x *exInfo, want, got string) bool {
	if canonURL(want) == canonURL(got) {
		return true
	}
	if !schemeUnknown(x) {
		return false
	}
	_, w, _ := strings.Cut(canonURL(want), "://")
	_, g, _ := strings.Cut(canonURL(got), "://")
	return w == g && strings.HasPrefix(got, "https://")
}

// issuerFor is the issuer a metadata URL was built from (RFC 8414 §3.1 path
// insertion, or OIDC path appending).
func issuerFor(u string) string {
	o := originOf(u)
	p := pathOf(u)
	for _, wk := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		if strings.HasPrefix(p, wk) {
			return o + strings.TrimPrefix(p, wk)
		}
		if i := strings.Index(p, wk); i > 0 {
			return o + p[:i]
		}
	}
	return o
}

// InternalHost says whether a URL names a host only its own machine or
// network reaches: localhost, *.local, *.internal, loopback, private and
// link-local addresses.
func InternalHost(u string) bool {
	h := strings.Trim(hostOf(u), "[]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".internal") || strings.HasSuffix(h, ".local") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast())
}

// sameRedirectTarget: Location = redirect_uri plus the response parameters.
func sameRedirectTarget(loc, redirectURI string) bool {
	lb, lq := splitURL(loc)
	rb, rq := splitURL(redirectURI)
	if canonURL(lb) != canonURL(rb) {
		return false
	}
	have := ParseQuery(lq)
	for _, p := range ParseQuery(rq) {
		if have.Get(p.Key) != p.Value {
			return false
		}
	}
	return true
}

// isInternalHost: loopback, private, link-local, or a name that only
// resolves inside a machine or a container network.
func isInternalHost(h string) bool {
	h = strings.ToLower(strings.Trim(h, "[]"))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal") || h == "host.docker.internal" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

func sameBase(a, b string) bool {
	ab, _ := splitURL(a)
	bb, _ := splitURL(b)
	return ab != "" && ab == bb
}

// splitURL cuts a URL or request target into the part before '?' and the raw
// query, dropping any fragment.
func splitURL(u string) (base, rawQuery string) {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	base, rawQuery, _ = strings.Cut(u, "?")
	return base, rawQuery
}

// clientURL is the URL the client used: behind a tunnel the reverse proxy
// sees http://127.0.0.1, but X-Forwarded-Proto/Host say what the client typed.
func clientURL(ex *mcptap.Exchange) string {
	u := ex.URL()
	if len(ex.Target) > 0 && ex.Target[0] != '/' {
		return u
	}
	scheme, host := ex.Scheme, ex.Host
	if p := firstToken(ex.ReqHeader.Get("X-Forwarded-Proto")); p != "" {
		scheme = p
	}
	if h := firstToken(ex.ReqHeader.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + host + ex.Target
}

// endpointKey reduces a URL to host[:port]+path so that an endpoint named in
// metadata (https://public/token) matches the request the proxy saw even when
// the scheme was lost behind a tunnel.
func endpointKey(u string) string {
	base, _ := splitURL(u)
	_, rest, ok := strings.Cut(base, "://")
	if !ok {
		return strings.ToLower(base)
	}
	hp, path, _ := strings.Cut(rest, "/")
	hp = strings.ToLower(hp)
	hp = strings.TrimSuffix(strings.TrimSuffix(hp, ":443"), ":80")
	return hp + "/" + strings.TrimSuffix(path, "/")
}

// hostOf returns the host (without port) of an absolute URL, lowercased.
func hostOf(u string) string {
	hp := hostPortOf(u)
	if strings.HasPrefix(hp, "[") {
		if i := strings.Index(hp, "]"); i >= 0 {
			return hp[:i+1]
		}
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i]
	}
	return hp
}

// prmWellKnown is the protected resource metadata path (RFC 9728 §3).
const prmWellKnown = "/.well-known/oauth-protected-resource"
