package oauth

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

func ruleNoChallenge(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCPUnauthenticated || x.status() != 401 {
		return nil
	}
	hdrs := x.ex.RespHeader.Values("Www-Authenticate")
	chs, err := oauthex.ParseWWWAuthenticate(hdrs)
	for _, c := range chs {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return nil
		}
	}
	got := strings.Join(hdrs, ", ")
	note := "no WWW-Authenticate header"
	if got != "" {
		note = "no Bearer challenge with resource_metadata"
		if err != nil {
			note = "unparseable: " + err.Error()
		}
	}
	return []hit{{key: hostPortOf(x.url) + "|" + got,
		detail:   fmt.Sprintf("%s %s answered 401 without pointing to protected resource metadata (%s). Strict clients (Claude, Claude Code, C# SDK) stop here: \"Couldn't reach the MCP server\".", x.method(), x.base, note),
		evidence: []mcptap.Evidence{ev(x, "header.WWW-Authenticate", `Bearer resource_metadata="https://…/.well-known/oauth-protected-resource"`, showAbsent(got, got != ""), note)}}}
}

func isMetadata(x *exInfo) bool {
	return x.kind == mcptap.HopDiscoveryResource || x.kind == mcptap.HopDiscoveryAuth
}

func ruleNotJSON(t *Tracker, x *exInfo) []hit {
	if !isMetadata(x) || !t.complete(x) {
		return nil
	}
	s := x.status()
	ct := x.respH("Content-Type")
	var why string
	switch {
	case isRedirectStatus(s):
		why = fmt.Sprintf("redirect %d to %s (a login page?)", s, x.loc)
	case s == 401 || s == 403:
		why = fmt.Sprintf("%d: the document is behind authentication or a bot challenge", s)
	case s >= 200 && s < 300 && !isJSONBody(x.ex.RespBody) && x.respBodyUnrecorded():
		x.noteUnchecked(fmt.Sprintf("the body of %s was not recorded (cut or left out by the capture): its JSON was not checked", x.base))
		return nil
	case s >= 200 && s < 300 && !isJSONBody(x.ex.RespBody):
		why = fmt.Sprintf("%d %s that does not parse as JSON", s, orNone(ct))
	case s >= 200 && s < 300 && !strings.Contains(strings.ToLower(ct), "json"):
		why = fmt.Sprintf("JSON body served as %s", orNone(ct))
	default:
		return nil
	}
	return []hit{{key: x.key + "|" + why,
		detail:   fmt.Sprintf("GET %s: %s. Clients read this document to find the authorization server and give up when it is not JSON.", x.base, why),
		evidence: []mcptap.Evidence{ev(x, "header.Content-Type", "application/json", orNone(ct), fmt.Sprintf("status %d", s))}}}
}

func rulePRMFallback(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || pathOf(x.base) != prmWellKnown {
		return nil
	}
	// The first failing path-suffixed fetch on the host, kept as it was
	// learned: scanning every fetch of the host here made a session of many
	// attempts quadratic.
	if p := t.prmFail[hostPortOf(x.url)]; p != nil {
		if p.order < x.order {
			suffix := strings.TrimPrefix(pathOf(p.base), prmWellKnown)
			return []hit{{key: hostPortOf(x.url),
				exchanges: ids(p, x),
				detail: fmt.Sprintf("%s answered %d, then the root document answered 200 with resource %q. That is the spec's normal fallback; it only matters if that resource is not the MCP URL (%s%s).",
					p.base, p.status(), x.prm.Resource, originOf(x.url), suffix),
				evidence: []mcptap.Evidence{ev(p, "status", "200", fmt.Sprint(p.status()), "path-suffixed metadata"), ev(x, "body.resource", "", x.prm.Resource, "root metadata used instead")}}}
		}
	}
	return nil
}

// mcpURLFor is the MCP endpoint the client used on a host, as far as seen.
func (t *Tracker) mcpURLFor(host string, before int) string {
	for _, f := range [][]*exInfo{t.pending} {
		for i := len(f) - 1; i >= 0; i-- {
			p := f[i]
			if p.kind == mcptap.HopMCPUnauthenticated && hostPortOf(p.url) == host && p.order < before {
				return p.base
			}
		}
	}
	for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
		for _, p := range t.flows[i].pre {
			if p.kind == mcptap.HopMCPUnauthenticated && hostPortOf(p.url) == host && p.order < before {
				return p.base
			}
		}
	}
	return ""
}

func ruleResourceMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || x.prm.Resource == "" {
		return nil
	}
	p := pathOf(x.base)
	want := ""
	if c := t.challengedBy[x.url]; c != nil && c.order < x.order {
		// RFC 9728 §3.3: metadata fetched from a challenge's
		// resource_metadata names the URL of the request that was
		// challenged (where it was served from is the challenge's
		// business: discovery.challenge-internal).
		want = c.base
	} else if len(p) > len(prmWellKnown) && strings.HasPrefix(p, prmWellKnown) {
		want = originOf(x.url) + strings.TrimPrefix(p, prmWellKnown)
	} else if m := t.mcpURLFor(hostPortOf(x.url), x.order); m != "" {
		want = m
	}
	got := x.prm.Resource
	if want != "" {
		if sameURL(x, want, got) {
			return nil
		}
		if p == prmWellKnown && sameURL(x, originOf(x.url), got) {
			// The root document's own identifier is the origin (RFC 9728
			// §3.3); MCP servers often put the MCP URL there instead, and
			// both are right.
			return nil
		}
	} else {
		want = originOf(x.url)
		if sameURL(x, want, originOf(got)) {
			return nil
		}
	}
	return []hit{{key: x.key + "|" + got,
		detail:   fmt.Sprintf("The protected resource metadata at %s says resource %q, but the client reached the server as %q. RFC 9728 §3.3: the client MUST NOT use this document (strict clients stop; others carry the wrong resource into the token audience).", x.base, got, want),
		evidence: []mcptap.Evidence{ev(x, "body.resource", want, got, "URL the client used vs resource in the document")}}}
}

func ruleNoAuthServers(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryResource || x.prm == nil || len(x.prm.AuthorizationServers) > 0 {
		return nil
	}
	return []hit{{key: x.key,
		detail:   fmt.Sprintf("%s has no authorization_servers, so the client cannot find where to log in (ChatGPT treats this as \"no auth\").", x.base),
		evidence: []mcptap.Evidence{ev(x, "body.authorization_servers", `["https://<your issuer>"]`, "(absent or empty)", "")}}}
}

// sessionNoPRM fires at the end for hosts whose every protected resource
// metadata probe failed.
func sessionNoPRM(t *Tracker) []hit {
	var out []hit
	for _, x := range t.prms {
		h := hostPortOf(x.url)
		all := t.prmByHost[h]
		if all[0] != x {
			continue
		}
		ok := false
		for _, p := range all {
			ok = ok || p.succeeded() // an answer of unrecorded status: not checked
		}
		if ok {
			continue
		}
		var got []string
		for _, p := range all {
			got = append(got, fmt.Sprintf("%s → %d", pathOf(p.base), p.status()))
		}
		out = append(out, hit{key: "no-prm|" + h, anchor: x.id(), exchanges: ids(all...),
			detail:   fmt.Sprintf("Every protected resource metadata probe on %s failed (%s). Without it the client cannot find the authorization server.", h, strings.Join(got, ", ")),
			evidence: []mcptap.Evidence{ev(x, "status", "200", strings.Join(got, ", "), "")}})
	}
	return out
}

// issuerClients says which clients refuse this difference, from their
// comparison code: the MCP Go SDK v1.8.0 (oauthex.GetAuthServerMeta via
// authutil.IssuersEqual) compares with one trailing slash trimmed from both
// sides; mcp-remote 0.15.1 (its bundled TypeScript SDK,
// discoverAuthorizationServerMetadata) accepts the issuer equal to the
// advertised entry, or equal to it without its trailing slash, and nothing
// else. RFC 8414 §3.3 itself wants them identical.
func issuerClients(want, got string) string {
	switch {
	case strings.TrimSuffix(want, "/") != strings.TrimSuffix(got, "/"):
		return "They differ beyond a trailing slash: every client that checks (RFC 8414 §3.3; the MCP Go SDK v1.8.0; mcp-remote 0.15.1) refuses the server."
	case strings.HasSuffix(want, "/"):
		return "They differ only by the advertised entry's trailing slash: the MCP Go SDK v1.8.0 and mcp-remote 0.15.1 accept this; clients that compare byte for byte as RFC 8414 §3.3 says refuse it (GitHub Copilot CLI was reported to: github/copilot-cli#4606)."
	default:
		return "The issuer has a trailing slash the advertised entry lacks: the MCP Go SDK v1.8.0 accepts this, mcp-remote 0.15.1 refuses it (it trims a slash only from the advertised entry), and so do clients that compare byte for byte as RFC 8414 §3.3 says."
	}
}

func ruleIssuerMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil {
		return nil
	}
	got := x.asm.Issuer
	var want string
	var from *exInfo
	// t.prms is in traffic order: start at the last one before x.
	last := sort.Search(len(t.prms), func(i int) bool { return t.prms[i].order > x.order })
	for i := last - 1; i >= 0 && i >= last-fuzzyWindow; i-- {
		p := t.prms[i]
		if p.prm == nil {
			continue
		}
		for _, as := range p.prm.AuthorizationServers {
			if as == got {
				return nil
			}
			if issuerFor(x.url) == strings.TrimSuffix(as, "/") || hostPortOf(as) == hostPortOf(x.url) {
				want, from = as, p
			}
		}
		if want != "" {
			break
		}
	}
	note := "entry in authorization_servers"
	if want == "" {
		want = issuerFor(x.url)
		note = "issuer implied by the metadata URL (RFC 8414 §3.3)"
		if got == want || (schemeUnknown(x) && strings.TrimPrefix(got, "https://") == strings.TrimPrefix(want, "http://")) {
			return nil
		}
	}
	return []hit{{key: x.key + "|" + got + "|" + want, exchanges: ids(from, x),
		detail:   fmt.Sprintf("The authorization server metadata at %s says issuer %q, but %q was expected (%s). %s", x.base, got, want, note, issuerClients(want, got)),
		evidence: []mcptap.Evidence{ev(x, "body.issuer", want, got, note)}}}
}

func ruleNoS256(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil {
		return nil
	}
	for _, m := range x.asm.CodeChallengeMethodsSupported {
		if m == "S256" {
			return nil
		}
	}
	got := strings.Join(x.asm.CodeChallengeMethodsSupported, ",")
	return []hit{{key: x.key + "|" + got,
		detail:   fmt.Sprintf("%s does not list S256 in code_challenge_methods_supported (%s). MCP clients MUST refuse such a server (common with Entra ID and Cognito OIDC documents).", x.base, orNone(got)),
		evidence: []mcptap.Evidence{ev(x, "body.code_challenge_methods_supported", `["S256"]`, showAbsent(got, got != ""), "")}}}
}

func ruleNoRegistration(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil || x.asm.RegistrationEndpoint != "" || x.asm.ClientIDMetadataDocumentSupported {
		return nil
	}
	return []hit{{key: x.key,
		detail:   fmt.Sprintf("%s has neither registration_endpoint nor client_id_metadata_document_supported: clients without a pre-configured client ID cannot register (\"does not support dynamic client registration\").", x.base),
		evidence: []mcptap.Evidence{ev(x, "body.registration_endpoint", "https://…/register", "(absent)", "client_id_metadata_document_supported also absent")}}}
}

func ruleInternalOrigin(t *Tracker, x *exInfo) []hit {
	if !isMetadata(x) || (x.prm == nil && x.asm == nil) {
		return nil
	}
	if !strings.HasPrefix(strings.ToLower(x.url), "https://") || InternalHost(x.url) {
		return nil
	}
	type field struct{ name, val string }
	var fs []field
	if x.prm != nil {
		fs = append(fs, field{"resource", x.prm.Resource})
		for _, a := range x.prm.AuthorizationServers {
			fs = append(fs, field{"authorization_servers", a})
		}
	}
	if x.asm != nil {
		fs = append(fs, field{"issuer", x.asm.Issuer}, field{"authorization_endpoint", x.asm.AuthorizationEndpoint},
			field{"token_endpoint", x.asm.TokenEndpoint}, field{"registration_endpoint", x.asm.RegistrationEndpoint})
	}
	for _, f := range fs {
		if f.val == "" {
			continue
		}
		if InternalHost(f.val) || strings.HasPrefix(strings.ToLower(f.val), "http://") {
			fault := mcptap.FaultServer
			if x.asm != nil {
				fault = mcptap.FaultAuthServer
			}
			return []hit{{key: x.key + "|" + f.name + "|" + f.val, fault: fault,
				detail:   fmt.Sprintf("The client reached %s over public https, but the document's %s is %q: the client (in ChatGPT's or Claude's cloud) cannot reach that.", x.base, f.name, f.val),
				evidence: []mcptap.Evidence{ev(x, "body."+f.name, originOf(x.url)+"/…", f.val, "")}}}
		}
	}
	return nil
}

