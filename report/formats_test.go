package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

// formatFixtures are fixtures with an ok flow, failures by absence and by a
// wrong value, warnings and an upstream identity provider.
var formatFixtures = []string{"healthy-chatgpt", "healthy-upstream-idp", "seed000-browser", "seed000-server",
	"seed001-plugin", "state-altered-plus-to-space", "discovery-issuer-mismatch", "flow-incomplete-after-register"}

func build(t *testing.T, name string, opts report.Options) (report.Report, oauthtest.Fixture) {
	t.Helper()
	fx := fixture(t, name)
	opts.Redact, opts.Key = true, goldenKey
	return report.Build(session(name), fx.Exchanges(), opts), fx
}

func render(t *testing.T, r report.Report, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf, format); err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return buf.Bytes()
}

func xmllint(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmllint (Debian libxml2-utils) is required under CI")
		}
		t.Skip("xmllint not installed (apt-get install libxml2-utils)")
	}
	return p
}

type junitDoc struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name     string `xml:"name,attr"`
			Failures []struct {
				Type string `xml:"type,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// JUnit: valid against the Jenkins/xUnit JUnit schema (what CI servers
// read), one testsuite per session, one testcase per flow, one failure per
// finding at or above --fail-on.
func TestJUnitReport(t *testing.T) {
	lint := xmllint(t)
	dir := t.TempDir()
	for _, name := range formatFixtures {
		for _, failOn := range []mcptap.Severity{mcptap.SevError, mcptap.SevWarning, report.FailNever} {
			r, _ := build(t, name, report.Options{FailOn: failOn})
			out := render(t, r, "junit")
			path := filepath.Join(dir, name+"-"+string(failOn)+".xml")
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(lint, "--noout", "--schema", "testdata/schema/junit-10.xsd", path).CombinedOutput(); err != nil {
				t.Fatalf("%s (fail-on %s) does not validate: %v\n%s\n%s", name, failOn, err, msg, out)
			}
			var doc junitDoc
			if err := xml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Suites) != 1 {
				t.Fatalf("%s: %d testsuites, want 1", name, len(doc.Suites))
			}
			s := doc.Suites[0]
			wantCases := len(r.Flows)
			wantFailures, failedCases := 0, map[string]bool{}
			for _, fd := range r.Findings {
				if fd.Flow == "" && len(r.Flows) > 0 {
					wantCases = len(r.Flows) + 1
				}
				if failOn != report.FailNever && fd.Severity.Rank() >= failOn.Rank() {
					wantFailures++
					failedCases[fd.Flow] = true
				}
			}
			if len(s.Cases) < len(r.Flows) || s.Tests != len(s.Cases) {
				t.Errorf("%s: %d testcases (tests=%d) for %d flows", name, len(s.Cases), s.Tests, wantCases)
			}
			got := 0
			for _, c := range s.Cases {
				got += len(c.Failures)
				for _, f := range c.Failures {
					if !strings.Contains(f.Type, ".") {
						t.Errorf("%s: failure type %q is no rule ID", name, f.Type)
					}
				}
			}
			if got != wantFailures || s.Failures != len(failedCases) {
				t.Errorf("%s fail-on %s: %d failures in %d failed cases, want %d in %d", name, failOn, got, s.Failures, wantFailures, len(failedCases))
			}
		}
	}
}

// SARIF: valid against the OASIS SARIF 2.1.0 JSON schema, one rule per
// catalogue ID with its fix as help, one result per finding located at its
// exchanges, and no query string (codes, states) in a location.
func TestSARIFReport(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("testdata/schema/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range formatFixtures {
		r, _ := build(t, name, report.Options{})
		out := render(t, r, "sarif")
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("%s: SARIF does not validate: %v", name, err)
		}
		var log struct {
			Runs []struct {
				Tool struct {
					Driver struct {
						Rules []struct {
							ID   string `json:"id"`
							Help struct {
								Text string `json:"text"`
							} `json:"help"`
						} `json:"rules"`
					} `json:"driver"`
				} `json:"tool"`
				Results []struct {
					RuleID    string `json:"ruleId"`
					RuleIndex int    `json:"ruleIndex"`
					Level     string `json:"level"`
					Locations []struct {
						Physical *struct {
							Artifact struct {
								URI string `json:"uri"`
							} `json:"artifactLocation"`
						} `json:"physicalLocation"`
						Logical []struct {
							Name string `json:"name"`
						} `json:"logicalLocations"`
					} `json:"locations"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(out, &log); err != nil {
			t.Fatal(err)
		}
		run := log.Runs[0]
		cat := oauth.Catalogue()
		if len(run.Tool.Driver.Rules) < len(cat) {
			t.Errorf("%s: %d rules, want every catalogue ID (%d)", name, len(run.Tool.Driver.Rules), len(cat))
		}
		for i, ri := range cat {
			if run.Tool.Driver.Rules[i].ID != string(ri.ID) || run.Tool.Driver.Rules[i].Help.Text != "Fix: "+ri.Fix {
				t.Errorf("rule %d = %s, want %s with its fix as help", i, run.Tool.Driver.Rules[i].ID, ri.ID)
			}
		}
		if len(run.Results) != len(r.Findings) {
			t.Fatalf("%s: %d results for %d findings", name, len(run.Results), len(r.Findings))
		}
		for i, res := range run.Results {
			fd := r.Findings[i]
			if res.RuleID != fd.Rule || run.Tool.Driver.Rules[res.RuleIndex].ID != fd.Rule {
				t.Errorf("%s: result %d rule %s index %d, want %s", name, i, res.RuleID, res.RuleIndex, fd.Rule)
			}
			want := map[mcptap.Severity]string{mcptap.SevError: "error", mcptap.SevWarning: "warning", mcptap.SevInfo: "note"}[fd.Severity]
			if res.Level != want {
				t.Errorf("%s: %s level %s, want %s", name, fd.Rule, res.Level, want)
			}
			if len(res.Locations) != len(fd.Exchanges) {
				t.Errorf("%s: %s has %d locations for %d exchanges", name, fd.Rule, len(res.Locations), len(fd.Exchanges))
			}
			for j, loc := range res.Locations {
				if loc.Logical[0].Name != fd.Exchanges[j] {
					t.Errorf("%s: location %d names %s, want %s", name, j, loc.Logical[0].Name, fd.Exchanges[j])
				}
				if loc.Physical != nil && strings.ContainsAny(loc.Physical.Artifact.URI, "?#") {
					t.Errorf("%s: location URI %s carries a query", name, loc.Physical.Artifact.URI)
				}
			}
		}
	}
}

