package oauth

import (
	"encoding/base64"
	"reflect"
	"strings"
)

// State transformations named by the state.altered rule (FINDINGS.md).
const (
	AlterPlusToSpace     = "plus-to-space"
	AlterDoubleEncoded   = "double-encoded"
	AlterPaddingStripped = "padding-stripped"
	AlterPaddingAdded    = "padding-added"
	AlterTruncated       = "truncated"
	AlterBase64Alphabet  = "base64-alphabet"
	AlterJSONReserialize = "json-reserialized"
	AlterCaseWhitespace  = "case-or-whitespace"
	AlterOther           = "other"
)

// compareState compares the state an authorize request carried with the one
// that came back, both given raw (still percent-encoded, as on the wire). It
// returns "" when they are the same value (byte-equal, or equal once each is
// percent-decoded the way the client decodes it), and otherwise the first
// transformation that explains the difference.
func compareState(sentRaw, gotRaw string) string {
	if sentRaw == gotRaw {
		return ""
	}
	sent, got := unescape(sentRaw, true), unescape(gotRaw, true)
	if sent == got {
		return ""
	}
	return classifyAlteration(sentRaw, gotRaw, sent, got)
}

func classifyAlteration(sentRaw, gotRaw, sent, got string) string {
	switch {
	case unescape(got, true) == sent && strings.Contains(gotRaw, "%25"):
		return AlterDoubleEncoded
	case strings.Contains(sent, "+") && (got == strings.ReplaceAll(sent, "+", " ") ||
		strings.ReplaceAll(got, " ", "+") == sent):
		return AlterPlusToSpace
	case strings.HasSuffix(sent, "=") && got == strings.TrimRight(sent, "="):
		return AlterPaddingStripped
	case strings.HasSuffix(got, "=") && strings.TrimRight(got, "=") == sent:
		return AlterPaddingAdded
	case got != "" && len(got) < len(sent) && strings.HasPrefix(sent, got):
		return AlterTruncated
	case stdAlphabet(sent) == stdAlphabet(got):
		return AlterBase64Alphabet
	case sameJSON(sent, got):
		return AlterJSONReserialize
	case strings.EqualFold(strings.TrimSpace(sent), strings.TrimSpace(got)):
		return AlterCaseWhitespace
	}
	return AlterOther
}

// stdAlphabet maps a base64url value to the standard alphabet without padding,
// so the two encodings of the same bytes compare equal.
func stdAlphabet(s string) string {
	s = strings.TrimRight(s, "=")
	return strings.NewReplacer("-", "+", "_", "/").Replace(s)
}

// sameJSON is true when both values are base64 (any alphabet) of JSON
// documents that are equal as data but differ as bytes.
func sameJSON(a, b string) bool {
	ja, ok := base64JSON(a)
	if !ok {
		return false
	}
	jb, ok := base64JSON(b)
	return ok && reflect.DeepEqual(ja, jb)
}

func base64JSON(s string) (any, bool) {
	s = strings.TrimRight(stdAlphabet(s), "=")
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return parseJSON(b)
}
