package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFullDuplexBody guards the stream cut the lab found (about 1 go-sdk
// tools/call in 100 ended with "request terminated without response"): the
// HTTP/1 server discarded and closed the rest of the inbound request body as
// soon as the proxy wrote the response head, under the outbound transport's
// last read of it. Here the client streams its body while it reads the
// response, one line at a time, and the upstream echoes each line back. Without
// full duplex the proxy's server tries to discard the rest of the body when the
// head goes out, and the exchange stalls.
func TestFullDuplexBody(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Errorf("upstream full duplex: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			fmt.Fprintf(w, "data: %s\n\n", sc.Text())
			w.(http.Flusher).Flush()
		}
	})
	up := startHTTPUpstream(t, upstream)
	col := newCollector()
	p := startProxy(t, Config{Routes: []Route{{Upstream: up}}, Publish: col.Publish})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	defer stop()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+p.Addrs()[0]+"/stream", pr)
	go fmt.Fprintln(pw, "line 0")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	const lines = 5
	for i := range lines {
		got, err := readData(br)
		if err != nil {
			t.Fatalf("echo of line %d: %v (the proxy did not pass the body through while streaming the response)", i, err)
		}
		if want := fmt.Sprintf("line %d", i); got != want {
			t.Fatalf("echo %d = %q, want %q", i, got, want)
		}
		if i+1 < lines {
			fmt.Fprintf(pw, "line %d\n", i+1)
		}
	}
	pw.Close()
	io.Copy(io.Discard, br)
	ex := col.waitComplete(t, 1)[0]
	if ex.Err != "" || !strings.Contains(string(ex.ReqBody), "line 4") || !strings.Contains(string(ex.RespBody), "data: line 4") {
		t.Fatalf("recorded exchange: err %q, request %q, response %q", ex.Err, ex.ReqBody, ex.RespBody)
	}
}

func readData(br *bufio.Reader) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			return d, nil
		}
	}
}
