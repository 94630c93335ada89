package oauth

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"time"

	"github.com/mcptap/mcptap"
)

// Options tune the analysis.
type Options struct {
	// TokenTimeout is how long after a code-bearing redirect the token request
	// may take before token.never-called fires (and how long after a token
	// response the first bearer may take). Zero means 60 s.
	TokenTimeout time.Duration
	// Forget lets a long-running live view keep its memory flat: once the
	// complete copy of an exchange is judged, the tracker drops it if it
	// can no longer matter (outside every flow, not parked for one, no
	// finding on it, and unclassified or a successful MCP call), and a flow
	// keeps only its first KeptMCPCalls successful MCP calls as hops. The
	// findings and verdicts are the same; Hop (but right after its Observe)
	// and FlowOf no longer know a dropped exchange, and Flows lists fewer MCP
	// hops (Flow.MoreMCPCalls counts the others). On for the line view and
	// for the TUI when it reads exchanges from the store; off for reports,
	// which show every hop.
	Forget bool
}

// keptMCPCalls is how many successful MCP calls a flow keeps as hops under
// Options.Forget.
const keptMCPCalls = 8

// DefaultTokenTimeout is the TokenTimeout used when Options leave it zero.
const DefaultTokenTimeout = 60 * time.Second

const (
	maxPending    = 512 // pre-authorize hops kept for the next flow
	fuzzyWindow   = 64  // recent flows searched for an altered state
	bigStateChars = 255
)

// unsettled is a passable finding and the severity it was last reported at.
type unsettled struct {
	fd    *mcptap.Finding
	shown mcptap.Severity
}

// Tracker rebuilds flows incrementally. Observe is called for every published
// copy of every exchange, Tick when time passes without traffic, Finish when
// the recording ends. Batch analysis is the same Tracker folded over stored
// exchanges, so live and replayed sessions give the same findings.
type Tracker struct {
	opts Options
	now  time.Time
	done bool

	byID       map[string]*exInfo
	list       []*exInfo // in the order first seen
	nForgotten int       // forgotten exchanges still in list (Options.Forget)
	lastForgot *exInfo   // the exchange the last Observe forgot (Hop still answers for it)
	order      int
	flows      []*flow

	byState     map[string]*flow // decoded state (outer or inner leg)
	byCode      map[string]*flow
	byChallenge map[string]*flow
	byRedirect  map[string]*flow // redirect_uri base -> latest flow using it
	byLocation  map[string]*flow // outer authorize Location (inner authorize URL)
	byAccess    map[string]*flow
	byRefresh   map[string]*flow
	bySID       map[string]*flow // oauth_s_… id inside a decoded state
	// The inner leg's keys: what the server's own token call to the upstream
	// provider carries, when that provider is routed through mcptap too.
	byInnerCode      map[string]*flow
	byInnerChallenge map[string]*flow
	byInnerRedirect  map[string]*flow // inner redirect_uri base -> latest flow

	redirectURIs map[string]bool // bases known as client callbacks
	tokenEP      map[string]bool // endpointKey of token endpoints from AS metadata
	regEP        map[string]bool
	prms         []*exInfo            // discovery-resource exchanges in order
	prmByHost    map[string][]*exInfo // by host[:port]
	prmFail      map[string]*exInfo   // by host[:port]: the first path-suffixed metadata fetch that failed
	asms         []*exInfo
	regs         map[string]*exInfo   // client_id -> registration exchange
	regBodies    map[string][]*exInfo // registration request metadata (registrationKey) -> registrations asking for it
	streams      map[string][]*exInfo // MCP endpoint key -> its latest event streams (ruleStreamCut)
	openInit     map[string]*exInfo   // MCP endpoint key -> the first initialize answered 2xx without a token
	challengedBy map[string]*exInfo   // resource_metadata URL -> the latest 401 whose challenge named it
	legacyInit   map[string]*exInfo   // MCP endpoint key -> an initialize answered with the HTTP+SSE protocol version
	nonceRun     map[string]int       // endpoint key -> use_dpop_nonce answers in a row
	scopeRefused map[string][]*flow   // client_id -> attempts whose MCP call was refused insufficient_scope, in order
	asmByAuthEP  map[string]*exInfo   // endpointKey of an authorization_endpoint -> the latest metadata naming it
	byClient     map[string][]*flow   // client_id -> the flows that use it
	byGrant      map[string]*flow     // client_id|grant_type -> the latest attempt of a grant without an authorize
	attempts     map[string]int       // redirect_uri base -> authorize attempts seen
	links        map[string]*exInfo   // link initiations waiting for their authorize, by linkKey
	authzOrigin  map[string]*flow     // origin of an authorize -> the latest attempt authorized there
	mcpEP        map[string]bool      // endpointKey of the MCP endpoints: where JSON-RPC was POSTed, and protected resources
	sawMCP       bool
	sawToken     bool
	tokened      []*flow // flows in the order their token was issued

	pending []*exInfo

	findings    map[string]*mcptap.Finding
	findingList []*mcptap.Finding
	// unsettled are passable findings still at their catalogue severity:
	// Resettled reports them when their flow goes past discovery.
	unsettled   []unsettled
	byAnchor    map[string][]*mcptap.Finding // anchor exchange -> findings, in the order raised
	findingSeq  map[string]int               // finding ID -> index in findingList
	anchor      map[string]string            // finding ID -> anchor exchange
	secondary   map[string]bool              // finding IDs the chain got past
	causeOf     map[string]mcptap.RuleID     // finding ID -> rule of the earlier finding that explains it
	explainedBy map[*flow]*mcptap.Finding    // abandoned attempts explained by another flow's finding
	ruleIdx     map[mcptap.RuleID]int

	waitCode   map[*flow]bool
	waitBearer map[*flow]bool
	// timers holds every deadline ever set, earliest first. Entries are not
	// removed when a flow stops waiting: popping skips them. A sweep therefore
	// looks only at the flows whose time ran out instead of at every waiting
	// flow, which made a session of many abandoned attempts quadratic
	// (100,000 one-hop flows from a HAR took a minute).
	timers timerHeap
}

