package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

// demoTokenTimeout is the token timeout these tests give the time-based
// rules. Finish fires them for a missing call whatever the timeout, so it only
// needs to be long enough that a slow (race-instrumented, loaded) machine
// never makes a late but present call look missing.
const demoTokenTimeout = 10 * time.Second

// labBound bounds a whole run of scenarios or peers: far above what they
// take on a loaded 2-core machine (tens of seconds), so that only a hang
// reaches it, and a run that reaches it fails saying so.
const labBound = 5 * time.Minute

// capture runs the scenarios behind a real live capture (Record) and
// returns the exchanges as stored.
func capture(t *testing.T, scs []Scenario) (*Plan, []mcptap.Exchange) {
	t.Helper()
	store, err := recorder.Open(filepath.Join(t.TempDir(), "lab.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), labBound)
	defer cancel()
	sess := mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceDemo, Name: "lab e2e"}
	plan, exs, err := Record(ctx, store, sess, scs, RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the scenarios did not finish within %v", labBound)
	}
	t.Cleanup(plan.Close)
	return plan, exs
}

func TestScenariosEndToEnd(t *testing.T) {
	plan, exs := capture(t, Scenarios())
	tr := oauth.NewTracker(oauth.Options{TokenTimeout: demoTokenTimeout})
	for _, ex := range exs {
		tr.Observe(ex)
	}
	tr.Finish()
	flows, findings := tr.Flows(), tr.Findings()
	outcomes := plan.Evaluate(exs, flows, findings)
	for _, o := range outcomes {
		t.Run(o.Scenario, func(t *testing.T) {
			if !o.Pass {
				t.Errorf("%s: got %s/%s (%d flows): %s", o.Scenario, o.Got.Rule, o.Got.Fault, o.Flows, o.Why)
				dump(t, plan, o.Scenario, exs, flows, findings, tr)
			}
		})
	}
}

func dump(t *testing.T, plan *Plan, name string, exs []mcptap.Exchange, flows []mcptap.Flow, findings []mcptap.Finding, tr *oauth.Tracker) {
	w := plan.Worlds[indexOf(plan, name)]
	hosts := map[string]bool{}
	for _, h := range w.PublicHosts() {
		hosts[h] = true
	}
	var b strings.Builder
	for _, ex := range exs {
		if hosts[ex.Listener] {
			k, _ := tr.Hop(ex.ID)
			fmt.Fprintf(&b, "  %s %-22s %s %.90s -> %d\n", ex.ID[len(ex.ID)-6:], k, ex.Method, ex.Target, ex.Status)
		}
	}
	ids := map[string]bool{}
	for _, ex := range exs {
		if hosts[ex.Listener] {
			ids[ex.ID] = true
		}
	}
	for _, f := range flows {
		for _, h := range f.Hops {
			if ids[h.Exchange] {
				fmt.Fprintf(&b, "  flow %s client=%s verdict=%+v status=%s\n", f.ID, f.Client, f.Verdict, f.Status)
				break
			}
		}
	}
	var rules []string
	for _, fd := range findings {
		for _, id := range fd.Exchanges {
			if ids[id] {
				rules = append(rules, fmt.Sprintf("%s/%s/%s flow=%s: %.160s", fd.Rule, fd.Severity, fd.Fault, fd.Flow, fd.Detail))
				break
			}
		}
	}
	sort.Strings(rules)
	t.Logf("traffic:\n%s  findings:\n    %s", b.String(), strings.Join(rules, "\n    "))
}
