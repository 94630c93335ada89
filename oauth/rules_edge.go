package oauth

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// edgeBodyMarkers are what an edge's own answer says (Cloudflare's WAF and
// AI-bot block, its managed challenge).
var edgeBodyMarkers = []string{"your request was blocked", "attention required! | cloudflare", "just a moment...", "cf-chl-", "sorry, you have been blocked"}

// isEdgeResponse says the answer was produced by an edge in front of the
// server (Cloudflare and similar), not by the server itself. Cloudflare
// also says "server: cloudflare" on the origin's own answers it passes on,
// so that header alone decides nothing: the challenge header, or a 403 with
// the edge's own page, does.
func isEdgeResponse(x *exInfo) bool {
	h := x.ex.RespHeader
	if h.Get("Cf-Mitigated") != "" {
		return true
	}
	if !strings.EqualFold(h.Get("Server"), "cloudflare") || x.status() != 403 {
		return false
	}
	if h.Get("Cf-Ray") != "" && strings.Contains(strings.ToLower(h.Get("Content-Type")), "text/html") {
		return true
	}
	body := strings.ToLower(string(x.ex.RespBody[:min(len(x.ex.RespBody), 4096)]))
	for _, m := range edgeBodyMarkers {
		if strings.Contains(body, m) {
			return true
		}
	}
	return false
}

// edgeWatched: the requests an edge block breaks the connection on.
func edgeWatched(x *exInfo) bool {
	switch x.kind {
	case mcptap.HopMCP, mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth, mcptap.HopRegister, mcptap.HopToken, mcptap.HopRefresh:
		return true
	}
	return false
}

func ruleEdgeBlocked(t *Tracker, x *exInfo) []hit {
	if !edgeWatched(x) || !t.complete(x) || !isEdgeResponse(x) {
		return nil
	}
	ua := x.reqH("User-Agent")
	d := fmt.Sprintf("%s %s (%s, User-Agent %q) was answered %d by the edge in front of the server, not by the server", x.method(), x.base, x.kind, ua, x.status())
	if m := x.respH("Cf-Mitigated"); m != "" {
		d += " (cf-mitigated: " + m + ")"
	}
	d += ": the request never reached it."
	if x.kind == mcptap.HopMCP && strings.Contains(strings.ToLower(ua), "claude-user") {
		d += " Claude sends its authenticated MCP calls as Claude-User, which Cloudflare's AI-bot rule (Block AI bots, AI Crawl Control) blocks while the discovery and token calls (python-httpx) pass."
	}
	return []hit{{key: x.key + "|edge|" + fmt.Sprint(x.status()),
		detail:   d,
		evidence: []mcptap.Evidence{ev(x, "header.Server", "the MCP server's own answer", orNone(x.respH("Server"))+" "+orNone(x.respH("Cf-Ray")), truncate(string(x.ex.RespBody), 80))}}}
}

// interstitialMarkers are the tunnels' browser-warning pages.
var interstitialMarkers = []string{"ngrok-skip-browser-warning", "err_ngrok_6024", "you are about to visit", "bypass-tunnel-reminder", "tunnel website ahead"}

func isInterstitial(x *exInfo) bool {
	if !strings.Contains(strings.ToLower(x.respH("Content-Type")), "html") {
		return false
	}
	body := strings.ToLower(string(x.ex.RespBody))
	for _, m := range interstitialMarkers {
		if strings.Contains(body, m) {
			return true
		}
	}
	return false
}

func ruleTunnelInterstitial(t *Tracker, x *exInfo) []hit {
	if !(isMetadata(x) || x.kind == mcptap.HopMCP || x.kind == mcptap.HopMCPUnauthenticated) || !t.complete(x) || !isInterstitial(x) {
		return nil
	}
	return []hit{{key: x.key + "|interstitial",
		detail:   fmt.Sprintf("%s %s was answered by the tunnel's browser warning page (HTML), not by the server. API clients cannot click through it.", x.method(), x.base),
		evidence: []mcptap.Evidence{ev(x, "body", "the server's JSON", "tunnel warning page", truncate(string(x.ex.RespBody), 80))}}}
}

