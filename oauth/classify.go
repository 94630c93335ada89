package oauth

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

// classify decides what an exchange is by what it carries.
func (t *Tracker) classify(x *exInfo) {
	m := x.method()
	if m == "OPTIONS" {
		// A browser's CORS preflight (or any OPTIONS): never a hop, even
		// on a metadata path, where its empty 204 is not the document.
		return
	}
	p := strings.ToLower(pathOf(x.base))
	gt, hasGT := x.form.Lookup("grant_type")
	rt := x.q.Get("response_type")
	if rt == "" && m == "POST" {
		rt = x.form.Get("response_type")
	}
	if m == "POST" && isLinkInitiation(p) {
		x.link = true // no public hop kind fits: correlated with its flow, not a hop
		return
	}
	switch {
	case strings.HasSuffix(p, "/backend-api/aip/connectors/links/oauth/callback"),
		strings.Contains(p, "/backend-api/aip/connectors/links/oauth/state/"),
		strings.Contains(p, "/backend-api/aip/") && strings.HasSuffix(p, "/oauth/callback") && m == "POST":
		x.kind = mcptap.HopCallbackCompletion
	case m == "POST" && (hasGT || t.tokenEP[x.key]):
		t.sawToken = true
		if gt == "refresh_token" {
			x.kind = mcptap.HopRefresh
		} else {
			x.kind = mcptap.HopToken
		}
	case strings.Contains(" "+rt+" ", " code "):
		x.kind = mcptap.HopAuthorize
	case strings.Contains(p, "/.well-known/oauth-protected-resource"):
		x.kind = mcptap.HopDiscoveryResource
	case strings.Contains(p, "/.well-known/oauth-authorization-server"), strings.Contains(p, "/.well-known/openid-configuration"):
		x.kind = mcptap.HopDiscoveryAuth
	case m == "POST" && !isJSONRPC(x.ex.ReqBody) && (t.regEP[x.key] || jsonHasKey(x.ex.ReqBody, "redirect_uris")):
		x.kind = mcptap.HopRegister
	case hasCodeOrError(x.q) && (t.redirectURIs[x.base] || clientFromRedirect(x.base) != ""):
		x.kind = mcptap.HopCallback
	case m == "POST" && isJSONRPC(x.ex.ReqBody):
		t.sawMCP = true
		t.mcpEP[x.key] = true
		if x.bearer == "" && x.challenge() {
			x.kind = mcptap.HopMCPUnauthenticated
		} else {
			x.kind = mcptap.HopMCP
		}
	case t.mcpEP[x.key] && isMCPStreamOrEnd(x):
		// The standalone SSE GET (a stateless server answers 405) and the
		// session DELETE on the endpoint JSON-RPC is POSTed to.
		if x.bearer == "" && x.challenge() {
			x.kind = mcptap.HopMCPUnauthenticated
		} else {
			x.kind = mcptap.HopMCP
		}
	case x.challenge() && x.bearer == "" && strings.HasPrefix(strings.ToLower(x.respH("WWW-Authenticate")), "bearer"):
		t.sawMCP = true
		x.kind = mcptap.HopMCPUnauthenticated
	}
	x.redirect = x.redirects() && hasCodeOrError(x.locQ)
	if x.kind == "" && x.redirect {
		x.kind = mcptap.HopRedirect
	}
}

// isLinkInitiation: ChatGPT's web app asks its backend to start (or redo) a
// link; the answer is {"redirect_url": "<authorize URL incl. state>"}.
func isLinkInitiation(lowerPath string) bool {
	p := strings.TrimSuffix(lowerPath, "/")
	return strings.Contains(p, "/backend-api/aip/") &&
		(strings.HasSuffix(p, "/links/oauth") || strings.HasSuffix(p, "/links/oauth/reauth"))
}

// linkKey is what ties a link initiation to its authorize: the state of the
// authorize URL, or the URL itself when it has none.
func linkKey(authorizeURL string) string {
	_, rq := splitURL(authorizeURL)
	if st := ParseQuery(rq).Get("state"); st != "" {
		return "state:" + st
	}
	return "url:" + authorizeURL
}

// learnLink correlates a complete link initiation with the attempt it
// started, now or when that authorize arrives.
func (t *Tracker) learnLink(x *exInfo) {
	u := str(jsonObject(x.ex.RespBody), "redirect_url")
	if u == "" || x.flow != nil {
		return
	}
	k := linkKey(u)
	for _, f := range t.flows {
		if f.a != nil && (linkKey(f.a.url) == k || f.a.url == u) {
			t.attachLink(f, x)
			return
		}
	}
	t.links[k] = x
}

// isMCPStreamOrEnd says whether a request to the MCP endpoint is one of the
// transport's non-POST requests: DELETE (session end), or a GET that asks for
// an event stream or carries the transport's headers. A plain GET of the same
// URL (a browser opening it) stays unclassified.
func isMCPStreamOrEnd(x *exInfo) bool {
	switch x.method() {
	case "DELETE":
		return true
	case "GET":
		return strings.Contains(strings.ToLower(x.reqH("Accept")), "text/event-stream") ||
			x.reqH("Mcp-Session-Id") != "" || x.reqH("Mcp-Protocol-Version") != "" || x.reqH("Last-Event-ID") != ""
	}
	return false
}

func jsonHasKey(b []byte, key string) bool {
	// Most bodies cannot hold the key at all: no parse for them. (A key
	// spelled with \u escapes is missed; no client writes one.)
	if !bytes.Contains(b, []byte(`"`+key+`"`)) {
		return false
	}
	m := jsonObject(b)
	_, ok := m[key]
	return ok
}

