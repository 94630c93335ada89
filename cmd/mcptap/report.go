package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/report"
)

func newReportCmd() *cobra.Command {
	var (
		format, failOn string
		noRedact       bool
		timeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report [SESSION|FILE.har]",
		Short: "Analyse a session or a HAR file and print the verdict of each OAuth flow",
		Long: `Rebuild every OAuth authorization attempt of a recorded session (default: the
latest) or of a HAR file, hop by hop, and print which hop broke and whose side
it is on, with the evidence and the fix.

Secrets (codes, tokens, verifiers, client secrets, cookies, Authorization) are
replaced by keyed hashes unless --no-redact; equal values keep equal hashes
within one report. Formats: text, markdown, json, html (one self-contained page
with a sequence diagram per flow), junit (a testcase per flow, a failure per
finding at or above --fail-on) and sarif (SARIF 2.1.0). Exit code 0 when no
finding is at or above --fail-on, 1 when one is, 2 for bad usage or unreadable
input, 3 when the database could not be read (busy, damaged).`,
		Example: `  mcptap report                          # the latest session, as text
  mcptap report 0188f1c2 --format markdown # paste into an issue
  mcptap report ~/Downloads/chatgpt.com.har --format json --fail-on warning
  mcptap report --format html > report.html     # sequence diagrams, one self-contained file
  mcptap report --format junit > mcptap.xml     # CI: one testcase per flow
  mcptap report --format sarif > mcptap.sarif   # code scanning: one result per finding`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(report.Formats, format) {
				return usageErr(fmt.Errorf("--format %q: want %s", format, strings.Join(report.Formats, ", ")))
			}
			var threshold mcptap.Severity
			switch failOn {
			case "error":
				threshold = mcptap.SevError
			case "warning":
				threshold = mcptap.SevWarning
			case "never":
			default:
				return usageErr(fmt.Errorf("--fail-on %q: want error, warning or never", failOn))
			}
			if timeout < 0 {
				return usageErr(fmt.Errorf("--token-timeout %s: must not be negative", timeout))
			}
			p := startProgress(cmd)
			sess, exs, analysis, err := loadExchanges(cmd, args, p, oauth.Options{TokenTimeout: timeout})
			if err != nil {
				p.end("stopped")
				return err
			}
			failSev := threshold
			if failSev == "" {
				failSev = report.FailNever
			}
			p.Start(fmt.Sprintf("analysing %d exchanges", len(exs)), 0, "")
			r := report.Build(sess, exs, report.Options{Redact: !noRedact, TokenTimeout: timeout,
				FailOn: failSev, Detail: format == "html", Analysis: analysis})
			p.end(fmt.Sprintf("read and analysed %d exchanges (%d flows)", len(exs), len(r.Flows)))
			if err := r.Write(cmd.OutOrStdout(), format); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
			if threshold != "" && r.Worst().Rank() >= threshold.Rank() {
				n := 0
				for _, f := range r.Findings {
					if f.Severity.Rank() >= threshold.Rank() {
						n++
					}
				}
				return &exitError{code: 1, err: fmt.Errorf("%d finding(s) at or above %s", n, failOn)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: "+strings.Join(report.Formats, ", "))
	f.StringVar(&failOn, "fail-on", "error", "exit 1 when a finding is at or above this severity: error, warning or never")
	f.BoolVar(&noRedact, "no-redact", false, "show secrets (codes, tokens, verifiers) instead of keyed hashes")
	f.DurationVar(&timeout, "token-timeout", oauth.DefaultTokenTimeout, "how long after a code is issued the token request may take")
	return cmd
}

// loadExchanges reads a HAR file or a stored session (an ID prefix; default
// the latest), opening the database read-only only for a session.
// loadExchanges reads what the report names and analyses it while it
// reads (the analysis is oauth.Batch's of the exchanges returned).
func loadExchanges(cmd *cobra.Command, args []string, p *progress, opts oauth.Options) (mcptap.Session, []mcptap.Exchange, *oauth.Tracker, error) {
	arg := ""
	if len(args) == 1 {
		arg = args[0]
	}
	if live.IsFile(arg) {
		return loadAnalysed(arg, nil, p, opts)
	}
	store, err := openStoreRead(cmd)
	if err != nil {
		return mcptap.Session{}, nil, nil, err
	}
	defer store.Close()
	return loadAnalysed(arg, store, p, opts)
}
