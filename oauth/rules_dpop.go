package oauth

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mcptap/mcptap"
)

func ruleDPoPSchemeMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.flow == nil || x.flow.tokenOK == nil || x.bearer == "" || x.bearer != x.flow.access || x.flow.tokenOK.tokenResp == nil {
		return nil
	}
	tt := str(x.flow.tokenOK.tokenResp, "token_type")
	proof := x.reqH("DPoP")
	var want, got string
	switch {
	case strings.EqualFold(tt, "DPoP") && !strings.EqualFold(x.scheme, "DPoP"):
		want, got = "Authorization: DPoP <token> with a DPoP proof", "Authorization: "+x.scheme
	case strings.EqualFold(tt, "DPoP") && proof == "":
		want, got = "a DPoP proof header", "(absent)"
	case strings.EqualFold(tt, "Bearer") && strings.EqualFold(x.scheme, "DPoP"):
		want, got = "Authorization: Bearer <token>", "Authorization: DPoP"
	default:
		return nil
	}
	return []hit{{key: x.flow.id + "|dpop-scheme", exchanges: ids(x.flow.tokenOK, x),
		detail:   fmt.Sprintf("The token endpoint issued a token_type %s token; the MCP request sends %s. A DPoP-bound token must be sent with the DPoP scheme and a fresh proof (RFC 9449 §7.1), a Bearer token with Bearer.", tt, got),
		evidence: []mcptap.Evidence{ev(x, "header.Authorization", want, got, "token_type "+tt)}}}
}

// isNonceChallenge: an answer asking for a DPoP nonce (RFC 9449 §8, §9).
func isNonceChallenge(x *exInfo) bool {
	if x.status() < 400 {
		return false
	}
	if w := x.respH("WWW-Authenticate"); w != "" && containsFold(w, "use_dpop_nonce") {
		return true
	}
	// Most bodies cannot be one: parse only those that name the error.
	return bytes.Contains(x.ex.RespBody, []byte("use_dpop_nonce")) && str(jsonObject(x.ex.RespBody), "error") == "use_dpop_nonce"
}

func ruleDPoPNonceLoop(t *Tracker, x *exInfo) []hit {
	if !isNonceChallenge(x) || !t.complete(x) || t.nonceRun[x.key] < 3 {
		return nil
	}
	fault := mcptap.FaultClient
	if x.kind == mcptap.HopMCP || x.kind == mcptap.HopMCPUnauthenticated {
		fault = mcptap.FaultUnknown
	}
	return []hit{{key: x.key + "|nonce-loop", fault: fault,
		detail:   fmt.Sprintf("%s was answered use_dpop_nonce %d times in a row: the client does not put the server's DPoP-Nonce (now %q) into its next proof, or the server issues a new nonce on every answer.", x.base, t.nonceRun[x.key], x.respH("DPoP-Nonce")),
		evidence: []mcptap.Evidence{ev(x, "header.DPoP-Nonce", "the nonce used in the next proof", x.respH("DPoP-Nonce"), fmt.Sprintf("%d challenges", t.nonceRun[x.key]))}}}
}
