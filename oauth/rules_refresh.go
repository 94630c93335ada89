package oauth

import (
	"bytes"
	"fmt"
	"time"

	"github.com/mcptap/mcptap"
)

// raceWindow: refreshes of one token this close together come from clients
// racing each other, not from a retry after a failure.
const raceWindow = 30 * time.Second

// stormCount: this many refusals of one refresh token is a retry storm.
const stormCount = 5

// refreshGroups are the flow's refreshes by the refresh token they
// redeemed, in order.
func refreshGroups(f *flow) [][]*exInfo {
	if len(f.refreshes) < 2 {
		if len(f.refreshes) == 0 {
			return nil
		}
		return [][]*exInfo{f.refreshes}
	}
	idx := map[string]int{}
	var out [][]*exInfo
	for _, r := range f.refreshes {
		rt := r.form.Get("refresh_token")
		if rt == "" || isRedacted(rt) {
			continue
		}
		i, ok := idx[rt]
		if !ok {
			i = len(out)
			idx[rt] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

func ruleRefreshUnsupported(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopRefresh || x.status() < 400 || tokenError(x) != "unsupported_grant_type" || !t.complete(x) {
		return nil
	}
	d := "The refresh was answered unsupported_grant_type: the authorization server does not do refresh_token, so every expiry needs a new login."
	for _, a := range t.asms {
		if a.asm != nil && contains(a.asm.GrantTypesSupported, "refresh_token") {
			d += fmt.Sprintf(" Its metadata (%s) advertises refresh_token in grant_types_supported.", a.base)
			break
		}
	}
	return []hit{{detail: d, evidence: []mcptap.Evidence{ev(x, "body.error", "a new access token", "unsupported_grant_type", "")}}}
}

func ruleRefreshReuseRace(t *Tracker, f *flow) []hit {
	for _, g := range refreshGroups(f) {
		if len(g) < 2 {
			continue
		}
		var won, lost *exInfo
		for _, r := range g {
			switch {
			case successful(r) && won == nil:
				won = r
			case tokenError(r) == "invalid_grant" && lost == nil:
				lost = r
			}
		}
		if won == nil || lost == nil {
			continue
		}
		gap := lost.at().Sub(won.at())
		if gap < 0 {
			gap = -gap
		}
		if gap > raceWindow {
			continue
		}
		return []hit{{anchor: lost.id(), key: f.id + "|race", exchanges: ids(g...),
			detail:   fmt.Sprintf("The same refresh token was redeemed %d times within %s: one got a new token, the other was refused invalid_grant (the authorization server rotated it, and may now revoke the whole grant). Parallel calls that each refresh on 401 without a shared lock cause this; the connector dies until the user connects again.", len(g), words(gap)),
			evidence: []mcptap.Evidence{ev(lost, "form.refresh_token", "redeemed once", fmt.Sprintf("%d times", len(g)), "")}}}
	}
	return nil
}

func ruleRefreshRetryStorm(t *Tracker, f *flow) []hit {
	for _, g := range refreshGroups(f) {
		var failed []*exInfo
		for _, r := range g {
			if r.status() >= 400 {
				failed = append(failed, r)
			}
		}
		if len(failed) < stormCount || len(failed) != len(g) {
			continue
		}
		last := failed[len(failed)-1]
		return []hit{{anchor: last.id(), key: f.id + "|storm", exchanges: ids(failed...),
			detail:   fmt.Sprintf("The same refresh token was refused %d times over %s (%s), and the authorization server never told the client to stop (revoking the grant, or an error that ends retries).", len(failed), words(last.at().Sub(failed[0].at())), tokenError(last)),
			evidence: []mcptap.Evidence{ev(last, "body.error", "one refusal that ends the grant", fmt.Sprintf("%d refusals", len(failed)), tokenError(last))}}}
	}
	return nil
}

func ruleRefreshResourceDrift(t *Tracker, f *flow) []hit {
	if f.a == nil || !f.hasResource {
		return nil
	}
	for _, r := range f.refreshes {
		got, ok := r.form.Lookup("resource")
		if ok && (got == f.resource || isRedacted(got)) {
			continue
		}
		return []hit{{anchor: r.id(), key: f.id + "|resource-drift", exchanges: ids(f.a, r),
			detail:   fmt.Sprintf("The authorize asked for resource %q; the refresh sends %s. The refreshed token may be issued for another audience (or none) and then refused by the MCP server.", f.resource, showAbsent(got, ok)),
			evidence: []mcptap.Evidence{ev(r, "form.resource", f.resource, showAbsent(got, ok), "")}}}
	}
	return nil
}

func ruleAssertionRejected(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopToken || !isAssertionGrant(x) || x.status() < 400 || !t.complete(x) || isNonceChallenge(x) {
		return nil // a DPoP nonce challenge is the protocol, not a refusal (dpop.nonce-loop judges repeats)
	}
	gt := x.form.Get("grant_type")
	e := tokenError(x)
	d := fmt.Sprintf("The %s token request was refused: %d %s.", gt, x.status(), truncate(string(x.ex.RespBody), 120))
	fault := mcptap.FaultAuthServer
	var evs []mcptap.Evidence
	if a := x.form.Get("assertion"); a != "" {
		jt := DecodeJWT(a)
		if jt.Kind == "jwt" && jt.Claims != nil {
			aud := jt.Audience()
			var issuers []string
			for _, m := range t.asms {
				if m.asm != nil {
					issuers = append(issuers, m.asm.Issuer)
				}
			}
			audOK := len(issuers) == 0
			for _, i := range issuers {
				audOK = audOK || contains(aud, i)
			}
			if !audOK {
				d += fmt.Sprintf(" The assertion's aud %v is not this authorization server's issuer %v.", aud, issuers)
				evs = append(evs, ev(x, "assertion.aud", fmt.Sprint(issuers), fmt.Sprint(aud), ""))
				fault = mcptap.FaultClient
			}
			if c, ok := jt.Claims["client_id"].(string); ok && c != "" && x.form.Get("client_id") != "" && c != x.form.Get("client_id") {
				d += fmt.Sprintf(" Its client_id claim %q is not the authenticated client %q.", c, x.form.Get("client_id"))
				evs = append(evs, ev(x, "assertion.client_id", x.form.Get("client_id"), c, ""))
				fault = mcptap.FaultClient
			}
			if exp, ok := jt.Time("exp"); ok && exp.Before(x.at()) {
				d += fmt.Sprintf(" It expired at %s, before the request.", exp.Format("15:04:05"))
				evs = append(evs, ev(x, "assertion.exp", "after "+x.at().Format("15:04:05"), exp.Format("15:04:05"), ""))
				fault = mcptap.FaultClient
			}
			if r, ok := jt.Claims["resource"].(string); ok && x.form.Get("resource") != "" && r != x.form.Get("resource") {
				d += fmt.Sprintf(" Its resource claim %q differs from the request's resource %q.", r, x.form.Get("resource"))
				evs = append(evs, ev(x, "assertion.resource", x.form.Get("resource"), r, ""))
				fault = mcptap.FaultClient
			}
		} else if isRedacted(a) {
			d += " The assertion is redacted in this recording: its claims were not checked."
		}
	}
	if len(evs) == 0 {
		evs = append(evs, ev(x, "body.error", "an access token", orNone(e), ""))
		if e == "invalid_client" || e == "unauthorized_client" {
			d += " The claims that can be read are consistent: the authorization server does not accept this client for this grant (its policy or its trust in the identity provider)."
		}
	}
	return []hit{{fault: fault, detail: d, evidence: evs}}
}

func ruleDPoPSchemeMismatch(t *Tracker, x *exInfo) []hit {
	if x.kind != mcptap.HopMCP || x.flow == nil || x.flow.tokenOK == nil || x.bearer == "" || x.bearer != x.flow.access || x.flow.tokenOK.tokenResp == nil {
		return nil
	}
	tt := str(x.flow.tokenOK.tokenResp, "token_type")
	proof := x.reqH("DPoP")
	var want, got string
	switch {
	case equalFold(tt, "DPoP") && !equalFold(x.scheme, "DPoP"):
		want, got = "Authorization: DPoP <token> with a DPoP proof", "Authorization: "+x.scheme
	case equalFold(tt, "DPoP") && proof == "":
		want, got = "a DPoP proof header", "(absent)"
	case equalFold(tt, "Bearer") && equalFold(x.scheme, "DPoP"):
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
