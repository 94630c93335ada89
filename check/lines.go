package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// own is a conclusion only check can draw: a check.* rule of the catalogue.
type own struct {
	severity mcptap.Severity
	fault    mcptap.Fault
	fix      string
}

// checkRules are the check.* rules (docs/FINDINGS.md, "check").
var checkRules = map[mcptap.RuleID]own{
	mcptap.RuleCheckHTTPS: {mcptap.SevError, mcptap.FaultServer,
		"Serve the MCP endpoint over https at a public host (a tunnel: ngrok, cloudflared); cloud platforms connect from their own servers."},
	mcptap.RuleCheckNotProtected: {mcptap.SevInfo, mcptap.FaultServer,
		"Nothing to fix if the server is meant to be public; otherwise answer unauthenticated requests with 401 and a WWW-Authenticate challenge."},
	mcptap.RuleCheckRegistrationUnreachable: {mcptap.SevError, mcptap.FaultAuthServer,
		"Serve the registration_endpoint the metadata names (POST, application/json), or remove it from the metadata and offer client ID metadata documents."},
	mcptap.RuleCheckCIMDNotAccepted: {mcptap.SevError, mcptap.FaultAuthServer,
		"Advertise client_id_metadata_document_supported: true and accept the platform's auth method (none for public clients; private_key_jwt for ChatGPT's per-app documents)."},
	mcptap.RuleCheckIssForStableRedirect: {mcptap.SevWarning, mcptap.FaultAuthServer,
		"Send iss in authorization responses (RFC 9207) and advertise authorization_response_iss_parameter_supported: true; until then allow-list each connector's https://chatgpt.com/connector/oauth/{id} callback."},
	mcptap.RuleCheckAuthorizeRefused: {mcptap.SevError, mcptap.FaultAuthServer,
		"Read the answer's body: the authorization server refuses the platform's authorize request (client, redirect_uri, resource or scope) before any login."},
}

// spec is one checklist requirement.
type spec struct {
	id, title string
	rules     []mcptap.RuleID
	kinds     []mcptap.HopKind        // a finding counts for this line when it names an exchange of these kinds (nil: any)
	applies   func(pr *prober) string // "" when the line applies, else why not
	reached   func(pr *prober) string // "" when the probe got far enough to tell, else why not
	conclude  func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence)
}

func always(*prober) string { return "" }

