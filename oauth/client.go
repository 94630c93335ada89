package oauth

import (
	"slices"
	"strings"
)

// Client names used in Flow.Client and the JSON report.
const (
	ClientChatGPT   = "chatgpt"
	ClientClaude    = "claude"
	ClientVSCode    = "vscode"
	ClientCursor    = "cursor"
	ClientMCPRemote = "mcp-remote"
	ClientInspector = "inspector"
	ClientUnknown   = "unknown"

	// From field-2026 §2.6 (redirect URIs, CIMD documents, user agents).
	ClientClaudeCode    = "claude-code"
	ClientCodex         = "codex"
	ClientCopilotStudio = "copilot-studio"
	ClientM365Copilot   = "m365-copilot"
	ClientCopilotCLI    = "copilot-cli"
	ClientPerplexity    = "perplexity"
	ClientOpenWebUI     = "open-webui"
	// ClientGo is a Go HTTP client (Go-http-client user agent): in an MCP
	// OAuth flow, the MCP Go SDK's client or a program built on it.
	ClientGo = "go-sdk"
	// ClientWebApp is a browser-based client (a web app such as MCP
	// Inspector's, not at its default address): its token request or MCP
	// calls are fetches from a page, with an Origin header.
	ClientWebApp = "web-app"
)

// ClientInfo is one client platform as mcptap knows it, from its own
// traffic (reference §1, field-2026 §2.6): the signals that name it in a
// recording, and how it acts, for mcptap check to act as it. It is the one
// table of fingerprints: the analysis names flows by it, check sends its
// requests, and the TUI and the reports print its Title.
type ClientInfo struct {
	Name  string // Flow.Client, the JSON report's client, check's --as
	Title string // for people

	// Signals, matched on lowercased values. A redirect URI names the
	// client when it contains one of RedirectContains, starts with one of
	// RedirectPrefixes, equals one of RedirectExact, or has one of Paths on
	// any host (a tunnel or a staging host keeps the platform's callback
	// path). LoopbackPaths are shapes several clients share on loopback:
	// they name the client only when nothing more specific does.
	RedirectContains []string
	RedirectPrefixes []string
	RedirectExact    []string
	Paths            []PathShape
	LoopbackPaths    []PathShape
	CIMDPrefixes     []string // its client ID metadata document URLs
	// UAMarkers are User-Agent substrings; one starting with "^" is a prefix.
	UAMarkers []string

	// How it acts.
	DiscoveryUA  string   // User-Agent of its discovery, registration and token calls
	AuthUA       string   // User-Agent of its authenticated MCP calls
	RedirectURIs []string // what it registers, the first one used
	CIMD         string   // its client ID metadata document ("" = none)
	RegisterName string   // client_name in its registration
}

// PathShape is a URL path: exact, or a prefix and a suffix.
type PathShape struct {
	Exact, Prefix, Suffix string
}

func (p PathShape) match(path string) bool {
	if p.Exact != "" {
		return path == p.Exact
	}
	return strings.HasPrefix(path, p.Prefix) && strings.HasSuffix(path, p.Suffix)
}

