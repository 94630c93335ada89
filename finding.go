package mcptap

import "time"

// Severity of a Finding. The string forms are part of the JSON report.
type Severity string

const (
	SevInfo    Severity = "info"
	SevWarning Severity = "warning"
	SevError   Severity = "error"
)

// Rank orders severities: info < warning < error. Unknown values rank 0.
func (s Severity) Rank() int {
	switch s {
	case SevInfo:
		return 1
	case SevWarning:
		return 2
	case SevError:
		return 3
	}
	return 0
}

// Fault is the side a Finding blames. The string forms are part of the JSON report.
type Fault string

const (
	FaultServer     Fault = "server"      // the MCP server as resource server
	FaultAuthServer Fault = "auth-server" // the authorization server (may be the same process)
	FaultClient     Fault = "client"      // ChatGPT, Claude, an IDE, mcp-remote…
	FaultUser       Fault = "user"        // browser, network, tunnel, environment
	FaultNone       Fault = "none"        // a healthy flow's verdict
	FaultUnknown    Fault = "unknown"     // the evidence cannot decide; the detail says what would
)

// Words names the side in a person's words ("authorization server").
func (f Fault) Words() string {
	switch f {
	case FaultServer:
		return "MCP server"
	case FaultAuthServer:
		return "authorization server"
	case FaultClient:
		return "client platform"
	case FaultUser:
		return "user / browser / tunnel"
	case FaultNone:
		return "nobody"
	}
	return "undecided"
}

// HopKind classifies an exchange's role in an OAuth flow. The string forms are
// part of the JSON report.
type HopKind string

const (
	HopMCPUnauthenticated HopKind = "mcp-unauthenticated"
	HopDiscoveryResource  HopKind = "discovery-resource"
	HopDiscoveryAuth      HopKind = "discovery-auth-server"
	HopRegister           HopKind = "register"
	HopAuthorize          HopKind = "authorize"
	HopRedirect           HopKind = "redirect"
	HopCallback           HopKind = "callback"
	HopCallbackCompletion HopKind = "client-callback-completion"
	HopToken              HopKind = "token"
	HopRefresh            HopKind = "refresh"
	HopMCP                HopKind = "mcp"
)

// Evidence is one fact a Finding rests on: a field of an exchange, and where
// two values are compared, the expected and the observed one side by side.
type Evidence struct {
	Exchange string `json:"exchange,omitempty"`
	Field    string `json:"field,omitempty"` // e.g. "query.state", "header.Location", "form.code_verifier"
	Want     string `json:"want,omitempty"`  // what an earlier hop said it should be
	Got      string `json:"got,omitempty"`   // what this hop carried
	Note     string `json:"note,omitempty"`
}

// Finding is a problem (or a fact worth knowing) found in the traffic. Findings
// are derived, never stored: replays recompute them with the current rules.
type Finding struct {
	ID        string     `json:"id"`
	Rule      RuleID     `json:"rule"` // a rule ID from spec/FINDINGS.md
	Severity  Severity   `json:"severity"`
	Fault     Fault      `json:"fault"`
	Flow      string     `json:"flow,omitempty"`
	Exchanges []string   `json:"exchanges,omitempty"`
	Title     string     `json:"title"`
	Detail    string     `json:"detail"`
	Fix       string     `json:"fix"`
	Evidence  []Evidence `json:"evidence,omitempty"`
	At        time.Time  `json:"at"` // time of the traffic (or Tick) that raised it
}

// Hop is one exchange placed in a Flow.
type Hop struct {
	Kind     HopKind   `json:"kind"`
	Exchange string    `json:"exchange"`
	Status   int       `json:"status"`
	At       time.Time `json:"at"`
	Inner    bool      `json:"inner,omitempty"` // leg to an upstream identity provider behind an OAuth proxy
}

// Verdict is a Flow's root cause: the earliest error on its hop chain.
type Verdict struct {
	Rule     RuleID   `json:"rule"` // "ok" for a flow with no error
	Severity Severity `json:"severity"`
	Fault    Fault    `json:"fault"`
}

// FlowStatus says where an OAuth attempt stands.
type FlowStatus string

const (
	FlowInProgress FlowStatus = "in-progress"
	FlowComplete   FlowStatus = "complete"
	FlowFailed     FlowStatus = "failed"
)

// Flow is one OAuth authorization attempt, rebuilt by the analysis from
// exchanges and keyed by its state (or code, client_id, PKCE challenge).
type Flow struct {
	ID           string         `json:"id"`
	Client       string         `json:"client"` // chatgpt|claude|vscode|cursor|mcp-remote|inspector|unknown
	State        string         `json:"state,omitempty"`
	StateDecoded map[string]any `json:"state_decoded,omitempty"`
	Hops         []Hop          `json:"hops"`
	Status       FlowStatus     `json:"status"`
	Verdict      Verdict        `json:"verdict"`
	Findings     []string       `json:"findings,omitempty"` // Finding IDs
	Started      time.Time      `json:"started"`
	Updated      time.Time      `json:"updated"`
	// NotChecked says what the analysis could not check because it was not
	// recorded (a body a HAR producer left out, a header a sanitized export
	// stripped, a redacted value): "not checked", never a failure.
	NotChecked []string `json:"not_checked,omitempty"`
	// Checks are the comparisons the analysis made on the flow's hops, each
	// with its outcome, for viewers to show as they are (the TUI's PKCE line).
	Checks []Check `json:"checks,omitempty"`
	// Waiting is set while a code has been issued and no token call has come:
	// the time the code was issued, so a UI can show a running timer.
	WaitingSince time.Time `json:"waiting_since,omitempty"`
	// MoreMCPCalls counts the successful MCP calls past the first few that a
	// long-running view's analysis counted without keeping them as hops
	// (oauth.Options.Forget); reports keep every hop and leave it 0.
	MoreMCPCalls int `json:"more_mcp_calls,omitempty"`
}

// CheckResult is the outcome of one Check.
type CheckResult string

const (
	CheckPassed     CheckResult = "passed"
	CheckFailed     CheckResult = "failed"
	CheckNotChecked CheckResult = "not-checked" // not recorded, redacted, or nothing to compare with
)

// Check is one comparison the analysis made on an exchange of a flow.
type Check struct {
	Name     string      `json:"name"` // "pkce"
	Exchange string      `json:"exchange"`
	Result   CheckResult `json:"result"`
	Detail   string      `json:"detail"`
}
