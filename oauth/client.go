package oauth

import "strings"

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
)

// ClientName is a client's name for people: "ChatGPT" for "chatgpt",
// "unknown" for "".
func ClientName(c string) string {
	switch c {
	case ClientChatGPT:
		return "ChatGPT"
	case ClientClaude:
		return "Claude"
	case ClientVSCode:
		return "VS Code"
	case ClientCursor:
		return "Cursor"
	case ClientInspector:
		return "Inspector"
	case ClientClaudeCode:
		return "Claude Code"
	case ClientCodex:
		return "Codex"
	case ClientCopilotStudio:
		return "Copilot St."
	case ClientM365Copilot:
		return "M365 Copilot"
	case ClientCopilotCLI:
		return "Copilot CLI"
	case ClientPerplexity:
		return "Perplexity"
	case ClientOpenWebUI:
		return "Open WebUI"
	case ClientGo:
		return "Go SDK"
	case "":
		return "unknown"
	}
	return c
}

// identifyClient names the client platform from what an attempt carried: its
// redirect_uri, its client_id (CIMD URLs name their owner) and the user
// agents seen (reference §1). The first signal that is specific wins.
//
// A redirect URI that names a platform (its domain, its fixed port) wins;
// then a CIMD client_id; then the user agents; and last the loopback path
// shapes that several clients share (the Go SDK's examples and mcp-remote
// both use http://localhost:<port>/oauth/callback), so that a specific user
// agent is not overruled by a common shape.
func identifyClient(redirectURI, clientID string, userAgents ...string) string {
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

// redirectStrong: redirect URIs specific to one platform.
func redirectStrong(l string) string {
	switch {
	case l == "":
		return ""
	case strings.Contains(l, "://chatgpt.com/"), strings.Contains(l, "://chat.openai.com/"),
		strings.Contains(l, "://platform.openai.com/"):
		return ClientChatGPT
	case strings.Contains(l, "://claude.ai/"), strings.Contains(l, "://claude.com/"):
		return ClientClaude
	case strings.HasPrefix(l, "cursor://"), strings.Contains(l, "://www.cursor.com/"), strings.Contains(l, "://cursor.com/"):
		return ClientCursor
	case strings.Contains(l, "://vscode.dev/"), strings.Contains(l, "://insiders.vscode.dev/"),
		strings.HasPrefix(l, "http://127.0.0.1:33418"), l == "http://127.0.0.1/", strings.HasPrefix(l, "vscode://"):
		return ClientVSCode
	case strings.HasPrefix(l, "http://localhost:6274/oauth/callback"), strings.HasPrefix(l, "http://127.0.0.1:6274/oauth/callback"),
		strings.HasPrefix(l, "http://localhost:6276/oauth/callback"), strings.HasPrefix(l, "http://127.0.0.1:6276/oauth/callback"):
		return ClientInspector // v1 and v2 defaults
	case strings.Contains(l, "://global.consent.azure-apim.net/redirect/"):
		return ClientCopilotStudio
	case strings.Contains(l, "://teams.microsoft.com/api/platform/v1.0/oauthredirect"):
		return ClientM365Copilot
	case strings.Contains(l, "perplexity.ai/rest/connections/oauth_callback"):
		return ClientPerplexity
	}
	// Path shapes that name the platform on any host: a tunnel, a staging
	// host or a local imitation of it keeps the platform's callback path.
	switch p := pathOf(l); {
	case strings.HasPrefix(p, "/connector/oauth/"), p == "/connector_platform_oauth_redirect",
		strings.HasPrefix(p, "/backend-api/aip/connectors/links/oauth/callback"),
		strings.HasPrefix(p, "/aip/") && strings.HasSuffix(p, "/oauth/callback"):
		return ClientChatGPT
	case p == "/api/mcp/auth_callback":
		return ClientClaude
	case strings.HasPrefix(p, "/oauth/clients/mcp:") && strings.HasSuffix(p, "/callback"):
		return ClientOpenWebUI
	}
	return ""
}

// redirectWeak: loopback shapes that more than one client uses; they name a
// client only when nothing more specific does.
func redirectWeak(l string) string {
	switch {
	case !isLoopbackURL(l):
		return ""
	case strings.HasSuffix(pathOf(l), "/oauth/callback"):
		return ClientMCPRemote
	case strings.HasPrefix(pathOf(l), "/callback"):
		return ClientClaudeCode // http://localhost:<port>/callback
	case pathOf(l) == "/" && strings.HasPrefix(l, "http://127.0.0.1:"):
		return ClientCopilotCLI // http://127.0.0.1:<random>/ (VS Code's is port 33418 or none)
	}
	return ""
}

func clientFromCIMD(id string) string {
	l := strings.ToLower(id)
	switch {
	case !strings.HasPrefix(l, "https://"):
		return ""
	case strings.HasPrefix(l, "https://chatgpt.com/oauth/codex/"):
		return ClientCodex
	case strings.HasPrefix(l, "https://chatgpt.com/"):
		return ClientChatGPT
	case strings.HasPrefix(l, "https://claude.ai/oauth/claude-code-client-metadata"):
		return ClientClaudeCode
	case strings.HasPrefix(l, "https://claude.ai/"), strings.HasPrefix(l, "https://claude.com/"):
		return ClientClaude
	case strings.HasPrefix(l, "https://vscode.dev/"), strings.HasPrefix(l, "https://insiders.vscode.dev/"):
		return ClientVSCode
	case strings.Contains(l, "cursor.com/"):
		return ClientCursor
	}
	return ""
}

func clientFromUA(ua string) string {
	l := strings.ToLower(ua)
	switch {
	case l == "":
		return ""
	case strings.Contains(l, "codex"):
		return ClientCodex
	case strings.Contains(l, "openai-mcp"), strings.Contains(l, "chatgpt"):
		return ClientChatGPT
	case strings.Contains(l, "claude-code"), strings.Contains(l, "claude-cli"):
		return ClientClaudeCode
	case strings.Contains(l, "claude-user"), strings.Contains(l, "anthropic/"), strings.Contains(l, "claude"):
		// Claude's backend: Claude-User on authenticated MCP calls (its
		// discovery and token calls say python-httpx, which alone names
		// no client).
		return ClientClaude
	case strings.Contains(l, "perplexity"):
		return ClientPerplexity
	case strings.Contains(l, "open-webui"), strings.Contains(l, "openwebui"):
		return ClientOpenWebUI
	case strings.Contains(l, "copilot"):
		return ClientCopilotCLI
	case strings.Contains(l, "mcp-remote"):
		return ClientMCPRemote
	case strings.Contains(l, "visual studio code"), strings.Contains(l, "vscode"):
		return ClientVSCode
	case strings.Contains(l, "cursor"):
		return ClientCursor
	case strings.Contains(l, "inspector"):
		return ClientInspector
	case strings.HasPrefix(l, "go-http-client/"):
		return ClientGo
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
