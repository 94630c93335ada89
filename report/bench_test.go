package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/report"
)

// benchScenarios cover every hop kind: discovery, registration, authorize,
// redirect, browser callback and ChatGPT callback completion, inner legs,
// token, refresh, MCP with and without bearer, and some broken flows.
var benchScenarios = []oauthtest.Scenario{
	{Client: "chatgpt"},
	{Client: "claude", Refresh: true},
	{Client: "vscode"},
	{Client: "mcp-remote", Refresh: true},
	{Client: "chatgpt", Browser: true},
	{Client: "claude", Upstream: "https://idp.example.org"},
	{Client: "chatgpt", Browser: true, CompletionStat: 404},
	{Client: "vscode", AlterState: func(s string) string { return s + "%20" }},
	{Client: "claude", MCPStatus: 401},
	{Client: "claude", NoChallenge: true, TokenError: "invalid_grant"},
	{Client: "chatgpt", NoToken: true},
}

// generate returns about n exchanges of many flows (each scenario with its
// own seed, so states, codes and tokens are unique).
func generate(n int) []mcptap.Exchange {
	b := oauthtest.NewBuilder()
	b.Step = 100 * time.Millisecond
	for i := 0; b.Len() < n; i++ {
		s := benchScenarios[i%len(benchScenarios)]
		s.Seed = fmt.Sprint(i)
		s.Build(b)
	}
	exs := b.Exchanges()
	return exs[:n]
}

type harDoc struct {
	Log struct {
		Entries []struct {
			StartedDateTime string  `json:"startedDateTime"`
			Time            float64 `json:"time"`
			Request         struct {
				Method   string `json:"method"`
				URL      string `json:"url"`
				Headers  []struct{ Name, Value string }
				PostData *struct{ MimeType, Text string } `json:"postData"`
			} `json:"request"`
			Response struct {
				Status  int `json:"status"`
				Headers []struct{ Name, Value string }
				Content struct {
					Size           int
					MimeType, Text string
				} `json:"content"`
			} `json:"response"`
		} `json:"entries"`
	} `json:"log"`
}

// peak samples the heap in use while fn runs.
func peak(fn func()) (time.Duration, uint64) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var max atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > max.Load() {
					max.Store(ms.HeapInuse)
				}
			}
		}
	}()
	start := time.Now()
	fn()
	d := time.Since(start)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > max.Load() {
		max.Store(ms.HeapInuse)
	}
	close(done)
	p := max.Load()
	if p < base.HeapInuse {
		return d, 0
	}
	return d, p - base.HeapInuse
}

// TestScale measures, for growing sessions, the time of merely parsing the
// HAR JSON next to recorder.ReadHAR and report.Build (redacted, as the CLI
// does, and not), with the peak heap above the baseline. Run it with
// MCPTAP_SCALE=1 go test ./report -run TestScale -v.
func TestScale(t *testing.T) {
	if os.Getenv("MCPTAP_SCALE") == "" {
		t.Skip("set MCPTAP_SCALE=1 to measure (takes about a minute)")
	}
	for _, n := range []int{25000, 50000, 100000} {
		exs := generate(n)
		var har bytes.Buffer
		if err := oauthtest.WriteHAR(&har, exs); err != nil {
			t.Fatal(err)
		}
		raw := har.Bytes()
		exs = nil
		var parsed harDoc
		tParse, mParse := peak(func() {
			if err := json.Unmarshal(raw, &parsed); err != nil {
				t.Fatal(err)
			}
		})
		parsed = harDoc{}
		var read []mcptap.Exchange
		tRead, mRead := peak(func() {
			var err error
			if read, err = recorder.ReadHAR(bytes.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
		})
		var r report.Report
		tBuild, mBuild := peak(func() {
			r = report.Build(mcptap.Session{ID: "bench", Source: mcptap.SourceImport}, read, report.Options{})
		})
		tRed, mRed := peak(func() {
			r = report.Build(mcptap.Session{ID: "bench", Source: mcptap.SourceImport}, read, report.Options{Redact: true})
		})
		var out bytes.Buffer
		tWrite, _ := peak(func() { _ = r.Write(&out, "json") })
		errs := 0
		for _, f := range r.Flows {
			if f.Verdict.Rule != "ok" {
				errs++
			}
		}
		t.Logf("n=%d HAR %.1f MiB flows=%d (failed %d) findings=%d | json.Unmarshal %v (peak +%d MiB) | recorder.ReadHAR %v (+%d MiB) | report.Build %v (+%d MiB, %.2fx parse) | Build redacted %v (+%d MiB, %.2fx parse) | Write json %v",
			n, float64(len(raw))/(1<<20), len(r.Flows), errs, len(r.Findings),
			tParse.Round(time.Millisecond), mParse>>20, tRead.Round(time.Millisecond), mRead>>20,
			tBuild.Round(time.Millisecond), mBuild>>20, float64(tBuild)/float64(tParse),
			tRed.Round(time.Millisecond), mRed>>20, float64(tRed)/float64(tParse), tWrite.Round(time.Millisecond))
		if mRed > 1<<30 || mBuild > 1<<30 {
			t.Errorf("peak heap above 1 GiB")
		}
	}
}

func BenchmarkBuild100k(b *testing.B) {
	exs := generate(100000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		report.Build(mcptap.Session{ID: "bench"}, exs, report.Options{})
	}
}

func BenchmarkBuildRedacted100k(b *testing.B) {
	exs := generate(100000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		report.Build(mcptap.Session{ID: "bench"}, exs, report.Options{Redact: true})
	}
}

func BenchmarkUnmarshalHAR100k(b *testing.B) {
	var har bytes.Buffer
	if err := oauthtest.WriteHAR(&har, generate(100000)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(har.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d harDoc
		if err := json.Unmarshal(har.Bytes(), &d); err != nil {
			b.Fatal(err)
		}
	}
}
