package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// jaegerBin is Jaeger v2's all-in-one binary, built by .ci/run from the tools
// module (tools/jaeger) into GOPATH/bin, or named by $MCPTAP_JAEGER.
func jaegerBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("MCPTAP_JAEGER"), "jaeger"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("jaeger is required under CI (.ci/run builds it from tools/jaeger)")
	}
	t.Skip("jaeger not built: (cd tools/jaeger && go build -o $(go env GOPATH)/bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger)")
	return ""
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		SpanID string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
}

func (s jaegerSpan) tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// A real Jaeger (v2, OTLP/HTTP in, its query API out) receives one trace per
// OAuth flow: a root oauth.flow span with the verdict, a child span per hop
// with the HTTP server attributes and the failing hop marked, findings as
// events, and no code, token or state anywhere.
func TestJaegerReceivesFlowTraces(t *testing.T) {
	bin := jaegerBin(t)
	otlp, query, grpcQ := freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, query, grpcQ, otlp)), 0o600)
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none") // Jaeger's own spans: not wanted here
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger never came up:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	b := mcptap.NewBroker()
	sub := b.Subscribe("traces", 4096)
	e, err := Start(context.Background(), sub, Options{OTLP: "http://" + otlp, TokenTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tr := e.Traces
	exs := fixture(t, "seed000-server")
	for _, ex := range exs {
		b.Publish(ex)
	}
	b.Close()
	<-e.Done()
	if tr.Exported() != 1 || tr.Failed() != 0 {
		t.Fatalf("exported %d flows, %d spans failed", tr.Exported(), tr.Failed())
	}

	// The recording's spans carry its own times (months ago): search there.
	spans := jaegerSpans(t, query, exs, deadline, func([]jaegerSpan) bool { return true }, &logs)
	var root *jaegerSpan
	for i := range spans {
		if spans[i].OperationName == "oauth.flow" {
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no oauth.flow span among %d", len(spans))
	}
	if root.tag("mcptap.verdict.rule") != "token.never-called" || root.tag("mcptap.verdict.fault") != "client" ||
		root.tag("mcptap.flow.client") != "chatgpt" || root.tag("error") != "true" {
		t.Errorf("root span tags: %+v", root.Tags)
	}
	events := 0
	for _, l := range root.Logs {
		for _, f := range l.Fields {
			if f.Key == "mcptap.rule" && f.Value == "token.never-called" {
				events++
			}
		}
	}
	if events != 1 {
		t.Errorf("the verdict's finding is not an event of the root span: %+v", root.Logs)
	}
	children, failing := 0, 0
	for _, s := range spans {
		if len(s.References) == 0 || s.References[0].SpanID != root.SpanID {
			continue
		}
		children++
		if s.tag("mcptap.hop.missing") == "true" {
			if s.OperationName != "missing token" || s.tag("error.type") != "token.never-called" {
				t.Errorf("the missing hop's span: %s %+v", s.OperationName, s.Tags)
			}
			failing++
			continue
		}
		if s.tag("http.request.method") == "" || s.tag("mcptap.hop.kind") == "" || strings.Contains(s.tag("url.path"), "?") {
			t.Errorf("hop span %s: %+v", s.OperationName, s.Tags)
		}
		if s.tag("error.type") == "token.never-called" {
			t.Errorf("hop %s is marked failing: the chain broke at the token call that never came", s.OperationName)
		}
	}
	if children < 6 || failing != 1 {
		t.Errorf("%d child spans (want one per hop and one for the missing token call), %d for the missing hop (want 1)", children, failing)
	}
	raw, _ := json.Marshal(spans)
	for _, ex := range exs {
		for _, s := range []string{ex.Target, ex.RespHeader.Get("Location")} {
			_, q, _ := strings.Cut(s, "?")
			for _, kv := range strings.Split(q, "&") {
				if k, v, _ := strings.Cut(kv, "="); (k == "state" || k == "code") && len(v) > 3 && strings.Contains(string(raw), v) {
					t.Errorf("a span carries the %s %q", k, v)
				}
			}
		}
	}

	// A healthy flow goes out once it completes; MCP calls made with its
	// token afterwards (more than the analysis keeps as hops) join its
	// trace as spans of their own, children of its root span.
	b2 := mcptap.NewBroker()
	sub2 := b2.Subscribe("traces", 4096)
	e2, err := Start(context.Background(), sub2, Options{OTLP: "http://" + otlp, TokenTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	healthy := fixture(t, "healthy-chatgpt")
	var call mcptap.Exchange
	for _, ex := range healthy {
		b2.Publish(ex)
		if strings.HasPrefix(ex.ReqHeader.Get("Authorization"), "Bearer ") && strings.Contains(string(ex.ReqBody), `"method"`) {
			call = ex
		}
	}
	if call.ID == "" {
		t.Fatal("healthy-chatgpt has no authenticated MCP call")
	}
	for e2.Traces.Exported() == 0 { // the consumer looks for ended flows once a second
		if time.Now().After(deadline) {
			t.Fatal("the healthy flow was never exported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	const later = 12
	last := healthy[len(healthy)-1].Start
	for i := range later {
		ex := call
		ex.ID = fmt.Sprintf("late-%02d", i)
		ex.Start = last.Add(time.Duration(i+1) * time.Minute)
		ex.ResponseAt, ex.End = ex.Start.Add(time.Millisecond), ex.Start.Add(2*time.Millisecond)
		b2.Publish(ex)
	}
	b2.Close()
	<-e2.Done()
	if e2.Traces.LateSpans() != later || e2.Traces.Exported() != 1 {
		t.Fatalf("%d late spans for %d later calls, %d flows exported", e2.Traces.LateSpans(), later, e2.Traces.Exported())
	}
	lateOf := func(sp []jaegerSpan) (root *jaegerSpan, n int) {
		for i := range sp {
			if sp[i].OperationName == "oauth.flow" && sp[i].tag("mcptap.verdict.rule") == "ok" {
				root = &sp[i]
			}
		}
		for _, s := range sp {
			if root != nil && len(s.References) > 0 && s.References[0].SpanID == root.SpanID && s.tag("mcp.method.name") != "" {
				n++
			}
		}
		return root, n
	}
	spans = jaegerSpans(t, query, healthy, deadline, func(sp []jaegerSpan) bool {
		root, n := lateOf(sp)
		return root != nil && n >= later
	}, &logs)
	if _, n := lateOf(spans); n < later {
		t.Errorf("%d MCP call spans under the healthy flow's root, want at least %d", n, later)
	}

	// Secrets planted in every place and encoding reports are searched for
	// reach no span, tag or event in any spelling.
	b3 := mcptap.NewBroker()
	sub3 := b3.Subscribe("traces", 4096)
	e3, err := Start(context.Background(), sub3, Options{OTLP: "http://" + otlp, TokenTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	planted := oauthtest.PlantedExchanges()
	for _, ex := range planted {
		b3.Publish(ex)
	}
	b3.Close()
	<-e3.Done()
	if e3.Traces.Exported() == 0 {
		t.Fatal("no flow of the planted traffic was exported")
	}
	all := jaegerTraces(t, query, planted, deadline, int(e3.Traces.Exported()), &logs)
	if !strings.Contains(all, `"/token"`) {
		t.Fatalf("the traces searched are not the planted traffic's:\n%.2000s", all)
	}
	for _, secret := range oauthtest.PlantedSecrets {
		for enc, form := range oauthtest.SecretForms(secret) {
			if strings.Contains(all, form) {
				t.Errorf("a span carries the secret %q (%s)", secret, enc)
			}
		}
	}
}

// jaegerTraces waits (bounded by deadline) until Jaeger holds at least n
// traces in the time of the recording exs and returns its answer as JSON.
func jaegerTraces(t *testing.T, query string, exs []mcptap.Exchange, deadline time.Time, n int, logs *strings.Builder) string {
	t.Helper()
	from, to := exs[0].Start.Add(-time.Hour).UnixMicro(), exs[len(exs)-1].Start.Add(time.Hour).UnixMicro()
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/traces?service=mcptap&limit=100&start=%d&end=%d", query, from, to))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var r struct {
				Data []json.RawMessage `json:"data"`
			}
			if json.Unmarshal(b, &r) == nil && len(r.Data) >= n {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger never had %d traces of the recording:\n%s", n, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jaegerSpans waits (bounded by deadline) for a trace of the recording exs
// (searched at its own times) whose spans satisfy ok, and returns them.
func jaegerSpans(t *testing.T, query string, exs []mcptap.Exchange, deadline time.Time, ok func([]jaegerSpan) bool, logs *strings.Builder) []jaegerSpan {
	t.Helper()
	from, to := exs[0].Start.Add(-time.Hour).UnixMicro(), exs[len(exs)-1].Start.Add(24*time.Hour).UnixMicro()
	for {
		resp, err := http.Get(fmt.Sprintf("http://%s/api/traces?service=mcptap&limit=20&start=%d&end=%d", query, from, to))
		if err == nil {
			var r struct {
				Data []struct {
					Spans []jaegerSpan `json:"spans"`
				} `json:"data"`
			}
			if json.NewDecoder(resp.Body).Decode(&r) == nil {
				for _, d := range r.Data {
					if ok(d.Spans) {
						resp.Body.Close()
						return d.Spans
					}
				}
			}
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger never had the trace:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
