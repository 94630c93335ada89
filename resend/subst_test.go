package resend

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
)

// The recorded values of one flow and their fresh replacements, with the
// characters that need care: '+', '/' and '=' in a padded base64 state, '~'
// and '.' nowhere (they are valid in a verifier but kept simple here).
var (
	oldState  = "ab+c/d=="
	newState  = "XY+z/Q=="
	oldCode   = "code-OLD-123"
	newCode   = "code-NEW-456"
	oldVerif  = "vOLDvOLDvOLDvOLDvOLDvOLDvOLDvOLDvOLDvOLDvOL"
	newVerif  = "vNEWvNEWvNEWvNEWvNEWvNEWvNEWvNEWvNEWvNEWvNE"
	oldClient = "client-old-1"
	newClient = "client-new-2"
	oldBearer = "eyJ.old.sig"
	newBearer = "eyJ.new.sig"
)

func flowSubstitution() *substitution {
	var s substitution
	s.Add(oldState, newState, "state")
	s.Add(oldVerif, newVerif, "code_verifier")
	s.Add(s256(oldVerif), s256(newVerif), "code_challenge")
	s.Add(oldCode, newCode, "location.code")
	s.Add(oldClient, newClient, "json.client_id")
	s.Add(oldBearer, newBearer, "json.access_token")
	s.Add("plainOld99", "new&val=1", "json.code")
	return &s
}

