package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// openTest opens a store in t.TempDir() and, when the test ends, closes it and
// checks the file's consistency with tx.Check.
func openTest(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "mcptap.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.db.Close() // may already be closed by the test
		checkDB(t, path)
	})
	return s, path
}

func checkDB(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("reopen for check: %v", err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("tx.Check: %v", err)
	}
}

func collect(t testing.TB, s *Store, session string) []mcptap.Exchange {
	t.Helper()
	var out []mcptap.Exchange
	if err := s.Exchanges(session, func(ex mcptap.Exchange) error {
		out = append(out, ex)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	s, path := openTest(t, nil)
	_ = s
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode %v, want 0600", m)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Errorf("dir mode %v, want 0700", m)
	}
}

func TestOpenInUse(t *testing.T) {
	s, path := openTest(t, nil)
	_ = s
	for _, ro := range []bool{false, true} {
		start := time.Now()
		s2, err := Open(path, &Options{ReadOnly: ro})
		took := time.Since(start)
		if err == nil {
			s2.Close()
			t.Fatalf("readOnly=%v: second Open succeeded", ro)
		}
		if !errors.Is(err, ErrInUse) {
			t.Errorf("readOnly=%v: err %v does not wrap ErrInUse", ro, err)
		}
		for _, want := range []string{path, "another mcptap", "--db"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("readOnly=%v: message %q lacks %q", ro, err, want)
			}
		}
		if took > hangLimit {
			t.Errorf("readOnly=%v: second Open took %v: it waited instead of refusing", ro, took)
		}
	}
}

// TestOpenInUseOtherProcess holds the lock from a real second process (this
// test binary re-executed), as a running `mcptap proxy` would.
func TestOpenInUseOtherProcess(t *testing.T) {
	if path := os.Getenv("MCPTAP_TEST_HOLD_DB"); path != "" {
		s, err := Open(path, nil)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("HOLDING")
		time.Sleep(30 * time.Second)
		s.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "mcptap.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenInUseOtherProcess$")
	cmd.Env = append(os.Environ(), "MCPTAP_TEST_HOLD_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !bytes.Contains(buf[:n], []byte("HOLDING")) {
		t.Fatalf("child: %q", buf[:n])
	}
	start := time.Now()
	_, err = Open(path, nil)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open while another process holds it: %v", err)
	}
	if took := time.Since(start); took > hangLimit {
		t.Errorf("took %v: it waited instead of refusing", took)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none", "mcptap.db")
	_, err := Open(path, &Options{ReadOnly: true})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open created the directory")
	}
}

func TestSessions(t *testing.T) {
	s, _ := openTest(t, nil)
	if _, err := s.Latest(); !errors.Is(err, ErrNoSessions) {
		t.Fatalf("Latest on empty: %v", err)
	}
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ids := []string{"0000000000000001aaa", "0000000000000001aab", "0000000000000002bbb"}
	for i, id := range ids {
		if err := s.CreateSession(mcptap.Session{ID: id, Source: mcptap.SourceProxy, Name: "http://localhost:3000", Started: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(mcptap.Session{ID: ids[0]}); err == nil {
		t.Error("CreateSession accepted a duplicate ID")
	}
	if err := s.PutExchanges(ids[1], []mcptap.Exchange{oauthtest.TokenExchange("", 1, true), oauthtest.TokenExchange("", 2, true)}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ids[1], t0.Add(time.Hour), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession("nope", t0, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("EndSession unknown: %v", err)
	}
	all, err := s.Sessions()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].ID != ids[0] || all[2].ID != ids[2] {
		t.Fatalf("Sessions order: %+v", all)
	}
	got := all[1]
	if got.Exchanges != 2 || got.Dropped != 7 || !got.Ended.Equal(t0.Add(time.Hour)) || storedSessionVersion(t, s, got.ID) != sessionVersion {
		t.Errorf("session after end: %+v", got)
	}
	if l, err := s.Latest(); err != nil || l.ID != ids[2] {
		t.Errorf("Latest: %v %v", l.ID, err)
	}
	for _, tc := range []struct {
		prefix, want, err string
	}{
		{"0000000000000002", ids[2], ""},
		{"0000000000000001aaa", ids[0], ""}, // exact match although nothing else shares it
		{"0000000000000001", "", "ambiguous"},
		{"9", "", "not found"},
	} {
		sess, err := s.FindSession(tc.prefix)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FindSession(%q) = %v, %v; want error %q", tc.prefix, sess.ID, err, tc.err)
			}
			continue
		}
		if err != nil || sess.ID != tc.want {
			t.Errorf("FindSession(%q) = %v, %v; want %v", tc.prefix, sess.ID, err, tc.want)
		}
	}
	if _, err := s.Session("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session unknown: %v", err)
	}
	if err := s.Exchanges("nope", func(mcptap.Exchange) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Exchanges unknown: %v", err)
	}
}

