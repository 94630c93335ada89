package resend

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/mcptap/mcptap"
)

// seedFresh adds a fresh state for every authorization request among reqs and a
// fresh PKCE verifier for every verifier, with the challenges that go with
// them: S256(new verifier) for an S256 challenge of a recorded verifier, the
// verifier itself for a plain one, and for a challenge whose token request was
// never recorded, the challenge of a new random verifier.
func seedFresh(s *substitution, reqs []mcptap.Exchange) {
	type challenge struct{ value, method string }
	var states, verifiers []string
	var challenges []challenge
	for i := range reqs {
		for _, p := range params(&reqs[i]) {
			if p.Has("response_type") || p.Has("code_challenge") {
				if st := p.Get("state"); st != "" {
					states = append(states, st)
				}
			}
			if c := p.Get("code_challenge"); c != "" {
				challenges = append(challenges, challenge{c, p.Get("code_challenge_method")})
			}
			if v := p.Get("code_verifier"); v != "" {
				verifiers = append(verifiers, v)
			}
		}
	}
	for _, st := range states {
		if _, ok := s.Lookup(st); !ok {
			s.Add(st, freshValue(st), "state")
		}
	}
	for _, v := range verifiers {
		if _, ok := s.Lookup(v); ok {
			continue
		}
		nv := freshVerifier(v)
		s.Add(v, nv, "code_verifier")
		s.Add(s256(v), s256(nv), "code_challenge")
	}
	for _, c := range challenges {
		if _, ok := s.Lookup(c.value); ok {
			continue
		}
		if strings.EqualFold(c.method, "plain") {
			s.Add(c.value, freshVerifier(c.value), "code_challenge")
		} else {
			s.Add(c.value, s256(freshVerifier("")), "code_challenge")
		}
	}
}

