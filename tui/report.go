package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/report"
)

// markdownReport writes the session's markdown report, redacted like
// `mcptap report` so that it can be pasted into an issue. A variable so tests
// can see the path without depending on the report's wording.
var markdownReport = func(w io.Writer, sess mcptap.Session, exs []mcptap.Exchange, timeout time.Duration) error {
	return report.Build(sess, exs, report.Options{Redact: true, TokenTimeout: timeout}).Write(w, "markdown")
}

// writeReport writes the markdown report of everything seen so far to a new
// file (0600) and reports its path.
func (m *Model) writeReport() tea.Cmd {
	if markdownReport == nil {
		m.msg = "report: not available in this build; use `mcptap report --format markdown`"
		return nil
	}
	sess := m.opts.Session
	sess.Exchanges = len(m.exs)
	exs := make([]mcptap.Exchange, len(m.exs))
	copy(exs, m.exs)
	load, dir, timeout := m.opts.Load, m.opts.ReportDir, m.opts.TokenTimeout
	now := time.Now()
	m.msg = "writing the report…"
	return func() tea.Msg {
		if load != nil {
			for i, ex := range exs {
				if ex.Complete {
					full, err := load(ex.ID)
					if err != nil {
						return reportMsg{err: fmt.Errorf("load exchange %s: %w", ex.ID, err)}
					}
					exs[i] = full
				}
			}
		}
		path, err := reportFile(dir, sess.ID, now)
		if err != nil {
			return reportMsg{err: err}
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return reportMsg{err: fmt.Errorf("create %s: %w", path, err)}
		}
		werr := markdownReport(f, sess, exs, timeout)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return reportMsg{err: fmt.Errorf("write %s: %w", path, err)}
		}
		return reportMsg{path: path}
	}
}

func reportFile(dir, session string, now time.Time) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("working directory: %w", err)
		}
		dir = wd
	}
	name := "mcptap-report"
	if session != "" {
		name += "-" + session[:min(len(session), 12)]
	}
	name += "-" + now.Format("20060102-150405") + ".md"
	abs, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("report path: %w", err)
	}
	return abs, nil
}
