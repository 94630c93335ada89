package telemetry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// Traces exports one OpenTelemetry trace per OAuth flow over OTLP/HTTP: a
// root span oauth.flow (client, verdict rule, severity and fault; findings as
// events) with a child span per hop carrying the stable HTTP server
// attributes, and MCP calls named after the MCP conventions. Spans hold no
// token, code, verifier, state, cookie or Authorization: paths without their
// query, keyed hashes where a value must correlate (the MCP session).
//
// The telemetry consumer (Start) feeds it from its analysis. A flow is
// exported once it ends (complete or failed) and the rest at the end of the
// recording; MCP calls that arrive after its export (a token used for days)
// go out one by one as spans of the same trace, children of its root span,
// as long as the flow is among the last maxSent exported. The SDK's batch
// processor sends in the background and drops what a dead collector cannot
// take: the proxy never waits.
type Traces struct {
	tp        *sdktrace.TracerProvider
	tracer    trace.Tracer
	key       []byte
	heads     map[string]head              // exchanges of flows not exported yet
	sent      map[string]trace.SpanContext // exported flows' root spans, for the calls after
	order     []string                     // sent's flows, oldest first (bounded by maxSent)
	failed    atomic.Uint64                // spans the collector did not take
	flowsIn   atomic.Uint64
	lateSpans atomic.Uint64
}

// head is what a span needs of an exchange.
type head struct {
	method, path, host, scheme string
	status                     int
	start, end                 time.Time
	mcpMethod, rpcID, session  string
	err                        string
}

// maxHeads bounds the exchanges kept for flows not yet exported, and
// maxSent the exported flows whose later MCP calls still join their trace.
const (
	maxHeads = 100_000
	maxSent  = 100_000
)

// newTraces sets up the OTLP/HTTP exporter for endpoint (a base URL; empty
// uses the OTEL_EXPORTER_OTLP_* environment); the telemetry consumer feeds it.
func newTraces(ctx context.Context, endpoint string) (*Traces, error) {
	var opts []otlptracehttp.Option
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("otlp: %q is not an http(s) URL", endpoint)
		}
		// A base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the traces path
		// goes after it unless it is named.
		if !strings.HasSuffix(u.Path, "/v1/traces") {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	}
	// The SDK reports export failures through a global handler that
	// writes to stderr (and would tear through the TUI); they are counted
	// here instead (Failed) and reported at the stop.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp: %w", err)
	}
	t := &Traces{heads: map[string]head{}, sent: map[string]trace.SpanContext{}}
	t.key = make([]byte, 32)
	_, _ = rand.Read(t.key)
	res := resource.NewSchemaless(attribute.String("service.name", "mcptap"))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(&countingExporter{SpanExporter: exp, failed: &t.failed}), sdktrace.WithResource(res))
	t.tracer = t.tp.Tracer("github.com/mcptap/mcptap/telemetry")
	return t, nil
}

// shutdown flushes what the batch processor still holds.
func (t *Traces) shutdown() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.tp.Shutdown(sctx)
}

// Failed is how many spans the collector did not take.
func (t *Traces) Failed() uint64 { return t.failed.Load() }

// Exported is how many flows were exported.
func (t *Traces) Exported() uint64 { return t.flowsIn.Load() }

func (t *Traces) keep(ex *mcptap.Exchange) {
	if len(t.heads) >= maxHeads {
		return // a flood of flows that never end: their traces lose hop details
	}
	t.heads[ex.ID] = t.headOf(ex)
}

// exported says whether flow was exported already.
func (t *Traces) exported(flow string) bool {
	_, ok := t.sent[flow]
	return ok
}

// late sends the span of a hop of a flow exported already (an MCP call made
// with its token later), as a child of the flow's root span. Only its
// complete copy goes out, once.
func (t *Traces) late(flow string, kind mcptap.HopKind, ex *mcptap.Exchange) {
	sc, ok := t.sent[flow]
	if !ok || !(ex.Complete || ex.Err != "") {
		return
	}
	delete(t.heads, ex.ID)
	hd := t.headOf(ex)
	sp := t.hopSpan(trace.ContextWithSpanContext(context.Background(), sc), kind, false, hd)
	markFailed(sp, hd)
	sp.End(trace.WithTimestamp(hd.spanEnd()))
	t.lateSpans.Add(1)
}

