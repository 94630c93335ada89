package tui

import (
	"fmt"
	"sort"
	"strings"

	tea "charm.land/bubbletea/v2"
)

// binding is one row of the keymap: the keys that trigger it, what the help
// screen and the key line say about it, and what it does. The one table
// drives key handling, the help screen and the key line, so they cannot
// disagree.
type binding struct {
	keys []string // as tea.KeyPressMsg.String() reports them
	// help: the keys as the help screen writes them, and what they do.
	helpKeys, help string
	// lineKey and line: how the key line names the binding in each view
	// (a view without an entry does not show it); pos orders the key line.
	lineKey string
	line    map[view]string
	pos     int
	do      func(m *Model) tea.Cmd
}

// inLists is the key-line text for the two list views.
func inLists(s string) map[view]string { return map[view]string{viewFlows: s, viewTraffic: s} }

// inAll is the key-line text for every view.
func inAll(s string) map[view]string {
	return map[view]string{viewFlows: s, viewTraffic: s, viewFlow: s, viewExchange: s}
}

// keymap is in the order of the help screen.
var keymap = []binding{
	{keys: []string{"1"}, do: func(m *Model) tea.Cmd { m.setView(viewFlows); return nil }},
	{keys: []string{"2"}, do: func(m *Model) tea.Cmd { m.setView(viewTraffic); return nil }},
	{keys: []string{"tab"}, helpKeys: "1 / 2 / tab", help: "Flows view / All traffic view / switch between them",
		lineKey: "tab", line: inLists("flows/traffic"), pos: 3,
		do: func(m *Model) tea.Cmd {
			if m.top().kind() == viewFlows {
				m.setView(viewTraffic)
			} else {
				m.setView(viewFlows)
			}
			return nil
		}},
	{keys: []string{"up", "k"}, helpKeys: "↑ ↓  k j", help: "move the selection (mouse wheel scrolls)",
		lineKey: "↑↓", line: map[view]string{viewFlows: "move", viewTraffic: "move", viewFlow: "hop", viewExchange: "line"}, pos: 1,
		do: func(m *Model) tea.Cmd { m.move(-1); return nil }},
	{keys: []string{"down", "j"}, do: func(m *Model) tea.Cmd { m.move(1); return nil }},
	{keys: []string{"pgup", "ctrl+u"}, helpKeys: "pgup pgdn  ctrl+u ctrl+d", help: "page up / page down",
		do: func(m *Model) tea.Cmd { m.move(-m.bodyHeight() + 1); return nil }},
	{keys: []string{"pgdown", "ctrl+d", "space"}, do: func(m *Model) tea.Cmd { m.move(m.bodyHeight() - 1); return nil }},
	{keys: []string{"home", "g"}, helpKeys: "home end  g G", help: "first / last row",
		do: func(m *Model) tea.Cmd { m.move(-1 << 30); return nil }},
	{keys: []string{"end", "G"}, do: func(m *Model) tea.Cmd { m.move(1 << 30); return nil }},
	{keys: []string{"enter", "right", "l"}, helpKeys: "enter → l", help: "open: flow → hop timeline, hop or traffic row → exchange detail",
		lineKey: "enter", line: map[view]string{viewFlows: "open", viewTraffic: "open", viewFlow: "exchange"}, pos: 2,
		do: func(m *Model) tea.Cmd { return m.open() }},
	{keys: []string{"esc", "backspace", "left", "h"}, helpKeys: "esc ← h backspace", help: "back (in a list: clear the filter)",
		lineKey: "esc", line: map[view]string{viewFlow: "back", viewExchange: "back"}, pos: 8,
		do: func(m *Model) tea.Cmd { m.goBack(); return nil }},
	{keys: []string{"/"}, helpKeys: "/", help: "filter, all words must match: path:/oauth status:4xx client:chatgpt rule:state fault:client",
		lineKey: "/", line: inLists("filter"), pos: 4,
		do: func(m *Model) tea.Cmd { m.filtering = true; m.input = m.filter; return nil }},
	{keys: []string{"o"}, helpKeys: "o", help: "newest first / newest last",
		lineKey: "o", line: inLists("order"), pos: 5, do: (*Model).toggleOrder},
	{keys: []string{"f"}, helpKeys: "f", help: "follow: keep the newest row selected as traffic arrives",
		lineKey: "f", line: inLists("follow"), pos: 6, do: (*Model).toggleFollow},
	{keys: []string{"d"}, helpKeys: "d", help: "exchange detail: raw bytes / decoded values",
		lineKey: "d", line: map[view]string{viewExchange: "raw/decoded"}, pos: 7,
		do: func(m *Model) tea.Cmd { return m.top().Update(rawMsg{}) }},
	{keys: []string{"y"}, helpKeys: "y", help: "copy the selected value (state, URL, header, parameter) via OSC 52",
		lineKey: "y", line: inAll("copy"), pos: 9, do: (*Model).copy},
	{keys: []string{"c"}, helpKeys: "c", help: "copy the selected exchange as a curl command (OSC 52; with its secrets)",
		lineKey: "c", line: map[view]string{viewTraffic: "curl", viewFlow: "curl", viewExchange: "curl"}, pos: 9, do: (*Model).copyCurl},
	{keys: []string{"s"}, helpKeys: "s", help: "show / hide secrets: codes, tokens, credentials (hidden by default, as in reports)",
		do: (*Model).toggleSecrets},
	{keys: []string{"r"}, helpKeys: "r", help: "write the report (markdown or HTML, secrets redacted) to a file: says where first",
		lineKey: "r", line: inAll("report"), pos: 10, do: (*Model).askReport},
	{keys: []string{"?"}, helpKeys: "?", help: "this help (any key closes it)",
		lineKey: "?", line: inAll("help"), pos: 11, do: func(m *Model) tea.Cmd { m.help = true; return nil }},
	{keys: []string{"q", "ctrl+c"}, helpKeys: "q ctrl+c", help: "quit",
		lineKey: "q", line: inAll("quit"), pos: 12, do: func(*Model) tea.Cmd { return tea.Quit }},
}

