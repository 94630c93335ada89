package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

// dbPath is the database file named by the root's persistent --db flag, or
// recorder.DefaultDBPath() when the flag is unset.
func dbPath(cmd *cobra.Command) (string, error) {
	if f := cmd.Flag("db"); f != nil && f.Value.String() != "" {
		return f.Value.String(), nil
	}
	p, err := recorder.DefaultDBPath()
	if err != nil {
		return "", usageErr(err)
	}
	return p, nil
}

// openStore opens the database for reading and writing, creating it if
// needed. Every failure is an exit-2 error whose message names the file; a
// database held by another mcptap says so (errors.Is(err, recorder.ErrInUse)).
func openStore(cmd *cobra.Command) (*recorder.Store, error) {
	return openStoreWith(cmd, nil)
}

// openStoreRead opens an existing database read-only (a shared lock: other
// readers may open it too, a recorder may not). A database that a running
// mcptap is recording into is read through that process's read API
// (live.DialReads), so a second terminal can look at a live session. A
// missing file is an exit-2 error wrapping fs.ErrNotExist that says how to
// make one.
func openStoreRead(cmd *cobra.Command) (recorder.Reader, error) {
	s, err := openStoreWith(cmd, &recorder.Options{ReadOnly: true})
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, recorder.ErrInUse) {
		return nil, err
	}
	path, perr := dbPath(cmd)
	if perr != nil {
		return nil, err
	}
	r, derr := live.DialReads(path)
	if derr != nil {
		return nil, err // the file is busy and nobody serves it: say so
	}
	return r, nil
}

func openStoreWith(cmd *cobra.Command, opts *recorder.Options) (*recorder.Store, error) {
	path, err := dbPath(cmd)
	if err != nil {
		return nil, err
	}
	s, err := recorder.Open(path, opts)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usageErr(fmt.Errorf("no database at %s yet: record a session with `mcptap proxy` or `mcptap import FILE.har` first: %w", path, fs.ErrNotExist))
		}
		return nil, runtimeErr(err) // busy, unreadable or damaged: not the user's typing
	}
	warnLooseMode(cmd, path)
	if n := s.Recovered(); n > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "mcptap: %s: put back %d exchanges from the journal of a recording that was killed before it could store them\n", path, n)
	}
	return s, nil
}

// warnLooseMode says when the database's directory or file lets other users
// in: recordings hold tokens and codes. mcptap creates them 0700 and 0600; an
// existing directory (a shared $MCPTAP_HOME, a --db in /tmp) keeps its mode.
func warnLooseMode(cmd *cobra.Command, path string) {
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if fi.IsDir() && fi.Mode()&os.ModeSticky != 0 && fi.Mode().Perm()&0o002 != 0 {
			continue // /tmp and the like: shared, but the file itself is 0600
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "mcptap: warning: %s is mode %04o: other users may read recorded tokens and codes; chmod go-rwx %s\n", p, fi.Mode().Perm(), p)
	}
}

// pickSession resolves an optional SESSION argument (a unique ID prefix) or
// the latest session, as exit-2 errors when it names nothing.
func pickSession(store recorder.Reader, args []string) (mcptap.Session, error) {
	var sess mcptap.Session
	var err error
	if len(args) > 0 {
		sess, err = store.FindSession(args[0])
	} else {
		sess, err = store.Latest()
	}
	if err != nil {
		return sess, usageErr(err)
	}
	return sess, nil
}

// maxArgs is cobra.MaximumNArgs with exit code 2.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MaximumNArgs(n)(cmd, args); err != nil {
			return usageErr(err)
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with exit code 2.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return usageErr(err)
	}
	return nil
}

// exactArgs is cobra.ExactArgs with exit code 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageErr(err)
		}
		return nil
	}
}

// loadSource reads a SESSION|FILE.har argument with live.Load: bad input is exit
// 2, a database that could not be read exit 3. store may be nil when arg
// names a file.
func loadSource(arg string, store recorder.Reader) (mcptap.Session, []mcptap.Exchange, error) {
	return loadSourceMetered(arg, store, nil)
}

// loadSourceMetered is loadSource with a progress line (p may be nil).
func loadSourceMetered(arg string, store recorder.Reader, p *progress) (mcptap.Session, []mcptap.Exchange, error) {
	sess, exs, err := live.LoadMetered(arg, store, p.meter())
	return sess, exs, loadErr(err)
}

// loadAnalysed is loadSourceMetered that analyses while it reads
// (live.LoadAnalysed).
func loadAnalysed(arg string, store recorder.Reader, p *progress, opts oauth.Options) (mcptap.Session, []mcptap.Exchange, *oauth.Tracker, error) {
	sess, exs, t, err := live.LoadAnalysed(arg, store, p.meter(), opts)
	return sess, exs, t, loadErr(err)
}

// loadErr is a loader's error with its exit code: bad input 2, else 3.
func loadErr(err error) error {
	var ie *live.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return usageErr(err)
	default:
		return runtimeErr(err)
	}
}
