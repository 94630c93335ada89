package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

func sized(m *Model, w, h int) *Model {
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

func plain(m *Model) string { return ansi.Strip(m.Render()) }

// Seed 000 live: while the code waits for its token call the flow shows a
// running timer, and at the timeout it turns ✗ token.never-called by itself,
// with no new traffic.
func TestLiveTimerTurnsIntoTokenNeverCalled(t *testing.T) {
	exs := fixtureExchanges()
	m := sized(New(Options{Analysis: newFixedAnalysis(exs), Listen: []string{"127.0.0.1:8780"}, Upstream: []string{"http://localhost:3000"}}, true), termW, termH)
	m.Update(ExchangesMsg(exs))
	m.Update(tickMsg(t0.Add(120*time.Second + 12*time.Second)))
	s := plain(m)
	if !strings.Contains(s, "waiting for the token call 0:12 / 1:00") {
		t.Fatalf("no running timer:\n%s", s)
	}
	if !strings.Contains(s, "listen 127.0.0.1:8780 → http://localhost:3000") || !strings.Contains(s, "live") {
		t.Errorf("status line lacks listen/upstream/live:\n%s", s)
	}
	m.Update(tickMsg(t0.Add(120*time.Second + 30*time.Second)))
	if s := plain(m); !strings.Contains(s, "0:30 / 1:00") {
		t.Fatalf("timer does not run:\n%s", s)
	}
	_, cmd := m.Update(tickMsg(t0.Add(120*time.Second + 61*time.Second)))
	if cmd == nil {
		t.Error("a live tick must schedule the next tick")
	}
	s = plain(m)
	if strings.Contains(s, "waiting for the token call") || !strings.Contains(s, "token.never-called · client") {
		t.Fatalf("flow did not fail at the timeout:\n%s", s)
	}
}

func TestFlowDetailShowsRunningTimerWhileWaiting(t *testing.T) {
	exs := fixtureExchanges()
	m := sized(New(Options{Analysis: newFixedAnalysis(exs)}, true), termW, termH)
	m.Update(ExchangesMsg(exs))
	m.follow = false
	m.flowsList.l.cursor = 2
	m.Update(press("enter"))
	m.Update(tickMsg(t0.Add(120*time.Second + 45*time.Second)))
	s := plain(m)
	if !strings.Contains(s, "token   waiting for the token call") || !strings.Contains(s, "0:45 / 1:00") {
		t.Fatalf("flow detail has no running timer:\n%s", s)
	}
	m.Update(tickMsg(t0.Add(120*time.Second + 60*time.Second)))
	if s := plain(m); !strings.Contains(s, "◀ chain broke here") || !strings.Contains(s, "token.never-called") {
		t.Fatalf("flow detail did not turn into the failure:\n%s", s)
	}
}

// The pump batches: a burst becomes a few messages, every exchange arrives,
// and the end of the subscription is announced.
func TestPumpBatches(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("tui", 10000)
	for i := range 5000 {
		b.Publish(mcptap.Exchange{ID: mcptap.NewID(t0.Add(time.Duration(i)))})
	}
	b.Close()
	var msgs []tea.Msg
	every := 50 * time.Millisecond
	start := time.Now()
	pump(context.Background(), sub, func(m tea.Msg) { msgs = append(msgs, m) }, every, newEngine(newFixedAnalysis(nil)), time.Now)
	elapsed := time.Since(start)
	n := 0
	for _, m := range msgs[:len(msgs)-1] {
		n += len(m.(snapshotMsg).exs)
	}
	if n != 5000 {
		t.Fatalf("delivered %d of 5000", n)
	}
	// at most one batch per period (plus the rest and closedMsg), however
	// slow the machine: never one message per exchange
	if limit := int(elapsed/every) + 2; len(msgs) > limit {
		t.Errorf("%d messages for one burst in %v: not batched", len(msgs), elapsed)
	}
	if _, ok := msgs[len(msgs)-1].(closedMsg); !ok {
		t.Errorf("last message %T, want closedMsg", msgs[len(msgs)-1])
	}
}

func TestFilterTerms(t *testing.T) {
	cases := []struct {
		filter       string
		flows, traff int
	}{
		{"", 4, 14},
		{"client:chatgpt", 3, 4},
		{"client:claude", 1, 7},
		{"rule:never", 1, 1},
		{"fault:auth-server", 1, 1},
		{"fault:client", 2, 2},
		{"rule:state", 2, 2},
		{"status:404", 1, 1},
		{"status:failed", 3, 0},
		{"path:/healthz", 0, 1},
		{"path:/oauth/token", 1, 1},
		{"text:callback", 2, 2}, // Claude's redirect_uri is …/auth_callback
		{"nothing-matches-this", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			m := fixtureReplay()
			m.filter = c.filter
			m.applyFilter()
			if len(m.flowsList.rows) != c.flows || len(m.trafficList.rows) != c.traff {
				t.Errorf("flows %d traffic %d, want %d %d", len(m.flowsList.rows), len(m.trafficList.rows), c.flows, c.traff)
			}
		})
	}
}

