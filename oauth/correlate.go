package oauth

import (
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// attachInteraction puts a failed login or consent request of the
// authorization server into the attempt in progress there: the latest
// authorize on its origin that has no code yet.
func (t *Tracker) attachInteraction(x *exInfo) {
	f := t.authzOrigin[originOf(x.base)]
	if f == nil || f.code != "" || len(f.redirects) > 0 || !x.at().After(f.a.at()) {
		return
	}
	x.flow = f
	f.interactions = append(f.interactions, x)
	f.dirty = true
}

func (t *Tracker) attachLink(f *flow, x *exInfo) {
	x.flow = f
	f.links = append(f.links, x)
	f.dirty = true
}

// place puts a classified exchange into a flow (or parks it until the next
// authorize of its origin).
func (t *Tracker) place(x *exInfo) {
	x.placed = true
	switch x.kind {
	case mcptap.HopAuthorize:
		t.placeAuthorize(x)
	case mcptap.HopCallback:
		st, hasSt := x.q.Lookup("state")
		raw, _ := x.q.Raw("state")
		f, inner := t.findByState(st, raw, hasSt, x.q.Get("code"), x.base)
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow, x.inner = f, inner
		f.add(x, mcptap.HopCallback, inner)
		if inner {
			f.inner.callbacks = append(f.inner.callbacks, x)
			if c := x.q.Get("code"); c != "" {
				t.byInnerCode[c] = f
			}
			f.handoffAt = time.Time{}
			t.unwait(t.waitCode, f)
		} else {
			f.callbacks = append(f.callbacks, x)
			if c := x.q.Get("code"); c != "" {
				t.byCode[c] = f
			}
		}
	case mcptap.HopCallbackCompletion:
		var f *flow
		var inner bool
		if full := str(jsonObject(x.ex.ReqBody), "full_redirect_url"); full != "" {
			_, rq := splitURL(full)
			q := ParseQuery(rq)
			st, hasSt := q.Lookup("state")
			raw, _ := q.Raw("state")
			base, _ := splitURL(full)
			f, inner = t.findByState(st, raw, hasSt, q.Get("code"), base)
		} else if i := strings.Index(x.base, "/links/oauth/state/"); i >= 0 {
			f = t.bySID[strings.Trim(x.base[i+len("/links/oauth/state/"):], "/")]
		} else if c := str(jsonObject(x.ex.ReqBody), "code"); c != "" {
			f = t.byCode[c] // older plugin callbacks post the code alone
		}
		if f == nil {
			f = t.newFlow(x)
		}
		_ = inner
		x.flow = f
		f.add(x, mcptap.HopCallbackCompletion, false)
		f.completions = append(f.completions, x)
	case mcptap.HopToken:
		code := x.form.Get("code")
		f := t.byCode[code]
		if f == nil || code == "" {
			if v := x.form.Get("code_verifier"); v != "" {
				f = t.byChallenge[S256(v)]
				if f == nil {
					f = t.byChallenge[v]
				}
			}
		}
		if f == nil {
			if g := t.innerToken(x); g != nil {
				x.flow, x.inner = g, true
				g.add(x, mcptap.HopToken, true)
				g.inner.tokens = append(g.inner.tokens, x)
				return
			}
			if isAssertionGrant(x) {
				// A grant without an authorize (client_credentials,
				// jwt-bearer) is keyed by client and grant: a retry (a DPoP
				// nonce, a refused assertion) joins the attempt until it
				// got its token; a new attempt starts at its discovery and
				// registration.
				key := tokenClientID(x) + "|" + x.form.Get("grant_type")
				if g := t.byGrant[key]; g != nil && g.tokenOK == nil {
					f = g
				} else {
					f = t.newFlow(x)
					t.setClient(f, tokenClientID(x))
					t.attachPending(f, x)
					t.byGrant[key] = f
				}
			} else {
				f = t.newFlow(x)
			}
		}
		x.flow = f
		f.add(x, mcptap.HopToken, false)
		f.tokens = append(f.tokens, x)
		if code != "" && code == f.code {
			t.unwait(t.waitCode, f)
		}
	case mcptap.HopRefresh:
		f := t.byRefresh[x.form.Get("refresh_token")]
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow = f
		f.add(x, mcptap.HopRefresh, false)
		f.refreshes = append(f.refreshes, x)
	case mcptap.HopRegister, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopMCPUnauthenticated:
		x.pending = true
		t.pending = append(t.pending, x)
		if len(t.pending) > maxPending {
			t.pending[0].pending = false
			t.pending = t.pending[1:]
		}
	case mcptap.HopMCP:
		if x.bearer == "" && x.ex.Mode == mcptap.ModeHAR && successful(x) {
			t.placeUnrecordedBearer(x)
			break
		}
		if f := t.byAccess[x.bearer]; f != nil && x.bearer != "" && t.opts.Forget && len(f.mcps) >= keptMCPCalls && successful(x) {
			f.moreMCP++ // counted, not kept
			f.dirty = true
			x.countedIn = f
		} else if f != nil && x.bearer != "" {
			x.flow = f
			f.add(x, mcptap.HopMCP, false)
			f.mcps = append(f.mcps, x)
			if !f.bearerSeen {
				f.bearerSeen = true
				t.unwait(t.waitBearer, f)
			}
		}
	}
	if x.redirect {
		t.placeRedirect(x)
	}
}

// placeUnrecordedBearer places an MCP request that a HAR file shows without
// an Authorization header and that the server answered 2xx: Chrome's default
// (sanitized) export, and other tools, strip Authorization, Cookie and
// Set-Cookie. It belongs to the latest flow whose token was issued before
// it; the server's 2xx is the evidence that
// the bearer was sent. The header itself is noted as not checked.
func (t *Tracker) placeUnrecordedBearer(x *exInfo) {
	var best *flow
	for i := len(t.tokened) - 1; i >= 0; i-- {
		if f := t.tokened[i]; !f.tokenAt().After(x.at()) {
			best = f
			break
		}
	}
	if best == nil {
		return
	}
	x.flow = best
	best.add(x, mcptap.HopMCP, false)
	best.mcps = append(best.mcps, x)
	x.noteUnchecked("the MCP request's Authorization header is not in the recording (a sanitized HAR export strips it): the bearer is taken as sent because the server answered 2xx")
	if !best.bearerSeen {
		best.bearerSeen = true
		t.unwait(t.waitBearer, best)
	}
}

// innerToken finds the flow whose inner leg a token request belongs to: the
// OAuth proxy redeeming the upstream provider's code (by that code, by its
// PKCE verifier, or by the inner redirect_uri when the provider has no PKCE).
func (t *Tracker) innerToken(x *exInfo) *flow {
	if c := x.form.Get("code"); c != "" {
		if f := t.byInnerCode[c]; f != nil {
			return f
		}
	}
	if v := x.form.Get("code_verifier"); v != "" {
		if f := t.byInnerChallenge[S256(v)]; f != nil {
			return f
		}
		if f := t.byInnerChallenge[v]; f != nil {
			return f
		}
	}
	if ru := x.form.Get("redirect_uri"); ru != "" {
		b, _ := splitURL(ru)
		if f := t.byInnerRedirect[b]; f != nil && f.inner != nil && !sameBase(f.inner.redirectURI, f.redirectURI) {
			return f
		}
	}
	return nil
}

func (t *Tracker) placeAuthorize(x *exInfo) {
	q := x.q
	if x.method() == "POST" && q.Get("response_type") == "" {
		q = x.form
	}
	st, hasSt := q.Lookup("state")
	var f *flow
	// The request an outer authorize redirected to is the inner leg (an MCP
	// server acting as OAuth proxy in front of an upstream IdP).
	if g := t.byLocation[x.url]; g != nil {
		f = g
	} else if g := t.byState[st]; g != nil && hasSt && st != "" && g.inner != nil && g.inner.state == st {
		f = g
	}
	if f != nil {
		x.flow, x.inner = f, true
		f.inner.authorize = x
		f.add(x, mcptap.HopAuthorize, true)
		if ru := q.Get("redirect_uri"); ru != "" {
			b, _ := splitURL(ru)
			t.redirectURIs[b] = true
		}
		return
	}
	if g := t.byState[st]; g != nil && hasSt && st != "" && g.state == st && g.a != nil && len(g.redirects) == 0 && len(g.tokens) == 0 {
		// The same attempt loaded again (login loop, reload). Once the
		// authorization server has answered it (a code, an error), an
		// authorize with the same state is a new attempt: clients with a
		// constant state and retry loops otherwise pile every attempt into
		// one flow, which is wrong and made the rules quadratic per flow.
		f = g
	} else {
		f = t.newFlow(x)
		f.a, f.aq = x, q
		f.state, f.hasState = st, hasSt
		f.stateRaw, _ = q.Raw("state")
		t.setClient(f, q.Get("client_id"))
		f.redirectURI = q.Get("redirect_uri")
		f.challenge = q.Get("code_challenge")
		f.method = q.Get("code_challenge_method")
		f.resource, f.hasResource = q.Lookup("resource")
		if st != "" {
			t.byState[st] = f
			t.indexSID(f, st)
		}
		if f.challenge != "" {
			t.byChallenge[f.challenge] = f
		}
		if f.redirectURI != "" {
			b, _ := splitURL(f.redirectURI)
			t.redirectURIs[b] = true
			t.byRedirect[b] = f
			t.attempts[b]++
		}
	}
	x.flow = f
	f.authz = append(f.authz, x)
	f.add(x, mcptap.HopAuthorize, false)
	t.authzOrigin[originOf(x.base)] = f
	if len(t.links) > 0 {
		for _, k := range []string{linkKey(x.url), "url:" + x.url} {
			if l := t.links[k]; l != nil {
				delete(t.links, k)
				t.attachLink(f, l)
			}
		}
	}
	t.attachPending(f, x)
	// Handed to an upstream identity provider: remember the inner leg.
	if x.redirects() && !x.redirect && x.loc != "" {
		lq := x.locQ
		if strings.Contains(" "+lq.Get("response_type")+" ", " code ") {
			in := &leg{location: x.loc, redirectURI: lq.Get("redirect_uri"), challenge: lq.Get("code_challenge")}
			in.state = lq.Get("state")
			in.stateRaw, _ = lq.Raw("state")
			f.inner = in
			t.byLocation[x.loc] = f
			if in.state != "" && in.state != f.state {
				t.byState[in.state] = f
			}
			if in.challenge != "" && in.challenge != f.challenge {
				t.byInnerChallenge[in.challenge] = f
			}
			if in.redirectURI != "" {
				b, _ := splitURL(in.redirectURI)
				t.redirectURIs[b] = true
				t.byInnerRedirect[b] = f
			}
			f.handoffAt, f.handoffEx = x.at(), x
			t.wait(t.waitCode, f, f.handoffAt)
		}
	}
}

func (t *Tracker) indexSID(f *flow, st string) {
	if strings.HasPrefix(st, prefixChatGPTState) {
		t.bySID[st] = f
		return
	}
	if m := decodeState(st); m != nil {
		for _, k := range []string{"s", "oauth_id"} {
			if s, ok := m[k].(string); ok && strings.HasPrefix(s, prefixChatGPTState) {
				t.bySID[s] = f
			}
		}
	}
}

// findByState finds the flow a returning authorization response belongs to:
// by state, then by code, then by a recognisable alteration of a recent
// state, then by redirect_uri. inner says it matched the inner leg.
func (t *Tracker) findByState(st, raw string, hasSt bool, code, base string) (*flow, bool) {
	if st != "" {
		if f := t.byState[st]; f != nil {
			return f, f.inner != nil && f.inner.state == st && f.state != st
		}
	}
	if code != "" {
		if f := t.byCode[code]; f != nil {
			return f, false
		}
	}
	if raw != "" {
		for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
			f := t.flows[i]
			if f.stateRaw != "" && compareState(f.stateRaw, raw) != AlterOther {
				return f, false
			}
			if f.inner != nil && f.inner.stateRaw != "" && compareState(f.inner.stateRaw, raw) != AlterOther {
				return f, true
			}
		}
	}
	if f := t.byRedirect[base]; f != nil {
		return f, f.isInnerReturn("", base)
	}
	for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
		f := t.flows[i]
		if f.isInnerReturn("", base) {
			return f, true
		}
	}
	return nil, false
}

