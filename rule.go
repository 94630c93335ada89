package mcptap

// RuleID names a rule of the findings catalogue (spec/FINDINGS.md). The IDs
// are a public interface (the JSON report, --fail-on, SARIF, docs): never
// rename one; a new rule gets a new ID.
type RuleID string

// RuleOK is the verdict of a flow that succeeded as far as the capture sees.
const RuleOK RuleID = "ok"

// The catalogue, tier by tier, in the order of spec/FINDINGS.md.
const (
	// Tier 1 — the core (first release)
	RuleStateNotEchoed                   RuleID = "state.not-echoed"
	RuleStateAltered                     RuleID = "state.altered"
	RuleStateStale                       RuleID = "state.stale"
	RuleStateTooLong                     RuleID = "state.too-long"
	RuleTokenNeverCalled                 RuleID = "token.never-called"
	RuleCallbackStateNotFound            RuleID = "callback.state-not-found"
	RuleCallbackRejected                 RuleID = "callback.rejected"
	RuleTokenPKCEMismatch                RuleID = "token.pkce-mismatch"
	RuleTokenRedirectURIMismatch         RuleID = "token.redirect-uri-mismatch"
	RuleTokenCodeReused                  RuleID = "token.code-reused"
	RuleTokenClientMismatch              RuleID = "token.client-mismatch"
	RuleTokenInvalidGrant                RuleID = "token.invalid-grant"
	RuleTokenInvalidClient               RuleID = "token.invalid-client"
	RuleTokenInvalidTarget               RuleID = "token.invalid-target"
	RuleTokenBadResponse                 RuleID = "token.bad-response"
	RuleTokenAudienceMismatch            RuleID = "token.audience-mismatch"
	RuleAuthorizePKCEMissing             RuleID = "authorize.pkce-missing"
	RuleAuthorizeResourceMissing         RuleID = "authorize.resource-missing"
	RuleAuthorizeResourceMismatch        RuleID = "authorize.resource-mismatch"
	RuleAuthorizeRedirectURIUnregistered RuleID = "authorize.redirect-uri-unregistered"
	RuleAuthorizeWrongRedirectTarget     RuleID = "authorize.wrong-redirect-target"
	RuleAuthorizeErrorNotRedirected      RuleID = "authorize.error-not-redirected"
	RuleDiscoveryNoChallenge             RuleID = "discovery.no-challenge"
	RuleDiscoveryPRMPathFallback         RuleID = "discovery.prm-path-fallback"
	RuleDiscoveryResourceMismatch        RuleID = "discovery.resource-mismatch"
	RuleDiscoveryNoAuthorizationServers  RuleID = "discovery.no-authorization-servers"
	RuleDiscoveryNotJSON                 RuleID = "discovery.not-json"
	RuleDiscoveryIssuerMismatch          RuleID = "discovery.issuer-mismatch"
	RuleDiscoveryNoPKCES256              RuleID = "discovery.no-pkce-s256"
	RuleDiscoveryNoRegistration          RuleID = "discovery.no-registration"
	RuleDiscoveryInternalOrigin          RuleID = "discovery.internal-origin"
	RuleRegisterRejected                 RuleID = "register.rejected"
	RuleClientUnknown                    RuleID = "client.unknown"
	RuleMCPBearerRejected                RuleID = "mcp.bearer-rejected"
	RuleMCPBearerNeverSent               RuleID = "mcp.bearer-never-sent"
	RuleMCPRedirect                      RuleID = "mcp.redirect"

	// Tier 2 — the rest of the code flow
	RuleDiscoveryLazyAuth          RuleID = "discovery.lazy-auth"
	RuleDiscoveryAsMetadataMissing RuleID = "discovery.as-metadata-missing"
	RuleRegisterBadResponse        RuleID = "register.bad-response"
	RuleRegisterThrottled          RuleID = "register.throttled"
	RuleRegisterCIMDFailed         RuleID = "register.cimd-failed"
	RuleAuthorizeScope             RuleID = "authorize.scope"
	RuleAuthorizeMalformed         RuleID = "authorize.malformed"
	RuleAuthorizeIss               RuleID = "authorize.iss"
	RuleAuthorizeCSPBlocksRedirect RuleID = "authorize.csp-blocks-redirect"
	RuleAuthorizeSessionLost       RuleID = "authorize.session-lost"
	RuleCallbackMissingData        RuleID = "callback.missing-data"
	RuleCallbackUnreachable        RuleID = "callback.unreachable"
	RuleCodeExpired                RuleID = "code.expired"
	RuleTokenTransport             RuleID = "token.transport"
	RuleTokenNoRefresh             RuleID = "token.no-refresh"
	RuleMCPScopeLoop               RuleID = "mcp.scope-loop"
	RuleMCPReauthIgnored           RuleID = "mcp.reauth-ignored"
	RuleCORSPreflight              RuleID = "cors.preflight"
	RuleTunnelInterstitial         RuleID = "tunnel.interstitial"

	// Tier 3 — the 2026 shapes
	RuleFlowIncomplete                     RuleID = "flow.incomplete"
	RuleAuthorizeErrorReturned             RuleID = "authorize.error-returned"
	RuleMCPForbidden                       RuleID = "mcp.forbidden"
	RuleDiscoveryChallengeInternal         RuleID = "discovery.challenge-internal"
	RuleEdgeBlocked                        RuleID = "edge.blocked"
	RuleEdgeSilentAfterToken               RuleID = "edge.silent-after-token"
	RuleTransportStreamCut                 RuleID = "transport.stream-cut"
	RuleRegisterApplicationType            RuleID = "register.application-type"
	RuleRegisterChurn                      RuleID = "register.churn"
	RuleRegisterWrongHost                  RuleID = "register.wrong-host"
	RuleRegisterCIMDAuthMethod             RuleID = "register.cimd-auth-method"
	RuleRegisterCIMDFallback               RuleID = "register.cimd-fallback"
	RuleTokenClientAssertionInvalid        RuleID = "token.client-assertion-invalid"
	RuleAuthorizeRegisteredRedirectRefused RuleID = "authorize.registered-redirect-refused"
	RuleAuthorizeNoClientID                RuleID = "authorize.no-client-id"
	RuleAuthorizeResourceFromWrongPRM      RuleID = "authorize.resource-from-wrong-prm"
	RuleTokenEncryptedOrOpaque             RuleID = "token.encrypted-or-opaque"
	RuleRefreshReuseRace                   RuleID = "refresh.reuse-race"
	RuleRefreshRetryStorm                  RuleID = "refresh.retry-storm"
	RuleRefreshUnsupported                 RuleID = "refresh.unsupported"
	RuleRefreshResourceDrift               RuleID = "refresh.resource-drift"
	RuleMCPStepupByRefresh                 RuleID = "mcp.stepup-by-refresh"
	RuleMCPScopeNotAccumulated             RuleID = "mcp.scope-not-accumulated"
	RuleAssertionRejected                  RuleID = "assertion.rejected"
	RuleDPoPSchemeMismatch                 RuleID = "dpop.scheme-mismatch"
	RuleDPoPNonceLoop                      RuleID = "dpop.nonce-loop"
	RuleMCPNotAcceptable                   RuleID = "mcp.not-acceptable"
	RuleMCPProtocolVersionHeaderMissing    RuleID = "mcp.protocol-version-header-missing"
	RuleMCPLegacyProtocolAnswered          RuleID = "mcp.legacy-protocol-answered"

	// check — what only mcptap check can conclude
	RuleCheckHTTPS                   RuleID = "check.https"
	RuleCheckNotProtected            RuleID = "check.not-protected"
	RuleCheckRegistrationUnreachable RuleID = "check.registration-unreachable"
	RuleCheckCIMDNotAccepted         RuleID = "check.cimd-not-accepted"
	RuleCheckIssForStableRedirect    RuleID = "check.iss-for-stable-redirect"
	RuleCheckAuthorizeRefused        RuleID = "check.authorize-refused"
)

