package recorder

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
)

// Writer is the one goroutine that stores what a channel delivers. It
// commits in groups with fsync on: a transaction starts once
// Options.BatchSize distinct exchanges have arrived or Options.BatchWait has
// passed since the first one, and then also takes everything already
// waiting in the channel (what queued during the previous commit), up to
// MaxGroup exchanges or MaxGroupBytes of bodies. Under light traffic that is
// the plain batch; under load one fsync covers all that queued behind the
// last one, so the writer's cost per exchange falls as the rate rises. Under
// sustained load the writer also sleeps until minCommitGap after the previous
// transaction began, leaving publications in the channel: give it a buffer
// that holds at least that long's traffic (live's default holds 8192).
type Writer struct {
	s    *Store
	c    <-chan mcptap.Exchange
	in   chan queued // from the journaler to the committer
	kick chan struct{}
	// committed is the sequence number of the last publication the
	// committer has finished with (stored or counted as lost).
	committed atomic.Uint64
	done      chan struct{}
	mu        sync.Mutex
	err       error
	stored    atomic.Uint64
	batches   atomic.Uint64
	lost      atomic.Uint64
	onFail    func(err error, lost int)
}

// MaxGroup bounds the distinct exchanges of one write transaction, and
// MaxGroupBytes the body bytes it carries (checked after each exchange is
// added): they bound the memory a transaction pins and what a crash during
// it can lose.
const (
	MaxGroup      = 1024
	MaxGroupBytes = 16 << 20
)

// minCommitGap paces transactions under heavy traffic: a group that reaches
// Options.BatchSize waits until this long after the previous transaction
// began (never past Options.BatchWait), taking in what arrives meanwhile.
// Each commit costs two fdatasyncs and rewrites the partial last pages. An
// fdatasync also keeps its scheduler P for its whole duration (sysmon, which
// hands a P blocked in a syscall to other goroutines, backs off to 10ms
// ticks when it has had nothing to do; golang/go#18236), so on a 2-core
// machine every fsync takes half the proxy's CPU away until it returns, so
// fewer, larger commits leave the proxy more of it (bench/NOTES.md has the
// measurements behind 50ms). Traffic below BatchSize per gap (1,280
// exchanges/s at the defaults) never waits.
const minCommitGap = 50 * time.Millisecond

// Record starts a writer that drains c until it is closed. Each exchange is
// upserted by ID into the session named by its Session field: the later copy
// wins, except that an incomplete copy never replaces a complete one. A failed
// commit does not stop the writer (the channel keeps draining so publishers
// never stall); the first error is returned by Wait.
func (s *Store) Record(c <-chan mcptap.Exchange) *Writer {
	return s.RecordWith(c, nil)
}

// RecordWith is Record that also calls onFail (on the writer's goroutines)
// with each failed commit's error and how many exchanges it lost, so that a
// full disk is said while it happens, not at the end; lost is 0 when the
// journal could not be written (nothing lost, but a crash would lose more).
func (s *Store) RecordWith(c <-chan mcptap.Exchange, onFail func(err error, lost int)) *Writer {
	w := &Writer{s: s, c: c, done: make(chan struct{}), onFail: onFail,
		in: make(chan queued, journalQueue), kick: make(chan struct{}, 1)}
	j := newJournal(s.path)
	committerDone := make(chan struct{})
	go w.journal(j, committerDone)
	go func() {
		defer close(committerDone)
		w.run()
	}()
	return w
}

// queued is a publication on its way from the journal to its group, with
// its sequence number.
type queued struct {
	ex  mcptap.Exchange
	seq uint64
}

// journalQueue bounds the publications journaled but not yet taken into a
// group (beyond MaxGroup, the committer is behind, and the journaler waits,
// leaving the rest in the subscription's channel).
const journalQueue = 4 * MaxGroup

// journalWriteMax bounds the publications one journal write carries: what
// the journaler holds unwritten at any moment.
const journalWriteMax = 128

// journal is the goroutine between the subscription and the committer: it
// appends every publication to the journal as soon as it arrives (what is
// waiting in the channel goes out in one write) and then hands it on, so
// that what a kill -9 loses is what it had not yet written, not the group
// waiting for its commit. It ends, deleting the journal, once the
// committer has finished with everything.
func (w *Writer) journal(j *journal, committerDone <-chan struct{}) {
	defer func() {
		<-committerDone
		j.close()
		close(w.done)
	}()
	defer close(w.in)
	var seq uint64
	pending := make([]queued, 0, journalWriteMax)
	for {
		var ex mcptap.Exchange
		var ok bool
		select {
		case ex, ok = <-w.c:
		case <-w.kick:
			j.release(w.committed.Load())
			continue
		}
		if !ok {
			return
		}
		closed := false
		for {
			seq++
			j.add(&ex, seq)
			pending = append(pending, queued{ex, seq})
			if len(pending) == cap(pending) {
				break
			}
			select {
			case ex, ok = <-w.c:
				if ok {
					continue
				}
				closed = true
			default:
			}
			break
		}
		if err := j.write(); err != nil {
			// Nothing is lost yet (the groups still commit): said, not failed.
			if w.onFail != nil {
				w.onFail(err, 0)
			}
		}
		for i := range pending {
			w.in <- pending[i]
		}
		clear(pending)
		pending = pending[:0]
		j.release(w.committed.Load())
		if closed {
			return
		}
	}
}