// Clients is the fingerprint table, in the order identification asks it:
// a more specific client before one whose signals contain its own (Codex
// before ChatGPT, Claude Code before Claude, the CLIs before the IDEs whose
// names their User-Agents may carry).
var Clients = []ClientInfo{
	{Name: ClientCodex, Title: "Codex",
		CIMDPrefixes: []string{"https://chatgpt.com/oauth/codex/"}, UAMarkers: []string{"codex"}},
	{Name: ClientChatGPT, Title: "ChatGPT",
		RedirectContains: []string{"://chatgpt.com/", "://chat.openai.com/", "://platform.openai.com/"},
		Paths: []PathShape{{Prefix: "/connector/oauth/"}, {Exact: "/connector_platform_oauth_redirect"},
			{Prefix: "/backend-api/aip/connectors/links/oauth/callback"}, {Prefix: "/aip/", Suffix: "/oauth/callback"}},
		CIMDPrefixes: []string{"https://chatgpt.com/"}, UAMarkers: []string{"openai-mcp", "chatgpt"},
		DiscoveryUA: "openai-mcp/1.0.0", AuthUA: "openai-mcp/1.0.0",
		RedirectURIs: []string{"https://chatgpt.com/connector_platform_oauth_redirect"},
		CIMD:         "https://chatgpt.com/oauth/client.json", RegisterName: "ChatGPT"},
	{Name: ClientClaudeCode, Title: "Claude Code",
		LoopbackPaths: []PathShape{{Prefix: "/callback"}},
		CIMDPrefixes:  []string{"https://claude.ai/oauth/claude-code-client-metadata"}, UAMarkers: []string{"claude-code", "claude-cli"},
		DiscoveryUA: "claude-code/2.1.258", AuthUA: "claude-code/2.1.258",
		RedirectURIs: []string{"http://localhost:53999/callback"},
		CIMD:         "https://claude.ai/oauth/claude-code-client-metadata", RegisterName: "Claude Code"},
	// Claude's backend: Claude-User on authenticated MCP calls; its
	// discovery and token calls say python-httpx, which alone names no client.
	{Name: ClientClaude, Title: "Claude",
		RedirectContains: []string{"://claude.ai/", "://claude.com/"}, Paths: []PathShape{{Exact: "/api/mcp/auth_callback"}},
		CIMDPrefixes: []string{"https://claude.ai/", "https://claude.com/"}, UAMarkers: []string{"claude-user", "anthropic/", "claude"},
		DiscoveryUA: "python-httpx/0.28.1", AuthUA: "Claude-User",
		RedirectURIs: []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"},
		CIMD:         "https://claude.ai/oauth/mcp-oauth-client-metadata", RegisterName: "Claude"},
	{Name: ClientPerplexity, Title: "Perplexity", RedirectContains: []string{"perplexity.ai/rest/connections/oauth_callback"}, UAMarkers: []string{"perplexity"}},
	{Name: ClientOpenWebUI, Title: "Open WebUI", Paths: []PathShape{{Prefix: "/oauth/clients/mcp:", Suffix: "/callback"}}, UAMarkers: []string{"open-webui", "openwebui"}},
	// http://127.0.0.1:<random>/ (VS Code's is port 33418 or none).
	{Name: ClientCopilotCLI, Title: "Copilot CLI", LoopbackPaths: []PathShape{{Exact: "/"}}, UAMarkers: []string{"copilot"}},
	// The Go SDK's examples and mcp-remote both use http://localhost:<port>/oauth/callback.
	{Name: ClientMCPRemote, Title: "mcp-remote", LoopbackPaths: []PathShape{{Suffix: "/oauth/callback"}}, UAMarkers: []string{"mcp-remote"},
		DiscoveryUA: "mcp-remote/0.1.43 node/22.11.0", AuthUA: "mcp-remote/0.1.43 node/22.11.0",
		RedirectURIs: []string{"http://localhost:21371/oauth/callback"}, RegisterName: "MCP CLI Proxy"},
	{Name: ClientVSCode, Title: "VS Code",
		RedirectContains: []string{"://vscode.dev/", "://insiders.vscode.dev/"},
		RedirectPrefixes: []string{"http://127.0.0.1:33418", "vscode://"}, RedirectExact: []string{"http://127.0.0.1/"},
		CIMDPrefixes: []string{"https://vscode.dev/", "https://insiders.vscode.dev/"}, UAMarkers: []string{"visual studio code", "vscode"},
		DiscoveryUA: "Visual Studio Code/1.105.0", AuthUA: "Visual Studio Code/1.105.0",
		RedirectURIs: []string{"http://127.0.0.1:33418/", "https://vscode.dev/redirect"},
		CIMD:         "https://vscode.dev/oauth/client-metadata.json", RegisterName: "Visual Studio Code"},
	{Name: ClientCursor, Title: "Cursor",
		RedirectContains: []string{"://www.cursor.com/", "://cursor.com/"}, RedirectPrefixes: []string{"cursor://"},
		CIMDPrefixes: []string{"https://cursor.com/", "https://www.cursor.com/"}, UAMarkers: []string{"cursor"},
		DiscoveryUA: "Cursor/1.7.0", AuthUA: "Cursor/1.7.0",
		RedirectURIs: []string{"cursor://anysphere.cursor-mcp/oauth/callback", "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"},
		RegisterName: "Cursor"},
	{Name: ClientInspector, Title: "Inspector", // v1 and v2 defaults
		RedirectPrefixes: []string{"http://localhost:6274/oauth/callback", "http://127.0.0.1:6274/oauth/callback",
			"http://localhost:6276/oauth/callback", "http://127.0.0.1:6276/oauth/callback"},
		UAMarkers: []string{"inspector"}},
	{Name: ClientCopilotStudio, Title: "Copilot St.", RedirectContains: []string{"://global.consent.azure-apim.net/redirect/"}},
	{Name: ClientM365Copilot, Title: "M365 Copilot", RedirectContains: []string{"://teams.microsoft.com/api/platform/v1.0/oauthredirect"}},
	{Name: ClientGo, Title: "Go SDK", UAMarkers: []string{"^go-http-client/"}},
	// Named by how its calls were made (identifyClient's web), not by a
	// signal of its own.
	{Name: ClientWebApp, Title: "Web app"},
}

