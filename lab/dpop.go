package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DPoP (RFC 9449) for the lab's workload client and its servers: ES256
// proofs with the public key in the header, tokens bound by the key's
// RFC 7638 thumbprint (cnf.jkt), and the access token's hash (ath) in the
// proofs sent to the resource server.

type dpopKey struct{ priv *ecdsa.PrivateKey }

func newDPoPKey() (*dpopKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &dpopKey{k}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (k *dpopKey) jwk() map[string]any {
	b, _ := k.priv.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each for P-256
	return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:65])}
}

// proof is a DPoP proof for method and u (its query and fragment are not
// part of htu); accessToken, when set, goes in as ath.
func (k *dpopKey) proof(method, u, accessToken string) (string, error) {
	return k.proofWithNonce(method, u, accessToken, "")
}

// proofWithNonce is proof with the server's DPoP-Nonce (RFC 9449 §8).
func (k *dpopKey) proofWithNonce(method, u, accessToken, nonce string) (string, error) {
	claims := jwt.MapClaims{"htm": method, "htu": u, "iat": time.Now().Unix(), "jti": randHex(12)}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = b64(sum[:])
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["typ"] = "dpop+jwt"
	t.Header["jwk"] = k.jwk()
	return t.SignedString(k.priv)
}

// thumbprint is the RFC 7638 thumbprint of an EC P-256 JWK.
func thumbprint(x, y string) string {
	b, _ := json.Marshal(struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}{"P-256", "EC", x, y})
	sum := sha256.Sum256(b)
	return b64(sum[:])
}

// verifyDPoP checks a proof's signature (by the key in its header), type,
// method, URL, age and, when accessToken is set, its ath; it returns the
// key's thumbprint.
func verifyDPoP(proof, method, u, accessToken string) (string, error) {
	jkt, _, err := verifyDPoPNonce(proof, method, u, accessToken)
	return jkt, err
}

// verifyDPoPNonce is verifyDPoP that also returns the proof's nonce claim.
func verifyDPoPNonce(proof, method, u, accessToken string) (string, string, error) {
	var jkt string
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(proof, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != "dpop+jwt" {
			return nil, errors.New("typ is not dpop+jwt")
		}
		j, _ := t.Header["jwk"].(map[string]any)
		x, _ := j["x"].(string)
		y, _ := j["y"].(string)
		if j["kty"] != "EC" || j["crv"] != "P-256" || x == "" || y == "" {
			return nil, errors.New("no P-256 jwk in the header")
		}
		xb, err1 := base64.RawURLEncoding.DecodeString(x)
		yb, err2 := base64.RawURLEncoding.DecodeString(y)
		if err1 != nil || err2 != nil || len(xb) != 32 || len(yb) != 32 {
			return nil, errors.New("jwk coordinates are not 32-byte base64url values")
		}
		jkt = thumbprint(x, y)
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuedAt())
	if err != nil {
		return "", "", fmt.Errorf("DPoP proof: %w", err)
	}
	if claims["htm"] != method || claims["htu"] != u {
		return "", "", fmt.Errorf("DPoP proof is for %v %v, not %s %s", claims["htm"], claims["htu"], method, u)
	}
	if iat, err := claims.GetIssuedAt(); err != nil || iat == nil || time.Since(iat.Time) > 5*time.Minute {
		return "", "", errors.New("DPoP proof too old")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if claims["ath"] != b64(sum[:]) {
			return "", "", errors.New("DPoP proof's ath is not the access token's hash")
		}
	}
	nonce, _ := claims["nonce"].(string)
	return jkt, nonce, nil
}