// NewTracker returns an empty Tracker.
func NewTracker(opts Options) *Tracker {
	if opts.TokenTimeout <= 0 {
		opts.TokenTimeout = DefaultTokenTimeout
	}
	t := &Tracker{
		opts:             opts,
		byID:             map[string]*exInfo{},
		byState:          map[string]*flow{},
		byCode:           map[string]*flow{},
		byChallenge:      map[string]*flow{},
		byRedirect:       map[string]*flow{},
		byLocation:       map[string]*flow{},
		byAccess:         map[string]*flow{},
		byRefresh:        map[string]*flow{},
		bySID:            map[string]*flow{},
		byInnerCode:      map[string]*flow{},
		byInnerChallenge: map[string]*flow{},
		byInnerRedirect:  map[string]*flow{},
		redirectURIs:     map[string]bool{},
		tokenEP:          map[string]bool{},
		regEP:            map[string]bool{},
		mcpEP:            map[string]bool{},
		links:            map[string]*exInfo{},
		authzOrigin:      map[string]*flow{},
		prmByHost:        map[string][]*exInfo{},
		prmFail:          map[string]*exInfo{},
		regs:             map[string]*exInfo{},
		regBodies:        map[string][]*exInfo{},
		streams:          map[string][]*exInfo{},
		openInit:         map[string]*exInfo{},
		challengedBy:     map[string]*exInfo{},
		legacyInit:       map[string]*exInfo{},
		nonceRun:         map[string]int{},
		scopeRefused:     map[string][]*flow{},
		asmByAuthEP:      map[string]*exInfo{},
		byClient:         map[string][]*flow{},
		byGrant:          map[string]*flow{},
		attempts:         map[string]int{},
		findings:         map[string]*mcptap.Finding{},
		byAnchor:         map[string][]*mcptap.Finding{},
		findingSeq:       map[string]int{},
		anchor:           map[string]string{},
		secondary:        map[string]bool{},
		causeOf:          map[string]mcptap.RuleID{},
		explainedBy:      map[*flow]*mcptap.Finding{},
		ruleIdx:          map[mcptap.RuleID]int{},
		waitCode:         map[*flow]bool{},
		waitBearer:       map[*flow]bool{},
	}
	for i, r := range catalogue {
		t.ruleIdx[r.ID] = i
	}
	return t
}

// InOrder returns a copy of exs sorted by start time (ties by ID), the order
// the analysis takes them in: a HAR file lists entries in its own order, and
// an import, a replay and the file itself must give the same verdicts.
func InOrder(exs []mcptap.Exchange) []mcptap.Exchange {
	out := make([]mcptap.Exchange, len(exs))
	copy(out, exs)
	sort.SliceStable(out, func(i, j int) bool { return inOrderLess(&out[i], &out[j]) })
	return out
}

