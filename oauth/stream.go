package oauth

import "github.com/mcptap/mcptap"

// Stream analyses a recording while it is being read, on a goroutine of its
// own, so that reading (a HAR file's JSON, a session's records) and the
// analysis share the machine's cores instead of taking turns. Its result is
// Batch's, exactly: the exchanges are observed as they come for as long as
// they come in Batch's order (InOrder: start time, then ID) and numbered
// from 0 without a gap; the first that breaks either (a file whose entries
// are not in time order, a reader that starts over) stops the stream, and
// Finish runs Batch over everything instead.
type Stream struct {
	opts Options
	in   chan mcptap.Exchange
	done chan *Tracker
	last mcptap.Exchange
	n    int
	off  bool
}

// NewStream starts a stream analysis with opts.
func NewStream(opts Options) *Stream {
	s := &Stream{opts: opts, in: make(chan mcptap.Exchange, 1024), done: make(chan *Tracker, 1)}
	go func() {
		t := NewTracker(opts)
		for ex := range s.in {
			t.Observe(ex)
		}
		s.done <- t
	}()
	return s
}

// Feed hands the reader's i-th exchange (from 0) to the analysis. Call it
// from one goroutine, in the order the reader produces them.
func (s *Stream) Feed(i int, ex mcptap.Exchange) {
	if s.off {
		return
	}
	if i != s.n || (s.n > 0 && inOrderLess(&ex, &s.last)) {
		s.off = true
		return
	}
	s.last = ex
	s.n++
	s.in <- ex
}

// Finish ends the stream and returns the finished analysis of exs, all the
// reader produced: the stream's when it saw exactly exs in Batch's order,
// Batch(exs) otherwise.
func (s *Stream) Finish(exs []mcptap.Exchange) *Tracker {
	close(s.in)
	t := <-s.done
	if s.off || s.n != len(exs) {
		return Batch(exs, s.opts)
	}
	t.Finish()
	return t
}