func TestSubstitution(t *testing.T) {
	s := flowSubstitution()
	q := url.QueryEscape
	cases := []struct {
		name string
		kind string // target, header, form, json, text
		in   string
		want string
	}{
		{"state raw in query", "target", "/authorize?state=" + oldState, "/authorize?state=" + newState},
		{"state percent-encoded in query", "target", "/authorize?state=" + q(oldState) + "&x=1", "/authorize?state=" + q(newState) + "&x=1"},
		{"state lower-case percent-encoding", "target", "/authorize?state=ab%2bc%2fd%3d%3d", "/authorize?state=" + lowerHex(q(newState))},
		{"authorize with everything", "target",
			"/authorize?response_type=code&client_id=" + oldClient + "&state=" + q(oldState) + "&code_challenge=" + s256(oldVerif) + "&code_challenge_method=S256",
			"/authorize?response_type=code&client_id=" + newClient + "&state=" + q(newState) + "&code_challenge=" + s256(newVerif) + "&code_challenge_method=S256"},
		{"token form", "form",
			"grant_type=authorization_code&code=" + oldCode + "&code_verifier=" + oldVerif + "&client_id=" + oldClient,
			"grant_type=authorization_code&code=" + newCode + "&code_verifier=" + newVerif + "&client_id=" + newClient},
		{"state in a form body", "form", "state=" + q(oldState), "state=" + q(newState)},
		{"json body", "json", `{"client_id":"` + oldClient + `","state":"` + oldState + `"}`, `{"client_id":"` + newClient + `","state":"` + newState + `"}`},
		{"fresh value with delimiters the old one lacked", "target", "/x?v=plainOld99&w=2", "/x?v=new%26val%3D1&w=2"},
		{"same value in a header stays raw", "header", "plainOld99", "new&val=1"},
		{"bearer header", "header", "Bearer " + oldBearer, "Bearer " + newBearer},
		{"unrelated text untouched", "target", "/mcp?x=client-old&y=code-OLD", "/mcp?x=client-old&y=code-OLD"},
		{"no partial word: longer value wins", "text", oldClient + "0 " + oldClient, newClient + "0 " + newClient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			switch c.kind {
			case "target":
				got = s.Target(c.in)
			case "header":
				got = s.Header(http.Header{"Authorization": {c.in}}).Get("Authorization")
			case "form":
				got = string(s.Body("application/x-www-form-urlencoded", []byte(c.in)))
			case "json":
				got = string(s.Body("application/json", []byte(c.in)))
			case "text":
				got = string(s.Body("text/plain", []byte(c.in)))
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// The header copy must not share slices with the recorded exchange.
func TestSubstitutionHeaderIsACopy(t *testing.T) {
	s := flowSubstitution()
	h := http.Header{"Authorization": {"Bearer " + oldBearer}}
	out := s.Header(h)
	out["Authorization"][0] = "x"
	if h.Get("Authorization") != "Bearer "+oldBearer {
		t.Fatal("Header changed the recorded header")
	}
}

func TestSeed(t *testing.T) {
	plainChallenge := "pLaInpLaInpLaInpLaInpLaInpLaInpLaInpLaInpLa"
	reqs := []mcptap.Exchange{
		{Method: "GET", Target: "/authorize?response_type=code&state=" + url.QueryEscape(oldState) + "&code_challenge=" + s256(oldVerif) + "&code_challenge_method=S256"},
		{Method: "GET", Target: "/authorize?response_type=code&state=0123abcd&code_challenge=" + plainChallenge + "&code_challenge_method=plain"},
		{Method: "GET", Target: "/authorize?response_type=code&state=s2&code_challenge=orphanChallenge&code_challenge_method=S256"},
		{Method: "POST", Target: "/token", ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			ReqBody: []byte("grant_type=authorization_code&code=c&code_verifier=" + oldVerif)},
	}
	var s substitution
	seedFresh(&s, reqs)
	nv, ok := s.Lookup(oldVerif)
	if !ok || len(nv) != len(oldVerif) || !only(nv, b64url) {
		t.Fatalf("verifier %q -> %q, want a fresh 43-char base64url verifier", oldVerif, nv)
	}
	if c, _ := s.Lookup(s256(oldVerif)); c != s256(nv) {
		t.Errorf("S256 challenge -> %q, want S256(new verifier) %q", c, s256(nv))
	}
	if c, ok := s.Lookup(plainChallenge); !ok || c == plainChallenge || len(c) != len(plainChallenge) {
		t.Errorf("plain challenge -> %q, want a fresh verifier-like value", c)
	}
	if c, ok := s.Lookup("orphanChallenge"); !ok || len(c) != 43 {
		t.Errorf("challenge without a token request -> %q, want a fresh S256 challenge", c)
	}
	ns, ok := s.Lookup(oldState)
	if !ok || !regexp.MustCompile(`^[A-Za-z0-9+/]{6}==$`).MatchString(ns) {
		t.Errorf("state %q -> %q, want fresh padded base64 of the same length", oldState, ns)
	}
	if ns, _ := s.Lookup("0123abcd"); !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(ns) || ns == "0123abcd" {
		t.Errorf("hex state -> %q, want fresh hex of the same length", ns)
	}
	if _, ok := s.Lookup("c"); ok {
		t.Error("a code is not seeded: it comes from the new redirect")
	}
}

func TestFresh(t *testing.T) {
	cases := []struct{ old, pattern string }{
		{"0123456789abcdef0123", `^[0-9a-f]{20}$`},
		{"0123456789ABCDEF", `^[0-9A-F]{16}$`},
		{"12345678", `^[0-9]{8}$`},
		{"abcDEF-_xyz", `^[A-Za-z0-9_-]{11}$`},
		{"YWJjZGVm+/8=", `^[A-Za-z0-9+/]{11}=$`},
		{"eyJhIjoxfQ.eyJiIjoyfQ.c2ln", `^[A-Za-z0-9_-]{43}$`},
		{"", `^[A-Za-z0-9_-]{43}$`},
		// base64 of {"csrf":"9a7d9605","s":"oauth_s_94c7a31474b25c4a"}: stays a JSON state
		{"eyJjc3JmIjoiOWE3ZDk2MDUiLCJzIjoib2F1dGhfc185NGM3YTMxNDc0YjI1YzRhIn0=", `^eyJjc3JmIjoi[A-Za-z0-9+/]+=*$`},
	}
	for _, c := range cases {
		got := freshValue(c.old)
		if got == c.old || !regexp.MustCompile(c.pattern).MatchString(got) {
			t.Errorf("Fresh(%q) = %q, want %s and different", c.old, got, c.pattern)
		}
	}
}

func TestFreshJSONState(t *testing.T) {
	old := base64.StdEncoding.EncodeToString([]byte(`{"csrf":"9a7d9605","s":"oauth_s_94c7a31474b25c4a","n":1}`))
	got, err := base64.StdEncoding.DecodeString(freshValue(old))
	if err != nil {
		t.Fatalf("fresh JSON state is not padded base64: %v", err)
	}
	re := regexp.MustCompile(`^\{"csrf":"([0-9a-f]{8})","s":"oauth_s_([0-9a-f]{16})","n":1\}$`)
	m := re.FindStringSubmatch(string(got))
	if m == nil || m[1] == "9a7d9605" || m[2] == "94c7a31474b25c4a" {
		t.Errorf("fresh state decodes to %s, want the same members with fresh hex values", got)
	}
}

func TestLearn(t *testing.T) {
	html := func(tx string) []byte {
		return []byte(`<form method="post"><input type="hidden" name="tx" value="` + tx + `"><button name="decision" value="approve">`)
	}
	cases := []struct {
		name       string
		old, fresh sentResponse
		want       map[string]string // old -> new
		not        []string          // old values that must not be learned
	}{
		{"code and state from Location",
			sentResponse{Header: http.Header{"Location": {"http://cb/callback?code=oldcode&state=" + url.QueryEscape(oldState)}}},
			sentResponse{Header: http.Header{"Location": {"http://cb/callback?code=newcode&state=" + url.QueryEscape(newState)}}},
			map[string]string{"oldcode": "newcode", oldState: newState}, nil},
		{"registration and token JSON",
			sentResponse{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"client_id":"c1","client_secret":"s-old-secret","redirect_uris":["http://a/cb"],"issuer":"http://as/","access_token":"at-old-0000","expires_in":3600,"scope":"read write"}`)},
			sentResponse{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"client_id":"c2","client_secret":"s-new-secret","redirect_uris":["http://b/cb"],"issuer":"http://as","access_token":"at-new-0000","expires_in":7200,"scope":"read"}`)},
			map[string]string{"c1": "c2", "s-old-secret": "s-new-secret", "at-old-0000": "at-new-0000"},
			[]string{"http://a/cb", "http://as/", "read write"}},
		{"consent hidden field",
			sentResponse{Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, Body: html("tx-old-0001")},
			sentResponse{Header: http.Header{"Content-Type": {"text/html"}}, Body: html("tx-new-0002")},
			map[string]string{"tx-old-0001": "tx-new-0002"}, []string{"approve"}},
		{"MCP session and cookie",
			sentResponse{Header: http.Header{"Mcp-Session-Id": {"sess-old"}, "Set-Cookie": {"sid=cookie-old; Path=/; HttpOnly"}}},
			sentResponse{Header: http.Header{"Mcp-Session-Id": {"sess-new"}, "Set-Cookie": {"sid=cookie-new; Path=/"}}},
			map[string]string{"sess-old": "sess-new", "cookie-old": "cookie-new"}, nil},
		{"event stream data",
			sentResponse{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: []byte("event: message\ndata: {\"result\":{\"token\":\"opaque-old-1\"}}\n\n")},
			sentResponse{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: []byte("event: message\ndata: {\"result\":{\"token\":\"opaque-new-1\"}}\n\n")},
			map[string]string{"opaque-old-1": "opaque-new-1"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s substitution
			learnResponse(&s, c.old, c.fresh)
			for o, n := range c.want {
				if got, ok := s.Lookup(o); !ok || got != n {
					t.Errorf("%q -> %q (%v), want %q", o, got, ok, n)
				}
			}
			for _, o := range c.not {
				if got, ok := s.Lookup(o); ok {
					t.Errorf("learned %q -> %q, want it left alone", o, got)
				}
			}
		})
	}
}

func TestCompare(t *testing.T) {
	f := func(rule mcptap.RuleID, sev mcptap.Severity) mcptap.Finding {
		return mcptap.Finding{Rule: rule, Severity: sev, Fault: mcptap.FaultServer}
	}
	d := compareFindings(
		[]mcptap.Finding{f("a.fixed", mcptap.SevError), f("a.fixed", mcptap.SevError), f("c.stayed", mcptap.SevWarning)},
		[]mcptap.Finding{f("b.new", mcptap.SevWarning), f("c.stayed", mcptap.SevWarning)},
	)
	if len(d.Fixed) != 1 || d.Fixed[0].Rule != "a.fixed" || d.Fixed[0].Before != 2 || d.Fixed[0].After != 0 {
		t.Errorf("fixed = %+v", d.Fixed)
	}
	if len(d.New) != 1 || d.New[0].Rule != "b.new" || d.New[0].After != 1 {
		t.Errorf("new = %+v", d.New)
	}
	if len(d.Stayed) != 1 || d.Stayed[0].Rule != "c.stayed" {
		t.Errorf("stayed = %+v", d.Stayed)
	}
}

// learnResponse reads response bodies and headers from any server: it must not
// panic, and only ever learns values the old response carried.
func FuzzLearn(f *testing.F) {
	f.Add("application/json", `{"client_id":"a","x":["12345678"]}`, `{"client_id":"b","x":["87654321"]}`, "http://x/?code=1", "http://x/?code=2")
	f.Add("text/html", `<input type="hidden" name="tx" value="1">`, `<input type=hidden name='tx' value='2'>`, "", "")
	f.Add("text/event-stream", "data: {\"a\":\"xxxxxxxxxx\"}\n", "data: [1,2]\n", "%zz", "::")
	f.Fuzz(func(t *testing.T, ct, ob, nb, ol, nl string) {
		var s substitution
		old := sentResponse{Header: http.Header{"Content-Type": {ct}, "Location": {ol}}, Body: []byte(ob)}
		learnResponse(&s, old, sentResponse{Header: http.Header{"Content-Type": {ct}, "Location": {nl}}, Body: []byte(nb)})
		for _, p := range s.Pairs() {
			if p.Old == "" || p.Old == p.New {
				t.Fatalf("useless pair %+v", p)
			}
		}
		_ = s.Target("/x?" + ob)
		_ = s.Body(ct, []byte(nb))
		_ = strings.ToLower(ct)
	})
}

func TestSelect(t *testing.T) {
	rev := func(id, up, target string) mcptap.Exchange {
		return mcptap.Exchange{ID: id, Mode: mcptap.ModeReverse, Upstream: up, Method: "GET", Host: "tunnel.example", Target: target}
	}
	har := func(id, u string) mcptap.Exchange {
		pu, _ := url.Parse(u)
		return mcptap.Exchange{ID: id, Mode: mcptap.ModeHAR, Method: "GET", Scheme: pu.Scheme, Host: pu.Host, Target: pu.RequestURI()}
	}
	proxied := []mcptap.Exchange{
		rev("01", "http://127.0.0.1:3000", "/.well-known/oauth-protected-resource"),
		rev("02", "http://127.0.0.1:4000", "/callback?code=x"),
		rev("03", "http://127.0.0.1:3000", "/token"),
		{ID: "04", Mode: mcptap.ModeForward, Method: "GET", Target: "https://chatgpt.com/x"},
	}
	browser := []mcptap.Exchange{
		har("11", "https://chatgpt.com/backend/x"),
		har("12", "https://mcp.example/.well-known/oauth-protected-resource"),
		har("13", "https://mcp.example/authorize?state=s"),
		har("14", "https://chatgpt.com/backend/y"),
		har("15", "https://chatgpt.com/backend/z"),
	}
	cases := []struct {
		name           string
		exs            []mcptap.Exchange
		from, upstream string
		want           string
		ids            string
		err            bool
	}{
		{"the new upstream was recorded", proxied, "", "http://127.0.0.1:4000/", "http://127.0.0.1:4000", "02", false},
		{"else the upstream of the MCP hops", proxied, "", "http://127.0.0.1:9999", "http://127.0.0.1:3000", "01 03", false},
		{"--from wins", proxied, "http://127.0.0.1:4000", "http://127.0.0.1:3000", "http://127.0.0.1:4000", "02", false},
		{"--from not recorded", proxied, "http://127.0.0.1:5000", "", "", "", true},
		{"HAR: the origin of the MCP server, not the busiest", browser, "", "http://127.0.0.1:9999", "https://mcp.example", "12 13", false},
		{"nothing re-sendable", proxied[3:], "", "http://x", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, key, err := selectRequests(c.exs, c.from, c.upstream)
			if c.err {
				if err == nil {
					t.Fatalf("want an error, got %s", key)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ex := range got {
				ids = append(ids, ex.ID)
			}
			if key != c.want || strings.Join(ids, " ") != c.ids {
				t.Errorf("Select = %s [%s], want %s [%s]", key, strings.Join(ids, " "), c.want, c.ids)
			}
		})
	}
}

// freshValue renews states from any client: it must return, differ and keep the
// length of a plain-alphabet value.
func FuzzFresh(f *testing.F) {
	for _, s := range []string{"", "a", "0", "ab+c/d==", "e30=", "eyJuIjoxfQ", "eyJzIjoicyJ9", "x.y.z", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, old string) {
		got := freshValue(old)
		if got == old {
			t.Fatalf("Fresh(%q) returned it unchanged", old)
		}
		if old != "" && only(old, b64url) && len(got) != len(old) && !strings.HasPrefix(old, "eyJ") {
			t.Fatalf("Fresh(%q) = %q: length changed", old, got)
		}
	})
}