var clientByName = func() map[string]*ClientInfo {
	m := map[string]*ClientInfo{}
	for i := range Clients {
		m[Clients[i].Name] = &Clients[i]
	}
	return m
}()

// Client finds a client platform by its name.
func Client(name string) (ClientInfo, bool) {
	c, ok := clientByName[name]
	if !ok {
		return ClientInfo{}, false
	}
	return *c, true
}

// ClientName is a client's name for people: "ChatGPT" for "chatgpt",
// "unknown" for "".
func ClientName(c string) string {
	if c == "" {
		return "unknown"
	}
	if ci, ok := clientByName[c]; ok {
		return ci.Title
	}
	return c
}

// identifyClient names the client platform from what an attempt carried: its
// redirect_uri, its client_id (CIMD URLs name their owner), whether its own
// calls (token, registration, discovery, MCP) were a web page's fetches
// (web: they carried Origin) and the user agents seen (reference §1). The
// first signal that is specific wins.
//
// A redirect URI that names a platform (its domain, its fixed port) wins;
// then a CIMD client_id; then the user agents; then a web page's calls; and
// last the loopback path shapes that several clients share (the Go SDK's
// examples and mcp-remote both use http://localhost:<port>/oauth/callback),
// so that a specific user agent is not overruled by a common shape, and a
// web app on a loopback callback is not taken for a native client.
func identifyClient(redirectURI, clientID string, web bool, userAgents ...string) string {
	if c := redirectStrong(strings.ToLower(redirectURI)); c != "" {
		return c
	}
	if c := clientFromCIMD(clientID); c != "" {
		return c
	}
	for _, ua := range userAgents {
		if c := clientFromUA(ua); c != "" {
			return c
		}
	}
	if web {
		return ClientWebApp
	}
	if c := redirectWeak(strings.ToLower(redirectURI)); c != "" {
		return c
	}
	return ClientUnknown
}

// clientFromRedirect names the client a redirect URI belongs to, by any
// shape, specific or shared: it also tells a callback hop from other traffic.
func clientFromRedirect(u string) string {
	l := strings.ToLower(u)
	if c := redirectStrong(l); c != "" {
		return c
	}
	return redirectWeak(l)
}

// redirectStrong: redirect URIs specific to one platform, by host or
// prefix first, then by path shape on any host.
func redirectStrong(l string) string {
	if l == "" {
		return ""
	}
	for i := range Clients {
		c := &Clients[i]
		for _, m := range c.RedirectContains {
			if strings.Contains(l, m) {
				return c.Name
			}
		}
		for _, m := range c.RedirectPrefixes {
			if strings.HasPrefix(l, m) {
				return c.Name
			}
		}
		if slices.Contains(c.RedirectExact, l) {
			return c.Name
		}
	}
	p := pathOf(l)
	for i := range Clients {
		for _, shape := range Clients[i].Paths {
			if shape.match(p) {
				return Clients[i].Name
			}
		}
	}
	return ""
}

// redirectWeak: loopback shapes that more than one client uses; they name a
// client only when nothing more specific does.
func redirectWeak(l string) string {
	if !isLoopbackURL(l) {
		return ""
	}
	p := pathOf(l)
	for i := range Clients {
		for _, shape := range Clients[i].LoopbackPaths {
			if shape.match(p) && (shape.Exact != "/" || strings.HasPrefix(l, "http://127.0.0.1:")) {
				return Clients[i].Name
			}
		}
	}
	return ""
}

func clientFromCIMD(id string) string {
	l := strings.ToLower(id)
	if !strings.HasPrefix(l, "https://") {
		return ""
	}
	for i := range Clients {
		for _, p := range Clients[i].CIMDPrefixes {
			if strings.HasPrefix(l, p) {
				return Clients[i].Name
			}
		}
	}
	return ""
}

func clientFromUA(ua string) string {
	l := strings.ToLower(ua)
	if l == "" {
		return ""
	}
	for i := range Clients {
		for _, m := range Clients[i].UAMarkers {
			if p, ok := strings.CutPrefix(m, "^"); ok && strings.HasPrefix(l, p) || !ok && strings.Contains(l, m) {
				return Clients[i].Name
			}
		}
	}
	return ""
}

func isLoopbackURL(u string) bool {
	h := hostOf(u)
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

// hostPortOf returns host[:port] of an absolute URL, lowercased.
func hostPortOf(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return strings.ToLower(rest)
}

// pathOf returns the path of an absolute URL ("/" when empty).
func pathOf(u string) string {
	base, _ := splitURL(u)
	_, rest, ok := strings.Cut(base, "://")
	if !ok {
		return base
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "/"
	}
	return rest[i:]
}
