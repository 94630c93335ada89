package oauth

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/mcptap/mcptap"
)

// ruleDef is one entry of the findings catalogue (spec/FINDINGS.md) with the
// function that looks for it. Exactly one of the check functions is set (or
// several, for rules that show both in a flow and at the session's end).
type ruleDef struct {
	ID       mcptap.RuleID
	Severity mcptap.Severity
	Fault    mcptap.Fault
	Title    string
	Fix      string

	// Exchange looks at one exchange (discovery documents, MCP calls).
	Exchange func(t *Tracker, x *exInfo) []hit
	// Flow looks at one attempt as it stands.
	Flow func(t *Tracker, f *flow) []hit
	// Timed looks at an attempt whose wait for Awaits ran out (or, with
	// final, whose recording ended first). It only checks: the engine keeps
	// the "waiting since" facts and takes the flow off its timer.
	Timed  func(t *Tracker, f *flow, final bool) []hit
	Awaits await
	// Session runs once at Finish over what no flow explains.
	Session func(t *Tracker) []hit
	// Final looks at one attempt once the recording ended: what only the
	// end can tell (a page that never posted what it had). Unlike Session,
	// other rules can name it as their cause; a timed rule does so when its
	// wait ran out, which tells the same (nothing came for that long).
	Final func(t *Tracker, f *flow) []hit

	// How this rule relates to others, applied by the engine (rules never
	// run each other). All name Flow rules of the same flow.
	//
	// CausedBy: a hit of one of these explains this rule's hit, which is
	// then a symptom: the finding names the cause, takes its fault side,
	// and the flow's verdict goes to the cause.
	CausedBy []mcptap.RuleID
	// SidedBy: a hit of one of these decides this rule's fault side and
	// adds its reason, but this rule stays the verdict (the token's audience
	// decides whose 401 it was; the 401 is still what broke the flow).
	SidedBy []mcptap.RuleID
	// Passed, for a rule that breaks only some clients, says this flow went
	// on past it: the finding is then a warning, the catalogue's severity
	// while the flow stopped there (the flow's own outcome outranks a
	// prediction). It follows the flow as it grows.
	Passed func(f *flow) bool

	// OncePerFlow: one finding per flow is all this exchange rule says;
	// once raised, the engine stops asking it about the flow's exchanges.
	OncePerFlow bool

	// Hygiene marks a warning worth fixing that never explains why an
	// attempt stopped (a client registering again): an attempt that ended
	// with only such warnings reads flow.incomplete, not that warning.
	Hygiene bool

	// YieldsTo: a hit of one of these makes this rule's hit moot (a page is
	// the right answer to an unregistered redirect_uri): it is not raised.
	YieldsTo []mcptap.RuleID
}

// await is a fact a timed rule waits for.
type await int

const (
	awaitNothing await = iota
	awaitToken         // a code (or a hand-off) was issued: a token request for it
	awaitBearer        // a token was issued: an MCP request that carries it
)

// set is the tracker's set of flows waiting for a.
func (t *Tracker) waitSet(a await) map[*flow]bool {
	switch a {
	case awaitToken:
		return t.waitCode
	case awaitBearer:
		return t.waitBearer
	}
	return nil
}

// since is when f started waiting for a (zero: it has nothing to wait for).
func (a await) since(f *flow) time.Time {
	switch a {
	case awaitToken:
		if f.codeEx != nil && !f.codeAt.IsZero() {
			return f.codeAt
		}
		if f.handoffEx != nil {
			return f.handoffAt
		}
	case awaitBearer:
		if f.tokenOK != nil {
			return f.tokenOKAt
		}
	}
	return time.Time{}
}

// hit is one occurrence of a rule.
type hit struct {
	key       string // dedupe discriminator; default: anchor
	anchor    string // the exchange where the problem shows (orders the verdict)
	exchanges []string
	title     string
	detail    string
	fix       string
	fault     mcptap.Fault
	evidence  []mcptap.Evidence
	at        time.Time
	// secondary marks an error the chain got past (e.g. an authorization
	// server that accepted a request without PKCE): it becomes the verdict
	// only when no other error is on the chain.
	secondary bool
	// cause is the rule of an earlier finding on the same flow that explains
	// this one; the verdict then names the cause. Set by the engine from
	// the rule's CausedBy.
	cause mcptap.RuleID
	// aloneFrom, when set, is where the part of detail starts that holds
	// only when no cause explains the hit (what was checked, which sides can
	// produce an absence): the engine cuts it off when a cause does.
	aloneFrom int
}

