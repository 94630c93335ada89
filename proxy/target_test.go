package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRawTarget: for every request target Go's server accepts, the URL the
// proxy builds for the upstream writes back exactly the same target (behind
// the upstream's prefix), except that a path starting with "//" may have
// characters outside RFC 3986 escaped (documented in setRawTarget).
func FuzzRawTarget(f *testing.F) {
	for _, s := range []string{
		"/authorize?state=a%2Bb%3D%3D&x=+&x=2",
		"/cb?redirect_uri=https://chatgpt.com/cb?x=1&y=2",
		"/q?bad=%zz&semi=a;b",
		"/a/{x}|y/%2F/%7e?",
		"//double//slash?q",
		"*",
		"/",
		"/p?#frag",
	} {
		f.Add(s, "")
		f.Add(s, "/base")
	}
	f.Fuzz(func(t *testing.T, target, prefix string) {
		if target == "" || strings.ContainsAny(target, " \r\n\x00") {
			return
		}
		for _, c := range []byte(target) {
			if c < 0x20 || c == 0x7f {
				return // the server rejects control bytes before a handler runs
			}
		}
		pu, err := url.ParseRequestURI(target)
		if err != nil {
			return // the server answers 400 itself
		}
		if prefix != "" && (!strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "?#%") || strings.HasSuffix(prefix, "/")) {
			return // Listen derives prefixes from a parsed upstream URL: escaped, no trailing slash
		}
		in := &http.Request{RequestURI: target, URL: pu}
		out := &url.URL{Scheme: "http", Host: "upstream:1"}
		setRawTarget(out, in, prefix)
		got := out.RequestURI()
		want := target
		if target != "*" && target[0] == '/' {
			want = prefix + target
		}
		if strings.HasPrefix(want, "//") {
			// Path/RawPath route: the bytes survive unless they need escaping.
			if gu, err := url.ParseRequestURI(got); err != nil || gu.Path != pu.Path && prefix == "" {
				t.Fatalf("target %q: upstream target %q decodes differently", target, got)
			}
			return
		}
		if target[0] != '/' && target != "*" {
			return // absolute-form: only the URL's own escaping is available
		}
		if got != want {
			t.Fatalf("target %q prefix %q: upstream target %q, want %q", target, prefix, got, want)
		}
	})
}

// FuzzOriginForm: the browser proxy's absolute-form to origin-form step never
// panics, keeps the path and query bytes exactly, and always yields a target
// that starts with "/" for an absolute URL with a host.
func FuzzOriginForm(f *testing.F) {
	for _, s := range []string{"http://h/p?q", "https://h", "http://h?x=1", "/already", "*", "", "host:443", "http://", "x://y/z\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := originForm(target)
		i := strings.Index(target, "://")
		switch {
		case target == "" || target[0] == '/' || target == "*" || i < 0:
			if got != target {
				t.Fatalf("originForm(%q) = %q, want it unchanged", target, got)
			}
		default:
			if !strings.HasPrefix(got, "/") || !strings.HasSuffix(target, strings.TrimPrefix(got, "/")) {
				t.Fatalf("originForm(%q) = %q: not the path and query of the target", target, got)
			}
		}
	})
}
