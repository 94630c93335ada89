package oauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Token is an access, refresh or ID token looked at without verifying it:
// mcptap has no keys and needs none to say what a token claims.
type Token struct {
	Kind   string         `json:"kind"` // "jwt", "jwe" (header only) or "opaque"
	Header map[string]any `json:"header,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
	Err    string         `json:"error,omitempty"` // why a dotted value is not a readable JWT
}

// DecodeJWT splits a JWS compact token (three segments) and decodes its header
// and claims; a JWE (five segments) shows its header only; anything else is
// opaque. It never fails: what cannot be read is said in Err.
func DecodeJWT(s string) Token {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "Bearer "), "bearer ")
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 3:
		t := Token{Kind: "jwt"}
		h, err := segmentJSON(parts[0])
		if err != nil {
			return Token{Kind: "opaque", Err: "header: " + err.Error()}
		}
		t.Header = h
		c, err := segmentJSON(parts[1])
		if err != nil {
			t.Err = "claims: " + err.Error()
		}
		t.Claims = c
		return t
	case 5:
		h, err := segmentJSON(parts[0])
		if err != nil {
			return Token{Kind: "opaque", Err: "header: " + err.Error()}
		}
		return Token{Kind: "jwe", Header: h, Err: "encrypted (JWE): only the header is readable"}
	}
	return Token{Kind: "opaque"}
}

func segmentJSON(seg string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return nil, fmt.Errorf("not base64url: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return m, nil
}

// Audience returns the aud claim as a list (it may be a string or an array).
func (t Token) Audience() []string {
	switch v := t.Claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Time returns a NumericDate claim (exp, iat, nbf) and whether it is there.
func (t Token) Time(claim string) (time.Time, bool) {
	switch v := t.Claims[claim].(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return time.Unix(int64(f), 0).UTC(), true
		}
	case float64:
		return time.Unix(int64(v), 0).UTC(), true
	}
	return time.Time{}, false
}

// Expiry says in words when the token expires relative to now (the time of
// the traffic, not the wall clock).
func (t Token) Expiry(now time.Time) string {
	exp, ok := t.Time("exp")
	if !ok {
		if t.Kind != "jwt" {
			return ""
		}
		return "no expiry (exp missing)"
	}
	d := exp.Sub(now)
	switch {
	case now.IsZero():
		return "expires " + exp.Format(time.RFC3339)
	case d >= 0:
		return fmt.Sprintf("expires in %s (%s)", words(d), exp.Format(time.RFC3339))
	}
	return fmt.Sprintf("expired %s ago (%s)", words(-d), exp.Format(time.RFC3339))
}

// words renders a duration the way a person says it: "1h 5m", "42s".
func words(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