func checklist() []spec {
	return []spec{
		{id: "https", title: "The MCP URL is https", applies: func(pr *prober) string {
			if !pr.p.Cloud {
				return pr.p.Title + " runs on the user's machine: a loopback http URL is fine"
			}
			return ""
		}, reached: always, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
			if pr.url.Scheme != "https" {
				return mcptap.RuleCheckHTTPS, fmt.Sprintf("%s connects from its own servers and needs an https URL; this one is %s.", pr.p.Title, pr.url.Scheme), []mcptap.Evidence{{Field: "url", Want: "https://…", Got: pr.url.String()}}
			}
			return "", "", nil
		}},
		{id: "challenge", title: "Unauthenticated requests get 401 with a WWW-Authenticate challenge",
			rules:   []mcptap.RuleID{mcptap.RuleDiscoveryNoChallenge, mcptap.RuleDiscoveryLazyAuth, mcptap.RuleMCPRedirect, mcptap.RuleMCPNotAcceptable},
			applies: always, reached: func(pr *prober) string {
				if pr.first == nil || pr.first.err != nil {
					return pr.stopped
				}
				if pr.first.status != 401 && pr.tools == nil && !isRedirect(pr.first.status) {
					return fmt.Sprintf("the MCP endpoint answered %d (%s)", pr.first.status, snippet(pr.first.body))
				}
				return ""
			}, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				if pr.tools != nil && pr.tools.status != 401 {
					return mcptap.RuleCheckNotProtected, fmt.Sprintf("initialize and tools/list were answered %d and %d without a token: the server does not ask for OAuth.", pr.first.status, pr.tools.status), nil
				}
				return "", "", nil
			}},
		{id: "challenge-public", title: "The challenge's resource_metadata is the public URL",
			rules: []mcptap.RuleID{mcptap.RuleDiscoveryChallengeInternal},
			applies: func(pr *prober) string {
				if pr.first != nil && pr.first.status == 401 && pr.challenge == "" {
					return "the challenge names no resource_metadata"
				}
				return ""
			}, reached: reachedChallenge},
		{id: "resource-metadata", title: "Protected resource metadata is public JSON naming an authorization server",
			rules: []mcptap.RuleID{mcptap.RuleDiscoveryNotJSON, mcptap.RuleDiscoveryNoAuthorizationServers, mcptap.RuleTunnelInterstitial, mcptap.RuleDiscoveryPRMPathFallback},
			kinds: []mcptap.HopKind{mcptap.HopDiscoveryResource}, applies: always, reached: reachedChallenge},
		{id: "resource", title: "Its resource is the MCP URL, on a public origin",
			rules: []mcptap.RuleID{mcptap.RuleDiscoveryResourceMismatch, mcptap.RuleDiscoveryInternalOrigin},
			kinds: []mcptap.HopKind{mcptap.HopDiscoveryResource}, applies: always, reached: func(pr *prober) string {
				if pr.prm == nil {
					return orStopped(pr, "no protected resource metadata was found")
				}
				return ""
			}},
		{id: "as-metadata", title: "Authorization server metadata found, issuer exact, endpoints public",
			rules: []mcptap.RuleID{mcptap.RuleDiscoveryAsMetadataMissing, mcptap.RuleDiscoveryNotJSON, mcptap.RuleDiscoveryIssuerMismatch, mcptap.RuleDiscoveryInternalOrigin},
			kinds: []mcptap.HopKind{mcptap.HopDiscoveryAuth}, applies: always, reached: reachedPRM},
		{id: "pkce", title: "PKCE S256 advertised", rules: []mcptap.RuleID{mcptap.RuleDiscoveryNoPKCES256}, applies: always, reached: reachedASM},
		{id: "registration", title: "The client can register",
			rules: []mcptap.RuleID{mcptap.RuleDiscoveryNoRegistration, mcptap.RuleRegisterRejected, mcptap.RuleRegisterApplicationType, mcptap.RuleRegisterBadResponse,
				mcptap.RuleRegisterThrottled, mcptap.RuleRegisterWrongHost},
			applies: always, reached: func(pr *prober) string {
				if why := reachedASM(pr); why != "" {
					return why
				}
				// Without --register only a GET is sent, and many servers
				// route only POST there (oidc-provider answers the GET 404):
				// an answer says the endpoint is reachable, not that it works.
				if pr.reg != nil && !pr.opts.Register && pr.reg.err == nil && (pr.reg.status == 404 || pr.reg.status >= 500) {
					return fmt.Sprintf("a GET of the registration endpoint %s answered %d, which many servers answer for a POST-only route: run with --register to try it", pr.reg.url, pr.reg.status)
				}
				return ""
			}, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				if pr.reg == nil || pr.opts.Register || pr.reg.err == nil {
					return "", "", nil
				}
				return mcptap.RuleCheckRegistrationUnreachable, fmt.Sprintf("The metadata names registration_endpoint %s, and it could not be reached: %s.", pr.reg.url, pr.reg.err),
					[]mcptap.Evidence{{Field: "registration_endpoint", Want: "an HTTP answer", Got: pr.reg.err.Error()}}
			}},
		{id: "cimd", title: "The platform's client ID metadata document would be accepted",
			rules: []mcptap.RuleID{mcptap.RuleRegisterCIMDFailed, mcptap.RuleRegisterCIMDAuthMethod, mcptap.RuleRegisterCIMDFallback},
			applies: func(pr *prober) string {
				switch {
				case !pr.opts.CIMD:
					return "run with --cimd to check it"
				case pr.p.CIMD == "":
					return pr.p.Title + " has no client ID metadata document"
				}
				return ""
			}, reached: reachedASM, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				if ok, _ := pr.asm["client_id_metadata_document_supported"].(bool); !ok {
					return mcptap.RuleCheckCIMDNotAccepted, "The authorization server metadata does not say client_id_metadata_document_supported: true.",
						[]mcptap.Evidence{{Field: "client_id_metadata_document_supported", Want: "true", Got: fmt.Sprint(pr.asm["client_id_metadata_document_supported"])}}
				}
				methods := strs(pr.asm["token_endpoint_auth_methods_supported"])
				for _, m := range pr.p.AuthMethods {
					if slices.Contains(methods, m) {
						return "", "", nil
					}
				}
				return mcptap.RuleCheckCIMDNotAccepted, fmt.Sprintf("%s's document (%s) authenticates with %s; the metadata accepts %v.", pr.p.Title, pr.p.CIMD, strings.Join(pr.p.AuthMethods, " or "), methods),
					[]mcptap.Evidence{{Field: "token_endpoint_auth_methods_supported", Want: strings.Join(pr.p.AuthMethods, " or "), Got: strings.Join(methods, " ")}}
			}},
		{id: "iss", title: "Authorization responses carry iss (RFC 9207) for the stable callback",
			applies: func(pr *prober) string {
				if !pr.p.NeedsIss {
					return pr.p.Title + " does not depend on it"
				}
				return ""
			}, reached: reachedASM, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				if ok, _ := pr.asm["authorization_response_iss_parameter_supported"].(bool); !ok {
					return mcptap.RuleCheckIssForStableRedirect, "The metadata does not advertise authorization_response_iss_parameter_supported: ChatGPT then uses a per-connector callback (https://chatgpt.com/connector/oauth/{id}) that has to be allow-listed for every connector, instead of its stable connector_platform_oauth_redirect.",
						[]mcptap.Evidence{{Field: "authorization_response_iss_parameter_supported", Want: "true", Got: fmt.Sprint(pr.asm["authorization_response_iss_parameter_supported"])}}
				}
				return "", "", nil
			}},
		{id: "authorize", title: "The authorize request gets a login or consent page",
			rules: []mcptap.RuleID{mcptap.RuleAuthorizeErrorReturned, mcptap.RuleAuthorizeErrorNotRedirected, mcptap.RuleAuthorizeRedirectURIUnregistered,
				mcptap.RuleAuthorizeRegisteredRedirectRefused, mcptap.RuleClientUnknown, mcptap.RuleAuthorizeResourceMismatch, mcptap.RuleAuthorizeMalformed},
			applies: always, reached: func(pr *prober) string {
				if pr.authz != nil {
					return ""
				}
				if pr.asm == nil {
					return orStopped(pr, "no authorization server metadata")
				}
				return "it needs a client: run with --register (creates one) or --cimd (uses the platform's metadata document)"
			}, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				if pr.authz.err != nil || pr.authz.status >= 400 {
					got := fmt.Sprintf("%d %s", pr.authz.status, snippet(pr.authz.body))
					if pr.authz.err != nil {
						got = pr.authz.err.Error()
					}
					return mcptap.RuleCheckAuthorizeRefused, fmt.Sprintf("The authorize request of client %s with redirect_uri %s was answered %s before any login.", pr.clientID, pr.p.RedirectURIs[0], got),
						[]mcptap.Evidence{{Field: "status", Want: "a login or consent page (200, or a redirect to sign-in)", Got: got}}
				}
				return "", "", nil
			}},
		{id: "edge", title: "The platform's authenticated-call User-Agent reaches the server",
			rules: []mcptap.RuleID{mcptap.RuleEdgeBlocked},
			applies: func(pr *prober) string {
				if !pr.edgeOn() {
					return "the edge probe is off (--edge)"
				}
				return ""
			}, reached: func(pr *prober) string {
				if pr.edge == nil {
					return orStopped(pr, "the edge probe was not sent")
				}
				return ""
			}, conclude: func(pr *prober) (mcptap.RuleID, string, []mcptap.Evidence) {
				a, b := pr.first, pr.edge
				if a.err == nil && b.err == nil && a.status == b.status {
					return "", "", nil
				}
				show := func(x *answer) string {
					if x.err != nil {
						return x.err.Error()
					}
					return fmt.Sprintf("%d %s", x.status, snippet(x.body))
				}
				return mcptap.RuleEdgeBlocked, fmt.Sprintf("The same unauthenticated initialize was answered %s with User-Agent %q and %s with %q: something in front of the server (a WAF or bot rule) treats the platform's authenticated calls differently.", show(a), pr.p.DiscoveryUA, show(b), pr.p.AuthUA),
					[]mcptap.Evidence{{Field: "status", Want: show(a) + " (the server's own answer)", Got: show(b), Note: "User-Agent " + pr.p.AuthUA}}
			}},
	}
}