// inOrderLess is InOrder's order: start time, then ID.
func inOrderLess(a, b *mcptap.Exchange) bool {
	if !a.Start.Equal(b.Start) {
		return a.Start.Before(b.Start)
	}
	return a.ID < b.ID
}

// Batch analyses a finished recording: exs in start order (InOrder), then
// Finish. It is the one batch path behind report, replay, demo and resend;
// the returned Tracker answers Flows, Findings and Hop.
func Batch(exs []mcptap.Exchange, opts Options) *Tracker {
	t := NewTracker(opts)
	for _, ex := range InOrder(exs) {
		t.Observe(ex)
	}
	t.Finish()
	return t
}

// Analyze is Batch's flows and findings.
func Analyze(exs []mcptap.Exchange, opts Options) ([]mcptap.Flow, []mcptap.Finding) {
	t := Batch(exs, opts)
	return t.Flows(), t.Findings()
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Observe takes one published copy of an exchange (upsert by ID) and returns
// the findings this call raised.
func (t *Tracker) Observe(ex mcptap.Exchange) []mcptap.Finding {
	ex = decoded(ex)
	x, seen := t.byID[ex.ID]
	if !seen {
		x = &exInfo{ex: ex, order: t.order}
		t.order++
		t.byID[ex.ID] = x
		t.list = append(t.list, x)
		x.parse()
	} else {
		x.ex = ex
		x.parseResponse()
	}
	var out []mcptap.Finding
	for _, ts := range []time.Time{ex.Start, ex.ResponseAt, ex.End} {
		if ts.After(t.now) {
			t.now = ts
		}
	}
	out = append(out, t.timed(false)...)
	if !x.placed && (ex.Status != 0 || ex.Err != "" || ex.Complete) {
		t.classify(x)
		t.place(x)
	}
	t.learn(x)
	out = append(out, t.evaluate(x)...)
	if x.flow != nil {
		x.flow.dirty = true // a newer copy of one of its hops (status, body)
	}
	if t.opts.Forget && ex.Complete && t.forgettable(x) {
		t.forget(x)
	}
	return out
}

// forgettable says whether a complete, judged exchange can no longer change
// any finding or verdict (see Options.Forget).
func (t *Tracker) forgettable(x *exInfo) bool {
	if x.flow != nil || x.pending || x.link || x.redirect || len(t.byAnchor[x.id()]) > 0 {
		return false
	}
	return x.kind == "" || (x.kind == mcptap.HopMCP && successful(x))
}

func successful(x *exInfo) bool { return x.ex.Err == "" && x.status() >= 200 && x.status() < 300 }

// forget drops x from the tracker's index and, in batches, from its list.
func (t *Tracker) forget(x *exInfo) {
	delete(t.byID, x.ex.ID)
	t.lastForgot = x
	x.forgotten = true
	t.nForgotten++
	if t.nForgotten >= 1024 && t.nForgotten*2 >= len(t.list) {
		t.list = slices.DeleteFunc(t.list, func(x *exInfo) bool { return x.forgotten }) // zeroes the tail
		t.nForgotten = 0
	}
}

// Tick lets time pass without traffic: time-based rules fire once now is past
// their deadline. now is the caller's clock (live) or the last exchange (replay).
func (t *Tracker) Tick(now time.Time) []mcptap.Finding {
	if now.After(t.now) {
		t.now = now
	}
	return t.timed(false)
}

// Finish ends the recording: exchanges still open count as complete and every
// time-based rule fires now.
func (t *Tracker) Finish() []mcptap.Finding {
	t.done = true
	var out []mcptap.Finding
	for _, x := range t.list {
		if x.forgotten {
			continue
		}
		if !x.placed {
			t.classify(x)
			t.place(x)
		}
		t.learn(x)
	}
	// Rules already judged on complete data need not run again.
	for _, f := range t.flows {
		if !f.judged {
			out = append(out, t.runFlow(f)...)
		}
	}
	for _, x := range t.list {
		if !x.judged && !x.forgotten {
			out = append(out, t.runExchange(x)...)
		}
	}
	out = append(out, t.timed(true)...)
	t.adoptLeftovers()
	out = append(out, t.incompleteFlows()...)
	for _, f := range t.flows {
		f.dirty = true // every exchange now counts as complete
	}
	return out
}

// adoptLeftovers turns discovery, registration and unauthenticated MCP hops
// that never led to an authorize into one flow per origin, when something is
// wrong with them: that is where the client gave up, and it deserves a verdict.
func (t *Tracker) adoptLeftovers() {
	anchored := map[string]bool{}
	for _, a := range t.anchor {
		anchored[a] = true
	}
	flowHosts := map[string]bool{}
	for _, f := range t.flows {
		for _, h := range f.hops {
			flowHosts[hostPortOf(h.x.url)] = true
		}
	}
	// Origins that the hops' own documents link are one attempt: the
	// protected resource metadata names the authorization server, whose
	// metadata names its registration endpoint (the MCP server and the
	// authorization server are often two origins, two tunnels).
	root := map[string]string{}
	var find func(h string) string
	find = func(h string) string {
		r, ok := root[h]
		if !ok || r == h {
			return h
		}
		r = find(r)
		root[h] = r
		return r
	}
	union := func(a, b string) {
		if a == "" || b == "" {
			return
		}
		if ra, rb := find(a), find(b); ra != rb {
			root[rb] = ra
		}
	}
	for _, p := range t.pending {
		h := hostPortOf(p.url)
		if p.prm != nil {
			for _, as := range p.prm.AuthorizationServers {
				union(h, hostPortOf(as))
			}
		}
		if p.asm != nil {
			union(h, hostPortOf(p.asm.RegistrationEndpoint))
		}
	}
	groups := map[string][]*exInfo{}
	var hosts []string
	for _, p := range t.pending {
		h := find(hostPortOf(p.url))
		if _, ok := groups[h]; !ok {
			hosts = append(hosts, h)
		}
		groups[h] = append(groups[h], p)
	}
	for _, h := range hosts {
		g := groups[h]
		// A flow starts at the first hop of the dance: a challenge, a
		// metadata fetch or a registration that no authorize followed is
		// an attempt of its own, judged like any other. Lone metadata
		// fetches without a challenge or registration (a crawler, a
		// health check) are not.
		// A lone 401 on a host where an attempt already ran is that
		// client's later call (a retry without the bearer), not a new one.
		bad, started, challenged := false, false, ""
		for _, p := range g {
			bad = bad || anchored[p.id()]
			started = started || p.kind == mcptap.HopRegister || (p.kind != mcptap.HopMCPUnauthenticated && challenged != "")
			if challenged == "" && p.kind == mcptap.HopMCPUnauthenticated {
				challenged = hostPortOf(p.url)
			}
		}
		if challenged != "" && !flowHosts[challenged] {
			started = true
		}
		if !bad && !started {
			continue
		}
		f := t.newFlow(g[0])
		for _, p := range g {
			p.pending, p.flow = false, f
			f.add(p, p.kind, false)
			f.pre = append(f.pre, p)
		}
	}
	t.pending = nil
}

// FlowOf names the flow an exchange belongs to: as one of its hops, or
// correlated with it without a hop kind (a ChatGPT link initiation). Under
// Options.Forget it also names, right after its Observe, the flow of an
// MCP call that was counted (Flow.MoreMCPCalls) and forgotten.
func (t *Tracker) FlowOf(exchangeID string) (string, bool) {
	x, ok := t.byID[exchangeID]
	if !ok && t.lastForgot != nil && t.lastForgot.ex.ID == exchangeID && t.lastForgot.countedIn != nil {
		return t.lastForgot.countedIn.id, true
	}
	if !ok || x.flow == nil {
		return "", false
	}
	return x.flow.id, true
}

// Known says whether the tracker keeps the exchange (Options.Forget drops
// some once judged).
func (t *Tracker) Known(exchangeID string) bool {
	_, ok := t.byID[exchangeID]
	return ok
}

// Hop is the classification of one exchange. Under Options.Forget it also
// knows the exchange the last Observe forgot, so that a caller may ask right
// after observing it.
func (t *Tracker) Hop(exchangeID string) (mcptap.HopKind, bool) {
	x, ok := t.byID[exchangeID]
	if !ok && t.lastForgot != nil && t.lastForgot.ex.ID == exchangeID {
		x, ok = t.lastForgot, true
	}
	if !ok || x.kind == "" {
		return "", false
	}
	return x.kind, true
}

// complete says whether x's body can be judged: the body ended, the exchange
// came from a file, or the recording is over.
func (t *Tracker) complete(x *exInfo) bool {
	return x.ex.Complete || x.ex.Mode == mcptap.ModeHAR || x.ex.Err != "" || t.done
}