// Lost is how many exchanges failed commits have lost (a full disk, an
// unwritable file): they are missing from the database.
func (w *Writer) Lost() uint64 { return w.lost.Load() }

// Wait returns once the channel is closed and the last batch is committed,
// with the first error the writer met.
func (w *Writer) Wait() error {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stored is how many exchange copies have been committed so far (an exchange
// published twice counts twice unless both copies fell into one batch).
func (w *Writer) Stored() uint64 { return w.stored.Load() }

// Batches is how many write transactions the writer has committed.
func (w *Writer) Batches() uint64 { return w.batches.Load() }

func (w *Writer) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *Writer) run() {
	size, wait := w.s.opts.BatchSize, w.s.opts.BatchWait
	batch := make([]mcptap.Exchange, 0, MaxGroup)
	index := make(map[string]int, MaxGroup) // ID -> position in batch: coalesce head+complete
	var bodyBytes int
	bw := batchWriter{}
	timer := time.NewTimer(wait)
	timer.Stop()
	var lastSeq uint64
	add := func(q queued) {
		ex := q.ex
		lastSeq = q.seq
		if i, ok := index[ex.ID]; ok {
			if ex.Complete || !batch[i].Complete {
				bodyBytes += len(ex.ReqBody) + len(ex.RespBody) - len(batch[i].ReqBody) - len(batch[i].RespBody)
				batch[i] = ex
			}
			return
		}
		index[ex.ID] = len(batch)
		batch = append(batch, ex)
		bodyBytes += len(ex.ReqBody) + len(ex.RespBody)
	}
	full := func() bool { return len(batch) >= MaxGroup || bodyBytes >= MaxGroupBytes }
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := w.commit(&bw, batch); err != nil {
			w.fail(err)
			w.lost.Add(uint64(len(batch)))
			if w.onFail != nil {
				w.onFail(err, len(batch))
			}
		} else {
			w.stored.Add(uint64(len(batch)))
			w.batches.Add(1)
		}
		w.committed.Store(lastSeq)
		select {
		case w.kick <- struct{}{}:
		default:
		}
		clear(batch) // drop body references before the next batch fills
		batch = batch[:0]
		clear(index)
		bodyBytes = 0
	}
	gap := min(minCommitGap, wait)
	var lastStart time.Time // when the previous transaction began
	prevFull := false       // whether it held MaxGroup exchanges or bytes
	for {
		ex, ok := <-w.in
		if !ok {
			return
		}
		add(ex)
		deadline := time.Now().Add(wait)
		timer.Reset(wait)
		// The batch counts distinct exchanges: the head and complete copies
		// of one exchange usually coalesce into one write.
		closed := false
	collect:
		for len(batch) < size && !full() {
			select {
			case ex, ok := <-w.in:
				if !ok {
					closed = true
					break collect
				}
				add(ex)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		if !closed && len(batch) >= size && !full() && !prevFull {
			// BatchSize reached. Under heavy traffic it is reached again
			// right after each commit; waiting out the gap lets one fsync
			// cover more exchanges. The writer sleeps meanwhile rather than
			// being woken for every publication; the channel holds them.
			// After a full group it does not: the traffic outruns
			// MaxGroup per gap, and the channel must not fill.
			now := time.Now()
			if next := lastStart.Add(gap); next.After(now) {
				if deadline.Before(next) {
					next = deadline
				}
				timer.Reset(next.Sub(now))
				<-timer.C
			}
		}
		// Group commit: whatever queued while the previous transaction
		// was syncing joins this one instead of waiting for its own fsync.
	group:
		for !closed && !full() {
			select {
			case ex, ok := <-w.in:
				if !ok {
					closed = true
					break group
				}
				add(ex)
			default:
				break group
			}
		}
		lastStart, prevFull = time.Now(), full()
		flush()
		if closed {
			return
		}
	}
}

func (w *Writer) commit(bw *batchWriter, batch []mcptap.Exchange) error {
	err := w.s.update(func(tx *bolt.Tx) error {
		bw.reset(tx)
		var skipped error
		for i := range batch {
			// One malformed exchange must not cost the rest of its batch.
			if batch[i].Session == "" || batch[i].ID == "" {
				skipped = errors.Join(skipped, fmt.Errorf("exchange %q of session %q lacks an ID or session; not stored", batch[i].ID, batch[i].Session))
				continue
			}
			if err := bw.put(&batch[i]); err != nil {
				return err
			}
			if i%32 == 31 {
				// A group is a millisecond or more of CPU; without a yield the
				// proxy goroutines queued on this P wait it out, which shows
				// in the proxy's tail latency (bench/NOTES.md).
				runtime.Gosched()
			}
		}
		if err := bw.finish(); err != nil {
			return err
		}
		if skipped != nil {
			w.fail(skipped)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d exchanges into %s: %w", len(batch), w.s.path, err)
	}
	return nil
}