// keyIndex maps a key to its binding.
var keyIndex = func() map[string]*binding {
	idx := map[string]*binding{}
	for i := range keymap {
		for _, k := range keymap[i].keys {
			if _, dup := idx[k]; dup {
				panic("tui: key " + k + " bound twice")
			}
			idx[k] = &keymap[i]
		}
	}
	return idx
}()

// keyLine lists the bindings the current view shows, in key-line order.
func (m *Model) keyLine() string {
	if m.filtering {
		return m.st.key.Render("/") + " " + m.input + "█  " + m.st.dim.Render(strings.Join(filterKeys, ": ")+": · enter apply · esc cancel")
	}
	if m.reportBase != "" {
		var opts []string
		for _, f := range reportFormats {
			opts = append(opts, m.st.key.Render(f.key)+" "+f.format)
		}
		return " report to " + sanitize(m.reportBase) + ".…  " + strings.Join(opts, "  ") + "  " + m.st.dim.Render("any other key cancels")
	}
	if m.msg != "" {
		return " " + m.msg
	}
	v := m.top().kind()
	var shown []*binding
	for i := range keymap {
		if _, ok := keymap[i].line[v]; ok {
			shown = append(shown, &keymap[i])
		}
	}
	sort.SliceStable(shown, func(i, j int) bool { return shown[i].pos < shown[j].pos })
	ks := make([]string, len(shown))
	for i, b := range shown {
		ks[i] = m.st.key.Render(b.lineKey) + " " + b.line[v]
	}
	return " " + strings.Join(ks, "  ")
}

// helpLines is the help screen: every binding that has help text.
func (m *Model) helpLines() []string {
	out := []string{" " + m.st.bold.Render("Keys")}
	for _, b := range keymap {
		if b.helpKeys == "" {
			continue
		}
		out = append(out, "  "+m.st.key.Render(fmt.Sprintf("%-26s", b.helpKeys))+" "+b.help)
	}
	out = append(out, " "+m.st.bold.Render(""),
		" "+m.st.bold.Render("Glyphs: ✓ complete  ✗ failed  … in progress (a running timer while a token call is awaited)"))
	return out
}
