package live

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/recorder"
)

// The read API gives back what the store holds, page after page, with the
// recorder's errors, and a reader notices a stream cut before its end.
func TestReadAPI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	store, err := recorder.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	sess := mcptap.Session{ID: mcptap.NewID(t0), Source: mcptap.SourceImport, Name: "r.har", Started: t0}
	var exs []mcptap.Exchange
	for i := range 3*exchangePage + 7 { // several pages and a partial one
		exs = append(exs, mcptap.Exchange{ID: mcptap.NewID(t0.Add(time.Duration(i) * time.Millisecond)), Session: sess.ID,
			Mode: mcptap.ModeHAR, Start: t0.Add(time.Duration(i) * time.Millisecond).UTC(), Method: "POST", Scheme: "https",
			Host: "mcp.example.com", Target: fmt.Sprintf("/mcp?i=%d", i), ReqHeader: http.Header{"X-I": {fmt.Sprint(i)}},
			ReqBody: []byte(`{"i":` + fmt.Sprint(i) + `}`), ReqSize: 8, Status: 200, RespBody: append(make([]byte, 4096), byte(i)), RespSize: 4097, Complete: true})
	}
	if err := store.Import(sess, exs); err != nil {
		t.Fatal(err)
	}
	rs, err := serveReads(store, sess.ID, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r, err := DialReads(db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var want, got []mcptap.Exchange
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { want = append(want, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Exchanges(sess.ID, func(ex mcptap.Exchange) error { got = append(got, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exs) || !reflect.DeepEqual(got, want) {
		t.Fatalf("through the API: %d exchanges, want %d equal to the store's", len(got), len(want))
	}
	one, err := r.Exchange(sess.ID, exs[5].ID)
	if err != nil || !reflect.DeepEqual(one, want[5]) {
		t.Errorf("Exchange: %v", err)
	}
	for name, f := range map[string]func() (mcptap.Session, error){
		"Session": func() (mcptap.Session, error) { return r.Session(sess.ID) },
		"Latest":  r.Latest,
		"Find":    func() (mcptap.Session, error) { return r.FindSession(sess.ID[:6]) },
	} {
		if s, err := f(); err != nil || s.ID != sess.ID || s.Exchanges != len(exs) || s.Settings[RecordingSetting] != "true" {
			t.Errorf("%s: %+v %v", name, s, err)
		}
	}
	if _, err := r.FindSession("ffffffff"); !errors.Is(err, recorder.ErrNotFound) {
		t.Errorf("unknown session: %v, want ErrNotFound", err)
	}
	if err := r.Exchanges("nope", func(mcptap.Exchange) error { return nil }); !errors.Is(err, recorder.ErrNotFound) {
		t.Errorf("exchanges of an unknown session: %v", err)
	}

	// Stopping the server mid-stream (the stream, some 5 MB, is far larger
	// than what socket buffers hold): the reader says the stream was cut.
	n := 0
	err = r.Exchanges(sess.ID, func(mcptap.Exchange) error {
		if n++; n == 10 {
			rs.srv.Close()
		}
		return nil
	})
	if err == nil {
		t.Errorf("a stream cut after %d exchanges read as complete", n)
	}
	rs.close(t.Context())
	if _, err := DialReads(db); err == nil {
		t.Error("DialReads succeeded with nobody serving")
	}
}
