package tui

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

const termW, termH = 120, 40

// press turns "down", "enter", "esc", "tab" or a single character into a key press.
func press(k string) tea.KeyPressMsg {
	switch k {
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

func fixtureReplay() *Model {
	exs := fixtureExchanges()
	return NewReplay(Options{
		Session:   mcptap.Session{ID: "0187c0ffee5e5510", Source: mcptap.SourceImport, Name: "seeds.har"},
		Upstream:  []string{"http://localhost:3000"},
		Analysis:  newFixedAnalysis(exs),
		Decode:    fixedDecode,
		SecretKey: []byte("golden"), // stable hashes for hidden secrets
	}, exs)
}

// fixedDecode stands in for oauth.Decode in the goldens, so they test how
// layers are shown, not what the decoder currently finds.
func fixedDecode(v string) []oauth.Layer {
	ls := []oauth.Layer{{Kind: "raw", Text: v}}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return ls
	}
	var j map[string]any
	if json.Unmarshal(b, &j) != nil {
		return ls
	}
	ls = append(ls, oauth.Layer{Depth: 1, Kind: "base64url", Text: string(b)},
		oauth.Layer{Depth: 2, Kind: "json", Text: string(b), JSON: j})
	for _, k := range []string{"csrf", "s"} {
		if sv, ok := j[k].(string); ok {
			ls = append(ls, oauth.Layer{Depth: 3, Path: "." + k, Kind: "member", Text: sv})
		}
	}
	return ls
}

// drive runs m in a real Bubble Tea program at a fixed size and colour
// profile, presses keys, quits and returns the final model.
func drive(t *testing.T, m *Model, keys ...string) *Model {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(termW, termH),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ANSI)))
	for _, k := range keys {
		if k == "/" || strings.HasPrefix(k, "type:") {
			if k == "/" {
				tm.Send(press("/"))
				continue
			}
			for _, r := range strings.TrimPrefix(k, "type:") {
				tm.Send(press(string(r)))
			}
			continue
		}
		tm.Send(press(k))
	}
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	return tm.FinalModel(t).(*Model)
}

func screenText(m *Model) string { return ansi.Strip(m.Render()) + "\n" }

func TestGoldenFlows(t *testing.T) {
	m := drive(t, fixtureReplay())
	s := screenText(m)
	golden.RequireEqual(t, s)
	for _, want := range []string{"✓", "✗", "state.not-echoed · auth-server", "token.never-called · client", "callback.state-not-found · client", "4 flows"} {
		if !strings.Contains(s, want) {
			t.Errorf("flows view lacks %q", want)
		}
	}
}

func TestGoldenFlowDetailStateNotEchoed(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "down", "enter"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"state.not-echoed", "fault: auth-server", "◀ chain broke here", "(absent)", "Fix: Return the state"} {
		if !strings.Contains(s, want) {
			t.Errorf("flow detail lacks %q", want)
		}
	}
}

func TestGoldenFlowDetailTokenNeverCalled(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "down", "down", "enter"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"token.never-called", "fault: client", "+1m00s", "never called", "none within the 1m00s timeout", "◀ chain broke here", "byte for byte identical"} {
		if !strings.Contains(s, want) {
			t.Errorf("flow detail lacks %q", want)
		}
	}
}

func TestGoldenFlowDetailCallback404(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "G", "enter"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"callback.state-not-found", "client-callback-completion", "404", "◀ chain broke here", "OAuth state not found"} {
		if !strings.Contains(s, want) {
			t.Errorf("flow detail lacks %q", want)
		}
	}
}

func TestGoldenExchangeTokenRequest(t *testing.T) {
	// Flow 1 (healthy) → hop 6 (token) → exchange detail.
	s := screenText(drive(t, fixtureReplay(), "enter", "down", "down", "down", "down", "down", "enter", "pgdown"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"code_verifier", "✓ PKCE check passes", "JWT in access_token", "valid for 59m56s after the exchange"} {
		if !strings.Contains(s, want) {
			t.Errorf("exchange detail lacks %q", want)
		}
	}
}

func TestGoldenExchangeAuthorizeStateLayers(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "down", "down", "enter", "enter", "pgdown"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"↳ base64url", "↳ json", "member .s", "1919e8b5e43c89ff601", "Location parameters"} {
		if !strings.Contains(s, want) {
			t.Errorf("exchange detail lacks %q", want)
		}
	}
}

func TestGoldenExchangeRaw(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "down", "down", "enter", "enter", "d"))
	golden.RequireEqual(t, s)
	if strings.Contains(s, "↳ base64url") || !strings.Contains(s, "raw view") {
		t.Errorf("raw view still decodes:\n%s", s)
	}
}

func TestGoldenTraffic(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "2"))
	golden.RequireEqual(t, s)
	for _, want := range []string{"/healthz", "open", "chatgpt.com/backend-api/aip/", "404", "client-callback-completion"} {
		if !strings.Contains(s, want) {
			t.Errorf("traffic view lacks %q", want)
		}
	}
}

func TestGoldenHelp(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "?"))
	// the q that ends drive closes help first; reopen by rendering with help on
	golden.RequireEqual(t, s)
}

func TestGoldenFilterRule(t *testing.T) {
	s := screenText(drive(t, fixtureReplay(), "/", "type:rule:state", "enter"))
	golden.RequireEqual(t, s)
	if strings.Contains(s, "claude") || strings.Contains(s, "Claude") || !strings.Contains(s, "state.not-echoed") {
		t.Errorf("filter rule:state shows the wrong flows:\n%s", s)
	}
}

// The live flows view while seed 000's code waits for its token call: a
// running timer instead of a verdict.
func TestGoldenLiveWaiting(t *testing.T) {
	exs := fixtureExchanges()
	m := New(Options{
		Session:  mcptap.Session{ID: "0187c0ffee5e5510", Source: mcptap.SourceProxy},
		Listen:   []string{"127.0.0.1:8780"},
		Upstream: []string{"http://localhost:3000"},
		Analysis: newFixedAnalysis(exs),
		Decode:   fixedDecode,
		Dropped:  func() uint64 { return 3 },
	}, true)
	m.Ingest(exs)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(termW, termH),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ANSI)))
	tm.Send(tickMsg(t0.Add(120*time.Second + 42*time.Second)))
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	s := screenText(tm.FinalModel(t).(*Model))
	golden.RequireEqual(t, s)
	for _, want := range []string{"… ChatGPT", "waiting for the token call 0:42 / 1:00", "listen 127.0.0.1:8780 → http://localhost:3000", "3 dropped", "live"} {
		if !strings.Contains(s, want) {
			t.Errorf("live view lacks %q", want)
		}
	}
}
