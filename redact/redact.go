package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/mcptap/mcptap"
)

// secretParams are query, form and JSON member names whose values are
// secrets, written normalized (lower case, no '_' or '-': "accessToken",
// "access_token" and "access-token" are one name; see isSecretName). state,
// client_id, redirect_uri and code_challenge are not: they are what a reader
// compares across hops, and none of them grants access.
var secretParams = map[string]bool{
	"code": true, "codeverifier": true, "accesstoken": true, "refreshtoken": true,
	"idtoken": true, "clientsecret": true, "clientassertion": true, "assertion": true,
	"subjecttoken": true, "actortoken": true, "password": true, "token": true,
	"registrationaccesstoken": true, "idtokenhint": true, "sessiontoken": true,
	"devicecode": true, "apikey": true,
}

// IsSecretName reports whether a parameter or member name carries a secret,
// in any of the spellings clients use ("code", "access_token", "accessToken").
func IsSecretName(name string) bool { return isSecretName(name) }

func isSecretName(name string) bool {
	return secretParams[strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(name))]
}

// minSecretLen keeps tiny values ("1", "ok") from being treated as secrets,
// which would shred unrelated text when Text replaces them everywhere.
const minSecretLen = 4

// Redactor replaces secrets with keyed hashes that keep their length and
// character class, so the same code in a redirect and in a token request still
// visibly matches in an export: ‹redacted:len=43:b64url:3f9a1c›.
//
// It learns secret values from the places OAuth carries them (Authorization,
// cookies, code/token/verifier parameters in queries, forms, Location headers
// and JSON bodies) and then replaces every occurrence of a learned value, in
// any field. Learn every exchange of a recording before redacting any, so a
// value recognised in one exchange is also hidden where it appears unlabelled
// in another. A Redactor is safe for concurrent use.
type Redactor struct {
	key []byte

	mu       sync.Mutex
	secrets  map[string]string // value -> replacement
	replacer *strings.Replacer // rebuilt lazily after new secrets
}

// New returns a Redactor keyed with key; a nil key draws a random one,
// so hashes cannot be compared across reports.
func New(key []byte) *Redactor {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(fmt.Sprintf("redact: random key: %v", err)) // crypto/rand does not fail on supported platforms
		}
	}
	return &Redactor{key: key, secrets: map[string]string{}}
}

// Secret returns the replacement for v and remembers v as a secret.
func (r *Redactor) Secret(v string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.add(v)
}

func (r *Redactor) add(v string) string {
	if s, ok := r.secrets[v]; ok {
		return s
	}
	s := r.placeholder(v)
	if len(v) >= minSecretLen {
		// The same value in every encoding it can take in recorded text is
		// the same secret: percent-encoded (query and path styles), JSON-
		// escaped (Go's and others' \u003c…, and the "\/" some encoders
		// write for '/'), and both at once.
		for _, form := range encodings(v) {
			r.secrets[form] = s
		}
		r.replacer = nil
	}
	return s
}

// encodings are the spellings of v that recorded text can hold.
func encodings(v string) []string {
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		j := string(b[1 : len(b)-1])
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	var jb strings.Builder // JSON with every non-ASCII rune and '/' escaped, as some encoders write
	jsonEscapeAll(&jb, v)
	forms = append(forms, jb.String())
	out := forms[:0]
	seen := map[string]bool{}
	for _, f := range forms {
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func jsonEscapeAll(b *strings.Builder, v string) {
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '/':
			b.WriteString(`\/`)
		case c < 0x20 || c > 0x7e:
			if c > 0xffff {
				c1, c2 := utf16.EncodeRune(c)
				fmt.Fprintf(b, `\u%04x\u%04x`, c1, c2)
			} else {
				fmt.Fprintf(b, `\u%04x`, c)
			}
		default:
			b.WriteRune(c)
		}
	}
}

// marker starts every placeholder.
const marker = "‹redacted:"

// Contains reports whether s holds a placeholder: text that went through a
// Redactor (a redacted export) and no longer carries the values it replaced.
func Contains(s string) bool { return strings.Contains(s, marker) }

// ExchangeRedacted reports whether any part of ex a client sent (target,
// headers, body) holds a placeholder.
func ExchangeRedacted(ex mcptap.Exchange) bool {
	if Contains(ex.Target) || Contains(string(ex.ReqBody)) {
		return true
	}
	for _, vs := range ex.ReqHeader {
		for _, v := range vs {
			if Contains(v) {
				return true
			}
		}
	}
	return false
}

// placeholder is v's keyed hash with its length and character class.
func (r *Redactor) placeholder(v string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(v))
	return fmt.Sprintf("%slen=%d:%s:%s›", marker, len(v), charClass(v), hex.EncodeToString(m.Sum(nil))[:6])
}

