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
)

// IdentifyClient names the client platform from what an attempt carried: its
// redirect_uri, its client_id (CIMD URLs name their owner) and the user
// agents seen (reference §1). The first signal that is specific wins.
func IdentifyClient(redirectURI, clientID string, userAgents ...string) string {
	if c := clientFromRedirect(redirectURI); c != "" {
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
	return ClientUnknown
}

func clientFromRedirect(u string) string {
	l := strings.ToLower(u)
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
	case strings.HasPrefix(l, "http://localhost:6274/oauth/callback"), strings.HasPrefix(l, "http://127.0.0.1:6274/oauth/callback"):
		return ClientInspector
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
	}
	switch {
	case isLoopbackURL(l) && strings.HasSuffix(pathOf(l), "/oauth/callback"):
		return ClientMCPRemote
	case isLoopbackURL(l) && strings.HasPrefix(pathOf(l), "/callback"):
		return ClientClaude // Claude Code: http://localhost:<port>/callback
	}
	return ""
}

func clientFromCIMD(id string) string {
	l := strings.ToLower(id)
	switch {
	case !strings.HasPrefix(l, "https://"):
		return ""
	case strings.HasPrefix(l, "https://chatgpt.com/"):
		return ClientChatGPT
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
	case strings.Contains(l, "openai-mcp"), strings.Contains(l, "chatgpt"):
		return ClientChatGPT
	case strings.Contains(l, "claude-user"), strings.Contains(l, "anthropic/"), strings.Contains(l, "claude-code"), strings.Contains(l, "claude"):
		return ClientClaude
	case strings.Contains(l, "mcp-remote"):
		return ClientMCPRemote
	case strings.Contains(l, "visual studio code"), strings.Contains(l, "vscode"):
		return ClientVSCode
	case strings.Contains(l, "cursor"):
		return ClientCursor
	case strings.Contains(l, "inspector"):
		return ClientInspector
	}
	return ""
}

func isLoopbackURL(u string) bool {
	h := hostOf(u)
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

// hostOf returns the host (without port) of an absolute URL, lowercased.
func hostOf(u string) string {
	hp := hostPortOf(u)
	if strings.HasPrefix(hp, "[") {
		if i := strings.Index(hp, "]"); i >= 0 {
			return hp[:i+1]
		}
	}
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		return hp[:i]
	}
	return hp
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
