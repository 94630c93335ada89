package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mcptap/mcptap/internal/pace"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/report"
	"github.com/spf13/cobra"
)

// progressEnv sets how often the progress line is redrawn (a Go duration;
// default 250ms). Tests make it short so that any load shows it.
const progressEnv = "MCPTAP_PROGRESS_EVERY"

// progress is the line report, import and export keep on stderr while they
// read, analyse and write a big input, when stderr is a terminal (never in a
// pipe or a log). It is redrawn in place every period: the phase, how far it
// got and, when the total is known, the time left. Once it was shown, end
// replaces it with a one-line summary; a run too short to show it prints
// nothing. A nil *progress does nothing.
type progress struct {
	w     io.Writer
	began time.Time
	every time.Duration

	mu          sync.Mutex
	phase       string
	done, total int64
	unit        string // "bytes" or "exchanges"
	phaseAt     time.Time
	shown       bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// startProgress starts the line on cmd's stderr if it is a terminal.
func startProgress(cmd *cobra.Command) *progress {
	w := cmd.ErrOrStderr()
	if !isTerminal(w) {
		return nil
	}
	every := 250 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv(progressEnv)); err == nil && d > 0 {
		every = d
	}
	p := &progress{w: w, began: time.Now(), every: every, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// meter is p as a live.Meter: nil (no progress) when p is nil, not a
// non-nil interface holding a nil pointer.
func (p *progress) meter() live.Meter {
	if p == nil {
		return nil
	}
	return p
}

// Start starts a phase: what is being done, and its total in unit (0: unknown).
func (p *progress) Start(phase string, total int64, unit string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase, p.total, p.unit, p.done, p.phaseAt = phase, total, unit, 0, time.Now()
	p.mu.Unlock()
}

// Add counts n more units done in the current phase.
func (p *progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done += n
	p.mu.Unlock()
}

// Reader counts what is read through it into p.
func (p *progress) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return progressReader{r, p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (c progressReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(int64(n))
	return n, err
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return
	}
	// The phase names a file or a session: a file name can carry control
	// characters, shown as escapes.
	line := "mcptap: " + report.Printable(p.phase)
	switch {
	case p.total > 0:
		frac := float64(p.done) / float64(p.total)
		line += fmt.Sprintf(" %d%% (%s of %s)", int(frac*100), amount(p.done, p.unit), amount(p.total, p.unit))
		if left, ok := pace.Left(p.done, p.total, time.Since(p.phaseAt)); ok {
			line += fmt.Sprintf(", ~%s left", left)
		}
	case p.done > 0:
		line += " " + amount(p.done, p.unit)
	default:
		line += "…"
	}
	// \r and erase-line: the line is redrawn in place.
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.shown = true
}

// end stops the line; if it was shown, summary replaces it. Only the first
// call counts.
func (p *progress) end(summary string) {
	if p == nil {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.shown {
			fmt.Fprintf(p.w, "\r\x1b[Kmcptap: %s in %s\n", summary, time.Since(p.began).Round(time.Millisecond))
		}
	})
}

func amount(n int64, unit string) string {
	if unit == "bytes" {
		return humanSize(n)
	}
	return fmt.Sprintf("%d %s", n, unit)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
