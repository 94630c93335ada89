package oauth

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

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
	// findings and verdicts are the same; Hop and FlowOf no longer know a
	// dropped exchange, and Flows lists fewer MCP hops. Off for reports,
	// replays and the TUI, which show every exchange.
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
	regs         map[string]*exInfo // client_id -> registration exchange
	attempts     map[string]int     // redirect_uri base -> authorize attempts seen
	links        map[string]*exInfo // link initiations waiting for their authorize, by linkKey
	mcpEP        map[string]bool    // endpointKey of the MCP endpoints: where JSON-RPC was POSTed, and protected resources
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

// timer is one flow's deadline on the timer heap.
type timer struct {
	at time.Time
	f  *flow
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// wait puts f on a timer (code → token, or token → first bearer).
func (t *Tracker) wait(set map[*flow]bool, f *flow, since time.Time) {
	set[f] = true
	f.dirty = true // WaitingSince
	heap.Push(&t.timers, timer{at: since.Add(t.opts.TokenTimeout), f: f})
}

// unwait takes f off a timer.
func (t *Tracker) unwait(set map[*flow]bool, f *flow) {
	if set[f] {
		delete(set, f)
		f.dirty = true
	}
}

// waiting says whether f is on either timer.
func (t *Tracker) waiting(f *flow) bool { return t.waitCode[f] || t.waitBearer[f] }

// deadline is the earliest time a waiting flow's timer runs out (zero when
// nothing waits), so Observe and Tick skip the timed rules until then.
func (t *Tracker) deadline() time.Time {
	for len(t.timers) > 0 && !t.waiting(t.timers[0].f) {
		heap.Pop(&t.timers)
	}
	if len(t.timers) == 0 {
		return time.Time{}
	}
	return t.timers[0].at
}

// expired pops the flows whose timers ran out by now, each once.
func (t *Tracker) expired() []*flow {
	var fs []*flow
	seen := map[*flow]bool{}
	for len(t.timers) > 0 && !t.timers[0].at.After(t.now) {
		tm := heap.Pop(&t.timers).(timer)
		if t.waiting(tm.f) && !seen[tm.f] {
			seen[tm.f] = true
			fs = append(fs, tm.f)
		}
	}
	return fs
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
		prmByHost:        map[string][]*exInfo{},
		prmFail:          map[string]*exInfo{},
		regs:             map[string]*exInfo{},
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
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out
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

// flow is one authorization attempt being rebuilt.
type flow struct {
	id   string
	n    int
	hops []hop

	authz       []*exInfo // outer authorize requests (reloads of the same attempt included)
	a           *exInfo
	aq          Query
	state       string
	stateRaw    string
	hasState    bool
	clientID    string
	redirectURI string
	challenge   string
	method      string
	resource    string
	hasResource bool

	inner *leg

	redirects   []*exInfo // outer code- or error-bearing redirects
	callbacks   []*exInfo
	completions []*exInfo
	tokens      []*exInfo
	refreshes   []*exInfo
	pre         []*exInfo // discovery, registration, unauthenticated MCP that led here
	links       []*exInfo // ChatGPT link initiations that returned this authorize URL (no hop kind)
	mcps        []*exInfo

	code      string
	codeAt    time.Time
	codeEx    *exInfo
	handoffAt time.Time // authorize handed to an external provider
	handoffEx *exInfo
	tokenOK   *exInfo
	tokenOKAt time.Time
	// tokenUnreadAt is when a token request was answered 200 with a body
	// the capture did not record (the token itself is unknown).
	tokenUnreadAt time.Time
	access        string
	bearerSeen    bool
	userAgents    []string
	judged        bool // the rules last ran with every hop complete
	// dirty says the built value (built) is out of date: a hop, a finding, a
	// timer or what names the client changed since Flows last built it.
	dirty   bool
	built   *mcptap.Flow
	started time.Time
	updated time.Time
}

type leg struct {
	state, stateRaw, redirectURI, location string
	challenge                              string
	authorize                              *exInfo
	callbacks                              []*exInfo
	tokens                                 []*exInfo // the server's token calls to the provider (when routed through mcptap)
}

type hop struct {
	x     *exInfo
	kind  mcptap.HopKind
	inner bool
}

func (f *flow) add(x *exInfo, kind mcptap.HopKind, inner bool) {
	f.hops = append(f.hops, hop{x: x, kind: kind, inner: inner})
	f.judged = false
	f.dirty = true
	if f.started.IsZero() || x.at().Before(f.started) {
		f.started = x.at()
	}
	if x.at().After(f.updated) {
		f.updated = x.at()
	}
	if ua := x.reqH("User-Agent"); ua != "" && len(f.userAgents) < 8 {
		f.userAgents = append(f.userAgents, ua)
	}
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func (t *Tracker) newFlow(x *exInfo) *flow {
	f := &flow{id: "flow-" + shortHash(x.id()), n: len(t.flows)}
	t.flows = append(t.flows, f)
	return f
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
	groups := map[string][]*exInfo{}
	var hosts []string
	for _, p := range t.pending {
		h := hostPortOf(p.url)
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
		bad, started, challenged := false, false, false
		for _, p := range g {
			bad = bad || anchored[p.id()]
			started = started || p.kind == mcptap.HopRegister || (p.kind != mcptap.HopMCPUnauthenticated && challenged)
			challenged = challenged || p.kind == mcptap.HopMCPUnauthenticated
		}
		if challenged && !flowHosts[h] {
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
// correlated with it without a hop kind (a ChatGPT link initiation).
func (t *Tracker) FlowOf(exchangeID string) (string, bool) {
	x, ok := t.byID[exchangeID]
	if !ok || x.flow == nil {
		return "", false
	}
	return x.flow.id, true
}

// Hop is the classification of one exchange.
func (t *Tracker) Hop(exchangeID string) (mcptap.HopKind, bool) {
	x, ok := t.byID[exchangeID]
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

// classify decides what an exchange is by what it carries.
func (t *Tracker) classify(x *exInfo) {
	m := x.method()
	p := strings.ToLower(pathOf(x.base))
	gt, hasGT := x.form.Lookup("grant_type")
	rt := x.q.Get("response_type")
	if rt == "" && m == "POST" {
		rt = x.form.Get("response_type")
	}
	if m == "POST" && isLinkInitiation(p) {
		x.link = true // no public hop kind fits: correlated with its flow, not a hop
		return
	}
	switch {
	case strings.HasSuffix(p, "/backend-api/aip/connectors/links/oauth/callback"),
		strings.Contains(p, "/backend-api/aip/connectors/links/oauth/state/"),
		strings.Contains(p, "/backend-api/aip/") && strings.HasSuffix(p, "/oauth/callback") && m == "POST":
		x.kind = mcptap.HopCallbackCompletion
	case m == "POST" && (hasGT || t.tokenEP[x.key]):
		t.sawToken = true
		if gt == "refresh_token" {
			x.kind = mcptap.HopRefresh
		} else {
			x.kind = mcptap.HopToken
		}
	case strings.Contains(" "+rt+" ", " code "):
		x.kind = mcptap.HopAuthorize
	case strings.Contains(p, "/.well-known/oauth-protected-resource"):
		x.kind = mcptap.HopDiscoveryResource
	case strings.Contains(p, "/.well-known/oauth-authorization-server"), strings.Contains(p, "/.well-known/openid-configuration"):
		x.kind = mcptap.HopDiscoveryAuth
	case m == "POST" && !isJSONRPC(x.ex.ReqBody) && (t.regEP[x.key] || jsonHasKey(x.ex.ReqBody, "redirect_uris")):
		x.kind = mcptap.HopRegister
	case hasCodeOrError(x.q) && (t.redirectURIs[x.base] || clientFromRedirect(x.base) != ""):
		x.kind = mcptap.HopCallback
	case m == "POST" && isJSONRPC(x.ex.ReqBody):
		t.sawMCP = true
		t.mcpEP[x.key] = true
		if x.bearer == "" && x.status() == 401 {
			x.kind = mcptap.HopMCPUnauthenticated
		} else {
			x.kind = mcptap.HopMCP
		}
	case t.mcpEP[x.key] && isMCPStreamOrEnd(x):
		// The standalone SSE GET (a stateless server answers 405) and the
		// session DELETE on the endpoint JSON-RPC is POSTed to.
		if x.bearer == "" && x.status() == 401 {
			x.kind = mcptap.HopMCPUnauthenticated
		} else {
			x.kind = mcptap.HopMCP
		}
	case x.status() == 401 && x.bearer == "" && strings.HasPrefix(strings.ToLower(x.respH("WWW-Authenticate")), "bearer"):
		t.sawMCP = true
		x.kind = mcptap.HopMCPUnauthenticated
	}
	x.redirect = isRedirectStatus(x.status()) && hasCodeOrError(x.locQ)
	if x.kind == "" && x.redirect {
		x.kind = mcptap.HopRedirect
	}
}

// isLinkInitiation: ChatGPT's web app asks its backend to start (or redo) a
// link; the answer is {"redirect_url": "<authorize URL incl. state>"}.
func isLinkInitiation(lowerPath string) bool {
	p := strings.TrimSuffix(lowerPath, "/")
	return strings.Contains(p, "/backend-api/aip/") &&
		(strings.HasSuffix(p, "/links/oauth") || strings.HasSuffix(p, "/links/oauth/reauth"))
}

// linkKey is what ties a link initiation to its authorize: the state of the
// authorize URL, or the URL itself when it has none.
func linkKey(authorizeURL string) string {
	_, rq := splitURL(authorizeURL)
	if st := ParseQuery(rq).Get("state"); st != "" {
		return "state:" + st
	}
	return "url:" + authorizeURL
}

// learnLink correlates a complete link initiation with the attempt it
// started, now or when that authorize arrives.
func (t *Tracker) learnLink(x *exInfo) {
	u := str(jsonObject(x.ex.RespBody), "redirect_url")
	if u == "" || x.flow != nil {
		return
	}
	k := linkKey(u)
	for _, f := range t.flows {
		if f.a != nil && (linkKey(f.a.url) == k || f.a.url == u) {
			t.attachLink(f, x)
			return
		}
	}
	t.links[k] = x
}

func (t *Tracker) attachLink(f *flow, x *exInfo) {
	x.flow = f
	f.links = append(f.links, x)
	f.dirty = true
}

// isMCPStreamOrEnd says whether a request to the MCP endpoint is one of the
// transport's non-POST requests: DELETE (session end), or a GET that asks for
// an event stream or carries the transport's headers. A plain GET of the same
// URL (a browser opening it) stays unclassified.
func isMCPStreamOrEnd(x *exInfo) bool {
	switch x.method() {
	case "DELETE":
		return true
	case "GET":
		return strings.Contains(strings.ToLower(x.reqH("Accept")), "text/event-stream") ||
			x.reqH("Mcp-Session-Id") != "" || x.reqH("Mcp-Protocol-Version") != "" || x.reqH("Last-Event-ID") != ""
	}
	return false
}

func jsonHasKey(b []byte, key string) bool {
	// Most bodies cannot hold the key at all: no parse for them. (A key
	// spelled with \u escapes is missed; no client writes one.)
	if !bytes.Contains(b, []byte(`"`+key+`"`)) {
		return false
	}
	m := jsonObject(b)
	_, ok := m[key]
	return ok
}

// place puts a classified exchange into a flow (or parks it until the next
// authorize of its origin).
func (t *Tracker) place(x *exInfo) {
	x.placed = true
	switch x.kind {
	case mcptap.HopAuthorize:
		t.placeAuthorize(x)
	case mcptap.HopCallback:
		st, hasSt := x.q.Lookup("state")
		raw, _ := x.q.Raw("state")
		f, inner := t.findByState(st, raw, hasSt, x.q.Get("code"), x.base)
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow, x.inner = f, inner
		f.add(x, mcptap.HopCallback, inner)
		if inner {
			f.inner.callbacks = append(f.inner.callbacks, x)
			if c := x.q.Get("code"); c != "" {
				t.byInnerCode[c] = f
			}
			f.handoffAt = time.Time{}
			t.unwait(t.waitCode, f)
		} else {
			f.callbacks = append(f.callbacks, x)
			if c := x.q.Get("code"); c != "" {
				t.byCode[c] = f
			}
		}
	case mcptap.HopCallbackCompletion:
		var f *flow
		var inner bool
		if full := str(jsonObject(x.ex.ReqBody), "full_redirect_url"); full != "" {
			_, rq := splitURL(full)
			q := ParseQuery(rq)
			st, hasSt := q.Lookup("state")
			raw, _ := q.Raw("state")
			base, _ := splitURL(full)
			f, inner = t.findByState(st, raw, hasSt, q.Get("code"), base)
		} else if i := strings.Index(x.base, "/links/oauth/state/"); i >= 0 {
			f = t.bySID[strings.Trim(x.base[i+len("/links/oauth/state/"):], "/")]
		} else if c := str(jsonObject(x.ex.ReqBody), "code"); c != "" {
			f = t.byCode[c] // older plugin callbacks post the code alone
		}
		if f == nil {
			f = t.newFlow(x)
		}
		_ = inner
		x.flow = f
		f.add(x, mcptap.HopCallbackCompletion, false)
		f.completions = append(f.completions, x)
	case mcptap.HopToken:
		code := x.form.Get("code")
		f := t.byCode[code]
		if f == nil || code == "" {
			if v := x.form.Get("code_verifier"); v != "" {
				f = t.byChallenge[S256(v)]
				if f == nil {
					f = t.byChallenge[v]
				}
			}
		}
		if f == nil {
			if g := t.innerToken(x); g != nil {
				x.flow, x.inner = g, true
				g.add(x, mcptap.HopToken, true)
				g.inner.tokens = append(g.inner.tokens, x)
				return
			}
			f = t.newFlow(x)
		}
		x.flow = f
		f.add(x, mcptap.HopToken, false)
		f.tokens = append(f.tokens, x)
		if code != "" && code == f.code {
			t.unwait(t.waitCode, f)
		}
	case mcptap.HopRefresh:
		f := t.byRefresh[x.form.Get("refresh_token")]
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow = f
		f.add(x, mcptap.HopRefresh, false)
		f.refreshes = append(f.refreshes, x)
	case mcptap.HopRegister, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopMCPUnauthenticated:
		x.pending = true
		t.pending = append(t.pending, x)
		if len(t.pending) > maxPending {
			t.pending[0].pending = false
			t.pending = t.pending[1:]
		}
	case mcptap.HopMCP:
		if x.bearer == "" && x.ex.Mode == mcptap.ModeHAR && successful(x) {
			t.placeUnrecordedBearer(x)
			break
		}
		if f := t.byAccess[x.bearer]; f != nil && x.bearer != "" && !(t.opts.Forget && len(f.mcps) >= keptMCPCalls && successful(x)) {
			x.flow = f
			f.add(x, mcptap.HopMCP, false)
			f.mcps = append(f.mcps, x)
			if !f.bearerSeen {
				f.bearerSeen = true
				t.unwait(t.waitBearer, f)
			}
		}
	}
	if x.redirect {
		t.placeRedirect(x)
	}
}

// tokenAt is when the flow's token was issued, read or not.
func (f *flow) tokenAt() time.Time {
	if f.tokenOK != nil {
		return f.tokenOKAt
	}
	return f.tokenUnreadAt
}

// placeUnrecordedBearer places an MCP request that a HAR file shows without
// an Authorization header and that the server answered 2xx: Chrome's default
// (sanitized) export, and other tools, strip Authorization, Cookie and
// Set-Cookie. It belongs to the latest flow whose token was issued before
// it; the server's 2xx is the evidence that
// the bearer was sent. The header itself is noted as not checked.
func (t *Tracker) placeUnrecordedBearer(x *exInfo) {
	var best *flow
	for i := len(t.tokened) - 1; i >= 0; i-- {
		if f := t.tokened[i]; !f.tokenAt().After(x.at()) {
			best = f
			break
		}
	}
	if best == nil {
		return
	}
	x.flow = best
	best.add(x, mcptap.HopMCP, false)
	best.mcps = append(best.mcps, x)
	x.noteUnchecked("the MCP request's Authorization header is not in the recording (a sanitized HAR export strips it): the bearer is taken as sent because the server answered 2xx")
	if !best.bearerSeen {
		best.bearerSeen = true
		t.unwait(t.waitBearer, best)
	}
}

// innerToken finds the flow whose inner leg a token request belongs to: the
// OAuth proxy redeeming the upstream provider's code (by that code, by its
// PKCE verifier, or by the inner redirect_uri when the provider has no PKCE).
func (t *Tracker) innerToken(x *exInfo) *flow {
	if c := x.form.Get("code"); c != "" {
		if f := t.byInnerCode[c]; f != nil {
			return f
		}
	}
	if v := x.form.Get("code_verifier"); v != "" {
		if f := t.byInnerChallenge[S256(v)]; f != nil {
			return f
		}
		if f := t.byInnerChallenge[v]; f != nil {
			return f
		}
	}
	if ru := x.form.Get("redirect_uri"); ru != "" {
		b, _ := splitURL(ru)
		if f := t.byInnerRedirect[b]; f != nil && f.inner != nil && !sameBase(f.inner.redirectURI, f.redirectURI) {
			return f
		}
	}
	return nil
}

func (t *Tracker) placeAuthorize(x *exInfo) {
	q := x.q
	if x.method() == "POST" && q.Get("response_type") == "" {
		q = x.form
	}
	st, hasSt := q.Lookup("state")
	var f *flow
	// The request an outer authorize redirected to is the inner leg (an MCP
	// server acting as OAuth proxy in front of an upstream IdP).
	if g := t.byLocation[x.url]; g != nil {
		f = g
	} else if g := t.byState[st]; g != nil && hasSt && st != "" && g.inner != nil && g.inner.state == st {
		f = g
	}
	if f != nil {
		x.flow, x.inner = f, true
		f.inner.authorize = x
		f.add(x, mcptap.HopAuthorize, true)
		if ru := q.Get("redirect_uri"); ru != "" {
			b, _ := splitURL(ru)
			t.redirectURIs[b] = true
		}
		return
	}
	if g := t.byState[st]; g != nil && hasSt && st != "" && g.state == st && g.a != nil && len(g.redirects) == 0 && len(g.tokens) == 0 {
		// The same attempt loaded again (login loop, reload). Once the
		// authorization server has answered it (a code, an error), an
		// authorize with the same state is a new attempt: clients with a
		// constant state and retry loops otherwise pile every attempt into
		// one flow, which is wrong and made the rules quadratic per flow.
		f = g
	} else {
		f = t.newFlow(x)
		f.a, f.aq = x, q
		f.state, f.hasState = st, hasSt
		f.stateRaw, _ = q.Raw("state")
		f.clientID = q.Get("client_id")
		f.redirectURI = q.Get("redirect_uri")
		f.challenge = q.Get("code_challenge")
		f.method = q.Get("code_challenge_method")
		f.resource, f.hasResource = q.Lookup("resource")
		if st != "" {
			t.byState[st] = f
			t.indexSID(f, st)
		}
		if f.challenge != "" {
			t.byChallenge[f.challenge] = f
		}
		if f.redirectURI != "" {
			b, _ := splitURL(f.redirectURI)
			t.redirectURIs[b] = true
			t.byRedirect[b] = f
			t.attempts[b]++
		}
	}
	x.flow = f
	f.authz = append(f.authz, x)
	f.add(x, mcptap.HopAuthorize, false)
	if len(t.links) > 0 {
		for _, k := range []string{linkKey(x.url), "url:" + x.url} {
			if l := t.links[k]; l != nil {
				delete(t.links, k)
				t.attachLink(f, l)
			}
		}
	}
	t.attachPending(f, x)
	// Handed to an upstream identity provider: remember the inner leg.
	if isRedirectStatus(x.status()) && !x.redirect && x.loc != "" {
		lq := x.locQ
		if strings.Contains(" "+lq.Get("response_type")+" ", " code ") {
			in := &leg{location: x.loc, redirectURI: lq.Get("redirect_uri"), challenge: lq.Get("code_challenge")}
			in.state = lq.Get("state")
			in.stateRaw, _ = lq.Raw("state")
			f.inner = in
			t.byLocation[x.loc] = f
			if in.state != "" && in.state != f.state {
				t.byState[in.state] = f
			}
			if in.challenge != "" && in.challenge != f.challenge {
				t.byInnerChallenge[in.challenge] = f
			}
			if in.redirectURI != "" {
				b, _ := splitURL(in.redirectURI)
				t.redirectURIs[b] = true
				t.byInnerRedirect[b] = f
			}
			f.handoffAt, f.handoffEx = x.at(), x
			t.wait(t.waitCode, f, f.handoffAt)
		}
	}
}

func (t *Tracker) indexSID(f *flow, st string) {
	if strings.HasPrefix(st, prefixChatGPTState) {
		t.bySID[st] = f
		return
	}
	if m := decodeState(st); m != nil {
		for _, k := range []string{"s", "oauth_id"} {
			if s, ok := m[k].(string); ok && strings.HasPrefix(s, prefixChatGPTState) {
				t.bySID[s] = f
			}
		}
	}
}

// findByState finds the flow a returning authorization response belongs to:
// by state, then by code, then by a recognisable alteration of a recent
// state, then by redirect_uri. inner says it matched the inner leg.
func (t *Tracker) findByState(st, raw string, hasSt bool, code, base string) (*flow, bool) {
	if st != "" {
		if f := t.byState[st]; f != nil {
			return f, f.inner != nil && f.inner.state == st && f.state != st
		}
	}
	if code != "" {
		if f := t.byCode[code]; f != nil {
			return f, false
		}
	}
	if raw != "" {
		for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
			f := t.flows[i]
			if f.stateRaw != "" && compareState(f.stateRaw, raw) != AlterOther {
				return f, false
			}
			if f.inner != nil && f.inner.stateRaw != "" && compareState(f.inner.stateRaw, raw) != AlterOther {
				return f, true
			}
		}
	}
	if f := t.byRedirect[base]; f != nil {
		return f, f.isInnerReturn("", base)
	}
	for i := len(t.flows) - 1; i >= 0 && i >= len(t.flows)-fuzzyWindow; i-- {
		f := t.flows[i]
		if f.isInnerReturn("", base) {
			return f, true
		}
	}
	return nil, false
}

// isInnerReturn says whether an authorization response (its state and target)
// belongs to the inner leg: it goes to the inner redirect_uri, which differs
// from the client's, or carries the inner state, which differs from the
// client's. A server that passes state and redirect_uri through unchanged
// has no separate inner return: the provider answers the client directly.
func (f *flow) isInnerReturn(st, base string) bool {
	if f.inner == nil {
		return false
	}
	if st != "" && st == f.inner.state && st != f.state {
		return true
	}
	return sameBase(base, f.inner.redirectURI) && !sameBase(f.inner.redirectURI, f.redirectURI)
}

// placeRedirect adds the redirect hop of a 3xx that carries code or error.
func (t *Tracker) placeRedirect(x *exInfo) {
	st, hasSt := x.locQ.Lookup("state")
	raw, _ := x.locQ.Raw("state")
	f := x.flow
	inner := false
	if f != nil {
		inner = f.isInnerReturn(st, x.locBase)
	} else {
		f, inner = t.findByState(st, raw, hasSt, "", x.locBase)
		if f == nil {
			f = t.newFlow(x)
		}
		x.flow = f
	}
	x.redirInner = inner
	f.add(x, mcptap.HopRedirect, inner)
	if inner {
		return
	}
	f.redirects = append(f.redirects, x)
	if c := x.locQ.Get("code"); c != "" {
		t.byCode[c] = f
		if f.code == "" {
			f.code, f.codeAt, f.codeEx = c, x.at(), x
			f.handoffAt = time.Time{}
			t.wait(t.waitCode, f, f.codeAt)
		}
	}
}

func sameBase(a, b string) bool {
	ab, _ := splitURL(a)
	bb, _ := splitURL(b)
	return ab != "" && ab == bb
}

// attachPending gives the new flow the discovery, registration and
// unauthenticated MCP hops that led to it: those on the authorize's host, on
// hosts whose metadata names it, and registrations of its client_id.
func (t *Tracker) attachPending(f *flow, a *exInfo) {
	if len(t.pending) == 0 {
		return
	}
	hosts := map[string]bool{hostPortOf(a.url): true}
	authBase, _ := splitURL(a.url)
	akey := endpointKey(authBase)
	issuers := map[string]bool{}
	for _, p := range t.pending {
		if p.asm != nil && endpointKey(p.asm.AuthorizationEndpoint) == akey {
			hosts[hostPortOf(p.url)] = true
			issuers[strings.TrimSuffix(p.asm.Issuer, "/")] = true
		}
	}
	for _, p := range t.pending {
		if p.prm == nil {
			continue
		}
		for _, as := range p.prm.AuthorizationServers {
			if issuers[strings.TrimSuffix(as, "/")] || hosts[hostPortOf(as)] {
				hosts[hostPortOf(p.url)] = true
			}
		}
	}
	keep := t.pending[:0]
	for _, p := range t.pending {
		match := hosts[hostPortOf(p.url)]
		if p.kind == mcptap.HopRegister && p.reg != nil && p.reg.ClientID != "" {
			match = p.reg.ClientID == f.clientID
		}
		if match {
			p.pending = false
			p.flow = f
			f.add(p, p.kind, false)
			f.pre = append(f.pre, p)
		} else {
			keep = append(keep, p)
		}
	}
	for i := len(keep); i < len(t.pending); i++ {
		t.pending[i] = nil
	}
	t.pending = keep
}

// learn takes what an exchange teaches about endpoints, registrations and
// tokens once its body is complete.
func (t *Tracker) learn(x *exInfo) {
	if x.learned || !t.complete(x) {
		return
	}
	x.learned = true
	ok := x.status() >= 200 && x.status() < 300
	if x.link && ok {
		t.learnLink(x)
		return
	}
	switch x.kind {
	case mcptap.HopDiscoveryResource:
		h := hostPortOf(x.url)
		t.prmByHost[h] = append(t.prmByHost[h], x)
		t.prms = append(t.prms, x)
		if x.status() >= 400 && len(pathOf(x.base)) > len(prmWellKnown) && t.prmFail[h] == nil {
			t.prmFail[h] = x
		}
		if ok {
			var m oauthex.ProtectedResourceMetadata
			if json.Unmarshal(x.ex.RespBody, &m) == nil {
				x.prm = &m
				if m.Resource != "" {
					// The resource is the MCP endpoint too (an SSE GET may
					// come before any POST there, as with the older SSE transport).
					t.mcpEP[endpointKey(m.Resource)] = true
				}
			}
		}
	case mcptap.HopDiscoveryAuth:
		t.asms = append(t.asms, x)
		if ok {
			var m oauthex.AuthServerMeta
			if json.Unmarshal(x.ex.RespBody, &m) == nil {
				x.asm = &m
				if m.TokenEndpoint != "" {
					t.tokenEP[endpointKey(m.TokenEndpoint)] = true
				}
				if m.RegistrationEndpoint != "" {
					t.regEP[endpointKey(m.RegistrationEndpoint)] = true
				}
			}
		}
	case mcptap.HopRegister:
		var req oauthex.ClientRegistrationMetadata
		_ = json.Unmarshal(x.ex.ReqBody, &req)
		for _, u := range req.RedirectURIs {
			b, _ := splitURL(u)
			t.redirectURIs[b] = true
		}
		if ok {
			var r oauthex.ClientRegistrationResponse
			if json.Unmarshal(x.ex.RespBody, &r) == nil && r.ClientID != "" {
				if len(r.RedirectURIs) == 0 {
					r.RedirectURIs = req.RedirectURIs
				}
				x.reg = &r
				t.regs[r.ClientID] = x
				for _, f := range t.flows {
					if f.clientID == r.ClientID {
						f.dirty = true // the registration may name its client
					}
				}
			}
		}
	case mcptap.HopToken, mcptap.HopRefresh:
		x.tokenResp = jsonObject(x.ex.RespBody)
		x.tokenIsJSON = x.tokenResp != nil
		f := x.flow
		if ok && f != nil && !x.inner && x.tokenResp == nil && x.status() == 200 && x.respBodyUnrecorded() && f.tokenUnreadAt.IsZero() {
			// A token 200 whose body was not recorded: the token is not
			// known, but MCP calls after it may still be the flow's.
			f.tokenUnreadAt = x.at()
			t.tokened = append(t.tokened, f)
		}
		if !ok || f == nil || x.tokenResp == nil || x.inner {
			return // the upstream provider's token is the server's, never the MCP client's bearer
		}
		at, rt := str(x.tokenResp, "access_token"), str(x.tokenResp, "refresh_token")
		if at != "" {
			t.byAccess[at] = f
			f.access = at
			if f.tokenOK == nil {
				f.tokenOK, f.tokenOKAt = x, x.at()
				if f.tokenUnreadAt.IsZero() {
					t.tokened = append(t.tokened, f)
				}
				if !f.bearerSeen {
					t.wait(t.waitBearer, f, f.tokenOKAt)
				}
			}
		}
		if rt != "" {
			t.byRefresh[rt] = f
		}
	}
}
