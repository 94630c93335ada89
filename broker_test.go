package mcptap

import (
	"sync"
	"testing"
)

func TestBrokerFansOutAndCountsDrops(t *testing.T) {
	b := NewBroker()
	fast := b.Subscribe("fast", 100)
	slow := b.Subscribe("slow", 2)
	for i := 0; i < 10; i++ {
		b.Publish(Exchange{ID: NewID(testTime), Seq: uint64(i)})
	}
	b.Close()
	b.Publish(Exchange{}) // after Close: ignored, no panic
	var got int
	for range fast.C {
		got++
	}
	if got != 10 || fast.Dropped() != 0 {
		t.Fatalf("fast subscriber got %d (dropped %d), want 10 (0)", got, fast.Dropped())
	}
	var slowGot int
	for range slow.C {
		slowGot++
	}
	if slowGot != 2 || slow.Dropped() != 8 || b.Dropped() != 8 {
		t.Fatalf("slow subscriber got %d, dropped %d, broker total %d; want 2, 8, 8", slowGot, slow.Dropped(), b.Dropped())
	}
}

func TestBrokerConcurrentPublish(t *testing.T) {
	b := NewBroker()
	s := b.Subscribe("all", 64*100)
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				b.Publish(Exchange{})
			}
		}()
	}
	wg.Wait()
	b.Close()
	n := 0
	for range s.C {
		n++
	}
	if n != 6400 {
		t.Fatalf("got %d exchanges, want 6400", n)
	}
}

// Stats shows each subscriber's queue and drops.
func TestBrokerStats(t *testing.T) {
	b := NewBroker()
	b.Subscribe("recorder", 4)
	b.Subscribe("view", 1)
	for range 3 {
		b.Publish(Exchange{})
	}
	got := b.Stats()
	want := []SubscriberStats{{Name: "recorder", Queued: 3, Dropped: 0}, {Name: "view", Queued: 1, Dropped: 2}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}
