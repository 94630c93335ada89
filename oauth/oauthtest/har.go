// Package oauthtest builds recorded OAuth traffic for tests: a small builder
// of exchanges, a scenario generator covering every Tier-1 failure, and a
// Chrome-shaped HAR writer and reader with deterministic exchange IDs (so
// golden files stay stable).
package oauthtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

type harFile struct {
	Log harLog `json:"log"`
}

type harLog struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Pages   []any      `json:"pages"`
	Entries []harEntry `json:"entries"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harEntry struct {
	Initiator       map[string]string `json:"_initiator,omitempty"`
	ResourceType    string            `json:"_resourceType,omitempty"`
	StartedDateTime string            `json:"startedDateTime"`
	Time            float64           `json:"time"`
	Request         harRequest        `json:"request"`
	Response        harResponse       `json:"response"`
	Cache           struct{}          `json:"cache"`
	Timings         map[string]any    `json:"timings"`
	ServerIPAddress string            `json:"serverIPAddress,omitempty"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	Cookies     []any        `json:"cookies"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int          `json:"bodySize"`
	PostData    *harPostData `json:"postData,omitempty"`
}

type harPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Headers     []harNV    `json:"headers"`
	Cookies     []any      `json:"cookies"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int        `json:"bodySize"`
	Error       string     `json:"_error,omitempty"`
}

type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
}

func headerList(h http.Header) []harNV {
	var out []harNV
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			out = append(out, harNV{Name: strings.ToLower(k), Value: v})
		}
	}
	return out
}

// WriteHAR writes exs as a HAR 1.2 file shaped like a Chrome DevTools export.
func WriteHAR(w io.Writer, exs []mcptap.Exchange) error {
	f := harFile{Log: harLog{Version: "1.2", Creator: harCreator{Name: "WebInspector", Version: "537.36"}, Pages: []any{}}}
	for _, ex := range exs {
		u := ex.URL()
		e := harEntry{
			ResourceType:    "document",
			StartedDateTime: ex.Start.UTC().Format("2006-01-02T15:04:05.000Z"),
			Time:            float64(ex.Duration().Microseconds()) / 1000,
			Timings:         map[string]any{"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": float64(ex.Duration().Microseconds()) / 1000, "receive": 0, "ssl": -1},
		}
		if ex.Method != "GET" {
			e.ResourceType = "fetch"
		}
		e.Request = harRequest{Method: ex.Method, URL: u, HTTPVersion: "http/2.0", Headers: headerList(ex.ReqHeader), QueryString: []harNV{}, Cookies: []any{}, HeadersSize: -1, BodySize: len(ex.ReqBody)}
		if pu, err := url.Parse(u); err == nil {
			for _, kv := range strings.Split(pu.RawQuery, "&") {
				if kv == "" {
					continue
				}
				k, v, _ := strings.Cut(kv, "=")
				e.Request.QueryString = append(e.Request.QueryString, harNV{Name: k, Value: v})
			}
		}
		if len(ex.ReqBody) > 0 {
			e.Request.PostData = &harPostData{MimeType: ex.ReqHeader.Get("Content-Type"), Text: string(ex.ReqBody)}
		}
		e.Response = harResponse{Status: ex.Status, StatusText: http.StatusText(ex.Status), HTTPVersion: "http/2.0", Headers: headerList(ex.RespHeader), Cookies: []any{},
			Content:     harContent{Size: len(ex.RespBody), MimeType: ex.RespHeader.Get("Content-Type"), Text: string(ex.RespBody)},
			RedirectURL: ex.RespHeader.Get("Location"), HeadersSize: -1, BodySize: len(ex.RespBody), Error: ex.Err}
		if e.Response.Content.MimeType == "" {
			e.Response.Content.MimeType = "x-unknown"
		}
		f.Log.Entries = append(f.Log.Entries, e)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(f)
}

// ReadHAR reads a HAR file into exchanges with deterministic IDs (start time
// and entry index). It is a test helper, tolerant only of what WriteHAR and
// Chrome produce; the product's importer is recorder.ReadHAR.
func ReadHAR(r io.Reader) ([]mcptap.Exchange, error) {
	var f harFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return nil, fmt.Errorf("decode HAR: %w", err)
	}
	var out []mcptap.Exchange
	for i, e := range f.Log.Entries {
		start, err := time.Parse(time.RFC3339Nano, e.StartedDateTime)
		if err != nil {
			return nil, fmt.Errorf("entry %d: startedDateTime: %w", i, err)
		}
		scheme, rest, ok := strings.Cut(e.Request.URL, "://")
		if !ok {
			return nil, fmt.Errorf("entry %d: request.url: not absolute: %q", i, e.Request.URL)
		}
		host, target := rest, "/"
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			host, target = rest[:j], rest[j:]
			if target[0] == '?' {
				target = "/" + target
			}
		}
		ex := mcptap.Exchange{
			Version: mcptap.FormatVersion, ID: fmt.Sprintf("%016x%06x", uint64(start.UnixNano()), i), Seq: uint64(i),
			Mode: mcptap.ModeHAR, Start: start, Method: e.Request.Method, Scheme: scheme, Host: host, Target: target,
			ReqHeader: http.Header{}, RespHeader: http.Header{}, Status: e.Response.Status, Err: e.Response.Error, Complete: true,
		}
		d := time.Duration(e.Time * float64(time.Millisecond))
		ex.ResponseAt, ex.End = start.Add(d), start.Add(d)
		for _, h := range e.Request.Headers {
			ex.ReqHeader.Add(h.Name, h.Value)
		}
		for _, h := range e.Response.Headers {
			ex.RespHeader.Add(h.Name, h.Value)
		}
		if e.Request.PostData != nil {
			ex.ReqBody = []byte(e.Request.PostData.Text)
		}
		ex.ReqSize = int64(len(ex.ReqBody))
		ex.RespBody = []byte(e.Response.Content.Text)
		ex.RespSize = int64(len(ex.RespBody))
		out = append(out, ex)
	}
	return out, nil
}
