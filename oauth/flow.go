package oauth

import (
	"fmt"
	"time"

	"github.com/mcptap/mcptap"
)

// flow is one authorization attempt being rebuilt.
type flow struct {
	id   string
	n    int
	hops []hop
	// moreMCP counts the successful MCP calls past keptMCPCalls that
	// Options.Forget did not keep as hops.
	moreMCP int

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
	// interactions are the authorization server's login or consent
	// requests after the authorize that failed saying the pending
	// authorization was lost (no hop kind; authorize.session-lost).
	interactions []*exInfo
	mcps         []*exInfo

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
	initialize    *exInfo // the first answered initialize among its MCP calls
	version       string  // the protocol version that initialize negotiated
	// raised are the OncePerFlow rules already raised on the flow.
	raised     map[mcptap.RuleID]bool
	userAgents []string
	// webCalls: one of the client's own calls (discovery, registration,
	// token, MCP) carried Origin: a web page made it.
	webCalls bool
	judged   bool // the rules last ran with every hop complete
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
	if x.statusUnrecorded() {
		x.noteUnchecked(fmt.Sprintf("the status of %s %s was not recorded (its headers and body were): it was not checked", x.method(), x.base))
	}
	if !f.webCalls && x.reqH("Origin") != "" && clientCall(kind) {
		f.webCalls = true
	}
	if ua := x.reqH("User-Agent"); ua != "" && len(f.userAgents) < 8 {
		f.userAgents = append(f.userAgents, ua)
	}
}

// clientCall says whether a hop of kind is a request the client itself
// sends (not one the browser sends for it, as the authorize and callback
// are).
func clientCall(kind mcptap.HopKind) bool {
	switch kind {
	case mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopRegister,
		mcptap.HopToken, mcptap.HopRefresh, mcptap.HopMCP:
		return true
	}
	return false
}

func (t *Tracker) newFlow(x *exInfo) *flow {
	f := &flow{id: "flow-" + shortHash(x.id()), n: len(t.flows)}
	t.flows = append(t.flows, f)
	return f
}

// tokenAt is when the flow's token was issued, read or not.
func (f *flow) tokenAt() time.Time {
	if f.tokenOK != nil {
		return f.tokenOKAt
	}
	return f.tokenUnreadAt
}
