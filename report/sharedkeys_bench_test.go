package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/report"
)

// sharedKeys builds about n exchanges of retry loops that share their keys:
// one client with a constant state, one client_id and one redirect URI, each
// attempt an authorize answered with a code and, for every other attempt, a
// token request; plus 401 challenges and metadata fetches between them.
func sharedKeys(n int) []mcptap.Exchange {
	t0 := time.Date(2026, 11, 24, 16, 30, 0, 0, time.UTC)
	var exs []mcptap.Exchange
	add := func(method, target string, status int, reqH, respH http.Header, reqBody, respBody string) {
		i := len(exs)
		start := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if reqH == nil {
			reqH = http.Header{}
		}
		if respH == nil {
			respH = http.Header{}
		}
		reqH.Set("User-Agent", "retry-client/1.0")
		exs = append(exs, mcptap.Exchange{
			ID: fmt.Sprintf("%016x%06x", uint64(start.UnixNano()), i), Seq: uint64(i), Mode: mcptap.ModeReverse,
			Start: start, ResponseAt: start.Add(time.Millisecond), End: start.Add(2 * time.Millisecond),
			Method: method, Scheme: "https", Host: "mcp.example.com", Target: target, Status: status,
			ReqHeader: reqH, RespHeader: respH, ReqBody: []byte(reqBody), RespBody: []byte(respBody), Complete: true,
		})
	}
	const state = "constant-state-0123456789"
	const redirect = "http%3A%2F%2F127.0.0.1%3A33418%2Fcallback"
	for a := 0; len(exs) < n; a++ {
		switch a % 4 {
		case 0:
			add("POST", "/mcp", 401, http.Header{"Content-Type": {"application/json"}},
				http.Header{"Www-Authenticate": {`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`}},
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, `{"error":"unauthorized"}`)
		case 1:
			add("GET", "/.well-known/oauth-protected-resource", 200, nil, http.Header{"Content-Type": {"application/json"}}, "",
				`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com"]}`)
		}
		code := fmt.Sprintf("code-%08d", a)
		add("GET", "/authorize?response_type=code&client_id=c1&redirect_uri="+redirect+"&state="+state+"&code_challenge=abc&code_challenge_method=S256", 302,
			nil, http.Header{"Location": {"http://127.0.0.1:33418/callback?code=" + code + "&state=" + state}}, "", "")
		if a%2 == 0 {
			add("POST", "/token", 200, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				http.Header{"Content-Type": {"application/json"}},
				"grant_type=authorization_code&code="+code+"&redirect_uri="+redirect+"&client_id=c1&code_verifier=v",
				fmt.Sprintf(`{"access_token":"at-%08d","token_type":"Bearer"}`, a))
		}
	}
	return exs[:n]
}

// BenchmarkReportSharedKeys prints report time / parse time for a
// 100,000-exchange HAR in which every attempt shares one state, client and
// redirect URI (issue 12: the cost was quadratic in attempts per key), and
// the peak heap. Target: ratio ≤ 3. It runs once whatever b.N is:
//
//	go test ./report -run '^$' -bench ReportSharedKeys -benchtime 1x -v
func BenchmarkReportSharedKeys(b *testing.B) {
	b.StopTimer()
	for _, n := range []int{25000, 100000} {
		var buf bytes.Buffer
		if err := har.Write(&buf, mcptap.Session{ID: "bench"}, sharedKeys(n), nil); err != nil {
			b.Fatal(err)
		}
		raw := buf.Bytes()
		var doc harDoc
		tParse, _, _ := measure(func() {
			if err := json.Unmarshal(raw, &doc); err != nil {
				b.Fatal(err)
			}
		})
		doc = harDoc{}
		var exs []mcptap.Exchange
		tRead, _, _ := measure(func() {
			var err error
			if exs, err = har.Read(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		})
		var r report.Report
		tBuild, _, mBuild := measure(func() {
			r = report.Build(mcptap.Session{ID: "bench", Source: mcptap.SourceImport}, exs, report.Options{})
		})
		b.Logf("%d exchanges (%d flows): parse %v; har.Read %v; report.Build %v (%.2f× parse, peak heap +%d MiB); read+build %.2f× parse",
			n, len(r.Flows), tParse.Round(time.Millisecond), tRead.Round(time.Millisecond), tBuild.Round(time.Millisecond),
			float64(tBuild)/float64(tParse), mBuild>>20, float64(tRead+tBuild)/float64(tParse))
		// What `mcptap report FILE.har` does: the analysis runs while the
		// file is read (oauth.Stream), then the report is built on it.
		exs, r = nil, report.Report{}
		tPipe, _, mPipe := measure(func() {
			st := oauth.NewStream(oauth.Options{})
			var err error
			if exs, err = har.ReadFunc(bytes.NewReader(raw), st.Feed); err != nil {
				b.Fatal(err)
			}
			r = report.Build(mcptap.Session{ID: "bench", Source: mcptap.SourceImport}, exs, report.Options{Analysis: st.Finish(exs)})
		})
		b.Logf("%d exchanges: read and analyse together, as mcptap report does %v: %.2f× parse (target ≤ 3), peak heap +%d MiB",
			n, tPipe.Round(time.Millisecond), float64(tPipe)/float64(tParse), mPipe>>20)
	}
}
