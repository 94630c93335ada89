package mcptap

import (
	"context"
	"time"
)

// Consumer says what Consume does with a subscription's publications.
type Consumer struct {
	// Batch receives what queued since the last call, in publication
	// order, never empty. The slice is the consumer's to keep.
	Batch func([]Exchange)
	// Idle, if set, runs after a batch when nothing else waits (the line
	// view flushes its output there).
	Idle func()
	// Rest is how long Consume pauses after catching up before it waits
	// again. Under load a consumer then wakes once per Rest and takes what
	// queued meanwhile, rather than once per publication (a scheduler
	// wakeup each, which costs the proxy's cores more than the consumer's
	// own work). The subscription's buffer must hold Rest's worth of traffic.
	Rest time.Duration
	// Every and Tick, if both set, run Tick with the wall clock every Every
	// (time-based rules fire with no new traffic).
	Every time.Duration
	Tick  func(now time.Time)
}

// Consume is the one consumer loop behind the line view, the TUI and every
// other analysing consumer of the broker. It returns true once the
// subscription has closed and its last batch was handed over, false when ctx
// ended first.
func (s *Subscription) Consume(ctx context.Context, c Consumer) bool {
	var tick <-chan time.Time
	if c.Every > 0 && c.Tick != nil {
		t := time.NewTicker(c.Every)
		defer t.Stop()
		tick = t.C
	}
	var rest *time.Timer
	for {
		select {
		case ex, ok := <-s.C:
			if !ok {
				return true
			}
			batch, closed := s.drain(append(make([]Exchange, 0, 1+len(s.C)), ex))
			c.Batch(batch)
			if closed {
				return true
			}
			if len(s.C) > 0 {
				continue
			}
			if c.Idle != nil {
				c.Idle()
			}
			if c.Rest > 0 {
				if rest == nil {
					rest = time.NewTimer(c.Rest)
					defer rest.Stop()
				} else {
					rest.Reset(c.Rest)
				}
				select {
				case <-rest.C:
				case <-ctx.Done():
					return false
				}
			}
		case now := <-tick:
			c.Tick(now)
		case <-ctx.Done():
			return false
		}
	}
}

// drain appends what is queued without waiting; closed says the channel closed.
func (s *Subscription) drain(batch []Exchange) ([]Exchange, bool) {
	for {
		select {
		case ex, ok := <-s.C:
			if !ok {
				return batch, true
			}
			batch = append(batch, ex)
		default:
			return batch, false
		}
	}
}
