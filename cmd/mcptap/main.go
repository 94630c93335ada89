// Command mcptap is a local recording proxy that shows the whole OAuth dance
// of an MCP connector setup and says which hop broke. This package only wires
// flags to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mcptap/mcptap/recorder"
	"github.com/spf13/cobra"
)

// exitError carries an exit code through cobra: 1 for findings at or above
// --fail-on, 2 for usage errors and unreadable input, 3 when mcptap could not
// do its job at run time (CLI.md).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as exit code 2 (bad usage or unreadable input).
func usageErr(err error) error { return &exitError{code: 2, err: err} }

// runtimeErr marks err as exit code 3: mcptap could not do its job (a port
// in use, a busy or unwritable database, no browser, no browser proxy, an
// unreachable upstream); the message says what to do.
func runtimeErr(err error) error { return &exitError{code: 3, err: err} }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	stop, err := startProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcptap:", err)
		return 2
	}
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err = root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "mcptap:", ee.err)
		}
		if errors.Is(err, recorder.ErrDamaged) {
			return 3 // whichever step met the damage
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "mcptap:", err)
	if errors.Is(err, recorder.ErrDamaged) {
		return 3
	}
	return 2 // cobra's own errors (an unknown command) are usage errors
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcptap",
		Short: "Record and explain the OAuth dance of an MCP connector setup",
		Long: `mcptap sits between your tunnel (ngrok, cloudflared) and your MCP server, records
every exchange, rebuilds each OAuth authorization attempt hop by hop and tells you
which hop broke and whose side it is on.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetVersionTemplate("mcptap {{.Version}}\n")
	root.PersistentFlags().String("db", "", "database file (default $MCPTAP_HOME/mcptap.db)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		newProxyCmd(),
		newSessionsCmd(),
		newImportCmd(),
		newExportCmd(),
		newReportCmd(),
		newCheckCmd(),
		newDecodeCmd(),
		newReplayCmd(),
		newDemoCmd(),
		newCACmd(),
		newBrowserCmd(),
	)
	return root
}
