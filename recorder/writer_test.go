package recorder

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

func TestWriterUpsertsAndFlushes(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 16, BatchWait: 20 * time.Millisecond})
	const sid = "live"
	if err := s.CreateSession(mcptap.Session{ID: sid, Source: mcptap.SourceProxy}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange, 1024)
	w := s.Record(c)
	// More than MaxGroup distinct exchanges: group commit may take all that
	// queued into one transaction, so only that guarantees a split.
	const n = MaxGroup + 476
	for i := range n {
		c <- oauthtest.TokenExchange(sid, i, false) // head
	}
	for i := range n {
		c <- oauthtest.TokenExchange(sid, i, true) // complete
		if i%7 == 0 {
			c <- oauthtest.TokenExchange(sid, i, false) // a stray late head copy
		}
	}
	close(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, sid)
	if len(got) != n {
		t.Fatalf("stored %d, want %d", len(got), n)
	}
	for i, ex := range got {
		if !ex.Complete || ex.End.IsZero() || len(ex.RespBody) == 0 {
			t.Fatalf("exchange %d not complete: %+v", i, ex)
		}
		if ex.ID != oauthtest.TokenExchange(sid, i, true).ID {
			t.Fatalf("order: exchange %d has ID %s", i, ex.ID)
		}
	}
	if sess, _ := s.Session(sid); sess.Exchanges != n {
		t.Errorf("count %d, want %d", sess.Exchanges, n)
	}
	if w.Batches() < 2 {
		t.Errorf("batches %d: expected batching to split %d messages", w.Batches(), 2*n)
	}
}

