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
}

// Done is closed once the subscription ended, the last counts are in and the
// last traces were handed to the collector (or it gave up).
func (e *Exporters) Done() <-chan struct{} { return e.done }

// Start consumes sub until it closes (or ctx ends) and feeds the exporters
// that o turns on.
func Start(ctx context.Context, sub *mcptap.Subscription, o Options) (*Exporters, error) {
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
	// Forget: exchanges that can be in no flow are dropped as they pass,
	// so running for weeks does not grow; flows keep theirs.
	tr := oauth.NewTracker(oauth.Options{TokenTimeout: o.TokenTimeout, Forget: true})
	m, t := e.Metrics, e.Traces
	go func() {
		defer close(e.done)
		var last time.Time // of the last rebuild of the per-flow gauges
		rebuild := func(force bool) {
			if m != nil && (force || time.Since(last) >= flowsEvery) {
				m.rebuild(tr)
				last = time.Now()
			}
		}
		sub.Consume(ctx, mcptap.Consumer{
			Batch: func(batch []mcptap.Exchange) {
				for i := range batch {
					ex := &batch[i]
					fs := tr.Observe(*ex)
					kind, hop := tr.Hop(ex.ID)
					if m != nil {
						m.observe(ex, fs, kind, hop)
					}
					if t != nil && hop {
						// Only hops can be in a trace: those of a flow
						// exported already go out now, in its trace (an
						// MCP call made with its token later); the others
						// wait for their flow, if the analysis keeps them.
						if flow, ok := tr.FlowOf(ex.ID); ok && t.exported(flow) {
							t.late(flow, kind, ex)
						} else if tr.Known(ex.ID) {
							t.keep(ex)
						}
					}
				}
				rebuild(false)
			},
			Rest: 100 * time.Millisecond,
			// Flows that ended are looked for once a second, not per batch:
			// rebuilding flows costs time in proportion to the recent ones.
			Every: time.Second,
			Tick: func(now time.Time) {
				fs := tr.Tick(now)
				if m != nil {
					m.count(fs)
				}
				rebuild(false)
				if t != nil {
					t.export(tr, false)
				}
			},
		})
		fs := tr.Finish()
		if m != nil {
			m.count(fs)
		}
		rebuild(true)
		if t != nil {
			t.export(tr, true)
			t.shutdown()
		}
	}()
	return e, nil
}