// byRule indexes the catalogue by rule ID (built at init).
var byRule map[mcptap.RuleID]*ruleDef

// ruleByID finds a catalogue entry.
func ruleByID(id mcptap.RuleID) *ruleDef { return byRule[id] }

func init() {
	byRule = make(map[mcptap.RuleID]*ruleDef, len(catalogue))
	for i := range catalogue {
		byRule[catalogue[i].ID] = &catalogue[i]
	}
	// The relations name rules of the catalogue that can be asked on the
	// same flow or exchange; a typo would silently relate nothing.
	for _, r := range catalogue {
		for _, id := range append(append(append([]mcptap.RuleID(nil), r.CausedBy...), r.YieldsTo...), r.SidedBy...) {
			if c := ruleByID(id); c == nil || (c.Flow == nil && c.Exchange == nil && c.Timed == nil && c.Final == nil) {
				panic(fmt.Sprintf("oauth: rule %s relates to %s, which is not a rule of the catalogue", r.ID, id))
			}
		}
		if (r.Timed != nil) != (r.Awaits != awaitNothing) {
			panic(fmt.Sprintf("oauth: timed rule %s must name what it awaits", r.ID))
		}
	}
}

// hitsOf asks a related rule about the same exchange x (an exchange rule;
// for a flow or timed rule, x is nil and it is asked about each of the
// flow's hops) or the same flow f (a flow rule, or a timed one as if its
// wait ran out).
func (t *Tracker) hitsOf(id mcptap.RuleID, x *exInfo, f *flow) []hit {
	c := ruleByID(id)
	var hs []hit
	switch {
	case c.Exchange != nil && x != nil:
		hs = append(hs, c.Exchange(t, x)...)
	case c.Exchange != nil && f != nil:
		for _, h := range f.hops {
			hs = append(hs, c.Exchange(t, h.x)...)
		}
	}
	if f != nil {
		if c.Flow != nil {
			hs = append(hs, c.Flow(t, f)...)
		}
		if c.Final != nil {
			// Asked before the end only by a timed rule whose wait ran
			// out: nothing came for that long either.
			hs = append(hs, c.Final(t, f)...)
		}
		if c.Timed != nil && !c.Awaits.since(f).IsZero() {
			hs = append(hs, c.Timed(t, f, true)...)
		}
	}
	return hs
}

// relate applies r's declared relations to its hits on exchange x (nil for
// flow and timed rules) and flow f.
func (t *Tracker) relate(r *ruleDef, x *exInfo, f *flow, hs []hit) []hit {
	if len(hs) == 0 {
		return nil
	}
	if len(r.YieldsTo) == 0 && len(r.CausedBy) == 0 && len(r.SidedBy) == 0 {
		return hs
	}
	for _, id := range r.YieldsTo {
		if len(t.hitsOf(id, x, f)) > 0 {
			return nil
		}
	}
	var cause *ruleDef
	var ch hit
	for _, id := range r.CausedBy {
		if chs := t.hitsOf(id, x, f); len(chs) > 0 {
			cause, ch = ruleByID(id), chs[0]
			break
		}
	}
	for _, id := range r.SidedBy {
		c := ruleByID(id)
		if chs := t.hitsOf(id, x, f); len(chs) > 0 {
			for i := range hs {
				hs[i].fault = c.Fault
				if chs[0].fault != "" {
					hs[i].fault = chs[0].fault
				}
				hs[i].detail += " " + c.Title + ": " + chs[0].detail
			}
			break
		}
	}
	if cause == nil {
		return hs
	}
	for i := range hs {
		h := &hs[i]
		if h.aloneFrom > 0 && h.aloneFrom <= len(h.detail) {
			h.detail = h.detail[:h.aloneFrom]
		}
		title, fault := cause.Title, cause.Fault
		if ch.title != "" {
			title = ch.title
		}
		if ch.fault != "" {
			fault = ch.fault
		}
		h.cause, h.fault = cause.ID, fault
		h.detail += " This is a consequence of an earlier hop: " + title + "."
		h.fix = "Fix the earlier hop first (see the flow's verdict)."
	}
	return hs
}

