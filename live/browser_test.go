package live

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/proxy"
)

// TestCaptureBrowserProxySameSession: with BrowserListen the forward proxy
// records into the same session as the reverse proxy, with one sequence.
func TestCaptureBrowserProxySameSession(t *testing.T) {
	store, _ := openStore(t)
	defer store.Close()
	ca, err := proxy.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) }))
	defer srv.Close()
	up, _ := url.Parse(srv.URL)

	c, err := Start(Config{
		Store:         store,
		Session:       mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceProxy, Name: up.String()},
		Proxy:         proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: up}}},
		BrowserListen: "127.0.0.1:0",
		BrowserCA:     ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.BrowserAddr() == "" {
		t.Fatal("no browser proxy address")
	}
	get := func(client *http.Client, u string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get(http.DefaultClient, "http://"+c.Addrs()[0]+"/reverse")
	browser := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: c.BrowserAddr()})}}
	get(browser, srv.URL+"/forward")
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	sess, err := store.Session(c.Session().ID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Exchanges != 2 || sess.Settings["browser_proxy"] != c.BrowserAddr() {
		t.Errorf("session: %d exchanges, settings %v", sess.Exchanges, sess.Settings)
	}
	modes := map[mcptap.Mode]string{}
	seqs := map[uint64]bool{}
	err = store.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		modes[ex.Mode] = ex.URL()
		seqs[ex.Seq] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if modes[mcptap.ModeForward] != srv.URL+"/forward" || modes[mcptap.ModeReverse] == "" || len(seqs) != 2 {
		t.Errorf("stored modes %v, seqs %v", modes, seqs)
	}
}

// A browser proxy that cannot start (not loopback) fails Start before the
// session is created.
func TestCaptureBrowserProxyRefusedCreatesNothing(t *testing.T) {
	store, _ := openStore(t)
	defer store.Close()
	ca, err := proxy.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:1")
	_, err = Start(Config{
		Store:         store,
		Session:       mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceProxy},
		Proxy:         proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: up}}},
		BrowserListen: "0.0.0.0:0",
		BrowserCA:     ca,
	})
	if err == nil {
		t.Fatal("Start with a non-loopback browser proxy succeeded")
	}
	if ss, _ := store.Sessions(); len(ss) != 0 {
		t.Errorf("sessions created: %v", ss)
	}
}