// isInnerReturn says whether an authorization response (its state and target)
// belongs to the inner leg: it goes to the inner redirect_uri, which differs
// from the client's, or carries the inner state, which differs from the
// client's. A server that passes state and redirect_uri through unchanged
// has no separate inner return: the provider answers the client directly.
func (f *flow) isInnerReturn(st, base string) bool {
	if f.inner == nil {
		return false
	}
	if st != "" && st == f.inner.state && st != f.state {
		return true
	}
	return sameBase(base, f.inner.redirectURI) && !sameBase(f.inner.redirectURI, f.redirectURI)
}

// placeRedirect adds the redirect hop of a 3xx that carries code or error.
func (t *Tracker) placeRedirect(x *exInfo) {
	st, hasSt := x.locQ.Lookup("state")
	raw, _ := x.locQ.Raw("state")
	f := x.flow
	inner := false
	if f != nil {
		inner = f.isInnerReturn(st, x.locBase)
	} else {
		f, inner = t.findByState(st, raw, hasSt, "", x.locBase)
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow = f
	}
	x.redirInner = inner
	f.add(x, mcptap.HopRedirect, inner)
	if inner {
		return
	}
	f.redirects = append(f.redirects, x)
	if c := x.locQ.Get("code"); c != "" {
		t.byCode[c] = f
		if f.code == "" {
			f.code, f.codeAt, f.codeEx = c, x.at(), x
			f.handoffAt = time.Time{}
			t.wait(t.waitCode, f, f.codeAt)
		}
	}
}

