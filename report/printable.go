package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable makes text safe to print on a terminal or paste into an issue:
// control characters other than newline and tab (ESC, CR, BEL, DEL, the C1
// range) become visible escapes such as \x1b, and bytes that are not UTF-8
// become \xNN, so a state value or a body from anyone who can reach the
// tunnel cannot set the terminal's title, clear the screen or hide a line.
func Printable(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || isControl(r) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