// params are the query parameters of a request and, for a form body, its
// form parameters.
func params(ex *mcptap.Exchange) []url.Values {
	var out []url.Values
	if i := strings.IndexByte(ex.Target, '?'); i >= 0 {
		if q, err := url.ParseQuery(ex.Target[i+1:]); err == nil || len(q) > 0 {
			out = append(out, q)
		}
	}
	if strings.Contains(strings.ToLower(ex.ReqHeader.Get("Content-Type")), "x-www-form-urlencoded") {
		if f, err := url.ParseQuery(string(ex.ReqBody)); err == nil || len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// sentResponse is what learnResponse compares: the parts of a response that hand out values.
type sentResponse struct {
	Header http.Header
	Body   []byte
}

// namedJSON are JSON members whose values a client carries into later
// requests whatever their length.
var namedJSON = map[string]bool{
	"client_id": true, "client_secret": true, "access_token": true, "refresh_token": true,
	"id_token": true, "registration_access_token": true, "code": true, "device_code": true,
}

// namedHeaders are response headers whose value a client sends back.
var namedHeaders = []string{"Mcp-Session-Id"}

// learnResponse compares a recorded response with the new response to the same
// request and adds, for every value both carry in the same place and that
// differs, the recorded value → new value: query and fragment parameters of
// Location (the code, the echoed state), string members of JSON bodies (also
// inside event-stream data lines), hidden form fields of HTML pages,
// Set-Cookie values by name, and Mcp-Session-Id.
func learnResponse(s *substitution, old, fresh sentResponse) {
	if lo, ln := old.Header.Get("Location"), fresh.Header.Get("Location"); lo != "" && ln != "" {
		learnURL(s, lo, ln)
	}
	for _, h := range namedHeaders {
		if o, n := old.Header.Get(h), fresh.Header.Get(h); o != "" && n != "" {
			s.Add(o, n, "header."+h)
		}
	}
	oc, nc := cookies(old.Header), cookies(fresh.Header)
	for name, o := range oc {
		if n, ok := nc[name]; ok && len(o) >= 6 {
			s.Add(o, n, "cookie."+name)
		}
	}
	ob, nb := decoded(old.Header, old.Body), decoded(fresh.Header, fresh.Body)
	oj, nj := jsonDocs(old.Header, ob), jsonDocs(fresh.Header, nb)
	for i := 0; i < len(oj) && i < len(nj); i++ {
		walkJSON(s, "", oj[i], nj[i])
	}
	if isHTML(old.Header) && isHTML(fresh.Header) {
		ni := hiddenInputs(nb)
		for name, o := range hiddenInputs(ob) {
			if n, ok := ni[name]; ok && o != "" {
				s.Add(o, n, "form."+name)
			}
		}
	}
}

func learnURL(s *substitution, oldURL, newURL string) {
	ou, err1 := url.Parse(oldURL)
	nu, err2 := url.Parse(newURL)
	if err1 != nil || err2 != nil {
		return
	}
	pairs := func(o, n string) {
		oq, _ := url.ParseQuery(o)
		nq, _ := url.ParseQuery(n)
		for k, ov := range oq {
			nv := nq[k]
			if len(ov) == 1 && len(nv) == 1 {
				s.Add(ov[0], nv[0], "location."+k)
			}
		}
	}
	pairs(ou.RawQuery, nu.RawQuery)
	pairs(ou.Fragment, nu.Fragment)
}

func cookies(h http.Header) map[string]string {
	out := map[string]string{}
	for _, line := range h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil {
			out[c.Name] = c.Value
		}
	}
	return out
}

// decoded undoes a gzip Content-Encoding; the proxy records the body as it
// crossed the wire.
func decoded(h http.Header, b []byte) []byte {
	if !strings.EqualFold(h.Get("Content-Encoding"), "gzip") || len(b) == 0 {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(io.LimitReader(zr, 8<<20))
	if err != nil && len(out) == 0 {
		return b
	}
	return out
}

// jsonDocs parses a JSON body, or the data lines of an event stream, one
// document per event.
func jsonDocs(h http.Header, b []byte) []any {
	ct := strings.ToLower(h.Get("Content-Type"))
	var raws [][]byte
	if strings.Contains(ct, "event-stream") {
		for _, line := range bytes.Split(b, []byte("\n")) {
			line = bytes.TrimRight(line, "\r")
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				raws = append(raws, bytes.TrimSpace(d))
			}
		}
	} else {
		raws = [][]byte{b}
	}
	var out []any
	for _, r := range raws {
		var v any
		if json.Unmarshal(r, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// walkJSON pairs string members at the same path. Besides the named members,
// only opaque-looking strings (8+ characters, no space, no "://") are taken, so
// that a changed URL or message text is never substituted into later requests.
func walkJSON(s *substitution, key string, o, n any) {
	switch ov := o.(type) {
	case map[string]any:
		nm, ok := n.(map[string]any)
		if !ok {
			return
		}
		for k, v := range ov {
			if nv, ok := nm[k]; ok {
				walkJSON(s, k, v, nv)
			}
		}
	case []any:
		na, ok := n.([]any)
		if !ok {
			return
		}
		for i := 0; i < len(ov) && i < len(na); i++ {
			walkJSON(s, key, ov[i], na[i])
		}
	case string:
		nv, ok := n.(string)
		if !ok || ov == nv {
			return
		}
		if namedJSON[key] || (len(ov) >= 8 && !strings.ContainsAny(ov, " \t\n") && !strings.Contains(ov, "://")) {
			s.Add(ov, nv, "json."+key)
		}
	}
}

func isHTML(h http.Header) bool {
	return strings.Contains(strings.ToLower(h.Get("Content-Type")), "html")
}

var (
	reInput = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	reName  = regexp.MustCompile(`(?is)\bname\s*=\s*["']([^"']*)["']`)
	reValue = regexp.MustCompile(`(?is)\bvalue\s*=\s*["']([^"']*)["']`)
	reType  = regexp.MustCompile(`(?is)\btype\s*=\s*["']?hidden`)
)

// hiddenInputs maps the names of an HTML page's hidden inputs to their
// values (the first of each name): the per-request values a consent form
// posts back.
func hiddenInputs(b []byte) map[string]string {
	out := map[string]string{}
	for _, tag := range reInput.FindAll(b, -1) {
		if !reType.Match(tag) {
			continue
		}
		nm, vm := reName.FindSubmatch(tag), reValue.FindSubmatch(tag)
		if nm == nil || vm == nil {
			continue
		}
		if _, ok := out[string(nm[1])]; !ok {
			out[string(nm[1])] = htmlUnescape(string(vm[1]))
		}
	}
	return out
}

var htmlEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'", "&#34;", `"`)

func htmlUnescape(s string) string { return htmlEntities.Replace(s) }
