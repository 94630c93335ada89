package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/tui"
)

func newReplayCmd() *cobra.Command {
	var (
		noTUI        bool
		tokenTimeout time.Duration
		send         *sendFlags // --send, --upstream, --from (resend.go)
	)
	cmd := &cobra.Command{
		Use:   "replay [SESSION|FILE.har]",
		Short: "Open a recorded session or a HAR file in the viewer, findings recomputed",
		Long: `replay opens a recorded session (default: the latest; a unique ID prefix is
enough) or a HAR file in the viewer. Findings are recomputed with today's rules,
as if the traffic had just been seen; time-based rules (token.never-called) fire
at the end of the recording.

Without a terminal (or with --no-tui) it prints the flows and findings as plain
lines instead.`,
		Example: `  mcptap replay                    # the latest session
  mcptap replay 0187c0ff           # a session by ID prefix
  mcptap replay chatgpt.har        # a HAR exported from the browser's DevTools
  mcptap replay --no-tui | grep '^!'
  mcptap replay 0187c0ff --send --upstream http://localhost:3000   # check a server fix`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			if send.wanted() {
				return runResend(cmd, arg, send, tokenTimeout)
			}
			return runReplay(cmd, arg, noTUI, tokenTimeout)
		},
	}
	send = addSendFlags(cmd)
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "print flows and findings as lines instead of opening the viewer")
	cmd.Flags().DurationVar(&tokenTimeout, "token-timeout", oauth.DefaultTokenTimeout, "how long after a code is issued the token call may take before token.never-called")
	return cmd
}

func runReplay(cmd *cobra.Command, arg string, noTUI bool, tokenTimeout time.Duration) error {
	var (
		sess mcptap.Session
		exs  []mcptap.Exchange
		load func(string) (mcptap.Exchange, error)
	)
	if live.IsFile(arg) {
		var err error
		if sess, exs, err = loadSource(arg, nil); err != nil {
			return err
		}
	} else {
		store, err := openStoreRead(cmd)
		if err != nil {
			return err
		}
		defer store.Close()
		if sess, exs, err = loadSource(arg, store); err != nil {
			return err
		}
		id := sess.ID
		load = func(exID string) (mcptap.Exchange, error) { return store.Exchange(id, exID) }
	}

	out := cmd.OutOrStdout()
	if noTUI || !isTerminal(out) {
		printReplay(out, sess, exs, tokenTimeout)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := tui.RunReplay(ctx, tui.ReplayOptions{
		Options: tui.Options{
			Session:      sess,
			Upstream:     upstreams(sess),
			TokenTimeout: tokenTimeout,
			Load:         load,
		},
		Exchanges: exs,
	})
	if err != nil {
		return runtimeErr(fmt.Errorf("viewer: %w", err))
	}
	return nil
}

// printReplay is the plain view: one line per flow (with its hop chain and
// verdict) and, in the format of the proxy's line view, one per finding.
func printReplay(w io.Writer, sess mcptap.Session, exs []mcptap.Exchange, tokenTimeout time.Duration) {
	flows, findings := oauth.Analyze(exs, oauth.Options{TokenTimeout: tokenTimeout})
	name := sess.ID
	if name == "" {
		name = sess.Name
	}
	fmt.Fprintf(w, "session %s (%s): %d exchanges, %d flows, %d findings\n", name, sess.Source, len(exs), len(flows), len(findings))
	for _, f := range flows {
		glyph := "…"
		switch f.Status {
		case mcptap.FlowComplete:
			glyph = "✓"
		case mcptap.FlowFailed:
			glyph = "✗"
		}
		hops := make([]string, 0, len(f.Hops))
		for _, h := range f.Hops {
			hops = append(hops, fmt.Sprintf("%s(%d)", h.Kind, h.Status))
		}
		state := f.State
		if len(state) > 24 {
			state = state[:24] + "…"
		}
		fmt.Fprintf(w, "%s flow %s client=%s state=%s verdict=%s fault=%s hops: %s\n",
			glyph, f.ID, f.Client, state, f.Verdict.Rule, f.Verdict.Fault, strings.Join(hops, " → "))
	}
	for _, fd := range findings {
		fmt.Fprintf(w, "! %s %s [%s] %s\n", fd.Severity, fd.Rule, fd.Fault, fd.Title)
		if fd.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", fd.Fix)
		}
	}
}
