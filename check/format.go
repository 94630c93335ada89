package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/report"
)

// Formats are the output formats of Write.
var Formats = []string{"text", "markdown", "json", "junit"}

// Write renders r in format. failOn decides which failed lines are JUnit
// failures ("never": none). Server answers quoted in the text are escaped:
// anyone who can reach the server controls them.
func Write(w io.Writer, r *Result, format string, failOn mcptap.Severity) error {
	switch format {
	case "text":
		return writeText(w, r)
	case "markdown":
		return writeMarkdown(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "junit":
		return writeJUnit(w, r, failOn)
	}
	return fmt.Errorf("check: unknown format %q", format)
}

var glyph = map[Status]string{Pass: "✓", Fail: "✗", NA: "–", CouldNotTell: "?"}

func writeText(w io.Writer, r *Result) error {
	p := report.Printable
	var b strings.Builder
	fmt.Fprintf(&b, "mcptap check %s\nsession %s (report, replay and export open it)\n", p(r.URL), r.Session)
	for _, pl := range r.Platforms {
		fmt.Fprintf(&b, "\n%s (--as %s, %d requests)\n", pl.Title, pl.Platform, pl.Requests)
		if pl.Created != "" {
			fmt.Fprintf(&b, "  registered a client: client_id %s (--register created it at the authorization server)\n", p(pl.Created))
		}
		for _, l := range pl.Lines {
			st := string(l.Status)
			if l.Status == Fail && l.Severity != mcptap.SevError {
				st = "fail (" + string(l.Severity) + ")"
			}
			fmt.Fprintf(&b, "  %s %-16s %s", glyph[l.Status], st, l.Title)
			if l.Rule != "" {
				fmt.Fprintf(&b, "  [%s, fault: %s]", l.Rule, l.Fault)
			}
			b.WriteString("\n")
			if l.Detail != "" {
				fmt.Fprintf(&b, "      %s\n", p(l.Detail))
			}
			if l.Status == Fail {
				for _, e := range l.Evidence {
					fmt.Fprintf(&b, "      evidence %s: want %s, got %s\n", p(e.Field), p(e.Want), p(e.Got))
				}
				if l.Fix != "" {
					fmt.Fprintf(&b, "      fix: %s\n", p(l.Fix))
				}
			}
		}
		for _, fd := range pl.Other {
			fmt.Fprintf(&b, "  also: %s %s (fault: %s): %s\n", fd.Severity, fd.Rule, fd.Fault, p(fd.Detail))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(report.Printable(s))
}

func writeMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## mcptap check `%s`\n\nSession `%s`.\n", cell(r.URL), r.Session)
	for _, pl := range r.Platforms {
		fmt.Fprintf(&b, "\n### %s (`--as %s`)\n\n", pl.Title, pl.Platform)
		if pl.Created != "" {
			fmt.Fprintf(&b, "Registered a client: `%s`.\n\n", cell(pl.Created))
		}
		b.WriteString("| | Requirement | Rule | Detail | Fix |\n|---|---|---|---|---|\n")
		for _, l := range pl.Lines {
			fix := ""
			if l.Status == Fail {
				fix = l.Fix
			}
			rule := ""
			if l.Rule != "" {
				rule = "`" + string(l.Rule) + "` " + string(l.Severity)
			}
			fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s |\n", glyph[l.Status], l.Status, cell(l.Title), rule, cell(l.Detail), cell(fix))
		}
		for _, fd := range pl.Other {
			fmt.Fprintf(&b, "\nAlso: `%s` (%s, fault %s): %s\n", fd.Rule, fd.Severity, fd.Fault, cell(fd.Detail))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure"`
	Skipped   *junitSkipped `xml:"skipped"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func writeJUnit(w io.Writer, r *Result, failOn mcptap.Severity) error {
	out := junitSuites{Name: "mcptap check " + r.URL}
	for _, pl := range r.Platforms {
		s := junitSuite{Name: pl.Platform}
		for _, l := range pl.Lines {
			c := junitCase{Name: l.Title, Classname: "mcptap.check." + pl.Platform}
			switch {
			case l.Status == Fail && failOn != "never" && l.Severity.Rank() >= failOn.Rank():
				c.Failure = &junitFailure{Type: string(l.Rule), Message: l.Detail, Text: "fix: " + l.Fix}
				s.Failures++
			case l.Status == NA || l.Status == CouldNotTell:
				c.Skipped = &junitSkipped{Message: string(l.Status) + ": " + l.Detail}
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
			s.Tests++
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Suites = append(out.Suites, s)
	}
	return report.WriteXML(w, out)
}
