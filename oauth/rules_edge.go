package oauth

import (
	"strings"
)

// isEdgeResponse says the answer was produced by an edge in front of the
// server (Cloudflare and similar), not by the server itself.
func isEdgeResponse(x *exInfo) bool {
	h := x.ex.RespHeader
	return h.Get("Cf-Mitigated") != "" || (strings.EqualFold(h.Get("Server"), "cloudflare") && h.Get("Cf-Ray") != "" && x.status() == 403 &&
		strings.Contains(strings.ToLower(h.Get("Content-Type")), "text/html"))
}