// markFailed marks a hop's span failed by its own answer: a transport
// error or a 5xx.
func markFailed(sp trace.Span, hd head) {
	switch {
	case hd.err != "":
		sp.SetAttributes(attribute.String("error.type", "transport"))
		sp.SetStatus(codes.Error, "transport error")
	case hd.status >= 500:
		sp.SetAttributes(attribute.String("error.type", fmt.Sprint(hd.status)))
		sp.SetStatus(codes.Error, "")
	}
}

func (h head) spanEnd() time.Time {
	if h.end.IsZero() {
		return h.start
	}
	return h.end
}

// LateSpans is how many spans went out for hops after their flow's export.
func (t *Traces) LateSpans() uint64 { return t.lateSpans.Load() }

// headOf is what a span needs of ex: no query, no token, the MCP session as
// a keyed hash.
func (t *Traces) headOf(ex *mcptap.Exchange) head {
	path, _, _ := strings.Cut(ex.Target, "?")
	if u, err := url.Parse(ex.Target); err == nil && u.IsAbs() {
		path = u.Path
	}
	h := head{method: ex.Method, path: path, host: ex.Host, scheme: ex.Scheme, status: ex.Status, start: ex.Start, end: ex.End, err: ex.Err}
	if h.end.IsZero() {
		h.end = ex.ResponseAt
	}
	var rpc struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
	}
	if len(ex.ReqBody) > 0 && json.Unmarshal(ex.ReqBody, &rpc) == nil && rpc.Method != "" {
		h.mcpMethod = rpc.Method
		if len(rpc.ID) > 0 && string(rpc.ID) != "null" {
			h.rpcID = strings.Trim(string(rpc.ID), `"`)
		}
	}
	if sid := ex.ReqHeader.Get("Mcp-Session-Id"); sid != "" {
		m := hmac.New(sha256.New, t.key)
		m.Write([]byte(sid))
		h.session = hex.EncodeToString(m.Sum(nil))[:16]
	}
	return h
}

// export sends every flow that ended (all of them at the end) once.
func (t *Traces) export(tr *oauth.Tracker, all bool) {
	var findings map[string][]mcptap.Finding
	for _, f := range tr.Flows() {
		if t.exported(f.ID) || (!all && f.Status == mcptap.FlowInProgress) || len(f.Hops) == 0 {
			continue
		}
		if findings == nil {
			findings = map[string][]mcptap.Finding{}
			for _, fd := range tr.Findings() {
				findings[fd.Flow] = append(findings[fd.Flow], fd)
			}
		}
		t.flowsIn.Add(1)
		t.remember(f.ID, t.exportFlow(f, findings[f.ID]))
		for _, h := range f.Hops {
			delete(t.heads, h.Exchange)
		}
	}
}

// remember keeps an exported flow's root span for its later calls, and
// forgets the oldest past maxSent.
func (t *Traces) remember(flow string, sc trace.SpanContext) {
	t.sent[flow] = sc
	t.order = append(t.order, flow)
	if len(t.order) > maxSent {
		delete(t.sent, t.order[0])
		t.order = t.order[1:]
	}
}

// hopSpan starts the span of one hop under ctx: the stable HTTP server
// attributes, and an MCP call named after its mcp.method.name.
func (t *Traces) hopSpan(ctx context.Context, kind mcptap.HopKind, inner bool, hd head) trace.Span {
	name := hd.method + " " + string(kind)
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", hd.method),
		attribute.String("url.path", hd.path),
		attribute.String("url.scheme", hd.scheme),
		attribute.String("server.address", hd.host),
		attribute.String("mcptap.hop.kind", string(kind)),
	}
	if inner {
		attrs = append(attrs, attribute.Bool("mcptap.hop.inner", true))
	}
	if hd.status > 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", hd.status))
	}
	if (kind == mcptap.HopMCP || kind == mcptap.HopMCPUnauthenticated) && hd.mcpMethod != "" {
		name = hd.mcpMethod // the MCP conventions' {mcp.method.name} (the target is not read)
		attrs = append(attrs, attribute.String("mcp.method.name", hd.mcpMethod))
		if hd.rpcID != "" {
			attrs = append(attrs, attribute.String("jsonrpc.request.id", hd.rpcID))
		}
		if hd.session != "" {
			attrs = append(attrs, attribute.String("mcp.session.id", hd.session))
		}
	}
	_, sp := t.tracer.Start(ctx, name, trace.WithTimestamp(hd.start), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return sp
}

