package lab

import (
	"strings"
	"time"

	mcptap "github.com/mcptap/mcptap"
)

// Expect is what the analysis must conclude about a scenario: the verdict
// rule of its worst flow and the side it blames. Where the catalogue allows
// more than one reading (for example "client or user"), each accepted value
// is listed; the first is the one the scenario is built to show.
type Expect struct {
	Rules  []mcptap.RuleID `json:"rules"`
	Faults []mcptap.Fault  `json:"faults"`
	// Transform is the state.altered transformation the finding should name.
	Transform string `json:"transform,omitempty"`
}

// RulesText joins the expected rules with sep.
func (e Expect) RulesText(sep string) string {
	s := make([]string, len(e.Rules))
	for i, r := range e.Rules {
		s[i] = string(r)
	}
	return strings.Join(s, sep)
}

// Healthy reports whether the scenario expects a clean flow.
func (e Expect) Healthy() bool { return len(e.Rules) == 1 && e.Rules[0] == "ok" }

// Scenario is one connector setup with one fault (or none) switched on.
type Scenario struct {
	Name    string  `json:"name"`
	Title   string  `json:"title"`
	Seed    string  `json:"seed,omitempty"` // the user report it reproduces
	Profile Profile `json:"profile"`

	SeparateAS     bool `json:"separate_as,omitempty"`     // the authorization server has its own port
	OAuthProxy     bool `json:"oauth_proxy,omitempty"`     // the authorization server proxies to an inner identity provider
	AutoApprove    bool `json:"auto_approve,omitempty"`    // no consent page (an already consented user)
	CallbackDirect bool `json:"callback_direct,omitempty"` // the client's callback host is not behind mcptap (the server's view)
	CIMD           bool `json:"cimd,omitempty"`            // the client uses a client ID metadata document with private_key_jwt instead of registering
	IDJAG          bool `json:"id_jag,omitempty"`          // the workload presents an enterprise IdP's ID-JAG (jwt-bearer) instead of client_credentials

	Server ResourceFaults `json:"-"`
	AS     ASFaults       `json:"-"`
	Client ClientFaults   `json:"-"`

	Expect Expect `json:"expect"`
}

var (
	ok          = Expect{Rules: []mcptap.RuleID{"ok"}, Faults: []mcptap.Fault{mcptap.FaultNone}}
	asFault     = []mcptap.Fault{mcptap.FaultAuthServer}
	clientFault = []mcptap.Fault{mcptap.FaultClient}
	serverFault = []mcptap.Fault{mcptap.FaultServer}
)

func altered(t string) Expect {
	return Expect{Rules: []mcptap.RuleID{mcptap.RuleStateAltered}, Faults: asFault, Transform: t}
}