func (t *Tracker) evaluate(x *exInfo) []mcptap.Finding {
	out := t.runExchange(x)
	if x.flow != nil && x.kind != mcptap.HopMCP {
		out = append(out, t.runFlow(x.flow)...)
	}
	return out
}

func (t *Tracker) runExchange(x *exInfo) []mcptap.Finding {
	if x.kind == "" && !isPreflight(x) {
		return nil
	}
	x.judged = t.complete(x)
	var out []mcptap.Finding
	for i := range catalogue {
		r := &catalogue[i]
		if r.Exchange == nil || (r.OncePerFlow && x.flow != nil && x.flow.raised[r.ID]) {
			continue
		}
		for _, h := range t.relate(r, x, x.flow, r.Exchange(t, x)) {
			if h.anchor == "" {
				h.anchor = x.id()
			}
			if f, ok := t.raise(r, h); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

func (t *Tracker) runFlow(f *flow) []mcptap.Finding {
	f.judged = true
	for _, h := range f.hops {
		f.judged = f.judged && t.complete(h.x)
	}
	var out []mcptap.Finding
	for i := range catalogue {
		r := &catalogue[i]
		if r.Flow == nil {
			continue
		}
		for _, h := range t.relate(r, nil, f, r.Flow(t, f)) {
			if fd, ok := t.raise(r, h); ok {
				out = append(out, fd)
			}
		}
	}
	return out
}

func (t *Tracker) timed(final bool) []mcptap.Finding {
	var fs []*flow
	if final {
		set := map[*flow]bool{}
		for f := range t.waitCode {
			set[f] = true
		}
		for f := range t.waitBearer {
			set[f] = true
		}
		for f := range set {
			fs = append(fs, f)
		}
	} else {
		if d := t.deadline(); d.IsZero() || t.now.Before(d) {
			return nil
		}
		fs = t.expired()
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].n < fs[j].n })
	// Which flows are due, per fact awaited: decided before any rule runs,
	// and taken off their timers only after every rule awaiting the same
	// fact has looked (several rules may wait for one fact).
	var due [awaitBearer + 1][]*flow
	for a := awaitToken; a <= awaitBearer; a++ {
		set := t.waitSet(a)
		for _, f := range fs {
			if !set[f] {
				continue
			}
			since := a.since(f)
			if !since.IsZero() && !final && t.now.Sub(since) < t.opts.TokenTimeout {
				continue
			}
			due[a] = append(due[a], f)
		}
	}
	defer func() {
		for a := awaitToken; a <= awaitBearer; a++ {
			for _, f := range due[a] {
				t.unwait(t.waitSet(a), f)
			}
		}
	}()
	var out []mcptap.Finding
	for i := range catalogue {
		r := &catalogue[i]
		if r.Timed != nil {
			for _, f := range due[r.Awaits] {
				if r.Awaits.since(f).IsZero() {
					continue
				}
				for _, h := range t.relate(r, nil, f, r.Timed(t, f, final)) {
					if h.at.IsZero() {
						h.at = t.now
					}
					if fd, ok := t.raise(r, h); ok {
						out = append(out, fd)
					}
				}
			}
		}
		if final && r.Session != nil {
			for _, h := range r.Session(t) {
				if fd, ok := t.raise(r, h); ok {
					out = append(out, fd)
				}
			}
		}
		if final && r.Final != nil {
			for _, f := range t.flows {
				for _, h := range t.relate(r, nil, f, r.Final(t, f)) {
					if fd, ok := t.raise(r, h); ok {
						out = append(out, fd)
					}
				}
			}
		}
	}
	return out
}

// raise records a hit as a Finding unless the same one exists already. IDs
// are a hash of the rule and the hit's key, so they are stable across runs.
func (t *Tracker) raise(r *ruleDef, h hit) (mcptap.Finding, bool) {
	key := h.key
	if key == "" {
		key = h.anchor
	}
	id := "F" + shortHash(string(r.ID), key)[:10]
	if _, ok := t.findings[id]; ok {
		return mcptap.Finding{}, false
	}
	fd := &mcptap.Finding{
		ID: id, Rule: r.ID, Severity: r.Severity, Fault: r.Fault,
		Title: r.Title, Detail: h.detail, Fix: r.Fix,
		Exchanges: h.exchanges, Evidence: h.evidence, At: h.at,
	}
	if h.title != "" {
		fd.Title = h.title
	}
	if h.fix != "" {
		fd.Fix = h.fix
	}
	if h.fault != "" {
		fd.Fault = h.fault
	}
	if len(fd.Exchanges) == 0 && h.anchor != "" {
		fd.Exchanges = []string{h.anchor}
	}
	if x := t.byID[h.anchor]; x != nil {
		if fd.At.IsZero() {
			fd.At = x.at()
		}
		if x.flow != nil {
			fd.Flow = x.flow.id
		}
	}
	t.findings[id] = fd
	t.findingSeq[id] = len(t.findingList)
	t.findingList = append(t.findingList, fd)
	if r.Passed != nil {
		t.unsettled = append(t.unsettled, unsettled{fd, fd.Severity})
	}
	t.anchor[id] = h.anchor
	t.byAnchor[h.anchor] = append(t.byAnchor[h.anchor], fd)
	if x := t.byID[h.anchor]; x != nil && x.flow != nil {
		x.flow.dirty = true
		if r.OncePerFlow {
			if x.flow.raised == nil {
				x.flow.raised = map[mcptap.RuleID]bool{}
			}
			x.flow.raised[r.ID] = true
		}
	}
	if h.secondary {
		t.secondary[id] = true
	}
	if h.cause != "" {
		t.causeOf[id] = h.cause
	}
	return ownCopy(fd), true
}

// ownCopy is a copy of a finding the caller may own and change: its slices
// are not shared with the tracker (the TUI reads findings on another
// goroutine while the tracker goes on).
func ownCopy(fd *mcptap.Finding) mcptap.Finding {
	c := *fd
	c.Exchanges = append([]string(nil), fd.Exchanges...)
	c.Evidence = append([]mcptap.Evidence(nil), fd.Evidence...)
	return c
}

// Findings returns every finding raised so far, in the order raised, with
// Flow set to the flow its evidence belongs to now. The values, their
// Exchanges and Evidence included, are copies the caller owns.
func (t *Tracker) Findings() []mcptap.Finding {
	out := make([]mcptap.Finding, 0, len(t.findingList))
	for _, fd := range t.findingList {
		t.settle(fd)
		c := ownCopy(fd)
		if x := t.byID[t.anchor[fd.ID]]; x != nil && x.flow != nil {
			c.Flow = x.flow.id
		}
		out = append(out, c)
	}
	return out
}

// Flows returns every attempt with its hops in traffic order, its verdict (the
// earliest error on the hop chain) and status. Each flow's value is kept
// between calls and rebuilt only when something it shows changed, so a live
// view may call Flows after every batch. The Flow values are the caller's;
// the slices and the map they hold (Hops, Findings, NotChecked, Checks,
// StateDecoded) are shared with the kept value and never written again by
// the tracker (a change builds new ones), so they are safe to read on
// another goroutine but must not be written in place. Appending is safe:
// their capacity is clipped. Copying them would cost ~14 ms a call at
// 100,000 hops, and a live view's Flows after every batch spent most of its
// time copying state maps that nobody writes.
func (t *Tracker) Flows() []mcptap.Flow {
	out := make([]mcptap.Flow, 0, len(t.flows))
	for _, f := range t.flows {
		if f.dirty || f.built == nil {
			v := t.flowValue(f, t.flowFindings(f))
			f.built, f.dirty = &v, false
		}
		out = append(out, ownFlow(f.built))
	}
	return out
}

// flowsRebuilt builds every flow from scratch, the way Flows did before it
// kept values: the reference the cache is tested against.
func (t *Tracker) flowsRebuilt() []mcptap.Flow {
	byFlow := map[string][]*mcptap.Finding{}
	for _, fd := range t.findingList {
		x := t.byID[t.anchor[fd.ID]]
		if x != nil && x.flow != nil {
			byFlow[x.flow.id] = append(byFlow[x.flow.id], fd)
		}
	}
	out := make([]mcptap.Flow, 0, len(t.flows))
	for _, f := range t.flows {
		out = append(out, t.flowValue(f, byFlow[f.id]))
	}
	return out
}

// flowFindings lists the findings anchored on f's exchanges, in the order
// raised.
func (t *Tracker) flowFindings(f *flow) []*mcptap.Finding {
	var out []*mcptap.Finding
	seen := make(map[*exInfo]bool, len(f.hops))
	visit := func(x *exInfo) {
		if seen[x] || x.flow != f {
			return
		}
		seen[x] = true
		out = append(out, t.byAnchor[x.id()]...)
	}
	for _, h := range f.hops {
		visit(h.x)
	}
	for _, l := range f.links {
		visit(l)
	}
	for _, x := range f.interactions {
		visit(x)
	}
	sort.Slice(out, func(i, j int) bool { return t.findingSeq[out[i].ID] < t.findingSeq[out[j].ID] })
	return out
}

// ownFlow copies a built flow for the caller: the value, with its slices
// clipped so that an append never writes into the kept ones.
func ownFlow(b *mcptap.Flow) mcptap.Flow {
	v := *b
	v.Hops = slices.Clip(b.Hops)
	v.Findings = slices.Clip(b.Findings)
	v.NotChecked = slices.Clip(b.NotChecked)
	v.Checks = slices.Clip(b.Checks)
	return v
}

// identify names the flow's client. An attempt that only reached the
// authorize carries the browser's user agent alone; the client's own requests
// (its registration of the same client_id, the redirect URIs it registered)
// and a ChatGPT link initiation still name it.
func (t *Tracker) identify(f *flow) string {
	if c := identifyClient(f.redirectURI, f.clientID, f.webCalls, f.userAgents...); c != ClientUnknown {
		return c
	}
	if len(f.links) > 0 {
		return ClientChatGPT
	}
	if r := t.regs[f.clientID]; r != nil && f.clientID != "" {
		if r.reg != nil {
			for _, u := range r.reg.RedirectURIs {
				if c := clientFromRedirect(u); c != "" {
					return c
				}
			}
		}
		if c := clientFromUA(r.reqH("User-Agent")); c != "" {
			return c
		}
	}
	return ClientUnknown
}

func (t *Tracker) flowValue(f *flow, fds []*mcptap.Finding) mcptap.Flow {
	hops := append([]hop(nil), f.hops...)
	sort.SliceStable(hops, func(i, j int) bool {
		if hops[i].x.order != hops[j].x.order {
			return hops[i].x.order < hops[j].x.order
		}
		return hops[i].kind != mcptap.HopRedirect && hops[j].kind == mcptap.HopRedirect
	})
	pos := map[string]int{}
	v := mcptap.Flow{ID: f.id, State: f.state, Started: f.started, Updated: f.updated}
	for i, h := range hops {
		if _, ok := pos[h.x.id()]; !ok {
			pos[h.x.id()] = i
		}
		at := h.x.at()
		if h.kind == mcptap.HopRedirect && !h.x.ex.ResponseAt.IsZero() {
			// The redirect is the authorize's answer: it exists from the
			// moment the response arrived, not from the request's start.
			at = h.x.ex.ResponseAt
		}
		v.Hops = append(v.Hops, mcptap.Hop{Kind: h.kind, Exchange: h.x.id(), Status: h.x.status(), At: at, Inner: h.inner})
	}
	if f.state != "" {
		v.StateDecoded = decodeState(f.state)
	}
	v.NotChecked = f.notChecked()
	v.Checks = f.checks()
	v.MoreMCPCalls = f.moreMCP
	v.Client = t.identify(f)
	fds = append([]*mcptap.Finding(nil), fds...)
	sort.SliceStable(fds, func(i, j int) bool {
		pi, pj := pos[t.anchor[fds[i].ID]], pos[t.anchor[fds[j].ID]]
		if pi != pj {
			return pi < pj
		}
		return t.ruleIdx[fds[i].Rule] < t.ruleIdx[fds[j].Rule]
	})
	for _, fd := range fds {
		t.settle(fd)
	}
	v.Verdict = mcptap.Verdict{Rule: "ok", Severity: mcptap.SevInfo, Fault: mcptap.FaultNone}
	var fallback *mcptap.Finding
	for _, fd := range fds {
		if fd.Severity != mcptap.SevError {
			continue
		}
		if t.secondary[fd.ID] {
			if fallback == nil {
				fallback = fd
			}
			continue
		}
		if v.Verdict.Rule == "ok" {
			v.Verdict = mcptap.Verdict{Rule: fd.Rule, Severity: fd.Severity, Fault: fd.Fault}
		}
	}
	if v.Verdict.Rule == "ok" && fallback != nil {
		v.Verdict = mcptap.Verdict{Rule: fallback.Rule, Severity: fallback.Severity, Fault: fallback.Fault}
	}
	// An attempt that ended without succeeding is never ok: its verdict is
	// the warning that explains where it stopped (flow.incomplete when no
	// other does), in hop order.
	if v.Verdict.Rule == "ok" && t.done && !t.succeeded(f) {
		for _, fd := range fds {
			if fd.Severity == mcptap.SevWarning && !catalogue[t.ruleIdx[fd.Rule]].Hygiene {
				v.Verdict = mcptap.Verdict{Rule: fd.Rule, Severity: fd.Severity, Fault: fd.Fault}
				break
			}
		}
		if fd := t.explainedBy[f]; v.Verdict.Rule == "ok" && fd != nil {
			v.Verdict = mcptap.Verdict{Rule: fd.Rule, Severity: fd.Severity, Fault: fd.Fault}
			fds = append([]*mcptap.Finding{fd}, fds...)
		}
	}
	// A symptom explained by an earlier hop (a code never redeemed because
	// the state was stale) yields the verdict to that cause, even a warning.
	for _, fd := range fds {
		if fd.Rule == v.Verdict.Rule && t.causeOf[fd.ID] != "" {
			for _, c := range fds {
				if c.Rule == t.causeOf[fd.ID] {
					v.Verdict = mcptap.Verdict{Rule: c.Rule, Severity: c.Severity, Fault: c.Fault}
				}
			}
			break
		}
	}
	// The verdict's finding first, then the others in hop order.
	for _, fd := range fds {
		if fd.Rule == v.Verdict.Rule {
			v.Findings = append(v.Findings, fd.ID)
			break
		}
	}
	for _, fd := range fds {
		if len(v.Findings) == 0 || fd.ID != v.Findings[0] {
			v.Findings = append(v.Findings, fd.ID)
		}
	}
	switch {
	case v.Verdict.Rule != "ok":
		v.Status = mcptap.FlowFailed
	case f.tokenOK != nil:
		v.Status = mcptap.FlowComplete
	default:
		v.Status = mcptap.FlowInProgress
	}
	if t.waitCode[f] {
		if !f.codeAt.IsZero() {
			v.WaitingSince = f.codeAt
		} else {
			v.WaitingSince = f.handoffAt
		}
	}
	return v
}

// RuleInfo describes one implemented rule: its catalogue ID, default
// severity and fault side, title and fix.
type RuleInfo struct {
	ID       mcptap.RuleID
	Severity mcptap.Severity
	Fault    mcptap.Fault
	Title    string
	Fix      string
}

// Catalogue lists the implemented rules in the order that breaks verdict
// ties (causes before symptoms).
func Catalogue() []RuleInfo {
	out := make([]RuleInfo, len(catalogue))
	for i, r := range catalogue {
		out[i] = RuleInfo{ID: r.ID, Severity: r.Severity, Fault: r.Fault, Title: r.Title, Fix: r.Fix}
	}
	return out
}

// notChecked gathers what could not be checked on the flow's exchanges
// (its hops and what led to it), each note once, in hop order.
func (f *flow) notChecked() []string {
	var out []string
	seen := map[string]bool{}
	add := func(x *exInfo) {
		for _, u := range x.unchecked {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	for _, x := range f.pre {
		add(x)
	}
	for _, h := range f.hops {
		add(h.x)
	}
	return out
}

// settle sets a passable finding's severity from its flow's outcome so far:
// a warning once the flow got past discovery to an authorize that was
// answered (a code, a consent page, a hand-off), the catalogue's severity
// otherwise. It is idempotent and follows the flow as it grows.
func (t *Tracker) settle(fd *mcptap.Finding) {
	r := &catalogue[t.ruleIdx[fd.Rule]]
	if r.Passed == nil {
		return
	}
	sev := r.Severity
	if x := t.byID[t.anchor[fd.ID]]; x != nil && x.flow != nil && r.Passed(x.flow) {
		sev = mcptap.SevWarning
	}
	fd.Severity = sev
}

// Resettled returns the findings whose severity changed since they were
// raised (or last returned), because their flow went on: a discovery flaw
// that was an error while the client might stop there becomes a warning once
// it got past discovery. A view that printed findings as they were raised
// (the --no-tui line view) prints these to correct itself. Copies, as from
// Findings.
func (t *Tracker) Resettled() []mcptap.Finding {
	var out []mcptap.Finding
	keep := t.unsettled[:0]
	for _, u := range t.unsettled {
		t.settle(u.fd)
		if u.fd.Severity != u.shown {
			out = append(out, ownCopy(u.fd))
			u.shown = u.fd.Severity
		}
		if u.shown != mcptap.SevWarning { // a warning is final: the flow cannot un-pass discovery
			keep = append(keep, u)
		}
	}
	clear(t.unsettled[len(keep):])
	t.unsettled = keep
	return out
}

// wentPastDiscovery says the client reached the authorization server with
// an authorize request that was answered without an error page: it found
// and used the metadata, whatever its flaws.
func (f *flow) wentPastDiscovery() bool {
	if f.code != "" || f.tokenOK != nil || f.bearerSeen {
		return true
	}
	for _, a := range f.authz {
		if a.status() > 0 && a.status() < 400 || a.statusUnrecorded() {
			return true
		}
	}
	return false
}

// succeeded says the attempt reached the last hop this capture can see: an
// authenticated MCP call answered 2xx where the capture sees the client's
// calls (a token request or an MCP call was recorded); a token issued when
// no MCP traffic was recorded at all (only the authorization server is
// behind mcptap); else a successful client callback completion or callback
// page (a browser-side capture, whose token and MCP calls leave from the
// client's backend).
func (t *Tracker) succeeded(f *flow) bool {
	if f.probed() {
		// mcptap check stops at the authorize's first answer by design:
		// that answer, when it is no error, is as far as it can see.
		for _, a := range f.authz {
			if a.status() >= 200 && a.status() < 400 && a.ex.Err == "" && !hasError(a.locQ) {
				return true
			}
		}
		return false
	}
	for _, m := range f.mcps {
		if successful(m) {
			return true
		}
	}
	if !t.sawMCP && (f.tokenOK != nil || !f.tokenUnreadAt.IsZero()) {
		return true
	}
	if len(f.tokens) > 0 || len(f.mcps) > 0 || f.tokenOK != nil {
		return false
	}
	for _, c := range f.completions {
		if successful(c) {
			return true
		}
	}
	for _, c := range f.callbacks {
		if c.status() >= 200 && c.status() < 400 && c.ex.Err == "" {
			if _, err := c.q.Lookup("error"); !err {
				return true
			}
		}
	}
	return false
}

// probed: the attempt was sent by mcptap check itself (a check session
// holds nothing else, and no other session holds its requests).
func (f *flow) probed() bool {
	return len(f.hops) > 0 && f.hops[0].x.ex.Mode == mcptap.ModeCheck
}

func hasError(q Query) bool { _, ok := q.Lookup("error"); return ok }

// lastHop describes the furthest hop an attempt reached, for flow.incomplete.
func (f *flow) lastHop() (*exInfo, string) {
	var last *exInfo
	kind := mcptap.HopKind("")
	for _, h := range f.hops {
		if last == nil || h.x.order >= last.order {
			last, kind = h.x, h.kind
		}
	}
	if last == nil {
		return nil, ""
	}
	return last, fmt.Sprintf("%s (%s %s → %d)", kind, last.method(), last.base, last.status())
}

// unexplained says why nothing explains where an attempt stopped, quoting
// the last hop's JSON-RPC error when it has one.
func unexplained(last *exInfo) string {
	if note := rpcErrorNote(last); note != "" {
		return "no OAuth rule explains why." + note
	}
	return "nothing recorded explains why."
}

// incompleteFlows raises flow.incomplete, at the end of a recording, on every
// attempt that did not succeed and that no error or warning explains.
func (t *Tracker) incompleteFlows() []mcptap.Finding {
	var r *ruleDef
	for i := range catalogue {
		if catalogue[i].ID == mcptap.RuleFlowIncomplete {
			r = &catalogue[i]
		}
	}
	var out []mcptap.Finding
	stale := t.staleSiblings()
	churned := map[string]*mcptap.Finding{} // a registration made again -> the churn finding
	for _, fd := range t.findingList {
		if fd.Rule == mcptap.RuleRegisterChurn {
			for _, id := range fd.Exchanges[:max(len(fd.Exchanges)-1, 0)] {
				churned[id] = fd
			}
		}
	}
	for _, f := range t.flows {
		if t.succeeded(f) {
			continue
		}
		explained := false
		for _, fd := range t.flowFindings(f) {
			t.settle(fd)
			explained = explained || fd.Severity == mcptap.SevError || fd.Severity == mcptap.SevWarning && !catalogue[t.ruleIdx[fd.Rule]].Hygiene
		}
		if explained {
			continue
		}
		if fd := stale[f.stateRaw]; fd != nil && f.stateRaw != "" {
			// Abandoned because the user finished an older attempt: the
			// older attempt's state.stale explains this one too.
			t.explainedBy[f] = fd
			f.dirty = true
			continue
		}
		last, what := f.lastHop()
		if last == nil || last.statusUnrecorded() {
			// How the last hop was answered was not recorded: the flow's
			// not-checked note says so; nothing is judged on an absence.
			continue
		}
		if fd := churned[last.id()]; fd != nil && last.kind == mcptap.HopRegister {
			// It stopped at a registration the client then made again with
			// the same metadata: register.churn explains it.
			t.explainedBy[f] = fd
			f.dirty = true
			continue
		}
		if why := registrationUndecodable(t.identify(f), last); why != "" {
			// A registration answer that follows RFC 7591 and that this
			// client is known not to read: the client's side.
			if fd, ok := t.raise(r, hit{anchor: last.id(), key: f.id + "|incomplete", exchanges: ids(last), fault: mcptap.FaultClient,
				detail:   fmt.Sprintf("The attempt ended at %s: the client registered and went no further. The answer %s What would decide it: the client's log.", what, why),
				evidence: []mcptap.Evidence{ev(last, "body.jwks", "what the client can decode", "a JSON object", "")}}); ok {
				out = append(out, fd)
			}
			continue
		}
		decide := "a capture that also sees the client's side (the browser proxy: mcptap proxy --browser-proxy, then mcptap browser) or the client's own log"
		if len(f.tokens) > 0 || f.tokenOK != nil {
			decide = "the client's log after the token response, or the tunnel's request log for an MCP call an edge blocked before it reached mcptap"
		}
		if fd, ok := t.raise(r, hit{anchor: last.id(), key: f.id + "|incomplete", exchanges: ids(last),
			detail:   fmt.Sprintf("The attempt ended at %s and went no further before the recording ended; %s What would decide it: %s.", what, unexplained(last), decide),
			evidence: []mcptap.Evidence{ev(last, "flow", "an authenticated MCP call answered 2xx (or the client's callback completed)", "last hop: "+what, "")}}); ok {
			out = append(out, fd)
		}
	}
	return out
}

// staleSiblings maps the state of a newer attempt to the state.stale
// finding of the older attempt that the user finished instead: the newer one
// was abandoned because of it. It is built once per Finish, so the lookup is
// linear in the flows, not flows × findings.
func (t *Tracker) staleSiblings() map[string]*mcptap.Finding {
	m := map[string]*mcptap.Finding{}
	for _, fd := range t.findingList {
		if fd.Rule == mcptap.RuleStateStale && len(fd.Evidence) > 0 && fd.Evidence[0].Want != "" {
			m[fd.Evidence[0].Want] = fd
		}
	}
	return m
}

// checks are the flow's PKCE proofs, one per code token request.
func (f *flow) checks() []mcptap.Check {
	var out []mcptap.Check
	for _, tk := range codeTokens(f) {
		c, _ := pkceCheck(f, tk)
		out = append(out, c)
	}
	return out
}
