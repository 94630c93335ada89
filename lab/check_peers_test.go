package lab

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/check"
	"github.com/mcptap/mcptap/recorder"
)

// mcptap check against a stack nobody on the project wrote: node
// oidc-provider as the authorization server, in front of the lab's MCP
// server with its misconfigurations. Healthy, every line that applies
// passes; each misconfiguration fails its line with the rule the traffic
// analysis raises.
func TestCheckAgainstOIDCProvider(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  peerOptions
		fails map[string]mcptap.RuleID // vscode's line -> rule
		cimd  bool                     // --cimd instead of --register
	}{
		{"healthy", peerOptions{}, nil, false},
		{"issuer slash", peerOptions{issuerSlash: true}, map[string]mcptap.RuleID{"as-metadata": mcptap.RuleDiscoveryIssuerMismatch}, false},
		{"no challenge", peerOptions{noChallenge: true}, map[string]mcptap.RuleID{"challenge": mcptap.RuleDiscoveryNoChallenge}, false},
		// The resource the metadata names is the internal one too, and
		// oidc-provider answers the authorize that carries it with a 500.
		{"internal BASE_URL", peerOptions{internalPRM: true, tunnelHost: "mcp.example.test", hostCheckOff: true}, map[string]mcptap.RuleID{
			"challenge-public": mcptap.RuleDiscoveryChallengeInternal, "resource": mcptap.RuleDiscoveryResourceMismatch, "authorize": mcptap.RuleAuthorizeErrorNotRedirected}, false},
		// oidc-provider (as configured by the interop suite) does not offer
		// client ID metadata documents: --cimd says so, and its authorize
		// does not know VS Code's document URL as a client.
		// The authorize with the document's URL is the traffic that shows it
		// (register.cimd-failed); oidc-provider's page for the unknown client
		// is right. Without --register the registration line cannot tell:
		// oidc-provider answers a GET of its POST-only endpoint with 404.
		{"--cimd without CIMD support", peerOptions{}, map[string]mcptap.RuleID{"cimd": mcptap.RuleRegisterCIMDFailed, "authorize": mcptap.RuleCheckAuthorizeRefused}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := startPeerWorld(t, c.opts)
			st, err := recorder.Open(filepath.Join(t.TempDir(), "check.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			opts := check.Options{URL: w.mcpURL, Platforms: []check.Platform{mustPlatform(t, "vscode")}, Register: !c.cimd, CIMD: c.cimd, Store: st}
			if w.tunnels != nil {
				opts.Base = &tunnelTransport{to: w.tunnels, base: http.DefaultTransport}
			}
			res, err := check.Run(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_ = check.Write(&buf, res, "text", mcptap.SevError)
			t.Logf("%s", buf.String())
			for _, l := range res.Platforms[0].Lines {
				want, listed := c.fails[l.ID]
				switch {
				case listed && (l.Status != check.Fail || l.Rule != want):
					t.Errorf("%s: %s %s, want fail %s", l.ID, l.Status, l.Rule, want)
				case !listed && l.Status == check.Fail:
					t.Errorf("%s: fails %s: %s", l.ID, l.Rule, l.Detail)
				case c.fails == nil && l.Status == check.CouldNotTell:
					t.Errorf("%s: could not tell: %s", l.ID, l.Detail)
				}
			}
			if c.fails == nil && res.Platforms[0].Created == "" {
				t.Error("oidc-provider registered no client")
			}
		})
	}
}

func mustPlatform(t *testing.T, name string) check.Platform {
	p, ok := check.Lookup(name)
	if !ok {
		t.Fatalf("no platform %s", name)
	}
	return p
}
