package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// With the real oauth.Tracker the fixtures get the seeds' verdicts, and the
// screens name rule and fault side.
func TestReplayWithTrackerNamesSeedVerdicts(t *testing.T) {
	m := sized(NewReplay(Options{}, fixtureExchanges()), 160, 48)
	s := plain(m)
	for _, want := range []string{"! Claude", "ok with 1 warning: authorize.resource-missing", "state.not-echoed · auth-server", "token.never-called · client", "callback.state-not-found · client"} {
		if !strings.Contains(s, want) {
			t.Errorf("flows view lacks %q:\n%s", want, s)
		}
	}
}

// Seed 000 live with the real Tracker: a running timer while the code waits,
// then ✗ token.never-called at the timeout with no new traffic.
func TestLiveTrackerTimeout(t *testing.T) {
	var exs []mcptap.Exchange
	for _, e := range fixtureExchanges() {
		if e.ID == "e09" || e.ID == "e20" {
			exs = append(exs, e)
		}
	}
	m := sized(New(Options{}, true), termW, termH)
	m.Update(ExchangesMsg(exs))
	m.Update(tickMsg(t0.Add(120*time.Second + 12*time.Second)))
	if s := plain(m); !strings.Contains(s, "waiting for the token call 0:12 / 1:00") || !strings.Contains(s, "…") {
		t.Fatalf("no running timer:\n%s", s)
	}
	m.Update(tickMsg(t0.Add(120*time.Second + 61*time.Second)))
	s := plain(m)
	if !strings.Contains(s, "✗") || !strings.Contains(s, "token.never-called · client") {
		t.Fatalf("no token.never-called at the timeout:\n%s", s)
	}
	m.Update(press("enter"))
	if s := plain(m); !strings.Contains(s, "never called") || !strings.Contains(s, "◀ chain broke here") || !strings.Contains(s, "none within the 1m00s timeout") || !strings.Contains(s, "+1m0") {
		t.Fatalf("timeline does not show the missing token call:\n%s", s)
	}
}

// The exchange detail peels the state with the real oauth.Decode.
func TestExchangeDetailUsesOAuthDecode(t *testing.T) {
	m := sized(NewReplay(Options{}, fixtureExchanges()), 160, 48)
	m.Update(press("2"))
	for i := 0; i < 20 && m.selectedExchangeID() != "e20"; i++ {
		m.Update(press("down"))
	}
	m.Update(press("enter"))
	m.Update(press("pgdown"))
	s := plain(m)
	for _, want := range []string{"↳ json", "csrf", "oauth_s_"} {
		if !strings.Contains(s, want) {
			t.Errorf("state layers lack %q:\n%s", want, s)
		}
	}
}

// Regression (issue 12, one analysis path): the TUI re-implemented the PKCE
// check against the flow's last authorize, which through an OAuth proxy is
// the inner leg's, and showed "✗ PKCE check fails" on a healthy flow. It now
// shows the analysis' check.
func TestPKCELineThroughOAuthProxyIsTheAnalysis(t *testing.T) {
	var fx oauthtest.Fixture
	for _, f := range oauthtest.Fixtures {
		if f.Name == "healthy-upstream-idp-routed" {
			fx = f
		}
	}
	exs := fx.Exchanges()
	var token string
	for _, ex := range exs {
		if strings.HasSuffix(ex.Target, "/token") && strings.Contains(ex.Host, "mcp.example.com") {
			token = ex.ID
		}
	}
	if token == "" {
		t.Fatal("no token request to the MCP server's authorization server in the fixture")
	}
	m := sized(NewReplay(Options{}, exs), 200, 60)
	m.Update(press("2"))
	for i := 0; i < len(exs) && m.selectedExchangeID() != token; i++ {
		m.Update(press("down"))
	}
	m.Update(press("enter"))
	for range 3 {
		m.Update(press("pgdown"))
	}
	s := plain(m)
	if !strings.Contains(s, "✓ PKCE check passes") || strings.Contains(s, "PKCE check fails") {
		t.Errorf("token request detail:\n%s", s)
	}
}