var (
	reLane    = regexp.MustCompile(`<g class="lane">`)
	reArrow   = regexp.MustCompile(`<g class="arrow [^"]*"`)
	reBroken  = regexp.MustCompile(`<g class="arrow [^"]*\bbroken\b[^"]*"`)
	reHref    = regexp.MustCompile(`href="#ex-([^"]+)"`)
	reFlowSec = regexp.MustCompile(`<section class="flow `)
	reFetch   = regexp.MustCompile(`(?i)(src=|<link|@import|url\(\s*['"]?https?:|fetch\(|XMLHttpRequest)`)
)

// HTML: one section and one diagram per flow with a lane per party and an
// arrow per hop (a run of MCP calls is one), the broken hop marked once on a
// failed flow, every arrow's exchange panel present, nothing fetched, and no
// code or token in the page.
func TestHTMLReport(t *testing.T) {
	for _, name := range formatFixtures {
		r, fx := build(t, name, report.Options{Detail: true})
		page := string(render(t, r, "html"))
		if n := len(reFlowSec.FindAllString(page, -1)); n != len(r.Flows) {
			t.Errorf("%s: %d flow sections for %d flows", name, n, len(r.Flows))
		}
		wantArrows, wantBroken := 0, 0
		for _, f := range r.Flows {
			runs := 0
			for i, h := range f.Hops {
				if i > 0 && h.Kind == mcptap.HopMCP && f.Hops[i-1].Kind == mcptap.HopMCP && h.Status == f.Hops[i-1].Status &&
					h.URL == f.Hops[i-1].URL && h.Method == f.Hops[i-1].Method {
					continue
				}
				runs++
			}
			wantArrows += runs
			if f.MissingHop != "" {
				wantArrows++
				wantBroken++
			}
			if f.BrokenHop != nil {
				wantBroken++
			}
		}
		if n := len(reArrow.FindAllString(page, -1)); n != wantArrows {
			t.Errorf("%s: %d arrows, want %d", name, n, wantArrows)
		}
		if n := len(reBroken.FindAllString(page, -1)); n != wantBroken {
			t.Errorf("%s: %d broken marks, want %d", name, n, wantBroken)
		}
		if len(r.Flows) > 0 && len(reLane.FindAllString(page, -1)) < 2*len(r.Flows) {
			t.Errorf("%s: fewer than two lanes per diagram", name)
		}
		for _, m := range reHref.FindAllStringSubmatch(page, -1) {
			if !strings.Contains(page, `id="ex-`+m[1]+`"`) {
				t.Errorf("%s: link to exchange %s without its panel", name, m[1])
			}
		}
		if m := reFetch.FindString(page); m != "" {
			t.Errorf("%s: the page would fetch something: %q", name, m)
		}
		for _, secret := range secretsOf(fx.Exchanges()) {
			if strings.Contains(page, secret) {
				t.Errorf("%s: the redacted page shows the secret %q", name, secret)
			}
		}
		if strings.Count(page, "<html") != 1 || !strings.Contains(page, "</html>") {
			t.Errorf("%s: not one complete document", name)
		}
	}
}

