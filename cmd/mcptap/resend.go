package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/resend"
)

// sendFlags are replay's --send, --upstream and --from.
type sendFlags struct {
	send     bool
	upstream string
	from     string
}

// addSendFlags registers replay's re-send flags on cmd.
func addSendFlags(cmd *cobra.Command) *sendFlags {
	var f sendFlags
	fl := cmd.Flags()
	fl.BoolVar(&f.send, "send", false, "re-send the recorded client requests to --upstream as a new session, with fresh state, code and verifier, and print the findings that changed (exit 1 if the new session has an error finding)")
	fl.StringVar(&f.upstream, "upstream", "", "with --send: the server to re-send to, e.g. http://localhost:3000 (the fixed server)")
	fl.StringVar(&f.from, "from", "", "with --send: which recorded requests to re-send, by the upstream (or HAR origin) they went to; default: the one that served the MCP requests")
	return &f
}

// wanted reports whether any re-send flag was given (and so runResend, not
// the viewer, handles the command).
func (f *sendFlags) wanted() bool { return f.send || f.upstream != "" || f.from != "" }

// runResend is `mcptap replay --send --upstream URL [SESSION|FILE.har]`.
func runResend(cmd *cobra.Command, arg string, f *sendFlags, tokenTimeout time.Duration) error {
	if !f.send {
		return usageErr(errors.New("--upstream and --from only apply with --send"))
	}
	if f.upstream == "" {
		return usageErr(errors.New("--send needs --upstream URL: the server to re-send the recorded requests to"))
	}
	up, err := parseUpstream(f.upstream)
	if err != nil {
		return usageErr(fmt.Errorf("--upstream: %w", err))
	}
	// The new session is written to the database, so it is opened for
	// writing even when the recording comes from a HAR file.
	store, err := openStore(cmd)
	if err != nil {
		return err
	}
	defer store.Close()
	var (
		sess mcptap.Session
		exs  []mcptap.Exchange
	)
	if sess, exs, err = loadSource(arg, store); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := resend.Run(ctx, exs, resend.Options{
		Store: store, Upstream: up, Original: sess, From: f.from, TokenTimeout: tokenTimeout,
	})
	if err != nil {
		if errors.Is(err, resend.ErrSelect) || errors.Is(err, resend.ErrRedacted) {
			return usageErr(err)
		}
		return runtimeErr(err)
	}
	if err := res.Write(cmd.OutOrStdout()); err != nil {
		return err
	}
	if res.Failed > 0 {
		return runtimeErr(fmt.Errorf("%d of %d re-sent requests got no response from %s (first: %s); start the server and run this again",
			res.Failed, res.Sent, f.upstream, res.FirstErr))
	}
	if resend.HasError(res.New) {
		return &exitError{code: 1, err: fmt.Errorf("the re-sent session %s has error findings", res.Session.ID)}
	}
	return nil
}
