package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/lab"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/report"
)

type demoFlags struct {
	scenario     string
	list         bool
	noTUI        bool
	format       string
	tokenTimeout time.Duration
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the built-in lab (MCP server, OAuth server, connector-like client) behind mcptap",
		Long: `demo starts a complete local OAuth world on loopback ports behind mcptap's real
proxy and recorder: an MCP server with its authorization server, and a ChatGPT-,
Claude- or VS Code-like client. Each scenario switches one fault on (or none) and
states which verdict mcptap must reach. The session is recorded in a temporary
database unless --db is given.

With --no-tui (or without a terminal) it prints the report and a table of expected
against produced verdicts, and exits 0 when every scenario produced its expected
verdict, 1 otherwise.`,
		Example: `  mcptap demo
  mcptap demo --list
  mcptap demo --scenario state-dropped --no-tui
  mcptap demo --no-tui --format json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.scenario, "scenario", "all", "scenario to run (see --list), or all")
	fl.BoolVar(&f.list, "list", false, "list the scenarios and exit")
	fl.BoolVar(&f.noTUI, "no-tui", false, "print the report instead of the live view")
	fl.StringVar(&f.format, "format", "text", "report format with --no-tui: text, markdown or json")
	fl.DurationVar(&f.tokenTimeout, "token-timeout", 5*time.Second, "how long a code may wait for its token call before the live view flags it (short, for the demo)")
	return cmd
}

func runDemo(cmd *cobra.Command, f demoFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.list {
		return listScenarios(stdout)
	}
	switch f.format {
	case "text", "markdown", "json":
	default:
		return usageErr(fmt.Errorf("--format %q: want text, markdown or json", f.format))
	}
	scs := lab.Scenarios()
	if f.scenario != "all" {
		sc, ok := lab.Lookup(f.scenario)
		if !ok {
			return usageErr(fmt.Errorf("--scenario %q: no such scenario (mcptap demo --list names them)", f.scenario))
		}
		scs = []lab.Scenario{sc}
	}

	// The database: the user's with --db, else a temporary one.
	var path string
	if fl := cmd.Flag("db"); fl != nil && fl.Value.String() != "" {
		path = fl.Value.String()
	} else {
		dir, err := os.MkdirTemp("", "mcptap-demo-")
		if err != nil {
			return fmt.Errorf("demo: temporary database: %w", err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "demo.db")
	}
	store, err := recorder.Open(path, nil)
	if err != nil {
		return usageErr(err)
	}
	defer store.Close()

	useTUI := tuiAvailable && !f.noTUI && isTerminal(stdout)
	broker := mcptap.NewBroker()
	var viewSub *mcptap.Subscription
	if useTUI {
		viewSub = broker.Subscribe("tui", 4096)
	}
	sess := mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceDemo, Name: fmt.Sprintf("lab demo: %d scenario(s)", len(scs))}
	progress := stderr
	if useTUI {
		progress = io.Discard // the live view owns the terminal
	}
	opts := lab.RecordOptions{
		Broker: broker,
		// VS Code's fixed callback port when it is free, as VS Code itself
		// prefers; if another process takes it meanwhile, any free port will do.
		FixedPorts: true,
		Started: func(*live.Capture) {
			if fl := cmd.Flag("db"); fl == nil || fl.Value.String() == "" {
				fmt.Fprintf(stderr, "mcptap demo: recording session %s into a temporary database %s (removed on exit; pass --db to keep it)\n", sess.ID, path)
			} else {
				fmt.Fprintf(stderr, "mcptap demo: recording session %s into %s\n", sess.ID, path)
			}
		},
		Progress: func(w *lab.World, res *lab.Result, err error) {
			switch {
			case res == nil && err == nil:
				fmt.Fprintf(progress, "  running %-26s %s\n", w.Scenario.Name, w.Scenario.Title)
			case err != nil:
				fmt.Fprintf(progress, "  %-34s lab error: %v\n", w.Scenario.Name, err)
			case res.Stopped != "":
				fmt.Fprintf(progress, "  %-34s client stopped: %s\n", "", res.Stopped)
			default:
				fmt.Fprintf(progress, "  %-34s client connected, tools/call answered %q\n", "", res.CallText)
			}
		},
	}
	if useTUI {
		opts.View = func(ctx context.Context, c *live.Capture, p *lab.Plan) error {
			return runTUI(ctx, c, viewSub, f.tokenTimeout, p.ScenarioOf)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	plan, exs, err := lab.Record(ctx, store, sess, scs, opts)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer plan.Close()
	flows, findings := oauth.Analyze(exs, oauth.Options{TokenTimeout: f.tokenTimeout})
	outcomes := plan.Evaluate(exs, flows, findings)

	stored, err := store.Session(sess.ID)
	if err != nil {
		stored = sess
	}
	rep := report.Build(stored, exs, report.Options{Redact: true, TokenTimeout: f.tokenTimeout})
	if useTUI {
		err = writeOutcomes(stdout, outcomes)
	} else {
		err = writeDemo(stdout, f.format, rep, outcomes)
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, o := range outcomes {
		if !o.Pass {
			failed++
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d scenarios did not produce their expected verdict", failed, len(outcomes))}
	}
	return nil
}

func listScenarios(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tCLIENT\tEXPECTED VERDICT\tFAULT\tWHAT")
	for _, phase := range lab.Phases {
		first := true
		for _, sc := range lab.Scenarios() {
			if sc.Phase() != phase {
				continue
			}
			if first {
				fmt.Fprintf(tw, "%s\t\t\t\t\n", strings.ToUpper(phase))
				first = false
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", sc.Name, sc.Profile, sc.Expect.RulesText(" | "), faults(sc.Expect.Faults), sc.Title)
		}
	}
	return tw.Flush()
}

func faults(fs []mcptap.Fault) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, " | ")
}

func writeDemo(w io.Writer, format string, rep report.Report, outcomes []lab.Outcome) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			report.Report
			Scenarios []lab.Outcome `json:"scenarios"`
		}{rep, outcomes})
	}
	if err := rep.Write(w, format); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return writeOutcomes(w, outcomes)
}

func writeOutcomes(w io.Writer, outcomes []lab.Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tEXPECTED\tPRODUCED\tCLIENT\tRESULT")
	pass := 0
	for _, o := range outcomes {
		res := "ok"
		if o.Pass {
			pass++
		} else {
			res = "FAIL: " + o.Why
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s/%s\t%s\t%s\n", o.Scenario, o.Expect.RulesText("|"), faults(o.Expect.Faults), o.Got.Rule, o.Got.Fault, o.Client, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d scenarios produced their expected verdict\n", pass, len(outcomes))
	return err
}
