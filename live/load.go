package live

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

// InputError is bad input named by the user: a HAR file that cannot be
// read, or a session that does not exist. Commands exit 2 on it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// IsFile says whether a SESSION|FILE argument names a file rather than a
// stored session: a name ending in .har, a path with a separator, or an
// existing regular file.
func IsFile(arg string) bool {
	if arg == "" {
		return false
	}
	if strings.HasSuffix(strings.ToLower(arg), ".har") || strings.ContainsRune(arg, os.PathSeparator) {
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// Load reads what arg names: a HAR file (IsFile), or else a stored session
// of store (an ID prefix; "" is the latest). It is the one loader behind
// report, replay and replay --send; the analysis sorts what it returns.
func Load(arg string, store recorder.Reader) (mcptap.Session, []mcptap.Exchange, error) {
	return LoadMetered(arg, store, nil)
}

// Meter follows a long load for a progress line: Start names a phase and
// its total (0: unknown) in unit ("bytes", "exchanges"), Add counts what is
// done, Reader counts the bytes read through it.
type Meter interface {
	Start(phase string, total int64, unit string)
	Add(n int64)
	Reader(r io.Reader) io.Reader
}

// LoadMetered is Load reporting its progress to m (nil: none).
func LoadMetered(arg string, store recorder.Reader, m Meter) (mcptap.Session, []mcptap.Exchange, error) {
	return load(arg, store, m, nil)
}

// LoadAnalysed is LoadMetered that also analyses what it reads, while it
// reads it (oauth.Stream): the finished analysis is oauth.Batch's of the
// exchanges returned, in about the time of the longer of the two.
func LoadAnalysed(arg string, store recorder.Reader, m Meter, opts oauth.Options) (mcptap.Session, []mcptap.Exchange, *oauth.Tracker, error) {
	st := oauth.NewStream(opts)
	sess, exs, err := load(arg, store, m, st.Feed)
	t := st.Finish(exs) // ends the stream's goroutine, whatever the error
	if err != nil {
		return sess, nil, nil, err
	}
	return sess, exs, t, nil
}

func load(arg string, store recorder.Reader, m Meter, each func(int, mcptap.Exchange)) (mcptap.Session, []mcptap.Exchange, error) {
	if IsFile(arg) {
		return loadFile(arg, m, each)
	}
	if store == nil {
		return mcptap.Session{}, nil, fmt.Errorf("live: %q names a stored session and no database is open", arg)
	}
	return loadStored(store, arg, m, each)
}

// ReadHAR reads a HAR file, reporting the bytes read to m (nil: none).
func ReadHAR(f *os.File, m Meter) ([]mcptap.Exchange, error) { return readHAR(f, m, nil) }

func readHAR(f *os.File, m Meter, each func(int, mcptap.Exchange)) ([]mcptap.Exchange, error) {
	if m == nil {
		return har.ReadFunc(f, each)
	}
	var total int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		total = fi.Size()
	}
	m.Start("reading "+filepath.Base(f.Name()), total, "bytes")
	return har.ReadFunc(m.Reader(f), each)
}

func loadFile(path string, m Meter, each func(int, mcptap.Exchange)) (mcptap.Session, []mcptap.Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return mcptap.Session{}, nil, &InputError{fmt.Errorf("open %s: %w", path, err)}
	}
	defer f.Close()
	exs, err := readHAR(f, m, each)
	if err != nil {
		return mcptap.Session{}, nil, &InputError{fmt.Errorf("%s: %w", path, err)}
	}
	sess := mcptap.Session{ID: filepath.Base(path), Source: mcptap.SourceImport, Name: path, Exchanges: len(exs)}
	for i := range exs {
		if sess.Started.IsZero() || exs[i].Start.Before(sess.Started) {
			sess.Started = exs[i].Start
		}
	}
	return sess, exs, nil
}

func loadStored(store recorder.Reader, arg string, m Meter, each func(int, mcptap.Exchange)) (mcptap.Session, []mcptap.Exchange, error) {
	var (
		sess mcptap.Session
		err  error
	)
	if arg == "" {
		sess, err = store.Latest()
	} else {
		sess, err = store.FindSession(arg)
	}
	if err != nil {
		what := "the latest session"
		if arg != "" {
			what = "session " + arg
		}
		return sess, nil, &InputError{fmt.Errorf("%s in %s: %w (list them with `mcptap sessions`)", what, store.Path(), err)}
	}
	exs, err := readSession(store, sess, m, each)
	return sess, exs, err
}

// ReadSession reads every exchange of a stored session, reporting them to
// m (nil: none).
func ReadSession(store recorder.Reader, sess mcptap.Session, m Meter) ([]mcptap.Exchange, error) {
	return readSession(store, sess, m, nil)
}

func readSession(store recorder.Reader, sess mcptap.Session, m Meter, each func(int, mcptap.Exchange)) ([]mcptap.Exchange, error) {
	exs := make([]mcptap.Exchange, 0, sess.Exchanges)
	if m != nil {
		m.Start("reading session "+sess.ID, int64(sess.Exchanges), "exchanges")
	}
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error {
		if each != nil {
			each(len(exs), ex)
		}
		exs = append(exs, ex)
		if m != nil {
			m.Add(1)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read session %s from %s: %w", sess.ID, store.Path(), err)
	}
	return exs, nil
}
