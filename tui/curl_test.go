package tui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

// c copies the selected exchange as a curl command that, run by a real shell
// and curl, sends the same method, path, query, headers and body.
func TestCopyAsCurlResends(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is required under CI")
		}
		t.Skip("curl not installed")
	}
	type got struct {
		method, uri, auth, ctype, custom, body string
	}
	seen := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- got{r.Method, r.RequestURI, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Header.Get("X-It's"), string(b)}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	body := "grant_type=authorization_code&code=AC_o'k&code_verifier=v%20x"
	ex := mcptap.Exchange{ID: "e1", Mode: mcptap.ModeReverse, Start: time.Unix(1, 0), Method: "POST", Scheme: "http", Host: u.Host,
		Target: "/oauth/token?x=1&y='2'", Proto: "HTTP/1.1",
		ReqHeader: http.Header{"Authorization": {"Basic Y2w6c2Vj"}, "Content-Type": {"application/x-www-form-urlencoded"},
			"X-It's": {"a 'quoted' $value"}, "Content-Length": {"63"}, "Accept-Encoding": {"gzip"}},
		ReqBody: []byte(body), ReqSize: int64(len(body)), Status: 200, Complete: true}
	m := sized(NewReplay(Options{}, []mcptap.Exchange{ex}), termW, termH)
	m.Update(press("2"))
	_, cmd := m.Update(press("c"))
	if cmd == nil || !strings.HasPrefix(m.copied, "curl ") {
		t.Fatalf("c copied %q (msg %q)", m.copied, m.msg)
	}
	out, err := exec.Command("sh", "-c", strings.Replace(m.copied, "curl", curl+" -sS -o /dev/null", 1)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s\n%s", err, out, m.copied)
	}
	g := <-seen
	want := got{"POST", "/oauth/token?x=1&y='2'", "Basic Y2w6c2Vj", "application/x-www-form-urlencoded", "a 'quoted' $value", body}
	if g != want {
		t.Errorf("curl sent %+v\nwant      %+v\ncommand:\n%s", g, want, m.copied)
	}
	// In the exchange screen c copies the exchange shown.
	m.Update(press("enter"))
	m.copied = ""
	m.Update(press("c"))
	if !strings.Contains(m.copied, "--data-binary") {
		t.Errorf("exchange screen: c copied %q", m.copied)
	}
	// The flows list has no exchange selected.
	m.Update(press("1"))
	m.copied = ""
	m.Update(press("c"))
	if m.copied != "" || !strings.Contains(m.msg, "no exchange selected") {
		t.Errorf("flows list: c copied %q, msg %q", m.copied, m.msg)
	}
}
