package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/redact"
)

// Options tune a report.
type Options struct {
	Redact       bool          // replace secrets with keyed hashes (the CLI default)
	Key          []byte        // redaction key; nil draws a random one
	TokenTimeout time.Duration // oauth.Options.TokenTimeout
	// FailOn is the severity at or above which a finding fails (JUnit
	// failures, SARIF "error" level); "" means error, FailNever none.
	FailOn mcptap.Severity
	// Detail keeps the (redacted) exchanges that flows and findings cite, for
	// the HTML report's exchange panels. Off, a report holds none of them.
	Detail bool
	// Analysis, when set, is the finished analysis of exactly these
	// exchanges with this TokenTimeout (an oauth.Stream's, run while they
	// were read); nil: Build runs oauth.Batch.
	Analysis *oauth.Tracker
}

// Report is the analysed session. Its JSON form is the `mcptap report
// --format json` contract.
type Report struct {
	Session  Session   `json:"session"`
	Flows    []Flow    `json:"flows"`
	Findings []Finding `json:"findings"`
	// Unclassified counts exchanges that are no OAuth or MCP hop and are not
	// correlated with a flow either.
	Unclassified int  `json:"unclassified"`
	Redacted     bool `json:"redacted"`

	failOn    mcptap.Severity
	exchanges map[string]mcptap.Exchange // with Options.Detail: cited exchanges, redacted like the rest
	settings  map[string]string          // the session's, for the commands that reproduce it
}

// Session identifies what was analysed.
type Session struct {
	ID        string    `json:"id"`
	Source    string    `json:"source"`
	Name      string    `json:"name,omitempty"`
	Exchanges int       `json:"exchanges"`
	Started   time.Time `json:"started,omitzero"`
}

// Flow is one authorization attempt.
type Flow struct {
	ID       string         `json:"id"`
	Client   string         `json:"client"`
	Status   string         `json:"status"`
	State    State          `json:"state"`
	Hops     []Hop          `json:"hops"`
	Verdict  mcptap.Verdict `json:"verdict"`
	Title    string         `json:"title,omitempty"` // the verdict finding's title
	Findings []string       `json:"findings"`
	Started  time.Time      `json:"started,omitzero"`
	// NotChecked says what the analysis could not check because it was not
	// recorded (a body left out, a header stripped, a redacted value).
	NotChecked []string `json:"not_checked,omitempty"`
	// Checks are the comparisons the analysis made (PKCE), passed or not.
	Checks []mcptap.Check `json:"checks,omitempty"`
	// BrokenHop is the index in Hops of the hop where a failed flow's chain
	// broke; MissingHop the hop that never came when it broke by an absence.
	BrokenHop  *int           `json:"broken_hop,omitempty"`
	MissingHop mcptap.HopKind `json:"missing_hop,omitempty"`
}

// State is the flow's state as sent, and what is inside it.
type State struct {
	Raw     string         `json:"raw"`
	Decoded map[string]any `json:"decoded,omitempty"`
}

// Hop is one exchange in a flow.
type Hop struct {
	Kind     mcptap.HopKind `json:"kind"`
	Exchange string         `json:"exchange"`
	Status   int            `json:"status"`
	// StatusUnrecorded: the answer came and its status was not recorded
	// (status is 0; a HAR producer lost it).
	StatusUnrecorded bool      `json:"status_unrecorded,omitempty"`
	Method           string    `json:"method"`
	URL              string    `json:"url"`
	At               time.Time `json:"at"`
	Inner            bool      `json:"inner,omitempty"`
}

// Finding is one problem with its evidence and fix.
type Finding struct {
	ID        string            `json:"id"`
	Rule      string            `json:"rule"`
	Severity  mcptap.Severity   `json:"severity"`
	Fault     mcptap.Fault      `json:"fault"`
	Title     string            `json:"title"`
	Detail    string            `json:"detail"`
	Fix       string            `json:"fix"`
	Flow      string            `json:"flow"`
	Exchanges []string          `json:"exchanges"`
	Evidence  []mcptap.Evidence `json:"evidence,omitempty"`
	At        time.Time         `json:"at"`
}

// FailNever as Options.FailOn: no finding fails.
const FailNever mcptap.Severity = "never"

