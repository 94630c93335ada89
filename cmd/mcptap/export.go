package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/internal/safefile"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/redact"
)

func newExportCmd() *cobra.Command {
	var harPath string
	var noRedact bool
	cmd := &cobra.Command{
		Use:   "export [SESSION] --har FILE",
		Short: "Write a session as a HAR 1.2 file",
		Long: `Write a recorded session (default: the latest; any unique ID prefix works) as
a HAR 1.2 file that browsers' HAR viewers, mitmproxy and mcptap itself read.

Secrets (tokens, codes, verifiers, client secrets, cookies, Authorization) are
replaced by keyed hashes that keep their length and character class, so the
same value still matches across hops. --no-redact writes them as recorded.
The file is created 0600; "--har -" writes to stdout.`,
		Example: `  mcptap export --har last.har
  mcptap export 187a3f --har flow.har --no-redact`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if harPath == "" {
				return usageErr(errors.New("export: --har FILE is required"))
			}
			store, err := openStoreRead(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			sess, err := pickSession(store, args)
			if err != nil {
				return err
			}
			p := startProgress(cmd)
			exs, err := live.ReadSession(store, sess, p.meter())
			if err != nil {
				p.end("stopped")
				return err
			}
			p.Start("writing "+harPath, 0, "")
			defer p.end("stopped")
			store.Close() // release the lock before the (possibly slow) write
			var red *redact.Redactor
			if !noRedact {
				red = redact.New(nil)
			}
			if harPath == "-" {
				err := har.Write(cmd.OutOrStdout(), sess, exs, red)
				if err == nil {
					p.end(fmt.Sprintf("exported %d exchanges", len(exs)))
				}
				return err
			}
			if err := safefile.Write(harPath, func(w io.Writer) error {
				return har.Write(w, sess, exs, red)
			}); err != nil {
				if errors.Is(err, safefile.ErrRefused) {
					return usageErr(err)
				}
				return runtimeErr(err)
			}
			p.end(fmt.Sprintf("exported %d exchanges", len(exs)))
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d exchanges of session %s to %s\n", len(exs), sess.ID, harPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&harPath, "har", "", "HAR file to write (\"-\" for stdout)")
	cmd.Flags().BoolVar(&noRedact, "no-redact", false, "write secrets as recorded")
	return cmd
}