func TestFilterTypedAndCleared(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	for _, k := range []string{"/", "c", "l", "a", "u", "d", "e", "enter"} {
		m.Update(press(k))
	}
	if m.filter != "claude" || len(m.flowsList.rows) != 1 {
		t.Fatalf("filter %q rows %d", m.filter, len(m.flowsList.rows))
	}
	m.Update(press("esc"))
	if m.filter != "" || len(m.flowsList.rows) != 4 {
		t.Fatalf("esc did not clear the filter: %q rows %d", m.filter, len(m.flowsList.rows))
	}
}

func TestCopyUsesOSC52(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	m.Update(press("down"))
	_, cmd := m.Update(press("y"))
	if cmd == nil || m.copied != "8f14e45f-ceea-467f-a0e6-3b2c1d4e5f60" {
		t.Fatalf("y copied %q (cmd %v)", m.copied, cmd != nil)
	}
	if !strings.Contains(plain(m), "copied 36 bytes") {
		t.Errorf("no confirmation:\n%s", plain(m))
	}
	m.Update(press("2"))
	m.Update(press("y"))
	if m.copied != "https://mcp.example.com/mcp" {
		t.Errorf("traffic y copied %q", m.copied)
	}
}

func TestOrderFollowMouseAndResize(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	m.Update(press("o"))
	if f := m.flowsList.selection(); f.flow != "flow-claude-1" {
		t.Errorf("o must keep the selection, got %s", f.flow)
	}
	lines := strings.Split(plain(m), "\n")
	if !strings.Contains(lines[2], "10:03:20") {
		t.Errorf("newest first: first row is %q", lines[2])
	}
	m.Update(press("2"))
	m.Update(press("g"))
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp})
	if m.trafficList.l.cursor != 0 {
		t.Errorf("wheel up: cursor %d", m.trafficList.l.cursor)
	}
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if m.trafficList.l.cursor != 3 {
		t.Errorf("wheel down: cursor %d", m.trafficList.l.cursor)
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 12})
	s := plain(m)
	ls := strings.Split(s, "\n")
	if len(ls) != 12 {
		t.Fatalf("resize: %d lines", len(ls))
	}
	for _, l := range ls {
		if ansi.StringWidth(l) != 80 {
			t.Fatalf("resize: line of width %d: %q", ansi.StringWidth(l), l)
		}
	}
}

func TestFollowKeepsNewestSelected(t *testing.T) {
	exs := fixtureExchanges()
	m := sized(New(Options{Analysis: newFixedAnalysis(exs)}, true), termW, termH)
	m.Update(press("2"))
	m.Update(ExchangesMsg(exs[:5]))
	if m.trafficList.l.cursor != 4 {
		t.Fatalf("follow: cursor %d after 5", m.trafficList.l.cursor)
	}
	m.Update(ExchangesMsg(exs[5:]))
	if m.trafficList.l.cursor != len(exs)-1 {
		t.Fatalf("follow: cursor %d after %d", m.trafficList.l.cursor, len(exs))
	}
	m.Update(press("up"))
	m.Update(ExchangesMsg([]mcptap.Exchange{mkex("e99", 300*time.Second, "GET", mcpHost, "/x", 200)}))
	if m.trafficList.l.cursor != len(exs)-2 {
		t.Fatalf("moving up must stop following: cursor %d", m.trafficList.l.cursor)
	}
}