// Catalogue is every rule ID of spec/FINDINGS.md (docs/FINDINGS.md), in its
// order. A test keeps the two equal.
var Catalogue = []RuleID{
	RuleStateNotEchoed,
	RuleStateAltered,
	RuleStateStale,
	RuleStateTooLong,
	RuleTokenNeverCalled,
	RuleCallbackStateNotFound,
	RuleCallbackRejected,
	RuleTokenPKCEMismatch,
	RuleTokenRedirectURIMismatch,
	RuleTokenCodeReused,
	RuleTokenClientMismatch,
	RuleTokenInvalidGrant,
	RuleTokenInvalidClient,
	RuleTokenInvalidTarget,
	RuleTokenBadResponse,
	RuleTokenAudienceMismatch,
	RuleAuthorizePKCEMissing,
	RuleAuthorizeResourceMissing,
	RuleAuthorizeResourceMismatch,
	RuleAuthorizeRedirectURIUnregistered,
	RuleAuthorizeWrongRedirectTarget,
	RuleAuthorizeErrorNotRedirected,
	RuleDiscoveryNoChallenge,
	RuleDiscoveryPRMPathFallback,
	RuleDiscoveryResourceMismatch,
	RuleDiscoveryNoAuthorizationServers,
	RuleDiscoveryNotJSON,
	RuleDiscoveryIssuerMismatch,
	RuleDiscoveryNoPKCES256,
	RuleDiscoveryNoRegistration,
	RuleDiscoveryInternalOrigin,
	RuleRegisterRejected,
	RuleClientUnknown,
	RuleMCPBearerRejected,
	RuleMCPBearerNeverSent,
	RuleMCPRedirect,
	RuleDiscoveryLazyAuth,
	RuleDiscoveryAsMetadataMissing,
	RuleRegisterBadResponse,
	RuleRegisterThrottled,
	RuleRegisterCIMDFailed,
	RuleAuthorizeScope,
	RuleAuthorizeMalformed,
	RuleAuthorizeIss,
	RuleAuthorizeCSPBlocksRedirect,
	RuleAuthorizeSessionLost,
	RuleCallbackMissingData,
	RuleCallbackUnreachable,
	RuleCodeExpired,
	RuleTokenTransport,
	RuleTokenNoRefresh,
	RuleMCPScopeLoop,
	RuleMCPReauthIgnored,
	RuleCORSPreflight,
	RuleTunnelInterstitial,
	RuleFlowIncomplete,
	RuleAuthorizeErrorReturned,
	RuleMCPForbidden,
	RuleDiscoveryChallengeInternal,
	RuleEdgeBlocked,
	RuleEdgeSilentAfterToken,
	RuleTransportStreamCut,
	RuleRegisterApplicationType,
	RuleRegisterChurn,
	RuleRegisterWrongHost,
	RuleRegisterCIMDAuthMethod,
	RuleRegisterCIMDFallback,
	RuleTokenClientAssertionInvalid,
	RuleAuthorizeRegisteredRedirectRefused,
	RuleAuthorizeNoClientID,
	RuleAuthorizeResourceFromWrongPRM,
	RuleTokenEncryptedOrOpaque,
	RuleRefreshReuseRace,
	RuleRefreshRetryStorm,
	RuleRefreshUnsupported,
	RuleRefreshResourceDrift,
	RuleMCPStepupByRefresh,
	RuleMCPScopeNotAccumulated,
	RuleAssertionRejected,
	RuleDPoPSchemeMismatch,
	RuleDPoPNonceLoop,
	RuleMCPNotAcceptable,
	RuleMCPProtocolVersionHeaderMissing,
	RuleMCPLegacyProtocolAnswered,
	RuleCheckHTTPS,
	RuleCheckNotProtected,
	RuleCheckRegistrationUnreachable,
	RuleCheckCIMDNotAccepted,
	RuleCheckIssForStableRedirect,
	RuleCheckAuthorizeRefused,
}