// Build analyses exs (one session, in recording order) and assembles the report.
func Build(sess mcptap.Session, exs []mcptap.Exchange, opts Options) Report {
	// The redactor learns every exchange's secrets while the tracker folds
	// over them: both only read exs, and a report of a long session takes
	// about half as long on two cores.
	var red *redact.Redactor
	var learned sync.WaitGroup
	text := func(s string) string { return s }
	if opts.Redact {
		red = redact.New(opts.Key)
		learned.Add(1)
		go func() {
			defer learned.Done()
			for i := range exs {
				red.Learn(exs[i])
			}
		}()
		text = red.Text
	}
	t := opts.Analysis
	if t == nil {
		t = oauth.Batch(exs, oauth.Options{TokenTimeout: opts.TokenTimeout})
	}
	flows, findings := t.Flows(), t.Findings()
	learned.Wait()
	r := Report{
		Session:  Session{ID: sess.ID, Source: string(sess.Source), Name: sess.Name, Exchanges: len(exs), Started: sess.Started},
		Flows:    make([]Flow, 0, len(flows)),
		Findings: make([]Finding, 0, len(findings)),
		Redacted: opts.Redact,
		failOn:   opts.FailOn,
		settings: sess.Settings,
	}
	if r.failOn == "" {
		r.failOn = mcptap.SevError
	}
	if r.Session.Started.IsZero() && len(exs) > 0 {
		r.Session.Started = exs[0].Start
	}
	// Only exchanges that are hops are needed for method and URL.
	need := make(map[string]int, len(exs))
	for _, f := range flows {
		for _, h := range f.Hops {
			need[h.Exchange] = -1
		}
	}
	for i := range exs {
		if _, ok := need[exs[i].ID]; ok {
			need[exs[i].ID] = i
		}
		if _, ok := t.Hop(exs[i].ID); !ok {
			if _, in := t.FlowOf(exs[i].ID); !in { // a ChatGPT link initiation is no hop but part of its flow
				r.Unclassified++
			}
		}
	}
	byID := make(map[string]*mcptap.Finding, len(findings))
	for i := range findings {
		fd := &findings[i]
		byID[fd.ID] = fd
		ev := make([]mcptap.Evidence, len(fd.Evidence))
		for i, e := range fd.Evidence {
			ev[i] = mcptap.Evidence{Exchange: e.Exchange, Field: e.Field, Want: text(e.Want), Got: text(e.Got), Note: text(e.Note)}
		}
		exIDs := fd.Exchanges
		if exIDs == nil {
			exIDs = []string{}
		}
		r.Findings = append(r.Findings, Finding{ID: fd.ID, Rule: string(fd.Rule), Severity: fd.Severity, Fault: fd.Fault,
			Title: text(fd.Title), Detail: text(fd.Detail), Fix: text(fd.Fix), Flow: fd.Flow, Exchanges: exIDs, Evidence: ev, At: fd.At})
	}
	for _, f := range flows {
		v := Flow{ID: f.ID, Client: f.Client, Status: string(f.Status), State: State{Raw: text(f.State)},
			Verdict: f.Verdict, Findings: f.Findings, Started: f.Started, Hops: make([]Hop, 0, len(f.Hops))}
		if v.Findings == nil {
			v.Findings = []string{}
		}
		if f.StateDecoded != nil {
			v.State.Decoded = redactAny(f.StateDecoded, text).(map[string]any)
		}
		for _, n := range f.NotChecked {
			v.NotChecked = append(v.NotChecked, text(n))
		}
		for _, c := range f.Checks {
			c.Detail = text(c.Detail)
			v.Checks = append(v.Checks, c)
		}
		for _, fid := range f.Findings {
			if fd, ok := byID[fid]; ok && v.Verdict.Rule != "ok" && v.Title == "" && fd.Rule == v.Verdict.Rule {
				v.Title = text(fd.Title)
				var at int
				at, v.MissingHop, _ = oauth.BrokenHop(f, *fd)
				if at >= 0 {
					v.BrokenHop = &at
				}
			}
		}
		for _, h := range f.Hops {
			hp := Hop{Kind: h.Kind, Exchange: h.Exchange, Status: h.Status, At: h.At, Inner: h.Inner}
			if i := need[h.Exchange]; i >= 0 {
				ex := &exs[i]
				hp.Method, hp.URL = ex.Method, text(ex.URL())
				hp.StatusUnrecorded = ex.StatusUnrecorded()
				if h.Kind == mcptap.HopRedirect {
					hp.Method, hp.URL = "→", text(ex.RespHeader.Get("Location"))
				}
			}
			v.Hops = append(v.Hops, hp)
		}
		r.Flows = append(r.Flows, v)
	}
	if opts.Detail {
		r.exchanges = cited(exs, flows, findings, red)
	}
	// Problem flows first, then by start: what a person reads first.
	sort.SliceStable(r.Flows, func(i, j int) bool {
		if (r.Flows[i].Verdict.Rule != "ok") != (r.Flows[j].Verdict.Rule != "ok") {
			return r.Flows[i].Verdict.Rule != "ok"
		}
		return r.Flows[i].Started.Before(r.Flows[j].Started)
	})
	return r
}

// cited copies the exchanges that flows and findings point at, redacted when
// red is set.
func cited(exs []mcptap.Exchange, flows []mcptap.Flow, findings []mcptap.Finding, red *redact.Redactor) map[string]mcptap.Exchange {
	want := map[string]bool{}
	for _, f := range flows {
		for _, h := range f.Hops {
			want[h.Exchange] = true
		}
	}
	for _, fd := range findings {
		for _, id := range fd.Exchanges {
			want[id] = true
		}
	}
	out := make(map[string]mcptap.Exchange, len(want))
	for i := range exs {
		if !want[exs[i].ID] {
			continue
		}
		if red != nil {
			out[exs[i].ID] = red.Exchange(exs[i])
		} else {
			out[exs[i].ID] = exs[i]
		}
	}
	return out
}

func redactAny(v any, text func(string) string) any {
	switch x := v.(type) {
	case string:
		return text(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactAny(e, text)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactAny(e, text)
		}
		return out
	}
	return v
}

// Worst is the highest severity among the findings ("" when there are none).
func (r Report) Worst() mcptap.Severity {
	var w mcptap.Severity
	for _, f := range r.Findings {
		if f.Severity.Rank() > w.Rank() {
			w = f.Severity
		}
	}
	return w
}

// Formats are the formats Write knows, in the order the help names them.
var Formats = []string{"text", "markdown", "json", "html", "junit", "sarif"}

// Write renders the report as "text", "markdown", "json", "html" (build it
// with Options.Detail for the exchange panels), "junit" or "sarif".
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case "", "text":
		return r.writeText(w)
	case "markdown", "md":
		return r.writeMarkdown(w)
	case "json":
		return r.writeJSON(w)
	case "html":
		return r.writeHTML(w)
	case "junit":
		return r.writeJUnit(w)
	case "sarif":
		return r.writeSARIF(w)
	}
	return fmt.Errorf("unknown report format %q (want %s)", format, strings.Join(Formats, ", "))
}
