package resend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/syncbuf"
	"github.com/mcptap/mcptap/lab"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

// record runs one lab scenario behind a real live capture into store
// (lab.Record) and returns the session, its exchanges and the plan (still
// running).
func record(t *testing.T, store *recorder.Store, sc lab.Scenario) (mcptap.Session, []mcptap.Exchange, *lab.Plan) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess := mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceDemo, Name: "resend test: " + sc.Name}
	plan, exs, err := lab.Record(ctx, store, sess, []lab.Scenario{sc}, lab.RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plan.Close)
	return sess, exs, plan
}

func readAll(t *testing.T, store *recorder.Store, id string) []mcptap.Exchange {
	t.Helper()
	var exs []mcptap.Exchange
	if err := store.Exchanges(id, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	return exs
}

// fixedWorld starts the healthy lab server for a recorded faulty scenario:
// the same topology and client, no server fault, answering under the public
// origins the recording used (the Host and URLs the re-sent requests carry).
func fixedWorld(t *testing.T, sc lab.Scenario, recorded *lab.World) *lab.World {
	t.Helper()
	sc.Server, sc.AS = lab.ResourceFaults{}, lab.ASFaults{}
	w, err := lab.NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	for _, l := range recorded.Listeners() {
		w.SetPublic(l.Name, recorded.Public(l.Name))
	}
	return w
}

type hopEx struct {
	kind mcptap.HopKind
	ex   mcptap.Exchange
}

func hops(exs []mcptap.Exchange) []hopEx {
	tr := oauth.NewTracker(oauth.Options{})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	tr.Finish()
	var out []hopEx
	for _, ex := range exs {
		if k, ok := tr.Hop(ex.ID); ok {
			out = append(out, hopEx{k, ex})
		}
	}
	return out
}

func first(hs []hopEx, kind mcptap.HopKind) (mcptap.Exchange, bool) {
	for _, h := range hs {
		if h.kind == kind {
			return h.ex, true
		}
	}
	return mcptap.Exchange{}, false
}

func formValue(ex mcptap.Exchange, k string) string {
	f, _ := url.ParseQuery(string(ex.ReqBody))
	return f.Get(k)
}

// codeIssued is the code of the first redirect carrying one.
func codeIssued(t *testing.T, exs []mcptap.Exchange) string {
	t.Helper()
	for _, ex := range exs {
		if loc := ex.RespHeader.Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err == nil && u.Query().Get("code") != "" {
				return u.Query().Get("code")
			}
		}
	}
	t.Fatal("no redirect carries a code")
	return ""
}

func hasRule(l []RuleChange, rule mcptap.RuleID) bool {
	for _, c := range l {
		if c.Rule == rule {
			return true
		}
	}
	return false
}