// Scenarios returns every scenario, healthy ones first.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "healthy-chatgpt", Title: "ChatGPT-like connector, server and authorization server on one origin, consent page, refresh", Profile: ProfileChatGPT, Expect: ok},
		{Name: "healthy-claude", Title: "Claude-like connector, authorization server on its own port", Profile: ProfileClaude, SeparateAS: true, Expect: ok},
		{Name: "healthy-vscode", Title: "VS Code-like IDE with a loopback callback, consent already given", Profile: ProfileVSCode, AutoApprove: true, Expect: ok},
		{Name: "healthy-workload-dpop", Title: "An agent without a user: client_credentials after dynamic registration, a DPoP-bound token, MCP calls with DPoP proofs (no authorize, no state)", Profile: ProfileWorkload, Expect: ok},
		{Name: "healthy-id-jag", Title: "An agent with an enterprise identity provider's ID-JAG: a jwt-bearer grant (no authorize, no state), a DPoP-bound token, MCP calls", Profile: ProfileWorkload, IDJAG: true, Expect: ok},
		{Name: "healthy-stepup", Title: "The server asks for the admin scope (403 insufficient_scope); the IDE authorizes again for the union of its scopes and calls the tool", Profile: ProfileVSCode, AutoApprove: true,
			Server: ResourceFaults{AdminScope: true}, Client: ClientFaults{StepUp: "union"}, Expect: ok},
		{Name: "healthy-dpop-nonce", Title: "The token endpoint asks for its DPoP nonce once; the workload puts it in its next proof", Profile: ProfileWorkload,
			AS: ASFaults{DPoPNonce: true}, Expect: ok},
		{Name: "healthy-cimd", Title: "A client identified by its client ID metadata document (private_key_jwt, inline JWKS), fetched by the authorization server; no registration", Profile: ProfileVSCode, AutoApprove: true, CIMD: true, Expect: ok},
		{Name: "healthy-oauth-proxy", Title: "ChatGPT-like connector; the authorization server is an OAuth proxy to an inner identity provider", Profile: ProfileChatGPT, OAuthProxy: true, Expect: ok},

		{Name: "state-dropped", Title: "The authorization server redirects back without the state", Seed: "001", Profile: ProfileChatGPT,
			AS: ASFaults{DropState: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleStateNotEchoed}, Faults: asFault}},
		{Name: "state-plus-to-space", Title: "The authorization server turns '+' in the state into a space", Profile: ProfileVSCode, AutoApprove: true,
			AS: ASFaults{AlterState: AlterPlusToSpace}, Client: ClientFaults{StateWithPlus: true}, Expect: altered(AlterPlusToSpace)},
		{Name: "state-double-encoded", Title: "The authorization server percent-encodes the state twice", Profile: ProfileChatGPT,
			AS: ASFaults{AlterState: AlterDoubleEncoded}, Expect: altered(AlterDoubleEncoded)},
		{Name: "state-padding-stripped", Title: "The authorization server strips the state's base64 padding", Profile: ProfileChatGPT,
			AS: ASFaults{AlterState: AlterPaddingStripped}, Expect: altered(AlterPaddingStripped)},
		{Name: "state-truncated", Title: "The authorization server truncates the state to 40 characters", Profile: ProfileChatGPT,
			AS: ASFaults{AlterState: AlterTruncated}, Expect: altered(AlterTruncated)},

		{Name: "token-never-called", Title: "Seed 000 from the server's view: code issued, the client never calls the token endpoint", Seed: "000",
			Profile: ProfileChatGPT, OAuthProxy: true, CallbackDirect: true, Server: ResourceFaults{PRMRootOnly: true},
			Client: ClientFaults{LoseState: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenNeverCalled}, Faults: clientFault}},
		{Name: "callback-state-not-found", Title: "Seed 000 from ChatGPT's view: its callback completion answers 404 OAuth state not found", Seed: "000",
			Profile: ProfileChatGPT, Client: ClientFaults{LoseState: true},
			Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleCallbackStateNotFound}, Faults: clientFault}},
		{Name: "state-stale", Title: "Two authorizations started; the user finishes the first one", Profile: ProfileChatGPT,
			Client: ClientFaults{StaleAttempt: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleStateStale}, Faults: []mcptap.Fault{mcptap.FaultClient, mcptap.FaultUser}}},
		{Name: "pkce-mismatch", Title: "The token request carries a code_verifier that does not match the challenge", Profile: ProfileClaude, SeparateAS: true,
			Client: ClientFaults{WrongVerifier: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenPKCEMismatch}, Faults: clientFault}},
		{Name: "redirect-uri-mismatch", Title: "The IDE's token request names another loopback port than its authorization request", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{TokenRedirectURI: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenRedirectURIMismatch}, Faults: clientFault}},
		{Name: "resource-missing", Title: "The client sends no RFC 8707 resource parameter", Profile: ProfileClaude,
			Client: ClientFaults{OmitResource: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeResourceMissing}, Faults: clientFault}},
		{Name: "resource-mismatch", Title: "The client sends the origin as resource instead of the metadata's resource", Profile: ProfileChatGPT,
			Client: ClientFaults{ResourceOrigin: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeResourceMismatch}, Faults: clientFault}},
		{Name: "prm-internal-origin", Title: "Protected resource metadata names the server's internal address instead of the public one", Profile: ProfileChatGPT,
			Server: ResourceFaults{PRMInternalOrigin: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryResourceMismatch, mcptap.RuleDiscoveryInternalOrigin}, Faults: serverFault}},
		{Name: "issuer-trailing-slash", Title: "The authorization server's issuer has a trailing slash the metadata entry lacks", Profile: ProfileClaude, SeparateAS: true,
			AS: ASFaults{IssuerTrailingSlash: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryIssuerMismatch}, Faults: asFault}},
		{Name: "no-s256", Title: "The authorization server metadata does not advertise PKCE S256", Profile: ProfileChatGPT,
			AS: ASFaults{NoS256: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryNoPKCES256}, Faults: asFault}},
		{Name: "no-challenge", Title: "The MCP server answers 401 without a WWW-Authenticate challenge", Profile: ProfileClaude,
			Server: ResourceFaults{NoChallenge: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryNoChallenge}, Faults: serverFault}},
		{Name: "bearer-rejected", Title: "The MCP server checks the token audience against its origin and rejects a correct token", Profile: ProfileChatGPT,
			Server: ResourceFaults{AudienceOrigin: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPBearerRejected}, Faults: serverFault}},
		{Name: "bearer-never-sent", Title: "After the token exchange the client calls the MCP server without the bearer", Profile: ProfileChatGPT,
			Client: ClientFaults{NoBearer: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPBearerNeverSent}, Faults: clientFault}},
		{Name: "edge-silent-after-token", Title: "Claude gets its token and its authenticated calls never arrive (an edge's AI-bot rule is the first suspect)", Profile: ProfileClaude,
			Client: ClientFaults{NoBearer: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleEdgeSilentAfterToken}, Faults: []mcptap.Fault{mcptap.FaultUser}}},
		{Name: "edge-blocks-claude-user", Title: "An edge in front of the server blocks Claude's authenticated calls (User-Agent Claude-User) with its block page", Profile: ProfileClaude,
			Server: ResourceFaults{EdgeBlockUA: UserAgentClaude}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleEdgeBlocked}, Faults: []mcptap.Fault{mcptap.FaultUser}}},
		{Name: "register-web-default", Title: "The client registers a loopback redirect without application_type; the authorization server takes it for a web client", Profile: ProfileVSCode, AutoApprove: true,
			AS: ASFaults{WebDefault: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterApplicationType}, Faults: clientFault}},
		{Name: "authorize-no-client-id", Title: "The client's authorize request leaves out client_id", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{NoClientID: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeNoClientID}, Faults: clientFault}},
		{Name: "authorize-duplicate-scope", Title: "The client's authorize request carries the scope parameter twice; the authorization server takes the first and goes on", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{DuplicateScope: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeMalformed}, Faults: clientFault}},
		{Name: "callback-script-blocked", Title: "ChatGPT's callback page loads with the code and state, and a script blocker keeps it from posting them to ChatGPT's backend", Profile: ProfileChatGPT,
			Client: ClientFaults{ScriptBlocked: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleCallbackMissingData}, Faults: clientFault}},
		{Name: "callback-listener-gone", Title: "The IDE's loopback callback listener is gone when the browser comes back with the code", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{CallbackGone: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleCallbackUnreachable}, Faults: []mcptap.Fault{mcptap.FaultClient, mcptap.FaultUser}}},
		{Name: "consent-csp-blocks-redirect", Title: "The consent page's CSP says form-action 'self': the browser refuses to follow the approval's redirect to Claude's callback", Profile: ProfileClaude, SeparateAS: true,
			AS: ASFaults{ConsentCSP: "default-src 'self'; form-action 'self'"}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeCSPBlocksRedirect}, Faults: asFault}},
		{Name: "consent-session-lost", Title: "The pending authorization lives in another instance's memory: the consent answers \"interaction session not found\"", Profile: ProfileClaude, SeparateAS: true,
			AS: ASFaults{LoseSession: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeSessionLost}, Faults: asFault}},
		{Name: "token-endpoint-no-cors", Title: "A browser-based client (MCP Inspector's origin) gets its code; the token endpoint does not answer CORS, so the browser refuses the token call", Profile: ProfileVSCode, SeparateAS: true, AutoApprove: true,
			AS: ASFaults{NoTokenCORS: true}, Client: ClientFaults{BrowserOrigin: BrowserOriginInspector}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleCORSPreflight}, Faults: asFault}},
		{Name: "code-expired", Title: "The client redeems its code after the authorization server's lifetime for it; Entra ID refuses it with AADSTS70008", Profile: ProfileVSCode, AutoApprove: true,
			AS: ASFaults{CodeTTL: 200 * time.Millisecond}, Client: ClientFaults{RedeemAfter: 500 * time.Millisecond}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleCodeExpired}, Faults: []mcptap.Fault{mcptap.FaultClient, mcptap.FaultUser}}},
		{Name: "authorize-unknown-scope", Title: "The client asks for a scope nobody offers, and the authorization server sends it back with invalid_scope", Profile: ProfileVSCode, SeparateAS: true,
			AS: ASFaults{StrictScopes: true}, Client: ClientFaults{ExtraScope: "admin:all"}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeScope}, Faults: clientFault}},
		{Name: "resource-from-root-prm", Title: "The challenge names the path metadata (resource: the MCP URL); the client takes the root document's resource (the origin) instead", Profile: ProfileClaude,
			Server: ResourceFaults{RootPRMOrigin: true}, Client: ClientFaults{RootPRMFirst: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeResourceFromWrongPRM}, Faults: clientFault}},
		{Name: "authorize-entra-error", Title: "The authorization server (Entra) refuses the authorize with AADSTS9010010 and redirects the error back", Profile: ProfileClaude,
			AS:     ASFaults{ErrorRedirect: "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."},
			Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeErrorReturned}, Faults: clientFault}},
		{Name: "iss-not-sent", Title: "The authorization server advertises RFC 9207 iss but leaves it out; a strict client stops before the token", Profile: ProfileVSCode, AutoApprove: true,
			AS: ASFaults{NoIss: true}, Client: ClientFaults{StrictIss: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeIss}, Faults: asFault}},
		{Name: "no-refresh-token", Title: "The authorization server issues no refresh token: the user reconnects when the token expires (info)", Profile: ProfileClaude,
			AS: ASFaults{NoRefreshToken: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenNoRefresh}, Faults: asFault}},
		{Name: "refresh-race", Title: "Two client instances refresh with the same refresh token; rotation refuses the second", Profile: ProfileChatGPT,
			Client: ClientFaults{RefreshRace: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRefreshReuseRace}, Faults: clientFault}},
		{Name: "cimd-private-key-refused", Title: "The client's metadata document uses private_key_jwt (as ChatGPT's does); the authorization server accepts documents only with none and refuses the token request", Profile: ProfileVSCode, AutoApprove: true, CIMD: true,
			AS: ASFaults{CIMDNoneOnly: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterCIMDAuthMethod}, Faults: asFault}},
		{Name: "refresh-unsupported", Title: "The authorization server advertises refresh_token but answers the connector's refresh with unsupported_grant_type", Profile: ProfileChatGPT,
			AS: ASFaults{NoRefresh: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRefreshUnsupported}, Faults: asFault}},
		{Name: "cimd-assertion-wrong-audience", Title: "A metadata-document client signs its private_key_jwt assertion for another audience than the token endpoint", Profile: ProfileVSCode, AutoApprove: true, CIMD: true,
			Client: ClientFaults{AssertionAudience: "https://login.example.com/oauth2/token"}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenClientAssertionInvalid}, Faults: clientFault}},
		{Name: "refresh-resource-drift", Title: "The connector's refresh leaves out the resource its authorize sent", Profile: ProfileChatGPT,
			Client: ClientFaults{RefreshNoResource: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRefreshResourceDrift}, Faults: clientFault}},
		{Name: "refresh-retry-storm", Title: "The authorization server revoked the grant; the connector retries the refused refresh again and again", Profile: ProfileChatGPT,
			AS: ASFaults{RevokedRefresh: true}, Client: ClientFaults{RetryRefresh: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRefreshRetryStorm}, Faults: asFault}},
		{Name: "opaque-token", Title: "The authorization server issues opaque access tokens; the MCP server expects a JWT and refuses them", Profile: ProfileClaude,
			AS: ASFaults{OpaqueTokens: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenEncryptedOrOpaque}, Faults: asFault}},
		{Name: "cimd-not-fetched", Title: "The authorization server advertises client ID metadata documents but never fetches one: the client's URL client_id stays unknown", Profile: ProfileVSCode, AutoApprove: true, CIMD: true,
			AS: ASFaults{CIMDNoFetch: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterCIMDFailed}, Faults: asFault}},
		{Name: "register-200", Title: "The authorization server answers the registration 200 instead of 201 Created (clients go on)", Profile: ProfileClaude,
			AS: ASFaults{Register200: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterBadResponse}, Faults: asFault}},
		{Name: "register-on-mcp-origin", Title: "The client registers at the MCP server's origin instead of the registration_endpoint the metadata names", Profile: ProfileClaude, SeparateAS: true,
			Client: ClientFaults{RegisterOnMCP: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterWrongHost}, Faults: clientFault}},
		{Name: "register-every-connect", Title: "The client registers again, with the same metadata, every time it connects", Profile: ProfileClaude,
			Client: ClientFaults{ReRegister: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterChurn}, Faults: clientFault}},
		{Name: "registered-redirect-refused", Title: "The registration echoes the client's redirect URI; the authorize refuses that very URI", Profile: ProfileVSCode, AutoApprove: true,
			AS: ASFaults{RefuseRegisteredRedirect: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAuthorizeRegisteredRedirectRefused}, Faults: asFault}},
		{Name: "cimd-fallback", Title: "The authorization server advertises client ID metadata documents but not the none auth method: a Claude-like client registers instead (info)", Profile: ProfileClaude,
			AS: ASFaults{CIMDWithoutNone: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterCIMDFallback}, Faults: asFault}},
		{Name: "registration-quota", Title: "The client registers again on every connect and runs into the registration quota", Profile: ProfileClaude,
			AS: ASFaults{MaxClients: 1}, Client: ClientFaults{ReRegister: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleRegisterThrottled}, Faults: asFault}},
		{Name: "tunnel-interstitial", Title: "The tunnel answers the client's metadata request with its browser warning page", Profile: ProfileClaude,
			Server: ResourceFaults{Interstitial: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTunnelInterstitial}, Faults: []mcptap.Fault{mcptap.FaultUser}}},
		{Name: "token-as-json", Title: "The client sends its token request as JSON; the authorization server wants a form", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{JSONToken: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleTokenTransport}, Faults: clientFault}},
		{Name: "mcp-not-acceptable", Title: "After a good token the client's MCP requests accept application/json only; the server wants text/event-stream too", Profile: ProfileChatGPT,
			Client: ClientFaults{AcceptJSONOnly: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPNotAcceptable}, Faults: clientFault}},
		{Name: "dpop-as-bearer", Title: "A workload sends its DPoP-bound token with the Bearer scheme", Profile: ProfileWorkload,
			Client: ClientFaults{DPoPAsBearer: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDPoPSchemeMismatch}, Faults: clientFault}},
		{Name: "id-jag-wrong-audience", Title: "The enterprise identity provider issued the ID-JAG for another authorization server", Profile: ProfileWorkload, IDJAG: true,
			Client: ClientFaults{IDJAGAudience: "https://other-as.example"}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleAssertionRejected}, Faults: clientFault}},
		{Name: "stepup-by-refresh", Title: "The server asks for the admin scope (403 insufficient_scope); the client refreshes its token instead of authorizing again, and is refused again", Profile: ProfileClaude,
			Server: ResourceFaults{AdminScope: true}, Client: ClientFaults{StepUpByRefresh: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPStepupByRefresh}, Faults: clientFault}},
		{Name: "stepup-drops-scopes", Title: "The server asks for the admin scope; the IDE authorizes again for admin alone, dropping the scope it had", Profile: ProfileVSCode, AutoApprove: true,
			Server: ResourceFaults{AdminScope: true}, Client: ClientFaults{StepUp: "replace"}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPScopeNotAccumulated}, Faults: clientFault}},
		{Name: "stepup-loop", Title: "The server asks for the admin scope; the authorization server never grants it, so the IDE authorizes again and again", Profile: ProfileVSCode, AutoApprove: true,
			Server: ResourceFaults{AdminScope: true}, AS: ASFaults{GrantOnly: defaultScope}, Client: ClientFaults{StepUp: "union"},
			Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPScopeLoop}, Faults: []mcptap.Fault{mcptap.FaultAuthServer, mcptap.FaultServer}}},
		{Name: "legacy-protocol", Title: "After a good token the server answers initialize with the old HTTP+SSE transport's protocol version; ChatGPT falls back to that transport and is refused", Profile: ProfileChatGPT,
			Server: ResourceFaults{LegacyProtocol: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPLegacyProtocolAnswered}, Faults: serverFault}},
		{Name: "challenge-internal", Title: "The 401 challenge's resource_metadata names the server's internal address (BASE_URL left at localhost)", Profile: ProfileClaude,
			Server: ResourceFaults{ChallengeInternal: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryChallengeInternal}, Faults: serverFault}},
		{Name: "no-as-metadata", Title: "The authorization server serves neither RFC 8414 nor OpenID discovery metadata", Profile: ProfileClaude, SeparateAS: true,
			AS: ASFaults{NoMetadata: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryAsMetadataMissing}, Faults: asFault}},
		{Name: "lazy-auth", Title: "The server answers initialize without a token and asks for one only on the tool call", Profile: ProfileClaude,
			Server: ResourceFaults{LazyAuth: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDiscoveryLazyAuth}, Faults: serverFault}},
		{Name: "protocol-header-missing", Title: "After initialize negotiated 2025-11-25 the client leaves MCP-Protocol-Version out of its requests", Profile: ProfileVSCode, AutoApprove: true,
			Client: ClientFaults{NoProtocolHeader: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPProtocolVersionHeaderMissing}, Faults: clientFault}},
		{Name: "dpop-nonce-ignored", Title: "The token endpoint asks for its DPoP nonce; the workload retries without it until it gives up", Profile: ProfileWorkload,
			AS: ASFaults{DPoPNonce: true}, Client: ClientFaults{IgnoreDPoPNonce: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleDPoPNonceLoop}, Faults: clientFault}},
		{Name: "mcp-host-check", Title: "After a good token the MCP server refuses every call with 403 Invalid Host header (DNS-rebinding protection seeing the tunnel's Host)", Profile: ProfileChatGPT,
			Server: ResourceFaults{HostCheck: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPForbidden}, Faults: serverFault}},
		{Name: "expiry-ignored", Title: "The access token expires; the client's next call is refused 401 and it neither refreshes nor authorizes again", Profile: ProfileClaude,
			Server: ResourceFaults{Expiring: true}, Client: ClientFaults{IgnoreExpiry: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPReauthIgnored}, Faults: clientFault}},
		{Name: "mcp-redirect", Title: "The MCP endpoint answers authenticated requests with a redirect", Profile: ProfileChatGPT,
			Server: ResourceFaults{RedirectMCP: true}, Expect: Expect{Rules: []mcptap.RuleID{mcptap.RuleMCPRedirect}, Faults: serverFault}},
	}
}

// Lookup finds a scenario by name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Phases are the phases of the dance a scenario's fault belongs to, in order.
var Phases = []string{"healthy", "discovery", "registration", "authorize", "callback", "token", "refresh", "mcp", "edge"}

// Phase is the phase of the dance where the scenario's fault shows, from its
// expected verdict's rule family.
func (s Scenario) Phase() string {
	if s.Expect.Healthy() || len(s.Expect.Rules) == 0 {
		return "healthy"
	}
	family, _, _ := strings.Cut(string(s.Expect.Rules[0]), ".")
	switch family {
	case "discovery":
		return "discovery"
	case "register", "client":
		return "registration"
	case "authorize", "state":
		return "authorize"
	case "callback":
		return "callback"
	case "token", "code", "assertion":
		return "token"
	case "refresh":
		return "refresh"
	case "mcp", "dpop":
		return "mcp"
	}
	return "edge" // edge, tunnel, transport
}
