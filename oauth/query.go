package oauth

import "strings"

// Param is one key=value pair of a query string or form body, kept both as
// the bytes that were on the wire and decoded the way form parsers decode it
// ('+' is a space, %XX a byte; a malformed escape is kept literally).
type Param struct {
	RawKey   string
	RawValue string
	Key      string
	Value    string
	HasValue bool // "k=" or "k=v", as opposed to a bare "k"
}

// Query is an ordered list of parameters, duplicates included.
type Query []Param

// ParseQuery splits a raw query string (without the leading '?') on '&' (and
// ';' is not a separator: modern servers do not treat it as one). It never
// fails: malformed escapes such as %zz are left as they are.
func ParseQuery(raw string) Query {
	if raw == "" {
		return nil
	}
	q := make(Query, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, has := strings.Cut(part, "=")
		q = append(q, Param{RawKey: k, RawValue: v, Key: unescape(k, true), Value: unescape(v, true), HasValue: has})
	}
	return q
}

// Get returns the decoded value of the first parameter named key.
func (q Query) Get(key string) string {
	v, _ := q.Lookup(key)
	return v
}

// Lookup returns the decoded value of the first parameter named key and
// whether it was present at all.
func (q Query) Lookup(key string) (string, bool) {
	for i := range q {
		if q[i].Key == key {
			return q[i].Value, true
		}
	}
	return "", false
}

// Raw returns the raw (still encoded) value of the first parameter named key.
func (q Query) Raw(key string) (string, bool) {
	for i := range q {
		if q[i].Key == key {
			return q[i].RawValue, true
		}
	}
	return "", false
}

// Count is how many times key occurs.
func (q Query) Count(key string) int {
	n := 0
	for i := range q {
		if q[i].Key == key {
			n++
		}
	}
	return n
}

// unescape percent-decodes s once. With plus, '+' becomes a space (form
// semantics). Invalid escapes are kept as they are instead of failing, because
// the point is to show what a server would most likely have seen.
func unescape(s string, plus bool) string {
	if strings.IndexByte(s, '%') < 0 && (!plus || strings.IndexByte(s, '+') < 0) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '+' && plus:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
