package tui

import (
	"sort"
	"time"

	"github.com/mcptap/mcptap"
)

// engine owns the Analysis. In a live program it runs in the pump goroutine,
// so re-reading flows (which costs time proportional to the session) never
// holds up a key press or a redraw; replays and tests run it inline. The
// model only ever sees its snapshots.
type engine struct {
	an          Analysis
	inProgress  int                       // flows still in progress at the last read
	stale       bool                      // MCP hops arrived that the last read does not hold
	lastRefresh time.Time                 // traffic or tick time of the last read
	sent        map[string]mcptap.HopKind // kinds of flows' hops the model already has
}

// snapshotMsg is one batch for the model: the exchanges to upsert, their hop
// kinds, and, when they changed, the flows and findings.
type snapshotMsg struct {
	exs      []mcptap.Exchange
	kinds    map[string]mcptap.HopKind // merged into the model's
	flows    []mcptap.Flow             // nil with read false: unchanged
	findings []mcptap.Finding
	read     bool
	now      time.Time // time of the traffic or tick (zero: none)
	// load is how far a replay that opens while it analyses has come
	// (nil: not such a replay).
	load *loadProgress
}

// loadProgress is a replay's analysis under way: exchanges analysed of all,
// since when, and whether it is over.
type loadProgress struct {
	done, total int
	began       time.Time
	over        bool
}

func newEngine(an Analysis) *engine {
	return &engine{an: an, sent: map[string]mcptap.HopKind{}}
}

// kind queues an exchange's hop kind for the model.
func (e *engine) kind(s *snapshotMsg, id string, k mcptap.HopKind) {
	if s.kinds == nil {
		s.kinds = map[string]mcptap.HopKind{}
	}
	s.kinds[id] = k
}

// reclassified queues the kind of a flow's hop unless the model has it
// already, so a re-read carries changes, not every hop of the session. Only
// flows' hops are remembered: an exchange's own kind goes with it once
// (ingest), so a long session's MCP calls are not kept here a second time.
func (e *engine) reclassified(s *snapshotMsg, id string, k mcptap.HopKind) {
	if e.sent[id] == k {
		return
	}
	e.sent[id] = k
	e.kind(s, id, k)
}

// ingest feeds a batch to the analysis. Flows are re-read only when the
// batch can change them: a finding was raised, an OAuth hop arrived, or an
// MCP call arrived while some flow may still complete. Other MCP calls only
// mark the flows stale; tick re-reads them at most every staleEvery.
func (e *engine) ingest(batch []mcptap.Exchange) snapshotMsg {
	s := snapshotMsg{exs: batch}
	need := false
	for i := range batch {
		ex := &batch[i]
		if len(e.an.Observe(*ex)) > 0 {
			need = true
		}
		if k, ok := e.an.Hop(ex.ID); ok {
			e.kind(&s, ex.ID, k)
			if k != mcptap.HopMCP || e.inProgress > 0 {
				need = true
			} else {
				e.stale = true
			}
		}
		if ex.Start.After(s.now) {
			s.now = ex.Start
		}
	}
	if need {
		e.read(&s)
	}
	return s
}

// tick runs the time-based rules; ok says whether there is news.
func (e *engine) tick(now time.Time) (snapshotMsg, bool) {
	s := snapshotMsg{now: now}
	if len(e.an.Tick(now)) > 0 || (e.stale && now.Sub(e.lastRefresh) >= staleEvery) {
		e.read(&s)
		return s, true
	}
	return s, false
}

// finish fires the time-based rules at the end of a recording.
func (e *engine) finish() snapshotMsg {
	e.an.Finish()
	var s snapshotMsg
	e.read(&s)
	return s
}

// read takes flows, findings and every hop kind from the analysis.
func (e *engine) read(s *snapshotMsg) {
	flows := e.an.Flows()
	sort.SliceStable(flows, func(i, j int) bool {
		if !flows[i].Started.Equal(flows[j].Started) {
			return flows[i].Started.Before(flows[j].Started)
		}
		return flows[i].ID < flows[j].ID
	})
	e.inProgress = 0
	for _, f := range flows {
		if f.Status == mcptap.FlowInProgress {
			e.inProgress++
		}
		// a later hop can reclassify an earlier exchange (a 302 that turns
		// out to be the code-bearing redirect); an exchange that is both
		// an authorize and its redirect is shown as the authorize
		for i, h := range f.Hops {
			if h.Kind == mcptap.HopRedirect && i > 0 && f.Hops[i-1].Exchange == h.Exchange {
				continue
			}
			e.reclassified(s, h.Exchange, h.Kind)
		}
	}
	s.flows, s.findings, s.read = flows, e.an.Findings(), true
	e.stale = false
	if !s.now.IsZero() {
		e.lastRefresh = s.now
	}
}
