package check

import "github.com/mcptap/mcptap/oauth"

// Platform is how one client platform discovers, registers and authorizes:
// the requests mcptap check sends in its name. What identifies it and how it
// acts (its User-Agents, redirect URIs, metadata document, client_name) is
// its row of oauth.Clients, the table the analysis names flows by; the rest
// is what only the checklist needs.
type Platform struct {
	oauth.ClientInfo
	// Title is the checklist's heading (longer than the client's own).
	Title string
	// Cloud platforms connect from their own servers: they need a public
	// https URL, and an edge in front of it can block them.
	Cloud bool
	// Edge: the edge probe runs by default (--edge).
	Edge bool
	// ApplicationType is sent in its registration ("" = not sent, as
	// Claude Code does).
	ApplicationType string
	// AuthMethods are the token endpoint auth methods its client ID
	// metadata document declares, preferred first.
	AuthMethods []string
	// NeedsIss: it uses its stable callback only with RFC 9207 iss support.
	NeedsIss bool
}

// client is a row of oauth.Clients; the table has every platform check
// acts as (a test says so).
func client(name string) oauth.ClientInfo {
	c, _ := oauth.Client(name)
	return c
}

// Platforms lists every platform check can act as, in --as all order.
var Platforms = []Platform{
	{ClientInfo: client(oauth.ClientChatGPT), Title: "ChatGPT connector", Cloud: true, Edge: true,
		AuthMethods: []string{"private_key_jwt", "none"}, NeedsIss: true},
	{ClientInfo: client(oauth.ClientClaude), Title: "Claude (claude.ai, Desktop, mobile)", Cloud: true, Edge: true,
		AuthMethods: []string{"none"}},
	{ClientInfo: client(oauth.ClientClaudeCode), Title: "Claude Code", AuthMethods: []string{"none"}},
	{ClientInfo: client(oauth.ClientVSCode), Title: "VS Code", ApplicationType: "native", AuthMethods: []string{"none"}},
	{ClientInfo: client(oauth.ClientCursor), Title: "Cursor", ApplicationType: "native", AuthMethods: []string{"none"}},
	{ClientInfo: client(oauth.ClientMCPRemote), Title: "mcp-remote", AuthMethods: []string{"none"}},
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
