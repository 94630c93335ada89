package recorder

import (
	"os"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// TestJournalPutBack: what a journal holds that the database lacks comes
// back at the next open, the copy the database has complete stays, the
// exchanges of a session deleted meanwhile stay out, a record cut short by
// the kill ends its segment, and the journal is deleted.
func TestJournalPutBack(t *testing.T) {
	s, path := openTest(t, nil)
	for _, id := range []string{"live", "gone"} {
		if err := s.CreateSession(mcptap.Session{ID: id, Source: mcptap.SourceProxy}); err != nil {
			t.Fatal(err)
		}
	}
	stored := oauthtest.TokenExchange("live", 0, true)
	if err := s.PutExchanges("live", []mcptap.Exchange{stored}); err != nil {
		t.Fatal(err)
	}
	// The journal a killed writer leaves: two segments, the second cut in
	// the middle of its last record.
	j := newJournal(path)
	j.add(ptr(oauthtest.TokenExchange("live", 0, false)), 1) // a head copy of the stored one
	for i := 1; i <= 3; i++ {
		j.add(ptr(oauthtest.TokenExchange("live", i, i != 2)), uint64(i+1))
	}
	j.add(ptr(oauthtest.TokenExchange("gone", 9, true)), 5)
	if err := j.write(); err != nil {
		t.Fatal(err)
	}
	j.sealed = append(j.sealed, segment{j.curName, j.curLast})
	j.cur.Close()
	j.cur = nil
	j.add(ptr(oauthtest.TokenExchange("live", 4, true)), 6)
	j.add(ptr(oauthtest.TokenExchange("live", 5, true)), 7)
	j.buf = j.buf[:len(j.buf)-10] // the kill came mid-write
	if err := j.write(); err != nil {
		t.Fatal(err)
	}
	j.cur.Close()
	if got := len(journalSegments(path)); got != 2 {
		t.Fatalf("%d journal segments written, want 2", got)
	}
	if err := s.deleteSession("gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Recovered() != 4 {
		t.Errorf("put back %d exchanges, want 4 (1, 2, 3 and 4)", s.Recovered())
	}
	got := collect(t, s, "live")
	if len(got) != 5 {
		t.Fatalf("live holds %d exchanges, want 5 (0 to 4; 5 was cut short)", len(got))
	}
	for i, ex := range got {
		if want := i != 2; ex.Complete != want || ex.ID != oauthtest.TokenExchange("live", i, true).ID {
			t.Errorf("exchange %d: ID %s complete %v, want complete %v", i, ex.ID, ex.Complete, want)
		}
	}
	if sess, _ := s.Session("live"); sess.Exchanges != 5 {
		t.Errorf("count %d, want 5", sess.Exchanges)
	}
	if sessions, _ := s.Sessions(); len(sessions) != 1 {
		t.Errorf("sessions %v: the deleted one came back", sessions)
	}
	if segs := journalSegments(path); len(segs) != 0 {
		t.Errorf("journal %v left after it was put back", segs)
	}
}

func ptr[T any](v T) *T { return &v }

// TestJournalReleasedAsGroupsCommit: while the writer runs, a journal
// segment is deleted once its records are committed and the segment being
// written is emptied when everything is; at the end nothing is left.
func TestJournalReleasedAsGroupsCommit(t *testing.T) {
	s, path := openTest(t, &Options{BatchSize: 16, BatchWait: time.Millisecond})
	if err := s.CreateSession(mcptap.Session{ID: "live", Source: mcptap.SourceProxy}); err != nil {
		t.Fatal(err)
	}
	c := make(chan mcptap.Exchange, 64)
	w := s.Record(c)
	body := make([]byte, 64<<10)
	const n = 3 * journalSegmentMax / (64 << 10) // three segments' worth
	for i := range n {
		ex := oauthtest.TokenExchange("live", i, true)
		ex.RespBody = body
		c <- ex
	}
	journalBytes := func() (total int64, segs int) {
		for _, name := range journalSegments(path) {
			if fi, err := os.Stat(name); err == nil {
				total += fi.Size()
				segs++
			}
		}
		return total, segs
	}
	deadline := time.Now().Add(time.Minute)
	for {
		total, segs := journalBytes()
		if w.Stored() >= n && total == 0 && segs <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d of %d stored, journal %d bytes in %d segments; want all stored and the journal empty", w.Stored(), n, total, segs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(c)
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if segs := journalSegments(path); len(segs) != 0 {
		t.Errorf("journal %v left after the writer ended", segs)
	}
	if got := len(collect(t, s, "live")); got != n {
		t.Errorf("stored %d, want %d", got, n)
	}
}
