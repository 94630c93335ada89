package tui

import (
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
)

// benchExchanges is a large session: 1,000 OAuth attempts (a quarter of
// them failing like seed 000) and MCP traffic filling it up to n exchanges.
func benchExchanges(n int) []mcptap.Exchange {
	exs := make([]mcptap.Exchange, 0, n)
	at := time.Duration(0)
	next := func() time.Duration { at += 10 * time.Millisecond; return at }
	id := 0
	nid := func() string { id++; return fmt.Sprintf("b%08d", id) }
	cb := "https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect"
	flows := 1000
	mcpPer := (n - flows*5) / flows
	for f := 0; f < flows && len(exs) < n; f++ {
		state := fmt.Sprintf("st-%06d-%s", f, cgptState[:20])
		code := fmt.Sprintf("AC_%06d", f)
		client := fmt.Sprintf("cl_%d", f)
		tok := fmt.Sprintf("tok-%06d", f)
		exs = append(exs,
			mkex(nid(), next(), "POST", mcpHost, "/mcp", 401, respH("WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`), reqBody(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`)),
			mkex(nid(), next(), "POST", mcpHost, "/oauth/register", 201, reqH("Content-Type", "application/json"), respH("Content-Type", "application/json"),
				reqBody(`{"redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"]}`), respBody(`{"client_id":"`+client+`"}`)),
			mkex(nid(), next(), "GET", mcpHost, authorizeTarget(client, state, cb), 302,
				respH("Location", "https://chatgpt.com/connector_platform_oauth_redirect?code="+code+"&state="+state)))
		if f%4 == 3 {
			continue // seed 000: no token call
		}
		exs = append(exs, mkex(nid(), next(), "POST", mcpHost, "/oauth/token", 200,
			reqH("Content-Type", "application/x-www-form-urlencoded"), respH("Content-Type", "application/json"),
			reqBody("grant_type=authorization_code&code="+code+"&redirect_uri="+cb+"&client_id="+client+"&code_verifier="+verifier),
			respBody(`{"access_token":"`+tok+`","token_type":"Bearer"}`)))
		for i := 0; i < mcpPer && len(exs) < n; i++ {
			exs = append(exs, mkex(nid(), next(), "POST", mcpHost, "/mcp", 200, reqH("Authorization", "Bearer "+tok, "Content-Type", "application/json"),
				respH("Content-Type", "application/json"), reqBody(`{"jsonrpc":"2.0","id":2,"method":"tools/call"}`), respBody(`{"jsonrpc":"2.0","id":2,"result":{}}`)))
		}
	}
	for len(exs) < n {
		exs = append(exs, mkex(nid(), next(), "GET", mcpHost, "/healthz", 200, respBody("ok")))
	}
	return exs
}

var bench struct {
	once  sync.Once
	exs   []mcptap.Exchange
	model *Model
	eng   *engine
	load  time.Duration
}

// benchModel is a live model holding 100,000 exchanges, loaded once in
// batches of 1,000 as the pump would deliver a burst.
func benchModel(b *testing.B) *Model {
	bench.once.Do(func() {
		bench.exs = benchExchanges(100_000)
		m := New(Options{}, true)
		m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
		start := time.Now()
		for i := 0; i < len(bench.exs); i += 1000 {
			m.Update(ExchangesMsg(bench.exs[i:min(i+1000, len(bench.exs))]))
		}
		bench.load = time.Since(start)
		m.follow = false
		bench.model, bench.eng = m, m.eng
	})
	b.Cleanup(func() {
		b.ReportMetric(float64(len(bench.model.exs)), "exchanges")
		b.ReportMetric(float64(len(bench.model.flows)), "flows")
		b.ReportMetric(bench.load.Seconds(), "load-s")
	})
	return bench.model
}

// One key press in the traffic list of 100,000 exchanges.
func BenchmarkUpdateKey100k(b *testing.B) {
	m := benchModel(b)
	m.Update(press("2"))
	down, up := press("down"), press("up")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			m.Update(down)
		} else {
			m.Update(up)
		}
	}
}

// The UI's cost of one live batch of one MCP call on top of 100,000
// exchanges: the snapshot is made by the analysis (in the pump goroutine in a
// live program) outside the timer; the model applies it.
func BenchmarkUpdateBatchMCP100k(b *testing.B) {
	m := benchModel(b)
	base := bench.exs[len(bench.exs)-1].Start
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ex := mkex(fmt.Sprintf("z%08d", i), 0, "POST", mcpHost, "/mcp", 200, reqBody(`{"jsonrpc":"2.0","id":3,"method":"ping"}`))
		ex.Start = base.Add(time.Duration(i+1) * time.Millisecond)
		ex.ReqHeader = http.Header{"Authorization": {"Bearer tok-000000"}}
		s := m.eng.ingest([]mcptap.Exchange{ex})
		b.StartTimer()
		m.Update(s)
	}
}

