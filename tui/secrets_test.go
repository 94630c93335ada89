package tui

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// TestScreensHideSecrets plants secrets in every place and encoding the
// other outputs are searched for (cmd/mcptap's TestNoSecretSurvivesAnyOutput)
// and opens every screen: the flows and traffic lists, each flow, and each
// exchange from both, decoded and raw, with the exchanges in memory (a HAR
// replayed) and read from the recording (live and stored sessions). None
// shows a secret in any spelling; the state stays readable; s shows them.
func TestScreensHideSecrets(t *testing.T) {
	exs := oauthtest.PlantedExchanges()
	byID := map[string]mcptap.Exchange{}
	for _, ex := range exs {
		byID[ex.ID] = ex
	}
	for _, mode := range []string{"in memory", "loaded"} {
		t.Run(mode, func(t *testing.T) {
			opts := Options{}
			if mode == "loaded" {
				opts.Load = func(id string) (mcptap.Exchange, error) { return byID[id], nil }
			}
			m := New(opts, false)
			m.Ingest(oauth.InOrder(exs))
			m.Finish()
			sized(m, 1000, 200) // wide: no secret is cut or wrapped out of sight
			screens := map[string]string{}
			shot := func(where string) { screens[where] = plain(m) }
			do := func(k string) {
				_, cmd := m.Update(press(k))
				for cmd != nil { // a load: deliver it, as the program would
					_, cmd = m.Update(cmd())
				}
			}
			shot("flows")
			for i := range m.flows {
				do("enter")
				shot(fmt.Sprintf("flow %d", i))
				for j := range m.flows[i].Hops {
					do("enter")
					shot(fmt.Sprintf("flow %d hop %d", i, j))
					do("d")
					shot(fmt.Sprintf("flow %d hop %d raw", i, j))
					do("d")
					do("esc")
					do("down")
				}
				do("esc")
				do("down")
			}
			do("2")
			shot("traffic")
			for i := range exs {
				do("enter")
				shot(fmt.Sprintf("exchange %d", i))
				do("d")
				shot(fmt.Sprintf("exchange %d raw", i))
				do("d")
				do("esc")
				do("down")
			}
			if len(m.flows) == 0 || len(screens) < 2*len(exs)+2 {
				t.Fatalf("%d flows, %d screens: the walk did not open them", len(m.flows), len(screens))
			}
			for _, s := range oauthtest.PlantedSecrets {
				for where, text := range screens {
					for enc, form := range oauthtest.SecretForms(s) {
						if strings.Contains(text, form) {
							t.Errorf("%s screen shows the secret %q (%s)", where, s, enc)
						}
					}
				}
			}
			if !strings.Contains(screens["exchange 0"], oauthtest.PlantedState) || !strings.Contains(screens["exchange 0"], "‹redacted:") {
				t.Errorf("the authorize exchange shows no state or no hidden code:\n%s", screens["exchange 0"])
			}

			// s shows them: on the token request, the code, verifier and cookie.
			do("up")
			for range len(exs) {
				do("up")
			}
			do("down") // the first token request
			do("enter")
			do("s")
			shown := plain(m)
			for _, s := range []string{url.QueryEscape(oauthtest.SecretCode), oauthtest.SecretVerifier, oauthtest.SecretCookie} {
				if !strings.Contains(shown, s) {
					t.Errorf("after s the token request does not show %q:\n%s", s, shown)
				}
			}
			if !strings.Contains(shown, "SECRETS SHOWN") {
				t.Error("the status line does not say the secrets are shown")
			}
			do("s")
			if strings.Contains(plain(m), oauthtest.SecretVerifier) {
				t.Error("a second s leaves the verifier on screen")
			}
		})
	}
}

var _ tea.Msg = loadedMsg{}

// A rebuild of the exchange screen (a resize) shows the hidden copy it made
// before; showing the secrets, or anything the redactor learns since, makes
// a new one.
func TestExchangeScreenKeepsItsHiddenCopy(t *testing.T) {
	exs := oauthtest.PlantedExchanges()
	m := New(Options{}, false)
	m.Ingest(oauth.InOrder(exs))
	m.Finish()
	sized(m, 1000, 200)
	press1 := func(k string) {
		_, cmd := m.Update(press(k))
		for cmd != nil {
			_, cmd = m.Update(cmd())
		}
	}
	press1("enter") // the first flow
	press1("enter") // its first hop
	es, ok := m.top().(*exchangeScreen)
	if !ok {
		t.Fatalf("top screen is %T", m.top())
	}
	es.hidden.ex.Target = "/the-cached-copy"
	sized(m, 999, 200)
	if !strings.Contains(plain(m), "/the-cached-copy") {
		t.Fatal("a resize made the hidden copy again")
	}
	es.secrets.gen++ // the redactor learned something
	sized(m, 998, 200)
	if strings.Contains(plain(m), "/the-cached-copy") {
		t.Fatal("a copy made before the redactor learned more is still shown")
	}
	es.hidden.ex.Target = "/the-cached-copy"
	press1("s")
	if strings.Contains(plain(m), "/the-cached-copy") {
		t.Fatal("showing the secrets still shows the hidden copy")
	}
}

// An answer whose status the HAR producer lost (Firefox 153, kept as
// written) shows "?" in the traffic list and the flow, not "…" (waiting).
func TestStatusUnrecordedShown(t *testing.T) {
	exs, err := har.ReadFile("../har/testdata/firefox-153-navigated.har")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{}, false)
	m.Ingest(oauth.InOrder(exs))
	m.Finish()
	sized(m, 200, 60)
	m.Update(press("enter")) // the flow
	flow := plain(m)
	m.Update(press("esc"))
	m.Update(press("2")) // all traffic
	traffic := plain(m)
	for where, screen := range map[string]string{"flow": flow, "traffic": traffic} {
		if !regexp.MustCompile(`(\?\s+GET|GET\s+\?)\s.*oauth-protected-resource`).MatchString(screen) {
			t.Errorf("%s screen shows no ? for the metadata's lost status:\n%s", where, screen)
		}
	}
}
