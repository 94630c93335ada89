package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
)

// The JUnit XML shape CI servers read (Jenkins, GitLab, GitHub test
// reporters): testsuites › testsuite (one per session) › testcase (one per
// flow) › failure (one per finding at or above the fail-on severity).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Time      string         `xml:"time,attr"`
	Failures  []junitFailure `xml:"failure"`
	SystemOut string         `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// failing reports whether a finding is at or above the report's fail-on
// severity.
func (r Report) failing(fd Finding) bool { return r.fails(fd.Severity) }

func (r Report) fails(sev mcptap.Severity) bool {
	return r.failOn != FailNever && sev.Rank() >= r.failOn.Rank()
}

func (r Report) writeJUnit(w io.Writer) error {
	groups := r.byFlow()
	suite := junitSuite{Name: "mcptap " + r.Session.ID, Time: "0",
		Properties: []junitProperty{
			{"session", r.Session.ID}, {"source", r.Session.Source}, {"exchanges", fmt.Sprint(r.Session.Exchanges)},
			{"redacted", fmt.Sprint(r.Redacted)}, {"fail-on", string(r.failOn)},
		}}
	if r.Session.Name != "" {
		suite.Name += " (" + xmlText(r.Session.Name) + ")"
	}
	if !r.Session.Started.IsZero() {
		suite.Timestamp = r.Session.Started.UTC().Format("2006-01-02T15:04:05")
	}
	var total time.Duration
	for _, f := range r.Flows {
		c := junitCase{Name: xmlText(fmt.Sprintf("flow %s (%s): %s", f.ID, clientOrUnknown(f.Client), verdictLine(f, groups[f.ID]))),
			Classname: "mcptap.oauth." + clientOrUnknown(f.Client)}
		d := flowDuration(f)
		total += d
		c.Time = seconds(d)
		var out strings.Builder
		for _, g := range collapse(f.Hops) {
			kind, status := g.cells()
			fmt.Fprintf(&out, "%s %s %s %s\n", g.At.UTC().Format("15:04:05.000"), kind, status, g.URL)
		}
		for _, fd := range ordered(f, groups) {
			if r.failing(fd) {
				c.Failures = append(c.Failures, junitFailureOf(fd))
			} else {
				fmt.Fprintf(&out, "%s %s (%s, fault: %s): %s\n", mark(fd.Severity, fd.Rule), fd.Rule, fd.Severity, fd.Fault, fd.Title)
			}
		}
		c.SystemOut = xmlText(out.String())
		if len(c.Failures) > 0 {
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	if rest := groups[""]; len(rest) > 0 {
		c := junitCase{Name: "findings outside any flow", Classname: "mcptap.session", Time: "0"}
		for _, fd := range rest {
			if r.failing(fd) {
				c.Failures = append(c.Failures, junitFailureOf(fd))
			}
		}
		if len(c.Failures) > 0 {
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	suite.Time = seconds(total)
	doc := junitSuites{Name: "mcptap", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	return WriteXML(w, doc)
}

// WriteXML writes v as an indented XML document with its header and a
// final newline: the JUnit files of report and check.
func WriteXML(w io.Writer, v any) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitFailureOf(fd Finding) junitFailure {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, fault: %s)\n%s\n", fd.Title, fd.Severity, fd.Fault, fd.Detail)
	for _, ev := range fd.Evidence {
		fmt.Fprintf(&b, "evidence %s (exchange %s): sent/expected %q, echoed/got %q", ev.Field, ev.Exchange, ev.Want, ev.Got)
		if ev.Note != "" {
			b.WriteString(" — " + ev.Note)
		}
		b.WriteString("\n")
	}
	if fd.Fix != "" {
		b.WriteString("Fix: " + fd.Fix + "\n")
	}
	if len(fd.Exchanges) > 0 {
		b.WriteString("exchanges: " + strings.Join(fd.Exchanges, " ") + "\n")
	}
	return junitFailure{Type: fd.Rule, Message: xmlText(fd.Title), Text: xmlText(b.String())}
}

// flowDuration is from a flow's start to its last hop.
func flowDuration(f Flow) time.Duration {
	if len(f.Hops) == 0 || f.Started.IsZero() {
		return 0
	}
	d := f.Hops[len(f.Hops)-1].At.Sub(f.Started)
	if d < 0 {
		return 0
	}
	return d
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func clientOrUnknown(c string) string {
	if c == "" {
		return "unknown"
	}
	return c
}

// xmlText drops the characters XML 1.0 cannot carry at all (control
// characters other than tab, newline and carriage return, and invalid
// UTF-8), which recorded traffic may hold; encoding/xml escapes the rest.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
