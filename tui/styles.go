package tui

import "charm.land/lipgloss/v2"

// styles use the 16 basic ANSI colours so that the terminal's own palette
// (light or dark) decides how they look; the renderer drops colour entirely
// when the terminal has none or NO_COLOR is set.
type styles struct {
	ok, bad, wait, warn, dim, bold, sel, head, tab, tabOn, key, hl, status, errMsg lipgloss.Style
}

func newStyles() styles {
	return styles{
		ok:     lipgloss.NewStyle().Foreground(lipgloss.Green),
		bad:    lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true),
		wait:   lipgloss.NewStyle().Foreground(lipgloss.Yellow),
		warn:   lipgloss.NewStyle().Foreground(lipgloss.Yellow),
		dim:    lipgloss.NewStyle().Faint(true),
		bold:   lipgloss.NewStyle().Bold(true),
		sel:    lipgloss.NewStyle().Reverse(true),
		head:   lipgloss.NewStyle().Bold(true).Underline(true),
		tab:    lipgloss.NewStyle().Faint(true),
		tabOn:  lipgloss.NewStyle().Bold(true).Reverse(true),
		key:    lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Cyan),
		hl:     lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true).Underline(true),
		status: lipgloss.NewStyle().Reverse(true),
		errMsg: lipgloss.NewStyle().Foreground(lipgloss.Red),
	}
}
