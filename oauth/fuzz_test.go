package oauth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode: any value decodes without panic, within the layer limit, with
// the raw value first.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"eyJjc3JmIjoiZDA2Mzg3Y2YiLCJzIjoib2F1dGhfc182OWRhNmQzMyJ9",
		"eyJjc3JmIjoiZDA2Mzg3Y2YiLCJzIjoib2F1dGhfc182OWRhNmQzMyJ9%253D",
		"openai_platform_oauth_relay__" + base64.StdEncoding.EncodeToString([]byte(`{"oauth_id":"oauth_s_1","t":"a?b=c+d"}`)),
		"oauth_s_69da6d33622081919e8b5e43c89ff601", "15014bf5-e45f-45d8-816f-ff1e4da87e81",
		"eyJhbGciOiJub25lIn0.e30.", "a.b.c.d.e", "%zz%", "{\"a\":[\"eyJ9\",{\"b\":\"x\"}]}", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ls := Decode(v)
		if len(ls) == 0 || ls[0].Kind != "raw" || ls[0].Text != v {
			t.Fatalf("first layer %+v, want raw %q", ls, v)
		}
		if len(ls) > maxDecodeLayers {
			t.Fatalf("%d layers", len(ls))
		}
		_ = decodeState(v)
	})
}

// FuzzDecodeJWT: any token decodes without panic to one of the three kinds,
// and a JWS built from the fuzzed claims reads back.
func FuzzDecodeJWT(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln", `{"aud":"x","exp":1}`)
	f.Add("a.b.c.d.e", `{"aud":["a","b"]}`)
	f.Add("opaque", `[]`)
	f.Add("..", `{"exp":"soon"}`)
	f.Fuzz(func(t *testing.T, tok, claims string) {
		d := DecodeJWT(tok)
		switch d.Kind {
		case "jwt", "jwe", "opaque":
		default:
			t.Fatalf("kind %q", d.Kind)
		}
		_ = d.Audience()
		_ = d.Expiry(T0)
		built := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".x"
		if b := DecodeJWT(built); b.Kind != "jwt" {
			t.Fatalf("built token kind %q", b.Kind)
		}
	})
}

// T0 is a fixed "now" for fuzzing Expiry.
var T0 = mustTime()

// FuzzParseQuery: the parser never fails, keeps every raw byte (joining the
// raw pairs gives the input back, empty pairs aside) and decodes each value
// the way Unescape does.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"state=a%2Bb+c&code=x&code=y", "%zz=%", "a&&b=&=c", "redirect_uri=https%3A%2F%2Fh%2Fcb%3Fa%3D1&x=%E2%80%A2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := ParseQuery(raw)
		var parts []string
		for _, p := range q {
			s := p.RawKey
			if p.HasValue {
				s += "=" + p.RawValue
			}
			parts = append(parts, s)
			if p.Value != unescape(p.RawValue, true) || p.Key != unescape(p.RawKey, true) {
				t.Fatalf("decoded %q/%q from %q/%q", p.Key, p.Value, p.RawKey, p.RawValue)
			}
		}
		var want []string
		for _, s := range strings.Split(raw, "&") {
			if s != "" {
				want = append(want, s)
			}
		}
		if strings.Join(parts, "&") != strings.Join(want, "&") {
			t.Fatalf("raw pairs %q, want %q", parts, want)
		}
		if utf8.ValidString(raw) && !strings.Contains(raw, "%") && !strings.Contains(raw, "+") {
			for _, p := range q {
				if p.Value != p.RawValue {
					t.Fatalf("plain value changed: %q -> %q", p.RawValue, p.Value)
				}
			}
		}
	})
}

// FuzzCompareState: comparing a state with itself is always "same", and any
// pair classifies without panic into one of the named transformations.
func FuzzCompareState(f *testing.F) {
	f.Add("q%2BJb%2F3xZ9v2k1A%3D%3D", "q+Jb%2F3xZ9v2k1A%3D%3D")
	f.Add("eyJhIjoxfQ%3D%3D", "eyJhIjogMX0%3D")
	f.Fuzz(func(t *testing.T, a, b string) {
		if compareState(a, a) != "" {
			t.Fatal("a state differs from itself")
		}
		switch compareState(a, b) {
		case "", AlterPlusToSpace, AlterDoubleEncoded, AlterPaddingStripped, AlterPaddingAdded, AlterTruncated,
			AlterBase64Alphabet, AlterJSONReserialize, AlterCaseWhitespace, AlterOther:
		default:
			t.Fatal("unknown transformation")
		}
	})
}

func mustTime() time.Time { return time.Unix(1773480413, 0).UTC() }
