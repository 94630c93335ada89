package oauth_test

import (
	"os"
	"testing"

	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

func TestDumpFixtures(t *testing.T) {
	if os.Getenv("DUMP") == "" {
		t.Skip()
	}
	for _, fx := range oauthtest.Fixtures {
		flows, fds := oauth.Analyze(fx.Exchanges(), oauth.Options{})
		t.Logf("== %s", fx.Name)
		for _, f := range flows {
			t.Logf("  flow %s %s %s %v hops=%d", f.ID, f.Client, f.Status, f.Verdict, len(f.Hops))
		}
		for _, fd := range fds {
			t.Logf("  %s %s/%s [%s] %s", fd.ID, fd.Rule, fd.Fault, fd.Title, fd.Detail)
		}
	}
}
