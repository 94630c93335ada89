package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/report"
)

func newSessionsCmd() *cobra.Command {
	var (
		asJSON  bool
		salvage string
	)
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List recorded sessions",
		Long: `List the sessions in the database, oldest first: ID, source (proxy, import,
replay, demo), name (upstream URL or HAR path), start, end and the number of
exchanges stored. A session without an end was not closed cleanly (the
recording process crashed or was killed): it shows "crashed?".

Any unique prefix of an ID names a session in report, replay and export.`,
		Example: `  mcptap sessions
  mcptap sessions --json | jq '.[-1].id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if salvage != "" {
				return runSalvage(cmd, salvage)
			}
			var list []mcptap.Session
			store, err := openStoreRead(cmd)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// No database yet is an empty list, not an error.
			case err != nil:
				return err
			default:
				list, err = store.Sessions()
				store.Close()
				if err != nil {
					return runtimeErr(fmt.Errorf("read sessions from %s: %w", store.Path(), err))
				}
			}
			if asJSON {
				return writeSessionsJSON(cmd, list)
			}
			return writeSessionsTable(cmd, list)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	cmd.Flags().StringVar(&salvage, "salvage", "", "copy every readable session of a damaged database (--db) into this new file")
	return cmd
}

// runSalvage copies what is readable of the database into a new file.
func runSalvage(cmd *cobra.Command, out string) error {
	if _, err := os.Lstat(out); err == nil {
		return usageErr(fmt.Errorf("--salvage %s: the file exists; name a new one", out))
	}
	src, err := openStoreWith(cmd, &recorder.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := recorder.Open(out, nil)
	if err != nil {
		return runtimeErr(err)
	}
	res, err := recorder.Salvage(src, dst)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return runtimeErr(err)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "copied %d session(s), %d exchange(s) from %s into %s\n", res.Sessions, res.Exchanges, src.Path(), out)
	for _, p := range res.Partial {
		fmt.Fprintf(w, "  in part: %s\n", report.Printable(p))
	}
	for _, l := range res.Lost {
		fmt.Fprintf(w, "  not copied: %s\n", report.Printable(l))
	}
	fmt.Fprintf(w, "use it with: mcptap --db %s sessions\n", out)
	return nil
}

// sessionState is "ended" for a closed session and "crashed?" for one
// without an end: whoever lists sessions holds the database lock, so the
// process that recorded it is gone.
func sessionState(s mcptap.Session) string {
	if s.Settings[live.RecordingSetting] == "true" {
		return "recording" // read through the running proxy
	}
	if s.Ended.IsZero() {
		return "crashed?"
	}
	return "ended"
}

type sessionJSON struct {
	ID        string            `json:"id"`
	Source    mcptap.Source     `json:"source"`
	Name      string            `json:"name,omitempty"`
	Started   time.Time         `json:"started"`
	Ended     *time.Time        `json:"ended,omitempty"`
	State     string            `json:"state"`
	Exchanges int               `json:"exchanges"`
	Dropped   uint64            `json:"dropped"`
	Pruned    uint64            `json:"pruned,omitempty"`
	Settings  map[string]string `json:"settings,omitempty"`
}

func writeSessionsJSON(cmd *cobra.Command, list []mcptap.Session) error {
	out := make([]sessionJSON, 0, len(list))
	for _, s := range list {
		j := sessionJSON{ID: s.ID, Source: s.Source, Name: s.Name, Started: s.Started, State: sessionState(s),
			Exchanges: s.Exchanges, Dropped: s.Dropped, Pruned: s.Pruned, Settings: s.Settings}
		if !s.Ended.IsZero() {
			e := s.Ended
			j.Ended = &e
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeSessionsTable(cmd *cobra.Command, list []mcptap.Session) error {
	w := cmd.OutOrStdout()
	if len(list) == 0 {
		path, _ := dbPath(cmd)
		fmt.Fprintf(w, "no sessions in %s yet: record one with `mcptap proxy --upstream URL` or `mcptap import FILE.har`\n", path)
		return nil
	}
	// Names come from outside (an imported file's path, an upstream URL):
	// control characters are shown as escapes.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tNAME\tSTARTED\tENDED\tEXCHANGES")
	const layout = "2006-01-02 15:04:05"
	for _, s := range list {
		ended := sessionState(s)
		if !s.Ended.IsZero() {
			ended = s.Ended.Local().Format(layout)
		}
		n := strconv.Itoa(s.Exchanges)
		if s.Dropped > 0 {
			n += fmt.Sprintf(" (%d dropped)", s.Dropped)
		}
		if s.Pruned > 0 {
			n += fmt.Sprintf(" (%d earlier pruned)", s.Pruned)
		}
		name := s.Name
		if r := []rune(name); len(r) > 48 { // keep the end: a path's file name, a URL's port
			name = "…" + string(r[len(r)-47:])
		}
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Source, report.Printable(name), s.Started.Local().Format(layout), ended, n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, buf.String())
	return err
}
