package oauth_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.har from the fixture generator")

func checkFixture(t *testing.T, fx oauthtest.Fixture, exs []mcptap.Exchange) {
	t.Helper()
	flows, findings := oauth.Analyze(exs, oauth.Options{})
	if len(flows) <= fx.Flow {
		t.Fatalf("%s: %d flows, want flow %d", fx.Name, len(flows), fx.Flow)
	}
	f := flows[fx.Flow]
	if f.Verdict.Rule != fx.Verdict || f.Verdict.Fault != fx.Fault {
		t.Errorf("%s: verdict %s/%s, want %s/%s", fx.Name, f.Verdict.Rule, f.Verdict.Fault, fx.Verdict, fx.Fault)
		for _, fd := range findings {
			t.Logf("  finding %s %s %s flow=%s: %s", fd.Rule, fd.Severity, fd.Fault, fd.Flow, fd.Detail)
		}
		for i, fl := range flows {
			t.Logf("  flow %d %s client=%s verdict=%v hops=%d", i, fl.ID, fl.Client, fl.Verdict, len(fl.Hops))
			for _, h := range fl.Hops {
				t.Logf("     %s %s %d inner=%v", h.Kind, h.Exchange, h.Status, h.Inner)
			}
		}
	}
	for _, want := range fx.Has {
		found := false
		for _, fd := range findings {
			found = found || fd.Rule == want
		}
		if !found {
			t.Errorf("%s: no %s finding", fx.Name, want)
		}
	}
	if fx.Verdict == "ok" {
		for _, fd := range findings {
			if fd.Severity == mcptap.SevError {
				t.Errorf("%s: healthy flow has error finding %s: %s", fx.Name, fd.Rule, fd.Detail)
			}
		}
	}
}

// Every fixture, straight from the generator.
func TestFixtureVerdicts(t *testing.T) {
	for _, fx := range oauthtest.Fixtures {
		t.Run(fx.Name, func(t *testing.T) { checkFixture(t, fx, fx.Exchanges()) })
	}
}

// The same fixtures through their HAR files (Chrome shape): what a user
// exports from DevTools must give the same verdicts.
func TestFixtureHARs(t *testing.T) {
	for _, fx := range oauthtest.Fixtures {
		path := filepath.Join("testdata", fx.Name+".har")
		var buf bytes.Buffer
		if err := har.Write(&buf, mcptap.Session{ID: fx.Name, Source: mcptap.SourceImport}, fx.Exchanges(), nil); err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./oauth -run TestFixtureHARs -update)", err)
		}
		if !bytes.Equal(b, buf.Bytes()) {
			t.Errorf("%s is stale: run go test ./oauth -run TestFixtureHARs -update", path)
		}
		exs, err := har.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Run(fx.Name, func(t *testing.T) { checkFixture(t, fx, exs) })
	}
}

// Every Tier-1 rule has at least one HAR fixture whose analysis shows it.
func TestEveryRuleHasAFixture(t *testing.T) {
	covered := map[mcptap.RuleID]bool{}
	for _, fx := range oauthtest.Fixtures {
		covered[fx.Verdict] = true
		for _, r := range fx.Has {
			covered[r] = true
		}
	}
	for _, id := range mcptap.Catalogue {
		if id == mcptap.RuleDiscoveryLazyAuth {
			break // Tier 2 on: TestRules takes every variant through a HAR file
		}
		if !covered[id] {
			t.Errorf("no fixture shows %s", id)
		}
	}
}
