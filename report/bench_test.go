package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

// generate returns about n exchanges of many flows (each scenario with its
// own seed, so states, codes and tokens are unique).
func generate(n int) []mcptap.Exchange {
	b := oauthtest.NewBuilder()
	b.Step = 100 * time.Millisecond
	for i := 0; b.Len() < n; i++ {
		s := oauthtest.Mix[i%len(oauthtest.Mix)]
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure is peak plus the CPU time (user+system, all threads) fn took: on a
// shared machine CPU time is steadier than wall time.
func measure(fn func()) (wall, cpu time.Duration, heap uint64) {
	c0 := cpuTime()
	wall, heap = peak(fn)
	return wall, cpuTime() - c0, heap
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

// BenchmarkScale measures, for growing sessions, the time of merely parsing
// the HAR JSON next to recorder.ReadHAR and report.Build (redacted, as the
// CLI does, and not), with wall and CPU time and the peak heap above the
// baseline. It runs once whatever b.N is:
//
//	go test ./report -run '^$' -bench BenchmarkScale -benchtime 1x -v -timeout 30m
//
// MCPTAP_SCALE=100000 (a comma-separated list) picks other sizes.
func BenchmarkScale(b *testing.B) {
	t := b
	b.StopTimer()
	sizes := []int{25000, 50000, 100000}
	if v := os.Getenv("MCPTAP_SCALE"); v != "" && v != "1" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("MCPTAP_SCALE=%q: want 1 or a list of sizes", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		exs := generate(n)
		var harBuf bytes.Buffer
		if err := har.Write(&harBuf, mcptap.Session{ID: "bench"}, exs, nil); err != nil {
			t.Fatal(err)
		}
		raw := harBuf.Bytes()
		exs = nil
		var parsed harDoc
		tParse, cParse, mParse := measure(func() {
			if err := json.Unmarshal(raw, &parsed); err != nil {
				t.Fatal(err)
			}
		})
		parsed = harDoc{}
		var read []mcptap.Exchange
		tRead, cRead, mRead := measure(func() {
			var err error
			if read, err = har.Read(bytes.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
		})
		var r report.Report
		tBuild, cBuild, mBuild := measure(func() {
			r = report.Build(mcptap.Session{ID: "bench", Source: mcptap.SourceImport}, read, report.Options{})
		})
		tRed, cRed, mRed := measure(func() {
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
		ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
		t.Logf("n=%d HAR %.1f MiB, %d flows (%d failed), %d findings", n, float64(len(raw))/(1<<20), len(r.Flows), errs, len(r.Findings))
		t.Logf("  json.Unmarshal    wall %8s cpu %8s peak heap +%4d MiB", ms(tParse), ms(cParse), mParse>>20)
		t.Logf("  recorder.ReadHAR  wall %8s cpu %8s peak heap +%4d MiB", ms(tRead), ms(cRead), mRead>>20)
		t.Logf("  report.Build      wall %8s cpu %8s peak heap +%4d MiB  (wall %.2fx, cpu %.2fx parse)", ms(tBuild), ms(cBuild), mBuild>>20, float64(tBuild)/float64(tParse), float64(cBuild)/float64(cParse))
		t.Logf("  Build redacted    wall %8s cpu %8s peak heap +%4d MiB  (wall %.2fx, cpu %.2fx parse)", ms(tRed), ms(cRed), mRed>>20, float64(tRed)/float64(tParse), float64(cRed)/float64(cParse))
		t.Logf("  Write json        wall %8s", ms(tWrite))
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
	var harBuf bytes.Buffer
	if err := har.Write(&harBuf, mcptap.Session{ID: "bench"}, generate(100000), nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(harBuf.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d harDoc
		if err := json.Unmarshal(harBuf.Bytes(), &d); err != nil {
			b.Fatal(err)
		}
	}
}