// TestWriterCommitsPartialBatchAfterWait checks that a lone exchange is on
// disk within about BatchWait, without the channel being closed: this is what
// bounds the loss on a crash.
func TestWriterCommitsPartialBatchAfterWait(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 64, BatchWait: 30 * time.Millisecond})
	if err := s.CreateSession(mcptap.Session{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange)
	w := s.Record(c)
	defer func() { close(c); w.Wait() }()
	c <- oauthtest.TokenExchange("s", 1, true)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if sess, _ := s.Session("s"); sess.Exchanges == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exchange not committed within 2s while the channel stays open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriterReportsExchangeWithoutSession(t *testing.T) {
	s, _ := openTest(t, nil)
	if err := s.CreateSession(mcptap.Session{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange, 4)
	w := s.Record(c)
	c <- oauthtest.TokenExchange("", 1, true)
	noID := oauthtest.TokenExchange("s", 2, true)
	noID.ID = ""
	c <- noID
	c <- oauthtest.TokenExchange("s", 3, true)
	close(c)
	if err := w.Wait(); err == nil {
		t.Fatal("malformed exchanges were silently dropped")
	}
	// The well-formed exchange of the same batch is stored all the same.
	if got := collect(t, s, "s"); len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("stored %d exchanges, want the one good one", len(got))
	}
}

// TestWriterGroupsQueuedExchanges checks group commit: what queued while
// the writer was busy goes into one transaction (up to MaxGroup exchanges or
// MaxGroupBytes of bodies), not into one transaction per BatchSize.
func TestWriterGroupsQueuedExchanges(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 64, BatchWait: time.Hour})
	if err := s.CreateSession(mcptap.Session{ID: "g"}); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	c := make(chan mcptap.Exchange, 2*n)
	for i := range n {
		c <- oauthtest.TokenExchange("g", i, false)
		c <- oauthtest.TokenExchange("g", i, true)
	}
	close(c)
	w := s.Record(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	// 3000 distinct exchanges in 6000 publications: 3 groups of at most
	// 1024 when the journal has handed everything on before the first
	// commit; it hands publications on a journal write (up to 128) at a
	// time, so on a loaded machine a group can close before all of them
	// arrived: up to twice that. Without group commit it would be one
	// transaction per BatchSize (47).
	groups := uint64((n + MaxGroup - 1) / MaxGroup)
	if b := w.Batches(); b < groups || b > 2*groups {
		t.Errorf("%d transactions for %d queued exchanges, want %d to %d", b, n, groups, 2*groups)
	}
	got := collect(t, s, "g")
	if len(got) != n {
		t.Fatalf("stored %d, want %d", len(got), n)
	}
	for _, ex := range got {
		if !ex.Complete {
			t.Fatalf("%s stored incomplete", ex.ID)
		}
	}

	// Large bodies: the byte budget splits the group.
	if err := s.CreateSession(mcptap.Session{ID: "big"}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("b"), 1<<20)
	const m = 40
	c = make(chan mcptap.Exchange, m)
	for i := range m {
		ex := oauthtest.TokenExchange("big", i, true)
		ex.RespBody = big
		c <- ex
	}
	close(c)
	w = s.Record(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	per := uint64(MaxGroupBytes / (1 << 20))
	if b := w.Batches(); b < (m+per-1)/per {
		t.Errorf("%d transactions for %d MiB of bodies; the %d MiB budget wants at least %d", b, m, per, (m+per-1)/per)
	}
	if got := collect(t, s, "big"); len(got) != m || len(got[m-1].RespBody) != 1<<20 {
		t.Errorf("stored %d large exchanges", len(got))
	}
}

// TestWriterCommitsAtBatchSize checks light traffic: BatchSize exchanges
// commit without waiting for BatchWait, again and again once the pacing gap
// since the previous transaction has passed.
func TestWriterCommitsAtBatchSize(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 64, BatchWait: time.Hour})
	if err := s.CreateSession(mcptap.Session{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange)
	w := s.Record(c)
	defer func() { close(c); w.Wait() }()
	for round := 1; round <= 3; round++ {
		for i := range 64 {
			c <- oauthtest.TokenExchange("b", round*100+i, true)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			if sess, _ := s.Session("b"); sess.Exchanges == 64*round {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: 64 exchanges not committed within 2s (BatchWait is an hour)", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestWriterPacesCommits checks that under sustained traffic transactions
// start at most about once per minCommitGap rather than once per BatchSize.
func TestWriterPacesCommits(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 8, BatchWait: time.Hour})
	if err := s.CreateSession(mcptap.Session{ID: "p"}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange, 1024)
	w := s.Record(c)
	start := time.Now()
	n := 0
	for time.Since(start) < 300*time.Millisecond {
		for range 20 { // bursts: a loaded machine sleeps far longer than asked
			c <- oauthtest.TokenExchange("p", n, true)
			n++
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	batches := w.Batches()
	close(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	limit := uint64(elapsed/minCommitGap) + 3
	if uint64(n)/8 <= limit {
		t.Fatalf("only %d exchanges in %v: too few to tell pacing from batching by 8", n, elapsed)
	}
	if batches > limit {
		t.Errorf("%d transactions in %v for %d exchanges; pacing allows about %d", batches, elapsed, n, limit)
	}
	if got := collect(t, s, "p"); len(got) != n {
		t.Errorf("stored %d, want %d", len(got), n)
	}
	t.Logf("%d exchanges in %v: %d transactions", n, elapsed, batches)
}

// BenchmarkWriter measures the recorder's sustained rate: each exchange is
// published twice (head, then complete with 2 KiB request and response
// bodies), as the proxy does. Reports exchanges/s, write transactions and
// the process's CPU time per exchange (producer included).
func BenchmarkWriter(b *testing.B) { benchWriter(b, 2048, 2048) }

// BenchmarkWriterProxybench uses the bodies of bench/proxybench (a 200-byte
// JSON-RPC request, a 1 KiB response).
func BenchmarkWriterProxybench(b *testing.B) { benchWriter(b, 200, 1024) }

func benchWriter(b *testing.B, reqSize, respSize int) {
	s, _ := openTest(b, nil)
	if err := s.CreateSession(mcptap.Session{ID: "bench"}); err != nil {
		b.Fatal(err)
	}
	req, resp := bytes.Repeat([]byte("x"), reqSize), bytes.Repeat([]byte("y"), respSize)
	c := make(chan mcptap.Exchange, 4096)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	w := s.Record(c)
	for i := 0; i < b.N; i++ {
		ex := oauthtest.TokenExchange("bench", i, false)
		ex.ID = fmt.Sprintf("%016x%06x", uint64(ex.Start.UnixNano()), i&0xffffff)
		c <- ex
		ex.Complete = true
		ex.ReqBody, ex.RespBody = req, resp
		ex.ReqSize, ex.RespSize = int64(reqSize), int64(respSize)
		c <- ex
	}
	close(c)
	if err := w.Wait(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
	b.ReportMetric(float64(w.Batches()), "batches")
	if cpu0 >= 0 {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/exchange")
	}
}

// TestWriterSurvivesSIGKILL kills a recording child process with SIGKILL:
// the file must open, pass tx.Check, and hold at least every exchange the
// writer had reported committed; with the journal put back, every exchange
// the child had handed over but what the journaler had not yet taken (the
// channel's 1024) or not yet written (journalWriteMax). Without the journal
// the group in commit (up to MaxGroup) was lost as well.
func TestWriterSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("MCPTAP_TEST_CRASH_DB"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "MCPTAP_TEST_CRASH_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	var committed, sent uint64
	for committed < 3000 && sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "stored %d sent %d", &committed, &sent); err != nil {
			t.Fatalf("child: %q", sc.Text())
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	checkDB(t, path)
	s, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open after SIGKILL: %v", err)
	}
	defer s.Close()
	if segs := journalSegments(path); len(segs) != 0 {
		t.Errorf("journal %v left after a read-only open put it back", segs)
	}
	sess, err := s.Session("crash")
	if err != nil {
		t.Fatal(err)
	}
	if uint64(sess.Exchanges) < committed {
		t.Errorf("after SIGKILL: %d exchanges stored, but %d were reported committed", sess.Exchanges, committed)
	}
	n := 0
	if err := s.Exchanges("crash", func(ex mcptap.Exchange) error {
		if !ex.Complete || len(ex.RespBody) == 0 {
			return fmt.Errorf("exchange %s damaged: %+v", ex.ID, ex)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != sess.Exchanges {
		t.Errorf("walked %d exchanges, count says %d", n, sess.Exchanges)
	}
	if lost := int(sent) - n; lost > 1024+journalWriteMax {
		t.Errorf("after SIGKILL: %d stored of %d handed to the writer: %d lost, want at most the channel's 1024 and one journal write (%d)", n, sent, lost, journalWriteMax)
	}
	t.Logf("committed before kill: %d; handed over: at least %d; on disk after: %d (%d put back from the journal)", committed, sent, n, s.Recovered())
}

func crashChild(path string) {
	s, err := Open(path, nil)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if err := s.CreateSession(mcptap.Session{ID: "crash", Source: mcptap.SourceProxy}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	c := make(chan mcptap.Exchange, 1024)
	w := s.Record(c)
	var sent atomic.Uint64
	go func() {
		for {
			time.Sleep(5 * time.Millisecond)
			// stored first: it can only lag what was sent.
			stored := w.Stored()
			fmt.Printf("stored %d sent %d\n", stored, sent.Load())
		}
	}()
	for i := 0; ; i++ {
		ex := oauthtest.TokenExchange("crash", i, true)
		ex.ID = fmt.Sprintf("%016x%06x", uint64(ex.Start.UnixNano()), i&0xffffff)
		c <- ex
		sent.Add(1)
	}
}

// TestReadWhileRecording reads sessions and exchanges while the writer
// commits, as an in-process TUI does: no deadlock, no race, counts only grow.
func TestReadWhileRecording(t *testing.T) {
	s, _ := openTest(t, &Options{BatchSize: 8, BatchWait: time.Millisecond})
	if err := s.CreateSession(mcptap.Session{ID: "live"}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange, 64)
	w := s.Record(c)
	done := make(chan error, 1)
	go func() {
		last := 0
		for {
			select {
			case <-w.done:
				done <- nil
				return
			default:
			}
			n := 0
			if err := s.Exchanges("live", func(mcptap.Exchange) error { n++; return nil }); err != nil {
				done <- err
				return
			}
			if n < last {
				done <- fmt.Errorf("exchange count went back from %d to %d", last, n)
				return
			}
			last = n
		}
	}()
	for i := range 2000 {
		c <- oauthtest.TokenExchange("live", i, true)
	}
	close(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if sess, _ := s.Session("live"); sess.Exchanges != 2000 {
		t.Errorf("count %d", sess.Exchanges)
	}
}