// ruleChallengeInternal: the 401's resource_metadata names an origin the
// client cannot reach (loopback, a private address, plain http while the
// client came over https) or another host than the one the client used.
// BASE_URL left at localhost behind a tunnel is the usual cause.
func ruleChallengeInternal(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCPUnauthenticated || x.status() != 401 {
		return nil
	}
	rm := resourceMetadataParam(x.ex.RespHeader.Values("Www-Authenticate"))
	if rm == "" {
		return nil
	}
	u, err := url.Parse(rm)
	if err != nil || u.Host == "" {
		return nil
	}
	cu, err := url.Parse(x.url)
	if err != nil {
		return nil
	}
	host := u.Hostname()
	var why string
	switch {
	case isInternalHost(host) && !isInternalHost(cu.Hostname()):
		why = fmt.Sprintf("it names %s, an address only the server's own machine or network can reach", u.Host)
	case u.Scheme == "http" && cu.Scheme == "https":
		why = "it is plain http while the client came over https"
	case !strings.EqualFold(u.Host, cu.Host):
		why = fmt.Sprintf("it names %s while the client connected to %s", u.Host, cu.Host)
	default:
		return nil
	}
	return []hit{{key: x.key + "|" + rm,
		detail:   fmt.Sprintf("The 401 challenge's resource_metadata is %q: %s. The client cannot fetch the protected resource metadata from there and stops before discovery.", rm, why),
		fix:      "Build resource_metadata from the public URL the client uses (configure BASE_URL / the issuer to the tunnel's https origin), not from the address the server listens on.",
		evidence: []mcptap.Evidence{ev(x, "header.WWW-Authenticate", cu.Scheme+"://"+cu.Host+"/.well-known/oauth-protected-resource…", rm, "")}}}
}

// resourceMetadataParam reads resource_metadata from the Bearer challenge,
// with the same parser the no-challenge rule uses.
func resourceMetadataParam(hdrs []string) string {
	chs, _ := oauthex.ParseWWWAuthenticate(hdrs)
	for _, c := range chs {
		if c.Scheme == "bearer" && c.Params["resource_metadata"] != "" {
			return c.Params["resource_metadata"]
		}
	}
	return ""
}

func sessionASMetadataMissing(t *Tracker) []hit {
	byOrigin := map[string][]*exInfo{}
	var order []string
	for _, a := range t.asms {
		o := originOf(a.url)
		if _, ok := byOrigin[o]; !ok {
			order = append(order, o)
		}
		byOrigin[o] = append(byOrigin[o], a)
	}
	var out []hit
	for _, o := range order {
		xs := byOrigin[o]
		missing := true
		for _, a := range xs {
			missing = missing && (a.status() == 404 || a.status() == 410)
		}
		if !missing {
			continue
		}
		var urls []string
		for _, a := range xs {
			urls = append(urls, a.base)
		}
		last := xs[len(xs)-1]
		out = append(out, hit{anchor: last.id(), key: o + "|as-missing", exchanges: ids(xs...),
			detail:   fmt.Sprintf("Every authorization server metadata location the client tried on %s answered 404: %s. Without it the client knows no authorize, token or registration endpoint.", o, strings.Join(urls, ", ")),
			evidence: []mcptap.Evidence{ev(last, "status", "200 application/json at one of them", "404 at all", "")}})
	}
	return out
}

