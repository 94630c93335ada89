package resend

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Pair is one recorded value and the fresh value that replaces it.
type Pair struct {
	Old, New string
	What     string // where it came from: "state", "code_verifier", "client_id", "header.Mcp-Session-Id", …
}

// substitution maps recorded values to fresh ones. The zero value is empty
// and ready to use. It is not safe for concurrent use.
type substitution struct {
	pairs []Pair
	index map[string]int // Old -> position in pairs
	url   *strings.Replacer
	plain *strings.Replacer
	json  *strings.Replacer
}

// Add records that old is to be replaced by fresh. Empty or equal values are
// ignored; a later Add for the same old value wins.
func (s *substitution) Add(old, fresh, what string) {
	if old == "" || old == fresh {
		return
	}
	if s.index == nil {
		s.index = map[string]int{}
	}
	if i, ok := s.index[old]; ok {
		if s.pairs[i].New == fresh {
			return // learned again (an echoed state): keep where it came from first
		}
		s.pairs[i] = Pair{Old: old, New: fresh, What: what}
	} else {
		s.index[old] = len(s.pairs)
		s.pairs = append(s.pairs, Pair{Old: old, New: fresh, What: what})
	}
	s.url, s.plain, s.json = nil, nil, nil
}

// Lookup returns the fresh value for old.
func (s *substitution) Lookup(old string) (string, bool) {
	i, ok := s.index[old]
	if !ok {
		return "", false
	}
	return s.pairs[i].New, true
}

// Pairs returns the substitutions in the order they were learned.
func (s *substitution) Pairs() []Pair { return append([]Pair(nil), s.pairs...) }

type variant struct{ old, new string }

// build makes the three replacers. Longer old values go first so that a value
// contained in another one never breaks the longer replacement (Replacer
// compares in argument order at each position and never re-scans output).
func (s *substitution) build() {
	if s.url != nil {
		return
	}
	var urlV, plainV, jsonV []variant
	for _, p := range s.pairs {
		// Percent-encoded forms first: a form body or query carries the
		// value encoded, and the fresh value must be encoded the same way.
		qo, qn := url.QueryEscape(p.Old), url.QueryEscape(p.New)
		po, pn := url.PathEscape(p.Old), url.PathEscape(p.New)
		if qo != p.Old {
			urlV = append(urlV, variant{qo, qn})
			if lo := lowerHex(qo); lo != qo {
				urlV = append(urlV, variant{lo, lowerHex(qn)})
			}
			if so := strings.ReplaceAll(qo, "+", "%20"); so != qo {
				urlV = append(urlV, variant{so, strings.ReplaceAll(qn, "+", "%20")})
			}
		}
		if po != p.Old && po != qo {
			urlV = append(urlV, variant{po, pn})
		}
		urlV = append(urlV, variant{p.Old, queryMinimal(p.Old, p.New)})
		plainV = append(plainV, variant{p.Old, p.New})
		jo, jn := jsonInner(p.Old), jsonInner(p.New)
		if jo != p.Old {
			jsonV = append(jsonV, variant{jo, jn})
		}
		jsonV = append(jsonV, variant{p.Old, jn})
	}
	s.url, s.plain, s.json = replacer(urlV), replacer(plainV), replacer(jsonV)
}

func replacer(vs []variant) *strings.Replacer {
	sort.SliceStable(vs, func(i, j int) bool { return len(vs[i].old) > len(vs[j].old) })
	args := make([]string, 0, 2*len(vs))
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.old] {
			continue
		}
		seen[v.old] = true
		args = append(args, v.old, v.new)
	}
	return strings.NewReplacer(args...)
}

// lowerHex turns %2B into %2b: some clients encode with lower-case hex.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for k := i + 1; k <= i+2; k++ {
				if b[k] >= 'A' && b[k] <= 'F' {
					b[k] += 'a' - 'A'
				}
			}
		}
	}
	return string(b)
}

// queryMinimal is the fresh value for an old one the client wrote
// unescaped into a query or form: unescaped too (a '+' stays a '+', as the
// client sent it), unless it holds a delimiter the old value did not, which
// would change the parameters' structure.
func queryMinimal(old, fresh string) string {
	for _, c := range "&=+#% ?" {
		if strings.ContainsRune(fresh, c) && !strings.ContainsRune(old, c) {
			return url.QueryEscape(fresh)
		}
	}
	return fresh
}

// jsonInner is v as it appears between the quotes of a JSON string.
func jsonInner(v string) string {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	out := strings.TrimSuffix(sb.String(), "\n")
	return out[1 : len(out)-1]
}

// Target replaces recorded values in a raw request target (path and query).
func (s *substitution) Target(t string) string {
	if len(s.pairs) == 0 {
		return t
	}
	s.build()
	return s.url.Replace(t)
}

