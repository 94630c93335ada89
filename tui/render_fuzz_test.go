package tui

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/charmbracelet/x/ansi"
	"github.com/mcptap/mcptap"
)

// FuzzRenderScreens: the flows, traffic, flow and exchange screens render
// recorded bytes from anyone; with the TUI's own styling removed, no control
// character from the traffic is left for the terminal.
func FuzzRenderScreens(f *testing.F) {
	f.Add("st\x1b]0;x\x07", "/cb\x1b[2J", "body\x9b31m", "Bearer \x00x")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, state, path, body, auth string) {
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		exs := []mcptap.Exchange{
			{ID: "e1", Mode: mcptap.ModeReverse, Start: t0, Method: "GET", Scheme: "https", Host: "as.example",
				Target: "/authorize?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fcb&state=" + state,
				Status: 302, RespHeader: http.Header{"Location": {"https://chatgpt.com/cb?code=AC&state=" + state}}, Complete: true},
			{ID: "e2", Mode: mcptap.ModeReverse, Start: t0.Add(time.Second), Method: "POST", Scheme: "https", Host: "as.example" + path,
				Target: path, ReqHeader: http.Header{"Authorization": {auth}, "X-" + path: {body}}, ReqBody: []byte(body),
				Status: 200, RespHeader: http.Header{"Content-Type": {"application/json"}}, RespBody: []byte(body), Complete: true, Err: body},
		}
		m := sized(NewReplay(Options{}, exs), 100, 30)
		check := func(where string) {
			s := ansi.Strip(m.Render())
			if i := strings.IndexFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' }); i >= 0 {
				t.Fatalf("%s screen holds control character %U:\n%q", where, []rune(s[i:])[0], s)
			}
		}
		check("flows")
		m.Update(press("enter"))
		check("flow")
		m.Update(press("2"))
		check("traffic")
		for range 2 {
			m.Update(press("enter"))
			check("exchange")
			m.Update(press("d"))
			check("exchange raw")
			m.Update(press("esc"))
			m.Update(press("down"))
		}
	})
}