// isClaudeBackend: the attempt is claude.ai's (its callback or its user
// agents), whose authenticated MCP calls use another User-Agent than its
// discovery and token calls.
func isClaudeBackend(f *flow) bool {
	if clientFromRedirect(f.redirectURI) == ClientClaude {
		return true
	}
	for _, ua := range f.userAgents {
		if strings.HasPrefix(strings.ToLower(ua), "python-httpx") {
			return true
		}
	}
	return false
}

func ruleEdgeSilentAfterToken(t *Tracker, f *flow, final bool) []hit {
	if f.bearerSeen || f.tokenOK == nil || !t.sawMCP || !isClaudeBackend(f) {
		return nil
	}
	return []hit{{anchor: f.tokenOK.id(), key: f.tokenOK.id() + "|edge-silent",
		detail:   fmt.Sprintf("The token endpoint issued an access token at %s to Claude, and no MCP request carried it afterwards. Claude sends its discovery and token calls as python-httpx and its authenticated MCP calls as Claude-User; an edge that blocks AI bots (Cloudflare's Block AI bots / AI Crawl Control) answers those with 403 before they reach the server, so the silence is what this capture sees. Two sides can produce it: that edge (first suspect) or the client. What decides it: mcptap check %s --as claude --edge sends the same request with both User-Agents, and the tunnel's request log shows a blocked POST.", f.tokenOKAt.Format("15:04:05"), orNone(f.resource)),
		evidence: []mcptap.Evidence{ev(f.tokenOK, "header.Authorization", "Bearer <the issued token> (User-Agent Claude-User)", "never arrived", "")}}}
}

// streamCutWindow is the shortest stream life that counts as a cut by an
// idle timeout (Cloudflare ~100–125 s, Railway 300 s).
const streamCutWindow = 60 * time.Second

// keptStreams is how many long streams per endpoint ruleStreamCut compares.
const keptStreams = 8

func ruleStreamCut(t *Tracker, x *exInfo) []hit {
	if !isClosedStream(x) {
		return nil
	}
	var ds []time.Duration
	var xs []*exInfo
	for _, s := range t.streams[x.key] {
		if isClosedStream(s) {
			ds = append(ds, s.ex.End.Sub(s.ex.Start))
			xs = append(xs, s)
		}
	}
	if len(ds) < 3 {
		return nil
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	med := sorted[len(sorted)/2]
	if sorted[0] < med*9/10 || sorted[len(sorted)-1] > med*11/10 {
		return nil
	}
	return []hit{{anchor: x.id(), key: x.key + "|stream-cut", exchanges: ids(xs...),
		detail:   fmt.Sprintf("%d event streams on %s each ended after about %s (%s to %s), closed before the server ended them: a near-constant period is an idle timeout of something between the client and the server (Cloudflare cuts idle streams at ~100–125 s, Railway at 300 s), not the client or the server.", len(ds), x.base, words(med), words(sorted[0]), words(sorted[len(sorted)-1])),
		evidence: []mcptap.Evidence{ev(x, "duration", "open until the server ends it", words(med), fmt.Sprintf("%d streams", len(ds)))}}}
}

// isClosedStream: an event stream on an MCP endpoint that lived at least
// streamCutWindow and ended without the server ending it.
func isClosedStream(x *exInfo) bool {
	if x.kind != mcptap.HopMCP || !x.ex.Complete || x.ex.End.Sub(x.ex.Start) < streamCutWindow ||
		!strings.Contains(strings.ToLower(x.respH("Content-Type")), "text/event-stream") {
		return false
	}
	e := strings.ToLower(x.ex.Err)
	return strings.Contains(e, "context canceled") || strings.Contains(e, "body closed") || strings.Contains(e, "reset") ||
		(e == "" && x.ex.Mode == mcptap.ModeHAR)
}
