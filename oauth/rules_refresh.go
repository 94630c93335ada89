package oauth

import (
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
