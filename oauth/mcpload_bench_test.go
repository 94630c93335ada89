package oauth

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

// BenchmarkObserveMCPCalls feeds the tracker what a busy MCP server sends
// through the live proxy: authenticated JSON-RPC tools/call POSTs, each
// published twice (head, then complete), as in bench/proxybench, to a
// tracker with Options.Forget as the line view uses. Reports the heap the
// tracker still holds per exchange after a GC.
func BenchmarkObserveMCPCalls(b *testing.B) {
	req := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"` + strings.Repeat("q", 110) + `"}}}`)
	resp := []byte(`{"jsonrpc":"2.0","id":7,"result":{"pad":"` + strings.Repeat("y", 980) + `"}}`)
	t0 := time.Now()
	tr := NewTracker(Options{Forget: true})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ex := mcptap.Exchange{
			ID: fmt.Sprintf("%016x%06x", at.UnixNano(), i&0xffffff), Session: "s", Seq: uint64(i + 1),
			Listener: "127.0.0.1:8780", Mode: mcptap.ModeReverse, Scheme: "http", Host: "mcp.example.com",
			Start: at, ResponseAt: at.Add(time.Millisecond), Method: "POST", Target: "/mcp",
			ReqHeader: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer abc.def.ghi"},
				"Accept": {"application/json, text/event-stream"}, "Mcp-Session-Id": {"sess-1"}},
			RespHeader: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"1024"}},
			Status:     200, ReqBody: req, ReqSize: int64(len(req)),
		}
		tr.Observe(ex)
		ex.End, ex.Complete, ex.RespBody, ex.RespSize = at.Add(2*time.Millisecond), true, resp, int64(len(resp))
		tr.Observe(ex)
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "retained-B/exchange")
	runtime.KeepAlive(tr)
}

// BenchmarkObserveMCPCallsAfterFlow: a healthy ChatGPT flow, then b.N
// authenticated MCP calls carrying its access token (each published head,
// then complete), as a live session keeps sending after setup. ns/op must
// not grow with b.N.
func BenchmarkObserveMCPCallsAfterFlow(b *testing.B) {
	for _, forget := range []bool{false, true} {
		b.Run(fmt.Sprintf("forget=%v", forget), func(b *testing.B) {
			b.ReportAllocs()
			mcpCallsAfterFlow(b, NewTracker(Options{Forget: forget}), b.N)
		})
	}
}

// mcpCallsAfterFlow is a healthy ChatGPT flow followed by n authenticated MCP
// calls with its access token, each published head then complete.
func mcpCallsAfterFlow(tb testing.TB, tr *Tracker, n int) {
	raw, err := os.ReadFile("testdata/healthy-chatgpt.har")
	if err != nil {
		tb.Fatal(err)
	}
	exs, err := har.Read(bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	var call *mcptap.Exchange
	for i := range exs {
		exs[i].Mode = mcptap.ModeReverse
		exs[i].Complete = true
		tr.Observe(exs[i])
		if exs[i].Method == "POST" && strings.HasPrefix(exs[i].ReqHeader.Get("Authorization"), "Bearer ") && exs[i].Status == 200 {
			call = &exs[i]
		}
	}
	if call == nil {
		tb.Fatal("the fixture has no authenticated MCP call")
	}
	t0 := exs[len(exs)-1].End
	for i := range n {
		ex := *call
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		ex.ID, ex.Seq = fmt.Sprintf("%016x%06x", at.UnixNano(), i&0xffffff), uint64(len(exs)+i+1)
		ex.Start, ex.ResponseAt, ex.End, ex.Complete = at, at, time.Time{}, false
		tr.Observe(ex)
		ex.End, ex.Complete = at.Add(time.Millisecond), true
		tr.Observe(ex)
	}
}

// Under Options.Forget the tracker's memory stays flat however many MCP
// calls follow a flow: the flow keeps KeptMCPCalls of them as hops and the
// index keeps the flow's exchanges only. Without it, everything is kept.
func TestForgetBoundsMCPCallsAfterFlow(t *testing.T) {
	const n = 5000
	for _, forget := range []bool{false, true} {
		tr := NewTracker(Options{Forget: forget})
		mcpCallsAfterFlow(t, tr, n)
		if fs := tr.Finish(); len(fs) != 0 {
			t.Fatalf("forget=%v: findings on a healthy flow: %v", forget, fs)
		}
		flows := tr.Flows()
		if len(flows) != 1 || flows[0].Verdict.Rule != "" && flows[0].Status != mcptap.FlowComplete {
			t.Fatalf("forget=%v: flows %+v", forget, flows)
		}
		mcps := 0
		for _, h := range flows[0].Hops {
			if h.Kind == mcptap.HopMCP {
				mcps++
			}
		}
		t.Logf("forget=%v: %d exchanges indexed, %d listed, %d MCP hops", forget, len(tr.byID), len(tr.list), mcps)
		if !forget {
			if len(tr.byID) < n || mcps < n {
				t.Fatalf("without Forget: %d indexed, %d MCP hops; want every one of %d", len(tr.byID), mcps, n)
			}
			continue
		}
		if mcps != keptMCPCalls {
			t.Errorf("the flow has %d MCP hops, want %d", mcps, keptMCPCalls)
		}
		if len(tr.byID) > 64 || len(tr.list) > 2*1024+64 {
			t.Errorf("%d indexed, %d listed after %d calls: not bounded", len(tr.byID), len(tr.list), n)
		}
	}
}

// Exchanges outside every flow (a server whose clients authorized before
// the capture began) are dropped once judged.
func TestForgetDropsFlowlessCalls(t *testing.T) {
	tr := NewTracker(Options{Forget: true})
	t0 := time.Now()
	for i := range 10000 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ex := mcptap.Exchange{
			ID: fmt.Sprintf("%016x%06x", at.UnixNano(), i), Session: "s", Mode: mcptap.ModeReverse, Scheme: "http", Host: "mcp.example.com",
			Start: at, ResponseAt: at, Method: "POST", Target: "/mcp", Status: 200,
			ReqHeader: http.Header{"Authorization": {"Bearer t"}, "Content-Type": {"application/json"}},
			ReqBody:   []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`),
		}
		tr.Observe(ex)
		ex.Complete, ex.End = true, at
		tr.Observe(ex)
	}
	if len(tr.byID) != 0 || len(tr.list) > 1024 {
		t.Errorf("%d indexed, %d listed after 10,000 flowless calls", len(tr.byID), len(tr.list))
	}
	if fs := tr.Finish(); len(fs) != 0 {
		t.Errorf("findings: %v", fs)
	}
}