func TestExchangesRoundTrip(t *testing.T) {
	s, _ := openTest(t, nil)
	const sid = "sess1"
	if err := s.CreateSession(mcptap.Session{ID: sid, Source: mcptap.SourceProxy}); err != nil {
		t.Fatal(err)
	}
	var want []mcptap.Exchange
	for i := 5; i >= 0; i-- { // stored out of order, read back in ID order
		ex := oauthtest.TokenExchange(sid, i, true)
		switch i {
		case 2: // no bodies at all
			ex.ReqBody, ex.RespBody = nil, nil
		case 3: // only a response body, binary
			ex.ReqBody = nil
			ex.RespBody = []byte{0, 0xff, 0xfe, '\n'}
		case 4:
			ex.Err = "upstream: connection refused"
			ex.Status = 0
		}
		if err := s.PutExchanges(sid, []mcptap.Exchange{ex}); err != nil {
			t.Fatal(err)
		}
		want = append([]mcptap.Exchange{ex}, want...)
	}
	got := collect(t, s, sid)
	if len(got) != len(want) {
		t.Fatalf("got %d exchanges, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("exchange %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	one, err := s.Exchange(sid, want[3].ID)
	if err != nil || !reflect.DeepEqual(one, want[3]) {
		t.Errorf("Exchange: %v %+v", err, one)
	}
	if _, err := s.Exchange(sid, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Exchange unknown: %v", err)
	}
	sess, _ := s.Session(sid)
	if sess.Exchanges != 6 {
		t.Errorf("count %d, want 6", sess.Exchanges)
	}
	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	if err := s.Exchanges(sid, func(mcptap.Exchange) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Exchanges stop: %v after %d", err, n)
	}
}

func TestUpsertKeepsComplete(t *testing.T) {
	s, _ := openTest(t, nil)
	const sid = "s"
	if err := s.CreateSession(mcptap.Session{ID: sid}); err != nil {
		t.Fatal(err)
	}
	head, full := oauthtest.TokenExchange(sid, 1, false), oauthtest.TokenExchange(sid, 1, true)
	for _, step := range []struct {
		put          mcptap.Exchange
		wantComplete bool
	}{
		{head, false},
		{full, true},
		{head, true}, // a late head copy must not undo the complete one
	} {
		if err := s.PutExchanges(sid, []mcptap.Exchange{step.put}); err != nil {
			t.Fatal(err)
		}
		got := collect(t, s, sid)
		if len(got) != 1 || got[0].Complete != step.wantComplete {
			t.Fatalf("after put(complete=%v): %+v", step.put.Complete, got)
		}
	}
	got := collect(t, s, sid)[0]
	if string(got.RespBody) != string(full.RespBody) {
		t.Errorf("body lost: %q", got.RespBody)
	}
	if sess, _ := s.Session(sid); sess.Exchanges != 1 {
		t.Errorf("count %d after three copies of one exchange", sess.Exchanges)
	}
}

func TestNewerFormatRefused(t *testing.T) {
	s, _ := openTest(t, nil)
	const sid = "s"
	if err := s.CreateSession(mcptap.Session{ID: sid}); err != nil {
		t.Fatal(err)
	}
	ex := oauthtest.TokenExchange(sid, 1, true)
	if err := s.PutExchanges(sid, []mcptap.Exchange{ex}); err != nil {
		t.Fatal(err)
	}
	tamper := func(bucket []byte, future uint64) {
		t.Helper()
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketExchanges).Bucket([]byte(sid)).Bucket(bucket)
			v := bytes.Clone(b.Get([]byte(ex.ID)))
			_, n := binary.Uvarint(v)
			nv := binary.AppendUvarint(nil, future)
			return b.Put([]byte(ex.ID), append(nv, v[n:]...))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tamper(bucketBody, bodyVersion+1)
	if _, err := s.Exchange(sid, ex.ID); !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("newer body record: %v", err)
	}
	tamper(bucketMeta, metaBinary+1)
	err := s.Exchanges(sid, func(mcptap.Exchange) error { return nil })
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), ex.ID) {
		t.Errorf("newer meta record: %v", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Put([]byte(sid), []byte(`{"v":2,"id":"s","source":"proxy"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sessions(); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("newer session record: %v", err)
	}
}

func TestDefaultHome(t *testing.T) {
	t.Setenv("MCPTAP_HOME", "/x/home")
	if h, _ := DefaultHome(); h != "/x/home" {
		t.Errorf("MCPTAP_HOME: %s", h)
	}
	if p, _ := DefaultDBPath(); p != "/x/home/mcptap.db" {
		t.Errorf("DefaultDBPath: %s", p)
	}
	t.Setenv("MCPTAP_HOME", "")
	t.Setenv("XDG_DATA_HOME", "/x/data")
	if h, _ := DefaultHome(); h != filepath.Join("/x/data", "mcptap") {
		t.Errorf("XDG_DATA_HOME: %s", h)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/x/u")
	h, _ := DefaultHome()
	if !strings.HasPrefix(h, "/x/u/") || !strings.HasSuffix(h, "mcptap") {
		t.Errorf("HOME fallback: %s", h)
	}
}

// sameExchange compares two exchanges field by field, times by instant and
// zone offset (a decoded time has its own *time.Location).
func sameExchange(t *testing.T, what string, got, want mcptap.Exchange) {
	t.Helper()
	gt := []*time.Time{&got.Start, &got.ResponseAt, &got.End}
	for i, w := range []time.Time{want.Start, want.ResponseAt, want.End} {
		_, wo := w.Zone()
		_, go_ := gt[i].Zone()
		if !gt[i].Equal(w) || gt[i].IsZero() != w.IsZero() || (!w.IsZero() && wo != go_) {
			t.Errorf("%s: time %d = %v, want %v", what, i, *gt[i], w)
		}
		*gt[i] = w
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func metaCases() []mcptap.Exchange {
	full := oauthtest.TokenExchange("s", 7, true)
	full.Upstream = "http://127.0.0.1:9000"
	full.RemoteAddr = "127.0.0.1:50123"
	full.RespProto = "HTTP/1.1"
	full.Err = "upstream: connection reset by peer"
	full.ReqTruncated, full.RespTruncated = true, true
	full.ReqSize, full.RespSize = -1, 1<<40
	full.Seq = 1<<63 + 5
	full.Status = 502
	full.ReqHeader = http.Header{"Cookie": {"a=1", "b=2"}, "X-Empty": {""}, "x-lower": {"kept as sent"}, "Authorization": {"Bearer ünïcode\x00"}}
	full.RespHeader = http.Header{"Location": {"https://a.test/cb?code=x%2By&state=%zz"}, "Set-Cookie": {"s=1", "t=2", "u=3"}}
	full.Start = time.Date(2026, 11, 24, 16, 30, 0, 123456789, time.FixedZone("", 5*3600+30*60+17)) // offset with seconds
	full.ResponseAt = time.Now()                                                                    // Local, monotonic reading
	full.End = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)                                             // not quite zero
	full.ReqBody, full.RespBody = nil, nil

	head := oauthtest.TokenExchange("s", 8, false)
	head.ReqBody = nil
	head.ReqHeader, head.RespHeader = nil, nil
	head.End = time.Time{}

	bare := mcptap.Exchange{ID: "x", Session: "s"}
	return []mcptap.Exchange{full, head, bare}
}

func TestMetaRecordRoundTrip(t *testing.T) {
	for i, want := range metaCases() {
		rec := appendMeta(nil, &want)
		got, err := decodeExchange("s", []byte(want.ID), rec, nil)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if recordComplete(rec) != want.Complete {
			t.Errorf("case %d: recordComplete = %v", i, !want.Complete)
		}
		want.ResponseAt = want.ResponseAt.Round(0) // a stored time has no monotonic reading
		sameExchange(t, fmt.Sprint("case ", i), got, want)
		// Every cut of the record is refused, never misread or a panic.
		for n := 1; n < len(rec); n++ {
			if _, err := decodeExchange("s", []byte(want.ID), rec[:n], nil); err == nil {
				t.Fatalf("case %d: record cut to %d of %d bytes decoded without error", i, n, len(rec))
			}
		}
	}
}

// encodeMetaV1 is the metadata record of format 1 (before the binary
// format), as earlier builds wrote it: uvarint 1, flags, JSON.
func encodeMetaV1(t *testing.T, ex mcptap.Exchange) []byte {
	t.Helper()
	ex.ReqBody, ex.RespBody = nil, nil
	j, err := json.Marshal(&ex)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.AppendUvarint(nil, metaJSON)
	var flags byte
	if ex.Complete {
		flags = flagComplete
	}
	return append(append(out, flags), j...)
}

// TestReadsFormat1Records checks that recordings made before the binary
// metadata format still read, and that upserts treat their complete flag
// as before.
func TestReadsFormat1Records(t *testing.T) {
	s, _ := openTest(t, nil)
	const sid = "s"
	if err := s.CreateSession(mcptap.Session{ID: sid}); err != nil {
		t.Fatal(err)
	}
	old, head := oauthtest.TokenExchange(sid, 1, true), oauthtest.TokenExchange(sid, 2, false)
	// Store both through the current code (bodies and count), then turn
	// their metadata records into format 1.
	if err := s.PutExchanges(sid, []mcptap.Exchange{old, head}); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketExchanges).Bucket([]byte(sid)).Bucket(bucketMeta)
		for _, ex := range []mcptap.Exchange{old, head} {
			if err := m.Put([]byte(ex.ID), encodeMetaV1(t, ex)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, s, sid)
	if len(got) != 2 {
		t.Fatalf("read %d format 1 exchanges, want 2", len(got))
	}
	sameExchange(t, "format 1 complete", got[0], old)
	sameExchange(t, "format 1 head", got[1], head)

	// A late head copy must not replace a complete format 1 record; the
	// complete copy of the head replaces its format 1 record; no recount.
	lateHead, done := oauthtest.TokenExchange(sid, 1, false), oauthtest.TokenExchange(sid, 2, true)
	if err := s.PutExchanges(sid, []mcptap.Exchange{lateHead, done}); err != nil {
		t.Fatal(err)
	}
	got = collect(t, s, sid)
	if len(got) != 2 || !got[0].Complete || !got[1].Complete || string(got[0].RespBody) != string(old.RespBody) {
		t.Fatalf("after upserts over format 1 records: %+v", got)
	}
	if sess, _ := s.Session(sid); sess.Exchanges != 2 {
		t.Errorf("count %d, want 2", sess.Exchanges)
	}
}

// FuzzDecodeMeta feeds arbitrary metadata records (a database file may come
// from anywhere) to the decoder: it must not panic, and what it accepts must
// encode and decode to the same exchange.
func FuzzDecodeMeta(f *testing.F) {
	for _, ex := range metaCases() {
		f.Add(appendMeta(nil, &ex))
	}
	f.Add([]byte{2, 0})
	f.Add([]byte{2, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, rec []byte) {
		ex, err := decodeExchange("s", []byte("id"), rec, nil)
		if err != nil || len(rec) == 0 || rec[0] != metaBinary {
			return
		}
		again, err := decodeExchange("s", []byte("id"), appendMeta(nil, &ex), nil)
		if err != nil {
			t.Fatalf("re-encoded record refused: %v", err)
		}
		if !reflect.DeepEqual(again.ReqHeader, ex.ReqHeader) || !reflect.DeepEqual(again.RespHeader, ex.RespHeader) ||
			again.ID != ex.ID || again.Target != ex.Target || again.Status != ex.Status || !again.Start.Equal(ex.Start) ||
			again.Complete != ex.Complete || again.RespSize != ex.RespSize {
			t.Fatalf("round trip changed the exchange:\n%+v\n%+v", ex, again)
		}
	})
}

// storedSessionVersion reads the "v" of a session's raw record.
func storedSessionVersion(t *testing.T, s *Store, id string) int {
	t.Helper()
	var rec sessionRecord
	if err := s.db.View(func(tx *bolt.Tx) error {
		return json.Unmarshal(tx.Bucket(bucketSessions).Get([]byte(id)), &rec)
	}); err != nil {
		t.Fatal(err)
	}
	return rec.V
}

// hangLimit tells a hang from a slow machine: Open gives up on a busy file
// after its one-second timeout, and a loaded machine may take longer than
// that, but never this long unless Open blocks.
const hangLimit = 30 * time.Second

// FuzzRecordRoundTrip: any exchange, bodies included, stored as its two
// records comes back the same.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("/mcp?x=1", "text/event-stream", []byte("data: {}\n\n"), []byte{0, 1, 2, 0xff}, 200, true)
	f.Add("", "", []byte{}, []byte(nil), 0, false)
	f.Add("*", "a\x00b", []byte("\x1b[2J"), []byte("\r\n"), 599, true)
	f.Fuzz(func(t *testing.T, target, ctype string, reqBody, respBody []byte, status int, complete bool) {
		ex := mcptap.Exchange{ID: "id", Session: "s", Target: target, Method: "POST", Status: status, Complete: complete,
			ReqHeader: http.Header{"Content-Type": {ctype}}, RespHeader: http.Header{"X": {ctype, target}},
			ReqBody: reqBody, RespBody: respBody, ReqSize: int64(len(reqBody)), RespSize: int64(len(respBody)),
			Start: time.Unix(1700000000, 5).UTC()}
		got, err := decodeExchange("s", []byte("id"), appendMeta(nil, &ex), appendBody(nil, &ex))
		if err != nil {
			t.Fatalf("own records refused: %v", err)
		}
		if got.Target != ex.Target || got.Status != ex.Status || got.Complete != ex.Complete ||
			!bytes.Equal(got.ReqBody, ex.ReqBody) || !bytes.Equal(got.RespBody, ex.RespBody) ||
			!reflect.DeepEqual(got.ReqHeader, ex.ReqHeader) || !reflect.DeepEqual(got.RespHeader, ex.RespHeader) {
			t.Fatalf("round trip changed the exchange:\n%+v\n%+v", ex, got)
		}
	})
}

// Prune deletes the sessions that ended before the cutoff (a crashed one
// counts from its start) with their exchanges, never the one being recorded.
func TestPrune(t *testing.T) {
	s, _ := openTest(t, nil)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	mk := func(id string, started, ended time.Time) {
		if err := s.Import(mcptap.Session{ID: id, Source: mcptap.SourceProxy, Started: started, Ended: ended},
			[]mcptap.Exchange{{ID: id + "-1", Session: id, Start: started, Method: "GET", Target: "/", Status: 200, Complete: true}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("old", now.Add(-10*24*time.Hour), now.Add(-9*24*time.Hour))
	mk("crashed-old", now.Add(-8*24*time.Hour), time.Time{})
	mk("recent", now.Add(-2*24*time.Hour), now.Add(-2*24*time.Hour+time.Hour))
	mk("live", now.Add(-30*24*time.Hour), time.Time{}) // recording for a month: kept
	gone, err := s.Prune(now.Add(-7*24*time.Hour), "live")
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 2 {
		t.Fatalf("pruned %v, want old and crashed-old", gone)
	}
	left, _ := s.Sessions()
	var ids []string
	for _, ss := range left {
		ids = append(ids, ss.ID)
	}
	if strings.Join(ids, ",") != "live,recent" {
		t.Fatalf("left %v, want live and recent", ids)
	}
	if err := s.Exchanges("old", func(mcptap.Exchange) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("the pruned session's exchanges: %v", err)
	}
	if _, err := s.Exchange("recent", "recent-1"); err != nil {
		t.Errorf("a kept session lost its exchange: %v", err)
	}
}

// PruneToSize deletes the oldest sessions until the data fits, and never the
// live one.
func TestPruneToSize(t *testing.T) {
	s, _ := openTest(t, nil)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	body := bytes.Repeat([]byte("x"), 200<<10)
	for i := range 5 {
		id := fmt.Sprintf("s%d", i)
		start := t0.Add(time.Duration(i) * time.Hour)
		if err := s.Import(mcptap.Session{ID: id, Source: mcptap.SourceProxy, Started: start, Ended: start.Add(time.Minute)},
			[]mcptap.Exchange{{ID: id + "-1", Session: id, Start: start, Method: "POST", Target: "/", ReqBody: body, ReqSize: int64(len(body)), Status: 200, Complete: true}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Used()
	if err != nil || before < 5*200<<10 {
		t.Fatalf("used %d (%v): want at least the 5 bodies", before, err)
	}
	gone, cut, err := s.PruneToSize(500<<10, "s0") // s0 is "live": kept though oldest
	if err != nil || cut != 0 {
		t.Fatalf("%v; cut %d exchanges of s0, want none (the others make room)", err, cut)
	}
	after, _ := s.Used()
	var ids []string
	for _, g := range gone {
		ids = append(ids, g.ID)
	}
	if after > 500<<10 || len(ids) == 0 || ids[0] != "s1" || slices.Contains(ids, "s0") {
		t.Fatalf("pruned %v, used %d -> %d; want the oldest but s0 first, under 500 KiB", ids, before, after)
	}
	if _, err := s.Session("s0"); err != nil {
		t.Errorf("the live session went: %v", err)
	}
}

// PruneExchanges cuts a session recorded for longer than the retention from
// its start: the earlier exchanges go, the later stay, the counts say so,
// and a late copy of a pruned exchange (the complete copy of an exchange
// whose head copy was pruned) does not come back.
func TestPruneExchangesOfLiveSession(t *testing.T) {
	s, _ := openTest(t, nil)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateSession(mcptap.Session{ID: "live", Source: mcptap.SourceProxy, Started: t0}); err != nil {
		t.Fatal(err)
	}
	var exs []mcptap.Exchange
	for i := range 10 { // one a day
		at := t0.Add(time.Duration(i) * 24 * time.Hour)
		exs = append(exs, mcptap.Exchange{ID: mcptap.NewID(at), Session: "live", Start: at, Method: "GET", Target: fmt.Sprint("/", i), ReqBody: []byte("b"), Status: 200})
	}
	if err := s.PutExchanges("live", exs); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneExchanges("live", t0.Add(6*24*time.Hour)) // days 0-5 go
	if err != nil || n != 6 {
		t.Fatalf("pruned %d (%v), want 6", n, err)
	}
	sess, _ := s.Session("live")
	if sess.Exchanges != 4 || sess.Pruned != 6 {
		t.Fatalf("session says %d exchanges, %d pruned; want 4 and 6", sess.Exchanges, sess.Pruned)
	}
	var left []string
	s.Exchanges("live", func(ex mcptap.Exchange) error { left = append(left, ex.Target); return nil })
	if strings.Join(left, " ") != "/6 /7 /8 /9" {
		t.Fatalf("left %v, want /6 to /9", left)
	}
	// The complete copy of a pruned exchange arrives through the writer.
	late := exs[2]
	late.Complete = true
	ch := make(chan mcptap.Exchange, 1)
	ch <- late
	close(ch)
	if err := s.Record(ch).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exchange("live", late.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a late copy brought a pruned exchange back (%v)", err)
	}
	if sess, _ := s.Session("live"); sess.Exchanges != 4 {
		t.Errorf("after the late copy the session says %d exchanges, want 4", sess.Exchanges)
	}
}

// PruneToSize with nothing left but the live session cuts its oldest
// exchanges until the data fits, keeping the newest.
func TestPruneToSizeCutsLiveSession(t *testing.T) {
	s, _ := openTest(t, nil)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateSession(mcptap.Session{ID: "live", Source: mcptap.SourceProxy, Started: t0}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("y"), 16<<10)
	var exs []mcptap.Exchange
	for i := range 200 { // 3.2 MiB of bodies
		at := t0.Add(time.Duration(i) * time.Second)
		exs = append(exs, mcptap.Exchange{ID: mcptap.NewID(at), Session: "live", Start: at, Method: "POST", Target: fmt.Sprint("/", i), ReqBody: body, ReqSize: int64(len(body)), Status: 200, Complete: true})
	}
	if err := s.PutExchanges("live", exs); err != nil {
		t.Fatal(err)
	}
	gone, cut, err := s.PruneToSize(1<<20, "live")
	if err != nil || len(gone) != 0 || cut == 0 {
		t.Fatalf("gone %v, cut %d (%v): want the live session kept and cut", gone, cut, err)
	}
	if used, _ := s.Used(); used > 1<<20 {
		t.Errorf("used %d after pruning to 1 MiB", used)
	}
	sess, _ := s.Session("live")
	if sess.Exchanges+int(sess.Pruned) != 200 || int(sess.Pruned) != cut {
		t.Errorf("session says %d exchanges + %d pruned, cut %d; want 200 in all", sess.Exchanges, sess.Pruned, cut)
	}
	if _, err := s.Exchange("live", exs[199].ID); err != nil {
		t.Errorf("the newest exchange went: %v", err)
	}
	// It cuts what the excess takes, not fixed steps: about a megabyte of
	// the newest 16 KiB bodies stays, two pages each (a fixed step of 64
	// left 8; in the proxy test, with 32 KiB bodies, none).
	if sess.Exchanges < 20 {
		t.Errorf("only %d exchanges left under a 1 MiB limit for 16 KiB bodies", sess.Exchanges)
	}
	if _, err := s.Exchange("live", exs[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the oldest exchange stayed (%v)", err)
	}
}