// A server-side fault recorded through the real proxy, then the recorded
// client requests re-sent to the fixed server: the new flow must complete
// with fresh values and the diff must report the rule as fixed.
func TestResendToFixedServer(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		rule     mcptap.RuleID
	}{
		{"no-s256", "discovery.no-pkce-s256"},
		{"mcp-redirect", "mcp.redirect"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			sc, ok := lab.Lookup(tc.scenario)
			if !ok {
				t.Fatalf("no lab scenario %s", tc.scenario)
			}
			store, err := recorder.Open(filepath.Join(t.TempDir(), "resend.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			orig, oldExs, plan := record(t, store, sc)
			_, oldFindings := oauth.Analyze(oldExs, oauth.Options{})
			if !hasFinding(oldFindings, tc.rule) {
				t.Fatalf("the recording of %s has no %s finding", tc.scenario, tc.rule)
			}
			fixed := fixedWorld(t, sc, plan.Worlds[0])
			up, _ := url.Parse(fixed.Internal(lab.ListenerMCP))

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := Run(ctx, oldExs, Options{Store: store, Upstream: up, Original: orig})
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := res.Write(&out); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", out.String())

			if res.Session.Source != mcptap.SourceReplay || !strings.Contains(res.Session.Name, orig.ID) {
				t.Errorf("new session %+v: want source replay and a name naming %s", res.Session, orig.ID)
			}
			if !hasRule(res.Diff.Fixed, tc.rule) {
				t.Errorf("diff fixed = %+v, want %s", res.Diff.Fixed, tc.rule)
			}
			if HasError(res.New) {
				t.Errorf("the new session has errors: %+v", res.New)
			}
			if !strings.Contains(out.String(), "fixed (") || !strings.Contains(out.String(), "- ") || !strings.Contains(out.String(), string(tc.rule)) || !strings.Contains(out.String(), res.Session.ID) {
				t.Errorf("printed diff does not show %s as fixed with the new session ID:\n%s", tc.rule, out.String())
			}

			newExs := readAll(t, store, res.Session.ID)
			if len(newExs) != res.Sent {
				t.Errorf("new session has %d exchanges, sent %d", len(newExs), res.Sent)
			}
			oh, nh := hops(oldExs), hops(newExs)
			oldTok, ok1 := first(oh, mcptap.HopToken)
			newTok, ok2 := first(nh, mcptap.HopToken)
			if !ok1 || !ok2 {
				t.Fatalf("token hop: recorded %v, re-sent %v", ok1, ok2)
			}
			if newTok.Status != 200 {
				t.Errorf("re-sent token call: status %d, body %s", newTok.Status, newTok.RespBody)
			}
			newCode := codeIssued(t, newExs)
			if got := formValue(newTok, "code"); got != newCode || got == formValue(oldTok, "code") {
				t.Errorf("re-sent token code %q, want the new code %q (recorded %q)", got, newCode, formValue(oldTok, "code"))
			}
			if v := formValue(newTok, "code_verifier"); v == "" || v == formValue(oldTok, "code_verifier") {
				t.Errorf("re-sent code_verifier %q is not fresh", v)
			}
			oldAuth, _ := first(oh, mcptap.HopAuthorize)
			newAuth, ok := first(nh, mcptap.HopAuthorize)
			if !ok {
				t.Fatal("no authorize hop in the new session")
			}
			nq, oq := query(newAuth), query(oldAuth)
			if nq.Get("state") == "" || nq.Get("state") == oq.Get("state") {
				t.Errorf("state %q not fresh (recorded %q)", nq.Get("state"), oq.Get("state"))
			}
			if ok, nk := jsonKeys(oq.Get("state")), jsonKeys(nq.Get("state")); ok != nk {
				t.Errorf("recorded state decodes to members %q, the fresh one to %q", ok, nk)
			}
			if nq.Get("code_challenge") != s256(formValue(newTok, "code_verifier")) {
				t.Errorf("challenge %q is not S256 of the new verifier", nq.Get("code_challenge"))
			}
			if nq.Get("client_id") == oq.Get("client_id") {
				t.Errorf("client_id %q not the newly registered one", nq.Get("client_id"))
			}
			var mcpOK bool
			for _, h := range nh {
				if h.kind == mcptap.HopMCP && h.ex.Status == 200 && strings.HasPrefix(h.ex.ReqHeader.Get("Authorization"), "Bearer ") &&
					strings.Contains(string(h.ex.RespBody), `"result"`) {
					mcpOK = true
				}
			}
			if !mcpOK {
				t.Error("no authenticated MCP call answered 200 in the new session")
			}
		})
	}
}

func query(ex mcptap.Exchange) url.Values {
	if i := strings.IndexByte(ex.Target, '?'); i >= 0 {
		q, _ := url.ParseQuery(ex.Target[i+1:])
		return q
	}
	return url.Values{}
}

func hasFinding(fs []mcptap.Finding, rule mcptap.RuleID) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

