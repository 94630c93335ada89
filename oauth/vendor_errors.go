package oauth

import (
	"strings"

	"github.com/mcptap/mcptap"
)

// vendorError is what an authorization server's error says, in its own
// wording or code: the cause in the user's terms, the side that produces
// it, and where that reading comes from. The error code alone
// (invalid_grant, invalid_client, invalid_request) covers several causes;
// the vendor's error_description often names the one. The authorize's
// error redirects use it too (vendorErrors, oauthErrors).
type vendorError struct {
	match  string // matched against error_description (or the error code)
	cause  string
	fault  mcptap.Fault
	source string
}

// tokenVendorErrors, most specific first.
var tokenVendorErrors = []vendorError{
	// Microsoft Entra ID: the AADSTS code leads error_description.
	{"AADSTS54005", "Entra ID: the authorization code was already redeemed (a second token request with the same code)", mcptap.FaultClient, "Microsoft Entra error codes reference (AADSTS54005 OAuth2 authorization code was already redeemed)"},
	{"AADSTS70008", "Entra ID: the code or refresh token expired or was revoked", mcptap.FaultUser, "Microsoft Entra error codes reference (AADSTS70008 ExpiredOrRevokedGrant)"},
	{"AADSTS700082", "Entra ID: the refresh token expired from inactivity; a new sign-in is needed", mcptap.FaultUser, "Microsoft Entra error codes reference (AADSTS700082)"},
	{"AADSTS501481", "Entra ID: the code_verifier does not match the authorize's code_challenge", mcptap.FaultClient, "Microsoft Entra error codes reference (AADSTS501481)"},
	{"AADSTS50148", "Entra ID: the code_verifier does not match the authorize's code_challenge", mcptap.FaultClient, "Microsoft Entra error codes reference (AADSTS50148)"},
	{"AADSTS7000218", "Entra ID: the app registration is confidential and wants a client secret or assertion; a public client (an MCP connector with PKCE) needs \"Allow public client flows\"", mcptap.FaultAuthServer, "Microsoft Entra error codes reference (AADSTS7000218)"},
	{"AADSTS9002327", "Entra ID: the app is registered as a single-page app and tokens must be redeemed cross-origin from a browser", mcptap.FaultAuthServer, "Microsoft Entra error codes reference (AADSTS9002327)"},
	{"AADSTS", "Entra ID error (see the AADSTS code in error_description)", mcptap.FaultAuthServer, "Microsoft Entra error codes reference"},
	// Keycloak: the messages its token endpoint puts in error_description.
	{"PKCE verification failed", "the code_verifier does not match the authorize's code_challenge", mcptap.FaultClient, "Keycloak and Okta token endpoint (error_description \"PKCE verification failed\")"},
	{"Incorrect redirect_uri", "the token request's redirect_uri differs from the authorize's", mcptap.FaultClient, "Keycloak token endpoint (error_description \"Incorrect redirect_uri\")"},
	{"Code not valid", "the code is unknown to the authorization server: used already, expired, or issued by another instance", mcptap.FaultUnknown, "Keycloak token endpoint (error_description \"Code not valid\")"},
	{"Invalid client or Invalid client credentials", "the client is unknown, or authenticated with a method or secret its settings do not accept", mcptap.FaultAuthServer, "Keycloak client authentication (error_description \"Invalid client or Invalid client credentials\")"},
	{"Token is not active", "the refresh token expired or its session ended; a new sign-in is needed", mcptap.FaultUser, "Keycloak refresh (error_description \"Token is not active\")"},
	{"Session not active", "the sign-in session behind the refresh token ended (logout, idle timeout)", mcptap.FaultUser, "Keycloak refresh (error_description \"Session not active\")"},
	// Okta, Auth0, Ory Hydra.
	{"The authorization code is invalid or has expired", "the code is unknown, used already or expired", mcptap.FaultUnknown, "Okta token endpoint error_description"},
	{"The refresh token is invalid or expired", "the refresh token expired, was rotated already or revoked", mcptap.FaultUnknown, "Okta token endpoint error_description"},
	{"Failed to verify code verifier", "the code_verifier does not match the authorize's code_challenge", mcptap.FaultClient, "Auth0 token endpoint error_description"},
	{"Unknown or invalid refresh token", "the refresh token is unknown (rotated already, revoked, or from another tenant)", mcptap.FaultUnknown, "Auth0 token endpoint error_description"},
	{"has already been used", "the code was already redeemed (a second token request with the same code)", mcptap.FaultClient, "Ory Hydra (fosite) token endpoint hint \"The authorization code has already been used.\""},
}

// explainTokenError reads a token error answer's error_description.
func explainTokenError(x *exInfo) (vendorError, bool) {
	desc := str(jsonObject(x.ex.RespBody), "error_description")
	if desc == "" {
		return vendorError{}, false
	}
	for _, v := range tokenVendorErrors {
		if strings.Contains(desc, v.match) {
			return v, true
		}
	}
	return vendorError{}, false
}

// withVendorReading adds what the authorization server's own wording says
// to h; where the traffic could not decide the side (unknown), the vendor's
// reading decides it.
func withVendorReading(h hit, x *exInfo) hit {
	v, ok := explainTokenError(x)
	if !ok {
		return h
	}
	h.detail += " The authorization server's own wording: " + v.cause + ". Source: " + v.source + "."
	if h.fault == mcptap.FaultUnknown && v.fault != mcptap.FaultUnknown {
		h.fault = v.fault
	}
	return h
}
