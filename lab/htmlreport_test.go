package lab

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

type htmlPageResult struct {
	Flows []struct {
		ID         string   `json:"id"`
		Lanes      []string `json:"lanes"`
		Arrows     int      `json:"arrows"`
		Broken     int      `json:"broken"`
		BrokenText []string `json:"brokenText"`
	} `json:"flows"`
	Clicked     string `json:"clicked"`
	HiddenBefor bool   `json:"hiddenBefore"`
	Panel       struct {
		Visible bool   `json:"visible"`
		Text    string `json:"text"`
	} `json:"panel"`
	Requests []string `json:"requests"`
	Errors   []string `json:"errors"`
	Filter   []struct {
		Fault  string `json:"fault"`
		Hidden bool   `json:"hidden"`
	} `json:"filter"`
	FilterValue string `json:"filterValue"`
}

// The HTML report in a real browser (issue 15): headless Chromium opens the
// file from disk with the network off. Each flow shows its lanes and one
// arrow per hop, a failed flow marks where its chain broke, clicking an arrow
// opens its exchange, the fault filter hides the other flows, and the page
// asks for nothing but itself. A full-page screenshot at 1280 px is saved
// next to the golden outputs (report/testdata/screenshots, not committed).
func TestHTMLReportInChromium(t *testing.T) {
	bin := chromiumPath(t)
	dir := interopDir(t)
	shots, err := filepath.Abs(filepath.Join("..", "report", "testdata", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		fixture string
		lanes   []string // of the flow under test, in order
		broken  int      // broken marks in that flow
	}{
		// Seed 000 seen from the browser: ChatGPT's callback answers 404.
		{"seed000-browser", []string{"Client platform", "Browser", "Authorization server", "Upstream identity provider"}, 1},
		// Seed 000 at the server: the token call never came (a dashed arrow).
		{"seed000-server", []string{"Client platform", "Browser", "MCP server", "Authorization server"}, 1},
		{"healthy-chatgpt", []string{"Client platform", "Browser", "MCP server", "Authorization server"}, 0},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			var fx oauthtest.Fixture
			for _, f := range oauthtest.Fixtures {
				if f.Name == c.fixture {
					fx = f
				}
			}
			if fx.Name == "" {
				t.Fatalf("no fixture %s", c.fixture)
			}
			r := report.Build(mcptap.Session{ID: "0188f1c2a3b4c5d6000001", Source: mcptap.SourceImport, Name: c.fixture + ".har", Started: oauthtest.T0},
				fx.Exchanges(), report.Options{Redact: true, Detail: true})
			var page bytes.Buffer
			if err := r.Write(&page, "html"); err != nil {
				t.Fatal(err)
			}
			html := filepath.Join(t.TempDir(), c.fixture+".html")
			if err := os.WriteFile(html, page.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			flow := r.Flows[fx.Flow]
			shot := filepath.Join(shots, c.fixture+".png")
			cmd := exec.Command("node", "html-report.mjs")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HTML="+html, "SHOT="+shot, "CLICK="+flow.ID, "CHROMIUM="+bin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("html-report.mjs: %v\n%s", err, stderr.String())
			}
			var got htmlPageResult
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(got.Flows) != len(r.Flows) {
				t.Fatalf("%d flow sections on the page, %d flows in the report", len(got.Flows), len(r.Flows))
			}
			var seen bool
			for _, pf := range got.Flows {
				if pf.ID != flow.ID {
					continue
				}
				seen = true
				if strings.Join(pf.Lanes, "|") != strings.Join(c.lanes, "|") {
					t.Errorf("lanes %q, want %q", pf.Lanes, c.lanes)
				}
				// the page as written (report's own test ties it to the hops)
				sec := page.String()[strings.Index(page.String(), `id="flow-`+flow.ID+`"`):]
				sec = sec[:strings.Index(sec, "</section>")]
				if want := strings.Count(sec, `<g class="arrow `); pf.Arrows != want || want == 0 {
					t.Errorf("the browser shows %d arrows, the page has %d", pf.Arrows, want)
				}
				if pf.Broken != c.broken || len(pf.BrokenText) != c.broken {
					t.Errorf("%d broken arrows, %d marks (%q), want %d", pf.Broken, len(pf.BrokenText), pf.BrokenText, c.broken)
				}
			}
			if !seen {
				t.Fatalf("flow %s is not on the page", flow.ID)
			}
			if got.Clicked == "" || !got.HiddenBefor || !got.Panel.Visible {
				t.Errorf("clicking an arrow did not open its exchange %q (hidden before %v, visible after %v)", got.Clicked, got.HiddenBefor, got.Panel.Visible)
			}
			if !strings.Contains(got.Panel.Text, got.Clicked) {
				t.Errorf("the opened panel is not exchange %s: %q", got.Clicked, got.Panel.Text)
			}
			for _, u := range got.Requests {
				if !strings.HasPrefix(u, "file://") {
					t.Errorf("the page requested %s", u)
				}
			}
			if len(got.Requests) != 1 {
				t.Errorf("the page made %d requests, want only itself: %q", len(got.Requests), got.Requests)
			}
			if len(got.Errors) > 0 {
				t.Errorf("page errors: %q", got.Errors)
			}
			for _, f := range got.Filter {
				if (f.Fault != got.FilterValue) != f.Hidden {
					t.Errorf("filter fault=%s: a %s flow hidden=%v", got.FilterValue, f.Fault, f.Hidden)
				}
			}
			fh, err := os.Open(shot)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			img, err := png.Decode(fh)
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			if b := img.Bounds(); b.Dx() != 1280 || b.Dy() < 400 {
				t.Errorf("screenshot is %v, want 1280 px wide, a full page", b)
			}
		})
	}
}
