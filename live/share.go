package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/recorder"
)

// A running capture holds its database file exclusively (bbolt's lock), so
// no other process can open it, not even to read. Instead the capture serves
// reads of its own store on a Unix socket beside the file, and the commands
// that only read (sessions, report, replay, export) go through it when the
// file is busy. The owner's read transactions are consistent snapshots that
// run beside its writer, the socket is a file (mode 0600 in the 0700 data
// directory: only the user who runs mcptap can connect), and nothing listens
// on the network. A lock-free read of the file from another process is not an
// option: bbolt reuses freed pages while it writes, so such a reader could
// see a half-written tree.

// ReadSocket is where a capture recording into dbPath serves reads.
func ReadSocket(dbPath string) string { return dbPath + ".sock" }

// exchangePage bounds one read transaction of the read API.
const exchangePage = 256

type readServer struct {
	srv  *http.Server
	ln   net.Listener
	path string
}

// serveReads serves store's reads on ReadSocket(store.Path()). It replaces a
// socket that nobody answers on (left by a crash); one that answers belongs
// to another capture of the same file in this process and is left alone.
func serveReads(store *recorder.Store, live string, log *slog.Logger) (*readServer, error) {
	path := ReadSocket(store.Path())
	ln, err := net.Listen("unix", path)
	if err != nil {
		if c, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
			c.Close()
			return nil, fmt.Errorf("read API: %s is already served", path)
		}
		_ = os.Remove(path)
		if ln, err = net.Listen("unix", path); err != nil {
			return nil, fmt.Errorf("read API: %w", err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("read API: %w", err)
	}
	mux := http.NewServeMux()
	h := &readHandler{store: store, live: live}
	mux.HandleFunc("GET /v1/sessions", h.sessions)
	mux.HandleFunc("GET /v1/session", h.session)
	mux.HandleFunc("GET /v1/exchanges", h.exchanges)
	mux.HandleFunc("GET /v1/exchange", h.exchange)
	rs := &readServer{ln: ln, path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go func() { _ = rs.srv.Serve(ln) }()
	return rs, nil
}

// close stops serving: readers in the middle of a stream get until ctx ends,
// then are cut (their client reports the cut stream).
func (rs *readServer) close(ctx context.Context) {
	if rs.srv.Shutdown(ctx) != nil {
		_ = rs.srv.Close()
	}
	_ = os.Remove(rs.path)
}

type readHandler struct {
	store *recorder.Store
	live  string // the session being recorded: its copies say so (RecordingSetting)
}

// RecordingSetting is the session setting the read API adds to the session a
// running capture is still recording ("true"): without an end time it would
// otherwise read as crashed.
const RecordingSetting = "recording"

func (h *readHandler) mark(s mcptap.Session) mcptap.Session {
	if s.ID == h.live {
		settings := make(map[string]string, len(s.Settings)+1)
		for k, v := range s.Settings {
			settings[k] = v
		}
		settings[RecordingSetting] = "true"
		s.Settings = settings
	}
	return s
}

// apiError is the body of a failed read: kind lets the client give back the
// recorder's sentinel errors.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"` // "not-found", "no-sessions"
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	e := apiError{Error: err.Error()}
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, recorder.ErrNoSessions):
		e.Kind, code = "no-sessions", http.StatusNotFound
	case errors.Is(err, recorder.ErrNotFound):
		e.Kind, code = "not-found", http.StatusNotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(e)
}

func (h *readHandler) sessions(w http.ResponseWriter, _ *http.Request) {
	ss, err := h.store.Sessions()
	if err != nil {
		writeErr(w, err)
		return
	}
	for i := range ss {
		ss[i] = h.mark(ss[i])
	}
	writeJSON(w, ss)
}

// session answers ?id= (exact), ?prefix= (FindSession) or neither (Latest).
func (h *readHandler) session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var s mcptap.Session
	var err error
	switch {
	case q.Has("id"):
		s, err = h.store.Session(q.Get("id"))
	case q.Has("prefix"):
		s, err = h.store.FindSession(q.Get("prefix"))
	default:
		s, err = h.store.Latest()
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, h.mark(s))
}

// streamEnd is the last line of a complete exchange stream: a reader that
// does not see it got a cut stream, not a short session.
type streamEnd struct {
	End   bool   `json:"end"`
	Count int    `json:"count"`
	Error string `json:"error,omitempty"`
}

