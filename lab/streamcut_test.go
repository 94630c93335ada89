package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

// edgeIdleTimeout stands for the idle timeout of an edge between the client
// and mcptap (Cloudflare's is ~100–125 s): past streamCutWindow (60 s), so
// that the streams count as cut rather than short.
const edgeIdleTimeout = 62 * time.Second // counted from each stream's open head

// TestStreamCutThroughProxy: transport.stream-cut on real streams, end to
// end. An MCP server keeps its event streams open and silent (no
// heartbeat); an edge in front of mcptap cuts every connection idle for
// edgeIdleTimeout, so three standalone SSE streams opened together all end
// from the client's side after the same time. mcptap records them into
// bbolt as ended by the client, and the analysis of what was stored names
// the constant period. It takes edgeIdleTimeout of wall time, beside the
// lab's other tests; the demo, which runs in seconds, has no such scenario.
func TestStreamCutThroughProxy(t *testing.T) {
	t.Parallel()
	const streams = 3
	opened := make(chan struct{}, streams)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost: // initialize
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"silent","version":"1"}}}`)
		case http.MethodGet: // the standalone stream: open, then silent until the client goes
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			opened <- struct{}{}
			<-r.Context().Done()
		}
	}))
	defer up.Close()

	store, err := recorder.Open(filepath.Join(t.TempDir(), "streams.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, _ := url.Parse(up.URL)
	c, err := live.Start(live.Config{Store: store, Session: mcptap.Session{ID: "streams", Source: mcptap.SourceProxy},
		Proxy: proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: u}}}})
	if err != nil {
		t.Fatal(err)
	}
	mcpURL := "http://" + c.Addrs()[0] + "/mcp"
	hc := &http.Client{Transport: newTransport()}
	resp, err := hc.Post(mcpURL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	// The edge: every connection it carries is cut once idle that long.
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, mcpURL, nil)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			// The stream is open (mcptap has recorded its start): idle
			// from here, the edge cuts it after edgeIdleTimeout, however
			// late a loaded machine got here.
			cut := errors.New("edge idle timeout")
			timer := time.AfterFunc(edgeIdleTimeout, func() { cancel(cut) })
			defer timer.Stop()
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if context.Cause(ctx) != cut {
				errs <- fmt.Errorf("a stream ended before the edge cut it: %v", err)
			}
		}()
	}
	for range streams {
		select {
		case <-opened:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var exs []mcptap.Exchange
	if err := store.Exchanges("streams", func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, ex := range exs {
		if ex.Method == http.MethodGet {
			if !ex.Complete || ex.End.Sub(ex.Start) < edgeIdleTimeout-time.Second || ex.Err == "" {
				t.Errorf("stored stream: complete %v, lasted %v, error %q; want complete, about %v, ended by the client", ex.Complete, ex.End.Sub(ex.Start), ex.Err, edgeIdleTimeout)
			}
			cut++
		}
	}
	if cut != streams {
		t.Fatalf("%d streams stored, want %d", cut, streams)
	}
	tr := oauth.Batch(exs, oauth.Options{})
	var found *mcptap.Finding
	for _, fd := range tr.Findings() {
		if fd.Rule == mcptap.RuleTransportStreamCut {
			found = &fd
		}
	}
	if found == nil {
		t.Fatalf("no %s among %v", mcptap.RuleTransportStreamCut, tr.Findings())
	}
	if found.Fault != mcptap.FaultUser || len(found.Exchanges) != streams || !strings.Contains(found.Detail, "3 event streams") {
		t.Errorf("%s: fault %s, %d exchanges: %s", found.Rule, found.Fault, len(found.Exchanges), found.Detail)
	}
}
