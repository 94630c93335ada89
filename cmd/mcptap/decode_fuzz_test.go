package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode"
)

// FuzzDecodeOutput: `mcptap decode` prints what is inside a value from
// anyone (a state, a token); whatever it holds, and whatever its layers
// decode to, no raw control character reaches the terminal.
func FuzzDecodeOutput(f *testing.F) {
	f.Add("\x1b]0;title\x07")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"csrf":"\u001b[2J","s":"x"}`)))
	f.Add("eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte("{\"sub\":\"\x1b[31m\"}")) + ".")
	f.Add("a%1B%5B2Jb")
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" || strings.HasPrefix(v, "-") {
			return // a flag, not a value
		}
		out, errs, _ := runCmd(t, "decode", v)
		for _, s := range []string{out, errs} {
			if i := strings.IndexFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }); i >= 0 {
				t.Fatalf("decode printed control character %U:\n%q", []rune(s[i:])[0], s)
			}
		}
	})
}
