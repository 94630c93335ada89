package live

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/redact"
	"github.com/mcptap/mcptap/report"
)

// lineViewRest is how long the line view pauses after catching up.
const lineViewRest = 20 * time.Millisecond

// Lines is the line-mode view: one line per finished exchange and one
// per finding, with an oauth.Tracker fed every publication and ticked every
// second. The returned channel closes after the subscription closes and
// Finish's findings are printed. Lines are buffered while more publications
// wait in the subscription and written as soon as none does, so a quiet
// proxy prints each line at once and a busy one makes a write per burst,
// not per line; a busy proxy's lines are at most lineViewRest late.
func Lines(out io.Writer, sub *mcptap.Subscription, tokenTimeout time.Duration) <-chan struct{} {
	return LinesTap(out, sub, tokenTimeout, nil)
}

// Tap follows the line view's analysis: it is told every exchange observed
// with its findings, every tick and the end (telemetry.Exporters is one),
// so that the exporters need no analysis of their own. Its methods run on
// the line view's goroutine.
type Tap interface {
	Observed(tr *oauth.Tracker, ex *mcptap.Exchange, fs []mcptap.Finding)
	Ticked(tr *oauth.Tracker, fs []mcptap.Finding)
	Finished(tr *oauth.Tracker, fs []mcptap.Finding)
}

// LinesTap is Lines that also feeds tap (nil: none).
func LinesTap(out io.Writer, sub *mcptap.Subscription, tokenTimeout time.Duration, tap Tap) <-chan struct{} {
	done := make(chan struct{})
	// Forget: the line view shows findings only, so the tracker need not
	// keep the exchanges that cannot matter any more, and a proxy left
	// running does not grow.
	tr := oauth.NewTracker(oauth.Options{TokenTimeout: tokenTimeout, Forget: true})
	// Secrets in request targets (a callback's code, an access_token in a
	// query) are hashed with a key of this run, as in reports.
	red := redact.New(nil)
	w := bufio.NewWriterSize(out, 32<<10)
	go func() {
		defer close(done)
		defer w.Flush()
		var line []byte // reused for every exchange line
		sub.Consume(context.Background(), mcptap.Consumer{
			Batch: func(batch []mcptap.Exchange) {
				for i := range batch {
					ex := &batch[i]
					fs := tr.Observe(*ex)
					if tap != nil {
						tap.Observed(tr, ex, fs)
					}
					if ex.Complete {
						shown := *ex
						shown.Target = red.Target(ex.Target)
						line = append(appendExchangeLine(line[:0], &shown), '\n')
						w.Write(line)
					}
					printFindings(w, fs)
				}
				printResettled(w, tr.Resettled())
			},
			Idle:  func() { w.Flush() },
			Rest:  lineViewRest,
			Every: time.Second,
			Tick: func(now time.Time) {
				fs := tr.Tick(now)
				printFindings(w, fs)
				if tap != nil {
					tap.Ticked(tr, fs)
				}
			},
		})
		fs := tr.Finish()
		printFindings(w, fs)
		if tap != nil {
			tap.Finished(tr, fs)
		}
		if n := sub.Dropped(); n > 0 {
			// Not a finding: the recorder has its own subscription.
			fmt.Fprintf(w, "mcptap: this line view skipped %d updates under load; the database has them (mcptap report)\n", n)
		}
	}()
	return done
}

// printResettled corrects findings printed earlier at another severity.
func printResettled(w io.Writer, fs []mcptap.Finding) {
	for _, f := range fs {
		fmt.Fprintf(w, "! now %s: %s [%s] the client went on past discovery (%s)\n", f.Severity, f.Rule, f.Fault, f.Title)
	}
}

func printFindings(w io.Writer, fs []mcptap.Finding) {
	for _, f := range fs {
		fmt.Fprintf(w, "! %s %s [%s] %s\n", f.Severity, f.Rule, f.Fault, f.Title)
	}
}

// appendExchangeLine appends "time listener method target status size
// duration" to b.
func appendExchangeLine(b []byte, ex *mcptap.Exchange) []byte {
	b = ex.Start.Local().AppendFormat(b, "15:04:05.000")
	b = append(append(b, ' '), ex.Listener...)
	b = append(append(b, ' '), report.Printable(ex.Method)...)
	b = append(b, ' ')
	// Recorded bytes reach a terminal: control characters become escapes.
	if target := report.Printable(ex.Target); len(target) > 300 {
		b = append(append(b, target[:300]...), "…"...)
	} else {
		b = append(b, target...)
	}
	b = append(b, ' ')
	switch {
	case ex.Err != "" && ex.Status == 0:
		b = append(append(append(b, "ERR("...), report.Printable(ex.Err)...), ')')
	case ex.Err != "":
		b = strconv.AppendInt(b, int64(ex.Status), 10)
		b = append(append(append(b, " ("...), report.Printable(ex.Err)...), ')')
	default:
		b = strconv.AppendInt(b, int64(ex.Status), 10)
	}
	b = appendSize(append(b, ' '), ex.RespSize)
	return appendDuration(append(b, ' '), ex.Duration())
}

func appendDuration(b []byte, d time.Duration) []byte {
	if d < 10*time.Millisecond {
		return append(strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 1, 64), "ms"...)
	}
	return append(b, d.Round(time.Millisecond).String()...)
}

func appendSize(b []byte, n int64) []byte {
	switch {
	case n < 0:
		return append(b, '?')
	case n < 1<<10:
		return append(strconv.AppendInt(b, n, 10), 'B')
	case n < 1<<20:
		return append(strconv.AppendFloat(b, float64(n)/(1<<10), 'f', 1, 64), "KiB"...)
	}
	return append(strconv.AppendFloat(b, float64(n)/(1<<20), 'f', 1, 64), "MiB"...)
}
