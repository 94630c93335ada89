package oauth

import (
	"net/url"
	"testing"
)

// Every transformation state.altered names, one row each, plus the values
// that are the same state (byte-equal or equal once decoded).
func TestCompareState(t *testing.T) {
	vscode := "q+Jb/3xZ9v2k1A=="                                       // standard base64 with + / and padding
	chatgpt := "eyJjc3JmIjoiYWJjIiwicyI6Im9hdXRoX3NfMTIzIn0="          // {"csrf":"abc","s":"oauth_s_123"}
	reserialized := "eyJzIjogIm9hdXRoX3NfMTIzIiwgImNzcmYiOiAiYWJjIn0=" // {"s": "oauth_s_123", "csrf": "abc"}
	cases := []struct {
		name, sent, got, want string
	}{
		{"identical", url.QueryEscape(vscode), url.QueryEscape(vscode), ""},
		{"equal once decoded (%3D vs =)", "abc%3D", "abc=", ""},
		{"plus-to-space via %20", url.QueryEscape(vscode), "q%20Jb%2F3xZ9v2k1A%3D%3D", AlterPlusToSpace},
		{"plus-to-space via raw +", url.QueryEscape(vscode), "q+Jb%2F3xZ9v2k1A%3D%3D", AlterPlusToSpace},
		{"double-encoded", url.QueryEscape(vscode), url.QueryEscape(url.QueryEscape(vscode)), AlterDoubleEncoded},
		{"padding-stripped", url.QueryEscape(vscode), "q%2BJb%2F3xZ9v2k1A", AlterPaddingStripped},
		{"padding-added", "yFfQnbI-aCLjYAvAatjVj5Lt", "yFfQnbI-aCLjYAvAatjVj5Lt%3D", AlterPaddingAdded},
		{"truncated", "yFfQnbI-aCLjYAvAatjVj5Lt", "yFfQnbI-aCLj", AlterTruncated},
		{"base64-alphabet", url.QueryEscape(vscode), "q-Jb_3xZ9v2k1A", AlterBase64Alphabet},
		{"json-reserialized", url.QueryEscape(chatgpt), url.QueryEscape(reserialized), AlterJSONReserialize},
		{"case", "yFfQnbI-aCLjYAvAatjVj5Lt", "YFFQNBI-ACLJYAVAATJVJ5LT", AlterCaseWhitespace},
		{"whitespace", "abcdef", "abcdef%20", AlterCaseWhitespace},
		{"other", "yFfQnbI-aCLjYAvAatjVj5Lt", "f00dfeedf00dfeed", AlterOther},
	}
	for _, c := range cases {
		if got := compareState(c.sent, c.got); got != c.want {
			t.Errorf("%s: CompareState(%q, %q) = %q, want %q", c.name, c.sent, c.got, got, c.want)
		}
	}
}
