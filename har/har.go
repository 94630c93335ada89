package har

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/redact"
)

// HAR 1.2 types, hand-rolled (see dependencies.md 4.1): only the fields
// mcptap reads or writes. Numbers that tools disagree on (some write strings
// or null) use harNum; unknown members, including browser extensions such as
// Chrome's _initiator and _resourceType, are ignored on read.

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Comment string `json:"comment,omitempty"`
}

type harEntry struct {
	StartedDateTime string       `json:"startedDateTime"`
	Time            harNum       `json:"time"`
	Request         *harRequest  `json:"request"`
	Response        *harResponse `json:"response"`
	Cache           harObject    `json:"cache"`
	Timings         *harTimings  `json:"timings"`
	Comment         string       `json:"comment,omitempty"`
	Error           looseString  `json:"_error,omitempty"`
	Mcptap          *harMcptap   `json:"_mcptap,omitempty"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         *string      `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     harList      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize harNum       `json:"headersSize"`
	BodySize    harNum       `json:"bodySize"`
	Comment     string       `json:"comment,omitempty"`
}

type harResponse struct {
	Status      harNum      `json:"status"`
	StatusText  string      `json:"statusText"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     harList     `json:"cookies"`
	Headers     []harNV     `json:"headers"`
	Content     harContent  `json:"content"`
	RedirectURL string      `json:"redirectURL"`
	HeadersSize harNum      `json:"headersSize"`
	BodySize    harNum      `json:"bodySize"`
	Comment     string      `json:"comment,omitempty"`
	Error       looseString `json:"_error,omitempty"` // Chrome: "net::ERR_…"
}

type harNV struct {
	Name  string      `json:"name"`
	Value looseString `json:"value"`
}

type harPostData struct {
	MimeType string      `json:"mimeType"`
	Text     looseString `json:"text"`
	Params   []harNV     `json:"params,omitempty"`
	// Encoding is not in HAR 1.2 (which has no way to carry a binary request
	// body); mcptap writes "base64" here for non-UTF-8 bodies and honours it.
	Encoding string `json:"encoding,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

type harContent struct {
	Size        harNum       `json:"size"`
	Compression *harNum      `json:"compression,omitempty"`
	MimeType    string       `json:"mimeType"`
	Text        *looseString `json:"text,omitempty"`
	Encoding    string       `json:"encoding,omitempty"`
	Comment     string       `json:"comment,omitempty"`
}

type harTimings struct {
	Blocked harNum `json:"blocked"`
	DNS     harNum `json:"dns"`
	Connect harNum `json:"connect"`
	Send    harNum `json:"send"`
	Wait    harNum `json:"wait"`
	Receive harNum `json:"receive"`
	SSL     harNum `json:"ssl"`
}

// harMcptap carries what HAR cannot say, so that mcptap's own export reads
// back into the same exchanges. Other tools ignore members starting with "_".
type harMcptap struct {
	ID            string `json:"id"`
	Seq           uint64 `json:"seq"`
	Listener      string `json:"listener,omitempty"`
	Mode          string `json:"mode,omitempty"`
	Upstream      string `json:"upstream,omitempty"`
	Remote        string `json:"remote,omitempty"`
	Scheme        string `json:"scheme"`
	Host          string `json:"host"`
	Target        string `json:"target"`
	ResponseAt    string `json:"responseAt,omitempty"`
	End           string `json:"end,omitempty"`
	ReqSize       int64  `json:"reqSize"`
	ReqTruncated  bool   `json:"reqTruncated,omitempty"`
	RespSize      int64  `json:"respSize"`
	RespTruncated bool   `json:"respTruncated,omitempty"`
	Complete      bool   `json:"complete"`
	Proto         string `json:"proto,omitempty"`
	RespProto     string `json:"respProto,omitempty"`
}

// harObject and harList stand for members mcptap neither reads nor fills
// (cache, cookies): any value is accepted on read, so an exporter's variant
// cannot fail an import, and an empty one is written.
type (
	harObject struct{}
	harList   struct{}
)

func (harObject) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
func (*harObject) UnmarshalJSON([]byte) error  { return nil }
func (harList) MarshalJSON() ([]byte, error)   { return []byte("[]"), nil }
func (*harList) UnmarshalJSON([]byte) error    { return nil }

// harNum is a HAR number. It also accepts null (absent), numeric strings and
// omitted values, which some exporters write; absent reads as -1, HAR's
// "not available".
type harNum struct {
	V   float64
	Set bool
}

func (n harNum) MarshalJSON() ([]byte, error) {
	if !n.Set {
		return []byte("-1"), nil
	}
	return strconv.AppendFloat(nil, n.V, 'f', -1, 64), nil
}

func (n *harNum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = harNum{}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*n = harNum{}
			return nil
		}
		b = []byte(s)
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		// A type error, so that encoding/json adds the field's path.
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("%.40q", b), Type: reflect.TypeFor[float64]()}
	}
	*n = harNum{V: v, Set: true}
	return nil
}