func (t *Traces) exportFlow(f mcptap.Flow, fds []mcptap.Finding) trace.SpanContext {
	start, end := f.Started, f.Updated
	for _, h := range f.Hops {
		if hd, ok := t.heads[h.Exchange]; ok && hd.end.After(end) {
			end = hd.end
		}
	}
	client := f.Client
	if client == "" {
		client = oauth.ClientUnknown
	}
	ctx, root := t.tracer.Start(context.Background(), "oauth.flow", trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("mcptap.flow.client", client),
			attribute.String("mcptap.flow.status", string(f.Status)),
			attribute.String("mcptap.verdict.rule", string(f.Verdict.Rule)),
			attribute.String("mcptap.verdict.severity", string(f.Verdict.Severity)),
			attribute.String("mcptap.verdict.fault", string(f.Verdict.Fault)),
		))
	broken, missing := -1, mcptap.HopKind("")
	var verdictAt time.Time
	for _, fd := range fds {
		root.AddEvent("finding", trace.WithTimestamp(fd.At), trace.WithAttributes(
			attribute.String("mcptap.rule", string(fd.Rule)),
			attribute.String("mcptap.severity", string(fd.Severity)),
			attribute.String("mcptap.fault", string(fd.Fault)),
			attribute.String("error.type", string(fd.Rule)),
		))
		if fd.Rule == f.Verdict.Rule {
			broken, missing, _ = oauth.BrokenHop(f, fd)
			verdictAt = fd.At
		}
	}
	if f.Verdict.Severity == mcptap.SevError {
		root.SetStatus(codes.Error, string(f.Verdict.Rule))
		root.SetAttributes(attribute.String("error.type", string(f.Verdict.Rule)))
	}
	lastEnd := start
	for i, h := range f.Hops {
		hd, ok := t.heads[h.Exchange]
		if !ok {
			continue
		}
		sp := t.hopSpan(ctx, h.Kind, h.Inner, hd)
		switch {
		case i == broken && f.Verdict.Severity == mcptap.SevError:
			sp.SetAttributes(attribute.String("error.type", string(f.Verdict.Rule)))
			sp.SetStatus(codes.Error, string(f.Verdict.Rule))
		default:
			markFailed(sp, hd)
		}
		e := hd.spanEnd()
		if e.After(lastEnd) {
			lastEnd = e
		}
		sp.End(trace.WithTimestamp(e))
	}
	if missing != "" {
		// the hop that never came, from the last one to when the rule gave up on it
		if verdictAt.Before(lastEnd) {
			verdictAt = lastEnd
		}
		_, sp := t.tracer.Start(ctx, "missing "+string(missing), trace.WithTimestamp(lastEnd), trace.WithAttributes(
			attribute.String("mcptap.hop.kind", string(missing)),
			attribute.Bool("mcptap.hop.missing", true),
			attribute.String("error.type", string(f.Verdict.Rule)),
		))
		sp.SetStatus(codes.Error, string(f.Verdict.Rule))
		sp.End(trace.WithTimestamp(verdictAt))
		if verdictAt.After(end) {
			end = verdictAt
		}
	}
	root.End(trace.WithTimestamp(end))
	return root.SpanContext()
}

// countingExporter counts the spans the collector did not take.
type countingExporter struct {
	sdktrace.SpanExporter
	failed *atomic.Uint64
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		c.failed.Add(uint64(len(spans)))
	}
	return err
}
