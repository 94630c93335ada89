package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

func ruleRegisterRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 400 || x.status() >= 500 || !t.complete(x) {
		return nil
	}
	var e oauthex.ClientRegistrationError
	m := jsonObject(x.ex.RespBody)
	e.ErrorCode, e.ErrorDescription = str(m, "error"), str(m, "error_description")
	var req oauthex.ClientRegistrationMetadata
	_ = jsonUnmarshal(x.ex.ReqBody, &req)
	refused := ""
	for _, u := range req.RedirectURIs {
		if strings.Contains(e.ErrorDescription, u) {
			refused = u
		}
	}
	got := strings.TrimSpace(e.ErrorCode + " " + e.ErrorDescription)
	if got == "" {
		got = fmt.Sprintf("%d %s", x.status(), truncate(string(x.ex.RespBody), 120))
	}
	d := fmt.Sprintf("Registration answered %d (%s). The client asked for redirect_uris %v.", x.status(), got, req.RedirectURIs)
	if refused != "" {
		d += fmt.Sprintf(" Refused URI: %s.", refused)
	}
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "body.redirect_uris", "accepted", strings.Join(req.RedirectURIs, " "), got)}}}
}

var unknownClientRE = regexp.MustCompile(`(?i)(unknown|unrecognized|unrecognised|no such)[ _-]?client|client[ _-]?(id )?(not found|unknown|does not exist|is not registered)`)

func ruleClientUnknown(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopAuthorize && x.kind != mcptap.HopToken) || x.status() < 400 || !t.complete(x) {
		return nil
	}
	body := string(x.ex.RespBody)
	if x.kind == mcptap.HopToken && !strings.Contains(body, "invalid_client") {
		return nil
	}
	if !unknownClientRE.MatchString(body) {
		return nil
	}
	if _, ok := x.q.Lookup("client_id"); x.kind == mcptap.HopAuthorize && !ok {
		return nil // no client to be unknown: authorize.no-client-id
	}
	cid := x.q.Get("client_id")
	if x.kind == mcptap.HopToken {
		cid = tokenClientID(x)
	}
	reg := "no registration of it was seen in this session"
	var fault mcptap.Fault
	if r := t.regs[cid]; r != nil {
		reg = "it was registered at " + r.at().Format("15:04:05") + " in this session (the server forgot it: restart, in-memory store?)"
		if at, here := hostPortOf(r.base), hostPortOf(x.base); at != here {
			// SEP-2352 (2026-07-28): credentials are keyed by issuer; a
			// client_id from one authorization server means nothing at
			// another (an AS migration, a second issuer).
			reg = fmt.Sprintf("it was registered at another authorization server (%s, at %s) and sent to this one (%s): the client must keep its registration per issuer and register again here (SEP-2352)", at, r.at().Format("15:04:05"), here)
			fault = mcptap.FaultClient
		}
	}
	return []hit{{fault: fault, detail: fmt.Sprintf("The authorization server answered %d to client_id %q: %s. %s.", x.status(), cid, truncate(body, 160), reg),
		evidence: []mcptap.Evidence{ev(x, "query.client_id", "a registered client", cid, truncate(body, 160))}}}
}

func ruleRegisterThrottled(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || (x.status() != 429 && x.status() != 503) || !t.complete(x) {
		return nil
	}
	body := truncate(string(x.ex.RespBody), 160)
	d := fmt.Sprintf("Registration answered %d (%s).", x.status(), orNone(body))
	if ra := x.respH("Retry-After"); ra != "" {
		d += " Retry-After: " + ra + "."
	}
	if n := len(t.regBodies[x.regKey]); x.regKey != "" && n > 1 {
		d += fmt.Sprintf(" The same client metadata was registered %d times in this session: a client that registers on every connect runs into the quota.", n)
	}
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "status", "201", fmt.Sprint(x.status()), body)}}}
}

