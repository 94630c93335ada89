package tui

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

var updateHAR = flag.Bool("update-har", false, "rewrite testdata/seeds.har from the Go fixtures")

// testdata/seeds.har is the fixture session as a HAR file, for the
// end-to-end test of `mcptap replay` and the screenshots. It must stay equal
// to what the Go fixtures produce.
func TestSeedsHARReplaysSeedVerdicts(t *testing.T) {
	var b bytes.Buffer
	sess := mcptap.Session{ID: "seeds", Source: mcptap.SourceImport, Name: "seeds", Started: t0}
	if err := har.Write(&b, sess, fixtureExchanges(), nil); err != nil {
		t.Fatal(err)
	}
	if *updateHAR {
		if err := os.WriteFile("testdata/seeds.har", b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open("testdata/seeds.har")
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run SeedsHAR -update-har)", err)
	}
	defer f.Close()
	exs, err := har.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	m := sized(NewReplay(Options{}, exs), 160, 48)
	s := plain(m)
	for _, want := range []string{"! Claude", "ok with 1 warning: authorize.resource-missing", "state.not-echoed · auth-server", "token.never-called · client", "callback.state-not-found · client"} {
		if !strings.Contains(s, want) {
			t.Errorf("seeds.har replay lacks %q:\n%s", want, s)
		}
	}
}
