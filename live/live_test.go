package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

func openStore(t *testing.T) (*recorder.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcptap.db")
	s, err := recorder.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// checkFile runs bbolt's consistency check on a closed database file.
func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("reopen %s: %v", path, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Errorf("tx.Check: %v", err)
	}
}

func upstream(t *testing.T) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"echo":%q}}`, b)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

func start(t *testing.T, s *recorder.Store, up *url.URL, b *mcptap.Broker) *Capture {
	t.Helper()
	c, err := Start(Config{
		Store:   s,
		Session: mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceProxy, Name: up.String()},
		Proxy:   proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: up}}},
		Broker:  b,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCaptureRecordsAndEnds: exchanges reach the store and every other
// subscriber, and Stop flushes them and ends the session with its count.
func TestCaptureRecordsAndEnds(t *testing.T) {
	s, path := openStore(t)
	up := upstream(t)
	b := mcptap.NewBroker()
	ui := b.Subscribe("ui", 64)
	c := start(t, s, up, b)
	for i := range 3 {
		resp, err := http.Post("http://"+c.Addrs()[0]+"/mcp?i="+fmt.Sprint(i), "application/json", strings.NewReader(`{"method":"ping"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	var seen int
	for ex := range ui.C {
		if ex.Complete {
			seen++
		}
	}
	if seen != 3 {
		t.Errorf("ui subscriber saw %d complete exchanges, want 3", seen)
	}
	sess, err := s.Session(c.Session().ID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Ended.IsZero() || sess.Exchanges != 3 || sess.Dropped != 0 || sess.Source != mcptap.SourceProxy {
		t.Errorf("session %+v", sess)
	}
	if sess.Settings["routes"] == "" || sess.Settings["body_cap"] != "1048576" {
		t.Errorf("settings %v", sess.Settings)
	}
	var n int
	err = s.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		n++
		if !ex.Complete || ex.Status != 200 || string(ex.ReqBody) != `{"method":"ping"}` || !strings.Contains(string(ex.RespBody), "ping") {
			t.Errorf("stored exchange %+v", ex)
		}
		if ex.Target != fmt.Sprintf("/mcp?i=%d", n-1) {
			t.Errorf("stored target %q", ex.Target)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("stored %d exchanges: %v", n, err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	s.Close()
	checkFile(t, path)
}

// TestCaptureBindFailureCreatesNothing: a port in use fails Start before any
// session is written.
func TestCaptureBindFailureCreatesNothing(t *testing.T) {
	s, _ := openStore(t)
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(Config{
		Store:   s,
		Session: mcptap.Session{ID: "x", Source: mcptap.SourceProxy},
		Proxy:   proxy.Config{Routes: []proxy.Route{{Listen: ln.Addr().String(), Upstream: upstream(t)}}},
	})
	if err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	if sessions, _ := s.Sessions(); len(sessions) != 0 {
		t.Errorf("sessions after a failed start: %v", sessions)
	}
}

// TestLoad10k is the load test: 10,000 requests at concurrency 64
// through the real proxy and the real bbolt recorder; every request is
// recorded complete and nothing is dropped.
func TestLoad10k(t *testing.T) {
	const total, conc = 10000, 64
	s, path := openStore(t)
	up := upstream(t)
	c := start(t, s, up, nil)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: conc, MaxIdleConns: conc}}
	target := "http://" + c.Addrs()[0]
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	began := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				resp, err := client.Post(fmt.Sprintf("%s/mcp?n=%d", target, i), "application/json",
					strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- fmt.Errorf("request %d: status %d, %v", i, resp.StatusCode, err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests in %v (%.0f/s)", ok.Load(), elapsed.Round(time.Millisecond), float64(ok.Load())/elapsed.Seconds())
	sess, err := s.Session(c.Session().ID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Dropped != 0 || c.Dropped() != 0 {
		t.Errorf("dropped %d at this load, want 0", sess.Dropped)
	}
	if sess.Exchanges != total {
		t.Errorf("session counts %d exchanges, want %d", sess.Exchanges, total)
	}
	var complete int
	seen := make(map[string]bool, total)
	if err := s.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		if ex.Complete && ex.Status == 200 {
			complete++
		}
		seen[ex.Target] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if complete != total || len(seen) != total {
		t.Errorf("stored %d complete exchanges with %d distinct targets, want %d", complete, len(seen), total)
	}
	s.Close()
	checkFile(t, path)
}
