package oauthtest

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// T0 is the start time of every generated session.
var T0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// Builder appends exchanges with deterministic IDs and a clock that moves
// forward by Step (default 1 s) per exchange unless told otherwise.
type Builder struct {
	Now  time.Time
	Step time.Duration
	Mode mcptap.Mode
	exs  []mcptap.Exchange
}

// NewBuilder starts at T0.
func NewBuilder() *Builder { return &Builder{Now: T0, Step: time.Second, Mode: mcptap.ModeHAR} }

// Ex is one exchange under construction.
type Ex struct{ *mcptap.Exchange }

// Do records method url → status and returns the exchange for more detail.
func (b *Builder) Do(method, rawURL string, status int) Ex {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	host, target := rest, "/"
	if j := strings.IndexAny(rest, "/?"); j >= 0 {
		host, target = rest[:j], rest[j:]
	}
	start := b.Now
	b.Now = b.Now.Add(b.Step)
	n := len(b.exs)
	b.exs = append(b.exs, mcptap.Exchange{
		ID: fmt.Sprintf("%016x%06x", uint64(start.UnixNano()), n), Seq: uint64(n),
		Mode: b.Mode, Start: start, ResponseAt: start.Add(40 * time.Millisecond), End: start.Add(50 * time.Millisecond),
		Method: method, Scheme: scheme, Host: host, Target: target, Proto: "HTTP/2.0",
		ReqHeader: http.Header{}, RespHeader: http.Header{}, Status: status, Complete: true, ReqSize: 0,
	})
	return Ex{&b.exs[n]}
}

// Wait moves the clock.
func (b *Builder) Wait(d time.Duration) { b.Now = b.Now.Add(d) }

// Len is how many exchanges were built so far.
func (b *Builder) Len() int { return len(b.exs) }

// Exchanges returns what was built (the builder keeps its copy).
func (b *Builder) Exchanges() []mcptap.Exchange { return append([]mcptap.Exchange(nil), b.exs...) }

// H sets request headers (name, value pairs).
func (e Ex) H(kv ...string) Ex {
	for i := 0; i+1 < len(kv); i += 2 {
		e.ReqHeader.Add(kv[i], kv[i+1])
	}
	return e
}

// RH sets response headers (name, value pairs).
func (e Ex) RH(kv ...string) Ex {
	for i := 0; i+1 < len(kv); i += 2 {
		e.RespHeader.Add(kv[i], kv[i+1])
	}
	return e
}

// Body sets the request body and its content type.
func (e Ex) Body(ct, body string) Ex {
	e.ReqHeader.Set("Content-Type", ct)
	e.ReqBody = []byte(body)
	e.ReqSize = int64(len(body))
	return e
}

// Form sets an application/x-www-form-urlencoded body from raw key=value pairs.
func (e Ex) Form(pairs ...string) Ex {
	return e.Body("application/x-www-form-urlencoded", strings.Join(pairs, "&"))
}

// Resp sets the response body and its content type.
func (e Ex) Resp(ct, body string) Ex {
	if ct != "" {
		e.RespHeader.Set("Content-Type", ct)
	}
	e.RespBody = []byte(body)
	e.RespSize = int64(len(body))
	return e
}

// JSON sets a JSON response body.
func (e Ex) JSON(body string) Ex { return e.Resp("application/json", body) }

// Loc sets the Location header.
func (e Ex) Loc(u string) Ex { e.RespHeader.Set("Location", u); return e }

// TokenExchange is exchange i of a session as the reverse proxy records it:
// a token request (with a raw target that URL parsing would alter) and, when
// complete, its JSON answer. The store and codec tests share it.
func TokenExchange(session string, i int, complete bool) mcptap.Exchange {
	start := time.Date(2026, 11, 24, 16, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	ex := mcptap.Exchange{
		ID:        fmt.Sprintf("%016x%06x", uint64(start.UnixNano()), i),
		Session:   session,
		Seq:       uint64(i),
		Listener:  "127.0.0.1:8780",
		Mode:      mcptap.ModeReverse,
		Start:     start,
		Method:    "POST",
		Scheme:    "https",
		Host:      "mcp.example.test",
		Target:    "/token?x=%zz&x=+",
		Proto:     "HTTP/1.1",
		ReqHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		ReqBody:   []byte("grant_type=authorization_code&code=abc"),
		ReqSize:   38,
		Status:    200,
		RespSize:  -1,
		Complete:  complete,
	}
	ex.ResponseAt = start.Add(3 * time.Millisecond)
	ex.RespHeader = http.Header{"Content-Type": {"application/json"}}
	if complete {
		ex.End = start.Add(5 * time.Millisecond)
		ex.RespBody = []byte(`{"access_token":"t","token_type":"Bearer"}`)
		ex.RespSize = int64(len(ex.RespBody))
	}
	return ex
}