func num(v float64) harNum { return harNum{V: v, Set: true} }

// get returns the value, or def when it is absent or negative (unknown).
func (n harNum) get(def float64) float64 {
	if !n.Set || n.V < 0 {
		return def
	}
	return n.V
}

// looseString is a string that also accepts null and, for odd exporters,
// any other JSON value (kept as its JSON text).
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*s = ""
	case len(b) > 1 && b[0] == '"':
		// Most values have no escapes: take the bytes between the quotes
		// instead of a second pass through encoding/json (header values and
		// bodies are most of a HAR file).
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*s = looseString(inner)
			return nil
		}
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = looseString(v)
	default:
		*s = looseString(b)
	}
	return nil
}

// Error says which part of a HAR file could not be read. Entry is the
// zero-based index in log.entries (as in jq's .log.entries[N]), or -1 when the
// problem is outside the entries.
type Error struct {
	Entry int
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Entry >= 0 {
		fmt.Fprintf(&b, "entry %d: ", e.Entry)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return strings.TrimSuffix(b.String(), ": ")
}

func (e *Error) Unwrap() error { return e.Err }

var errMissing = errors.New("missing")

// ReadHAR reads a HAR file (HAR 1.2 as written by Chrome/Chromium DevTools,
// including its sanitized export, Firefox, mitmproxy, Charles and WriteHAR)
// into exchanges, one per entry, in file order. It returns every entry or an
// error: anything unreadable is a *Error naming the entry and field.
//
// Imported exchanges have Mode mcptap.ModeHAR, Complete true, and an ID made
// from the entry's start time and index, so reading the same file twice gives
// the same IDs. Entries written by WriteHAR carry an "_mcptap" member and come
// back as the exchanges they were exported from (IDs, modes, raw targets).
// Entries are decoded one at a time, so memory holds the exchanges, not the
// file's JSON.
func Read(r io.Reader) ([]mcptap.Exchange, error) { return ReadFunc(r, nil) }

// ReadFile reads the HAR file name as Read does; an error names the file.
func ReadFile(name string) ([]mcptap.Exchange, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exs, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return exs, nil
}

// ReadFunc is Read that also hands each exchange to each (when not nil) as
// soon as its entry is decoded, with its index in the entries (from 0; a
// second log.entries member starts over at 0, and only its entries are
// returned): an analysis can run while the rest of the file is read.
func ReadFunc(r io.Reader, each func(i int, ex mcptap.Exchange)) ([]mcptap.Exchange, error) {
	rd := &harReader{src: r, each: each}
	if sk, ok := r.(io.Seeker); ok {
		if pos, err := sk.Seek(0, io.SeekCurrent); err == nil {
			rd.seeker, rd.start = sk, pos
		}
	}
	br := bufio.NewReaderSize(r, 256<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		// A UTF-8 byte order mark, as some Windows tools (Fiddler) write.
		br.Discard(3)
		rd.start += 3
	}
	rd.dec = json.NewDecoder(br)
	exs, err := rd.read()
	if err != nil {
		return nil, err
	}
	return exs, nil
}

type harReader struct {
	src    io.Reader
	seeker io.Seeker
	start  int64
	dec    *json.Decoder
	exs    []mcptap.Exchange
	each   func(int, mcptap.Exchange)
	// entryAt is the decoder's offset before the entry being decoded (before
	// its separating comma), to place errors inside it.
	entryAt int64
}

func (rd *harReader) read() ([]mcptap.Exchange, error) {
	if err := rd.expectDelim('{', -1, "", "not a HAR file: the top level is not a JSON object"); err != nil {
		return nil, err
	}
	sawLog := false
	for rd.dec.More() {
		key, err := rd.key(-1, "")
		if err != nil {
			return nil, err
		}
		if key != "log" {
			if err := rd.skip(-1, key); err != nil {
				return nil, err
			}
			continue
		}
		sawLog = true
		if err := rd.readLog(); err != nil {
			return nil, err
		}
	}
	if _, err := rd.dec.Token(); err != nil { // the closing '}': a cut file fails here
		return nil, rd.jsonErr(-1, "", err)
	}
	// Anything but white space after the HAR object (a second document, a
	// concatenated file) is refused: half a file is never imported silently.
	if tok, err := rd.dec.Token(); err != io.EOF {
		what := fmt.Sprintf("%v", tok)
		if err != nil {
			what = err.Error()
		}
		return nil, &Error{Entry: -1, Field: "", Err: fmt.Errorf("unexpected data after the HAR object (%s at byte %d): one HAR document per file", what, rd.dec.InputOffset())}
	}
	if !sawLog {
		return nil, &Error{Entry: -1, Field: "log", Err: errMissing}
	}
	if rd.exs == nil {
		return nil, &Error{Entry: -1, Field: "log.entries", Err: errMissing}
	}
	return rd.exs, nil
}

func (rd *harReader) readLog() error {
	if err := rd.expectDelim('{', -1, "log", "not an object"); err != nil {
		return err
	}
	for rd.dec.More() {
		key, err := rd.key(-1, "log")
		if err != nil {
			return err
		}
		if key != "entries" {
			if err := rd.skip(-1, "log."+key); err != nil {
				return err
			}
			continue
		}
		tok, err := rd.dec.Token()
		if err != nil {
			return rd.jsonErr(-1, "log.entries", err)
		}
		if tok == nil {
			continue // null: reported as missing unless another entries member follows
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return &Error{Entry: -1, Field: "log.entries", Err: errors.New("not an array")}
		}
		rd.exs = make([]mcptap.Exchange, 0, 64)
		for i := 0; rd.dec.More(); i++ {
			var e harEntry
			rd.entryAt = rd.dec.InputOffset()
			if err := rd.dec.Decode(&e); err != nil {
				return rd.jsonErr(i, "", err)
			}
			ex, err := entryExchange(i, &e)
			if err != nil {
				return err
			}
			rd.exs = append(rd.exs, ex)
			if rd.each != nil {
				rd.each(i, ex)
			}
		}
		if _, err := rd.dec.Token(); err != nil { // ']'
			return rd.jsonErr(-1, "log.entries", err)
		}
	}
	if _, err := rd.dec.Token(); err != nil { // '}'
		return rd.jsonErr(-1, "log", err)
	}
	return nil
}

func (rd *harReader) expectDelim(want json.Delim, entry int, field, msg string) error {
	tok, err := rd.dec.Token()
	if err != nil {
		if err == io.EOF {
			return &Error{Entry: entry, Field: field, Err: errors.New("empty file")}
		}
		return rd.jsonErr(entry, field, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return &Error{Entry: entry, Field: field, Err: errors.New(msg)}
	}
	return nil
}

func (rd *harReader) key(entry int, field string) (string, error) {
	tok, err := rd.dec.Token()
	if err != nil {
		return "", rd.jsonErr(entry, field, err)
	}
	k, ok := tok.(string)
	if !ok {
		return "", &Error{Entry: entry, Field: field, Err: fmt.Errorf("unexpected %v", tok)}
	}
	return k, nil
}

// skip consumes one value without keeping it (pages, creator, unknown members).
func (rd *harReader) skip(entry int, field string) error {
	depth := 0
	for {
		tok, err := rd.dec.Token()
		if err != nil {
			return rd.jsonErr(entry, field, err)
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// jsonErr turns a decoding error into a Error with a line and column when
// the input can be re-read (a file), else with a byte offset.
func (rd *harReader) jsonErr(entry int, field string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Entry: entry, Field: field, Err: fmt.Errorf("%s: %s", rd.syntaxPos(entry, se.Offset), se.Error())}
	case errors.As(err, &te):
		f := te.Field
		if field != "" && f != "" {
			f = field + "." + f
		} else if f == "" {
			f = field
		}
		msg := fmt.Sprintf("is %s, want %s", te.Value, jsonKind(te.Type))
		if f == "" && entry >= 0 {
			msg = fmt.Sprintf("is %s, want an object", te.Value)
		}
		if te.Offset > 0 && entry >= 0 {
			// Inside Decode, offsets count from the start of the entry.
			if start, ok := rd.entryStart(); ok {
				msg = "near " + rd.position(start+te.Offset) + ": " + msg
			}
		}
		return &Error{Entry: entry, Field: f, Err: errors.New(msg)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Entry: entry, Field: field, Err: errors.New("the file ends early (truncated?)")}
	}
	return &Error{Entry: entry, Field: field, Err: err}
}

// jsonKind names a Go type the way a HAR author thinks of it.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[harNum]() {
		return "a number"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64, reflect.Uint64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// syntaxPos locates a syntax error. encoding/json's Decoder reports offsets
// that drift by the bytes its Token calls consumed, so inside an entry the
// entry is re-scanned from its start with a fresh decoder, whose offsets are
// exact. Elsewhere the reported offset is given as approximate.
func (rd *harReader) syntaxPos(entry int, off int64) string {
	if rd.seeker == nil {
		return fmt.Sprintf("near byte %d", off)
	}
	if entry >= 0 {
		if start, ok := rd.entryStart(); ok {
			if _, err := rd.seeker.Seek(rd.start+start, io.SeekStart); err == nil {
				var raw json.RawMessage
				var se *json.SyntaxError
				if err := json.NewDecoder(rd.src).Decode(&raw); errors.As(err, &se) {
					return rd.position(start + se.Offset - 1)
				}
			}
		}
	}
	return "near " + rd.position(off)
}

// entryStart finds the offset of the first byte of the current entry: after
// rd.entryAt, past white space and one comma.
func (rd *harReader) entryStart() (int64, bool) {
	if rd.seeker == nil {
		return 0, false
	}
	if _, err := rd.seeker.Seek(rd.start+rd.entryAt, io.SeekStart); err != nil {
		return 0, false
	}
	br := bufio.NewReader(rd.src)
	off, comma := rd.entryAt, false
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, false
		}
		switch {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
		case b == ',' && !comma:
			comma = true
		default:
			return off, true
		}
		off++
	}
}

// position renders the byte at offset off as "line L, column C" by re-reading
// the input up to it (only on an error, and only when the input can seek).
func (rd *harReader) position(off int64) string {
	if rd.seeker == nil || off < 0 {
		return fmt.Sprintf("byte %d", off)
	}
	if _, err := rd.seeker.Seek(rd.start, io.SeekStart); err != nil {
		return fmt.Sprintf("byte %d", off)
	}
	br := bufio.NewReader(io.LimitReader(rd.src, off))
	line, col := 1, 1
	for {
		b, err := br.ReadByte()
		if err != nil {
			break
		}
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// parseHARTime accepts RFC 3339 (Chrome, Firefox, mitmproxy, Charles) and
// two variants seen in the wild: a +hhmm offset and no zone (taken as UTC).
func parseHARTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an RFC 3339 time: %.60q", s)
}

func msDuration(ms float64) time.Duration {
	return time.Duration(math.Round(ms * 1e6))
}

func entryExchange(i int, e *harEntry) (mcptap.Exchange, error) {
	fail := func(field string, err error) (mcptap.Exchange, error) {
		return mcptap.Exchange{}, &Error{Entry: i, Field: field, Err: err}
	}
	ex := mcptap.Exchange{Seq: uint64(i), Mode: mcptap.ModeHAR, Complete: true}
	if e.StartedDateTime == "" {
		return fail("startedDateTime", errMissing)
	}
	start, err := parseHARTime(e.StartedDateTime)
	if err != nil {
		return fail("startedDateTime", err)
	}
	ex.Start = start
	ex.ID = fmt.Sprintf("%016x%06x", uint64(start.UnixNano()), i&0xffffff)
	if e.Time.Set && e.Time.V >= 0 {
		ex.End = start.Add(msDuration(e.Time.V))
	} else {
		ex.End = start
	}

	q := e.Request
	if q == nil {
		return fail("request", errMissing)
	}
	if q.Method == "" {
		return fail("request.method", errMissing)
	}
	ex.Method = q.Method
	if q.URL == nil || *q.URL == "" {
		return fail("request.url", errMissing)
	}
	ex.Scheme, ex.Host, ex.Target, err = splitURL(*q.URL)
	if err != nil {
		return fail("request.url", err)
	}
	ex.Proto = q.HTTPVersion
	ex.ReqHeader = harHeader(q.Headers)
	if p := q.PostData; p != nil {
		switch {
		case p.Encoding == "base64":
			if ex.ReqBody, err = decodeBase64(string(p.Text)); err != nil {
				return fail("request.postData.text", err)
			}
		case p.Text != "":
			ex.ReqBody = []byte(p.Text)
		case len(p.Params) > 0 && isFormType(p.MimeType): // Firefox and older Chrome: form fields only
			ex.ReqBody = []byte(joinParams(p.Params))
		case len(p.Params) > 0:
			// Params of a body that is not a form (chrome-har writes JSON
			// bodies so): the body itself is not in the file.
			ex.ReqTruncated = true
		}
	}
	ex.ReqSize = int64(len(ex.ReqBody))
	if bs := int64(q.BodySize.get(-1)); bs > ex.ReqSize {
		ex.ReqSize, ex.ReqTruncated = bs, true
	} else if ex.ReqTruncated {
		ex.ReqSize = -1
	}

	if p := e.Response; p != nil {
		st := p.Status.get(0)
		if st != math.Trunc(st) || st > 999 {
			return fail("response.status", fmt.Errorf("not an HTTP status: %v", p.Status.V))
		}
		ex.Status = int(st)
		ex.RespProto = p.HTTPVersion
		ex.RespHeader = harHeader(p.Headers)
		if p.RedirectURL != "" && ex.RespHeader.Get("Location") == "" {
			// Sanitizing or odd exporters drop headers; the redirect target is
			// what the analysis needs, byte for byte.
			if ex.RespHeader == nil {
				ex.RespHeader = http.Header{}
			}
			ex.RespHeader["Location"] = []string{p.RedirectURL}
		}
		c := &p.Content
		if c.Text != nil && *c.Text != "" {
			if strings.EqualFold(c.Encoding, "base64") {
				if ex.RespBody, err = decodeBase64(string(*c.Text)); err != nil {
					return fail("response.content.text", err)
				}
			} else {
				ex.RespBody = []byte(*c.Text)
			}
		}
		ex.RespSize = int64(len(ex.RespBody))
		sz := int64(c.Size.get(-1))
		switch {
		case sz > ex.RespSize:
			ex.RespSize, ex.RespTruncated = sz, true
		case c.Text == nil && sz != 0 && bodyExpected(ex.Status):
			// No text at all and a size that is not zero (or unknown): the
			// producer left the body out (Playwright, chrome-har-capturer
			// when the page navigated first). Recorded as cut at nothing, so
			// the analysis says "not checked" instead of judging an empty body.
			ex.RespSize, ex.RespTruncated = sz, true
		}
		ex.Err = string(p.Error)
	}
	if ex.Err == "" {
		ex.Err = string(e.Error)
	}
	// Status 0 with the response's headers or body recorded: the answer
	// came and the producer lost its status (Firefox's Network Monitor
	// for a fetch that finished as its page navigated away, or before the
	// panel caught up). Kept as an answer whose status was not recorded
	// (mcptap.Exchange.StatusUnrecorded), not as no answer.
	answered := ex.Status != 0 || ex.Err == "" && (len(ex.RespHeader) > 0 || len(ex.RespBody) > 0)
	if !answered && ex.Err == "" {
		ex.Err = "no response recorded (status 0)"
	}
	if answered {
		ex.ResponseAt = ex.End
		if t := e.Timings; t != nil {
			pre := t.Blocked.get(0) + t.DNS.get(0) + t.Connect.get(0) + t.Send.get(0) + t.Wait.get(0)
			if at := start.Add(msDuration(pre)); !at.After(ex.End) {
				ex.ResponseAt = at
			}
		}
	}
	if m := e.Mcptap; m != nil {
		if err := m.apply(&ex); err != nil {
			return fail("_mcptap", err)
		}
	}
	return ex, nil
}

// bodyExpected says a response with this status can carry a body.
func bodyExpected(status int) bool {
	return status >= 200 && status != 204 && status != 304 && (status < 300 || status >= 400)
}

// isFormType says a postData mimeType is a urlencoded form (or unnamed,
// which is how Firefox writes form params).
func isFormType(mt string) bool {
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "" || strings.HasPrefix(mt, "application/x-www-form-urlencoded")
}

// joinParams rebuilds a form body from postData.params. HAR 1.2 says the
// values are decoded, and most producers write them so; Chrome DevTools
// writes them as they were on the wire (still percent-encoded). Values that
// already hold a valid %XX escape and nothing a form must escape are taken
// as written, so such a body is not encoded a second time.
func joinParams(params []harNV) string {
	raw := true
	for _, nv := range params {
		if !looksEncoded(nv.Name) || !looksEncoded(string(nv.Value)) {
			raw = false
			break
		}
	}
	escaped := false
	for _, nv := range params {
		if strings.Contains(nv.Name+string(nv.Value), "%") {
			escaped = true
		}
	}
	raw = raw && escaped
	var b strings.Builder
	for j, nv := range params {
		if j > 0 {
			b.WriteByte('&')
		}
		if raw {
			b.WriteString(nv.Name + "=" + string(nv.Value))
			continue
		}
		b.WriteString(url.QueryEscape(nv.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(string(nv.Value)))
	}
	return b.String()
}

// looksEncoded says s could be a form-encoded value as on the wire: every %
// starts a valid escape and nothing appears that form encoding escapes.
func looksEncoded(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		case c == ' ' || c == '&' || c == '=' || c == '#' || c == '"' || c < 0x20 || c >= 0x7f:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// apply restores what mcptap's own export recorded beyond HAR.
func (m *harMcptap) apply(ex *mcptap.Exchange) error {
	if m.ID == "" {
		return errors.New("id: missing")
	}
	ex.ID, ex.Seq = m.ID, m.Seq
	ex.Listener, ex.Upstream, ex.RemoteAddr = m.Listener, m.Upstream, m.Remote
	if m.Mode != "" {
		ex.Mode = mcptap.Mode(m.Mode)
	}
	if m.Target != "" { // an empty target is never recorded: keep the URL's
		ex.Scheme, ex.Host, ex.Target = m.Scheme, m.Host, m.Target
	}
	ex.Proto, ex.RespProto = m.Proto, m.RespProto
	ex.ReqSize, ex.ReqTruncated = m.ReqSize, m.ReqTruncated
	ex.RespSize, ex.RespTruncated = m.RespSize, m.RespTruncated
	ex.Complete = m.Complete
	ex.ResponseAt, ex.End = time.Time{}, time.Time{}
	for _, f := range []struct {
		s string
		t *time.Time
	}{{m.ResponseAt, &ex.ResponseAt}, {m.End, &ex.End}} {
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.s)
		if err != nil {
			return err
		}
		*f.t = t
	}
	if ex.Err == "no response recorded (status 0)" {
		ex.Err = "" // mcptap's own record says what the error was, if any
	}
	return nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	_, err := base64.StdEncoding.DecodeString(s)
	return nil, fmt.Errorf("bad base64: %w", err)
}

// harHeader converts HAR name/value pairs into an http.Header with canonical
// keys, keeping values byte for byte and in order. HTTP/2 pseudo-headers
// (":authority", ":path"…) that Chrome lists are left out: the URL carries them.
func harHeader(nvs []harNV) http.Header {
	if len(nvs) == 0 {
		return nil
	}
	h := make(http.Header, len(nvs))
	for _, nv := range nvs {
		if nv.Name == "" || nv.Name[0] == ':' {
			continue
		}
		h.Add(nv.Name, string(nv.Value))
	}
	return h
}

// splitURL splits an absolute URL into scheme, host and the raw request
// target (path and query exactly as written, fragment dropped) without
// parsing or re-encoding: an invalid escape such as %zz must survive. URLs
// without an authority (data:, about:blank) keep the whole URL as the target.
func splitURL(raw string) (scheme, host, target string, err error) {
	colon := strings.IndexByte(raw, ':')
	if colon <= 0 || !validScheme(raw[:colon]) {
		return "", "", "", fmt.Errorf("not an absolute URL: %.80q", raw)
	}
	scheme = strings.ToLower(raw[:colon])
	rest := raw[colon+1:]
	if !strings.HasPrefix(rest, "//") {
		return scheme, "", raw, nil
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, target = rest[:end], rest[end:]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if host == "" && scheme != "file" {
		return "", "", "", fmt.Errorf("no host: %.80q", raw)
	}
	if h := strings.IndexByte(target, '#'); h >= 0 {
		target = target[:h]
	}
	if target == "" || target[0] != '/' {
		target = "/" + target
	}
	return scheme, host, target, nil
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// WriteHAR writes a session's exchanges as HAR 1.2 with mcptap as creator.
// With a Redactor, every exchange is learned first and then written redacted,
// so a secret seen in one exchange is hidden wherever it appears. Bodies that
// are not UTF-8 are written base64 with encoding "base64"; truncated bodies
// say so in a comment. Each entry carries an "_mcptap" member so ReadHAR gives
// back the same exchanges.
func Write(w io.Writer, sess mcptap.Session, exs []mcptap.Exchange, red *redact.Redactor) error {
	if red != nil {
		for i := range exs {
			red.Learn(exs[i])
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)

	name := sess.Name
	redacted := "not redacted: this file contains secrets (tokens, codes, cookies) as recorded"
	if red != nil {
		name = red.Text(name)
		redacted = "redacted: secrets are replaced by keyed hashes that keep length and character class"
	}
	comment := fmt.Sprintf("mcptap session %s (%s", sess.ID, sess.Source)
	if name != "" {
		comment += ", " + name
	}
	comment += "); " + redacted
	head := struct {
		Version string     `json:"version"`
		Creator harCreator `json:"creator"`
		Pages   []struct{} `json:"pages"`
		Comment string     `json:"comment"`
	}{"1.2", harCreator{Name: "mcptap", Version: buildVersion()}, []struct{}{}, comment}
	hb, err := json.Marshal(head)
	if err != nil {
		return fmt.Errorf("write HAR: %w", err)
	}
	// Stream: the log's fixed members, then one entry per line.
	bw.WriteString(`{"log":`)
	bw.Write(hb[:len(hb)-1])
	bw.WriteString(",\n\"entries\":[\n")
	for i := range exs {
		ex := exs[i]
		if red != nil {
			ex = red.Exchange(ex)
		}
		if i > 0 {
			bw.WriteString(",")
		}
		if err := enc.Encode(exchangeEntry(&ex)); err != nil {
			return fmt.Errorf("write HAR entry %d (%s): %w", i, ex.ID, err)
		}
	}
	bw.WriteString("]}}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write HAR: %w", err)
	}
	return nil
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

func exchangeEntry(ex *mcptap.Exchange) *harEntry {
	e := &harEntry{StartedDateTime: ex.Start.Format(time.RFC3339Nano)}
	wait, receive := time.Duration(0), time.Duration(0)
	if !ex.ResponseAt.IsZero() {
		wait = ex.ResponseAt.Sub(ex.Start)
		if !ex.End.IsZero() {
			receive = ex.End.Sub(ex.ResponseAt)
		}
	} else if !ex.End.IsZero() {
		wait = ex.End.Sub(ex.Start)
	}
	wait, receive = max(wait, 0), max(receive, 0)
	e.Time = num(msOf(wait + receive))
	e.Timings = &harTimings{Send: num(0), Wait: num(msOf(wait)), Receive: num(msOf(receive))}
	e.Timings.Blocked, e.Timings.DNS, e.Timings.Connect, e.Timings.SSL = num(-1), num(-1), num(-1), num(-1)

	proto := ex.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	u := ex.URL()
	if ex.Host == "" && strings.HasPrefix(ex.Target, "/") {
		// An HTTP/1.0 request without Host: HAR needs an absolute URL. The
		// listener stands in; "_mcptap" keeps the empty Host.
		host := ex.Listener
		if host == "" {
			host = "unknown.invalid"
		}
		u = ex.Scheme + "://" + host + ex.Target
		if ex.Scheme == "" {
			u = "http" + u
		}
	}
	if _, _, _, err := splitURL(u); err != nil {
		// Not expressible as a URL (an empty target, say): keep the file
		// readable; "_mcptap" carries what was recorded.
		u = "http://unknown.invalid/"
	}
	e.Request = &harRequest{
		Method: ex.Method, URL: &u, HTTPVersion: proto,
		Headers: nvHeader(ex.ReqHeader), QueryString: queryPairs(ex.Target),
		HeadersSize: num(-1), BodySize: num(float64(ex.ReqSize)),
	}
	var notes []string
	if len(ex.ReqBody) > 0 || ex.ReqSize > 0 {
		p := &harPostData{MimeType: ex.ReqHeader.Get("Content-Type")}
		if utf8.Valid(ex.ReqBody) {
			p.Text = looseString(ex.ReqBody)
		} else {
			p.Text = looseString(base64.StdEncoding.EncodeToString(ex.ReqBody))
			p.Encoding = "base64"
			p.Comment = "not UTF-8: text is base64 (encoding is an mcptap extension of HAR 1.2)"
		}
		if ex.ReqTruncated {
			n := fmt.Sprintf("request body truncated by recorder: %d of %d bytes kept", len(ex.ReqBody), ex.ReqSize)
			p.Comment = strings.TrimPrefix(p.Comment+"; "+n, "; ")
			notes = append(notes, n)
		}
		e.Request.PostData = p
	}
	resp := &harResponse{
		Status: num(float64(ex.Status)), StatusText: http.StatusText(ex.Status), HTTPVersion: ex.RespProto,
		Headers:     nvHeader(ex.RespHeader),
		RedirectURL: ex.RespHeader.Get("Location"), HeadersSize: num(-1), BodySize: num(float64(ex.RespSize)),
		Error: looseString(ex.Err),
	}
	if resp.HTTPVersion == "" && ex.Status != 0 {
		resp.HTTPVersion = proto
	}
	resp.Content = harContent{Size: num(float64(max(ex.RespSize, int64(len(ex.RespBody))))), MimeType: ex.RespHeader.Get("Content-Type")}
	if len(ex.RespBody) > 0 {
		if utf8.Valid(ex.RespBody) {
			text := looseString(ex.RespBody)
			resp.Content.Text = &text
		} else {
			text := looseString(base64.StdEncoding.EncodeToString(ex.RespBody))
			resp.Content.Text = &text
			resp.Content.Encoding = "base64"
		}
	}
	if ex.RespTruncated {
		n := fmt.Sprintf("response body truncated by recorder: %d of %d bytes kept", len(ex.RespBody), ex.RespSize)
		resp.Content.Comment = n
		notes = append(notes, n)
	}
	if !ex.Complete {
		notes = append(notes, "incomplete: exported while the exchange was still open")
	}
	e.Response = resp
	e.Comment = strings.Join(notes, "; ")
	m := &harMcptap{
		ID: ex.ID, Seq: ex.Seq, Listener: ex.Listener, Mode: string(ex.Mode), Upstream: ex.Upstream, Remote: ex.RemoteAddr,
		Scheme: ex.Scheme, Host: ex.Host, Target: ex.Target,
		ReqSize: ex.ReqSize, ReqTruncated: ex.ReqTruncated, RespSize: ex.RespSize, RespTruncated: ex.RespTruncated,
		Complete: ex.Complete, Proto: ex.Proto, RespProto: ex.RespProto,
	}
	if !ex.ResponseAt.IsZero() {
		m.ResponseAt = ex.ResponseAt.Format(time.RFC3339Nano)
	}
	if !ex.End.IsZero() {
		m.End = ex.End.Format(time.RFC3339Nano)
	}
	e.Mcptap = m
	return e
}

// nvHeader lists a header's fields sorted by name (a map has no order; the
// values of one name keep theirs).
func nvHeader(h http.Header) []harNV {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]harNV, 0, len(h))
	for _, k := range keys {
		for _, v := range h[k] {
			out = append(out, harNV{Name: k, Value: looseString(v)})
		}
	}
	return out
}

// queryPairs lists the query of a raw target for HAR's queryString, decoded
// where possible; a value that does not decode (%zz) is kept raw. The raw
// bytes stay authoritative in request.url.
func queryPairs(target string) []harNV {
	out := []harNV{}
	q := strings.IndexByte(target, '?')
	if q < 0 {
		return out
	}
	for part := range strings.SplitSeq(target[q+1:], "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, harNV{Name: unescapeOrRaw(k), Value: looseString(unescapeOrRaw(v))})
	}
	return out
}

func unescapeOrRaw(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
