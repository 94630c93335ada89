package oauth

import (
	"fmt"
	"strings"

	"github.com/mcptap/mcptap"
)

func ruleMCPRedirect(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || !isRedirectStatus(x.status()) {
		return nil
	}
	return []hit{{key: x.key + "|" + x.loc,
		detail:   fmt.Sprintf("%s %s was answered %d to %s. Clients drop the Authorization header on a redirect (and may turn the POST into a GET).", x.method(), x.base, x.status(), x.loc),
		evidence: []mcptap.Evidence{ev(x, "status", "200", fmt.Sprintf("%d → %s", x.status(), x.loc), "")}}}
}

func ruleBearerRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.status() != 401 || x.flow == nil || x.flow.tokenOK == nil {
		return nil
	}
	f := x.flow
	h := hit{key: f.id, exchanges: ids(f.tokenOK, x),
		detail:   fmt.Sprintf("The token endpoint issued a token at %s; the MCP server answered 401 to it (%s).", f.tokenOKAt.Format("15:04:05"), orNone(x.respH("WWW-Authenticate"))),
		evidence: []mcptap.Evidence{ev(x, "status", "200", "401", x.respH("WWW-Authenticate"))}}
	return []hit{h}
}

func ruleBearerNeverSent(t *Tracker, f *flow, final bool) []hit {
	if f.bearerSeen || f.tokenOK == nil {
		return nil
	}
	if !t.sawMCP {
		return nil // no MCP traffic captured at all: the MCP server is not behind this proxy
	}
	return []hit{{anchor: f.tokenOK.id(), key: f.tokenOK.id() + "|bearer",
		detail:   fmt.Sprintf("The token endpoint issued an access token at %s and no MCP request carried it afterwards. Two sides can produce that absence: the client (it never sent one) or an edge in front of the tunnel that blocked the authenticated call (Claude's backend sends it with another User-Agent, Claude-User, than its discovery; Cloudflare's AI-bot rule blocks that one). What decides it: the tunnel's request log for a blocked POST to the MCP URL, and a control client (MCP Inspector, curl) with the same token.", f.tokenOKAt.Format("15:04:05")),
		evidence: []mcptap.Evidence{ev(f.tokenOK, "header.Authorization", "Bearer <the issued token>", "never sent", "")}}}
}

// ruleMCPForbidden: an MCP request answered 403 that is not a step-up
// (insufficient_scope). The Go SDK's DNS-rebinding protection answers
// "Forbidden: invalid Host header" to a request that came through a tunnel
// (Host is the tunnel's) while the server listens on loopback.
func ruleMCPForbidden(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.status() != 403 || !t.complete(x) {
		return nil
	}
	if strings.Contains(strings.ToLower(x.respH("WWW-Authenticate")), "insufficient_scope") || isEdgeResponse(x) {
		return nil
	}
	body := truncate(string(x.ex.RespBody), 160)
	detail := fmt.Sprintf("%s %s was answered 403 (%s).", x.method(), x.base, orNone(body))
	fix := "Find the check that refuses the request (Host allow-list, IP allow-list, WAF) and allow the client's traffic through it."
	lower := strings.ToLower(body)
	switch {
	case strings.Contains(lower, "invalid host header") || strings.Contains(lower, "host header"):
		detail += " This is a Host check: the MCP Go SDK (and similar DNS-rebinding protections) refuses requests whose Host is not loopback when the server listens on loopback, which is every request through a tunnel."
		fix = "Disable the loopback-Host protection for this deployment (Go SDK: StreamableHTTPOptions.DisableLocalhostProtection) or allow the tunnel's host; or run mcptap with --host-header upstream so the server sees its own Host."
	case x.bearer == "":
		detail += " The request carried no bearer, so this is not an authorization decision on a token."
	default:
		detail += " The request carried the bearer the token endpoint issued."
	}
	return []hit{{key: x.key + "|403", detail: detail, fix: fix,
		evidence: []mcptap.Evidence{ev(x, "status", "200 (or 401 with a challenge)", "403", body)}}}
}
