package oauth

import (
	"bytes"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcptap/mcptap"
)

// exInfo is one exchange as the analysis sees it: the latest published copy
// plus what was parsed out of it once.
type exInfo struct {
	ex    mcptap.Exchange
	order int

	url  string // absolute URL as the client addressed it (X-Forwarded-* honoured)
	base string // url without query
	key  string // host[:port]+path, for matching endpoints named in metadata
	q    Query
	form Query

	kind     mcptap.HopKind // primary classification; "" = unclassified
	redirect bool           // a 3xx whose Location carries code or error: also a redirect hop
	loc      string
	locBase  string
	locQ     Query

	flow        *flow
	inner       bool // the primary hop belongs to the inner (upstream IdP) leg
	redirInner  bool // the redirect hop belongs to the inner leg
	pending     bool
	learned     bool
	link        bool // a ChatGPT link initiation (POST …/links/oauth[/reauth]): no hop kind, correlated by its redirect_url
	bearer      string
	scheme      string // the Authorization scheme that carried bearer, as sent (Bearer, DPoP)
	regKey      string // a registration's client metadata (registrationKey), learnt once
	placed      bool
	prm         *oauthex.ProtectedResourceMetadata
	asm         *oauthex.AuthServerMeta
	reg         *oauthex.ClientRegistrationResponse
	tokenResp   map[string]any
	tokenIsJSON bool
	accessJWT   *Token   // the access token of a token response, decoded once
	judged      bool     // the exchange rules ran on its complete copy
	unchecked   []string // what could not be checked on it: not recorded
	forgotten   bool     // dropped under Options.Forget; still in Tracker.list until it is compacted
	countedIn   *flow    // an MCP call Options.Forget counted in this flow without keeping it as a hop
}

func (x *exInfo) id() string { return x.ex.ID }

func (x *exInfo) at() time.Time { return x.ex.Start }

func (x *exInfo) status() int { return x.ex.Status }

// statusUnrecorded: the answer came, its status was not recorded (see
// mcptap.Exchange.StatusUnrecorded). Its headers and body are read; its
// status is not judged.
func (x *exInfo) statusUnrecorded() bool { return x.ex.StatusUnrecorded() }

// challenge says the answer is a Bearer challenge: a 401, or an answer of
// unrecorded status that carries WWW-Authenticate: Bearer.
func (x *exInfo) challenge() bool {
	return x.status() == 401 || x.statusUnrecorded() && strings.HasPrefix(strings.ToLower(x.respH("WWW-Authenticate")), "bearer")
}

// redirects says the answer is a redirect: a 3xx, or an answer of
// unrecorded status that carries Location.
func (x *exInfo) redirects() bool {
	return isRedirectStatus(x.status()) || x.statusUnrecorded() && x.respH("Location") != ""
}

// succeeded says the answer is a success: a 2xx, or an answer of
// unrecorded status (its body decides what it taught).
func (x *exInfo) succeeded() bool {
	return x.status() >= 200 && x.status() < 300 || x.statusUnrecorded()
}

func (x *exInfo) method() string { return strings.ToUpper(x.ex.Method) }

func (x *exInfo) reqH(k string) string {
	return x.ex.ReqHeader.Get(k)
}

func (x *exInfo) respH(k string) string { return x.ex.RespHeader.Get(k) }

// parse fills the request-side fields; it runs when an exchange is first seen.
func (x *exInfo) parse() {
	ex := &x.ex
	x.url = clientURL(ex)
	x.base, _ = splitURL(x.url)
	_, rawQ := splitURL(x.url)
	x.q = ParseQuery(rawQ)
	x.key = endpointKey(x.base)
	ct := strings.ToLower(ex.ReqHeader.Get("Content-Type"))
	if len(ex.ReqBody) > 0 && (strings.Contains(ct, "x-www-form-urlencoded") ||
		(ct == "" && bytes.Contains(ex.ReqBody, []byte("grant_type=")))) {
		x.form = ParseQuery(strings.TrimSpace(string(ex.ReqBody)))
	} else if strings.Contains(ct, "json") && bytes.Contains(ex.ReqBody, []byte(`"grant_type"`)) {
		// A token request sent as JSON (token.transport judges the
		// encoding): its parameters still say which code it redeems.
		x.form = jsonForm(ex.ReqBody)
	}
	// The access token a request carries: Bearer, or DPoP-bound (RFC 9449
	// §7.1: "Authorization: DPoP <token>" with a DPoP proof header).
	if scheme, tok, ok := strings.Cut(ex.ReqHeader.Get("Authorization"), " "); ok && (strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "dpop")) {
		x.bearer, x.scheme = strings.TrimSpace(tok), scheme
	}
	x.parseResponse()
}

func (x *exInfo) parseResponse() {
	x.loc = x.ex.RespHeader.Get("Location")
	if x.loc != "" {
		base, rawQ := splitURL(x.loc)
		x.locBase = base
		x.locQ = ParseQuery(rawQ)
	}
}

func firstToken(s string) string {
	s, _, _ = strings.Cut(s, ",")
	return strings.TrimSpace(s)
}

func isJSONRPC(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[') && bytes.Contains(b, []byte(`"jsonrpc"`))
}

func isJSONBody(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[') && json.Valid(b)
}

func jsonObject(b []byte) map[string]any {
	v, ok := parseJSON(bytes.TrimSpace(b))
	if !ok {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// hasCodeOrError is true for an authorization response: code or error present.
func hasCodeOrError(q Query) bool {
	_, c := q.Lookup("code")
	_, e := q.Lookup("error")
	return c || e
}

func isRedirectStatus(s int) bool { return s >= 300 && s < 400 && s != 304 }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// decoded is ex with its bodies as the application sent them: a body with
// a Content-Encoding (gzip, deflate, br) is analysed decoded, once, on the
// way in. The caller's copy, and so the recording, keeps the raw bytes.
func decoded(ex mcptap.Exchange) mcptap.Exchange {
	if b, ok := mcptap.DecodeContent(ex.ReqHeader, ex.ReqBody); ok {
		ex.ReqBody = b
	}
	if b, ok := mcptap.DecodeContent(ex.RespHeader, ex.RespBody); ok {
		ex.RespBody = b
	}
	return ex
}

// noteUnchecked records that something about x could not be checked
// because it was not recorded.
func (x *exInfo) noteUnchecked(what string) {
	for _, u := range x.unchecked {
		if u == what {
			return
		}
	}
	x.unchecked = append(x.unchecked, what)
}

// respBodyUnrecorded says the response body is not all there: cut at the
// body cap, or left out by a HAR producer (Playwright and chrome-har-capturer
// omit content.text when the page navigates first). What rests on the body
// is then not checked.
func (x *exInfo) respBodyUnrecorded() bool { return x.ex.RespTruncated }

// isRedacted says v is (or holds) an mcptap redaction placeholder: a value
// that was recorded but is not there to compare.
func isRedacted(v string) bool { return strings.Contains(v, "‹redacted:") }

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// jsonForm reads a JSON object's string members as form parameters.
func jsonForm(b []byte) Query {
	var q Query
	for k, v := range jsonObject(b) {
		if s, ok := v.(string); ok {
			q = append(q, Param{RawKey: k, RawValue: url.QueryEscape(s), Key: k, Value: s, HasValue: true})
		}
	}
	sort.Slice(q, func(i, j int) bool { return q[i].Key < q[j].Key })
	return q
}
