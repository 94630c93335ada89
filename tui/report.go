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

// sessionReport writes the session's report ("markdown" or "html"),
// redacted like `mcptap report` so that it can be pasted into an issue. A
// variable so tests can see the path without depending on the report's
// wording.
var sessionReport = func(w io.Writer, sess mcptap.Session, exs []mcptap.Exchange, timeout time.Duration, format string) error {
	return report.Build(sess, exs, report.Options{Redact: true, TokenTimeout: timeout, Detail: format == "html"}).Write(w, format)
}

// reportFormats are what r offers: the key that picks one, and its file extension.
var reportFormats = []struct{ key, format, ext string }{{"m", "markdown", ".md"}, {"h", "html", ".html"}}

// askReport says where r will write the report and asks for the format;
// reportKey writes it.
func (m *Model) askReport() tea.Cmd {
	if sessionReport == nil {
		m.msg = "report: not available in this build; use `mcptap report --format markdown`"
		return nil
	}
	base, err := reportFile(m.opts.ReportDir, m.opts.Session.ID, time.Now())
	if err != nil {
		m.msg = "report: " + err.Error()
		return nil
	}
	m.reportBase = base
	return nil
}

// reportKey answers the report prompt: a format key writes, anything else cancels.
func (m *Model) reportKey(k tea.KeyPressMsg) tea.Cmd {
	base := m.reportBase
	m.reportBase = ""
	for _, f := range reportFormats {
		if k.String() == f.key {
			return m.writeReport(base+f.ext, f.format)
		}
	}
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	m.msg = "report cancelled"
	return nil
}

// writeReport writes the report of everything seen so far to a new file
// (0600) at path and reports its path.
func (m *Model) writeReport(path, format string) tea.Cmd {
	sess := m.opts.Session
	sess.Exchanges = len(m.exs)
	exs := make([]mcptap.Exchange, len(m.exs))
	for i := range m.exs {
		exs[i] = m.head(i)
	}
	load, timeout := m.opts.Load, m.opts.TokenTimeout
	m.msg = "writing the report to " + path + "…"
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
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return reportMsg{err: fmt.Errorf("create %s: %w", path, err)}
		}
		werr := sessionReport(f, sess, exs, timeout, format)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return reportMsg{err: fmt.Errorf("write %s: %w", path, err)}
		}
		return reportMsg{path: path}
	}
}

// reportFile is the path, without extension, of a new report file.
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
	name += "-" + now.Format("20060102-150405")
	abs, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("report path: %w", err)
	}
	return abs, nil
}