// An exchange published twice (head, then complete) is one row.
func TestUpsertByID(t *testing.T) {
	exs := fixtureExchanges()
	m := New(Options{Analysis: newFixedAnalysis(exs)}, true)
	head := exs[0]
	head.Complete, head.End = false, time.Time{}
	m.Update(ExchangesMsg{head})
	m.Update(ExchangesMsg{exs[0]})
	if len(m.exs) != 1 || !m.exs[0].done || len(m.full) != 1 || !m.full[0].Complete {
		t.Fatalf("upsert: %d rows, complete %v", len(m.exs), m.exs[0].done)
	}
}

func TestReportKey(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	dir := t.TempDir()
	m.opts.ReportDir = dir
	old := sessionReport
	t.Cleanup(func() { sessionReport = old })
	sessionReport = nil
	if _, cmd := m.Update(press("r")); cmd != nil || !strings.Contains(m.msg, "mcptap report") {
		t.Fatalf("without the report package: msg %q", m.msg)
	}
	sessionReport = func(w io.Writer, sess mcptap.Session, exs []mcptap.Exchange, _ time.Duration, format string) error {
		_, err := io.WriteString(w, "# "+format+" report for "+sess.ID+"\n")
		return err
	}
	// r says where it will write before writing anything, and offers html
	m.Update(press("r"))
	if s := plain(m); !strings.Contains(s, "report to "+dir) || !strings.Contains(s, "h html") || !strings.Contains(s, "m markdown") {
		t.Fatalf("r does not say where and offer the formats:\n%s", s)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("r wrote before a format was chosen: %v", files)
	}
	m.Update(press("x"))
	if m.msg != "report cancelled" {
		t.Fatalf("another key: msg %q", m.msg)
	}
	m.Update(press("r"))
	_, cmd := m.Update(press("m"))
	m.Update(cmd())
	if !strings.HasPrefix(m.msg, "report written to "+dir) {
		t.Fatalf("msg %q", m.msg)
	}
	path := strings.TrimSuffix(strings.TrimPrefix(m.msg, "report written to "), " (secrets redacted)")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || filepath.Ext(path) != ".md" {
		t.Fatalf("report file %s: %v %v", path, fi, err)
	}
}

// Bodies are loaded when an exchange is opened, not kept for every row.
func TestLazyBodies(t *testing.T) {
	exs := fixtureExchanges()
	byID := map[string]mcptap.Exchange{}
	for _, e := range exs {
		byID[e.ID] = e
	}
	loads := 0
	m := sized(NewReplay(Options{Analysis: newFixedAnalysis(exs), Load: func(id string) (mcptap.Exchange, error) {
		loads++
		return byID[id], nil
	}}, exs), termW, termH)
	// With a loader the model keeps rows only (no headers, no bodies), and
	// whole only the exchanges still in flight (the store may not have them).
	open := 0
	for _, e := range exs {
		if !e.Complete {
			open++
		}
	}
	if m.full != nil || len(m.inflight) != open || len(m.exs) != len(exs) {
		t.Fatalf("with a loader the model keeps %d whole exchanges and %d in flight for %d rows", len(m.full), len(m.inflight), len(m.exs))
	}
	if ex, _ := m.exchange(exs[1].ID); ex.ReqHeader != nil || ex.RespBody != nil || ex.Target != exs[1].Target || ex.Status != exs[1].Status {
		t.Fatalf("the head of a complete exchange: %+v", ex)
	}
	m.Update(press("2"))
	m.Update(press("down"))
	_, cmd := m.Update(press("enter"))
	if !strings.Contains(plain(m), "loading bodies") {
		t.Errorf("no loading note")
	}
	m.Update(cmd())
	if loads != 1 || !strings.Contains(plain(m), `"authorization_servers"`) {
		t.Fatalf("loads %d:\n%s", loads, plain(m))
	}
}

func TestTruncatedBodySaysSo(t *testing.T) {
	exs := fixtureExchanges()
	exs[1].RespTruncated = true
	exs[1].RespSize = 9000
	m := sized(NewReplay(Options{Analysis: newFixedAnalysis(exs)}, exs), termW, termH)
	m.Update(press("2"))
	m.Update(press("down"))
	m.Update(press("enter"))
	if s := plain(m); !strings.Contains(s, "truncated: the first 94 of 9000 bytes were recorded") {
		t.Fatalf("no truncation note:\n%s", s)
	}
}