// secretsOf collects the codes, tokens, verifiers and client secrets in exs.
func secretsOf(exs []mcptap.Exchange) []string {
	var out []string
	keys := []string{"code", "access_token", "refresh_token", "id_token", "code_verifier", "client_secret"}
	collect := func(raw string) {
		for _, p := range oauth.ParseQuery(raw) {
			for _, k := range keys {
				if p.Key == k && len(p.Value) >= 6 {
					out = append(out, p.Value)
				}
			}
		}
	}
	for _, ex := range exs {
		if _, q, ok := strings.Cut(ex.Target, "?"); ok {
			collect(q)
		}
		if _, q, ok := strings.Cut(ex.RespHeader.Get("Location"), "?"); ok {
			collect(q)
		}
		collect(string(ex.ReqBody))
		var m map[string]any
		if json.Unmarshal(ex.RespBody, &m) == nil {
			for _, k := range keys {
				if s, ok := m[k].(string); ok && len(s) >= 6 {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// A hop whose answer came and whose status the HAR producer lost (Firefox
// 153's Save All As HAR, kept as written) reads "?" in the text report and
// status_unrecorded in JSON, not 0 (no answer).
func TestStatusUnrecordedHops(t *testing.T) {
	exs, err := har.ReadFile("../har/testdata/firefox-153-navigated.har")
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(mcptap.Session{ID: "ff", Source: mcptap.SourceImport}, exs, report.Options{Redact: true})
	var text, js bytes.Buffer
	if err := r.Write(&text, "text"); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(&js, "json"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "discovery-resource           ? GET") {
		t.Errorf("text report:\n%s", text.String())
	}
	var doc struct {
		Flows []struct {
			Hops []struct {
				Kind             string `json:"kind"`
				Status           int    `json:"status"`
				StatusUnrecorded bool   `json:"status_unrecorded"`
			} `json:"hops"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || len(doc.Flows) != 1 {
		t.Fatalf("json: %v %s", err, js.String())
	}
	unrecorded := 0
	for _, h := range doc.Flows[0].Hops {
		if h.StatusUnrecorded {
			unrecorded++
			if h.Status != 0 {
				t.Errorf("%s: status %d and status_unrecorded", h.Kind, h.Status)
			}
		}
	}
	if unrecorded != 3 {
		t.Errorf("%d hops with status_unrecorded, want the challenge and both metadata documents", unrecorded)
	}
}