// Re-sent requests go out byte for byte (raw target, recorded Host, end-to-end
// headers) without hop-by-hop and length headers, and a GET event stream that
// the server keeps open does not hold up the requests after it.
func TestResendWireAndEndlessStream(t *testing.T) {
	type seen struct {
		uri, host, conn, foo, te string
		length                   int64
		body                     string
	}
	got := make(chan seen, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.RequestURI, r.Host, r.Header.Get("Connection"), r.Header.Get("X-Foo"), r.Header.Get("Te"), r.ContentLength, string(b)}
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // never ends on its own
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	store, err := recorder.Open(filepath.Join(t.TempDir(), "wire.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const old = "http://127.0.0.1:1"
	hdr := http.Header{"Connection": {"keep-alive, X-Foo"}, "X-Foo": {"1"}, "Content-Length": {"999"}, "Transfer-Encoding": {"chunked"},
		"Te": {"trailers"}, ":authority": {"tunnel.example"}, "Content-Type": {"application/json"}}
	exs := []mcptap.Exchange{
		{ID: "01", Mode: mcptap.ModeReverse, Upstream: old, Method: "GET", Host: "tunnel.example", Target: "/mcp", ReqHeader: http.Header{"Accept": {"text/event-stream"}}},
		{ID: "02", Mode: mcptap.ModeReverse, Upstream: old, Method: "POST", Host: "tunnel.example", Target: "/x?a=%7e&b=c+d&%zz", ReqHeader: hdr, ReqBody: []byte(`{"n":1}`)},
		{ID: "03", Mode: mcptap.ModeReverse, Upstream: old, Method: "GET", Host: "tunnel.example", Target: "//evil.example/x"},
		{ID: "04", Mode: mcptap.ModeReverse, Upstream: old, Method: "POST", Host: "tunnel.example", Target: "/big", ReqBody: []byte("cut"), ReqTruncated: true},
	}
	up, _ := url.Parse(srv.URL)
	start := time.Now()
	res, err := Run(context.Background(), exs, Options{Store: store, Upstream: up, StreamWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Run took %v with an endless stream: it waited for the stream's end", d)
	}
	if res.Sent != 2 || res.Failed != 0 || len(res.Skipped) != 2 {
		t.Errorf("sent %d, failed %d, skipped %q; want 2, 0 and the // target and the truncated body", res.Sent, res.Failed, res.Skipped)
	}
	<-got // the stream
	post := <-got
	want := seen{uri: "/x?a=%7e&b=c+d&%zz", host: "tunnel.example", length: 7, body: `{"n":1}`}
	if post != want {
		t.Errorf("the upstream saw %+v\nwant %+v", post, want)
	}
	if n := len(readAll(t, store, res.Session.ID)); n != 2 {
		t.Errorf("new session has %d exchanges, want 2", n)
	}
}

// A rule raised by traffic that is not re-sent (here the client's own
// callback completion, on another route) is neither fixed nor stayed: the
// re-send says nothing about it, and the output says so.
func TestResendDoesNotClaimUncheckedRules(t *testing.T) {
	sc, _ := lab.Lookup("callback-state-not-found")
	store, err := recorder.Open(filepath.Join(t.TempDir(), "resend.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	orig, oldExs, plan := record(t, store, sc)
	fixed := fixedWorld(t, sc, plan.Worlds[0])
	up, _ := url.Parse(fixed.Internal(lab.ListenerMCP))
	res, err := Run(context.Background(), oldExs, Options{Store: store, Upstream: up, Original: orig})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = res.Write(&out)
	t.Logf("\n%s", out.String())
	const rule = "callback.state-not-found"
	if hasRule(res.Diff.Fixed, rule) || hasRule(res.Diff.Stayed, rule) || !hasRule(res.NotChecked, rule) {
		t.Errorf("%s: fixed %+v, stayed %+v, not checked %+v; want it only among the not re-checked", rule, res.Diff.Fixed, res.Diff.Stayed, res.NotChecked)
	}
	if !strings.Contains(out.String(), "not re-checked") {
		t.Errorf("output does not list the rules it did not re-check:\n%s", out.String())
	}
}

// An upstream that is not there: every request is sent, none answered, and
// the output says so instead of reporting rules as fixed without comment.
func TestResendUnreachableUpstream(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	up, _ := url.Parse(srv.URL)
	srv.Close() // nothing listens there any more
	store, err := recorder.Open(filepath.Join(t.TempDir(), "down.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	exs := []mcptap.Exchange{
		{ID: "01", Mode: mcptap.ModeReverse, Upstream: "http://127.0.0.1:1", Method: "GET", Host: "x", Target: "/.well-known/oauth-protected-resource", Status: 200},
		{ID: "02", Mode: mcptap.ModeReverse, Upstream: "http://127.0.0.1:1", Method: "POST", Host: "x", Target: "/mcp", Status: 401},
	}
	res, err := Run(context.Background(), exs, Options{Store: store, Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = res.Write(&out)
	if res.Sent != 2 || res.Failed != 2 || !res.Unreachable() || !strings.Contains(out.String(), "did not answer any request") ||
		!strings.Contains(out.String(), "nothing was checked") || strings.Contains(out.String(), "fixed") {
		t.Errorf("sent %d, failed %d, output:\n%s", res.Sent, res.Failed, out.String())
	}
}

// A redacted recording (an export's default) is refused: its placeholders
// would go out instead of the values, and the re-send would check nothing.
func TestResendRefusesRedactedRecording(t *testing.T) {
	store, err := recorder.Open(filepath.Join(t.TempDir(), "r.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	up, _ := url.Parse("http://127.0.0.1:1")
	exs := []mcptap.Exchange{
		{ID: "01", Mode: mcptap.ModeReverse, Upstream: "http://127.0.0.1:1", Method: "POST", Host: "x", Target: "/token", Status: 200,
			ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			ReqBody:   []byte("grant_type=authorization_code&code=‹redacted:len=12:b64url:3f9a1c›")},
	}
	if _, err := Run(context.Background(), exs, Options{Store: store, Upstream: up}); !errors.Is(err, ErrRedacted) || !strings.Contains(err.Error(), "--no-redact") {
		t.Fatalf("redacted recording: %v, want ErrRedacted saying how to get an unredacted one", err)
	}
}

// jsonKeys lists the members of a base64-encoded JSON state, "" for any other state.
func jsonKeys(state string) string {
	raw, err := base64.StdEncoding.DecodeString(state)
	if err != nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// What a re-send prints and logs about a request names it without its
// secrets (issue 16: secrets redacted in anything printed or logged).
func TestResendPrintsNoSecrets(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	up, _ := url.Parse(srv.URL)
	store, err := recorder.Open(filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const code, token = "ac_SUPERSECRETCODE0123456789", "at_SUPERSECRETTOKEN0123456789"
	exs := []mcptap.Exchange{
		{ID: "01", Mode: mcptap.ModeReverse, Upstream: srv.URL, Method: "GET", Host: "x", Target: "/cb?code=" + code + "&state=s1", Status: 200, ReqTruncated: true},
		{ID: "02", Mode: mcptap.ModeReverse, Upstream: srv.URL, Method: "GET", Host: "x", Target: "//sse?access_token=" + token, Status: 200},
		{ID: "03", Mode: mcptap.ModeReverse, Upstream: srv.URL, Method: "POST", Host: "x", Target: "/mcp", Status: 401},
	}
	var logs syncbuf.Buffer
	res, err := Run(context.Background(), exs, Options{Store: store, Upstream: up, From: srv.URL, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_ = res.Write(&out)
	if len(res.Skipped) != 2 {
		t.Fatalf("skipped %v", res.Skipped)
	}
	for _, s := range []string{out.String(), logs.String(), strings.Join(res.Skipped, "\n")} {
		if strings.Contains(s, code) || strings.Contains(s, token) {
			t.Errorf("a secret is printed:\n%s", s)
		}
	}
	if !strings.Contains(strings.Join(res.Skipped, "\n"), "/cb?code=") {
		t.Errorf("the skipped request is not named: %v", res.Skipped)
	}
}
