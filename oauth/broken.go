package oauth

import "github.com/mcptap/mcptap"

// BrokenHop says where a failed flow's chain broke, for the views that mark
// it (the TUI's timeline, the HTML report's sequence diagram): the index in
// f.Hops of the last hop whose exchange the verdict finding cites. Earlier
// cited hops are context (the authorize whose state the redirect then
// dropped; a redirect shares its authorize's exchange). A rule about a hop
// that never came cites the last hop that did; then hop is -1 and missing
// names the hop that never came ("" when the rule names none). ok is false
// when the flow did not fail or verdict is not its verdict.
func BrokenHop(f mcptap.Flow, verdict mcptap.Finding) (hop int, missing mcptap.HopKind, ok bool) {
	if f.Status != mcptap.FlowFailed || verdict.Rule != f.Verdict.Rule {
		return -1, "", false
	}
	switch verdict.Rule {
	case mcptap.RuleTokenNeverCalled:
		return -1, mcptap.HopToken, true
	case mcptap.RuleMCPBearerNeverSent:
		return -1, mcptap.HopMCP, true
	}
	cited := make(map[string]bool, len(verdict.Exchanges))
	for _, id := range verdict.Exchanges {
		cited[id] = true
	}
	hop = -1
	for i, h := range f.Hops {
		if cited[h.Exchange] {
			hop = i
		}
	}
	return hop, "", true
}