func TestHelpListsEveryKey(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	m.Update(press("?"))
	s := plain(m)
	for _, k := range []string{"/", "?", "q", "y", "r", "o", "f", "d", "enter", "esc", "tab"} {
		if !strings.Contains(s, k) {
			t.Errorf("help lacks %q", k)
		}
	}
	m.Update(press("x"))
	if m.help {
		t.Error("any key closes help")
	}
}

// Recorded bytes must not reach the terminal as control sequences.
func TestControlBytesAreNeutralised(t *testing.T) {
	exs := fixtureExchanges()
	exs[12].Target = "/healthz?\x1b]52;c;ZXZpbA==\x07"
	m := sized(NewReplay(Options{Analysis: newFixedAnalysis(exs)}, exs), termW, termH)
	m.Update(press("2"))
	if s := m.Render(); strings.Contains(s, "\x1b]52") || strings.Contains(s, "\x07") {
		t.Fatal("a control sequence from the traffic reached the screen")
	}
}

func TestRunLiveDrainsAndStops(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("tui", 1024)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	pr, pw := io.Pipe()
	defer pw.Close()
	errc := make(chan error, 1)
	go func() {
		errc <- RunLive(ctx, LiveOptions{Options: Options{Analysis: newFixedAnalysis(nil)}, Sub: sub, Input: pr, Output: &syncBuf{b: &out}})
	}()
	for _, e := range fixtureExchanges() {
		b.Publish(e)
	}
	b.Close()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("RunLive: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunLive did not stop when its context ended")
	}
}

func (m *Model) selectedExchangeID() string {
	return m.trafficList.selection().exchange
}

// r with the real report package: a redacted markdown file naming the verdicts.
func TestReportKeyWritesMarkdown(t *testing.T) {
	m := sized(NewReplay(Options{Session: mcptap.Session{ID: "0187c0ffee5e5510", Source: mcptap.SourceImport}, ReportDir: t.TempDir()}, fixtureExchanges()), termW, termH)
	m.Update(press("r"))
	_, cmd := m.Update(press("m"))
	m.Update(cmd())
	path := strings.TrimSuffix(strings.TrimPrefix(m.msg, "report written to "), " (secrets redacted)")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", m.msg, err)
	}
	for _, want := range []string{"state.not-echoed", "token.never-called", "callback.state-not-found"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(string(b), "AC_lost") {
		t.Error("the report shows an authorization code unredacted")
	}
}

