package mcptap

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Mode says which kind of listener saw an exchange.
type Mode string

const (
	ModeReverse Mode = "reverse" // the tunnel-facing reverse proxy
	ModeForward Mode = "forward" // the browser's forward/MITM proxy
	ModeHAR     Mode = "har"     // imported from a HAR file
	ModeReplay  Mode = "replay"  // re-sent by mcptap replay --send
	ModeCheck   Mode = "check"   // sent by mcptap check itself, as a platform would
)

// Exchange is one HTTP request and its response, or its transport error.
//
// Target is the request target exactly as received (RequestURI for origin-form
// requests), and response headers such as Location are kept byte for byte, so
// the analysis can compare raw bytes before decoded forms.
//
// An exchange can be published more than once while it is alive: when the
// response head of a stream or a long body arrives (Complete false) and when
// the body ends (Complete true). Consumers upsert by ID.
type Exchange struct {
	ID       string `json:"id"`
	Session  string `json:"session"`
	Seq      uint64 `json:"seq"`
	Listener string `json:"listener,omitempty"` // e.g. "127.0.0.1:8780"
	Mode     Mode   `json:"mode"`
	Upstream string `json:"upstream,omitempty"` // base URL the request was forwarded to

	Start      time.Time `json:"start"`
	ResponseAt time.Time `json:"response_at,omitempty"` // response head received
	End        time.Time `json:"end,omitempty"`         // body finished or error

	Method       string      `json:"method"`
	Scheme       string      `json:"scheme"` // scheme the client used, as far as known ("https" behind a tunnel that says so)
	Host         string      `json:"host"`   // Host header as the client sent it
	Target       string      `json:"target"` // raw request target: path and query bytes as received
	Proto        string      `json:"proto,omitempty"`
	RemoteAddr   string      `json:"remote,omitempty"`
	ReqHeader    http.Header `json:"req_header,omitempty"`
	ReqBody      []byte      `json:"req_body,omitempty"`
	ReqSize      int64       `json:"req_size"` // true size, even when truncated; -1 unknown
	ReqTruncated bool        `json:"req_truncated,omitempty"`

	Status        int         `json:"status,omitempty"` // 0: no answer, or see StatusUnrecorded
	RespProto     string      `json:"resp_proto,omitempty"`
	RespHeader    http.Header `json:"resp_header,omitempty"`
	RespBody      []byte      `json:"resp_body,omitempty"`
	RespSize      int64       `json:"resp_size"` // bytes seen so far / true size when Complete
	RespTruncated bool        `json:"resp_truncated,omitempty"`

	Err      string `json:"err,omitempty"`
	Complete bool   `json:"complete"`
}

// StatusUnrecorded says the response came (its head was received: headers
// or a body are recorded) but its status was not recorded: a HAR producer
// lost it (Firefox writes status 0 for a fetch whose page navigated away).
// The analysis reads such an answer's headers and body and does not judge
// its status.
func (e *Exchange) StatusUnrecorded() bool {
	return e.Status == 0 && e.Err == "" && !e.ResponseAt.IsZero()
}

// URL returns the absolute URL of the request as the client addressed it:
// scheme://host followed by the raw target. Absolute-form targets (forward
// proxy) are returned as they are.
func (e *Exchange) URL() string {
	if len(e.Target) > 0 && e.Target[0] != '/' && e.Target != "*" {
		return e.Target
	}
	scheme := e.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + e.Host + e.Target
}

// Duration is the time from the request's start to its end (or to now's last
// known point for an open stream).
func (e *Exchange) Duration() time.Duration {
	switch {
	case !e.End.IsZero():
		return e.End.Sub(e.Start)
	case !e.ResponseAt.IsZero():
		return e.ResponseAt.Sub(e.Start)
	}
	return 0
}

var idCounter atomic.Uint64

// NewID returns a sortable identifier: the time in nanoseconds as 16 hex digits
// followed by a process-wide counter, so IDs made in one process sort in the
// order they were made and double as bbolt keys.
func NewID(t time.Time) string {
	return fmt.Sprintf("%016x%06x", uint64(t.UnixNano()), idCounter.Add(1)&0xffffff)
}

// IDFloor is the least ID NewID can return for time t (it uses no
// counter): every exchange that started before t sorts below it.
func IDFloor(t time.Time) string { return fmt.Sprintf("%016x", uint64(t.UnixNano())) }

// Source says where a session came from.
type Source string

const (
	SourceProxy  Source = "proxy"
	SourceImport Source = "import"
	SourceReplay Source = "replay"
	SourceDemo   Source = "demo"
	SourceCheck  Source = "check"
)

// Session is one recording: a proxy run, a HAR import, a replay or a demo.
type Session struct {
	ID        string            `json:"id"`
	Source    Source            `json:"source"`
	Name      string            `json:"name,omitempty"` // upstream URL, HAR path, …
	Started   time.Time         `json:"started"`
	Ended     time.Time         `json:"ended,omitempty"` // zero while recording (or after a crash)
	Exchanges int               `json:"exchanges"`
	Dropped   uint64            `json:"dropped,omitempty"` // exchanges the recorder could not keep up with
	Pruned    uint64            `json:"pruned,omitempty"`  // earliest exchanges deleted while recording (--retain, --max-db-size)
	Settings  map[string]string `json:"settings,omitempty"`
}