func oauthBatch(i int) []mcptap.Exchange {
	base := bench.exs[len(bench.exs)-1].Start
	cb := "https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect"
	st := fmt.Sprintf("bench-state-%d", i)
	ex := mkex(fmt.Sprintf("y%08d", i), 0, "GET", mcpHost, authorizeTarget("cl_1", st, cb), 302,
		respH("Location", "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_y&state="+st))
	ex.Start = base.Add(time.Duration(i+1) * time.Millisecond)
	return []mcptap.Exchange{ex}
}

// The UI's cost of a batch holding an OAuth hop (an authorize): the
// snapshot carries all flows and findings, re-read by the analysis.
func BenchmarkUpdateBatchOAuth100k(b *testing.B) {
	m := benchModel(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		s := m.eng.ingest(oauthBatch(i))
		b.StartTimer()
		m.Update(s)
	}
}

// The analysis' cost of that batch (Observe plus re-reading every flow),
// paid in the pump goroutine, never on the UI's.
func BenchmarkAnalysisBatchOAuth100k(b *testing.B) {
	m := benchModel(b)
	for i := 0; b.Loop(); i++ {
		_ = m.eng.ingest(oauthBatch(1_000_000 + i))
	}
}

// One tick of the live clock (time-based rules, running timers).
func BenchmarkTick100k(b *testing.B) {
	m := benchModel(b)
	now := bench.exs[len(bench.exs)-1].Start
	m.eng, m.live = nil, true // a live model: the pump ticks the analysis
	defer func() { m.eng = bench.eng }()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.Update(tickMsg(now.Add(time.Duration(i) * time.Millisecond)))
	}
}

func BenchmarkRenderTraffic100k(b *testing.B) {
	m := benchModel(b)
	m.Update(press("2"))
	m.trafficList.l.cursor = len(m.trafficList.rows) / 2
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}

func BenchmarkRenderFlows100k(b *testing.B) {
	m := benchModel(b)
	m.Update(press("1"))
	m.flowsList.l.cursor = len(m.flowsList.rows) / 2
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}

// Opening a recorded session of 100,000 exchanges (mcptap replay): analysis
// of every exchange, Finish, and the first screen.
func BenchmarkReplayOpen100k(b *testing.B) {
	exs := benchExchanges(100_000)
	for b.Loop() {
		m := NewReplay(Options{}, exs)
		m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
		_ = m.View()
	}
}

// BenchmarkLiveHeap1M records 1,000,000 exchanges of a long live session
// (1,000 OAuth attempts, then authenticated MCP calls) through the live
// model with a store attached (Load set: bodies stay on disk), in batches
// of 1,000 as the pump delivers them, and prints the heap the model and its
// analysis hold afterwards. Target: under 200 MB.
//
//	go test -run '^$' -bench LiveHeap1M -benchtime 1x ./tui
func BenchmarkLiveHeap1M(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		m := New(Options{Load: func(string) (mcptap.Exchange, error) { return mcptap.Exchange{}, nil }}, true)
		m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
		const total, batch = 1_000_000, 1000
		first := benchExchanges(10_000) // the OAuth attempts and their first calls
		var last time.Time
		for i := 0; i < len(first); i += batch {
			m.Update(m.eng.ingest(first[i:min(i+batch, len(first))]))
		}
		last = first[len(first)-1].Start
		buf := make([]mcptap.Exchange, batch)
		for n := len(first); n < total; n += batch {
			for j := range buf {
				k := n + j
				last = last.Add(time.Millisecond)
				ex := mkex(fmt.Sprintf("m%08d", k), 0, "POST", mcpHost, "/mcp", 200,
					reqH("Authorization", fmt.Sprintf("Bearer tok-%06d", k%750), "Content-Type", "application/json"),
					respH("Content-Type", "application/json"),
					reqBody(`{"jsonrpc":"2.0","id":2,"method":"tools/call"}`), respBody(`{"jsonrpc":"2.0","id":2,"result":{}}`))
				ex.Start, ex.ResponseAt, ex.End = last, last, last
				buf[j] = ex
			}
			m.Update(m.eng.ingest(buf))
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
		b.ReportMetric(float64(len(m.exs)), "exchanges")
		runtime.KeepAlive(m)
		b.StartTimer()
	}
}
