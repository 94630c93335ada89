package telemetry

import (
	"context"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
)

// Options configure the telemetry consumer.
type Options struct {
	TokenTimeout time.Duration
	// Metrics turns the Prometheus metrics on (Exporters.Metrics).
	Metrics bool
	// Dropped reports exchanges the capture could not keep (the recorder
	// fell behind or failed): exported as mcptap_exchanges_dropped_total.
	Dropped func() uint64
	// OTLP, when set, exports a trace per flow to this OTLP/HTTP base URL
	// (Exporters.Traces).
	OTLP string
	// Broker, when set, exports every consumer's queue depth and drops
	// (the recorder's, the view's, this one's).
	Broker *mcptap.Broker
}

// Exporters are the running exporters: one consumer of the broker with one
// analysis feeding both, so turning both on costs one analysis, not two.
type Exporters struct {
	Metrics *Metrics // nil unless Options.Metrics
	Traces  *Traces  // nil unless Options.OTLP
	done    chan struct{}
	// lastRebuild is when the per-flow gauges were last rebuilt.
	lastRebuild time.Time
}

// Done is closed once the subscription ended, the last counts are in and the
// last traces were handed to the collector (or it gave up).
func (e *Exporters) Done() <-chan struct{} { return e.done }

// New sets up the exporters o turns on, without a consumer of their own: a
// view that analyses the traffic anyway (the line view) feeds them its
// analysis through Observed, Ticked and Finished, so that the proxy
// analyses each exchange once. sub is that view's subscription: its drops
// and queue are the exporters' own.
func New(ctx context.Context, sub *mcptap.Subscription, o Options) (*Exporters, error) {
	e := &Exporters{done: make(chan struct{})}
	if o.Metrics {
		e.Metrics = newMetrics(sub, o.Dropped)
		if o.Broker != nil {
			e.Metrics.watchBroker(o.Broker)
		}
	}
	if o.OTLP != "" {
		t, err := newTraces(ctx, o.OTLP)
		if err != nil {
			return nil, err
		}
		e.Traces = t
	}
	return e, nil
}

// Start consumes sub until it closes (or ctx ends) and feeds the exporters
// that o turns on from an analysis of its own.
func Start(ctx context.Context, sub *mcptap.Subscription, o Options) (*Exporters, error) {
	e, err := New(ctx, sub, o)
	if err != nil {
		return nil, err
	}
	// Forget: exchanges that can be in no flow are dropped as they pass,
	// so running for weeks does not grow; flows keep theirs.
	tr := oauth.NewTracker(oauth.Options{TokenTimeout: o.TokenTimeout, Forget: true})
	go func() {
		sub.Consume(ctx, mcptap.Consumer{
			Batch: func(batch []mcptap.Exchange) {
				for i := range batch {
					e.Observed(tr, &batch[i], tr.Observe(batch[i]))
				}
			},
			Rest: 100 * time.Millisecond,
			// Flows that ended are looked for once a second, not per batch:
			// rebuilding flows costs time in proportion to the recent ones.
			Every: time.Second,
			Tick:  func(now time.Time) { e.Ticked(tr, tr.Tick(now)) },
		})
		e.Finished(tr, tr.Finish())
	}()
	return e, nil
}

// Observed takes one exchange the analysis tr just observed, with the
// findings it raised. Called on the analysis' goroutine.
func (e *Exporters) Observed(tr *oauth.Tracker, ex *mcptap.Exchange, fs []mcptap.Finding) {
	kind, hop := tr.Hop(ex.ID)
	if e.Metrics != nil {
		e.Metrics.observe(ex, fs, kind, hop)
	}
	if t := e.Traces; t != nil && hop {
		// Only hops can be in a trace: those of a flow exported already
		// go out now, in its trace (an MCP call made with its token
		// later); the others wait for their flow, if the analysis keeps
		// them.
		if flow, ok := tr.FlowOf(ex.ID); ok && t.exported(flow) {
			t.late(flow, kind, ex)
		} else if tr.Known(ex.ID) {
			t.keep(ex)
		}
	}
	e.rebuild(tr, false)
}

// Ticked takes the findings of the analysis' clock and sends the flows
// that ended.
func (e *Exporters) Ticked(tr *oauth.Tracker, fs []mcptap.Finding) {
	if e.Metrics != nil {
		e.Metrics.count(fs)
	}
	e.rebuild(tr, false)
	if e.Traces != nil {
		e.Traces.export(tr, false)
	}
}

// Finished takes the analysis' last findings, sends every flow left and
// closes Done once the collector took them (or gave up).
func (e *Exporters) Finished(tr *oauth.Tracker, fs []mcptap.Finding) {
	defer close(e.done)
	if e.Metrics != nil {
		e.Metrics.count(fs)
	}
	e.rebuild(tr, true)
	if e.Traces != nil {
		e.Traces.export(tr, true)
		e.Traces.shutdown()
	}
}

// rebuild sets the per-flow gauges from the analysis at most every
// flowsEvery (Flows costs time in proportion to the recent flows).
func (e *Exporters) rebuild(tr *oauth.Tracker, force bool) {
	if e.Metrics != nil && (force || time.Since(e.lastRebuild) >= flowsEvery) {
		e.Metrics.rebuild(tr)
		e.lastRebuild = time.Now()
	}
}