// Header returns a copy of h with recorded values replaced in every value.
func (s *substitution) Header(h http.Header) http.Header {
	out := make(http.Header, len(h))
	if len(s.pairs) > 0 {
		s.build()
	}
	for k, vs := range h {
		nv := make([]string, len(vs))
		for i, v := range vs {
			if len(s.pairs) > 0 {
				v = s.plain.Replace(v)
			}
			nv[i] = v
		}
		out[k] = nv
	}
	return out
}

// Body replaces recorded values in a request body, encoded as its
// Content-Type says: percent-encoded in a form, JSON-escaped in JSON, raw
// otherwise.
func (s *substitution) Body(contentType string, b []byte) []byte {
	if len(s.pairs) == 0 || len(b) == 0 {
		return b
	}
	s.build()
	ct := strings.ToLower(contentType)
	switch {
	case strings.Contains(ct, "x-www-form-urlencoded"):
		return []byte(s.url.Replace(string(b)))
	case strings.Contains(ct, "json"):
		return []byte(s.json.Replace(string(b)))
	}
	return []byte(s.plain.Replace(string(b)))
}

// freshValue returns a random value of the same format class as old, so that a
// server that checks the shape of a state (hex, base64url, padded base64,
// digits) accepts it: same length and alphabet. Anything else gets 43
// characters of base64url.
func freshValue(old string) string {
	for {
		v := freshLike(old)
		if v != old {
			return v
		}
	}
}

const (
	hexLower = "0123456789abcdef"
	hexUpper = "0123456789ABCDEF"
	digits   = "0123456789"
	b64url   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func freshLike(old string) string {
	if v, ok := freshJSONState(old); ok {
		return v
	}
	switch {
	case old == "":
		return randomB64URL(32)
	case only(old, digits):
		return randomFrom(digits, len(old))
	case only(old, hexLower):
		return randomFrom(hexLower, len(old))
	case only(old, hexUpper):
		return randomFrom(hexUpper, len(old))
	case only(old, b64url):
		return randomFrom(b64url, len(old))
	}
	if raw, err := base64.StdEncoding.DecodeString(old); err == nil && len(raw) > 0 {
		return base64.StdEncoding.EncodeToString(randomBytes(len(raw)))
	}
	if raw, err := base64.RawStdEncoding.DecodeString(old); err == nil && len(raw) > 0 {
		return base64.RawStdEncoding.EncodeToString(randomBytes(len(raw)))
	}
	return randomB64URL(32)
}

var b64Encodings = []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawURLEncoding, base64.RawStdEncoding}

// freshJSONState renews a state that is base64 of a JSON object (ChatGPT's
// {"csrf":…,"s":"oauth_s_…"}): every string member gets a fresh value of its
// own class, a prefix up to its last '_' kept, members and their order
// unchanged, encoded in the same base64 variant, so the new state decodes
// like the old one.
func freshJSONState(old string) (string, bool) {
	if len(old) < 8 {
		return "", false
	}
	for _, enc := range b64Encodings {
		raw, err := enc.DecodeString(old)
		if err != nil || len(raw) == 0 || raw[0] != '{' {
			continue
		}
		var obj map[string]any
		if json.Unmarshal(raw, &obj) != nil {
			return "", false
		}
		text := string(raw)
		for _, v := range obj {
			sv, ok := v.(string)
			if !ok || sv == "" {
				continue
			}
			nv := freshValue(sv)
			if i := strings.LastIndexByte(sv, '_'); i > 0 && len(sv)-i > 8 {
				nv = sv[:i+1] + freshValue(sv[i+1:])
			}
			q, nq := jsonInner(sv), jsonInner(nv)
			text = strings.Replace(text, `"`+q+`"`, `"`+nq+`"`, 1)
		}
		if text == string(raw) {
			return "", false // no string member to renew
		}
		return enc.EncodeToString([]byte(text)), true
	}
	return "", false
}

func only(s, alphabet string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomB64URL(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

func randomFrom(alphabet string, n int) string {
	out := make([]byte, n)
	m := big.NewInt(int64(len(alphabet)))
	for i := range out {
		k, _ := rand.Int(rand.Reader, m)
		out[i] = alphabet[k.Int64()]
	}
	return string(out)
}

// freshVerifier is a new PKCE code verifier like old: the same length when
// old is a valid verifier of base64url characters, else 43 characters.
func freshVerifier(old string) string {
	if len(old) >= 43 && len(old) <= 128 && only(old, b64url) {
		return freshValue(old)
	}
	return randomB64URL(32)
}

// s256 is the PKCE S256 challenge of a verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
