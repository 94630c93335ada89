package tui

import (
	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
)

// screen is one view of the TUI: the flows list, the traffic list, one flow's
// hop timeline, one exchange's detail. A screen owns its cursor and scroll
// state and renders from the shared snapshot; the root model owns the
// snapshot, the navigation stack, the filter input and the key map, and
// forwards to the top screen what concerns it.
type screen interface {
	// Update handles a message meant for this screen: moveMsg, refreshMsg,
	// tickMsg, loadedMsg, rawMsg.
	Update(msg tea.Msg) tea.Cmd
	// View is the body: at most the height given to SetSize lines.
	View() string
	// SetSize gives the screen the body's width and height.
	SetSize(w, h int)
	// kind names the screen for the key line and the title's tabs.
	kind() view
	// selection is what enter opens and y copies.
	selection() selection
}

type view int

const (
	viewFlows view = iota
	viewTraffic
	viewFlow
	viewExchange
)

// selection is what the cursor is on: a flow or an exchange to open, the
// value y copies, and the exchange the screen itself shows (c copies it as
// curl when nothing else is selected).
type selection struct {
	flow, exchange, copy, subject string
}

// moveMsg moves the cursor by n rows or lines (negative: up).
type moveMsg int

// refreshMsg says the shared snapshot changed: exs were upserted (added
// counts the new ones, appended at the end), and analysis says flows and
// findings were replaced.
type refreshMsg struct {
	exs      []mcptap.Exchange
	added    int
	analysis bool
}

// rawMsg toggles the exchange screen between raw bytes and decoded values.
type rawMsg struct{}

// refilterMsg says the filter changed: lists recompute their rows.
type refilterMsg struct{}

// orderMsg says newest-first was toggled: lists keep the same row selected.
type orderMsg struct{}

// followMsg says follow was switched on: lists select the newest row.
type followMsg struct{}

// list is the cursor and scroll offset of a list screen.
type list struct{ cursor, offset int }

func clampList(l *list, n int) {
	if l.cursor >= n {
		l.cursor = n - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
}

// window returns the [from, to) display positions to show for a list with
// cursor c, keeping the cursor on screen.
func window(l *list, n, h int) (int, int) {
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+h {
		l.offset = l.cursor - h + 1
	}
	if l.offset > n-h {
		l.offset = n - h
	}
	if l.offset < 0 {
		l.offset = 0
	}
	to := l.offset + h
	if to > n {
		to = n
	}
	return l.offset, to
}

// docLine is one line of a scrollable detail document.
type docLine struct {
	text string // styled
	ex   string // exchange opened by enter
	copy string // value copied by y
	sel  bool   // the cursor may stop here
}

// doc is a scrollable document with a cursor that stops on selectable lines:
// the body of the flow and exchange screens.
type doc struct {
	lines  []docLine
	cursor int // index into lines, -1: nothing selectable
	offset int
}

// move steps the cursor over selectable lines, or scrolls when none are in reach.
func (d *doc) move(step, h int) {
	n := len(d.lines)
	if n == 0 {
		return
	}
	if d.cursor >= 0 {
		dir := 1
		if step < 0 {
			dir = -1
		}
		target := d.cursor + step
		if target < 0 {
			target = 0
		}
		if target > n-1 {
			target = n - 1
		}
		// find the nearest selectable line at or beyond target in the direction of travel
		best := -1
		for i := target; i >= 0 && i < n; i += dir {
			if d.lines[i].sel {
				best = i
				break
			}
		}
		if best < 0 {
			for i := target; i >= 0 && i < n; i -= dir {
				if d.lines[i].sel {
					best = i
					break
				}
			}
		}
		if best >= 0 && best != d.cursor {
			d.cursor = best
			if d.cursor < d.offset {
				d.offset = d.cursor
			}
			if d.cursor >= d.offset+h {
				d.offset = d.cursor - h + 1
			}
			// show trailing text when the cursor sits on the last selectable line
			if step > 0 && best == d.lastSel() {
				d.offset += step
			}
			d.clamp(h)
			return
		}
	}
	d.offset += step
	d.clamp(h)
}

func (d *doc) lastSel() int {
	for i := len(d.lines) - 1; i >= 0; i-- {
		if d.lines[i].sel {
			return i
		}
	}
	return -1
}

func (d *doc) clamp(h int) {
	if d.offset > len(d.lines)-h {
		d.offset = len(d.lines) - h
	}
	if d.offset < 0 {
		d.offset = 0
	}
	if d.cursor >= 0 && d.cursor < d.offset && d.lines[d.cursor].sel {
		// keep the cursor on screen after a scroll
		for i := d.offset; i < len(d.lines) && i < d.offset+h; i++ {
			if d.lines[i].sel {
				d.cursor = i
				break
			}
		}
	}
}

// current is the line under the cursor, if any.
func (d *doc) current() docLine {
	if d.cursor >= 0 && d.cursor < len(d.lines) {
		return d.lines[d.cursor]
	}
	return docLine{}
}

// rebuilt takes freshly built lines: the first build puts the cursor on the
// first line first accepts (or at), later builds keep cursor and scroll.
func (d *doc) rebuilt(first bool, keepCursor, keepOffset int, accept func(docLine) bool, at int) {
	if first {
		d.cursor = -1
		for i, l := range d.lines {
			if accept(l) {
				d.cursor = i
				break
			}
		}
		if at >= 0 {
			d.cursor = at
		}
		return
	}
	d.cursor, d.offset = keepCursor, keepOffset
	if d.cursor >= len(d.lines) {
		d.cursor = len(d.lines) - 1
	}
}

// render is the visible part of the document, the cursor's line selected.
func (d *doc) render(s *shared, w, h int) []string {
	d.clamp(h)
	out := make([]string, 0, h)
	for i := d.offset; i < len(d.lines) && i < d.offset+h; i++ {
		out = append(out, s.selectRow(d.lines[i].text, w, i == d.cursor && d.lines[i].sel))
	}
	return out
}
