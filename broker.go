package mcptap

import (
	"sync"
	"sync/atomic"
)

// Broker fans exchanges out from the proxy to its consumers (recorder,
// analysis, UI). Publish never blocks: each subscriber has a bounded buffer,
// and an exchange that does not fit is dropped for that subscriber and counted.
// Drops are reported through Dropped, never hidden.
type Broker struct {
	mu     sync.RWMutex
	subs   []*Subscription
	closed bool
}

// Subscription is one consumer's view of a Broker.
type Subscription struct {
	Name    string
	C       <-chan Exchange
	c       chan Exchange
	dropped atomic.Uint64
}

// Dropped is how many exchanges this subscriber missed because its buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// NewBroker returns an empty Broker.
func NewBroker() *Broker { return &Broker{} }

// Subscribe adds a consumer with a buffer of n exchanges. Subscribe before the
// first Publish to see every exchange.
func (b *Broker) Subscribe(name string, n int) *Subscription {
	c := make(chan Exchange, n)
	s := &Subscription{Name: name, C: c, c: c}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(c)
	}
	b.subs = append(b.subs, s)
	return s
}

// Publish hands ex to every subscriber without waiting. After Close it is a no-op.
func (b *Broker) Publish(ex Exchange) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	for _, s := range b.subs {
		select {
		case s.c <- ex:
		default:
			s.dropped.Add(1)
		}
	}
}

// SubscriberStats is one subscriber's queue: what waits in its buffer and
// what it missed.
type SubscriberStats struct {
	Name            string
	Queued, Dropped int
}

// Stats lists every subscriber's queue depth and drops, in subscription order.
func (b *Broker) Stats() []SubscriberStats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]SubscriberStats, len(b.subs))
	for i, s := range b.subs {
		out[i] = SubscriberStats{Name: s.Name, Queued: len(s.c), Dropped: int(s.Dropped())}
	}
	return out
}

// Dropped is the total number of drops over all subscribers.
func (b *Broker) Dropped() uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var n uint64
	for _, s := range b.subs {
		n += s.Dropped()
	}
	return n
}

// Close closes every subscriber's channel once the publishers are done, so
// consumers drain what is buffered and then stop.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, s := range b.subs {
		close(s.c)
	}
}
