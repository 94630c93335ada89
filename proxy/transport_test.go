package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

// endsAfterCancel is a response body that holds one event and then ends
// cleanly, but only once its request was cancelled: what an upstream does
// when it takes the close_notify of a cancelled TLS connection as the end of
// the request and finishes the response before the socket closes.
type endsAfterCancel struct {
	ctx  context.Context
	sent bool
}

func (b *endsAfterCancel) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "data: hello\n\n"), nil
	}
	<-b.ctx.Done()
	return 0, io.EOF
}

func (b *endsAfterCancel) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A stream whose request was cancelled is recorded as cut, with the cause,
// even when the body then reads as a clean end.
func TestCancelledStreamRecordedAsCutDespiteCleanEnd(t *testing.T) {
	var mu sync.Mutex
	var got []mcptap.Exchange
	tr := &Transport{
		Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header:        http.Header{"Content-Type": {"text/event-stream"}},
				Body:          &endsAfterCancel{ctx: r.Context()},
				ContentLength: -1, Request: r}, nil
		}),
		Publish: func(ex mcptap.Exchange) {
			mu.Lock()
			got = append(got, ex)
			mu.Unlock()
		},
		Session: "s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://mcp.example.com/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	first := make(chan struct{})
	go func() {
		// the first event, then wait for the next one
		var b []byte
		buf := make([]byte, 256)
		for !strings.Contains(string(b), "\n\n") {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		close(first)
		rest, _ := io.ReadAll(resp.Body)
		done <- append(b, rest...)
	}()
	select { // the reader has the first event and waits for the next
	case <-first:
	case <-time.After(time.Minute):
		t.Fatal("the first event never arrived")
	}
	cancel()
	select {
	case b := <-done:
		if string(b) != "data: hello\n\n" {
			t.Fatalf("client read %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body did not end after the cancel")
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	if !last.Complete || !strings.Contains(last.Err, context.Canceled.Error()) || string(last.RespBody) != "data: hello\n\n" {
		t.Errorf("recorded complete=%v err=%q body=%q; want complete, cut by %v, with the event", last.Complete, last.Err, last.RespBody, context.Canceled)
	}
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatal("test setup: the context is not cancelled")
	}
}

// A short body of known length is published once, complete; a long one is
// also published at its head, visible while it is still arriving.
func TestHeadPublishedOnlyForStreamsAndLongBodies(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 1 << 10
		if r.URL.Path == "/long" {
			n = headlessBody + 1
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.WriteHeader(200)
		w.Write([]byte(strings.Repeat("x", n-1)))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/long" {
			<-release // the last byte comes later
		}
		w.Write([]byte("y"))
	}))
	defer up.Close()
	defer close(release)
	u, _ := url.Parse(up.URL)
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: u}}, Publish: col.Publish})

	resp, err := http.Get("http://" + p.Addrs()[0] + "/short")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(col.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a second copy would be out by now
	if all := col.all(); len(all) != 1 || !all[0].Complete || len(all[0].RespBody) != 1<<10 {
		t.Fatalf("short body: %d publications (want one, complete)", len(all))
	}

	go func() {
		if resp, err := http.Get("http://" + p.Addrs()[0] + "/long"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	for {
		var head bool
		for _, ex := range col.all() {
			head = head || (ex.Target == "/long" && !ex.Complete && ex.Status == 200)
		}
		if head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no head publication for a long body still arriving")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
