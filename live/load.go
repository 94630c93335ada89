package live

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
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
	if IsFile(arg) {
		return loadFile(arg)
	}
	if store == nil {
		return mcptap.Session{}, nil, fmt.Errorf("live: %q names a stored session and no database is open", arg)
	}
	return loadStored(store, arg)
}

func loadFile(path string) (mcptap.Session, []mcptap.Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return mcptap.Session{}, nil, &InputError{fmt.Errorf("open %s: %w", path, err)}
	}
	defer f.Close()
	exs, err := har.Read(f)
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

func loadStored(store recorder.Reader, arg string) (mcptap.Session, []mcptap.Exchange, error) {
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
	var exs []mcptap.Exchange
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		return sess, nil, fmt.Errorf("read session %s from %s: %w", sess.ID, store.Path(), err)
	}
	return sess, exs, nil
}
