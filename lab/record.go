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

// Record runs scs one after the other behind a live capture of the real
// proxy (broker and bbolt recorder) into store, as session sess, and
// returns the plan, still serving (Close it), and the exchanges as stored.
// The capture is stopped before it returns, so they are all committed.
func Record(ctx context.Context, store *recorder.Store, sess mcptap.Session, scs []Scenario) (*Plan, []mcptap.Exchange, error) {
	plan, err := NewPlan(scs)
	if err != nil {
		return nil, nil, err
	}
	c, err := live.Start(live.Config{Store: store, Session: sess, Proxy: plan.ProxyConfig()})
	if err != nil {
		plan.Close()
		return nil, nil, err
	}
	err = plan.Bind(c.Addrs())
	if err == nil {
		_, err = plan.Run(ctx, nil)
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
		return nil, nil, err
	}
	return plan, exs, nil
}