// exchanges streams a session's exchanges as JSON lines, a page per read
// transaction, and ends with a streamEnd line (carrying the error of a walk
// that failed after the first line).
func (h *readHandler) exchanges(w http.ResponseWriter, r *http.Request) {
	session := r.URL.Query().Get("session")
	enc := json.NewEncoder(w)
	started := false
	after := ""
	n := 0
	for {
		next, err := h.store.ExchangePage(session, after, exchangePage, func(ex mcptap.Exchange) error {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				started = true
			}
			n++
			return enc.Encode(ex)
		})
		if err != nil {
			if !started {
				writeErr(w, err)
				return
			}
			_ = enc.Encode(streamEnd{End: true, Count: n, Error: err.Error()})
			return
		}
		if r.Context().Err() != nil {
			return // the reader left
		}
		if next == "" {
			break
		}
		after = next
	}
	if !started {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	_ = enc.Encode(streamEnd{End: true, Count: n})
}

func (h *readHandler) exchange(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ex, err := h.store.Exchange(q.Get("session"), q.Get("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, ex)
}

// remote is a recorder.Reader over a running capture's read API.
type remote struct {
	db string
	c  *http.Client
}

// DialReads connects to the read API of the capture that is recording into
// dbPath. It fails when no capture serves that file.
func DialReads(dbPath string) (recorder.Reader, error) {
	sock := ReadSocket(dbPath)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	r := &remote{db: dbPath, c: &http.Client{Transport: tr}}
	if _, err := r.Sessions(); err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("no running mcptap serves %s: %w", dbPath, err)
	}
	return r, nil
}

func (r *remote) Path() string { return r.db }

func (r *remote) Close() error {
	r.c.CloseIdleConnections()
	return nil
}

func (r *remote) get(path string, q url.Values) (*http.Response, error) {
	resp, err := r.c.Get("http://mcptap" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("%s (through the running mcptap): %w", r.db, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e apiError
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, remoteErr(e)
	}
	return resp, nil
}

// remoteErr gives back the recorder's sentinels, so callers' errors.Is holds.
func remoteErr(e apiError) error {
	switch e.Kind {
	case "no-sessions":
		return fmt.Errorf("%s: %w", e.Error, recorder.ErrNoSessions)
	case "not-found":
		return fmt.Errorf("%s: %w", e.Error, recorder.ErrNotFound)
	}
	return errors.New(e.Error)
}

func (r *remote) decode(path string, q url.Values, v any) error {
	resp, err := r.get(path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s (through the running mcptap): %w", r.db, err)
	}
	return nil
}

func (r *remote) Sessions() ([]mcptap.Session, error) {
	var ss []mcptap.Session
	return ss, r.decode("/v1/sessions", nil, &ss)
}

func (r *remote) Session(id string) (mcptap.Session, error) {
	var s mcptap.Session
	return s, r.decode("/v1/session", url.Values{"id": {id}}, &s)
}

func (r *remote) Latest() (mcptap.Session, error) {
	var s mcptap.Session
	return s, r.decode("/v1/session", nil, &s)
}

func (r *remote) FindSession(prefix string) (mcptap.Session, error) {
	var s mcptap.Session
	return s, r.decode("/v1/session", url.Values{"prefix": {prefix}}, &s)
}

func (r *remote) Exchange(session, id string) (mcptap.Exchange, error) {
	var ex mcptap.Exchange
	return ex, r.decode("/v1/exchange", url.Values{"session": {session}, "id": {id}}, &ex)
}

func (r *remote) Exchanges(session string, fn func(mcptap.Exchange) error) error {
	resp, err := r.get("/v1/exchanges", url.Values{"session": {session}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewReader(resp.Body)
	n := 0
	for {
		line, err := sc.ReadBytes('\n')
		if len(line) > 0 {
			var end streamEnd
			if json.Unmarshal(line, &end) == nil && end.End {
				if end.Error != "" {
					return fmt.Errorf("%s (through the running mcptap): %s", r.db, end.Error)
				}
				if end.Count != n {
					return fmt.Errorf("%s (through the running mcptap): got %d of %d exchanges", r.db, n, end.Count)
				}
				return nil
			}
			n++
			var ex mcptap.Exchange
			if err := json.Unmarshal(line, &ex); err != nil {
				return fmt.Errorf("%s (through the running mcptap): %w", r.db, err)
			}
			if err := fn(ex); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return fmt.Errorf("%s (through the running mcptap): the stream ended after %d exchanges without its end mark", r.db, n)
		}
		if err != nil {
			return fmt.Errorf("%s (through the running mcptap): %w", r.db, err)
		}
	}
}