// attachPending gives the new flow the discovery, registration and
// unauthenticated MCP hops that led to it: those on the authorize's host, on
// hosts whose metadata names it, and registrations of its client_id.
func (t *Tracker) attachPending(f *flow, a *exInfo) {
	if len(t.pending) == 0 {
		return
	}
	hosts := map[string]bool{hostPortOf(a.url): true}
	authBase, _ := splitURL(a.url)
	akey := endpointKey(authBase)
	issuers := map[string]bool{}
	for _, p := range t.pending {
		// a is the authorize, or the token request of a grant without one.
		if p.asm != nil && (endpointKey(p.asm.AuthorizationEndpoint) == akey || endpointKey(p.asm.TokenEndpoint) == akey) {
			hosts[hostPortOf(p.url)] = true
			issuers[strings.TrimSuffix(p.asm.Issuer, "/")] = true
		}
	}
	for _, p := range t.pending {
		if p.prm == nil {
			continue
		}
		for _, as := range p.prm.AuthorizationServers {
			if issuers[strings.TrimSuffix(as, "/")] || hosts[hostPortOf(as)] {
				hosts[hostPortOf(p.url)] = true
			}
		}
	}
	keep := t.pending[:0]
	for _, p := range t.pending {
		match := hosts[hostPortOf(p.url)]
		if p.kind == mcptap.HopRegister && p.reg != nil && p.reg.ClientID != "" {
			match = p.reg.ClientID == f.clientID
		}
		if match {
			p.pending = false
			p.flow = f
			f.add(p, p.kind, false)
			f.pre = append(f.pre, p)
		} else {
			keep = append(keep, p)
		}
	}
	for i := len(keep); i < len(t.pending); i++ {
		t.pending[i] = nil
	}
	t.pending = keep
}

// setClient names the flow's client_id and indexes the flow by it.
func (t *Tracker) setClient(f *flow, id string) {
	f.clientID = id
	if id != "" {
		t.byClient[id] = append(t.byClient[id], f)
	}
}
