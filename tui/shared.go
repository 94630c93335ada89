package tui

import (
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// shared is what every screen reads: the analysis' latest snapshot (the
// exchanges, their hop kinds, flows and findings), the clock, the filter and
// the display preferences. The root model writes it; screens only read it,
// except for the preferences a key toggles.
type shared struct {
	opts   Options
	st     styles
	decode func(string) []oauth.Layer
	live   bool
	closed bool
	load   *loadProgress // a replay still analysing (nil: none, or over)
	now    time.Time

	exs    []exRow // arrival order
	exIdx  map[string]int
	tables rowTables
	// full holds the whole exchanges beside exs when there is no loader
	// (Options.Load nil); with one, inflight holds the exchanges not yet
	// complete (the store may not have them yet) and the rest is loaded.
	full     []mcptap.Exchange
	inflight map[string]mcptap.Exchange
	flows    []mcptap.Flow // by start time
	flowIdx  map[string]int
	findings []mcptap.Finding
	findIdx  map[string]int
	labels   map[string]string // flow ID → Options.Label of its first labelled hop
	errors   int               // error findings
	warnings int               // warning findings
	dropped  uint64

	// display preferences
	newest bool // lists show the newest row first
	follow bool // lists keep the newest row selected
	raw    bool // the exchange screen shows raw bytes

	secrets secrets // hides access-granting values on every screen

	filterState
}

func (s *shared) exchange(id string) (mcptap.Exchange, bool) {
	i, ok := s.exIdx[id]
	if !ok {
		return mcptap.Exchange{}, false
	}
	return s.head(i), true
}

// head is exchange i as the model keeps it: whole without a loader, else
// its head (without headers and bodies once complete: Options.Load has them).
func (s *shared) head(i int) mcptap.Exchange {
	if s.opts.Load == nil {
		return s.full[i]
	}
	if ex, ok := s.inflight[s.exs[i].id]; ok {
		return ex
	}
	return s.tables.exchange(&s.exs[i])
}

func (s *shared) finding(id string) (mcptap.Finding, bool) {
	i, ok := s.findIdx[id]
	if !ok {
		return mcptap.Finding{}, false
	}
	return s.findings[i], true
}

// hop is the analysis' classification of an exchange, if any.
func (s *shared) hop(id string) (mcptap.HopKind, bool) {
	i, ok := s.exIdx[id]
	if !ok {
		return "", false
	}
	return s.tables.hopKind(&s.exs[i])
}

// verdictFinding is the finding that names a flow's verdict, if any.
func (s *shared) verdictFinding(f mcptap.Flow) (mcptap.Finding, bool) {
	for _, id := range f.Findings {
		if fd, ok := s.finding(id); ok && fd.Rule == f.Verdict.Rule {
			return fd, true
		}
	}
	return mcptap.Finding{}, false
}

// flowOf finds the flow that holds an exchange as a hop.
func (s *shared) flowOf(exID string) (mcptap.Flow, mcptap.Hop, bool) {
	for _, f := range s.flows {
		for _, h := range f.Hops {
			if h.Exchange == exID {
				return f, h, true
			}
		}
	}
	return mcptap.Flow{}, mcptap.Hop{}, false
}

// newestPos is the display position of the newest of n rows.
func (s *shared) newestPos(n int) int {
	if s.newest || n == 0 {
		return 0
	}
	return n - 1
}

// rowAt maps a display position to an index in rows.
func (s *shared) rowAt(rows []int, pos int) int {
	if s.newest {
		return rows[len(rows)-1-pos]
	}
	return rows[pos]
}
