package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/check"
)

func newCheckCmd() *cobra.Command {
	var (
		as, format, failOn string
		register, cimd     bool
		edge               string
		watch, timeout     time.Duration
	)
	var names []string
	for _, p := range check.Platforms {
		names = append(names, p.Name)
	}
	cmd := &cobra.Command{
		Use:   "check URL",
		Short: "Probe a live MCP server as ChatGPT, Claude, VS Code … would, and print each platform's checklist",
		Long: `Send, against the live server, the discovery each platform really performs
(its User-Agents, its order of metadata locations, its Accept headers), up to
the authorize request's first answer (no login is attempted), and print a
checklist per platform: pass, fail (with the catalogue rule, the evidence and
the fix), not applicable, or could not tell.

Every request goes through mcptap's recording path into a session (source
"check") that report, replay and export open like any other, and the same
rules that judge proxied traffic judge it.

The edge probe (--edge, on by default for chatgpt and claude) sends the same
unauthenticated MCP request with the User-Agent of the platform's discovery
calls and with that of its authenticated calls (python-httpx vs Claude-User),
expecting the server's own 401 both times: a block page or another answer
means a WAF or bot rule in front of the server (edge.blocked). An IP-based
block of a platform's egress cannot be seen from here.

` + check.Requests + `

HTTPS_PROXY and NO_PROXY are honoured. Exit code 0 when no line fails at or
above --fail-on, 1 when one does, 2 for bad usage, 3 when nothing could be
recorded (database busy or damaged).`,
		Example: `  mcptap check https://abc.ngrok.app/mcp --as claude
  mcptap check https://abc.ngrok.app/mcp --as all --register --format markdown
  mcptap check https://mcp.example.com/mcp --as chatgpt --cimd --format junit > check.xml
  mcptap check http://localhost:3000/mcp --as vscode --watch 30s   # re-run while you fix`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(check.Formats, format) {
				return usageErr(fmt.Errorf("--format %q: want %s", format, strings.Join(check.Formats, ", ")))
			}
			threshold, err := parseFailOn(failOn)
			if err != nil {
				return usageErr(err)
			}
			var platforms []check.Platform
			for _, n := range strings.Split(as, ",") {
				n = strings.TrimSpace(n)
				if n == "all" {
					platforms = append(platforms, check.Platforms...)
					continue
				}
				p, ok := check.Lookup(n)
				if !ok {
					return usageErr(fmt.Errorf("--as %q: want one or more of %s, or all", n, strings.Join(names, ", ")))
				}
				platforms = append(platforms, p)
			}
			var edgeOpt *bool
			switch edge {
			case "", "auto":
			case "on", "true":
				t := true
				edgeOpt = &t
			case "off", "false":
				f := false
				edgeOpt = &f
			default:
				return usageErr(fmt.Errorf("--edge %q: want auto, on or off", edge))
			}
			if watch < 0 || timeout < 0 {
				return usageErr(errors.New("--watch and --timeout must not be negative"))
			}
			store, err := openStore(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := check.Options{URL: args[0], Platforms: platforms, Register: register, CIMD: cimd, Edge: edgeOpt, Store: store, Timeout: timeout}
			out := cmd.OutOrStdout()
			var last *check.Result
			for {
				res, err := check.Run(ctx, opts)
				if err != nil {
					if strings.Contains(err.Error(), "is not an http(s) URL") {
						return usageErr(err)
					}
					return runtimeErr(err)
				}
				if last == nil {
					if err := check.Write(out, res, format, threshold); err != nil {
						return fmt.Errorf("write: %w", err)
					}
				} else {
					printChanges(out, last, res)
				}
				last = res
				if watch == 0 || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(watch):
				}
				if ctx.Err() != nil {
					break
				}
			}
			if last.Failing(threshold) {
				return &exitError{code: 1, err: fmt.Errorf("checklist lines fail at or above %s", failOn)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&as, "as", "all", "the platforms to act as, comma-separated: "+strings.Join(names, ", ")+", or all")
	f.BoolVar(&register, "register", false, "register a client with each platform's real metadata (this creates clients at the authorization server)")
	f.BoolVar(&cimd, "cimd", false, "check that each platform's client ID metadata document would be accepted, and authorize with it")
	f.StringVar(&edge, "edge", "auto", "the edge probe: auto (on for chatgpt and claude), on or off; --edge alone is on")
	f.Lookup("edge").NoOptDefVal = "on"
	f.StringVar(&format, "format", "text", "output format: "+strings.Join(check.Formats, ", "))
	f.StringVar(&failOn, "fail-on", "error", "exit 1 when a line fails at or above this severity: error, warning or never")
	f.DurationVar(&watch, "watch", 0, "re-run every interval and print what changed, until interrupted (e.g. 30s)")
	f.DurationVar(&timeout, "timeout", check.DefaultTimeout, "time limit of each request")
	return cmd
}

// parseFailOn reads --fail-on.
func parseFailOn(s string) (mcptap.Severity, error) {
	switch s {
	case "error":
		return mcptap.SevError, nil
	case "warning":
		return mcptap.SevWarning, nil
	case "never":
		return "never", nil
	}
	return "", fmt.Errorf("--fail-on %q: want error, warning or never", s)
}

// printChanges prints the lines whose status changed between two runs.
func printChanges(w io.Writer, old, cur *check.Result) {
	prev := map[string]check.Line{}
	for _, p := range old.Platforms {
		for _, l := range p.Lines {
			prev[p.Platform+"/"+l.ID] = l
		}
	}
	n := 0
	for _, p := range cur.Platforms {
		for _, l := range p.Lines {
			o, ok := prev[p.Platform+"/"+l.ID]
			if ok && o.Status == l.Status && o.Rule == l.Rule {
				continue
			}
			n++
			fmt.Fprintf(w, "%s  %s: %s: %s → %s", time.Now().Format("15:04:05"), p.Platform, l.Title, o.Status, l.Status)
			if l.Rule != "" {
				fmt.Fprintf(w, " [%s]", l.Rule)
			}
			fmt.Fprintln(w)
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "%s  no change (session %s)\n", time.Now().Format("15:04:05"), cur.Session)
	}
}