// At 80 columns every flow row still shows its whole verdict rule and fault
// side: the state column shrinks and the start time goes first.
func TestNarrowTerminalKeepsVerdictAndFault(t *testing.T) {
	for _, w := range []int{80, 72} {
		m := sized(fixtureReplay(), w, termH)
		lines := strings.Split(plain(m), "\n")
		for _, want := range []string{"state.not-echoed · auth-server", "token.never-called · client", "callback.state-not-found · client"} {
			found := false
			for _, l := range lines {
				if strings.Contains(l, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("at %d columns no row shows %q:\n%s", w, want, plain(m))
			}
		}
		if w == 72 && strings.Contains(lines[1], "STARTED") {
			t.Errorf("at %d columns the start time should give way:\n%s", w, lines[1])
		}
	}
}

// A flow that connected but carries a warning is not shown like a clean one:
// its own glyph, its warnings in the verdict column, a count in the status line.
func TestWarningsVisibleInFlowsList(t *testing.T) {
	m := sized(NewReplay(Options{}, fixtureExchanges()), termW, termH)
	s := plain(m)
	for _, want := range []string{"! Claude", "ok with 1 warning: authorize.resource-missing", "1 warning"} {
		if !strings.Contains(s, want) {
			t.Errorf("flows view lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "✓ Claude") {
		t.Errorf("the Claude flow with a warning is shown as clean:\n%s", s)
	}
}

// r then h writes the HTML report (sequence diagrams) next to where it said.
func TestReportKeyWritesHTML(t *testing.T) {
	dir := t.TempDir()
	m := sized(NewReplay(Options{Session: mcptap.Session{ID: "0187c0ffee5e5510", Source: mcptap.SourceImport}, ReportDir: dir}, fixtureExchanges()), termW, termH)
	m.Update(press("r"))
	_, cmd := m.Update(press("h"))
	m.Update(cmd())
	path := strings.TrimSuffix(strings.TrimPrefix(m.msg, "report written to "), " (secrets redacted)")
	if filepath.Dir(path) != dir || filepath.Ext(path) != ".html" {
		t.Fatalf("msg %q: want an .html file in %s", m.msg, dir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg class=\"seq\"", "token.never-called", "chain broke here"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("html report lacks %q", want)
		}
	}
	if strings.Contains(string(b), "AC_lost") {
		t.Error("the html report shows an authorization code unredacted")
	}
}

// A filter key the filter does not know is said, and searched as text; a
// URL's scheme is no key.
func TestFilterUnknownKey(t *testing.T) {
	m := sized(fixtureReplay(), termW, termH)
	m.Update(press("/"))
	for _, r := range "verdict:failed" {
		m.Update(press(string(r)))
	}
	m.Update(press("enter"))
	if !strings.Contains(m.msg, "unknown filter key verdict") || !strings.Contains(m.msg, "fault:") {
		t.Errorf("msg %q: want the unknown key named and the known keys listed", m.msg)
	}
	m.filter = "https://mcp.example.com"
	m.applyFilter()
	if strings.Contains(m.msg, "unknown") {
		t.Errorf("a URL was taken for a filter key: %q", m.msg)
	}
}

// With a loader the analysis keeps a flow's first MCP calls as hops and
// counts the rest; the flow screen says how many more there were, and the
// traffic list still has every exchange.
func TestMoreMCPCallsCounted(t *testing.T) {
	exs := benchExchanges(20_000) // 1,000 attempts, 15 MCP calls after each token
	byID := map[string]mcptap.Exchange{}
	for _, e := range exs {
		byID[e.ID] = e
	}
	m := sized(NewReplay(Options{Load: func(id string) (mcptap.Exchange, error) { return byID[id], nil }}, exs), termW, termH)
	if len(m.exs) != len(exs) {
		t.Fatalf("%d rows for %d exchanges", len(m.exs), len(exs))
	}
	f := m.flows[0]
	mcp := 0
	for _, h := range f.Hops {
		if h.Kind == mcptap.HopMCP {
			mcp++
		}
	}
	if mcp+f.MoreMCPCalls != 15 || f.MoreMCPCalls == 0 {
		t.Fatalf("flow %s: %d MCP hops + %d more, want 15 in all", f.ID, mcp, f.MoreMCPCalls)
	}
	m.Update(press("enter"))
	if want := fmt.Sprintf("… and %d more successful MCP calls", f.MoreMCPCalls); !strings.Contains(plain(m), want) {
		t.Errorf("flow screen lacks %q:\n%s", want, plain(m))
	}
}

// A big replay opens at once and fills in: each chunk's snapshot shows the
// flows found so far and the status line says how far the analysis got;
// the end gives the same flows and verdicts as analysing it in one go.
func TestBigReplayFillsIn(t *testing.T) {
	exs := benchExchanges(4 * replayChunk)
	whole := NewReplay(Options{}, exs)

	m := sized(New(Options{}, false), termW, termH)
	eng := m.eng
	m.eng = nil
	m.load = &loadProgress{total: len(exs), began: time.Now()}
	var lines []string
	loadReplay(context.Background(), eng, oauth.InOrder(exs), m.load.began, func(msg tea.Msg) {
		m.Update(msg)
		lines = append(lines, m.statusLine())
	})
	if len(lines) != 5 || !strings.Contains(lines[0], fmt.Sprintf("analysing %d of %d exchanges", replayChunk, len(exs))) {
		t.Fatalf("status lines while loading: %q", lines)
	}
	if strings.Contains(lines[0], "0 flows") {
		t.Errorf("the first chunk shows no flows: %q", lines[0])
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "replay") || strings.Contains(last, "analysing") {
		t.Errorf("after the load: %q", last)
	}
	if len(m.flows) != len(whole.flows) || m.errors != whole.errors || m.warnings != whole.warnings {
		t.Fatalf("filled in: %d flows, %d errors, %d warnings; in one go %d, %d, %d", len(m.flows), m.errors, m.warnings, len(whole.flows), whole.errors, whole.warnings)
	}
	for i := range m.flows {
		if m.flows[i].ID != whole.flows[i].ID || m.flows[i].Verdict != whole.flows[i].Verdict {
			t.Fatalf("flow %d: %s %v, in one go %s %v", i, m.flows[i].ID, m.flows[i].Verdict, whole.flows[i].ID, whole.flows[i].Verdict)
		}
	}
}