func reachedChallenge(pr *prober) string {
	if pr.first == nil || pr.first.err != nil || (pr.first.status != 401 && pr.tools == nil) {
		return orStopped(pr, "no 401 challenge")
	}
	if pr.tools != nil && pr.tools.status != 401 {
		return "the server is not OAuth-protected"
	}
	return ""
}

func reachedPRM(pr *prober) string {
	if pr.prm == nil {
		return orStopped(pr, "no protected resource metadata")
	}
	return ""
}

func reachedASM(pr *prober) string {
	if pr.asm == nil {
		return orStopped(pr, "no authorization server metadata")
	}
	return ""
}

func orStopped(pr *prober, s string) string {
	if pr.stopped != "" {
		return pr.stopped
	}
	return s
}

func isRedirect(s int) bool { return s >= 300 && s < 400 }

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// judge runs the traffic rules over the platform's exchanges and turns
// their findings (and check's own conclusions) into the checklist.
func (pr *prober) judge(exs []mcptap.Exchange) PlatformResult {
	t, fds := analyse(exs)
	res := PlatformResult{Platform: pr.p.Name, Title: pr.p.Title, Created: pr.created, Requests: len(exs)}
	used := map[string]bool{}
	info := map[mcptap.RuleID]oauth.RuleInfo{}
	for _, r := range oauth.Catalogue() {
		info[r.ID] = r
	}
	for _, s := range checklist() {
		l := Line{ID: s.id, Title: s.title}
		if why := s.applies(pr); why != "" {
			l.Status, l.Detail = NA, why
			res.Lines = append(res.Lines, l)
			continue
		}
		// Findings of the line's rules, errors first.
		var hit *mcptap.Finding
		var notes []string
		for i := range fds {
			fd := &fds[i]
			if !slices.Contains(s.rules, fd.Rule) || !onKinds(t, fd, s.kinds) {
				continue
			}
			used[fd.ID] = true
			if fd.Severity == mcptap.SevInfo {
				notes = append(notes, fd.Detail)
				continue
			}
			if hit == nil || fd.Severity.Rank() > hit.Severity.Rank() {
				hit = fd
			}
		}
		switch {
		case hit != nil:
			l.Status, l.Rule, l.Severity, l.Fault, l.Detail, l.Fix, l.Evidence = Fail, hit.Rule, hit.Severity, hit.Fault, hit.Detail, hit.Fix, hit.Evidence
		case s.reached(pr) != "":
			l.Status, l.Detail = CouldNotTell, s.reached(pr)
		default:
			l.Status = Pass
			if s.conclude != nil {
				if rule, detail, evs := s.conclude(pr); rule != "" {
					l.Rule, l.Detail, l.Evidence = rule, detail, evs
					if o, ok := checkRules[rule]; ok {
						l.Severity, l.Fault, l.Fix = o.severity, o.fault, o.fix
					} else {
						r := info[rule]
						l.Severity, l.Fault, l.Fix = r.Severity, r.Fault, r.Fix
					}
					l.Status = Fail
					if l.Severity == mcptap.SevInfo {
						l.Status = Pass
					}
				}
			}
			if l.Detail == "" && len(notes) > 0 {
				l.Detail = strings.Join(notes, " ")
			}
		}
		res.Lines = append(res.Lines, l)
	}
	for _, fd := range fds {
		// The check stops at the authorize's first answer by design.
		if used[fd.ID] || fd.Rule == mcptap.RuleFlowIncomplete || fd.Severity == mcptap.SevInfo {
			continue
		}
		res.Other = append(res.Other, fd)
	}
	return res
}

// onKinds: the finding names an exchange of one of kinds (any, if none).
func onKinds(t *oauth.Tracker, fd *mcptap.Finding, kinds []mcptap.HopKind) bool {
	if len(kinds) == 0 {
		return true
	}
	for _, id := range fd.Exchanges {
		if k, ok := t.Hop(id); ok && slices.Contains(kinds, k) {
			return true
		}
	}
	return false
}
