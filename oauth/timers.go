package oauth

import (
	"container/heap"
	"time"
)

// timer is one flow's deadline on the timer heap.
type timer struct {
	at time.Time
	f  *flow
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }

func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *timerHeap) Push(x any) { *h = append(*h, x.(timer)) }

func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// wait puts f on a timer (code → token, or token → first bearer).
func (t *Tracker) wait(set map[*flow]bool, f *flow, since time.Time) {
	set[f] = true
	f.dirty = true // WaitingSince
	heap.Push(&t.timers, timer{at: since.Add(t.opts.TokenTimeout), f: f})
}

// unwait takes f off a timer.
func (t *Tracker) unwait(set map[*flow]bool, f *flow) {
	if set[f] {
		delete(set, f)
		f.dirty = true
	}
}

// waiting says whether f is on either timer.
func (t *Tracker) waiting(f *flow) bool { return t.waitCode[f] || t.waitBearer[f] }

// deadline is the earliest time a waiting flow's timer runs out (zero when
// nothing waits), so Observe and Tick skip the timed rules until then.
func (t *Tracker) deadline() time.Time {
	for len(t.timers) > 0 && !t.waiting(t.timers[0].f) {
		heap.Pop(&t.timers)
	}
	if len(t.timers) == 0 {
		return time.Time{}
	}
	return t.timers[0].at
}

// expired pops the flows whose timers ran out by now, each once.
func (t *Tracker) expired() []*flow {
	var fs []*flow
	seen := map[*flow]bool{}
	for len(t.timers) > 0 && !t.timers[0].at.After(t.now) {
		tm := heap.Pop(&t.timers).(timer)
		if t.waiting(tm.f) && !seen[tm.f] {
			seen[tm.f] = true
			fs = append(fs, tm.f)
		}
	}
	return fs
}