// learn takes what an exchange teaches about endpoints, registrations and
// tokens once its body is complete.
func (t *Tracker) learn(x *exInfo) {
	if x.learned || !t.complete(x) {
		return
	}
	x.learned = true
	ok := x.succeeded()
	switch {
	case isNonceChallenge(x):
		t.nonceRun[x.key]++
	case ok && len(t.nonceRun) > 0 && t.nonceRun[x.key] > 0:
		delete(t.nonceRun, x.key)
	}
	if x.kind == mcptap.HopMCPUnauthenticated && x.challenge() {
		if rm := resourceMetadataParam(x.ex.RespHeader.Values("Www-Authenticate")); rm != "" {
			t.challengedBy[rm] = x
		}
	}
	if x.kind == mcptap.HopMCP {
		if strings.Contains(strings.ToLower(x.respH("Content-Type")), "text/event-stream") && x.ex.End.Sub(x.ex.Start) >= streamCutWindow {
			s := append(t.streams[x.key], x)
			if len(s) > keptStreams {
				s = s[len(s)-keptStreams:]
			}
			t.streams[x.key] = s
		}
		if t.openInit[x.key] == nil && isOpenInitialize(x) {
			t.openInit[x.key] = x
		}
		if isLegacyAnswer(x) {
			t.legacyInit[x.key] = x
		}
		if f := x.flow; f != nil {
			if f.initialize == nil {
				if v := negotiated(x); v != "" {
					f.initialize, f.version = x, v
				}
			}
			if _, ok := insufficientScope(x); ok && f.clientID != "" {
				if r := t.scopeRefused[f.clientID]; len(r) == 0 || r[len(r)-1] != f {
					t.scopeRefused[f.clientID] = append(r, f)
				}
			}
		}
	}
	if x.link && ok {
		t.learnLink(x)
		return
	}
	if x.kind == "" && x.flow == nil && !x.redirect && x.status() >= 400 && sessionLostRE.Match(x.ex.RespBody) {
		t.attachInteraction(x)
		return
	}
	switch x.kind {
	case mcptap.HopDiscoveryResource:
		h := hostPortOf(x.url)
		t.prmByHost[h] = append(t.prmByHost[h], x)
		t.prms = append(t.prms, x)
		if x.status() >= 400 && len(pathOf(x.base)) > len(prmWellKnown) && t.prmFail[h] == nil {
			t.prmFail[h] = x
		}
		if ok {
			var m oauthex.ProtectedResourceMetadata
			if json.Unmarshal(x.ex.RespBody, &m) == nil {
				x.prm = &m
				if m.Resource != "" {
					// The resource is the MCP endpoint too (an SSE GET may
					// come before any POST there, as with the older SSE transport).
					t.mcpEP[endpointKey(m.Resource)] = true
				}
			}
		}
	case mcptap.HopDiscoveryAuth:
		t.asms = append(t.asms, x)
		if ok {
			var m oauthex.AuthServerMeta
			if json.Unmarshal(x.ex.RespBody, &m) == nil {
				x.asm = &m
				if m.TokenEndpoint != "" {
					t.tokenEP[endpointKey(m.TokenEndpoint)] = true
				}
				if m.RegistrationEndpoint != "" {
					t.regEP[endpointKey(m.RegistrationEndpoint)] = true
				}
				if m.AuthorizationEndpoint != "" {
					t.asmByAuthEP[endpointKey(m.AuthorizationEndpoint)] = x
				}
			}
		}
	case mcptap.HopRegister:
		if x.regKey = registrationKey(x); x.regKey != "" {
			t.regBodies[x.regKey] = append(t.regBodies[x.regKey], x)
		}
		var req oauthex.ClientRegistrationMetadata
		_ = json.Unmarshal(x.ex.ReqBody, &req)
		for _, u := range req.RedirectURIs {
			b, _ := splitURL(u)
			t.redirectURIs[b] = true
		}
		if ok {
			var r oauthex.ClientRegistrationResponse
			if json.Unmarshal(x.ex.RespBody, &r) == nil && r.ClientID != "" {
				if len(r.RedirectURIs) == 0 {
					r.RedirectURIs = req.RedirectURIs
				}
				x.reg = &r
				t.regs[r.ClientID] = x
				for _, f := range t.byClient[r.ClientID] {
					f.dirty = true // the registration may name its client
				}
			}
		}
	case mcptap.HopToken, mcptap.HopRefresh:
		x.tokenResp = jsonObject(x.ex.RespBody)
		x.tokenIsJSON = x.tokenResp != nil
		f := x.flow
		if ok && f != nil && !x.inner && x.tokenResp == nil && x.status() == 200 && x.respBodyUnrecorded() && f.tokenUnreadAt.IsZero() {
			// A token 200 whose body was not recorded: the token is not
			// known, but MCP calls after it may still be the flow's.
			f.tokenUnreadAt = x.at()
			t.tokened = append(t.tokened, f)
		}
		if !ok || f == nil || x.tokenResp == nil || x.inner {
			return // the upstream provider's token is the server's, never the MCP client's bearer
		}
		at, rt := str(x.tokenResp, "access_token"), str(x.tokenResp, "refresh_token")
		if at != "" {
			t.byAccess[at] = f
			f.access = at
			if f.tokenOK == nil {
				f.tokenOK, f.tokenOKAt = x, x.at()
				if f.tokenUnreadAt.IsZero() {
					t.tokened = append(t.tokened, f)
				}
				if !f.bearerSeen {
					t.wait(t.waitBearer, f, f.tokenOKAt)
				}
			}
		}
		if rt != "" {
			t.byRefresh[rt] = f
		}
	}
}
