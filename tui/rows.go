package tui

import (
	"time"

	"github.com/mcptap/mcptap"
)

// exRow is what the model keeps of every exchange: what the traffic list
// draws and filters on, and what a flow's timeline names. It is a tenth of an
// Exchange: no headers, no bodies, times as offsets, and the strings most
// exchanges share (method, scheme, host, listener, mode, hop kind, a
// repeated target) as indexes into the model's tables. Headers and bodies
// come from Options.Load when an exchange is opened; without a loader the
// model keeps the whole exchanges beside (shared.full).
type exRow struct {
	id     string
	target string // interned while the table has room
	start  int64  // Unix nanoseconds
	respAt int64  // offsets from start in nanoseconds; -1: not yet
	end    int64
	size   int64 // response body size
	status int32
	ends   uint16 // index of method, scheme, host, listener and mode in endpoints
	kind   uint8  // index in kinds; 0: not a hop
	done   bool   // the exchange is complete
	failed bool   // it has a transport error, kept in rowTables.errs (rare)
}

// endpoint is the strings a row shares with many others.
type endpoint struct {
	method, scheme, host, listener string
	mode                           mcptap.Mode
}

// rowTables are the model's tables of shared strings. Their sizes are
// bounded: past the bound a row keeps its own copy (targets) or the last
// entry is reused for every new combination (endpoints, which on real
// traffic are a handful: one per listener and host).
type rowTables struct {
	endpoints []endpoint
	endIdx    map[endpoint]uint16
	kinds     []mcptap.HopKind // kinds[0] is "" (no hop)
	kindIdx   map[mcptap.HopKind]uint8
	targets   map[string]string
	errs      map[string]string // exchange ID -> transport error, for the few rows that have one
}

const (
	maxEndpoints = 1 << 16
	maxTargets   = 4096
)

func (t *rowTables) endpoint(e endpoint) uint16 {
	if i, ok := t.endIdx[e]; ok {
		return i
	}
	if t.endIdx == nil {
		t.endIdx = map[endpoint]uint16{}
	}
	if len(t.endpoints) == maxEndpoints {
		// Never on real traffic; the row then shows the last endpoint's
		// strings rather than growing without bound.
		return maxEndpoints - 1
	}
	t.endpoints = append(t.endpoints, e)
	t.endIdx[e] = uint16(len(t.endpoints) - 1)
	return uint16(len(t.endpoints) - 1)
}

func (t *rowTables) kind(k mcptap.HopKind) uint8 {
	if k == "" {
		return 0
	}
	if i, ok := t.kindIdx[k]; ok {
		return i
	}
	if t.kindIdx == nil {
		t.kindIdx = map[mcptap.HopKind]uint8{}
		t.kinds = []mcptap.HopKind{""}
	}
	if len(t.kinds) == 256 {
		return 0 // hop kinds are a dozen
	}
	t.kinds = append(t.kinds, k)
	t.kindIdx[k] = uint8(len(t.kinds) - 1)
	return uint8(len(t.kinds) - 1)
}

func (t *rowTables) target(s string) string {
	if v, ok := t.targets[s]; ok {
		return v
	}
	if t.targets == nil {
		t.targets = map[string]string{}
	}
	if len(t.targets) < maxTargets {
		t.targets[s] = s
	}
	return s
}

func offset(start, t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return int64(t.Sub(start))
}

// row makes the row of ex with the hop kind given (a newer copy of an
// exchange keeps the kind of the one it replaces).
func (t *rowTables) row(ex *mcptap.Exchange, kind uint8) exRow {
	if ex.Err != "" {
		if t.errs == nil {
			t.errs = map[string]string{}
		}
		t.errs[ex.ID] = ex.Err
	}
	return exRow{
		id: ex.ID, target: t.target(ex.Target), failed: ex.Err != "",
		start: ex.Start.UnixNano(), respAt: offset(ex.Start, ex.ResponseAt), end: offset(ex.Start, ex.End),
		size: ex.RespSize, status: int32(ex.Status), kind: kind, done: ex.Complete,
		ends: t.endpoint(endpoint{ex.Method, ex.Scheme, ex.Host, ex.Listener, ex.Mode}),
	}
}

func (r *exRow) startTime() time.Time { return time.Unix(0, r.start) }

func at(start time.Time, off int64) time.Time {
	if off < 0 {
		return time.Time{}
	}
	return start.Add(time.Duration(off))
}

// exchange is the head the row keeps, as an Exchange without headers and
// bodies.
func (t *rowTables) exchange(r *exRow) mcptap.Exchange {
	e := t.endpoints[r.ends]
	start := r.startTime()
	ex := mcptap.Exchange{
		ID: r.id, Mode: e.mode, Listener: e.listener,
		Start: start, ResponseAt: at(start, r.respAt), End: at(start, r.end),
		Method: e.method, Scheme: e.scheme, Host: e.host, Target: r.target,
		Status: int(r.status), RespSize: r.size, Complete: r.done,
	}
	if r.failed {
		ex.Err = t.errs[r.id]
	}
	return ex
}

// hopKind is the row's hop kind, if it is a hop.
func (t *rowTables) hopKind(r *exRow) (mcptap.HopKind, bool) {
	if r.kind == 0 {
		return "", false
	}
	return t.kinds[r.kind], true
}
