package oauth

import (
	"crypto/sha256"
	"encoding/base64"
)

// S256 is the RFC 7636 S256 code challenge of a verifier:
// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) without padding.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pkceMatches reports whether verifier proves challenge under method ("S256",
// "plain", or "" which RFC 7636 reads as plain).
func pkceMatches(verifier, challenge, method string) bool {
	if method == "S256" {
		return S256(verifier) == challenge
	}
	return verifier == challenge
}