func ruleRegisterBadResponse(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 200 || x.status() >= 300 || !t.complete(x) {
		return nil
	}
	if x.respBodyUnrecorded() {
		x.noteUnchecked("the registration response body was not recorded: client_id and the echoed metadata were not checked")
		return nil
	}
	var req oauthex.ClientRegistrationMetadata
	_ = jsonUnmarshal(x.ex.ReqBody, &req)
	m := jsonObject(x.ex.RespBody)
	var why []string
	var evs []mcptap.Evidence
	if str(m, "client_id") == "" {
		why = append(why, "the response has no client_id")
		evs = append(evs, ev(x, "body.client_id", "a client_id", "(absent)", ""))
	}
	if x.status() != 201 {
		why = append(why, fmt.Sprintf("status %d instead of 201 Created (RFC 7591 §3.2.1)", x.status()))
		evs = append(evs, ev(x, "status", "201", fmt.Sprint(x.status()), ""))
	}
	if got, ok := m["redirect_uris"].([]any); ok && len(req.RedirectURIs) > 0 {
		var echoed []string
		for _, u := range got {
			if s, ok := u.(string); ok {
				echoed = append(echoed, s)
			}
		}
		if strings.Join(echoed, " ") != strings.Join(req.RedirectURIs, " ") {
			why = append(why, "the echoed redirect_uris differ from the requested ones")
			evs = append(evs, ev(x, "body.redirect_uris", strings.Join(req.RedirectURIs, " "), strings.Join(echoed, " "), "requested vs echoed"))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return []hit{{detail: "Registration succeeded but " + strings.Join(why, "; ") + ". Strict clients (those that check the status or compare the echoed metadata) stop here.", evidence: evs}}
}

// registrationKey is the registration endpoint and the client metadata a
// registration asked for, as one string: the same client registering again
// at the same authorization server sends the same.
func registrationKey(x *exInfo) string {
	m := jsonObject(x.ex.ReqBody)
	if m == nil {
		return ""
	}
	b, _ := json.Marshal(m) // map keys sorted: the same metadata in any order
	return x.key + " " + string(b)
}

func ruleRegisterChurn(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 200 || x.status() >= 300 || !t.complete(x) {
		return nil
	}
	k := x.regKey // learnt once
	same := t.regBodies[k]
	if k == "" || len(same) < 2 || same[0] == x {
		return nil
	}
	first := same[0]
	m := jsonObject(x.ex.ReqBody)
	return []hit{{key: "churn|" + shortHash(k), exchanges: ids(first, x),
		detail: fmt.Sprintf("The client registered again with the same metadata (client_name %q, redirect_uris %v): %d registrations since %s. Each one creates a client at the authorization server; a client that registers on every connect fills its quota (Keycloak's Max Clients policy, 429s).",
			str(m, "client_name"), m["redirect_uris"], len(same), first.at().Format("15:04:05")),
		evidence: []mcptap.Evidence{ev(x, "body", "one registration, its client_id kept", fmt.Sprintf("%d identical registrations", len(same)), "")}}}
}

func ruleRegisterWrongHost(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || !t.complete(x) || t.regEP[x.key] {
		return nil
	}
	var named []string
	for _, a := range t.asms {
		if a.asm != nil && a.asm.RegistrationEndpoint != "" && a.order < x.order {
			named = append(named, a.asm.RegistrationEndpoint)
		}
	}
	if len(named) == 0 {
		return nil // no metadata seen: nothing says where registration belongs
	}
	return []hit{{key: x.key + "|wrong-host",
		detail:   fmt.Sprintf("The client sent its registration to %s, but the authorization server metadata names %s. The client guessed the endpoint (often the MCP server's origin) instead of reading it from the metadata.", x.base, strings.Join(named, ", ")),
		evidence: []mcptap.Evidence{ev(x, "url", strings.Join(named, " "), x.base, "registration_endpoint from the metadata")}}}
}

// isLoopbackOrCustomScheme: a redirect URI of a native app (RFC 8252).
func isLoopbackOrCustomScheme(u string) bool {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok {
		scheme, _, ok = strings.Cut(u, ":")
	}
	scheme = strings.ToLower(scheme)
	return ok && (scheme != "http" && scheme != "https" || isLoopbackURL(u))
}

func ruleRegisterApplicationType(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRegister || x.status() < 400 || x.status() >= 500 || !t.complete(x) {
		return nil
	}
	m := jsonObject(x.ex.ReqBody)
	if m == nil || m["application_type"] != nil {
		return nil
	}
	var req oauthex.ClientRegistrationMetadata
	_ = jsonUnmarshal(x.ex.ReqBody, &req)
	native := ""
	for _, u := range req.RedirectURIs {
		if isLoopbackOrCustomScheme(u) {
			native = u
		}
	}
	resp := jsonObject(x.ex.RespBody)
	code, desc := str(resp, "error"), strings.ToLower(str(resp, "error_description"))
	if native == "" || (code != "invalid_redirect_uri" && code != "invalid_client_metadata") {
		return nil
	}
	if strings.Contains(desc, "allowlist") || strings.Contains(desc, "allow list") || strings.Contains(desc, "allow-list") || strings.Contains(desc, "whitelist") {
		return nil // refused by the server's list of allowed redirects, not by the web default
	}
	return []hit{{detail: fmt.Sprintf("The registration asks for the native redirect %s without application_type; the authorization server took the OpenID default (web, which allows only https redirects on public hosts) and answered %s. The 2026-07-28 MCP spec makes application_type a MUST (SEP-837).", native, code),
		evidence: []mcptap.Evidence{ev(x, "body.application_type", "native", "(absent)", "redirect "+native)}}}
}

func ruleRegisterCIMDFallback(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopDiscoveryAuth || x.asm == nil || !x.asm.ClientIDMetadataDocumentSupported || !t.complete(x) {
		return nil
	}
	methods := x.asm.TokenEndpointAuthMethodsSupported
	if len(methods) == 0 || contains(methods, "none") {
		return nil
	}
	return []hit{{key: x.key + "|cimd-fallback",
		detail:   fmt.Sprintf("The metadata says client_id_metadata_document_supported, but token_endpoint_auth_methods_supported is %v without \"none\". Clients that use a metadata document as a public client (Claude) then fall back to dynamic registration.", methods),
		evidence: []mcptap.Evidence{ev(x, "body.token_endpoint_auth_methods_supported", "includes none", strings.Join(methods, " "), "")}}}
}

// isURLClientID: a client_id that is a URL, a client ID metadata document.
// The draft requires https; an http one (a loopback test setup, such as the
// lab's) is still a document client to judge, not an opaque ID.
func isURLClientID(c string) bool {
	return strings.HasPrefix(c, "https://") || strings.HasPrefix(c, "http://")
}

func ruleRegisterCIMDAuthMethod(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopToken || x.status() < 400 || !t.complete(x) {
		return nil
	}
	cid := tokenClientID(x)
	if !isURLClientID(cid) || tokenAuthMethod(x) != "private_key_jwt" || tokenError(x) != "invalid_client" {
		return nil
	}
	supported := "not seen"
	for _, a := range t.asms {
		if a.asm != nil && len(a.asm.TokenEndpointAuthMethodsSupported) > 0 {
			supported = strings.Join(a.asm.TokenEndpointAuthMethodsSupported, " ")
		}
	}
	if slices.Contains(strings.Fields(supported), "private_key_jwt") {
		// The server says it takes private_key_jwt: the refusal is of this
		// assertion (token.client-assertion-invalid names what is wrong with
		// it), or of the document, not of the method.
		return nil
	}
	return []hit{{detail: fmt.Sprintf("The client %s authenticated with private_key_jwt (the method its metadata document declares) and the token endpoint answered invalid_client. The metadata's token_endpoint_auth_methods_supported: %s. ChatGPT's per-app documents use private_key_jwt; an authorization server that accepts only none refuses them.", cid, supported),
		evidence: []mcptap.Evidence{ev(x, "form.client_assertion_type", "accepted", "invalid_client", "token_endpoint_auth_methods_supported: "+supported)}}}
}

func ruleRegisterCIMDFailed(t *Tracker, x *exInfo) []hit {
	if (x.kind != mcptap.HopAuthorize && x.kind != mcptap.HopToken) || x.status() < 400 || !t.complete(x) {
		return nil
	}
	cid := x.q.Get("client_id")
	if x.kind == mcptap.HopToken {
		cid = tokenClientID(x) // a refused method or assertion is named by the rules this one yields to
	}
	body := string(x.ex.RespBody)
	if !isURLClientID(cid) || !(unknownClientRE.MatchString(body) || strings.Contains(body, "invalid_client")) {
		return nil
	}
	d := fmt.Sprintf("The client_id is a metadata document URL (%s) and the authorization server answered %d %s: it did not fetch the document, the fetch failed, or the document did not match.", cid, x.status(), truncate(body, 120))
	for _, o := range t.list {
		if o.order < x.order && o.base == cid {
			d += fmt.Sprintf(" The document fetch was recorded: GET %s → %d %s.", cid, o.status(), orNone(o.respH("Content-Type")))
			if isEdgeResponse(o) {
				d += " An edge answered it with a bot challenge."
			}
		}
	}
	d += " The authorization server's own fetch leaves from its host; route it through mcptap (HTTPS_PROXY for a local authorization server) to see it."
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "client_id", "a fetched, matching metadata document", cid, truncate(body, 120))}}}
}

// registrationUndecodable says why client cannot read the registration
// answer x although it follows RFC 7591, from the client's own decoding
// (read in its source); "" when nothing is known. The MCP Go SDK v1.8.0
// declares the registration's jwks a string (oauthex
// .ClientRegistrationMetadata.JWKS) where RFC 7591 §2 has a JWK Set, an
// object; Ory Hydra answers every registration with one ({} when the
// client sent none).
func registrationUndecodable(client string, x *exInfo) string {
	if client != ClientGo || x.kind != mcptap.HopRegister || !x.succeeded() || x.respBodyUnrecorded() {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(x.ex.RespBody, &m) != nil {
		return ""
	}
	if j := bytes.TrimSpace(m["jwks"]); len(j) > 0 && j[0] == '{' {
		// The value is not quoted: a JWK set from the wire may hold a
		// private key a broken client sent.
		return "has \"jwks\" as a JSON object (a JWK Set, as RFC 7591 §2 defines it), and the MCP Go SDK (v1.8.0: oauthex.ClientRegistrationMetadata.JWKS is a string) fails to decode it (\"failed to decode successful registration response\") and goes no further; Ory Hydra answers every registration with jwks."
	}
	return ""
}
