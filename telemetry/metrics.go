// Package telemetry exports what mcptap sees to the observability stack a
// team already runs: Prometheus metrics of the OAuth flows (this file). It is
// a consumer of the broker like the recorder: it runs its own analysis in its
// own goroutine, so a slow scraper never slows the proxy, and its labels are
// bounded (client names, hop kinds, rule IDs, severities, fault sides: never a
// value from the traffic, never a token, code or state).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// Funnel stages, in the order a connector setup goes through them.
var funnel = []struct {
	stage string
	kinds []mcptap.HopKind
}{
	{"challenge", []mcptap.HopKind{mcptap.HopMCPUnauthenticated}},
	{"metadata", []mcptap.HopKind{mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth}},
	{"register", []mcptap.HopKind{mcptap.HopRegister}},
	{"authorize", []mcptap.HopKind{mcptap.HopAuthorize}},
	{"token", []mcptap.HopKind{mcptap.HopToken}},
	{"authenticated_call", []mcptap.HopKind{mcptap.HopMCP}},
}

// Metrics is the Prometheus registry of the flows, fed by the telemetry
// consumer (Start).
type Metrics struct {
	reg *prometheus.Registry

	exchanges *prometheus.CounterVec   // by mode
	hops      *prometheus.CounterVec   // by kind
	hopTime   *prometheus.HistogramVec // by kind
	findings  *prometheus.CounterVec   // by rule, severity, fault
	funnel    *prometheus.GaugeVec     // flows that reached each stage, by client
	flows     *prometheus.GaugeVec     // flows by client, verdict rule, fault
	refresh   *prometheus.CounterVec   // refresh outcomes
	// registrations counts the registrations in the recent flows, by
	// client: against the funnel's connects, the registrations per connect
	// (DCR churn until a quota runs out).
	registrations *prometheus.GaugeVec
}

// flowsEvery is how often the per-flow gauges are rebuilt from the analysis
// (Flows costs time in proportion to the recent flows).
const flowsEvery = 5 * time.Second

// newMetrics builds the registry; the telemetry consumer (Start) feeds it.
func newMetrics(sub *mcptap.Subscription, dropped func() uint64) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcptap_exchanges_total",
		Help: "Exchanges seen complete, by listener mode (reverse: the tunnel; forward: the browser proxy)."}, []string{"mode"})
	m.hops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcptap_oauth_hops_total",
		Help: "Exchanges the analysis classified as an OAuth or MCP hop, by hop kind."}, []string{"kind"})
	m.hopTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mcptap_oauth_hop_duration_seconds",
		Help: "Duration of OAuth and MCP hops (request start to response end), by hop kind.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"kind"})
	m.findings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcptap_oauth_findings_total",
		Help: "Findings raised, by rule ID, severity and fault side."}, []string{"rule", "severity", "fault"})
	m.funnel = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcptap_oauth_funnel_flows",
		Help: "Flows among the recent ones that reached each stage of the connector setup, by client."}, []string{"client", "stage"})
	m.flows = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcptap_oauth_flows",
		Help: "Recent flows by client, verdict rule and fault side."}, []string{"client", "verdict", "fault"})
	m.refresh = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mcptap_oauth_refresh_total",
		Help: "Refresh-token requests by outcome (ok: 2xx, error: otherwise)."}, []string{"outcome"})
	m.registrations = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mcptap_oauth_registrations",
		Help: "Client registrations among the recent flows, by client (divide by the funnel's authenticated_call for registrations per connect)."}, []string{"client"})
	m.reg.MustRegister(m.exchanges, m.hops, m.hopTime, m.findings, m.funnel, m.flows, m.refresh, m.registrations)
	if dropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mcptap_exchanges_dropped_total",
			Help: "Exchanges the capture could not record (the recorder fell behind, or its writes failed)."},
			func() float64 { return float64(dropped()) }))
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mcptap_telemetry_skipped_total",
		Help: "Exchanges the consumer feeding the exporters (the line view's, or their own beside the TUI) skipped because it fell behind (the proxy never waits for it)."},
		func() float64 { return float64(sub.Dropped()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mcptap_telemetry_queue_depth",
		Help: "Exchanges waiting for the consumer feeding the exporters."}, func() float64 { return float64(len(sub.C)) }))
	return m
}

// observe counts an exchange the analysis just saw, with the findings it raised.
func (m *Metrics) observe(ex *mcptap.Exchange, fs []mcptap.Finding, kind mcptap.HopKind, hop bool) {
	m.count(fs)
	if !ex.Complete {
		return
	}
	m.exchanges.WithLabelValues(string(ex.Mode)).Inc()
	if !hop {
		return
	}
	m.hops.WithLabelValues(string(kind)).Inc()
	if !ex.End.IsZero() && !ex.Start.IsZero() {
		m.hopTime.WithLabelValues(string(kind)).Observe(ex.End.Sub(ex.Start).Seconds())
	}
	if kind == mcptap.HopRefresh {
		outcome := "error"
		if ex.Status >= 200 && ex.Status < 300 {
			outcome = "ok"
		}
		m.refresh.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) count(fs []mcptap.Finding) {
	for _, f := range fs {
		m.findings.WithLabelValues(string(f.Rule), string(f.Severity), string(f.Fault)).Inc()
	}
}

// rebuild sets the per-flow gauges from the flows the analysis holds.
func (m *Metrics) rebuild(tr *oauth.Tracker) {
	m.funnel.Reset()
	m.flows.Reset()
	m.registrations.Reset()
	for _, f := range tr.Flows() {
		client := f.Client
		if client == "" {
			client = oauth.ClientUnknown
		}
		m.flows.WithLabelValues(client, string(f.Verdict.Rule), string(f.Verdict.Fault)).Inc()
		seen := map[mcptap.HopKind]bool{}
		for _, h := range f.Hops {
			seen[h.Kind] = true
			if h.Kind == mcptap.HopRegister {
				m.registrations.WithLabelValues(client).Inc()
			}
		}
		for _, st := range funnel {
			for _, k := range st.kinds {
				if seen[k] {
					m.funnel.WithLabelValues(client, st.stage).Inc()
					break
				}
			}
		}
	}
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Serve serves the metrics on addr (loopback unless allowRemote) at
// /metrics until ctx ends; it returns the bound address at once.
func (m *Metrics) Serve(ctx context.Context, addr string, allowRemote bool) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if !allowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("metrics address %q is not loopback; pass --allow-remote to expose it", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; the proxy goes on without metrics
		}
	}()
	return ln.Addr().String(), nil
}

// watchBroker exports the broker's consumers' queue depths and drops.
func (m *Metrics) watchBroker(b *mcptap.Broker) {
	m.reg.MustRegister(brokerCollector{b})
}

var (
	queueDesc = prometheus.NewDesc("mcptap_broker_queue_depth", "Exchanges waiting in each broker consumer's buffer (recorder, view, telemetry).", []string{"consumer"}, nil)
	dropDesc  = prometheus.NewDesc("mcptap_broker_dropped_total", "Exchanges each broker consumer missed because its buffer was full (the proxy never waits).", []string{"consumer"}, nil)
)

// brokerCollector reads the broker's stats at each scrape.
type brokerCollector struct{ b *mcptap.Broker }

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc; ch <- dropDesc }

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.b.Stats() {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(s.Queued), s.Name)
		ch <- prometheus.MustNewConstMetric(dropDesc, prometheus.CounterValue, float64(s.Dropped), s.Name)
	}
}
