package lab

import (
	"context"
	"errors"
	"fmt"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/recorder"
)

// RecordOptions adjust Record for the demo.
type RecordOptions struct {
	// Broker is the capture's broker (subscribe views before Record); nil
	// means a new one.
	Broker *mcptap.Broker
	// FixedPorts asks for the clients' well-known callback ports (VS Code's
	// 33418) where they are free; if binding fails, any free port is used.
	FixedPorts bool
	// Started, if set, is told the capture runs (before any scenario).
	Started func(c *live.Capture)
	// Progress is Plan.Run's progress callback.
	Progress func(w *World, res *Result, err error)
	// View, if set, runs beside the scenarios (the live TUI); when it
	// returns, scenarios still running are cancelled. The plan names the
	// scenario of each exchange (Plan.ScenarioOf).
	View func(ctx context.Context, c *live.Capture, p *Plan) error
}

// Record runs scs one after the other behind a live capture of the real
// proxy (broker and bbolt recorder) into store, as session sess, and
// returns the plan, still serving (Close it), and the exchanges as stored.
// The capture is stopped before it returns, so they are all committed. A
// run cut short by ctx (Ctrl-C in the demo) is not an error: what was
// recorded is returned.
func Record(ctx context.Context, store *recorder.Store, sess mcptap.Session, scs []Scenario, opts RecordOptions) (*Plan, []mcptap.Exchange, error) {
	plan, err := NewPlan(scs)
	if err != nil {
		return nil, nil, err
	}
	cfg := live.Config{Store: store, Session: sess, Broker: opts.Broker}
	plan.FixedPorts = opts.FixedPorts
	cfg.Proxy = plan.ProxyConfig()
	c, err := live.Start(cfg)
	if err != nil && opts.FixedPorts {
		plan.FixedPorts = false
		cfg.Proxy = plan.ProxyConfig()
		c, err = live.Start(cfg)
	}
	if err != nil {
		plan.Close()
		return nil, nil, fmt.Errorf("start capture: %w", err)
	}
	err = plan.Bind(c.Addrs())
	if err == nil {
		if opts.Started != nil {
			opts.Started(c)
		}
		err = runBeside(ctx, plan, c, opts)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := c.Stop(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop capture: %w", serr))
	}
	if err != nil {
		plan.Close()
		return nil, nil, err
	}
	var exs []mcptap.Exchange
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		plan.Close()
		return nil, nil, fmt.Errorf("read session %s: %w", sess.ID, err)
	}
	return plan, exs, nil
}

// runBeside runs the plan, and the view beside it when there is one.
func runBeside(ctx context.Context, plan *Plan, c *live.Capture, opts RecordOptions) error {
	if opts.View == nil {
		_, err := plan.Run(ctx, opts.Progress)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := plan.Run(rctx, opts.Progress)
		done <- err
	}()
	viewErr := opts.View(rctx, c, plan)
	cancel() // the user left the view: stop what is still running
	runErr := <-done
	if rctx.Err() != nil {
		runErr = nil
	}
	return errors.Join(runErr, viewErr)
}