// preflightFor names what an OPTIONS preflight was for, from the endpoint
// it asked about, and whose fault a refusal is ("" when it is no OAuth or
// MCP endpoint).
func (t *Tracker) preflightFor(x *exInfo) (string, mcptap.Fault) {
	p := strings.ToLower(pathOf(x.base))
	switch {
	case strings.Contains(p, "/.well-known/oauth-protected-resource"):
		return "the protected resource metadata", mcptap.FaultServer
	case strings.Contains(p, "/.well-known/oauth-authorization-server"), strings.Contains(p, "/.well-known/openid-configuration"):
		return "the authorization server metadata", mcptap.FaultAuthServer
	case t.tokenEP[x.key]:
		return "the token endpoint", mcptap.FaultAuthServer
	case t.regEP[x.key]:
		return "the registration endpoint", mcptap.FaultAuthServer
	case t.mcpEP[x.key]:
		return "the MCP endpoint", mcptap.FaultServer
	}
	return "", ""
}

// corsAnswerUnreadable: a browser's cross-origin fetch (it carries an
// Origin other than the URL's own) to a metadata, registration, token or
// MCP endpoint was answered without Access-Control-Allow-Origin for that
// origin. A request CORS calls simple (a form-encoded token request) needs
// no preflight, so this is where the server's missing CORS shows: it did
// the work (a code redeemed, a token issued) and the page cannot read it.
func corsAnswerUnreadable(t *Tracker, x *exInfo) []hit {
	origin := x.reqH("Origin")
	if origin == "" || origin == "null" || strings.EqualFold(origin, originOf(x.url)) || x.status() == 0 {
		return nil
	}
	if len(x.ex.RespHeader) == 0 {
		return nil // the answer's headers were not recorded: not checked
	}
	if m := strings.ToLower(x.reqH("Sec-Fetch-Mode")); m == "navigate" || m == "no-cors" {
		return nil // a form submission or an opaque fetch: nothing for the page to read
	}
	what, fault := t.preflightFor(x)
	if what == "" {
		return nil
	}
	acao := x.respH("Access-Control-Allow-Origin")
	if acao == "*" || acao == origin {
		return nil
	}
	return []hit{{key: x.key + "|cors-answer", fault: fault,
		detail:   fmt.Sprintf("The browser's cross-origin %s %s from %s was answered %d without Access-Control-Allow-Origin for %s: the server did the work, and the page (MCP Inspector, a web app) cannot read %s's answer.", x.method(), x.base, origin, x.status(), origin, what),
		evidence: []mcptap.Evidence{ev(x, "header.Access-Control-Allow-Origin", origin+" or *", showAbsent(acao, acao != ""), "")}}}
}

func isPreflight(x *exInfo) bool {
	return x.method() == "OPTIONS" && x.reqH("Access-Control-Request-Method") != ""
}

func ruleCORSPreflight(t *Tracker, x *exInfo) []hit {
	if !t.complete(x) {
		return nil
	}
	if !isPreflight(x) {
		return corsAnswerUnreadable(t, x)
	}
	what, fault := t.preflightFor(x)
	if what == "" {
		return nil
	}
	origin := x.reqH("Origin")
	acao := x.respH("Access-Control-Allow-Origin")
	var why, want, got string
	switch {
	case x.status() >= 400 || x.status() == 0 && !x.statusUnrecorded():
		// (A status that was not recorded is not judged; the headers are.)
		why, want, got = fmt.Sprintf("answered %d", x.status()), "2xx with CORS headers", fmt.Sprint(x.status())
	case acao == "" || (acao != "*" && acao != origin):
		why, want, got = "no Access-Control-Allow-Origin for "+origin, origin+" or *", showAbsent(acao, acao != "")
	default:
		allowed := strings.ToLower(x.respH("Access-Control-Allow-Headers"))
		for _, h := range strings.Split(x.reqH("Access-Control-Request-Headers"), ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h != "" && allowed != "*" && !strings.Contains(","+strings.ReplaceAll(allowed, " ", "")+",", ","+h+",") {
				why, want, got = "header "+h+" not allowed", h, showAbsent(allowed, allowed != "")
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return []hit{{key: x.key + "|cors", fault: fault,
		detail:   fmt.Sprintf("The browser's CORS preflight (OPTIONS %s from %s, for %s) was refused: %s. A browser-based client (MCP Inspector, a web app) then cannot read %s.", x.base, orNone(origin), x.reqH("Access-Control-Request-Method"), why, what),
		evidence: []mcptap.Evidence{ev(x, "header.Access-Control-Allow-Origin", want, got, why)}}}
}