// Target returns a request target with the values of its secret query
// parameters (code, access_token, refresh_token, client_secret, …, in the
// query or the fragment) replaced by their keyed hashes. Unlike Text it
// learns nothing and keeps no state, so a view that prints every request of
// a days-long recording (the --no-tui line view) neither grows nor slows.
func (r *Redactor) Target(target string) string {
	i := strings.IndexAny(target, "?#")
	if i < 0 {
		return target
	}
	var b strings.Builder
	b.Grow(len(target))
	b.WriteString(target[:i+1])
	rest := target[i+1:]
	for rest != "" {
		end := strings.IndexAny(rest, "&;#")
		pair, sep := rest, ""
		if end >= 0 {
			pair, sep, rest = rest[:end], rest[end:end+1], rest[end+1:]
		} else {
			rest = ""
		}
		k, v, has := strings.Cut(pair, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		if has && v != "" && isSecretName(dk) {
			pair = k + "=" + r.placeholder(v)
		}
		b.WriteString(pair)
		b.WriteString(sep)
	}
	return b.String()
}

// charClass names the alphabet of v, so a redacted value still says what kind
// of thing it was.
func charClass(v string) string {
	has := func(f func(rune) bool) bool { return strings.IndexFunc(v, f) >= 0 }
	all := func(f func(rune) bool) bool { return strings.IndexFunc(v, func(c rune) bool { return !f(c) }) < 0 }
	digit := func(c rune) bool { return c >= '0' && c <= '9' }
	hexc := func(c rune) bool { return digit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	alnum := func(c rune) bool { return digit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	b64url := func(c rune) bool { return alnum(c) || c == '-' || c == '_' }
	b64 := func(c rune) bool { return alnum(c) || c == '+' || c == '/' || c == '=' }
	switch {
	case v == "":
		return "empty"
	case all(digit):
		return "digits"
	case all(hexc):
		return "hex"
	case all(alnum):
		return "alnum"
	case all(b64url):
		return "b64url"
	case strings.Count(v, ".") == 2 && all(func(c rune) bool { return b64url(c) || c == '.' }):
		return "jwt"
	case all(b64):
		return "b64"
	case has(func(c rune) bool { return c < 0x20 || c > 0x7e }):
		return "binary"
	}
	return "text"
}

// Learn remembers every secret that ex carries, in compressed bodies too.
func (r *Redactor) Learn(ex mcptap.Exchange) {
	ex, _, _ = decodeBodies(ex)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.learnHeaders(ex.ReqHeader)
	r.learnHeaders(ex.RespHeader)
	r.learnQuery(ex.Target)
	r.learnBody(ex.ReqHeader.Get("Content-Type"), ex.ReqBody)
	r.learnBody(ex.RespHeader.Get("Content-Type"), ex.RespBody)
}

func (r *Redactor) learnHeaders(h http.Header) {
	for name, vals := range h {
		for _, v := range vals {
			switch http.CanonicalHeaderKey(name) {
			case "Authorization", "Proxy-Authorization":
				if scheme, cred, ok := strings.Cut(v, " "); ok && !strings.ContainsAny(scheme, "=,") {
					r.add(strings.TrimSpace(cred))
				} else {
					r.add(v)
				}
			case "Cookie":
				for _, c := range strings.Split(v, ";") {
					if _, val, ok := strings.Cut(strings.TrimSpace(c), "="); ok {
						r.add(val)
					}
				}
			case "Set-Cookie":
				first, _, _ := strings.Cut(v, ";")
				if _, val, ok := strings.Cut(first, "="); ok {
					r.add(val)
				}
			case "Location", "Content-Location", "Referer":
				r.learnQuery(v)
			case "X-Api-Key", "Api-Key", "X-Auth-Token":
				r.add(v)
			}
		}
	}
}

// learnQuery finds secret parameters in the query and fragment of a URL or
// request target, read leniently: recordings hold malformed URLs too.
func (r *Redactor) learnQuery(u string) {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		_, q, _ = strings.Cut(u, "#")
	}
	q = strings.ReplaceAll(q, "#", "&")
	r.learnForm(q)
}

func (r *Redactor) learnForm(q string) {
	for _, pair := range strings.FieldsFunc(q, func(c rune) bool { return c == '&' || c == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if !isSecretName(k) || v == "" {
			continue
		}
		r.add(v) // the raw bytes as they stand in the text
		if dv, err := url.QueryUnescape(v); err == nil {
			r.add(dv)
		}
	}
}

// looseJSONSecret finds "name": "value pairs in text that is not (or not
// all) valid JSON: a body cut at --body-cap ends inside its token, and the
// start of a token is still a secret. The value may end without its quote.
var looseJSONSecret = regexp.MustCompile(`"([A-Za-z_-]{2,40})"\s*:\s*"((?:[^"\\]|\\.)*)`)

func (r *Redactor) learnBody(ctype string, body []byte) {
	if len(body) == 0 {
		return
	}
	// Whatever the Content-Type says (or fails to say), a body may hold a
	// form's secrets (a token request sent without a Content-Type).
	if strings.Contains(ctype, "x-www-form-urlencoded") || !bytes.ContainsAny(body, " \n{") {
		r.learnForm(string(body))
	}
	var v any
	if json.Unmarshal(body, &v) == nil { // whole JSON: every member, at any depth
		r.learnJSON(v)
		return
	}
	// Not one JSON document: JSON cut short at --body-cap (the start of a
	// token is still a secret), server-sent events, text quoting JSON.
	for _, m := range looseJSONSecret.FindAllSubmatch(body, -1) {
		if isSecretName(string(m[1])) {
			v := string(m[2])
			var dv string
			if json.Unmarshal([]byte(`"`+v+`"`), &dv) == nil {
				r.add(dv)
			} else {
				r.add(v)
			}
		}
	}
	if bytes.Contains(body, []byte("data:")) { // SSE: JSON in each data line
		for _, line := range bytes.Split(body, []byte("\n")) {
			if d, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:")); ok {
				var v any
				if json.Unmarshal(d, &v) == nil {
					r.learnJSON(v)
				}
			}
		}
	}
}

func (r *Redactor) learnJSON(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, m := range v {
			if s, ok := m.(string); ok {
				lk := strings.ToLower(k)
				switch {
				case isSecretName(k):
					r.add(s)
				case strings.Contains(lk, "url") || strings.Contains(lk, "uri"):
					r.learnQuery(s) // e.g. ChatGPT's {"full_redirect_url": "…?code=…"}
				}
				continue
			}
			r.learnJSON(m)
		}
	case []any:
		for _, m := range v {
			r.learnJSON(m)
		}
	}
}

// Text returns s with every learned secret replaced.
func (r *Redactor) Text(s string) string {
	r.mu.Lock()
	rep := r.replacerLocked()
	r.mu.Unlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

func (r *Redactor) replacerLocked() *strings.Replacer {
	if r.replacer == nil && len(r.secrets) > 0 {
		vals := make([]string, 0, len(r.secrets))
		for v := range r.secrets {
			vals = append(vals, v)
		}
		// Longest first: a secret that contains another must win at the same position.
		sort.Slice(vals, func(i, j int) bool {
			if len(vals[i]) != len(vals[j]) {
				return len(vals[i]) > len(vals[j])
			}
			return vals[i] < vals[j]
		})
		args := make([]string, 0, 2*len(vals))
		for _, v := range vals {
			args = append(args, v, r.secrets[v])
		}
		r.replacer = strings.NewReplacer(args...)
	}
	return r.replacer
}

// Exchange learns ex's secrets and returns a deep copy with every learned
// secret replaced in the target, headers and bodies. Sizes and truncation
// flags keep describing the original bodies.
//
// A body with a Content-Encoding (gzip, deflate, br) is redacted decoded and
// written decoded, with the Content-Encoding header removed and named in an
// X-Mcptap-Decoded header instead: secrets inside compressed bytes cannot be
// replaced in place, and a redacted export must not carry them.
func (r *Redactor) Exchange(ex mcptap.Exchange) mcptap.Exchange {
	r.Learn(ex)
	ex, reqDec, respDec := decodeBodies(ex)
	out := ex
	out.Target = r.Text(ex.Target)
	out.Err = r.Text(ex.Err)
	out.ReqHeader = r.header(ex.ReqHeader)
	out.RespHeader = r.header(ex.RespHeader)
	out.ReqBody = r.body(ex.ReqBody)
	out.RespBody = r.body(ex.RespBody)
	if reqDec {
		markDecoded(out.ReqHeader)
	}
	if respDec {
		markDecoded(out.RespHeader)
	}
	return out
}

// decodeBodies returns ex with compressed bodies decoded (the slices are
// new; ex's are not touched) and which of them were.
func decodeBodies(ex mcptap.Exchange) (mcptap.Exchange, bool, bool) {
	req, reqOK := mcptap.DecodeContent(ex.ReqHeader, ex.ReqBody)
	resp, respOK := mcptap.DecodeContent(ex.RespHeader, ex.RespBody)
	ex.ReqBody, ex.RespBody = req, resp
	return ex, reqOK, respOK
}

// markDecoded moves Content-Encoding to X-Mcptap-Decoded in h, a copy that
// Exchange made.
func markDecoded(h http.Header) {
	if ce := h.Values("Content-Encoding"); len(ce) > 0 {
		h.Del("Content-Encoding")
		h["X-Mcptap-Decoded"] = ce
	}
}

func (r *Redactor) header(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vals := range h {
		nv := make([]string, len(vals))
		for i, v := range vals {
			nv[i] = r.Text(v)
		}
		out[k] = nv
	}
	return out
}

func (r *Redactor) body(b []byte) []byte {
	if b == nil {
		return nil
	}
	return []byte(r.Text(string(b)))
}
