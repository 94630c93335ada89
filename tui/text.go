package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// fit cuts or pads s (which may hold ANSI styles) to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := ansi.StringWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-n)
}

// clip cuts s to at most w cells without padding.
func clip(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	return s
}

// short returns the first n runes of s followed by an ellipsis if longer.
func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// dur formats a duration compactly: 850ms, 12.3s, 1m02s, 2h05m.
func dur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// clock formats a running timer as m:ss.
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// diffSpan returns the byte range [i, j) of a and [i, k) of b that differ
// once the common prefix and suffix are removed. Equal strings give i == j == k.
func diffSpan(a, b string) (i, j, k int) {
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	for i > 0 && ((i < len(a) && !utf8.RuneStart(a[i])) || (i < len(b) && !utf8.RuneStart(b[i]))) {
		i-- // never split a rune
	}
	j, k = len(a), len(b)
	for j > i && k > i && a[j-1] == b[k-1] {
		j--
		k--
	}
	for (j < len(a) && !utf8.RuneStart(a[j])) || (k < len(b) && !utf8.RuneStart(b[k])) {
		j++
		k++
	}
	return i, j, k
}

// sanitize replaces control characters so recorded bytes cannot move the
// cursor or change the terminal's state.
func sanitize(s string) string {
	// Invalid UTF-8 first: a stray lead byte would make the terminal take
	// the escape sequence after it (the TUI's own styling) as a broken
	// character and print the rest of it as text.
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if isControl(r) {
			return '·'
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// wrapPlain hard-wraps plain text to w cells per line.
func wrapPlain(s string, w int) []string {
	if w < 1 {
		w = 1
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = sanitize(line)
		if line == "" {
			out = append(out, "")
			continue
		}
		out = append(out, strings.Split(ansi.Wordwrap(line, w, " /&,"), "\n")...)
	}
	var res []string
	for _, l := range out {
		for ansi.StringWidth(l) > w {
			res = append(res, ansi.Cut(l, 0, w))
			l = ansi.Cut(l, w, ansi.StringWidth(l))
		}
		res = append(res, l)
	}
	return res
}

// stripStyles removes ANSI styling.
func stripStyles(s string) string { return ansi.Strip(s) }
