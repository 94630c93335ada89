package report_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/report"
)

// Every fixture HAR, read by the product's importer (recorder.ReadHAR) and
// analysed by report.Build: the flow under test has the expected verdict and
// fault side.
func TestFixtureHARsEndToEnd(t *testing.T) {
	for _, fx := range oauthtest.Fixtures {
		t.Run(fx.Name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "oauth", "testdata", fx.Name+".har"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			exs, err := har.Read(f)
			if err != nil {
				t.Fatalf("recorder.ReadHAR: %v", err)
			}
			flows, _ := oauth.Analyze(exs, oauth.Options{})
			if len(flows) <= fx.Flow {
				t.Fatalf("%d flows", len(flows))
			}
			id := flows[fx.Flow].ID
			r := report.Build(mcptap.Session{ID: "s", Source: mcptap.SourceImport}, exs, report.Options{Redact: true})
			for _, fl := range r.Flows {
				if fl.ID != id {
					continue
				}
				if fl.Verdict.Rule != fx.Verdict || fl.Verdict.Fault != fx.Fault {
					t.Errorf("verdict %s/%s, want %s/%s", fl.Verdict.Rule, fl.Verdict.Fault, fx.Verdict, fx.Fault)
				}
				return
			}
			t.Fatalf("flow %s not in the report", id)
		})
	}
}
