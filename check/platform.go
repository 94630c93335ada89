package check

import "github.com/mcptap/mcptap/oauth"

// Platform is how one client platform discovers, registers and authorizes:
// the requests mcptap check sends in its name. The values come from the
// platforms' own traffic (reference §1, field-2026 §2.6). Its name is the
// analysis' client name (oauth.Client…), and a test keeps the two tables
// agreeing: the analysis names each probe's flow after its platform.
type Platform struct {
	Name  string // the --as value
	Title string
	// DiscoveryUA is the User-Agent of its discovery, registration and
	// token calls; AuthUA that of its authenticated MCP calls. The edge
	// probe sends the same request with both.
	DiscoveryUA, AuthUA string
	// Cloud platforms connect from their own servers: they need a public
	// https URL, and an edge in front of it can block them.
	Cloud bool
	// Edge: the edge probe runs by default (--edge).
	Edge bool
	// RedirectURIs go into its registration and its authorize request.
	RedirectURIs []string
	ClientName   string
	// ApplicationType is sent in its registration ("" = not sent, as
	// Claude Code does).
	ApplicationType string
	// AuthMethods are the token endpoint auth methods its client ID
	// metadata document declares, preferred first.
	AuthMethods []string
	// CIMD is its client ID metadata document URL ("" = none).
	CIMD string
	// NeedsIss: it uses its stable callback only with RFC 9207 iss support.
	NeedsIss bool
}

// Platforms lists every platform check can act as, in --as all order.
var Platforms = []Platform{
	{Name: oauth.ClientChatGPT, Title: "ChatGPT connector", DiscoveryUA: "openai-mcp/1.0.0", AuthUA: "openai-mcp/1.0.0", Cloud: true, Edge: true,
		RedirectURIs: []string{"https://chatgpt.com/connector_platform_oauth_redirect"}, ClientName: "ChatGPT",
		AuthMethods: []string{"private_key_jwt", "none"}, CIMD: "https://chatgpt.com/oauth/client.json", NeedsIss: true},
	{Name: oauth.ClientClaude, Title: "Claude (claude.ai, Desktop, mobile)", DiscoveryUA: "python-httpx/0.28.1", AuthUA: "Claude-User", Cloud: true, Edge: true,
		RedirectURIs: []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"}, ClientName: "Claude",
		AuthMethods: []string{"none"}, CIMD: "https://claude.ai/oauth/mcp-oauth-client-metadata"},
	{Name: oauth.ClientClaudeCode, Title: "Claude Code", DiscoveryUA: "claude-code/2.1.258", AuthUA: "claude-code/2.1.258",
		RedirectURIs: []string{"http://localhost:53999/callback"}, ClientName: "Claude Code",
		AuthMethods: []string{"none"}, CIMD: "https://claude.ai/oauth/claude-code-client-metadata"},
	{Name: oauth.ClientVSCode, Title: "VS Code", DiscoveryUA: "Visual Studio Code/1.105.0", AuthUA: "Visual Studio Code/1.105.0",
		RedirectURIs: []string{"http://127.0.0.1:33418/", "https://vscode.dev/redirect"}, ClientName: "Visual Studio Code", ApplicationType: "native",
		AuthMethods: []string{"none"}, CIMD: "https://vscode.dev/oauth/client-metadata.json"},
	{Name: oauth.ClientCursor, Title: "Cursor", DiscoveryUA: "Cursor/1.7.0", AuthUA: "Cursor/1.7.0",
		RedirectURIs: []string{"cursor://anysphere.cursor-mcp/oauth/callback", "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"},
		ClientName:   "Cursor", ApplicationType: "native", AuthMethods: []string{"none"}},
	{Name: oauth.ClientMCPRemote, Title: "mcp-remote", DiscoveryUA: "mcp-remote/0.1.43 node/22.11.0", AuthUA: "mcp-remote/0.1.43 node/22.11.0",
		RedirectURIs: []string{"http://localhost:21371/oauth/callback"}, ClientName: "MCP CLI Proxy", AuthMethods: []string{"none"}},
}

// Lookup finds a platform by its --as name.
func Lookup(name string) (Platform, bool) {
	for _, p := range Platforms {
		if p.Name == name {
			return p, true
		}
	}
	return Platform{}, false
}
