package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
)

func newImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.har",
		Short: "Store a HAR file as a new session and print its ID",
		Long: `Read a HAR 1.2 file (Chrome/Chromium DevTools, including the sanitized export,
Firefox, mitmproxy, Charles or mcptap's own export) and store each entry as an
exchange of a new session. The session ID is printed on stdout.

A file that cannot be read completely is refused with exit code 2 and a
message naming the entry (zero-based index in log.entries) and field; nothing
is stored then.`,
		Example: `  mcptap import ~/Downloads/chatgpt.com.har
  mcptap report $(mcptap import capture.har)`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			f, err := os.Open(path)
			if err != nil {
				return usageErr(err)
			}
			p := startProgress(cmd)
			exs, err := live.ReadHAR(f, p.meter())
			f.Close()
			if err != nil {
				p.end("stopped")
				return usageErr(fmt.Errorf("%s: %w", path, err))
			}
			p.Start(fmt.Sprintf("storing %d exchanges", len(exs)), 0, "")
			store, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			now := time.Now()
			sess := mcptap.Session{
				ID: mcptap.NewID(now), Source: mcptap.SourceImport, Name: path,
				Started: now, Ended: now,
				Settings: map[string]string{"entries": strconv.Itoa(len(exs))},
			}
			if len(exs) > 0 {
				sess.Settings["first"] = exs[0].Start.Format(time.RFC3339Nano)
			}
			if err := store.Import(sess, exs); err != nil {
				p.end("stopped")
				return fmt.Errorf("import %s into %s: %w", path, store.Path(), err)
			}
			p.end(fmt.Sprintf("imported %d exchanges", len(exs)))
			if err := store.Close(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), sess.ID)
			if len(exs) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "mcptap: %s has no entries; the session is empty\n", path)
			}
			return nil
		},
	}
}
